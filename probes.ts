/**
 * Layer 3, the client: the probes that prove a peer alive, and the
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

import type { LatencyStats, Message, ProbeOptions } from "./client_options.ts";

/** Round trips kept for the latency figures: enough for a p99, 800 bytes a connection. */
const LATENCY_WINDOW = 100;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Pending {
  seq: number;
  sentAt: number;
  resolve(): void;
  reject(error: unknown): void;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
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
  #frames: Map<string, Pending> | undefined; // ping frames, by payload
  #messages: Map<number, Pending> | undefined; // application probes, by sequence
  #seq = 0;
  #rtts: Float64Array | undefined; // allocated on the first round trip
  #rttCount = 0;

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
    return (this.#messages?.size ?? 0) > 0;
  }

  /**
   * Sends a ping frame and resolves with the round trip when its pong comes.
   *
   * @param signal Abandons the wait (rejects with its reason).
   * @returns The round-trip time in milliseconds.
   */
  pingFrame(signal: AbortSignal | undefined): Promise<number> {
    const seq = ++this.#seq;
    const payload = String(seq);
    const frames = this.#frames ??= new Map();
    return this.#track(seq, frames, payload, signal, () => {
      this.#sender.ping(encoder.encode(payload));
    });
  }

  /**
   * Sends an application probe and resolves with the round trip when its
   * reply comes.
   *
   * @param signal Abandons the wait (rejects with its reason).
   * @returns The round-trip time in milliseconds.
   */
  probeMessage(signal: AbortSignal | undefined): Promise<number> {
    const seq = ++this.#seq;
    const messages = this.#messages ??= new Map();
    const message = typeof this.#message === "function" ? this.#message(seq) : this.#message;
    return this.#track(seq, messages, seq, signal, () => this.#sender.send(message));
  }

  /**
   * Answers the ping frame whose payload this pong carries, if any.
   *
   * @param payload The pong's payload.
   */
  onPong(payload: Uint8Array): void {
    if (!this.#frames?.size || payload.byteLength > 10) return;
    this.#frames.get(decoder.decode(payload))?.resolve();
  }

  /**
   * Settles the application probes `message` answers.
   *
   * @param message A received message.
   * @returns Whether the message is heartbeat traffic, kept from the application.
   */
  onMessage(message: Message): boolean {
    const reply = this.#reply;
    const pending = this.#messages;
    if (reply === undefined) {
      if (pending) { for (const probe of [...pending.values()]) probe.resolve(); }
      return false;
    }
    if (typeof reply === "function") {
      if (!pending) return false;
      for (const probe of pending.values()) {
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
    pending?.values().next().value?.resolve();
    return true;
  }

  /**
   * Rejects every outstanding probe, when the connection ends.
   *
   * @param error What they reject with.
   */
  rejectAll(error: unknown): void {
    for (const map of [this.#frames, this.#messages]) {
      if (map) { for (const probe of [...map.values()]) probe.reject(error); }
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
      last: this.#rtts[(count - 1) % LATENCY_WINDOW]!,
      min: sorted[0]!,
      avg: sum / samples,
      p99: sorted[Math.min(samples - 1, Math.ceil(samples * 0.99) - 1)]!,
      samples,
    };
  }

  #track<K>(
    seq: number,
    map: Map<K, Pending>,
    key: K,
    signal: AbortSignal | undefined,
    send: () => void,
  ): Promise<number> {
    return new Promise((resolve, reject) => {
      const sentAt = performance.now();
      const settle = () => {
        map.delete(key);
        signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        settle();
        reject(signal!.reason);
      };
      const pending: Pending = {
        seq,
        sentAt,
        resolve: () => {
          settle();
          const rtt = performance.now() - sentAt;
          this.#rtts ??= new Float64Array(LATENCY_WINDOW);
          this.#rtts[this.#rttCount++ % LATENCY_WINDOW] = rtt;
          resolve(rtt);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      };
      map.set(key, pending);
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        send();
      } catch (error) {
        pending.reject(error);
      }
    });
  }
}
