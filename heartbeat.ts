/**
 * A trio-style heartbeat: `fail after` a timeout, then `sleep` an interval.
 *
 * The whole algorithm is the seed recipe from trio-websocket:
 *
 * ```text
 * while not cancelled:
 *     with fail_after(timeout): await ws.ping()
 *     await sleep(interval)
 * ```
 *
 * {@linkcode failAfter} and {@linkcode sleep} are the two timing primitives,
 * usable on their own; {@linkcode heartbeat} is the loop. It works with any
 * object that has a `ping({ signal })` method resolving when the peer answers,
 * such as {@linkcode WebSocketClient}. Inside, the loop is `HeartbeatLoop`
 * (`heartbeat/loop.ts`), the same steps as a small state machine whose timeouts and sleeps wait on one
 * clock shared by every heartbeat in the process (`heartbeat/alarms.ts`), so that
 * thousands of beating connections cost one runtime timer. Normally you do not call it yourself:
 * pass `heartbeat` to {@linkcode connect} and the client runs it, stops it when
 * the connection closes, and closes the connection when it fails.
 *
 * This module does not touch `Deno.*`: it runs on any runtime with
 * `setTimeout` and `AbortSignal`.
 *
 * @example Run a heartbeat beside your own code
 * ```ts ignore
 * import { connect, heartbeat } from "@wsbeat/wsbeat";
 *
 * await using ws = await connect("ws://127.0.0.1:9000");
 * const stop = new AbortController();
 * const beating = heartbeat(ws, { interval: 10_000, timeout: 5_000, signal: stop.signal });
 * // ... your application code ...
 * stop.abort();
 * await beating;
 * ```
 *
 * @module
 */

import { TooSlowError } from "./util/errors.ts";
import { checkDelay } from "./util/checks.ts";
import { HeartbeatLoop, type Probe, type ProbeListener } from "./heartbeat/loop.ts";

