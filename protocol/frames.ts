/**
 * The protocol layer (sans-I/O): RFC 6455 frames as bytes. Serialises each
 * frame into one run of bytes, written in one write ({@linkcode encodeFrame},
 * {@linkcode encodeTextFrame}),
 * and masks payloads ({@linkcode applyMask}). Parsing received bytes into
 * frames is `protocol/frame_reader.ts`; close payloads are in `protocol/close_payload.ts`.
 *
 * It encodes exactly what it is given and judges nothing: what may be sent
 * is `protocol/protocol.ts`'s rule, what a received frame may be is
 * `protocol/frame_reader.ts`'s. Where the bytes of a frame live (a slab, a
 * pooled buffer) is `protocol/buffers.ts`'s. No sockets, no timers, no
 * `Deno.*`: it runs on Deno, Node 22+, Bun and browsers.
 *
 * @example Encode a frame and read it back
 * ```ts
 * import { encodeFrame, OP_BINARY } from "./frames.ts";
 * import { FrameReader } from "./frame_reader.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeFrame(OP_BINARY, new Uint8Array([1, 2, 3]), { mask: true });
 * const reader = new FrameReader({ expectMasked: true, maxFrameSize: 1024 });
 * reader.push(bytes);
 * assert.deepEqual(reader.next()?.payload, new Uint8Array([1, 2, 3]));
 * ```
 *
 * @module
 */

import { Slab, takeBuffer } from "./buffers.ts";

/** Opcode 0x0: a continuation frame, the next fragment of a message. */
export const OP_CONTINUATION = 0x0;
/** Opcode 0x1: a text frame, UTF-8 payload. */
export const OP_TEXT = 0x1;
/** Opcode 0x2: a binary frame. */
export const OP_BINARY = 0x2;
/** Opcode 0x8: a close frame (control). */
export const OP_CLOSE = 0x8;
/** Opcode 0x9: a ping frame (control). */
export const OP_PING = 0x9;
/** Opcode 0xA: a pong frame (control). */
export const OP_PONG = 0xa;

/** Options for {@linkcode encodeFrame}. */
export interface EncodeFrameOptions {
  /** Mask the payload with a fresh random key, as a client must. @default {false} */
  mask?: boolean;
  /** Set the FIN bit (last fragment of the message). @default {true} */
  fin?: boolean;
  /** The reserved bits, 0 to 7; anything but 0 is only for tests and fault injection. @default {0} */
  rsv?: number;
  /**
   * Write a small frame into a slab shared with other frames instead of a
   * buffer of its own (one allocation per many frames, not per frame), and a
   * larger one into a pooled buffer (given back by whoever writes it, with
   * `release` of `protocol/buffers.ts`; one never released is collected).
   * The result is then a view of a larger buffer, whose bytes no other frame
   * uses. @default {false}
   */
  slab?: boolean;
}

/** Options for {@linkcode encodeTextFrame}. */
export interface EncodeTextFrameOptions {
  /** Mask the payload with a fresh random key, as a client must. @default {false} */
  mask?: boolean;
  /** Write into a shared slab or a pooled buffer, as {@linkcode EncodeFrameOptions.slab}. @default {false} */
  slab?: boolean;
}

const encoder = new TextEncoder();

// Masking keys come from crypto.getRandomValues in batches; each is used once.
const keyWords = new Int32Array(256);
const keyBytes = new Uint8Array(keyWords.buffer);
let keyIndex = keyWords.length;
/** Returns the index in keyWords (and keyBytes / 4) of a fresh key. */
function nextKey(): number {
  if (keyIndex === keyWords.length) {
    crypto.getRandomValues(keyWords);
    keyIndex = 0;
  }
  return keyIndex++;
}

/** Below this many bytes, a byte loop masks faster than making a word view. */
const WORDWISE_FROM = 32;
/**
 * From this many bytes, 8-byte words (a `BigInt64Array`, which V8 optimizes
 * to plain 64-bit integers) mask twice as fast as 4-byte ones (Deno 2.9).
 */
const WORDWISE64_FROM = 1024;

/**
 * Small frames sent with `slab` are cut from this slab (`protocol/buffers.ts`):
 * a new ArrayBuffer for each frame cost more than encoding it (Deno 2.9).
 */
