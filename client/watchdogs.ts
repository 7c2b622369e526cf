/**
 * The client layer: the watchdogs a client runs while its connection is
 * open, in one scope: the heartbeat (`heartbeat/loop.ts`) with its catch-up
 * before a late reply is blamed on the peer, and the stale-feed watch
 * (`staleAfter`). The client starts them when the connection opens and stops
 * them, all at once, as soon as the connection starts closing, so that
 * neither can become the cause of a close that already has one.
 *
 * @module
 */

import type { CheckedHeartbeat } from "./options.ts";
import { HeartbeatLoop, type Probe, type ProbeListener } from "../heartbeat/loop.ts";
import { StaleFeedError, StaleWatch } from "./stale.ts";

/**
 * How many rounds a heartbeat's catch-up may take while each brings input in
 * (see {@linkcode Watchdogs}): enough for a reply behind a few megabytes of
 * queued messages, and a bound for a peer that streams data but never
 * answers.
 */
const CATCH_UP_ROUNDS = 32;

/** What the watchdogs need from their client. */
export interface WatchdogHooks {
  /** Sends one probe: an application message when `application`, else a ping frame. */
  probe(application: boolean, listener: ProbeListener): Probe;
  /** The heartbeat's excuse while reading is paused (see `client/flow.ts`). */
  excuseLate(timeout: number): Promise<void> | undefined;
  /** Whether reading is paused because the application fell behind. */
  readPaused(): boolean;
  /** A count that grows with every input taken in: messages, pongs, socket reads. */
  progress(): number;
  /** A watchdog found the peer gone: the client ends the connection with `error`. */
  fail(initiator: "client" | "heartbeat", error: Error): void;
}

/** What the watchdogs watch, already checked (from the client's options). */
export interface WatchdogSettings {
  /** The heartbeat's settings, defaults filled in, or `undefined` for none. */
  heartbeat: CheckedHeartbeat | undefined;
  /** Whether the transport sends ping frames; otherwise probes are application messages. */
  canPing: boolean;
  /** Milliseconds without a message before the feed is stale (`Infinity`: never). */
  staleAfter: number;
}

/**
 * A connection's watchdogs: started once it is open, stopped once it starts
 * closing or ends. A beat whose deadline passes first lets the transport take
 * in what has already arrived (a turn of the event loop for pending reads,
 * again while each turn brought input in, at most 32 turns and `timeout` ms),
 * and fails only if the reply is still missing: a blocked event loop is not
 * a dead peer. How late the heartbeat's timers fired is kept as `lag`.
 */
export class Watchdogs {
  #hooks: WatchdogHooks;
  #beats: HeartbeatLoop | undefined;
  #stale: StaleWatch | undefined;
  #stopped = false;
  #lag = 0;
  /** The timer of a catch-up's turn, cleared when the watchdogs stop. */
  #turn: { timer: ReturnType<typeof setTimeout>; done: () => void } | undefined;

  /**
   * Creates a connection's watchdogs, not yet started.
   *
   * @param hooks What they need from the client.
   */
  constructor(hooks: WatchdogHooks) {
    this.#hooks = hooks;
  }

  /** The longest a heartbeat timer fired after its time, in milliseconds. */
  get lag(): number {
    return this.#lag;
  }

  /**
   * Starts the heartbeat and the stale watch, as `settings` ask.
   *
   * @param settings Which watchdogs to run.
   */
  start(settings: WatchdogSettings): void {
    if (this.#stopped) return;
    const beat = settings.heartbeat;
    if (beat) this.#startHeartbeat(beat, settings.canPing);
    const staleAfter = settings.staleAfter;
    if (staleAfter !== Infinity) {
      this.#stale = new StaleWatch(
        staleAfter,
        () => this.#hooks.readPaused(),
        () => this.#hooks.fail("client", new StaleFeedError(staleAfter)),
      );
    }
  }

  /** A message reached the application: the feed is not stale. */
  touch(): void {
    this.#stale?.touch();
  }

  /**
   * Stops every watchdog: the probe in flight is abandoned with `reason`, and
   * nothing of them is left (no timer, no pending turn).
   *
   * @param reason What the probe in flight is abandoned with.
   */
  stop(reason: unknown): void {
    this.#stopped = true;
    this.#stale?.stop();
    this.#beats?.stop(reason);
    const turn = this.#turn;
    if (turn) {
      clearTimeout(turn.timer);
      turn.done();
    }
  }

  #startHeartbeat(beat: CheckedHeartbeat, canPing: boolean): void {
    const application = !canPing || beat.message !== undefined || beat.reply !== undefined;
    const { timeout } = beat;
    this.#beats = new HeartbeatLoop((listener) => this.#hooks.probe(application, listener), {
      interval: beat.interval,
      timeout,
      onBeat: beat.onBeat,
      excuseLate: () => this.#hooks.excuseLate(timeout),
      catchUp: () => this.#catchUp(timeout),
      onLag: (ms) => {
        if (ms > this.#lag) this.#lag = ms;
      },
    });
    this.#beats.done.catch((error) => {
      // Stopped first (the connection is closing): the close has its cause already.
      if (!this.#stopped) this.#hooks.fail("heartbeat", error);
    });
  }

  /** Two timer turns, again while each brought input in: see the class doc. */
  async #catchUp(timeout: number): Promise<void> {
    const until = performance.now() + timeout;
    for (let round = 0; round < CATCH_UP_ROUNDS && !this.#stopped; round++) {
      const before = this.#hooks.progress();
      await this.#nextTurn();
      await this.#nextTurn();
      if (this.#hooks.progress() === before || performance.now() > until) return;
    }
  }

  /** Resolves after one timer turn of the event loop, or at once when stopped. */
  #nextTurn(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#turn = undefined;
        resolve();
      };
      this.#turn = { timer: setTimeout(done, 0), done };
    });
  }
}