/** Options for {@linkcode sleep}. */
export interface SleepOptions {
  /** Signal that cancels the sleep; it then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** Options for {@linkcode failAfter}. */
export interface FailAfterOptions {
  /**
   * Signal that cancels the work: the signal given to `fn` aborts with the
   * same reason, and the promise rejects with `signal.reason`.
   */
  signal?: AbortSignal;
  /**
   * Makes the error to reject with when the time is up.
   *
   * @default {(ms) => new TooSlowError(ms)}
   */
  error?: (ms: number) => Error;
}

/**
 * Resolves after `ms` milliseconds, like trio's `sleep`.
 *
 * `Infinity` sleeps until the signal aborts. The timer and the abort listener
 * are always removed, so a cancelled sleep leaves nothing behind.
 *
 * @param ms How long to sleep, in milliseconds (0 to 2^31-1, or `Infinity`).
 * @param options Options, such as the cancelling signal.
 * @returns A promise that resolves after `ms` ms.
 * @throws {TypeError} If `ms` is not a number.
 * @throws {RangeError} If `ms` is negative or too large for a timer.
 *
 * @example Sleep, then cancel
 * ```ts
 * import { sleep } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * await sleep(5);
 * const controller = new AbortController();
 * const sleeping = sleep(60_000, { signal: controller.signal });
 * controller.abort(new Error("stop"));
 * await assert.rejects(sleeping, { message: "stop" });
 * ```
 */
export function sleep(ms: number, options: SleepOptions = {}): Promise<void> {
  checkDelay("ms", ms);
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = ms === Infinity ? undefined : setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs `fn` and rejects with a {@linkcode TooSlowError} if it has not settled
 * within `ms` milliseconds, like trio's `fail_after`.
 *
 * `fn` receives a signal that aborts when the time is up (its reason is the
 * `TooSlowError`) or when `options.signal` aborts, so well-behaved work stops
 * at once. The returned promise settles as soon as the time is up; it does
 * not wait for `fn` to notice. The timer and listeners are always removed.
 *
 * @typeParam T The type `fn` resolves to.
 * @param ms The bound, in milliseconds (0 to 2^31-1, or `Infinity` for none).
 * @param fn The work; it should honour the signal it is given.
 * @param options Options, such as a cancelling signal.
 * @returns What `fn` resolves to.
 * @throws {TypeError} If `ms` is not a number or `fn` is not a function.
 * @throws {RangeError} If `ms` is negative or too large for a timer.
 * @throws {TooSlowError} If `fn` did not settle in time (as a rejection).
 *
 * @example Bound a slow operation
 * ```ts
 * import { failAfter, sleep, TooSlowError } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await failAfter(1_000, async () => 42), 42);
 * await assert.rejects(
 *   failAfter(10, (signal) => sleep(1_000, { signal })),
 *   TooSlowError,
 * );
 * ```
 */
export function failAfter<T>(
  ms: number,
  fn: (signal: AbortSignal) => Promise<T>,
  options: FailAfterOptions = {},
): Promise<T> {
  checkDelay("ms", ms);
  if (typeof fn !== "function") {
    throw new TypeError(`Cannot run fn as it is not a function: current value is ${String(fn)}`);
  }
  const { signal, error = (ms: number) => new TooSlowError(ms) } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const inner = new AbortController();
  return new Promise<T>((resolve, reject) => {
    const fail = (reason: unknown) => {
      inner.abort(reason);
      reject(reason);
    };
    const onAbort = () => fail(signal!.reason);
    const timer = ms === Infinity ? undefined : setTimeout(() => fail(error(ms)), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
    const cleanUp = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    let work: Promise<T>;
    try {
      work = fn(inner.signal);
    } catch (thrown) {
      cleanUp();
      reject(thrown);
      return;
    }
    Promise.resolve(work).then(
      (value) => {
        cleanUp();
        resolve(value);
      },
      (reason) => {
        cleanUp();
        reject(reason);
      },
    );
  });
}

/** Something {@linkcode heartbeat} can beat on, such as a {@linkcode WebSocketClient}. */
export interface Pingable {
  /**
   * Sends one probe and resolves with the round-trip time in milliseconds
   * when its reply arrives. Rejects with the signal's reason when the signal
   * aborts, and with an error of its own when the connection closes.
   */
  ping(options?: { signal?: AbortSignal }): Promise<number>;
}

/** Options for {@linkcode heartbeat}. */
export interface HeartbeatOptions {
  /**
   * Milliseconds to sleep after a reply before sending the next probe.
   *
   * 10 s stays well inside the common idle limits (30 s for the seed-000
   * server, 60 s for many proxies and load balancers) while costing one small
   * message per connection every ten seconds.
   *
   * @default {10000} ({@linkcode DEFAULT_INTERVAL})
   */
  interval?: number;
  /**
   * Milliseconds to wait for a probe's reply before failing with
   * {@linkcode TooSlowError}.
   *
   * 5 s is hundreds of round trips on any working network, so a slow reply
   * means a stuck peer rather than a slow link; a dead peer is detected
   * within `interval + timeout` (15 s by default).
   *
   * @default {5000} ({@linkcode DEFAULT_TIMEOUT})
   */
  timeout?: number;
  /** Signal that stops the heartbeat; {@linkcode heartbeat} then resolves. */
  signal?: AbortSignal;
  /**
   * Called with each round-trip time in milliseconds.
   */
  onBeat?: (rtt: number) => void;
  /**
   * Asked when a reply is late, before the beat fails. A promise means the
   * lateness is not the peer's: the reader was paused on purpose (a client
   * that stopped reading for a slow consumer cannot have read the reply).
   * The beat then does not fail: the heartbeat waits for the promise and
   * beats again with a fresh `timeout`. `undefined` fails the beat.
   *
   * @default {undefined}
   */
  excuseLate?: () => Promise<void> | undefined;
}

/**
 * Default {@linkcode HeartbeatOptions.interval} and of the client's
 * `heartbeat.interval`, in milliseconds.
 */
export const DEFAULT_INTERVAL = 10_000;
/**
 * Default {@linkcode HeartbeatOptions.timeout} and of the client's
 * `heartbeat.timeout`, in milliseconds.
 */
export const DEFAULT_TIMEOUT = 5_000;

/**
 * Keeps a connection alive and proves the peer is: sends a probe, fails after
 * `timeout` unless its reply arrives, then sleeps `interval`, until the
 * signal aborts.
 *
 * The first probe goes out at once, so a dead connection is found early and
 * the first round-trip time is known. The timeout and the interval are
 * measured on one shared clock for every heartbeat in the process, rounded up
 * to a 4 ms grid, so thousands of connections cost one runtime timer (see
 * {@linkcode HeartbeatLoop}); a bound is never cut short.
 *
 * @param ws What to beat on: anything with `ping({ signal })`.
 * @param options Interval, timeout and the stopping signal.
 * @returns A promise that resolves when `options.signal` aborts.
 * @throws {TypeError} If `ws` has no `ping` method, or a bound is not a number.
 * @throws {RangeError} If `interval` or `timeout` is negative or too large.
 * @throws {TooSlowError} When a reply is late (as a rejection); its
 *   `timeout` is the bound that was missed.
 * @throws {ConnectionClosedError} When the connection closes (as a rejection,
 *   from `ws.ping`).
 *
 * @example Beat on a client you run yourself
 * ```ts ignore
 * import { connect, heartbeat } from "@wsbeat/wsbeat";
 *
 * await using ws = await connect("ws://127.0.0.1:9000");
 * const stop = new AbortController();
 * // Rejects with TooSlowError if the server stops answering "ping".
 * const beating = heartbeat(ws, { interval: 1_000, timeout: 500, signal: stop.signal });
 * ```
 */
export async function heartbeat(ws: Pingable, options: HeartbeatOptions = {}): Promise<void> {
  if (typeof ws?.ping !== "function") {
    throw new TypeError(
      `Cannot beat on ws as it has no ping() method: current value is ${String(ws)}`,
    );
  }
  const settings = {
    interval: checkDelay("interval", options.interval ?? DEFAULT_INTERVAL),
    timeout: checkDelay("timeout", options.timeout ?? DEFAULT_TIMEOUT),
    onBeat: options.onBeat,
    excuseLate: options.excuseLate,
  };
  const { signal } = options;
  if (signal?.aborted) return;
  const probe = (listener: ProbeListener): Probe => {
    const abandon = new AbortController();
    const sent: Probe = { abandon: (reason) => abandon.abort(reason) };
    // A ping() that throws fails the loop at once; its promise reports when it settles.
    Promise.resolve(ws.ping({ signal: abandon.signal })).then(
      (rtt) => listener.replied(sent, rtt),
      (error) => listener.failed(sent, error),
    );
    return sent;
  };
  const beating = new HeartbeatLoop(probe, settings);
  const onAbort = () => beating.stop(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await beating.done;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}
