/**
 * The protocol layer (sans-I/O): parsing received bytes into RFC 6455 frames.
 * {@linkcode FrameReader} takes chunks as they arrive and gives whole frames,
 * so a frame split across reads at any byte is handled by construction. It
 * judges only what one frame shows (the mask bit against the role, control
 * frame rules, sizes); the rules between frames belong to `protocol/protocol.ts`.
 * Serialising and masking are in `protocol/frames.ts`.
 *
 * @module
 */

import { takeBuffer } from "./buffer_pool.ts";
import { ProtocolError } from "../util/errors.ts";
import { Fifo } from "../util/fifo.ts";
import { OP_BINARY, OP_CONTINUATION, OP_PING, OP_TEXT, unmaskInto } from "./frames.ts";

/**
 * One frame as read from the wire, payload already unmasked.
 *
 * @example
 * ```ts
 * import type { Frame } from "./frame_reader.ts";
 * import { OP_TEXT } from "./frames.ts";
 *
 * const frame: Frame = { fin: true, rsv: 0, opcode: OP_TEXT, payload: new Uint8Array() };
 * ```
 */
export interface Frame {
  /** Whether this is the last frame of its message. */
  fin: boolean;
  /** The three reserved bits RSV1-RSV3 as a number from 0 to 7 (RSV1 is 4). */
  rsv: number;
  /** The opcode, 0 to 15. */
  opcode: number;
  /**
   * The payload, unmasked; a small one may be a view of a buffer shared with
   * others. The bytes of a whole binary message (FIN set) are never written
   * again, so it may be handed to the application as it is: up to 4 KiB a
   * view of a slab shared with other such messages (8 KiB), else a buffer of
   * its own.
   */
  payload: Uint8Array;
  /**
   * Present when {@linkcode FrameReaderOptions.headerRoom} bytes (or up to 7
   * more) before `payload` in its buffer belong to it and nothing else uses
   * them: a header may be written there. The buffer is the payload's own
   * (over 4 KiB) or a shared slab whose bytes are never reused (a whole
   * message up to 4 KiB).
   */
  room?: true;
  /**
   * Present when `payload`'s buffer came from `protocol/buffer_pool.ts`: whoever is
   * last done with it may give it back (`protocol/protocol.ts` once it decoded or
   * copied it; an echo server's writer once it wrote the echo).
   */
  pooled?: true;
}

/** Options for {@linkcode FrameReader}. */
export interface FrameReaderOptions {
  /** Whether frames must be masked: true on a server, false on a client. */
  expectMasked: boolean;
  /** Largest frame payload accepted; a larger one fails 1009 on its header. */
  maxFrameSize: number;
  /**
   * Largest data message, the sum of a data frame's payload and its
   * continuations' (control frames excluded); a header that would take the
   * message past it fails 1009 before its payload arrives.
   * @default {Infinity}
   */
  maxMessageSize?: number;
  /**
   * Bytes of room to leave before the payload of each whole data message
   * (in the shared slab, up to 4 KiB) and of each payload that gets a buffer
   * of its own (over 4 KiB), so that a header can be written there and the
   * payload sent back without a copy (`encodeFrameInPlace` in `protocol/frames.ts`).
   * A payload with a buffer of its own then starts at the same offset modulo
   * 8 as the bytes it is read from, so that it is unmasked word by word as
   * it is copied, and its buffer comes from `protocol/buffer_pool.ts`, to be given
   * back once the echo was written.
   * @default {0}
   */
  headerRoom?: number;
}

