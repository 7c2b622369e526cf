/**
 * The recovery layer: {@linkcode reconnecting}, an async iterable of
 * connections that connects again, with backoff, after each close or failure.
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
 * the loop then waits a backoff delay ({@linkcode backoffDelay}) and connects
 * again. How the connection ended is in `ws.closed` and in the `onRetry`
 * hook. Which failures are retried is decided by
 * {@linkcode defaultShouldRetry}, or by your `shouldRetry`.
 *
 * A connection declared dead (a failed heartbeat, a stale feed, a drop) is
 * released by the client at once, so the next attempt starts after the
 * backoff delay alone: recovery takes at most `interval + timeout + delay`
 * with a heartbeat, `staleAfter + delay` for a feed gone quiet.
 *
 * The loop ends quietly when the consumer leaves it (`break`, `return`, an
 * exception), closing the current connection with 1000, or when `signal`
 * aborts, even in the middle of a backoff delay or of `prepare`. It ends by
 * throwing when a failure is not to be retried, or when `maxRetries` retries
 * in a row have failed ({@linkcode ReconnectError}).
 *
 * {@linkcode ReconnectingClient} wraps the same loop in a handle whose
 * `send()` works across reconnects.
 *
 * This module does not touch `Deno.*`.
 *
 * @module
 */

import type { WebSocketClient } from "../client/websocket_client.ts";
import { openChecked } from "../client.ts";
import type { CheckedConnectOptions, CloseInfo, ConnectOptions } from "../client/options.ts";
import { resolveAttempt, resolveConnectOptions } from "../client/resolve.ts";
import { ConnectError, ConnectionClosedError } from "../util/errors.ts";
import { sleep } from "../heartbeat.ts";
import { checkCount, checkDelay, checkFunction } from "../util/checks.ts";
import { backoffDelay, type BackoffOptions, checkBackoff } from "./backoff.ts";
import { StaleFeedError } from "../client/stale.ts";
import { MAX_RETRY_AFTER } from "../transport/redirect.ts";
import { maskUrl } from "../util/url.ts";

/** A failure, as given to {@linkcode ReconnectOptions.shouldRetry}. */
export interface RetryContext {
  /**
   * How many failures in a row so far, this one included: a failed connect,
   * or a connection that closed before `minUptime`.
   */
  failures: number;
  /**
   * How many of those, counted from the last, were upgrades refused with no
   * status given (`ConnectError` kind `"rejected"`), this one included.
   */
  rejected?: number;
  /** Why `connect()` (or `prepare`) failed, when the connection never opened. */
  error?: unknown;
  /** How the connection ended, when it had opened. */
  close?: CloseInfo;
}

/** What {@linkcode ReconnectOptions.onRetry} is told before each backoff delay. */
export interface RetryEvent {
  /** The number of the attempt about to be made, counting the first connect as 1. */
  attempt: number;
  /**
   * Which retry in a row the attempt is: 1 after one failure, 2 after two,
   * up to `maxRetries`. 0 when it follows a connection that stayed open
   * `minUptime`: that is a reconnect, not a retry, and does not count.
   */
  retry: number;
  /**
   * Whole milliseconds until that attempt: the backoff delay, or the
   * server's `Retry-After` when that is longer.
   */
  delay: number;
  /**
   * What the server's `Retry-After` asked (a 429 or 503 refusing the
   * upgrade), in milliseconds, capped at 10 minutes (`MAX_RETRY_AFTER`): a
   * date far ahead, or a typo, must not park a feed for hours. Undefined
   * when the failure carried none.
   */
  retryAfter?: number;
  /** The failure or close that caused it: an `Error`, or a {@linkcode CloseInfo}. */
  reason: Error | CloseInfo;
}

/** What {@linkcode ReconnectOptions.prepare} is told before each attempt. */
export interface AttemptContext {
  /** The number of the attempt about to be made, counting the first connect as 1. */
  attempt: number;
  /** Which retry in a row it is, as in {@linkcode RetryEvent.retry}; 0 for the first attempt. */
  retry: number;
  /** Why the previous attempt failed, when it never opened. */
  error?: unknown;
  /** How the previous connection ended, when it had opened. */
  close?: CloseInfo;
  /** Aborts when the loop ends: pass it on to a token request. */
  signal: AbortSignal;
}

/** What {@linkcode ReconnectOptions.prepare} returns: the settings of one attempt. */
export interface AttemptSettings {
  /** The URL to connect to instead of the loop's. */
  url?: string | URL;
  /** The handshake headers instead of `options.headers`. */
  headers?: HeadersInit;
  /** The subprotocols to offer instead of `options.protocols`. */
  protocols?: string | string[];
}

/**
 * Options for {@linkcode reconnecting}: those of {@linkcode connect}, the
 * backoff ({@linkcode BackoffOptions}), and the retry policy.
 */
