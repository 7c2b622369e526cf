/**
 * The recovery layer: the backoff between reconnection attempts, and the
 * checks that keep it from busy-looping.
 *
 * The first attempt is made at once. After the n-th failure in a row, the
 * next attempt waits `initialDelay × factor^(n-1)`, capped at `maxDelay`,
 * less a random share `jitter` of it, and never less than
 * {@linkcode MIN_RETRY_DELAY}.
 *
 * This module does not touch `Deno.*`.
 *
 * @module
 */

import { checkDelay, checkNumber } from "../util/checks.ts";

/**
 * The shortest delay between two attempts, in milliseconds: `initialDelay`
 * and `maxDelay` below it are refused, and a jittered delay is never shorter.
 * 10 ms is far below any useful retry delay, and long enough that a
 * misconfigured client makes at most 100 attempts a second instead of
 * thousands (`maxDelay: 0` once made 833 attempts in 2 s).
 *
 * @example Even full jitter waits at least the floor
 * ```ts
 * import { backoffDelay, MIN_RETRY_DELAY } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * assert.equal(backoffDelay(1, { initialDelay: 10, jitter: 1 }, 0.99), MIN_RETRY_DELAY);
 * ```
 */
export const MIN_RETRY_DELAY = 10;

/** The backoff settings of {@linkcode reconnecting}, each with its default. */
export interface BackoffOptions {
  /**
   * Milliseconds before the first retry; each further failure in a row
   * multiplies it by `factor`, up to `maxDelay`. At least
   * {@linkcode MIN_RETRY_DELAY}.
   *
   * @default {1000} ({@linkcode DEFAULT_INITIAL_DELAY})
   */
  initialDelay?: number;
  /**
   * The growth of the delay per failure in a row.
   *
   * @default {2} ({@linkcode DEFAULT_FACTOR})
   */
  factor?: number;
  /**
   * The longest delay, in milliseconds. At least {@linkcode MIN_RETRY_DELAY};
   * below `initialDelay` it caps every delay.
   *
   * @default {30000} ({@linkcode DEFAULT_MAX_DELAY})
   */
  maxDelay?: number;
  /**
   * The share of each delay that is random: a delay `d` becomes a uniform
   * draw from `[d × (1 - jitter), d]`, so clients that lost the same server
   * do not come back in lockstep. 0 for none, 1 for "full jitter" (still at
   * least {@linkcode MIN_RETRY_DELAY}).
   *
   * @default {0.5} ({@linkcode DEFAULT_JITTER})
   */
  jitter?: number;
}

/** Default {@linkcode BackoffOptions.initialDelay}, in milliseconds. */
export const DEFAULT_INITIAL_DELAY = 1_000;
/** Default {@linkcode BackoffOptions.factor}. */
export const DEFAULT_FACTOR = 2;
/** Default {@linkcode BackoffOptions.maxDelay}, in milliseconds. */
export const DEFAULT_MAX_DELAY = 30_000;
/** Default {@linkcode BackoffOptions.jitter}. */
export const DEFAULT_JITTER = 0.5;

/** A delay that is not below {@linkcode MIN_RETRY_DELAY}: the domain's rule on top of `checkDelay`. */
function checkFloor(name: string, value: unknown): number {
  const ms = checkDelay(name, value, { infinite: false });
  if (ms < MIN_RETRY_DELAY) {
    throw new RangeError(
      `Cannot use ${name} as it is below ${MIN_RETRY_DELAY} ms, which would retry in a busy loop: current value is ${ms}`,
    );
  }
  return ms;
}

/**
 * Checks the backoff options and fills in the defaults.
 *
 * @param options The options as given.
 * @returns The settings, with the defaults filled in, frozen.
 * @throws {TypeError} If a delay, `factor` or `jitter` is not a number.
 * @throws {RangeError} If a delay is below {@linkcode MIN_RETRY_DELAY} or
 *   too large for a timer, `factor` is below 1, or `jitter` is outside 0 to 1.
 *
 * @example A delay that would busy-loop is refused
 * ```ts
 * import { checkBackoff } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * assert.equal(checkBackoff({}).maxDelay, 30_000);
 * assert.throws(() => checkBackoff({ maxDelay: 0 }), {
 *   name: "RangeError",
 *   message: "Cannot use maxDelay as it is below 10 ms, which would retry in a busy loop: " +
 *     "current value is 0",
 * });
 * ```
 */
export function checkBackoff(options: BackoffOptions): Required<BackoffOptions> {
  const { initialDelay, factor, maxDelay, jitter } = options;
  return Object.freeze({
    initialDelay: checkFloor("initialDelay", initialDelay ?? DEFAULT_INITIAL_DELAY),
    factor: checkNumber("factor", factor ?? DEFAULT_FACTOR, { min: 1 }),
    maxDelay: checkFloor("maxDelay", maxDelay ?? DEFAULT_MAX_DELAY),
    jitter: checkNumber("jitter", jitter ?? DEFAULT_JITTER, { min: 0, max: 1 }),
  });
}

/**
 * The delay before retry number `n` in a row (1 for the first retry after a
 * failure), in whole milliseconds, never below {@linkcode MIN_RETRY_DELAY}.
 *
 * @param n Which retry in a row, from 1.
 * @param backoff The settings; defaults for those missing.
 * @param random A number in [0, 1), `Math.random()` by default.
 * @returns The delay in milliseconds.
 *
 * @example The default schedule, without its random share
 * ```ts
 * import { backoffDelay } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * const schedule = [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, {}, 0));
 * assert.deepEqual(schedule, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
 * assert.equal(backoffDelay(1, {}, 0.5), 750); // a quarter off: half of the 50 % jitter
 * ```
 */
export function backoffDelay(
  n: number,
  backoff: BackoffOptions = {},
  random: number = Math.random(),
): number {
  const {
    initialDelay = DEFAULT_INITIAL_DELAY,
    factor = DEFAULT_FACTOR,
    maxDelay = DEFAULT_MAX_DELAY,
    jitter = DEFAULT_JITTER,
  } = backoff;
  const ceiling = Math.min(maxDelay, initialDelay * factor ** Math.max(0, n - 1));
  return Math.max(MIN_RETRY_DELAY, Math.round(ceiling * (1 - jitter * random)));
}
