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

import { type PayloadAllocator, payloadAllocator, type PayloadUse } from "./buffers.ts";
import { CloseCode } from "./close_code.ts";
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
   * The payload, unmasked. Up to 4 KiB (when it arrived whole) a view of a
   * slab shared with other payloads, whose bytes are never written again;
   * else a buffer of its own. Where it lives is `protocol/buffers.ts`'s
   * business, not the reader's or its caller's.
   */
  payload: Uint8Array;
  /**
   * Present when `payload` is a buffer that can be reused (not one the
   * application keeps, not a slab's view): whoever is last done with its
   * bytes calls it (`protocol/protocol.ts` once it decoded or
   * copied them). Bytes handed on (a binary message to the application, an
   * echo to a writer) are not released here: a writer releases what it
   * wrote through `release` in `protocol/buffers.ts`.
   */
  release?: () => void;
  /**
   * On the first piece of a text frame handed on in pieces (`streamText` in
   * {@linkcode FrameReaderOptions}): the whole frame's payload size, so that
   * whoever gathers the pieces can take room for all of them at once.
   */
  frameLength?: number;
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
   * An echo server's mode: bytes of room to leave before the payload of
   * each whole data message (a frame with FIN), so that a header can be
   * written there and the payload sent back without a copy
   * (`encodeFrameInPlace` in `protocol/frames.ts`).
   * @default {0}
   */
  headerRoom?: number;
  /**
   * Where payloads' bytes come from.
   * @default {payloadAllocator} (`protocol/buffers.ts`)
   */
  allocator?: PayloadAllocator;
  /**
   * The protocol's mode for text that it decodes at once: the payload of an
   * uncompressed text frame (the first frame of a text message or its
   * continuations, RSV bits clear; not an echo server's whole message) is
   * not gathered into a buffer of the reader's. When it is whole in the
   * pushed chunk and unmasked, it is a view of the chunk; when it spans
   * pushes, it is handed on in pieces as they arrive, each piece a frame of
   * its own: the first with the frame's opcode and RSV bits, the others as
   * continuations, all without FIN except the last, which has the frame's
   * FIN (so a consumer that assembles fragments assembles these too, and can
   * check UTF-8 as the bytes arrive). A view of the chunk is valid only until
   * the caller reuses the chunk: the caller takes and decodes every frame
   * before it does (as `Protocol.receiveData` does before it returns).
   * @default {false} every payload is the reader's copy, so the caller may
   *   reuse its chunk as soon as `push` returns
   */
  streamText?: boolean;
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
 * partial frame is held. The reader says what each payload is for (read,
 * kept by the application, echoed: {@linkcode PayloadUse}) and its
 * allocator (`protocol/buffers.ts`) decides where its bytes go.
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
  readonly #allocator: PayloadAllocator;
  readonly #streamText: boolean;
  readonly #frames = new Fifo<Frame>(); // whole frames not yet taken
  #error: ProtocolError | undefined;
  #header: Uint8Array | undefined; // only for a header split across pushes
  #headerFilled = 0;
  /** The chunk pushed last while it has bytes not yet parsed (`streamText`: parsed as taken). */
  #chunk: Uint8Array | undefined;
  /** Where its next byte to parse is, and where it ends. */
  #at = 0;
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
  #messageBytes = 0;
  /** The frame being read is text handed on as it arrives (see `streamText`). */
  #streamed = false;
  /** The open fragmented message is uncompressed text (its continuations are streamed). */
  #textOpen = false;

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
    this.#allocator = options.allocator ?? payloadAllocator;
    this.#streamText = options.streamText ?? false;
  }

  /** Bytes held of the frame not yet complete (header or payload so far). */
  get bufferedBytes(): number {
    return this.#inPayload ? this.#payloadFilled : this.#headerFilled;
  }

  /**
   * Feeds received bytes. Ignored once a protocol error was found.
   *
   * @param chunk The bytes; not kept after the call, so it may be a view of a
   * buffer that the caller reuses (with `streamText`, kept until the caller
   * took every frame: see {@linkcode FrameReaderOptions.streamText}).
   * @param end How many bytes of `chunk` to take (a read into a buffer kept
   * for reading fills only its start).
   */
  push(chunk: Uint8Array, end: number = chunk.length): void {
    if (this.#chunk !== undefined) this.#parse(Infinity); // the rest of the last one, first
    this.#chunk = chunk;
    this.#at = 0;
    this.#end = end;
    // With streamText, frames are parsed as they are taken: no queue of a read's frames.
    if (!this.#streamText) this.#parse(Infinity);
  }

  /** Parses the pushed chunk until `frames` frames wait, or to its end. */
  #parse(frames: number): void {
    const chunk = this.#chunk!;
    const end = this.#end;
    let at = this.#at;
    while (at < end && this.#error === undefined && this.#frames.size < frames) {
      at = this.#inPayload ? this.#readPayload(chunk, at) : this.#readHeader(chunk, at);
    }
    this.#at = at;
    if (at >= end || this.#error !== undefined) this.#chunk = undefined;
  }

  /**
   * Returns the next whole frame, in order.
   *
   * @returns The frame, or undefined when none is complete yet.
   * @throws {ProtocolError} Once the frames before a violation were returned,
   * and on every call after.
   */
  next(): Frame | undefined {
    if (this.#chunk !== undefined && this.#frames.size === 0) this.#parse(1);
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
      if (high >= 0x8000_0000) {
        return this.#fail(CloseCode.PROTOCOL_ERROR, "64-bit length with the top bit set");
      }
      length = high * 0x1_0000_0000 + view.getUint32(4);
      at += 8;
    }
    if (masked !== this.#expectMasked) {
      return this.#fail(
        CloseCode.PROTOCOL_ERROR,
        masked ? "masked frame from a server" : "unmasked frame from a client",
      );
    }
    if (opcode >= 8) {
      if (!fin) return this.#fail(CloseCode.PROTOCOL_ERROR, "fragmented control frame");
      if (length > 125) {
        return this.#fail(CloseCode.PROTOCOL_ERROR, "control frame payload over 125 bytes");
      }
      this.#streamed = false;
    } else {
      const total = (opcode === OP_CONTINUATION ? this.#messageBytes : 0) + length;
      if (total > this.#maxMessageSize) {
        return this.#fail(CloseCode.TOO_BIG, `message over ${this.#maxMessageSize} bytes`);
      }
      this.#messageBytes = fin ? 0 : total;
      if (this.#streamText) {
        const rsv = b0 & 0x70;
        const text = opcode === OP_TEXT ? rsv === 0 : opcode === OP_CONTINUATION && this.#textOpen;
        this.#streamed = text && !(fin && this.#headerRoom > 0 && opcode !== OP_CONTINUATION);
        if (opcode !== OP_CONTINUATION) this.#textOpen = text && !fin;
        else if (fin) this.#textOpen = false;
      }
    }
    if (length > this.#maxFrameSize) {
      return this.#fail(CloseCode.TOO_BIG, `frame over ${this.#maxFrameSize} bytes`);
    }
    if (masked) (this.#key ??= new Uint8Array(4)).set(bytes.subarray(at, at + 4));
    this.#fin = fin;
    this.#rsv = (b0 >>> 4) & 7;
    this.#opcode = opcode;
    this.#masked = masked;
    this.#length = length;
    if (length !== 0) this.#inPayload = true;
    else if (this.#headerRoom === 0) this.#complete(new Uint8Array(0));
    else this.#complete(this.#allocator.small(0, this.#use(), this.#headerRoom));
  }

  /** What the payload of the frame being read is for. */
  #use(): PayloadUse {
    const opcode = this.#opcode;
    if (opcode === OP_BINARY || opcode === OP_TEXT) {
      if (this.#fin && this.#headerRoom > 0) return "echo";
      if (this.#fin && opcode === OP_BINARY) return "kept";
    }
    return opcode === OP_PING ? "kept" : "read";
  }

  #readPayload(chunk: Uint8Array, at: number): number {
    if (this.#streamed) return this.#streamPayload(chunk, at);
    const length = this.#length;
    let payload = this.#payload;
    if (payload === undefined) {
      const use = this.#use();
      const room = use === "echo" ? this.#headerRoom : 0;
      if (this.#end - at >= length && length <= this.#allocator.smallMax) {
        const target = this.#allocator.small(length, use, room);
        this.#complete(this.#copy(chunk.subarray(at, at + length), target));
        return at + length;
      }
      try {
        payload = this.#payload = this.#allocator.large(length, use, room, chunk.byteOffset + at);
      } catch {
        this.#fail(CloseCode.TOO_BIG, `frame of ${length} bytes too large to buffer`);
        return this.#end;
      }
    }
    const take = Math.min(length - this.#payloadFilled, this.#end - at);
    const target = payload.subarray(this.#payloadFilled, this.#payloadFilled + take);
    this.#copy(chunk.subarray(at, at + take), target, this.#payloadFilled & 3);
    this.#payloadFilled += take;
    if (this.#payloadFilled === length) {
      this.#payload = undefined;
      this.#payloadFilled = 0;
      // A kept payload is the application's: never reused, so nothing to release.
      this.#complete(payload, this.#use() === "kept" ? undefined : this.#allocator);
    }
    return at + take;
  }

  /**
   * A streamed text payload (see `streamText`): a view of the chunk when it
   * is whole there and unmasked, else the piece that arrived, as a frame.
   */
  #streamPayload(chunk: Uint8Array, at: number): number {
    const filled = this.#payloadFilled;
    if (filled === 0 && !this.#masked && this.#end - at >= this.#length) {
      const end = at + this.#length; // the common case, first: whole, a view of the chunk
      this.#complete(chunk.subarray(at, end));
      return end;
    }
    const take = Math.min(this.#length - filled, this.#end - at);
    const first = filled === 0;
    const last = filled + take === this.#length;
    let piece: Uint8Array, allocator: PayloadAllocator | undefined;
    if (!this.#masked) piece = chunk.subarray(at, at + take);
    else if (first && last && take <= this.#allocator.smallMax) {
      piece = this.#copy(chunk.subarray(at, at + take), this.#allocator.small(take, "read", 0));
    } else {
      allocator = this.#allocator;
      piece = this.#copy(
        chunk.subarray(at, at + take),
        allocator.large(take, "read", 0, chunk.byteOffset + at),
        filled & 3,
      );
    }
    if (first && last) {
      this.#complete(piece, allocator);
      return at + take;
    }
    const frame: Frame = {
      fin: last && this.#fin,
      rsv: first ? this.#rsv : 0,
      opcode: first ? this.#opcode : OP_CONTINUATION,
      payload: piece,
    };
    if (allocator !== undefined) frame.release = () => allocator.release(piece);
    if (first) frame.frameLength = this.#length;
    this.#frames.push(frame);
    if (last) {
      this.#inPayload = false;
      this.#payloadFilled = 0;
    } else this.#payloadFilled = filled + take;
    return at + take;
  }

  /** Copies (part of) a payload into `target`, unmasking it in the same pass. */
  #copy(bytes: Uint8Array, target: Uint8Array, phase = 0): Uint8Array {
    if (this.#masked) unmaskInto(target, bytes, this.#key!, phase);
    else target.set(bytes);
    return target;
  }

  /** Queues the frame read; with `allocator`, its payload is to be released through it. */
  #complete(payload: Uint8Array, allocator?: PayloadAllocator): void {
    this.#inPayload = false;
    const frame: Frame = { fin: this.#fin, rsv: this.#rsv, opcode: this.#opcode, payload };
    if (allocator !== undefined) frame.release = () => allocator.release(payload);
    this.#frames.push(frame);
  }

  #fail(code: number, rule: string): void {
    this.#error = new ProtocolError(code, rule);
  }
}

function headerSize(b1: number): number {
  const length = b1 & 0x7f;
  return 2 + (length === 126 ? 2 : length === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
}
