/**
 * The client layer: the probes that prove a peer alive, and the
 * round-trip times they measure. Two kinds share one sequence:
 *
 * - a **ping frame** whose payload is the probe's sequence number in ASCII;
 *   only the pong with the same payload answers it, and unsolicited pongs are
 *   ignored (RFC 6455 section 5.5.3 allows them);
 * - an **application probe**: a message (`"ping"` by default) answered by
 *   whatever `reply` matches (see `ProbeOptions`).
 *
 * @module
 */

import type { LatencyStats, Message, ProbeOptions } from "./options.ts";
import type { Probe, ProbeListener } from "../heartbeat/loop.ts";

/** A probe whose reply is awaited as a promise: what `ping()` returns. */
export interface AwaitedProbe extends Probe {
  /** Resolves with the round-trip time in milliseconds; rejects when abandoned or failed. */
  reply: Promise<number>;
}

/** Round trips kept for the latency figures: enough for a p99, 400 bytes a connection. */
const LATENCY_WINDOW = 100;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether a received message is the same as a sent one (text to text, bytes to bytes). */
function sameMessage(sent: string | Uint8Array, received: Message): boolean {
  if (typeof sent === "string") return received === sent;
  return typeof received !== "string" && sameBytes(sent, received);
}

const digits = new Uint8Array(16);

/** A ping payload: `seq` in ASCII digits, a view of a scratch buffer (the frame copies it). */
function seqBytes(seq: number): Uint8Array {
  let at = digits.length;
  do {
    digits[--at] = 0x30 + (seq % 10);
    seq = Math.floor(seq / 10);
  } while (seq > 0);
  return digits.subarray(at);
}