export interface ReconnectOptions extends ConnectOptions, BackoffOptions {
  /**
   * Milliseconds a connection must stay open for its close not to count as
   * a failure; such a connection resets the backoff and the retry count.
   *
   * @default {10000} ({@linkcode DEFAULT_MIN_UPTIME})
   */
  minUptime?: number;
  /**
   * Retries in a row before giving up with a {@linkcode ReconnectError}. A
   * retry is an attempt that follows a failure: with `maxRetries: 3`, the
   * loop gives up when the first attempt and 3 retries after it have all
   * failed. 0 never retries.
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
  /**
   * Called before every attempt, the first included; what it returns
   * replaces the URL, headers and subprotocols for that attempt: a fresh
   * token, a signed URL, another server. The loop waits for it (unless
   * `signal` aborts). If it throws, that is the attempt's failure, and
   * `shouldRetry` decides (by default it is not retried: the loop throws it).
   */
  prepare?: (
    context: AttemptContext,
  ) => AttemptSettings | void | Promise<AttemptSettings | void>;
}

/**
 * The loop gave up: `maxRetries` retries in a row failed. `retries` is that
 * count, `cause` the last failure.
 *
 * @example Give up after three retries
 * ```ts
 * import { ReconnectError, reconnecting } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * const loop = reconnecting("ws://127.0.0.1:9/", { maxRetries: 3, initialDelay: 10 });
 * const error = await (async () => {
 *   for await (const _ of loop) assert.fail("port 9 has no WebSocket server");
 * })().catch((e) => e);
 * assert.ok(error instanceof ReconnectError);
 * assert.equal(error.retries, 3);
 * assert.match(error.message, /^Gave up reconnecting to ws:\/\/127\.0\.0\.1:9\/ after 3 retries/);
 * ```
 */
export class ReconnectError extends Error {
  /** The URL of the last attempt, credentials masked. */
  readonly url: string;
  /** How many retries in a row failed: the `maxRetries` that was reached. */
  readonly retries: number;

  /**
   * Constructs a new instance.
   *
   * @param url The URL of the last attempt, credentials masked.
   * @param retries How many retries in a row failed.
   * @param options `cause`: the last failure.
   */
  constructor(url: string, retries: number, options?: ErrorOptions) {
    const last = options?.cause instanceof Error ? `: ${options.cause.message}` : "";
    super(
      `Gave up reconnecting to ${url} after ${retries} ${
        retries === 1 ? "retry" : "retries"
      } in a row (maxRetries)${last}`,
      options,
    );
    this.name = "ReconnectError";
    this.url = url;
    this.retries = retries;
  }
}

/**
 * How many times {@linkcode defaultShouldRetry} retries an upgrade the server
 * refused without the runtime saying why (`ConnectError` kind `"rejected"`):
 * 3 retries, about 7 s with the default backoff, ride out a proxy's brief
 * refusal during a deploy, while an authentication failure (the usual cause)
 * is not hammered forever.
 *
 * @example The fourth refusal in a row is not retried
 * ```ts
 * import { ConnectError, defaultShouldRetry, REJECTED_RETRIES } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * const error = new ConnectError("ws://h/", "rejected", "the server refused the upgrade");
 * assert.equal(defaultShouldRetry({ failures: 3, rejected: REJECTED_RETRIES, error }), true);
 * assert.equal(defaultShouldRetry({ failures: 4, rejected: REJECTED_RETRIES + 1, error }), false);
 * ```
 */
export const REJECTED_RETRIES = 3;

const RETRIED_CLOSE_CODES = new Set([1000, 1001, 1005, 1006, 1011, 1012, 1013, 1014]);

/**
 * The retry policy of {@linkcode reconnecting}.
 *
 * | failure | retried? |
 * | --- | --- |
 * | refused, DNS error, connect timeout, other network errors | yes |
 * | HTTP 5xx, 408, 429 | yes |
 * | HTTP 4xx otherwise (bad URL, authentication), TLS errors | no |
 * | upgrade refused, status hidden by the runtime (kind `"rejected"`) | {@linkcode REJECTED_RETRIES} times in a row |
 * | heartbeat timeout, stale feed ({@linkcode StaleFeedError}), connection dropped (1006) | yes |
 * | close 1000, 1001, 1005, 1011, 1012, 1013, 1014 | yes |
 * | close 3000 to 4999 (the application's codes) | yes |
 * | close 1008 (policy violation) and the protocol errors 1002, 1003, 1007, 1009, 1010 | no |
 * | anything else (an invalid URL, a bad option, an error thrown by `prepare`) | no |
 *
 * @param context The failure.
 * @returns Whether to retry.
 *
 * @example Retry everything but an authentication failure
 * ```ts
 * import { ConnectError, defaultShouldRetry, type RetryContext } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * const shouldRetry = (context: RetryContext) =>
 *   context.error instanceof ConnectError && context.error.status === 401
 *     ? false
 *     : defaultShouldRetry(context);
 * const refused = new ConnectError("ws://h/", "refused", "connection refused");
 * assert.equal(shouldRetry({ failures: 1, error: refused }), true);
 * ```
 */
