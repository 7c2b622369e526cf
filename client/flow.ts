/**
 * The client layer: flow control in both directions.
 *
 * - Receiving: when the application falls behind (its queue is full), the
 *   client stops reading from the socket, so TCP flow control slows the peer
 *   and nothing is dropped. While reading is paused the peer's pongs cannot
 *   be read either, so a late heartbeat reply is excused, not blamed on the
 *   peer: the beat waits until reading resumes, then starts again with a
 *   fresh timeout.
 * - Sending: `drain()` lets a producer wait while more than the high-water
 *   mark is waiting to be written.
 *
 * @module
 */

import type { Transport } from "../transport/transport.ts";

/** How often `drain()` looks at a native socket's `bufferedAmount`, which has no event. */
const NATIVE_DRAIN_POLL = 10;

/** The flow-control state of one connection: see the module doc. */
export class Flow {
  #transport: Transport;
  #highWaterMark: number;
  #paused = false;
  #pauses = 0;
  #resumedAt = -Infinity;
  #resumeWaiters: (() => void)[] = [];
  #drainChecks: (() => void)[] = [];

  /**
   * Creates the flow state of one connection.
   *
   * @param transport The transport to pause and resume.
   * @param highWaterMark The buffered bytes above which `drain()` waits.
   */
  constructor(transport: Transport, highWaterMark: number) {
    this.#transport = transport;
    this.#highWaterMark = highWaterMark;
  }

  /** Whether reading is paused now. */
  get paused(): boolean {
    return this.#paused;
  }

  /** How many times reading was paused. */
  get pauses(): number {
    return this.#pauses;
  }

  /** Stops reading; the caller checked `transport.canPause`. */
  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#pauses++;
    this.#transport.pause();
  }

  /** Reads again, and lets excused heartbeat beats go on. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#resumedAt = performance.now();
    this.#transport.resume();
    for (const resume of this.#resumeWaiters.splice(0)) resume();
  }

  /**
   * For the heartbeat's `excuseLate`: a promise while reading is paused (or
   * was, within the last `timeout` ms), since the reply cannot have been read.
   *
   * @param timeout The heartbeat's timeout, in milliseconds.
   * @returns When to beat again, or `undefined` to fail the beat.
   */
  excuseLate(timeout: number): Promise<void> | undefined {
    if (this.#paused) return new Promise((resolve) => this.#resumeWaiters.push(resolve));
    return performance.now() - this.#resumedAt < timeout ? Promise.resolve() : undefined;
  }

  /**
   * Resolves once at most the high-water mark is waiting to be written.
   *
   * @param ended The error to reject with once the connection has ended, if it has.
   * @param signal Abandons the wait, rejecting with its reason.
   * @returns A promise that settles as described.
   */
  drain(ended: () => Error | undefined, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const end = ended();
    if (end) return Promise.reject(end);
    if (this.#transport.bufferedAmount <= this.#highWaterMark) return Promise.resolve();
    const poll = !this.#transport.canPause; // the native socket has no drain event
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (error?: Error) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const i = this.#drainChecks.indexOf(check);
        if (i >= 0) this.#drainChecks.splice(i, 1);
        if (error) reject(error);
        else resolve();
      };
      const onAbort = () => done(signal!.reason);
      const check = () => {
        const end = ended();
        if (end) done(end);
        else if (this.#transport.bufferedAmount <= this.#highWaterMark) done();
        else if (poll) timer = setTimeout(check, NATIVE_DRAIN_POLL);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#drainChecks.push(check);
      if (poll) timer = setTimeout(check, NATIVE_DRAIN_POLL);
    });
  }

  /** Re-checks waiting `drain()` calls: after a write, and when the connection ends. */
  written(): void {
    if (this.#drainChecks.length === 0) return; // after every write: no copy when none waits
    for (const check of [...this.#drainChecks]) check();
  }

  /** Releases every waiter when the connection ends. */
  end(): void {
    this.#paused = false;
    for (const resume of this.#resumeWaiters.splice(0)) resume();
    this.written();
  }
}