const outSlab = new Slab(64 * 1024);
/** The largest frame (with its worst-case room) taken from the slab. */
const OUT_SLAB_ITEM_MAX = 16 * 1024;

/** Reserves `size` bytes of the slab (see `Slab.reserve`), or -1 when the frame is too large for it. */
function reserve(size: number): number {
  return size > OUT_SLAB_ITEM_MAX ? -1 : outSlab.reserve(size);
}

function lengthBytes(n: number): number {
  return n < 126 ? 0 : n < 65536 ? 2 : 8;
}

/** Writes the header's first bytes (up to the length, not the key) at `at`. */
function writeHeader(out: Uint8Array, at: number, first: number, mask: boolean, n: number): void {
  out[at] = first;
  const m = mask ? 0x80 : 0;
  if (n < 126) {
    out[at + 1] = m | n;
  } else if (n < 65536) {
    out[at + 1] = m | 126;
    out[at + 2] = n >>> 8;
    out[at + 3] = n & 0xff;
  } else {
    out[at + 1] = m | 127;
    const view = new DataView(out.buffer, out.byteOffset + at + 2, 8);
    view.setUint32(0, Math.floor(n / 0x1_0000_0000));
    view.setUint32(4, n >>> 0);
  }
}

/**
 * Writes a fresh key into the 4 bytes before `payloadAt` (a multiple of 4)
 * and masks the `n` payload bytes after it, word-wise; with `source`, they
 * are first copied from it. `out` is the slab (masked through its `words`)
 * or a buffer of its own (through a view).
 */
function maskAligned(out: Uint8Array, payloadAt: number, n: number, source?: Uint8Array): void {
  const index = nextKey();
  for (let k = 0; k < 4; k++) out[payloadAt - 4 + k] = keyBytes[4 * index + k]!;
  let i = 0;
  if (n >= WORDWISE64_FROM && ((out.byteOffset + payloadAt) & 7) === 0) {
    // 8-byte words, and the copy in the same pass when the source is aligned too.
    const key32 = BigInt(keyWords[index]! >>> 0);
    const key = BigInt.asIntN(64, (key32 << 32n) | key32);
    const words = new BigInt64Array(out.buffer, out.byteOffset + payloadAt, n >>> 3);
    if (source !== undefined && (source.byteOffset & 7) === 0) {
      const from = new BigInt64Array(source.buffer, source.byteOffset, n >>> 3);
      for (let w = 0; w < words.length; w++) words[w] = from[w]! ^ key;
      for (let j = n & ~7; j < n; j++) out[payloadAt + j] = source[j]!;
    } else {
      if (source !== undefined) out.set(source, payloadAt);
      for (let w = 0; w < words.length; w++) words[w] = words[w]! ^ key;
    }
    i = n & ~7;
  } else if (source !== undefined) out.set(source, payloadAt);
  if (i === 0 && n >= WORDWISE_FROM) {
    const key = keyWords[index]!;
    if (out === outSlab.bytes) {
      const words = outSlab.words;
      const first = payloadAt >>> 2;
      const end = first + (n >>> 2);
      for (let w = first; w < end; w++) words[w]! ^= key;
    } else {
      const words = new Int32Array(out.buffer, out.byteOffset + payloadAt, n >>> 2);
      for (let w = 0; w < words.length; w++) words[w]! ^= key;
    }
    i = n & ~3;
  }
  for (; i < n; i++) out[payloadAt + i]! ^= out[payloadAt - 4 + (i & 3)]!;
}

function checkBits(opcode: number, rsv: number): void {
  const integers = Number.isInteger(opcode) && Number.isInteger(rsv);
  if (!integers || opcode < 0 || opcode > 15 || rsv < 0 || rsv > 7) {
    const value = `opcode ${opcode}, rsv ${rsv}`;
    throw new RangeError(`Cannot encode the frame as opcode is not 0-15 or rsv not 0-7: ${value}`);
  }
}

