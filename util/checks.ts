/**
 * The small checkers every entry point uses on its options: counts, delays,
 * bounded numbers, booleans, functions, signals, the options object itself
 * and lists of tokens. One signature each, one wording each:
 *
 * - a value of the wrong type (`NaN` included) is a `TypeError`, a number out
 *   of range a `RangeError`;
 * - the message is "Cannot use NAME as it is not WHAT: current value is V",
 *   the value last, as given (`String(value)`).
 *
 * Each returns the value it checked, so an options resolver reads each
 * option once: `checkCount("maxQueuedMessages", options.maxQueuedMessages ??
 * DEFAULT_MAX_QUEUED, { min: 1 })`. Defaults are the resolver's business,
 * not the checkers'.
 *
 * This module does not touch `Deno.*`.
 *
 * @module
 */

/** The longest delay `setTimeout` honours (about 24.8 days); longer ones fire at once. */
export const MAX_DELAY = 2 ** 31 - 1;

/** What {@linkcode checkDelay} accepts besides 0 to {@linkcode MAX_DELAY}. */
export interface DelayRange {
  /**
   * Whether 0 is refused: for a delay after which something must happen.
   *
   * @default {false}
   */
  positive?: boolean;
  /**
   * Whether `Infinity` ("never") is accepted.
   *
   * @default {true}
   */
  infinite?: boolean;
}

/** What {@linkcode checkCount} accepts. */
export interface CountRange {
  /**
   * The smallest whole number accepted.
   *
   * @default {0}
   */
  min?: number;
  /**
   * The largest whole number accepted (`Infinity` aside).
   *
   * @default {Infinity}
   */
  max?: number;
  /**
   * Whether `Infinity` ("no bound") is accepted.
   *
   * @default {true}
   */
  infinite?: boolean;
}

/** What {@linkcode checkNumber} accepts: a finite number from `min` to `max`. */
export interface NumberRange {
  /** The smallest number accepted. */
  min: number;
  /**
   * The largest number accepted.
   *
   * @default {Infinity}
   */
  max?: number;
}

function isNumber(value: unknown): value is number {
  return typeof value === "number" && !Number.isNaN(value);
}

/**
 * Checks a delay in milliseconds: 0 (or above 0) to {@linkcode MAX_DELAY},
 * or `Infinity` unless refused.
 *
 * @param name The option's name, for the message.
 * @param value The value to check.
 * @param range Whether 0 is refused and `Infinity` accepted.
 * @returns The delay.
 * @throws {TypeError} If it is not a number (or is `NaN`).
 * @throws {RangeError} If it is out of range.
 *
 * @example
 * ```ts
 * import { checkDelay } from "./checks.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(checkDelay("timeout", 5_000), 5_000);
 * assert.throws(() => checkDelay("timeout", -1), {
 *   name: "RangeError",
 *   message: "Cannot use timeout as it is not a number of milliseconds from 0 to " +
 *     "2147483647 or Infinity: current value is -1",
 * });
 * ```
 */
export function checkDelay(name: string, value: unknown, range: DelayRange = {}): number {
  const { positive = false, infinite = true } = range;
  if (!isNumber(value)) {
    throw new TypeError(
      `Cannot use ${name} as it is not a number of milliseconds: current value is ${String(value)}`,
    );
  }
  const ok = value === Infinity
    ? infinite
    : value <= MAX_DELAY && (positive ? value > 0 : value >= 0);
  if (!ok) {
    throw new RangeError(
      `Cannot use ${name} as it is not a number of milliseconds ${
        positive ? "above 0" : "from 0"
      } to ${MAX_DELAY}${infinite ? " or Infinity" : ""}: current value is ${value}`,
    );
  }
  return value;
}

/**
 * Checks a count: a whole number from `min` to `max`, or `Infinity` unless
 * refused.
 *
 * @param name The option's name, for the message.
 * @param value The value to check.
 * @param range The bounds, and whether `Infinity` is accepted.
 * @returns The count.
 * @throws {TypeError} If it is not a number (or is `NaN`).
 * @throws {RangeError} If it is not whole, or out of range.
 *
 * @example
 * ```ts
 * import { checkCount } from "./checks.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(checkCount("maxQueuedMessages", Infinity, { min: 1 }), Infinity);
 * assert.throws(() => checkCount("maxQueuedMessages", 0, { min: 1 }), {
 *   name: "RangeError",
 *   message: "Cannot use maxQueuedMessages as it is not a whole number of at least 1 " +
 *     "or Infinity: current value is 0",
 * });
 * ```
 */
export function checkCount(name: string, value: unknown, range: CountRange = {}): number {
  const { min = 0, max = Infinity, infinite = true } = range;
  const ok = isNumber(value) &&
    (value === Infinity ? infinite : Number.isInteger(value) && value >= min && value <= max);
  if (!ok) {
    const bounds = max === Infinity ? `of at least ${min}` : `from ${min} to ${max}`;
    const Kind = isNumber(value) ? RangeError : TypeError;
    throw new Kind(
      `Cannot use ${name} as it is not a whole number ${bounds}${
        infinite ? " or Infinity" : ""
      }: current value is ${String(value)}`,
    );
  }
  return value;
}

