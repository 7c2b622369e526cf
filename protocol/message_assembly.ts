/**
 * The protocol layer (sans-I/O): data messages out of data frames, under the
 * fragmentation rules of RFC 6455 section 5.4 (no new message inside a
 * fragmented one, no continuation without one). A message in one frame is
 * delivered at once; a fragmented one is reassembled as its fragments arrive
 * (and so is a text frame that spans reads, which the frame reader hands on
 * in pieces: `streamText` in `protocol/frame_reader.ts`). Text is checked as
 * strict UTF-8 piece by piece (`protocol/utf8.ts`), so invalid bytes fail the
 * connection (1007) on the piece that holds them, and a code point split
 * across pieces is fine. Neither kind keeps an object per fragment, so a
 * message sent as many tiny (or empty) fragments costs no more memory than
 * its size, which `protocol/frame_reader.ts` bounds by `maxMessageSize`.
 *
 * @module
 */

import { ProtocolError } from "../util/errors.ts";
import { POOLED_MAX, release, takeBuffer } from "./buffers.ts";
import { CloseCode } from "./close_code.ts";
import type { Frame } from "./frame_reader.ts";
import { OP_CONTINUATION, OP_TEXT } from "./frames.ts";
import { decodeUtf8, Utf8Stream } from "./utf8.ts";

/**
 * A whole text or binary message, as `protocol/protocol.ts` reports it; `echo` is the
 * message's payload when it came in one frame to an echo server (see
 * {@linkcode MessageAssembler.whole}).
 */
export type DataMessage =
  | { type: "text"; data: string; echo?: Uint8Array }
  | { type: "binary"; data: Uint8Array; echo?: Uint8Array };

/**
 * The capacity a gathering buffer of `capacity` bytes grows to when it must
 * hold `need`: doubling, so that a message in many fragments is copied a
 * bounded number of times (a 4 MiB message in 1 KiB fragments: 12 copies, not
 * 4 096); within the pool's largest class while the message fits in it (a
 * pooled buffer rather than a new one for each message); never past `limit`
 * (the largest message), never below `need`.
 *
 * @param capacity The buffer's size now.
 * @param need The bytes it must hold.
 * @param limit The largest message accepted.
 * @returns The new size.
 *
 * @example
 * ```ts
 * import { grownCapacity } from "./message_assembly.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(grownCapacity(4096, 5000, Infinity), 8192);
 * assert.equal(grownCapacity(200_000, 210_000, Infinity), 256 * 1024); // the pool's largest
 * assert.equal(grownCapacity(4096, 5000, 6000), 6000);
 * ```
 */
export function grownCapacity(capacity: number, need: number, limit: number): number {
  const doubled = Math.min(2 * capacity, limit);
  return Math.max(need, need <= POOLED_MAX ? Math.min(doubled, POOLED_MAX) : doubled);
}

/** The binary buffer when no fragmented message is open: shared, never written. */
const EMPTY = new Uint8Array(0);

/** The message being reassembled on one connection: see the module doc. */
export class MessageAssembler {
  readonly #utf8 = new Utf8Stream();
  readonly #maxMessageSize: number;
  /** OP_TEXT or OP_BINARY while a fragmented message is open, else 0. */
  #opcode = 0;
  /**
   * A fragmented text message: its bytes so far, in a pooled buffer
   * (`protocol/buffers.ts`), checked as they arrive and decoded once at the
   * end (decoding every piece and joining the strings cost twice as much on
   * a 256 KiB firehose, Deno 2.9.6).
   */
  #text: Uint8Array = EMPTY;
  #textLength = 0;
  /** A fragmented binary message: one buffer, grown by doubling up to the limit. */
  #binary = EMPTY;
  #binaryLength = 0;

  /**
   * Creates the state of one connection.
   *
   * @param maxMessageSize The size a gathering buffer may grow to.
   */
  constructor(maxMessageSize: number) {
    this.#maxMessageSize = maxMessageSize;
  }

  /** The payload bytes so far of the message {@linkcode MessageAssembler.receive} takes. */
  #bytes = 0;

  /** Whether a fragmented message is open. */
  get open(): boolean {
    return this.#opcode !== 0;
  }