/**
 * Incremental frame parser: push received bytes, pull whole frames. A frame
 * split at any byte across pushes is handled; `push` takes what it needs from
 * the chunk before returning, so the caller may reuse its read buffer.
 *
 * It checks what a frame alone shows, on the header, before the payload
 * arrives: the mask bit against the role (1002), a control frame over 125
 * bytes or not FIN (1002), a 64-bit length with the top bit set (1002), a
 * payload over `maxFrameSize` or a data message over `maxMessageSize` (1009).
 * Reserved bits and opcodes are reported in {@linkcode Frame} for the caller
 * to judge. Each payload is copied once and unmasked in the same pass; only one
 * partial frame is held. Payloads up to 4 KiB that arrive whole are copied
 * into a 64 KiB slab shared with other small payloads, of every reader
 * (saving an allocation per frame, and a slab per connection), and are views
 * of it; nothing writes to them afterwards, but
 * `payload.slice()` one to keep it without the slab. A whole binary message
 * up to 4 KiB, which the application may keep, goes into a smaller slab of
 * its own kind (8 KiB), so that a kept one keeps less alive. Larger
 * payloads, and a ping's (sent back in a pong), get a buffer of their own.
 *
 * @example Frames split across pushes
 * ```ts
 * import { encodeFrame, OP_BINARY } from "./frames.ts";
 * import { FrameReader } from "./frame_reader.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeFrame(OP_BINARY, new Uint8Array(300));
 * const reader = new FrameReader({ expectMasked: false, maxFrameSize: 1024 });
 * reader.push(bytes.subarray(0, 3));
 * assert.equal(reader.next(), undefined);
 * reader.push(bytes.subarray(3));
 * assert.equal(reader.next()?.payload.length, 300);
 * ```
 */
export class FrameReader {
  readonly #expectMasked: boolean;
  readonly #maxFrameSize: number;
  readonly #maxMessageSize: number;
  readonly #headerRoom: number;
  readonly #frames = new Fifo<Frame>(); // whole frames not yet taken
  #error: ProtocolError | undefined;
  #header: Uint8Array | undefined; // only for a header split across pushes
  #headerFilled = 0;
  /** Where the chunk being pushed ends. */
  #end = 0;
  #inPayload = false;
  #fin = false;
  #rsv = 0;
  #opcode = 0;
  #masked = false;
  #length = 0;
  #key: Uint8Array | undefined; // only for masked frames (a server's reader)
  #payload: Uint8Array | undefined;
  #payloadFilled = 0;
  #room = false;
  #pooled = false;
  #messageBytes = 0;

  /**
   * Constructs a new instance.
   *
   * @param options The role's masking rule and the size limits.
   */
  constructor(options: FrameReaderOptions) {
    this.#expectMasked = options.expectMasked;
    this.#maxFrameSize = options.maxFrameSize;
    this.#maxMessageSize = options.maxMessageSize ?? Infinity;
    this.#headerRoom = options.headerRoom ?? 0;
  }

  /** Bytes held of the frame not yet complete (header or payload so far). */
  get bufferedBytes(): number {
    return this.#inPayload ? this.#payloadFilled : this.#headerFilled;
  }

  /**
   * Feeds received bytes. Ignored once a protocol error was found.
   *
   * @param chunk The bytes; not kept after the call, so it may be a view of a
   * buffer that the caller reuses.
   * @param end How many bytes of `chunk` to take (a read into a buffer kept
   * for reading fills only its start).
   */
  push(chunk: Uint8Array, end: number = chunk.length): void {
    let at = 0;
    this.#end = end;
    while (at < end && this.#error === undefined) {
      at = this.#inPayload ? this.#readPayload(chunk, at) : this.#readHeader(chunk, at);
    }
  }