export function defaultShouldRetry(context: RetryContext): boolean {
  const { close, error } = context;
  if (close) {
    if (close.initiator === "heartbeat" || close.initiator === "network") return true;
    if (close.error instanceof StaleFeedError) return true;
    return RETRIED_CLOSE_CODES.has(close.code) || (close.code >= 3000 && close.code <= 4999);
  }
  if (!(error instanceof ConnectError)) return false;
  switch (error.kind) {
    case "status": {
      const status = error.status ?? 0;
      return status >= 500 || status === 408 || status === 429;
    }
    case "rejected":
      return (context.rejected ?? context.failures) <= REJECTED_RETRIES;
    case "tls":
    case "aborted":
      return false;
    default:
      return true;
  }
}

/** Default {@linkcode ReconnectOptions.minUptime}, in milliseconds. */
export const DEFAULT_MIN_UPTIME = 10_000;

/**
 * {@linkcode ReconnectOptions} once resolved: checked, defaults filled in,
 * frozen. `connect` holds the connect options of every attempt (`quietEnd`
 * set); `prepare`'s settings replace its headers and subprotocols per
 * attempt; `shouldRetry` is {@linkcode defaultShouldRetry} when unset.
 */
export interface ReconnectSettings {
  readonly connect: CheckedConnectOptions;
  readonly backoff: Readonly<Required<BackoffOptions>>;
  readonly minUptime: number;
  readonly maxRetries: number;
  readonly shouldRetry: (context: RetryContext) => boolean;
  readonly onRetry: ((event: RetryEvent) => void) | undefined;
  readonly prepare: ReconnectOptions["prepare"];
}

/**
 * Resolves the options of {@linkcode reconnecting}, once for the whole loop:
 * the connect options (with `quietEnd` set: the loop handles the closes),
 * the backoff, and the retry policy. Internal: not exported from `mod.ts`.
 *
 * @param options The options as given.
 * @returns The settings, checked, defaults filled in, frozen.
 * @throws {TypeError} If an option has the wrong type.
 * @throws {RangeError} If an option is out of range.
 */
export function resolveReconnectOptions(options: ReconnectOptions): ReconnectSettings {
  // One read of each option: the copy is what the checks read.
  const given = { ...options, quietEnd: true };
  const { minUptime, maxRetries, shouldRetry, onRetry, prepare } = given;
  return Object.freeze({
    connect: resolveConnectOptions(given),
    backoff: checkBackoff(given),
    minUptime: checkDelay("minUptime", minUptime ?? DEFAULT_MIN_UPTIME),
    maxRetries: checkCount("maxRetries", maxRetries ?? Infinity),
    shouldRetry: checkFunction("shouldRetry", shouldRetry) ?? defaultShouldRetry,
    onRetry: checkFunction("onRetry", onRetry),
    prepare: checkFunction("prepare", prepare),
  });
}

/** Resolves with what `work` resolves to, or with `undefined` once `signal` aborts. */
function unlessAborted<T>(
  work: T | Promise<T>,
  signal: AbortSignal | undefined,
): Promise<T | undefined> {
  if (!signal) return Promise.resolve(work);
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    Promise.resolve(work).then(resolve, reject).finally(() => {
      signal.removeEventListener("abort", onAbort);
    });
  });
}

/** The URL and connect options of one attempt: `prepare`'s settings over the loop's. */
function attemptOptions(
  url: string | URL,
  options: CheckedConnectOptions,
  settings: AttemptSettings | void,
): [string | URL, CheckedConnectOptions] {
  if (settings === undefined) return [url, options];
  if (typeof settings !== "object" || settings === null) {
    throw new TypeError(
      `Cannot use what prepare returned as it is not an object or undefined: current value is ${
        String(settings)
      }`,
    );
  }
  const { url: target, headers, protocols } = settings;
  if (headers === undefined && protocols === undefined) return [target ?? url, options];
  return [target ?? url, resolveAttempt(options, { headers, protocols })];
}