/** The sequence number a pong's payload spells, as {@linkcode seqBytes} wrote it, or -1. */
function parseSeq(payload: Uint8Array): number {
  const n = payload.byteLength;
  if (n === 0 || n > 15 || (payload[0] === 0x30 && n > 1)) return -1;
  let seq = 0;
  for (let i = 0; i < n; i++) {
    const d = payload[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    seq = seq * 10 + d;
  }
  return seq;
}

/** How a {@linkcode Probes} sends: set by the client. */
export interface ProbeSender {
  /** Sends an application message; throws if the connection is not open. */
  send(message: string | Uint8Array): void;
  /** Sends a ping frame; throws if the connection is not open. */
  ping(payload: Uint8Array): void;
}

/** The outstanding probes of one connection, and its round-trip times. */
export class Probes {
  #message: NonNullable<ProbeOptions["message"]>;
  #reply: ProbeOptions["reply"];
  #sender: ProbeSender;
  // Outstanding probes, oldest first; arrays since there are rarely more than one.
  #frames: Outstanding[] | undefined; // ping frames (the payload is the sequence number)
  #messages: Outstanding[] | undefined; // application probes
  #seq = 0;
  #rtts: Float32Array | undefined; // allocated on the first round trip
  #rttCount = 0;
  #lastRtt = 0; // exactly, as reported; the window keeps single precision

  /**
   * Creates the probe state of one connection.
   *
   * @param options The application probe and its reply.
   * @param sender How to send probes.
   */
  constructor(options: ProbeOptions, sender: ProbeSender) {
    this.#message = options.message ?? "ping";
    this.#reply = options.reply;
    this.#sender = sender;
  }

  /** Whether `reply` was set: replies then never reach the application. */
  get hasReply(): boolean {
    return this.#reply !== undefined;
  }

  /** Whether any application probe awaits its reply. */
  get awaitingMessage(): boolean {
    return (this.#messages?.length ?? 0) > 0;
  }

  /**
   * Sends a ping frame, for a heartbeat: `listener` hears of it when the pong
   * with the same payload comes, or when the connection ends.
   *
   * @param listener The heartbeat loop.
   * @returns The probe, to abandon.
   * @throws {Error} When it cannot be sent.
   */
  pingFrame(listener: ProbeListener): Probe {
    const seq = ++this.#seq;
    return this.#track(seq, this.#frames ??= [], () => this.#sender.ping(seqBytes(seq)), listener);
  }

  /**
   * Sends an application probe, for a heartbeat: `listener` hears of it when
   * the reply message comes, or when the connection ends.
   *
   * @param listener The heartbeat loop.
   * @returns The probe, to abandon.
   * @throws {Error} When it cannot be sent.
   */
  probeMessage(listener: ProbeListener): Probe {
    const seq = ++this.#seq;
    const message = typeof this.#message === "function" ? this.#message(seq) : this.#message;
    return this.#track(
      seq,
      this.#messages ??= [],
      () => this.#sender.send(message),
      listener,
      message,
    );
  }

  /**
   * Sends one probe whose reply is a promise (for `ping()`): a ping frame, or
   * an application probe when `application`.
   *
   * @param application Whether to send an application probe.
   * @returns The probe; its `reply` rejects if it could not be sent.
   */
  awaited(application: boolean): AwaitedProbe {
    const seq = ++this.#seq;
    if (application) {
      const message = typeof this.#message === "function" ? this.#message(seq) : this.#message;
      return this.#track(
        seq,
        this.#messages ??= [],
        () => this.#sender.send(message),
        undefined,
        message,
      );
    }
    return this.#track(seq, this.#frames ??= [], () => this.#sender.ping(seqBytes(seq)));
  }

  /**
   * Answers the ping frame whose payload this pong carries, if any.
   *
   * @param payload The pong's payload.
   */
  onPong(payload: Uint8Array): void {
    const frames = this.#frames;
    if (!frames?.length) return;
    const seq = parseSeq(payload);
    for (const probe of frames) {
      if (probe.seq === seq) return probe.resolve();
    }
  }

  /**
   * Settles the application probes `message` answers. Without `reply`, the
   * echo of a probe (a message equal to one sent and still awaited) answers
   * it and is kept from the application; any other message proves the peer
   * alive too, answers every awaited probe, and is delivered.
   *
   * @param message A received message.
   * @returns Whether the message is heartbeat traffic, kept from the application.
   */
  onMessage(message: Message): boolean {
    const reply = this.#reply;
    const pending = this.#messages;
    if (reply === undefined) {
      if (!pending) return false;
      for (const probe of pending) {
        if (probe.sent !== undefined && sameMessage(probe.sent, message)) {
          probe.resolve();
          return true; // the echo of our probe: heartbeat traffic
        }
      }
      for (const probe of [...pending]) probe.resolve();
      return false;
    }
    if (typeof reply === "function") {
      if (!pending) return false;
      for (const probe of pending) {
        let match = false;
        try {
          match = reply(message, probe.seq);
        } catch {
          match = false;
        }
        if (match) {
          probe.resolve();
          return true;
        }
      }
      return false;
    }
    const match = typeof reply === "string"
      ? message === reply
      : typeof message !== "string" && sameBytes(message, reply);
    if (!match) return false;
    pending?.[0]?.resolve();
    return true;
  }

  /**
   * Rejects every outstanding probe, when the connection ends.
   *
   * @param error What they reject with.
   */
  rejectAll(error: unknown): void {
    for (const list of [this.#frames, this.#messages]) {
      if (list) { for (const probe of [...list]) probe.fail(error); }
    }
  }

  /** The round-trip figures over the window, or `undefined` before the first. */
  get latency(): LatencyStats | undefined {
    const count = this.#rttCount;
    if (!this.#rtts || count === 0) return undefined;
    const samples = Math.min(count, LATENCY_WINDOW);
    const sorted = this.#rtts.slice(0, samples).sort();
    let sum = 0;
    for (const rtt of sorted) sum += rtt;
    return {
      last: this.#lastRtt,
      min: sorted[0]!,
      avg: sum / samples,
      p99: sorted[Math.min(samples - 1, Math.ceil(samples * 0.99) - 1)]!,
      samples,
    };
  }

  #track(
    seq: number,
    list: Outstanding[],
    send: () => void,
    listener?: undefined,
    sent?: string | Uint8Array,
  ): AwaitedProbe;
  #track(
    seq: number,
    list: Outstanding[],
    send: () => void,
    listener: ProbeListener,
    sent?: string | Uint8Array,
  ): Probe;
  #track(
    seq: number,
    list: Outstanding[],
    send: () => void,
    listener?: ProbeListener,
    sent?: string | Uint8Array,
  ): Probe {
    const probe = new Outstanding(seq, list, this, listener, sent);
    list.push(probe);
    try {
      send();
    } catch (error) {
      if (listener) {
        probe.abandon(error); // out of the list; the loop hears it as the throw
        throw error;
      }
      probe.fail(error);
    }
    return probe;
  }

  /**
   * Forgets a list of outstanding probes that emptied, so that a connection
   * between beats keeps no array (the next probe makes a new one).
   *
   * @param list The list.
   */
  emptied(list: Outstanding[]): void {
    if (this.#frames === list) this.#frames = undefined;
    else if (this.#messages === list) this.#messages = undefined;
  }

  /**
   * Records a round-trip time in the window.
   *
   * @param rtt Milliseconds.
   */
  record(rtt: number): void {
    this.#rtts ??= new Float32Array(LATENCY_WINDOW);
    this.#rtts[this.#rttCount++ % LATENCY_WINDOW] = rtt;
    this.#lastRtt = rtt;
  }
}

/**
 * A probe awaiting its reply, in its connection's list of them until
 * settled: it reports to its listener (a heartbeat), or else settles its
 * `reply` promise (`ping()`).
 */
class Outstanding implements Probe {
  readonly seq: number;
  /** The application message this probe sent, if it is one: its echo answers it. */
  readonly sent: string | Uint8Array | undefined;
  readonly reply: Promise<number> | undefined;
  #sentAt = performance.now();
  #list: Outstanding[] | undefined;
  #probes: Probes;
  #listener: ProbeListener | undefined;
  #resolve: ((rtt: number) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;

  constructor(
    seq: number,
    list: Outstanding[],
    probes: Probes,
    listener?: ProbeListener,
    sent?: string | Uint8Array,
  ) {
    this.seq = seq;
    this.sent = sent;
    this.#list = list;
    this.#probes = probes;
    if (listener) this.#listener = listener;
    else {
      this.reply = new Promise((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
      });
    }
  }

  /** The reply came: record the round trip and report it. */
  resolve(): void {
    if (!this.#leave()) return;
    const rtt = performance.now() - this.#sentAt;
    this.#probes.record(rtt);
    if (this.#listener) this.#listener.replied(this, rtt);
    else this.#resolve!(rtt);
  }

  /** No reply will come (the connection ended, or the send failed): report `error`. */
  fail(error: unknown): void {
    if (!this.#leave()) return;
    if (this.#listener) this.#listener.failed(this, error);
    else this.#reject!(error);
  }

  /** Its owner gives up: `reply` rejects with `reason`; a listener hears nothing more. */
  abandon(reason: unknown): void {
    if (this.#leave() && !this.#listener) this.#reject!(reason);
  }

  /** Leaves the list; false if it had already. */
  #leave(): boolean {
    const list = this.#list;
    if (!list) return false;
    this.#list = undefined;
    const i = list.indexOf(this);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#probes.emptied(list);
    return true;
  }
}

/**
 * Waits for a probe's reply until `signal` aborts: the probe is then
 * abandoned with the signal's reason.
 *
 * @param probe The probe.
 * @param signal Abandons it.
 * @returns The round-trip time in milliseconds.
 */
export function untilAborted(
  probe: AwaitedProbe,
  signal: AbortSignal | undefined,
): Promise<number> {
  if (!signal) return probe.reply;
  if (signal.aborted) {
    probe.abandon(signal.reason);
    return probe.reply;
  }
  const onAbort = () => probe.abandon(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  const settle = () => signal.removeEventListener("abort", onAbort);
  probe.reply.then(settle, settle);
  return probe.reply;
}