/**
 * Serialises one frame, header and payload, into one new buffer that the
 * transport writes in one write. With `mask`, a fresh random key (from
 * `crypto.getRandomValues`) masks a copy of the payload; `payload` itself is
 * never changed. It encodes exactly what it is given: the rules on what may
 * be sent (control frames at most 125 bytes and unfragmented) are the
 * caller's, so tests and fault injection can build broken frames.
 *
 * @param opcode The opcode, 0 to 15 (see {@linkcode OP_TEXT} and the others).
 * @param payload The payload bytes.
 * @param options Masking, the FIN bit and the reserved bits.
 * @returns The frame's bytes.
 * @throws {RangeError} When `opcode` is not 0 to 15 or `rsv` not 0 to 7.
 *
 * @example A server's unmasked ping
 * ```ts
 * import { encodeFrame, OP_PING } from "./frames.ts";
 * import assert from "node:assert/strict";
 *
 * const frame = encodeFrame(OP_PING, new Uint8Array([7]));
 * assert.deepEqual(frame, new Uint8Array([0x89, 0x01, 7]));
 * ```
 */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  options: EncodeFrameOptions = {},
): Uint8Array {
  const { mask = false, fin = true, rsv = 0, slab = false } = options;
  checkBits(opcode, rsv);
  const n = payload.length;
  const first = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  const headerSize = 2 + lengthBytes(n) + (mask ? 4 : 0);
  // Pad the start so that a masked payload begins at a multiple of 8 (of 4 when small).
  const align = n >= WORDWISE64_FROM ? 7 : 3;
  const start = mask ? (align + 1 - (headerSize & align)) & align : 0;
  const size = start + headerSize + n;
  const base = slab ? reserve(size) : -1;
  const out = base >= 0 ? outSlab.bytes : slab ? takeBuffer(size) : new Uint8Array(size);
  const at = base < 0 ? 0 : base;
  writeHeader(out, at + start, first, mask, n);
  if (mask) maskAligned(out, at + start + headerSize, n, payload);
  else out.set(payload, at + start + headerSize);
  return base < 0 && start === 0 && out.length === size ? out : out.subarray(at + start, at + size);
}

/** Strings up to this many UTF-16 units get a buffer for their worst case. */
const WORST_CASE_TEXT = 4096;
/** Where the payload of a text frame starts: room for the largest header, aligned. */
const TEXT_PAYLOAD_AT = 16;
/** Strings up to this many UTF-16 units are tried as ASCII with a loop first. */
const SHORT_TEXT = 128;

/**
 * Serialises a text frame (FIN set) straight from a string: the UTF-8 bytes
 * are encoded into the frame buffer itself, with no intermediate copy. Lone
 * surrogates become U+FFFD, as with `TextEncoder`.
 *
 * @param text The message.
 * @param options Masking.
 * @returns The frame's bytes.
 *
 * @example A client's masked text frame
 * ```ts
 * import { encodeTextFrame } from "./frames.ts";
 * import { FrameReader } from "./frame_reader.ts";
 * import assert from "node:assert/strict";
 *
 * const frame = encodeTextFrame("héllo", { mask: true });
 * assert.equal(frame[0], 0x81);
 * assert.equal(frame[1], 0x80 | 6);
 * const reader = new FrameReader({ expectMasked: true, maxFrameSize: 125 });
 * reader.push(frame);
 * assert.equal(new TextDecoder().decode(reader.next()?.payload), "héllo");
 * ```
 */
