/**
 * Reconnect with backoff: an async iterable of connections.
 *
 * ```ts ignore
 * for await (const ws of reconnecting(url, { heartbeat: true })) {
 *   ws.send(subscribe); // renew the subscription on every connection
 *   for await (const message of ws) handle(message);
 * }
 * ```
 *
 * Each turn of the loop gets a fresh, open {@linkcode WebSocketClient}. Inside
 * the loop its message iteration ends quietly when it closes, for any reason;
 * the loop then waits a backoff delay and connects again. How the connection
 * ended is in `ws.closed` and in the `onRetry` hook. Which failures are retried
 * is decided by {@linkcode defaultShouldRetry}, or by your `shouldRetry`.
 *
 * The loop ends quietly when the consumer leaves it (`break`, `return`, an
 * exception), closing the current connection with 1000, or when `signal`
 * aborts, even in the middle of a backoff delay. It ends by throwing when a
 * failure is not to be retried, or after `maxRetries` consecutive failures
 * ({@linkcode ReconnectError}).
 *
 * This module does not touch `Deno.*`.
 *
 * @module
 */

import { endIterationQuietly, type WebSocketClient } from "./client.ts";
import { connect } from "./connect.ts";
import type { CloseInfo, ConnectOptions } from "./client_options.ts";
import { ConnectError, ConnectionClosedError } from "./errors.ts";
import { checkDelay, sleep } from "./heartbeat.ts";

/** A failure, as given to {@linkcode ReconnectOptions.shouldRetry}. */
export interface RetryContext {
  /** How many failures in a row so far, this one included. */
  failures: number;
  /** Why `connect()` failed, when the connection never opened. */
  error?: unknown;
  /** How the connection ended, when it had opened. */
  close?: CloseInfo;
}

/** What {@linkcode ReconnectOptions.onRetry} is told before each backoff delay. */
export interface RetryEvent {
  /** The number of the attempt about to be made, counting the first connect as 1. */
  attempt: number;
  /** Milliseconds until that attempt. */
  delay: number;
  /** The failure or close that caused the retry: an `Error`, or a {@linkcode CloseInfo}. */
  reason: Error | CloseInfo;
  /** How many failures in a row so far; 0 after a connection that stayed up `minUptime`. */
  failures: number;
}

/** Options for {@linkcode reconnecting}: those of {@linkcode connect}, and the backoff. */
export interface ReconnectOptions extends ConnectOptions {
  /**
   * Milliseconds before the first retry; each consecutive failure multiplies
   * it by `factor`, up to `maxDelay`.
   *
   * @default {1000}
   */
  initialDelay?: number;
  /**
   * The growth of the delay per consecutive failure.
   *
   * @default {2}
   */
  factor?: number;
  /**
   * The longest delay, in milliseconds.
   *
   * @default {30000}
   */
  maxDelay?: number;
  /**
   * The share of each delay that is random: a delay `d` becomes a uniform
   * draw from `[d × (1 - jitter), d]`, so clients that lost the same server
   * do not come back in lockstep. 0 for none, 1 for "full jitter".
   *
   * @default {0.5}
   */
  jitter?: number;
  /**
   * Milliseconds a connection must stay open for its close not to count as
   * a failure; such a connection resets the backoff.
   *
   * @default {10000}
   */
  minUptime?: number;
  /**
   * Consecutive failures retried before giving up with a
   * {@linkcode ReconnectError}: at most `maxRetries + 1` attempts in a row.
   *
   * @default {Infinity}
   */
  maxRetries?: number;
  /**
   * Decides whether a failure is retried.
   *
   * @default {defaultShouldRetry}
   */
  shouldRetry?: (context: RetryContext) => boolean;
  /** Called before each backoff delay, for logging. */
  onRetry?: (event: RetryEvent) => void;
}

/**
 * The loop gave up after `maxRetries` consecutive failures; `cause` is the
 * last one.
 *
 * @example Give up after three retries
 * ```ts ignore
 * import { ReconnectError, reconnecting } from "@wsbeat/wsbeat";
 *
 * try {
 *   for await (const ws of reconnecting("ws://127.0.0.1:9000", { maxRetries: 3 })) {
 *     for await (const message of ws) console.log(message);
 *   }
 * } catch (error) {
 *   if (error instanceof ReconnectError) console.error(error.message, error.cause);
 * }
 * ```
 */
