/**
 * The echo server: the echo server's replies as faults shape them, for
 * `serve/connection.ts`. {@linkcode DelayedReplies} holds replies for
 * `echoDelay` and hands them back in order when due; {@linkcode fragmentFrames}
 * splits a reply into fragments with pings between them (`fragment`).
 *
 * @module
 */

import { encodeFrame, OP_BINARY, OP_CONTINUATION, OP_PING, OP_TEXT } from "../protocol/frames.ts";

/** A reply to one message: sent now, or held for `echoDelay`. */
export interface Reply {
  /** When it is due, in `performance.now()` milliseconds. */
  due: number;
  /** What to send back. */
  data: string | Uint8Array;
  /** The message's payload to send back as it is (`Protocol.sendEcho`), when it has one. */
  echo?: Uint8Array;
  /** Cut TCP once it is written (`dropAfter`). */
  cut: boolean;
  /** Close with `closeWith` after it. */
  close: boolean;
}

const encoder = new TextEncoder();

/**
 * Replies held until they are due, in the order they came, with the bytes
 * they hold counted (they count towards `maxUnsentBytes`). One timer, for the
 * oldest.
 */
export class DelayedReplies {
  #replies: Reply[] = [];
  #bytes = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #send: (reply: Reply) => void;
  readonly #stopped: () => boolean;

  /**
   * Constructs a new instance.
   *
   * @param send Sends a reply that is due.
   * @param stopped Whether to stop handing replies out (the connection ended).
   */
  constructor(send: (reply: Reply) => void, stopped: () => boolean) {
    this.#send = send;
    this.#stopped = stopped;
  }

  /** How many replies wait. */
  get length(): number {
    return this.#replies.length;
  }

  /** The bytes the waiting replies hold. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Holds a reply until its `due` time, with bytes of its own: a small
   * message's bytes are a view of a slab that other messages share, which a
   * held view would keep alive.
   *
   * @param reply The reply.
   */
  push(reply: Reply): void {
    if (reply.echo !== undefined) {
      reply.echo = undefined;
      if (typeof reply.data !== "string") reply.data = reply.data.slice();
    }
    this.#replies.push(reply);
    this.#bytes += size(reply.data);
    if (this.#timer === undefined) this.#arm();
  }

  /** Forgets every waiting reply and stops the timer. */
  clear(): void {
    this.#replies = [];
    this.#bytes = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    const head = this.#replies[0];
    if (head === undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const now = performance.now();
      while (this.#replies.length > 0 && this.#replies[0]!.due <= now + 1) {
        const reply = this.#replies.shift()!;
        this.#bytes -= size(reply.data);
        this.#send(reply);
        if (this.#stopped()) return;
      }
      this.#arm();
    }, Math.max(0, head.due - performance.now()));
  }
}

/**
 * A message as `n` frames, split by bytes, with an empty ping between each
 * two (the `fragment` fault).
 *
 * @param data The message.
 * @param n How many fragments.
 * @returns The frames, in order.
 */
export function fragmentFrames(data: string | Uint8Array, n: number): Uint8Array[] {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const first = typeof data === "string" ? OP_TEXT : OP_BINARY;
  const frames: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const part = bytes.subarray(
      Math.floor((i * bytes.length) / n),
      Math.floor(((i + 1) * bytes.length) / n),
    );
    if (i > 0) frames.push(encodeFrame(OP_PING, new Uint8Array(0)));
    frames.push(encodeFrame(i === 0 ? first : OP_CONTINUATION, part, { fin: i === n - 1 }));
  }
  return frames;
}

function size(data: string | Uint8Array): number {
  return typeof data === "string" ? data.length : data.byteLength;
}