export function encodeTextFrame(text: string, options: EncodeTextFrameOptions = {}): Uint8Array {
  const mask = options.mask ?? false;
  // Short strings get room for 3 bytes per UTF-16 unit, the worst case. Long
  // ones are tried as ASCII first, and only grow when they are not.
  const size = TEXT_PAYLOAD_AT + (text.length <= WORST_CASE_TEXT ? 3 : 1) * text.length;
  const base = options.slab ? reserve(size) : -1;
  let buffer = base >= 0 ? outSlab.bytes : options.slab ? takeBuffer(size) : new Uint8Array(size);
  let at = (base < 0 ? 0 : base) + TEXT_PAYLOAD_AT;
  let read = 0;
  let written = 0;
  if (text.length <= SHORT_TEXT) {
    // A loop beats an encodeInto() call (an op and a view) on short ASCII.
    for (; read < text.length; read++) {
      const c = text.charCodeAt(read);
      if (c >= 0x80) break;
      buffer[at + read] = c;
    }
    written = read;
  }
  if (read < text.length) {
    const rest = read === 0 ? text : text.slice(read);
    const done = encoder.encodeInto(
      rest,
      buffer.subarray(at + written, at - TEXT_PAYLOAD_AT + size),
    );
    read += done.read;
    written += done.written;
  }
  if (read < text.length) {
    const larger = new Uint8Array(TEXT_PAYLOAD_AT + written + 3 * (text.length - read));
    larger.set(buffer.subarray(at, at + written), TEXT_PAYLOAD_AT);
    written += encoder.encodeInto(text.slice(read), larger.subarray(TEXT_PAYLOAD_AT + written))
      .written;
    buffer = larger;
    at = TEXT_PAYLOAD_AT;
  }
  if (base >= 0 && buffer === outSlab.bytes) outSlab.used = at + written; // the unused room goes back
  const start = at - 2 - lengthBytes(written) - (mask ? 4 : 0);
  writeHeader(buffer, start, 0x80 | OP_TEXT, mask, written);
  if (mask) maskAligned(buffer, at, written);
  return buffer.subarray(start, at + written);
}

/**
 * The largest header of an unmasked frame (a server's): the room
 * {@linkcode encodeFrameInPlace} needs before a payload.
 */
export const HEADER_ROOM = 10;

/**
 * Serialises an unmasked frame (FIN set) around a payload without copying
 * it: the header is written into the {@linkcode HEADER_ROOM} bytes (or fewer,
 * as its length needs) just before `payload` in its buffer, and the frame is
 * a view of that buffer. The caller gives those bytes up: they must be room
 * it owns, never another payload's (`protocol/frame_reader.ts` leaves such room with
 * `headerRoom`).
 *
 * @param opcode The opcode, 0 to 15.
 * @param payload The payload, with at least the header's size of bytes of
 * its own before it in its buffer.
 * @returns The frame's bytes: a view of `payload`'s buffer.
 * @throws {RangeError} When `opcode` is not 0 to 15, or there is no room for the header.
 *
 * @example
 * ```ts
 * import { encodeFrameInPlace, HEADER_ROOM, OP_BINARY } from "./frames.ts";
 * import assert from "node:assert/strict";
 *
 * const payload = new Uint8Array(HEADER_ROOM + 3).subarray(HEADER_ROOM);
 * payload.set([1, 2, 3]);
 * const frame = encodeFrameInPlace(OP_BINARY, payload);
 * assert.deepEqual(frame, new Uint8Array([0x82, 0x03, 1, 2, 3]));
 * assert.equal(frame.buffer, payload.buffer);
 * ```
 */
export function encodeFrameInPlace(opcode: number, payload: Uint8Array): Uint8Array {
  checkBits(opcode, 0);
  const n = payload.length;
  const start = payload.byteOffset - 2 - lengthBytes(n);
  if (start < 0) {
    throw new RangeError(
      `Cannot encode the frame in place as there is no room for its header: current value is ${payload.byteOffset} bytes`,
    );
  }
  const out = new Uint8Array(payload.buffer, start, payload.byteOffset + n - start);
  writeHeader(out, 0, 0x80 | opcode, false, n);
  return out;
}

/**
 * Copies masked bytes and unmasks them in the same pass: `target[i] =
 * source[i] ^ key[(phase + i) & 3]` for every byte of `source` (masking and
 * unmasking are the same operation). Word-wise (8-byte words from 1 KiB) when
 * `target` and `source` sit at the same offset modulo 8; otherwise it copies
 * first and unmasks the copy in place, word-wise. `target` may be `source`.
 *
 * @param target Where the unmasked bytes go; at least as long as `source`.
 * @param source The masked bytes; not changed unless it is `target`.
 * @param key The 4-byte masking key.
 * @param phase Which key byte masks `source[0]`: the offset of `source` in
 * its frame's payload, modulo 4.
 *
 * @example A payload that arrives in two parts
 * ```ts
 * import { applyMask, unmaskInto } from "./frames.ts";
 * import assert from "node:assert/strict";
 *
 * const key = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);
 * const masked = new TextEncoder().encode("Hello");
 * applyMask(masked, key);
 * const payload = new Uint8Array(5);
 * unmaskInto(payload, masked.subarray(0, 3), key, 0);
 * unmaskInto(payload.subarray(3), masked.subarray(3), key, 3);
 * assert.equal(new TextDecoder().decode(payload), "Hello");
 * ```
 */