export class ReconnectError extends Error {
  /** The URL. */
  readonly url: string;
  /** How many attempts failed in a row. */
  readonly failures: number;

  /**
   * Constructs a new instance.
   *
   * @param url The URL.
   * @param failures How many attempts failed in a row.
   * @param options `cause`: the last failure.
   */
  constructor(url: string, failures: number, options?: ErrorOptions) {
    const last = options?.cause instanceof Error ? `: ${options.cause.message}` : "";
    super(
      `Gave up reconnecting to ${url} after ${failures} failed attempts in a row${last}`,
      options,
    );
    this.name = "ReconnectError";
    this.url = url;
    this.failures = failures;
  }
}

const RETRIED_CLOSE_CODES: ReadonlySet<number> = new Set([
  1000,
  1001,
  1005,
  1006,
  1011,
  1012,
  1013,
  1014,
]);

/**
 * The retry policy of {@linkcode reconnecting}.
 *
 * | failure | retried? |
 * | --- | --- |
 * | refused, DNS error, connect timeout, other network errors | yes |
 * | HTTP 5xx, 408, 429 | yes |
 * | HTTP 4xx otherwise (bad URL, authentication), TLS errors | no |
 * | heartbeat timeout, connection dropped (1006) | yes |
 * | close 1000, 1001, 1005, 1011, 1012, 1013, 1014 | yes |
 * | close 3000 to 4999 (the application's codes) | yes |
 * | close 1008 (policy violation) and the protocol errors 1002, 1003, 1007, 1009, 1010 | no |
 * | anything else (an invalid URL, a bad option) | no |
 *
 * @param context The failure.
 * @returns Whether to retry.
 *
 * @example Retry everything but an authentication failure
 * ```ts
 * import { ConnectError, defaultShouldRetry, type RetryContext } from "@wsbeat/wsbeat";
 *
 * const shouldRetry = (context: RetryContext) =>
 *   context.error instanceof ConnectError && context.error.status === 401
 *     ? false
 *     : defaultShouldRetry(context);
 * ```
 */
export function defaultShouldRetry(context: RetryContext): boolean {
  const { close, error } = context;
  if (close) {
    if (close.initiator === "heartbeat" || close.initiator === "network") return true;
    return RETRIED_CLOSE_CODES.has(close.code) || (close.code >= 3000 && close.code <= 4999);
  }
  if (!(error instanceof ConnectError)) return false;
  switch (error.kind) {
    case "status": {
      const status = error.status ?? 0;
      return status >= 500 || status === 408 || status === 429;
    }
    case "tls":
    case "aborted":
      return false;
    default:
      return true;
  }
}

interface Backoff {
  initialDelay: number;
  factor: number;
  maxDelay: number;
  jitter: number;
  minUptime: number;
  maxRetries: number;
}

function checkBackoff(options: ReconnectOptions): Backoff {
  const initialDelay = checkDelay("initialDelay", options.initialDelay ?? 1_000, false);
  if (initialDelay === 0) {
    throw new RangeError(
      "Cannot use initialDelay as it is 0, which would retry in a busy loop: current value is 0; use at least 1 ms",
    );
  }
  const maxDelay = checkDelay("maxDelay", options.maxDelay ?? 30_000, false);
  const minUptime = checkDelay("minUptime", options.minUptime ?? 10_000);
  const factor = options.factor ?? 2;
  if (typeof factor !== "number" || !(factor >= 1 && factor < Infinity)) {
    throw new RangeError(
      `Cannot use factor as it is not a number of at least 1: current value is ${String(factor)}`,
    );
  }
  const jitter = options.jitter ?? 0.5;
  if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1)) {
    throw new RangeError(
      `Cannot use jitter as it is not a number from 0 to 1: current value is ${String(jitter)}`,
    );
  }
  const maxRetries = options.maxRetries ?? Infinity;
  if (
    typeof maxRetries !== "number" ||
    !(maxRetries === Infinity || (Number.isInteger(maxRetries) && maxRetries >= 0))
  ) {
    throw new RangeError(
      `Cannot use maxRetries as it is not a whole number of at least 0 or Infinity: current value is ${
        String(maxRetries)
      }`,
    );
  }
  return { initialDelay, factor, maxDelay, jitter, minUptime, maxRetries };
}

