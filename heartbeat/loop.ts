/**
 * The heartbeat layer: the heartbeat's loop itself, {@linkcode HeartbeatLoop}:
 * trio's `fail_after(timeout): ping; sleep(interval)` as a small state
 * machine on the shared clock of `heartbeat/alarms.ts`. `heartbeat()` in
 * `heartbeat.ts` runs it for any `Pingable`; the client runs it on its own
 * probes.
 *
 * @module
 */

import { type Alarm, setAlarm } from "./alarms.ts";
import { TooSlowError } from "../util/errors.ts";

/** One probe in flight, as {@linkcode HeartbeatLoop} sends it. */
export interface Probe {
  /** Gives up on the reply: its listener hears nothing more of this probe. */
  abandon(reason: unknown): void;
}

/**
 * Where a probe reports how it ended: the loop that sent it. A probe calls
 * one of these at most once, and never before the send that made it has
 * returned. (Calls, not promises: a beat then allocates no promise and
 * takes no extra microtask turn, for thousands of connections a second.)
 */
export interface ProbeListener {
  /** The reply came, `rtt` milliseconds after the probe was sent. */
  replied(probe: Probe, rtt: number): void;
  /** No reply will come: the connection ended, say. */
  failed(probe: Probe, error: unknown): void;
}

/**
 * Sends one probe, which reports to `listener`; throws when it cannot be
 * sent (the loop then fails with what it threw).
 */
export type SendProbe = (listener: ProbeListener) => Probe;

/** What {@linkcode HeartbeatLoop} needs to know, already checked. */
export interface HeartbeatSettings {
  /** Milliseconds to sleep after a reply (`Infinity`: one beat only). */
  interval: number;
  /** Milliseconds to wait for a reply (`Infinity`: for ever). */
  timeout: number;
  /** Called with each round-trip time; if it throws, the heartbeat fails with that. */
  onBeat?: (rtt: number) => void;
  /** See `HeartbeatOptions.excuseLate` in `heartbeat.ts`. */
  excuseLate?: () => Promise<void> | undefined;
  /**
   * Called when a reply's deadline passes, before the loop decides: resolves
   * once the owner has taken in what already arrived (a blocked event loop
   * leaves replies unread in the socket). A reply that comes meanwhile
   * counts; the loop decides only after the promise settles.
   */
  catchUp?: () => Promise<void>;
  /**
   * Called with how many milliseconds after its time each of the loop's
   * alarms fired: the event loop's lag, as the heartbeat saw it.
   */
  onLag?: (ms: number) => void;
}

/**
 * The heartbeat itself, for an owner that can send a probe and abandon it
 * without a signal (the client does; `heartbeat()` wraps any
 * `Pingable` in it): send a probe at once, fail after `timeout`
 * unless its reply comes (the probe is then abandoned), sleep `interval`,
 * and again, until {@linkcode HeartbeatLoop.stop}. A late reply the owner
 * excuses (`excuseLate`) is abandoned, and the beat is tried again once the
 * excuse's promise resolves.
 *
 * It is trio's loop written as a small state machine on the shared clock
 * (`heartbeat/alarms.ts`): between beats a connection keeps this object and one
 * alarm, a few hundred bytes, and no runtime timer, listener or suspended
 * async function of its own. Its owner ends it: `stop()` settles `done` at
 * once, abandons the probe in flight and cancels the alarm, so nothing of it
 * is left behind.
 *
 * @example A probe answered at once, three beats
 * ```ts
 * import { HeartbeatLoop } from "./loop.ts";
 * import assert from "node:assert/strict";
 *
 * let beats = 0;
 * const loop: HeartbeatLoop = new HeartbeatLoop(
 *   (listener) => {
 *     const probe = { abandon() {} };
 *     queueMicrotask(() => listener.replied(probe, 1)); // the peer answers
 *     return probe;
 *   },
 *   { interval: 1, timeout: 100, onBeat: () => ++beats === 3 && loop.stop("done") },
 * );
 * await loop.done;
 * assert.equal(beats, 3);
 * ```
 */
export class HeartbeatLoop implements ProbeListener {
  /** Resolves when the loop is stopped; rejects with what failed it. */
  readonly done: Promise<void>;
  #probe: SendProbe;
  #settings: HeartbeatSettings;
  #resolve!: () => void;
  #reject!: (error: unknown) => void;
  #ended = false;
  #reason: unknown; // what stopped or failed it
  #sent: Probe | undefined; // the probe awaiting its reply
  #alarm: Alarm | undefined; // the reply's deadline, or the end of the sleep
  #caughtUp = false; // this beat's deadline passed and the owner took in what had arrived