/**
 * Connects, and connects again after each close or failure, with backoff:
 * an async iterable of open clients. See the module docs for the whole story.
 *
 * @param url A `ws:` or `wss:` URL (`prepare` may give another per attempt).
 * @param options Those of {@linkcode connect}, the backoff, the retry policy,
 *   and `prepare` for fresh settings per attempt.
 * @returns The connections, one per turn of the loop.
 * @throws {ConnectError} If a connect failure is not to be retried (e.g. HTTP 403).
 * @throws {ConnectionClosedError} If a close is not to be retried (e.g. 1008).
 * @throws {ReconnectError} When `maxRetries` retries in a row have failed.
 * @throws {TypeError} If an option has the wrong type.
 * @throws {RangeError} If an option is out of range, e.g. a delay below
 *   {@linkcode MIN_RETRY_DELAY} (a busy loop).
 *
 * @example Keep a subscription alive, with a fresh token per attempt
 * ```ts ignore
 * import { reconnecting } from "@wsbeat/wsbeat";
 *
 * const fetchToken = async () => "t0k3n";
 * for await (
 *   const ws of reconnecting("wss://example.com/feed", {
 *     heartbeat: true,
 *     prepare: async () => ({ headers: { authorization: `Bearer ${await fetchToken()}` } }),
 *     onRetry: ({ attempt, delay }) => console.error(`attempt ${attempt} in ${delay} ms`),
 *   })
 * ) {
 *   ws.send(JSON.stringify({ op: "subscribe", channel: "prices" }));
 *   for await (const message of ws) console.log(message);
 * }
 * ```
 */
export async function* reconnecting(
  url: string | URL,
  options: ReconnectOptions = {},
): AsyncGenerator<WebSocketClient, void, undefined> {
  yield* runReconnecting(url, resolveReconnectOptions(options));
}

/**
 * The loop of {@linkcode reconnecting}, on settings resolved once by
 * {@linkcode resolveReconnectOptions}; `ReconnectingClient` runs it with
 * its own hooks. Internal: not exported from `mod.ts`.
 *
 * @param url The URL (`prepare` may give another per attempt).
 * @param settings The resolved settings.
 * @returns The connections, one per turn of the loop.
 */
export async function* runReconnecting(
  url: string | URL,
  settings: ReconnectSettings,
): AsyncGenerator<WebSocketClient, void, undefined> {
  const { backoff, minUptime, maxRetries, shouldRetry, onRetry, prepare } = settings;
  const { signal } = settings.connect;
  const loopSignal = signal ?? new AbortController().signal;
  let failures = 0; // in a row: retry number `failures` comes next
  let rejected = 0; // kind "rejected" failures, counted from the last
  let attempt = 0;
  let previous: { error?: unknown; close?: CloseInfo } = {};
  let ws: WebSocketClient | undefined;
  try {
    while (!signal?.aborted) {
      attempt++;
      let reason: Error | CloseInfo;
      let target = url;
      try {
        let connectOptions = settings.connect; // quietEnd: this loop handles the close
        if (prepare) {
          const given = await unlessAborted(
            prepare({ attempt, retry: failures, ...previous, signal: loopSignal }),
            signal,
          );
          if (signal?.aborted) return;
          [target, connectOptions] = attemptOptions(url, connectOptions, given);
        }
        ws = await openChecked(target, connectOptions);
      } catch (error) {
        if (signal?.aborted) return;
        failures++;
        rejected = error instanceof ConnectError && error.kind === "rejected" ? rejected + 1 : 0;
        if (!shouldRetry({ failures, rejected, error })) throw error;
        if (failures > maxRetries) {
          throw new ReconnectError(maskUrl(target), failures - 1, { cause: error });
        }
        reason = error instanceof Error ? error : new Error(String(error));
        previous = { error };
      }
      if (ws) {
        yield ws;
        // The loop body is done with this connection: close it if it is still
        // open. A connection already declared dead resolves at once.
        const info = await ws.close();
        const uptime = ws.stats.uptimeMs;
        ws = undefined;
        if (signal?.aborted) return;
        failures = uptime >= minUptime ? 0 : failures + 1;
        rejected = 0;
        if (!shouldRetry({ failures: Math.max(failures, 1), rejected, close: info })) {
          throw new ConnectionClosedError(
            info.code,
            info.reason,
            `Not reconnecting: ${closeText(info)}`,
            { cause: info.error },
          );
        }
        if (failures > maxRetries) {
          throw new ReconnectError(maskUrl(target), failures - 1, {
            cause: info.error ?? new Error(closeText(info)),
          });
        }
        reason = info;
        previous = { close: info };
      }
      // Retry-After (429, 503) is the floor of the delay, capped at MAX_RETRY_AFTER.
      const asked = reason! instanceof ConnectError ? reason.retryAfter : undefined;
      const retryAfter = asked === undefined ? undefined : Math.min(asked, MAX_RETRY_AFTER);
      const delay = Math.max(backoffDelay(Math.max(failures, 1), backoff), retryAfter ?? 0);
      onRetry?.({
        attempt: attempt + 1,
        retry: failures,
        delay,
        reason: reason!,
        ...(retryAfter === undefined ? {} : { retryAfter }),
      });
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