/**
 * The delay before retry number `n` (1 for the first retry in a row), in ms.
 *
 * @param n Which retry in a row, from 1.
 * @param backoff The settings.
 * @param random A number in [0, 1), `Math.random()` by default.
 * @returns The delay in milliseconds.
 */
export function backoffDelay(
  n: number,
  backoff: Pick<ReconnectOptions, "initialDelay" | "factor" | "maxDelay" | "jitter"> = {},
  random: number = Math.random(),
): number {
  const { initialDelay = 1_000, factor = 2, maxDelay = 30_000, jitter = 0.5 } = backoff;
  const ceiling = Math.min(maxDelay, initialDelay * factor ** Math.max(0, n - 1));
  return ceiling * (1 - jitter * random);
}

/**
 * Connects, and connects again after each close or failure, with backoff:
 * an async iterable of open clients. See the module docs for the whole story.
 *
 * @param url A `ws:` or `wss:` URL.
 * @param options Those of {@linkcode connect}, the backoff, and the retry policy.
 * @returns The connections, one per turn of the loop.
 * @throws {ConnectError} If a connect failure is not to be retried (e.g. HTTP 403).
 * @throws {ConnectionClosedError} If a close is not to be retried (e.g. 1008).
 * @throws {ReconnectError} After `maxRetries` consecutive failures.
 * @throws {TypeError} If an option has the wrong type.
 * @throws {RangeError} If an option is out of range.
 *
 * @example Keep a subscription alive across server restarts
 * ```ts ignore
 * import { reconnecting } from "@wsbeat/wsbeat";
 *
 * for await (const ws of reconnecting("wss://example.com/feed", {
 *   heartbeat: true,
 *   onRetry: ({ attempt, delay, reason }) => console.error(`retry ${attempt} in ${delay} ms`, reason),
 * })) {
 *   ws.send(JSON.stringify({ op: "subscribe", channel: "prices" }));
 *   for await (const message of ws) console.log(message);
 * }
 * ```
 */
export async function* reconnecting(
  url: string | URL,
  options: ReconnectOptions = {},
): AsyncGenerator<WebSocketClient, void, undefined> {
  const backoff = checkBackoff(options);
  const { signal, shouldRetry = defaultShouldRetry, onRetry } = options;
  const href = String(url);
  let failures = 0;
  let attempt = 1;
  let ws: WebSocketClient | undefined;
  try {
    while (!signal?.aborted) {
      let reason: Error | CloseInfo;
      try {
        ws = await connect(url, options);
      } catch (error) {
        if (signal?.aborted) return;
        failures++;
        if (!shouldRetry({ failures, error })) throw error;
        if (failures > backoff.maxRetries) {
          throw new ReconnectError(href, failures, { cause: error });
        }
        reason = error instanceof Error ? error : new Error(String(error));
      }
      if (ws) {
        endIterationQuietly(ws);
        yield ws;
        // The loop body is done with this connection: close it if it is still open.
        const info = await ws.close();
        const uptime = ws.stats.uptimeMs;
        ws = undefined;
        if (signal?.aborted) return;
        failures = uptime >= backoff.minUptime ? 0 : failures + 1;
        if (!shouldRetry({ failures: Math.max(failures, 1), close: info })) {
          throw new ConnectionClosedError(
            info.code,
            info.reason,
            `Not reconnecting: ${closeText(info)}`,
            {
              cause: info.error,
            },
          );
        }
        if (failures > backoff.maxRetries) {
          throw new ReconnectError(href, failures, {
            cause: info.error ?? new Error(closeText(info)),
          });
        }
        reason = info;
      }
      const delay = backoffDelay(Math.max(failures, 1), backoff);
      attempt++;
      onRetry?.({ attempt, delay, reason: reason!, failures });
      try {
        await sleep(delay, signal ? { signal } : {});
      } catch {
        return; // aborted during the backoff
      }
    }
  } finally {
    await ws?.close();
  }
}

function closeText(info: CloseInfo): string {
  return `the connection closed with ${info.code}${
    info.reason ? ` (${info.reason})` : ""
  }, initiator ${info.initiator}`;
}
