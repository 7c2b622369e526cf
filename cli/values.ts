/**
 * The command line's values: the parser with one-line usage errors (and the
 * hints for options people bring from wscat, websocat and curl), and the
 * checks of numbers every command shares: durations in decimal seconds,
 * counts and ranges, each naming the flag and the value.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { maskUrl } from "../util/url.ts";
import { UsageError } from "./output.ts";

/** Unknown options people bring from wscat, websocat or curl, and what to use instead. */
const HINTS: Record<string, string> = {
  "--ca": "use --cacert FILE",
  "--origin": `send it as a header: -H "Origin: https://example.com"`,
  "-o": `send the origin as a header: -H "Origin: https://example.com"`,
  "--auth": "put user:password in the URL (ws://user:password@host/)",
  "--slash": "slash commands are on whenever stdin is a terminal",
  "-P": "--show-rtt prints each heartbeat's round trip",
  "--show-ping-pong": "--show-rtt prints each heartbeat's round trip",
};

/** A negative number, taken by the parser for an option: `--interval -1`. */
const NEGATIVE = /^-(?:\d+(?:\.\d*)?|\.\d+)$/;

/** Joins `--flag -1` into `--flag=-1`, so that the value check names the value. */
function joinNegativeValues(args: string[], options: ParseArgsOptionsConfig): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    const name = arg.startsWith("--")
      ? arg.slice(2)
      : Object.keys(options).find((key) => arg.length === 2 && options[key]!.short === arg[1]);
    const next = args[i + 1];
    if (name && options[name]?.type === "string" && next !== undefined && NEGATIVE.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** Parses `args` against `options`, turning parseArgs errors into one-line usage errors. */
export function parse<T extends ParseArgsOptionsConfig>(args: string[], options: T) {
  try {
    return parseArgs({
      args: joinNegativeValues(args, options),
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message = (error as Error).message;
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      const option = /'([^']+)'/.exec(message)?.[1] ?? message;
      const hint = HINTS[option.replace(/=.*/, "")];
      throw new UsageError(
        `unknown option '${option}'; ${hint ? `${hint}; ` : ""}see --help for the options`,
      );
    }
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      const ambiguous = /^Option '([^']+)' argument is ambiguous/.exec(message);
      if (ambiguous) {
        // The value is not shown: it may be anything, a credential included.
        const flag = ambiguous[1]!;
        const long = flag.startsWith("--")
          ? flag
          : `--${Object.keys(options).find((key) => options[key]!.short === flag.slice(1))}`;
        throw new UsageError(
          `option '${flag}' is missing its value: the next argument starts with '-'; ` +
            `for a value that begins with '-', write ${long}=VALUE`,
        );
      }
      throw new UsageError(
        `${maskUrl(message.split("\n")[0]!.replace(/^Option/, "option"))}; see --help`,
      );
    }
    throw error;
  }
}

/** A number written in decimal: digits, a dot and digits (no sign, exponent, hex, spaces). */
export const DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

/**
 * The shortest duration a flag takes, in seconds: 1 ms. Shorter values are
 * typos (`1e-9`) or busy loops (a heartbeat every 0 ms).
 */
export const MIN_SECONDS = 0.001;

/** The longest duration a flag takes, in seconds: about 23 days (timers hold 2^31 ms). */
export const MAX_SECONDS = 2_000_000;

/**
 * A number of seconds, as milliseconds: written in decimal, at least
 * {@linkcode MIN_SECONDS} (or exactly 0 when `allowZero`), at most
 * {@linkcode MAX_SECONDS}.
 *
 * @throws {UsageError} Naming the flag and the value.
 */
export function seconds(
  name: string,
  value: string | undefined,
  allowZero = false,
): number | undefined {
  if (value === undefined) return undefined;
  const range = allowZero ? ", 0 or more" : " above 0";
  if (!DECIMAL.test(value)) {
    throw new UsageError(
      NEGATIVE.test(value)
        ? `${name} expects a number of seconds${range}, got '${value}'`
        : `${name} expects a number of seconds in decimal, such as 5 or 0.5, got '${value}'`,
    );
  }
  const n = Number(value);
  if (n === 0) {
    if (allowZero) return 0;
    throw new UsageError(`${name} expects a number of seconds above 0, got '${value}'`);
  }
  if (n < MIN_SECONDS) {
    throw new UsageError(
      `${name} expects at least ${MIN_SECONDS} seconds (1 ms)${
        allowZero ? " or 0" : ""
      }, got '${value}'`,
    );
  }
  if (n > MAX_SECONDS) {
    throw new UsageError(
      `${name} expects at most ${MAX_SECONDS} seconds (about 23 days), got '${value}'`,
    );
  }
  return Math.round(n * 1e6) / 1e3;
}

/**
 * A whole number of at least `min`, written in decimal digits.
 *
 * @throws {UsageError} Naming the flag and the value.
 */
export function count(name: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${name} expects a whole number of at least ${min}, got '${value}'`);
  }
  return n;
}

/**
 * A whole number from `min` to `max`, written in decimal digits.
 *
 * @throws {UsageError} Naming the flag, the range and the value.
 */
export function bounded(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new UsageError(`${name} expects a whole number from ${min} to ${max}, got '${value}'`);
  }
  return n;
}