  /**
   * Takes a text, binary or continuation frame (its reserved bits already
   * judged) under the fragmentation rules of RFC 6455 section 5.4, then as
   * {@linkcode MessageAssembler.whole}, {@linkcode MessageAssembler.start} or
   * {@linkcode MessageAssembler.add} do, and releases the frame's buffer
   * once its bytes were decoded or copied.
   *
   * @param frame The frame.
   * @param echo The echo server's mode (see {@linkcode MessageAssembler.whole}).
   * @returns The whole message at its last frame (its size: {@linkcode MessageAssembler.bytes}).
   * @throws {ProtocolError} 1002 for a new message inside a fragmented one or a
   *   continuation without one; 1007 for text that is not UTF-8.
   */
  receive(frame: Frame, echo: boolean): DataMessage | undefined {
    const { opcode, payload, fin } = frame;
    if (opcode === OP_CONTINUATION) {
      if (!this.open) throw fault("continuation frame without a message to continue");
      const message = this.add(payload, fin, frame.frameLength);
      this.#bytes += payload.length;
      frame.release?.(); // decoded or copied
      return message;
    }
    if (this.open) throw fault("new message inside a fragmented message");
    this.#bytes = payload.length;
    if (!fin) {
      this.start(opcode, payload, frame.frameLength);
      frame.release?.(); // decoded or copied
      return undefined;
    }
    const message = this.whole(opcode, payload, echo);
    // Handed on: a binary message's bytes to the application, an echo's to the writer.
    if (opcode === OP_TEXT && !echo) frame.release?.();
    return message;
  }

  /** The payload size of the message {@linkcode MessageAssembler.receive} returned last. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * A message in one frame.
   *
   * @param opcode OP_TEXT or OP_BINARY.
   * @param payload The frame's payload; binary data is this payload, not a
   *   copy (see `Frame.payload` in `protocol/frame_reader.ts`).
   * @param echo Whether the payload is to be echoed (it has room for a
   *   header before it: `headerRoom` in `protocol/frame_reader.ts`): then it
   *   is the message's `echo` too.
   * @returns The message.
   * @throws {ProtocolError} 1007 for text that is not UTF-8.
   */
  whole(opcode: number, payload: Uint8Array, echo = false): DataMessage {
    if (opcode !== OP_TEXT) {
      return echo
        ? { type: "binary", data: payload, echo: payload }
        : { type: "binary", data: payload };
    }
    const text = decodeUtf8(payload);
    return echo ? { type: "text", data: text, echo: payload } : { type: "text", data: text };
  }

  /**
   * Opens a fragmented message with its first fragment.
   *
   * @param opcode OP_TEXT or OP_BINARY.
   * @param payload The first fragment's payload.
   * @param frameLength The size of the whole frame when `payload` is its first piece.
   * @throws {ProtocolError} 1007 for text that is not UTF-8.
   */
  start(opcode: number, payload: Uint8Array, frameLength?: number): void {
    this.#opcode = opcode;
    this.add(payload, false, frameLength);
  }

  /**
   * Adds a continuation fragment.
   *
   * @param payload The fragment's payload.
   * @param fin Whether it is the last.
   * @param frameLength The size of the whole frame when `payload` is its
   *   first piece (`Frame.frameLength`): text takes room for all of it at once.
   * @returns The whole message after the last fragment, else `undefined`.
   * @throws {ProtocolError} 1007 for text that is not UTF-8, or that ends
   *   in the middle of a code point.
   */
  add(payload: Uint8Array, fin: boolean, frameLength = 0): DataMessage | undefined {
    let message: DataMessage | undefined;
    if (this.#opcode === OP_TEXT) {
      if (fin) this.#utf8.reset(); // the whole is decoded strictly below
      else this.#utf8.check(payload, false);
      const length = this.#textLength + payload.length;
      const need = Math.max(length, this.#textLength + frameLength);
      if (need > this.#text.length) {
        const grown = takeBuffer(grownCapacity(this.#text.length, need, this.#maxMessageSize));
        grown.set(this.#text.subarray(0, this.#textLength));
        release(this.#text);
        this.#text = grown;
      }
      this.#text.set(payload, this.#textLength);
      this.#textLength = length;
      if (!fin) return undefined;
      message = { type: "text", data: decodeUtf8(this.#text.subarray(0, length)) };
      this.#dropText();
    } else {
      const length = this.#binaryLength + payload.length;
      if (length > this.#binary.length) {
        const size = Math.min(
          Math.max(length, 2 * this.#binary.length, 1024),
          this.#maxMessageSize,
        );
        const grown = new Uint8Array(size);
        grown.set(this.#binary.subarray(0, this.#binaryLength));
        this.#binary = grown;
      }
      this.#binary.set(payload, this.#binaryLength);
      this.#binaryLength = length;
      if (!fin) return undefined;
      const data = this.#binary.length === length && length > 0
        ? this.#binary
        : this.#binary.slice(0, length);
      message = { type: "binary", data };
      this.#binary = EMPTY;
      this.#binaryLength = 0;
    }
    this.#opcode = 0;
    return message;
  }

  /** Drops an open message, when the connection ends. */
  reset(): void {
    this.#opcode = 0;
    this.#dropText();
    this.#binary = EMPTY;
    this.#binaryLength = 0;
    this.#utf8.reset();
  }

  #dropText(): void {
    release(this.#text);
    this.#text = EMPTY;
    this.#textLength = 0;
  }
}

function fault(rule: string): ProtocolError {
  return new ProtocolError(CloseCode.PROTOCOL_ERROR, rule);
}