/**
 * Checks a finite number from `min` to `max`, such as a factor or a share.
 *
 * @param name The option's name, for the message.
 * @param value The value to check.
 * @param range The bounds.
 * @returns The number.
 * @throws {TypeError} If it is not a number (or is `NaN`).
 * @throws {RangeError} If it is infinite or out of range.
 *
 * @example
 * ```ts
 * import { checkNumber } from "./checks.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => checkNumber("jitter", 2, { min: 0, max: 1 }), {
 *   name: "RangeError",
 *   message: "Cannot use jitter as it is not a number from 0 to 1: current value is 2",
 * });
 * ```
 */
export function checkNumber(name: string, value: unknown, range: NumberRange): number {
  const { min, max = Infinity } = range;
  const ok = isNumber(value) && Number.isFinite(value) && value >= min && value <= max;
  if (!ok) {
    const bounds = max === Infinity ? `of at least ${min}` : `from ${min} to ${max}`;
    const Kind = isNumber(value) ? RangeError : TypeError;
    throw new Kind(
      `Cannot use ${name} as it is not a number ${bounds}: current value is ${String(value)}`,
    );
  }
  return value;
}

/**
 * Checks a boolean.
 *
 * @param name The option's name, for the message.
 * @param value The value to check.
 * @returns The boolean.
 * @throws {TypeError} If it is not a boolean.
 */
export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== "boolean") {
    throw new TypeError(
      `Cannot use ${name} as it is not a boolean: current value is ${String(value)}`,
    );
  }
  return value;
}

/**
 * Checks an optional function, such as a hook.
 *
 * @typeParam F The function's type.
 * @param name The option's name, for the message.
 * @param value The value to check.
 * @returns The function, or `undefined` when none was given.
 * @throws {TypeError} If it is neither a function nor `undefined`.
 */
export function checkFunction<F extends (...args: never[]) => unknown>(
  name: string,
  value: F | undefined,
): F | undefined {
  if (value !== undefined && typeof value !== "function") {
    throw new TypeError(
      `Cannot use ${name} as it is not a function: current value is ${String(value)}`,
    );
  }
  return value;
}

/**
 * Checks an optional `AbortSignal`.
 *
 * @param name The option's name, for the message.
 * @param value The value to check.
 * @returns The signal, or `undefined` when none was given.
 * @throws {TypeError} If it is neither an `AbortSignal` nor `undefined`.
 */
export function checkSignal(name: string, value: unknown): AbortSignal | undefined {
  if (value !== undefined && !(value instanceof AbortSignal)) {
    throw new TypeError(
      `Cannot use ${name} as it is not an AbortSignal: current value is ${String(value)}`,
    );
  }
  return value;
}

/**
 * Checks that an options argument is an object.
 *
 * @typeParam T The options' type.
 * @param value The options as given.
 * @returns The options.
 * @throws {TypeError} If they are not an object.
 */
export function checkOptions<T extends object>(value: T): T {
  if (typeof value !== "object" || value === null) {
    throw new TypeError(
      `Cannot use options as they are not an object: current value is ${String(value)}`,
    );
  }
  return value;
}

/** An HTTP token (RFC 9110): what a subprotocol name must be. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Checks a list of subprotocols: a token, or an array of distinct tokens.
 * Every entry (`connect()`, `reconnecting()`, `ReconnectingClient`, `serve()`)
 * uses it, so a bad subprotocol is the same `TypeError` everywhere (the
 * runtime's own `WebSocket` would throw a `DOMException` `SyntaxError`; a bad
 * argument is a `TypeError` in this project).
 *
 * @param name The option's name, for the message.
 * @param value A token, an array of tokens, or `undefined` for none.
 * @returns The tokens, in a new array.
 * @throws {TypeError} If it is not a string or an array of strings, an
 *   entry is not a token, or an entry is repeated.
 *
 * @example
 * ```ts
 * import { checkTokens } from "./checks.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(checkTokens("protocols", "chat"), ["chat"]);
 * assert.throws(() => checkTokens("protocols", ["a b"]), {
 *   name: "TypeError",
 *   message: 'Cannot use protocols as one is not a token: current value is "a b"',
 * });
 * ```
 */
export function checkTokens(name: string, value: unknown): string[] {
  if (value === undefined) return [];
  const list: unknown = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list)) {
    throw new TypeError(
      `Cannot use ${name} as it is not a string or an array of strings: current value is ${
        String(value)
      }`,
    );
  }
  const seen = new Set<string>();
  for (const token of list) {
    if (typeof token !== "string" || !TOKEN.test(token)) {
      const shown = typeof token === "string" ? JSON.stringify(token) : String(token);
      throw new TypeError(`Cannot use ${name} as one is not a token: current value is ${shown}`);
    }
    if (seen.has(token)) {
      throw new TypeError(
        `Cannot use ${name} as one is repeated: current value is ${JSON.stringify(token)}`,
      );
    }
    seen.add(token);
  }
  return [...seen];
}
