/**
 * The client layer: the stale-feed watchdog behind
 * {@linkcode ClientOptions.staleAfter}. A heartbeat proves the peer answers;
 * it cannot prove the feed still flows. An exchange's gateway may keep
 * answering pings while the subscription behind it has died, so a client
 * that only checks liveness waits forever for prices that never come. The
 * watchdog closes a connection on which no application message has arrived
 * for `staleAfter` ms, with a {@linkcode StaleFeedError}, so that
 * `reconnecting()` connects again and renews the subscription.
 *
 * It costs one timer per connection, re-armed only when it fires: a message
 * only records the time it arrived.
 *
 * This module does not touch `Deno.*`.
 *
 * @module
 */

/**
 * The connection was closed because no application message arrived for
 * `staleAfter` ms, though the connection itself may have been alive (pings
 * answered). Found as `CloseInfo.error`, and as the `cause` of the
 * `ConnectionClosedError` that iteration rejects with; `reconnecting()`
 * retries it.
 *
 * @example Tell a stale feed from a dead peer
 * ```ts
 * import { type CloseInfo, StaleFeedError, TooSlowError } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * function why(info: CloseInfo): string {
 *   if (info.error instanceof StaleFeedError) return "the feed went quiet";
 *   if (info.error instanceof TooSlowError) return "the peer stopped answering";
 *   return `closed with ${info.code}`;
 * }
 * const error = new StaleFeedError(30_000);
 * assert.equal(why({ code: 1006, reason: "", wasClean: false, initiator: "client", error }), "the feed went quiet");
 * assert.equal(error.message, "No application message arrived for 30000 ms (staleAfter): the feed went quiet");
 * ```
 */
export class StaleFeedError extends Error {
  /** The bound that was reached, in milliseconds (the `staleAfter` option). */
  readonly staleAfter: number;

  /**
   * Constructs a new instance.
   *
   * @param staleAfter The bound that was reached, in milliseconds.
   * @param options Standard error options, such as `cause`.
   */
  constructor(staleAfter: number, options?: ErrorOptions) {
    super(
      `No application message arrived for ${staleAfter} ms (staleAfter): the feed went quiet`,
      options,
    );
    this.name = "StaleFeedError";
    this.staleAfter = staleAfter;
  }
}

/**
 * The watchdog of one connection: created when it opens, told of each
 * application message with {@linkcode StaleWatch.touch}, stopped when it
 * ends. Internal: not exported from `mod.ts`.
 */
export class StaleWatch {
  #ms: number;
  #last = performance.now();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #excused: () => boolean;
  #onStale: () => void;

  /**
   * Starts watching.
   *
   * @param ms The longest silence allowed, in milliseconds.
   * @param excused Whether silence is excused now: while reading is paused
   *   for a slow consumer, no message can arrive.
   * @param onStale Called once when the feed has been silent for `ms`.
   */
  constructor(ms: number, excused: () => boolean, onStale: () => void) {
    this.#ms = ms;
    this.#excused = excused;
    this.#onStale = onStale;
    this.#arm(ms);
  }

  /** An application message arrived. */
  touch(): void {
    this.#last = performance.now();
  }

  /** Stops the watchdog; it never fires after this. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(this.#check, ms);
  }

  #check = (): void => {
    const now = performance.now();
    if (this.#excused()) this.#last = now;
    const silent = now - this.#last;
    if (silent >= this.#ms) {
      this.#timer = undefined;
      this.#onStale();
      return;
    }
    this.#arm(this.#ms - silent);
  };
}
