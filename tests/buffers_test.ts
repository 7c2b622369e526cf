// protocol/buffers.ts: the pool's rule for giving memory back, and slabs that never reuse a byte.
// How much memory the layers above actually recycle is tests/perf_invariants_test.ts.
import assert from "node:assert/strict";
import {
  payloadAllocator,
  POOL_BYTES,
  POOLED_MAX,
  pooledBytes,
  release,
  Slab,
  takeBuffer,
} from "../protocol/buffers.ts";

/** Empties the pool (it is process-wide) by taking every free buffer of the classes used here. */
function drain(): void {
  for (let guard = 0; pooledBytes() > 0 && guard < 10_000; guard++) {
    for (const size of [4096, 8192, 16384, 32768, 65536, 131072, 262144]) takeBuffer(size);
  }
  assert.equal(pooledBytes(), 0);
}

Deno.test("takeBuffer() gives a buffer back to the next taker of its size class", () => {
  drain();
  const a = takeBuffer(40_000);
  assert.ok(a.length >= 40_000 && a.length < 2 * 40_000, `class of ${a.length} bytes`);
  assert.equal(release(a), true);
  assert.equal(pooledBytes(), a.length);
  assert.equal(takeBuffer(50_000).buffer, a.buffer, "same class: the same buffer");
  assert.equal(pooledBytes(), 0);
  assert.notEqual(takeBuffer(50_000).buffer, a.buffer, "taken: not handed out twice");
});

Deno.test("release() refuses buffers it did not issue, twice-given ones and past its bound", () => {
  drain();
  assert.equal(release(new Uint8Array(65_568)), false, "not the pool's");
  assert.equal(release(new Uint8Array(new SharedArrayBuffer(8))), false, "not an ArrayBuffer");
  const big = takeBuffer(POOLED_MAX + 100_000);
  assert.equal(big.length, POOLED_MAX + 100_000, "over POOLED_MAX: exactly the size");
  assert.equal(release(big), false, "over POOLED_MAX: not pooled");
  const a = takeBuffer(10_000);
  assert.equal(release(a), true);
  assert.equal(release(a), false, "already free");
  drain();
  const taken = Array.from({ length: 100 }, () => takeBuffer(POOLED_MAX));
  const pooled = taken.filter((b) => release(b)).length;
  assert.equal(pooled, Math.floor(POOL_BYTES / taken[0]!.length));
  assert.ok(pooledBytes() <= POOL_BYTES);
  drain();
});

Deno.test("Slab.take() never hands out a byte twice, so earlier views keep their bytes", () => {
  const slab = new Slab(64);
  const views: Uint8Array[] = [];
  for (let i = 0; i < 40; i++) views.push(slab.take(5, i % 3).fill(i));
  for (const [i, view] of views.entries()) {
    assert.deepEqual(view, new Uint8Array(5).fill(i), `view ${i}`);
    assert.equal(view.byteOffset % 8, 0, "at a multiple of 8");
    assert.ok(view.byteOffset >= i % 3, "after its room");
  }
  assert.ok(new Set(views.map((v) => v.buffer)).size > 1, "a full slab is replaced, not reused");
});

Deno.test("payloadAllocator gives a kept payload bytes the pool never sees", () => {
  drain();
  const kept = payloadAllocator.large(40_000, "kept", 0, 0);
  assert.equal(release(kept), false, "not the pool's: the application may keep it");
  const read = payloadAllocator.large(40_000, "read", 0, 3);
  assert.equal(read.byteOffset % 8, 3, "at the offset modulo 8 of the bytes it is read from");
  assert.equal(release(read), true);
  const echo = payloadAllocator.large(40_000, "echo", 10, 5);
  assert.ok(echo.byteOffset >= 10 && echo.byteOffset % 8 === 5, `${echo.byteOffset}`);
  drain();
});
