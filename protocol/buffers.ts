/**
 * The protocol layer (sans-I/O): the one owner of the memory frames live in.
 * Every slab, the pool of large buffers and the rule for giving memory back
 * are here; the frame reader gets {@linkcode payloadAllocator} and says only
 * what a payload is for ({@linkcode PayloadUse}), the encoders in
 * `protocol/frames.ts` take their slab from here, and whoever is done with
 * bytes (the protocol once it decoded a payload, a writer once it wrote a
 * frame) calls {@linkcode release}, which knows whether they can be reused.
 *
 * Why (Deno 2.9.6): a new `ArrayBuffer` for each small payload or frame cost
 * about 0.7 µs, more than the rest of handling it; a new zero-filled 64 KiB
 * buffer and its garbage about 8 µs, an eighth of a 64 KiB round trip. So:
 *
 * - **Slabs** ({@linkcode Slab}): small payloads and frames are cut from
 *   shared slabs, each byte handed out once and never reused, so a view
 *   stays valid however long it is held (it keeps its slab alive, nothing
 *   more). Nothing is ever given back to a slab.
 * - **The pool** ({@linkcode takeBuffer}): buffers for payloads over
 *   {@linkcode SMALL_PAYLOAD}, in size classes of powers of two, reused once
 *   {@linkcode release}d. Opportunistic: one never released is collected as
 *   any other, so losing track of one loses nothing but the saving; the free
 *   ones together hold at most {@linkcode POOL_BYTES}.
 *
 * @module
 */

/** Payloads up to this size that arrive whole are cut from slabs; larger ones get buffers. */
export const SMALL_PAYLOAD = 4 * 1024;

/** Payloads up to this size get pooled buffers; larger ones are rare and get their own. */
export const POOLED_MAX = 256 * 1024;

/** At most this many bytes of free buffers are kept, for the whole process. */
export const POOL_BYTES = 2 * 1024 * 1024;

/** Room a pooled buffer has besides its payload class (a header's room and its alignment). */
const SLACK = 32;

/** The smallest class: smaller payloads are cut from slabs. */
const MIN_CLASS = SMALL_PAYLOAD;

const free = new Map<number, ArrayBuffer[]>();
let freeBytes = 0;
const issued = new WeakSet<ArrayBuffer>();

/**
 * A buffer of at least `size` bytes, from the pool when one is free, else new.
 * Its contents are whatever its last user left: the caller must write every
 * byte it hands on. A `size` over {@linkcode POOLED_MAX} (plus some room) gets
 * a new buffer of exactly that size, which is never pooled.
 *
 * @param size The bytes needed.
 * @returns A view of the whole buffer.
 *
 * @example
 * ```ts
 * import { release, takeBuffer } from "./buffers.ts";
 * import assert from "node:assert/strict";
 *
 * const a = takeBuffer(60_000);
 * assert.ok(a.length >= 60_000);
 * release(a);
 * assert.equal(takeBuffer(50_000).buffer, a.buffer); // the same class: taken again
 * ```
 */
export function takeBuffer(size: number): Uint8Array {
  if (size > POOLED_MAX + SLACK) return new Uint8Array(size);
  const capacity = classOf(size);
  const reused = free.get(capacity)?.pop();
  if (reused !== undefined) {
    freeBytes -= capacity;
    return new Uint8Array(reused);
  }
  const buffer = new ArrayBuffer(capacity);
  issued.add(buffer);
  return new Uint8Array(buffer);
}

/**
 * Tells that nothing uses `bytes` any more: their buffer goes back to the
 * pool when it came from {@linkcode takeBuffer}; anything else (a slab's
 * view, a buffer of the caller's) is ignored, and so is a buffer that would
 * take the free ones over {@linkcode POOL_BYTES}. The one rule for giving
 * memory back: callers never ask where bytes came from.
 *
 * @param bytes Bytes the caller is done with, or a view of them.
 * @returns Whether their buffer was pooled.
 *
 * @example
 * ```ts
 * import { release, takeBuffer } from "./buffers.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(release(new Uint8Array(8192)), false); // not the pool's
 * assert.equal(release(takeBuffer(8192).subarray(10, 20)), true);
 * ```
 */
export function release(bytes: Uint8Array): boolean {
  const buffer = bytes.buffer;
  if (!(buffer instanceof ArrayBuffer) || !issued.has(buffer)) return false;
  const capacity = buffer.byteLength;
  const list = free.get(capacity) ?? [];
  if (freeBytes + capacity > POOL_BYTES || list.includes(buffer)) return false;
  list.push(buffer);
  free.set(capacity, list);
  freeBytes += capacity;
  return true;
}

/** Bytes held by free buffers (for the performance invariants' test). */
export function pooledBytes(): number {
  return freeBytes;
}

/** The class for `size`: the power of two at or above its payload part, plus the slack. */
function classOf(size: number): number {
  let payload = MIN_CLASS;
  while (payload + SLACK < size) payload *= 2;
  return payload + SLACK;
}

/**
 * A bump allocator: hands out its bytes in order at multiples of 8, each
 * once, and starts a new buffer of `size` bytes when the rest is too small.
 * Nothing is given back, so a view it handed out stays valid and unchanged.
 *
 * @example
 * ```ts
 * import { Slab } from "./buffers.ts";
 * import assert from "node:assert/strict";
 *
 * const slab = new Slab(1024);
 * const a = slab.take(3);
 * const b = slab.take(3);
 * assert.equal(a.buffer, b.buffer);
 * assert.equal(b.byteOffset, 8);
 * ```
 */