export function unmaskInto(
  target: Uint8Array,
  source: Uint8Array,
  key: Uint8Array,
  phase: number,
): void {
  const n = source.length;
  let i = 0;
  if (n >= WORDWISE_FROM) {
    if (((target.byteOffset - source.byteOffset) & 7) !== 0 && target !== source) {
      target.set(source); // not word-aligned alike: copy, then unmask the copy in place
      source = target;
    }
    const head = (8 - (target.byteOffset & 7)) & 7;
    for (; i < head; i++) target[i] = source[i]! ^ key[(phase + i) & 3]!;
    for (let k = 0; k < 8; k++) keyBytes8[k] = key[(phase + head + k) & 3]!;
    const start = target.byteOffset + head;
    const from = source.byteOffset + head;
    if (n - head >= WORDWISE64_FROM) {
      const count = (n - head) >>> 3;
      const word = keyWord64[0]!;
      const to = new BigInt64Array(target.buffer, start, count);
      const of = new BigInt64Array(source.buffer, from, count);
      for (let w = 0; w < count; w++) to[w] = of[w]! ^ word;
      i += count * 8;
    } else {
      const count = (n - head) >>> 2;
      const word = keyWord32[0]!;
      const to = new Int32Array(target.buffer, start, count);
      const of = new Int32Array(source.buffer, from, count);
      for (let w = 0; w < count; w++) to[w] = of[w]! ^ word;
      i += count * 4;
    }
  }
  for (; i < n; i++) target[i] = source[i]! ^ key[(phase + i) & 3]!;
}
/** The key as 8 bytes, for {@linkcode unmaskInto}'s words (in the platform's byte order). */
const keyBytes8 = new Uint8Array(8);
const keyWord64 = new BigInt64Array(keyBytes8.buffer);
const keyWord32 = new Int32Array(keyBytes8.buffer, 0, 1);

/**
 * XORs `data` in place with the 4-byte masking key, key byte 0 on data byte 0
 * (masking and unmasking are the same operation): {@linkcode unmaskInto}
 * with the data as both source and target.
 *
 * @param data The bytes to mask or unmask, changed in place.
 * @param key The 4-byte masking key.
 * @throws {RangeError} When `key` is not 4 bytes long.
 *
 * @example Masking twice gives the data back
 * ```ts
 * import { applyMask } from "./frames.ts";
 * import assert from "node:assert/strict";
 *
 * const data = new TextEncoder().encode("Hello");
 * const key = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);
 * applyMask(data, key);
 * assert.deepEqual(data, new Uint8Array([0x7f, 0x9f, 0x4d, 0x51, 0x58]));
 * applyMask(data, key);
 * assert.equal(new TextDecoder().decode(data), "Hello");
 * ```
 */
export function applyMask(data: Uint8Array, key: Uint8Array): void {
  if (key.length !== 4) {
    throw new RangeError(
      `Cannot mask with the key as it is not 4 bytes long: current value is ${key.length} bytes`,
    );
  }
  unmaskInto(data, data, key, 0);
}

/**
 * The payload length a serialised frame's header states (up to 2^53).
 *
 * @param frame A whole frame's bytes, from its first byte.
 * @returns The payload length.
 *
 * @example
 * ```ts
 * import { encodeTextFrame, statedPayloadLength } from "./frames.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(statedPayloadLength(encodeTextFrame("héllo")), 6);
 * ```
 */
export function statedPayloadLength(frame: Uint8Array): number {
  const n = frame[1]! & 0x7f;
  if (n < 126) return n;
  if (n === 126) return (frame[2]! << 8) | frame[3]!;
  return new DataView(frame.buffer, frame.byteOffset + 2, 8).getUint32(0) * 0x1_0000_0000 +
    new DataView(frame.buffer, frame.byteOffset + 6, 4).getUint32(0);
}
