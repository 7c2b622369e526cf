/**
 * The protocol layer (sans-I/O), the writers' helper: buffers for large frames
 * and for the large payloads an echo server sends back, taken again once
 * they were written instead of allocated (and zero-filled) for every message
 * and then collected. A new 64 KiB buffer and its garbage cost about 8 µs
 * (Deno 2.9.6), an eighth of the CPU time of a 64 KiB message's round trip.
 *
 * The pool is opportunistic: a buffer that is never given back is collected
 * as any other, so a caller that loses track of one loses nothing but the
 * saving. A buffer may be given back only when nothing uses it any more:
 * the frame writer (`transport/frame_writer.ts`) gives back each frame's buffer once
 * the frame is written, and `giveBack` ignores buffers that are not the
 * pool's. Frames come from the pool through the `slab`
 * option of `protocol/frames.ts`, an echo server's payloads through `headerRoom` in
 * `protocol/frame_reader.ts`.
 *
 * Bounds: buffers are pooled for payloads up to {@linkcode POOLED_MAX}, in
 * size classes of powers of two, and the free ones together hold at most
 * {@linkcode POOL_BYTES}; past that a buffer given back is left to the
 * collector.
 *
 * @module
 */

/** Payloads up to this size get pooled buffers; larger ones are rare and get their own. */
export const POOLED_MAX = 256 * 1024;

/** At most this many bytes of free buffers are kept, for the whole process. */
export const POOL_BYTES = 2 * 1024 * 1024;

/** Room a pooled buffer has besides its payload class (a header's room and its alignment). */
const SLACK = 32;

/** The smallest class: smaller payloads are copied into shared slabs (`protocol/frame_reader.ts`). */
const MIN_CLASS = 4 * 1024;

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
 * import { giveBack, takeBuffer } from "./buffer_pool.ts";
 * import assert from "node:assert/strict";
 *
 * const a = takeBuffer(60_000);
 * assert.ok(a.length >= 60_000);
 * giveBack(a.buffer);
 * assert.equal(takeBuffer(50_000).buffer, a.buffer); // the same class: taken again
 * ```
 */
export function takeBuffer(size: number): Uint8Array {
  if (size > POOLED_MAX + SLACK) return new Uint8Array(size);
  const capacity = classOf(size);
  const list = free.get(capacity);
  const reused = list?.pop();
  if (reused !== undefined) {
    freeBytes -= capacity;
    return new Uint8Array(reused);
  }
  const buffer = new ArrayBuffer(capacity);
  issued.add(buffer);
  return new Uint8Array(buffer);
}

/**
 * Gives a buffer from {@linkcode takeBuffer} back to the pool, to be taken
 * again. Any other buffer is ignored, and so is one that would take the free
 * buffers over {@linkcode POOL_BYTES}. Nothing may use it afterwards.
 *
 * @param buffer The buffer.
 * @returns Whether it was pooled.
 *
 * @example
 * ```ts
 * import { giveBack, takeBuffer } from "./buffer_pool.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(giveBack(new ArrayBuffer(8192)), false); // not the pool's
 * assert.equal(giveBack(takeBuffer(8192).buffer), true);
 * ```
 */
export function giveBack(buffer: ArrayBufferLike): boolean {
  if (!(buffer instanceof ArrayBuffer) || !issued.has(buffer)) return false;
  const capacity = buffer.byteLength;
  const list = free.get(capacity) ?? [];
  if (freeBytes + capacity > POOL_BYTES || list.includes(buffer)) return false;
  list.push(buffer);
  free.set(capacity, list);
  freeBytes += capacity;
  return true;
}

/** Bytes held by free buffers (for tests and benchmarks). */
export function pooledBytes(): number {
  return freeBytes;
}

/** The class for `size`: the power of two at or above its payload part, plus the slack. */
function classOf(size: number): number {
  let payload = MIN_CLASS;
  while (payload + SLACK < size) payload *= 2;
  return payload + SLACK;
}