export class Slab {
  /** The current buffer; replaced (not reused) once full. */
  bytes: Uint8Array = new Uint8Array(0);
  /** The current buffer as 32-bit words, for masking without a view per frame. */
  words: Int32Array = new Int32Array(0);
  /** How many bytes of the current buffer were handed out. */
  used = 0;
  readonly #size: number;

  /**
   * Constructs a new instance.
   *
   * @param size The size of each buffer.
   */
  constructor(size: number) {
    this.#size = size;
  }

  /**
   * Reserves `size` bytes at a multiple of 8 after at least `room` bytes no
   * one else uses, and returns their offset in {@linkcode Slab.bytes} (which
   * may be a new buffer). The caller may hand back the tail it did not use
   * by moving {@linkcode Slab.used} down to where its bytes end.
   *
   * @param size The bytes needed, at most the slab's size less `room` and 8.
   * @param room Bytes before them that must be the caller's too.
   * @returns The offset.
   */
  reserve(size: number, room = 0): number {
    let at = (this.used + room + 7) & ~7;
    if (at + size > this.bytes.length) {
      this.bytes = new Uint8Array(this.#size);
      this.words = new Int32Array(this.bytes.buffer);
      at = (room + 7) & ~7;
    }
    this.used = at + size;
    return at;
  }

  /**
   * The next `length` bytes, as a view (see {@linkcode Slab.reserve}).
   *
   * @param length The bytes needed.
   * @param room Bytes before them that must be the caller's too.
   * @returns The view.
   */
  take(length: number, room = 0): Uint8Array {
    const at = this.reserve(length, room);
    return this.bytes.subarray(at, at + length);
  }
}

/**
 * What a received payload is for, which decides where its bytes go:
 * - `"read"`: decoded or copied by the protocol and then dropped (text,
 *   fragments, close frames, pongs);
 * - `"kept"`: handed to the application as it is (a whole binary message, a
 *   ping's data), so it must never be reused;
 * - `"echo"`: a whole message an echo server sends back from where it was
 *   read, with room for the frame header before it.
 */
export type PayloadUse = "read" | "kept" | "echo";

/**
 * Where a `FrameReader` gets its payloads' bytes ({@linkcode payloadAllocator});
 * an interface so that a test can count or vary them.
 */
export interface PayloadAllocator {
  /** The largest payload {@linkcode PayloadAllocator.small} takes. */
  readonly smallMax: number;
  /**
   * Bytes for a payload of at most `smallMax` bytes that arrived whole: a
   * view of a slab, never reused, never to be released.
   *
   * @param length The payload's size.
   * @param use What it is for.
   * @param room Bytes before it that must belong to it too (an echo's header).
   * @returns The bytes.
   */
  small(length: number, use: PayloadUse, room: number): Uint8Array;
  /**
   * Bytes for any other payload (larger, or arriving over several reads,
   * which would keep a whole slab alive): a buffer of its own, to be
   * {@linkcode release}d by whoever is done with it last.
   *
   * @param length The payload's size.
   * @param use What it is for.
   * @param room Bytes before it that must belong to it too (an echo's header).
   * @param from Where the received bytes start, so that the payload starts at
   *   the same offset modulo 8 (unmasked word by word as it is copied).
   * @returns The bytes.
   */
  large(length: number, use: PayloadUse, room: number, from: number): Uint8Array;
  /**
   * Gives back a payload from {@linkcode PayloadAllocator.large} once nothing
   * uses it (see {@linkcode release}).
   *
   * @param bytes The payload.
   */
  release(bytes: Uint8Array): void;
}

/**
 * Received payloads that are only read, or echoed: one slab for every
 * reader, so a connection that receives a few small frames does not hold a
 * slab of its own.
 */
const readSlab = new Slab(64 * 1024);
/**
 * Whole binary messages and pings, which the application may keep (as
 * Node's `Buffer` pool does): a kept one keeps its slab alive, so these
 * slabs are smaller than the ones only read. Why 32 KiB (measured on a
 * firehose, Deno 2.9.6): client CPU per message was 15-25 % lower than with
 * 8 KiB slabs for messages of 1 to 4 KiB, and no lower with 64 KiB; Node's
 * `ws` keeps a whole 64 KiB read alive for a message it hands out.
 */
export const KEPT_SLAB = 32 * 1024;
const keptSlab = new Slab(KEPT_SLAB);

/**
 * The allocator every `FrameReader` uses unless told otherwise: small
 * payloads from the two slabs above (kept ones from their own), larger ones
 * from the pool, except kept ones, which get a new buffer (the application
 * owns them; the pool never sees them again).
 *
 * @example
 * ```ts
 * import { payloadAllocator } from "./buffers.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(payloadAllocator.small(100, "kept", 0).length, 100);
 * assert.equal(payloadAllocator.large(10_000, "read", 0, 0).length, 10_000);
 * ```
 */
export const payloadAllocator: PayloadAllocator = {
  smallMax: SMALL_PAYLOAD,
  small(length, use, room) {
    return use === "kept" ? keptSlab.take(length) : readSlab.take(length, room);
  },
  large(length, use, room, from) {
    if (use === "kept") return new Uint8Array(length);
    const before = room + ((from - room) & 7);
    return takeBuffer(before + length).subarray(before, before + length);
  },
  release,
};