  /**
   * Returns the next whole frame, in order.
   *
   * @returns The frame, or undefined when none is complete yet.
   * @throws {ProtocolError} Once the frames before a violation were returned,
   * and on every call after.
   */
  next(): Frame | undefined {
    const frame = this.#frames.shift();
    if (frame !== undefined) return frame;
    if (this.#error !== undefined) throw this.#error;
    return undefined;
  }

  #readHeader(chunk: Uint8Array, at: number): number {
    const available = this.#end - at;
    if (this.#headerFilled === 0 && available >= 2) {
      const size = headerSize(chunk[at + 1]!);
      if (available >= size) {
        this.#parseHeader(chunk, at);
        return at + size;
      }
    }
    // Slow path: gather the header in #header across pushes.
    const header = this.#header ??= new Uint8Array(14);
    while (at < this.#end) {
      header[this.#headerFilled++] = chunk[at++]!;
      if (this.#headerFilled >= 2 && this.#headerFilled === headerSize(header[1]!)) {
        this.#headerFilled = 0;
        this.#parseHeader(header, 0);
        break;
      }
    }
    return at;
  }

  #parseHeader(bytes: Uint8Array, at: number): void {
    const b0 = bytes[at]!, b1 = bytes[at + 1]!;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    let length = b1 & 0x7f;
    at += 2;
    if (length === 126) {
      length = (bytes[at]! << 8) | bytes[at + 1]!;
      at += 2;
    } else if (length === 127) {
      const view = new DataView(bytes.buffer, bytes.byteOffset + at, 8);
      const high = view.getUint32(0);
      if (high >= 0x8000_0000) return this.#fail(1002, "64-bit length with the top bit set");
      length = high * 0x1_0000_0000 + view.getUint32(4);
      at += 8;
    }
    if (masked !== this.#expectMasked) {
      return this.#fail(
        1002,
        masked ? "masked frame from a server" : "unmasked frame from a client",
      );
    }
    if (opcode >= 8) {
      if (!fin) return this.#fail(1002, "fragmented control frame");
      if (length > 125) return this.#fail(1002, "control frame payload over 125 bytes");
    } else {
      const total = (opcode === OP_CONTINUATION ? this.#messageBytes : 0) + length;
      if (total > this.#maxMessageSize) {
        return this.#fail(1009, `message over ${this.#maxMessageSize} bytes`);
      }
      this.#messageBytes = fin ? 0 : total;
    }
    if (length > this.#maxFrameSize) {
      return this.#fail(1009, `frame over ${this.#maxFrameSize} bytes`);
    }
    if (masked) (this.#key ??= new Uint8Array(4)).set(bytes.subarray(at, at + 4));
    this.#fin = fin;
    this.#rsv = (b0 >>> 4) & 7;
    this.#opcode = opcode;
    this.#masked = masked;
    this.#length = length;
    if (length === 0) this.#complete(new Uint8Array(0));
    else this.#inPayload = true;
  }

  #readPayload(chunk: Uint8Array, at: number): number {
    const length = this.#length;
    if (this.#payload === undefined) {
      const whole = this.#end - at >= length;
      if (whole && length <= SLAB_ITEM_MAX) {
        // A whole binary message or a ping is handed on in a buffer of its own anyway (see `own`
        // in protocol/message_assembly.ts): copy it there at once rather than twice. A pong stays in the
        // slab: it is only read, to match it to its ping.
        const opcode = this.#opcode;
        if (this.#headerRoom > 0 && this.#fin && (opcode === OP_TEXT || opcode === OP_BINARY)) {
          // An echo server's whole message: into the slab too, with room for the echo's header
          // before it, so that the echo is written from where it was read (no copy, no buffer).
          this.#room = true;
          const target = slabPayload(length, this.#headerRoom);
          this.#complete(this.#copy(chunk.subarray(at, at + length), target));
          return at + length;
        }
        // A whole binary message is handed on as it is: from a slab of its own kind (see
        // messagePayload). A ping's payload is sent back in a pong: a buffer of its own.
        const target = opcode === OP_BINARY && this.#fin
          ? messagePayload(length)
          : opcode === OP_PING
          ? new Uint8Array(length)
          : slabPayload(length);
        this.#complete(this.#copy(chunk.subarray(at, at + length), target));
        return at + length;
      }
      try {
        // Not from the slab: a frame that trickles in would keep a whole slab alive.
        this.#payload = this.#ownBuffer(length, chunk.byteOffset + at);
      } catch {
        this.#fail(1009, `frame of ${length} bytes too large to buffer`);
        return this.#end;
      }
      this.#room = this.#headerRoom > 0;
    }
    const take = Math.min(length - this.#payloadFilled, this.#end - at);
    const target = this.#payload.subarray(this.#payloadFilled, this.#payloadFilled + take);
    this.#copy(chunk.subarray(at, at + take), target, this.#payloadFilled & 3);
    this.#payloadFilled += take;
    if (this.#payloadFilled === length) {
      const payload = this.#payload;
      this.#payload = undefined;
      this.#payloadFilled = 0;
      this.#complete(payload);
    }
    return at + take;
  }

  /**
   * A buffer of its own for a payload of `length` bytes, after the header
   * room, and then at the offset modulo 8 of the bytes it is read from.
   */
  #ownBuffer(length: number, from: number): Uint8Array {
    if (this.#headerRoom === 0) {
      // Only a whole binary message is handed on as it is; any other payload is decoded or
      // copied by the protocol, which then gives its buffer back.
      if (this.#opcode === OP_BINARY && this.#fin) return new Uint8Array(length);
      this.#pooled = true;
      return takeBuffer(length).subarray(0, length);
    }
    this.#pooled = true;
    const room = this.#headerRoom + ((from - this.#headerRoom) & 7);
    return takeBuffer(room + length).subarray(room, room + length);
  }

  /** Copies (part of) a payload into `target`, unmasking it in the same pass. */
  #copy(bytes: Uint8Array, target: Uint8Array, phase = 0): Uint8Array {
    if (this.#masked) unmaskInto(target, bytes, this.#key!, phase);
    else target.set(bytes);
    return target;
  }

  #complete(payload: Uint8Array): void {
    this.#inPayload = false;
    const frame: Frame = { fin: this.#fin, rsv: this.#rsv, opcode: this.#opcode, payload };
    if (this.#room) {
      frame.room = true;
      this.#room = false;
    }
    if (this.#pooled) {
      frame.pooled = true;
      this.#pooled = false;
    }
    this.#frames.push(frame);
  }

  #fail(code: number, rule: string): void {
    this.#error = new ProtocolError(code, rule);
  }
}

/**
 * Small payloads share slabs of this size, each byte written once, never
 * reused; one slab serves every reader, so a connection that receives a
 * few small frames (pongs) does not hold a slab of its own. (A new
 * ArrayBuffer for each payload cost more than the rest of reading it, Deno
 * 2.9.)
 */
const SLAB_SIZE = 64 * 1024;
let inSlab = new Uint8Array(0);
let inSlabUsed = 0;

/**
 * The slab's next `length` bytes (at a multiple of 8), for a payload, after
 * at least `room` bytes that no other payload uses.
 */
function slabPayload(length: number, room = 0): Uint8Array {
  let at = (inSlabUsed + room + 7) & ~7;
  if (at + length > inSlab.length) {
    inSlab = new Uint8Array(SLAB_SIZE);
    at = (room + 7) & ~7;
  }
  inSlabUsed = at + length;
  return inSlab.subarray(at, inSlabUsed);
}
/** Largest payload copied into a slab; larger ones get a buffer of their own. */
const SLAB_ITEM_MAX = 4 * 1024;

/**
 * Whole binary messages up to {@linkcode SLAB_ITEM_MAX} bytes are handed to
 * the application as views of slabs of this size, each byte written once and
 * never reused, as Node's `Buffer` pool does: a new `ArrayBuffer` for each
 * cost about 0.7 µs (Deno 2.9), more than the rest of receiving the message.
 * A kept message keeps its slab alive: at most this many bytes, so the
 * slab is smaller than the one for payloads that are only read.
 */
const MESSAGE_SLAB_SIZE = 8 * 1024;
let messageSlab = new Uint8Array(0);
let messageSlabUsed = 0;

/** The message slab's next `length` bytes (at a multiple of 8), for a whole binary message. */
function messagePayload(length: number): Uint8Array {
  let at = (messageSlabUsed + 7) & ~7;
  if (at + length > messageSlab.length) {
    messageSlab = new Uint8Array(MESSAGE_SLAB_SIZE);
    at = 0;
  }
  messageSlabUsed = at + length;
  return messageSlab.subarray(at, messageSlabUsed);
}

function headerSize(b1: number): number {
  const length = b1 & 0x7f;
  return 2 + (length === 126 ? 2 : length === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
}