  /**
   * Starts beating: the first probe is sent before the constructor returns.
   *
   * @param probe Sends one probe.
   * @param settings Interval, timeout and callbacks.
   */
  constructor(probe: SendProbe, settings: HeartbeatSettings) {
    this.#probe = probe;
    this.#settings = settings;
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#beat();
  }

  /** Whether the loop has ended: stopped or failed. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Ends the loop: the probe in flight is abandoned with `reason`, the alarm
   * cancelled, and `done` resolves. Calling it again, or after a failure,
   * does nothing.
   *
   * @param reason What the probe in flight is abandoned with.
   */
  stop(reason: unknown): void {
    if (this.#ended) return;
    this.#finish(reason);
    this.#resolve();
  }

  #beat = (): void => {
    if (this.#alarm) this.#lag(this.#alarm);
    this.#alarm = undefined;
    this.#caughtUp = false;
    if (this.#ended) return;
    // The deadline before the send, so that nothing runs between the send and the loop being
    // ready for the reply. (Starting a timer may run queued microtasks under `deno test`.)
    const { timeout } = this.#settings;
    if (timeout !== Infinity) this.#alarm = setAlarm(timeout, this.#late);
    let sent: Probe;
    try {
      sent = this.#probe(this);
    } catch (error) {
      this.#fail(error);
      return;
    }
    if (this.#ended) { // the probe stopped the loop (say, by closing the connection)
      sent.abandon(this.#reason);
      return;
    }
    this.#sent = sent;
  };

  /**
   * A probe of this loop got its reply (the loop is its probes' listener; a
   * probe it gave up on is ignored).
   *
   * @param sent The probe.
   * @param rtt Its round trip in milliseconds.
   */
  replied(sent: Probe, rtt: number): void {
    if (sent !== this.#sent) return; // abandoned: late, or stopped
    this.#sent = undefined;
    this.#alarm?.cancel();
    this.#alarm = undefined;
    try {
      this.#settings.onBeat?.(rtt);
    } catch (error) {
      this.#fail(error);
      return;
    }
    const { interval } = this.#settings;
    if (!this.#ended && interval !== Infinity) this.#alarm = setAlarm(interval, this.#beat);
  }

  /**
   * A probe of this loop failed: the loop fails with `error`, unless it had
   * given up on that probe.
   *
   * @param sent The probe.
   * @param error Why no reply will come.
   */
  failed(sent: Probe, error: unknown): void {
    if (sent === this.#sent) this.#fail(error);
  }

  #late = (): void => {
    if (this.#alarm) this.#lag(this.#alarm);
    this.#alarm = undefined;
    const { catchUp } = this.#settings;
    if (catchUp !== undefined && !this.#caughtUp) {
      // Take in what already arrived before blaming the peer: the reply may sit unread.
      this.#caughtUp = true;
      const probe = this.#sent;
      catchUp().then(
        () => this.#sent === probe && !this.#ended && this.#late(),
        (thrown) => this.#fail(thrown),
      );
      return;
    }
    const sent = this.#sent!;
    this.#sent = undefined;
    const { timeout, excuseLate } = this.#settings;
    const error = new TooSlowError(
      timeout,
      `Heartbeat reply not received within ${timeout} ms (timeout); the peer is not responding`,
    );
    sent.abandon(error);
    let excused: Promise<void> | undefined;
    try {
      excused = excuseLate?.();
    } catch (thrown) {
      this.#fail(thrown);
      return;
    }
    if (!excused) {
      this.#fail(error);
      return;
    }
    excused.then(this.#beat, (thrown) => this.#ended || this.#fail(thrown));
  };

  #lag(alarm: Alarm): void {
    const { onLag } = this.#settings;
    if (onLag !== undefined) onLag(Math.max(0, performance.now() - alarm.at));
  }

  #fail(error: unknown): void {
    if (this.#ended) return;
    this.#finish(error);
    this.#reject(error);
  }

  #finish(reason: unknown): void {
    this.#ended = true;
    this.#reason = reason;
    this.#alarm?.cancel();
    this.#alarm = undefined;
    const sent = this.#sent;
    this.#sent = undefined;
    sent?.abandon(reason);
  }
}
