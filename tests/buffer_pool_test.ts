import assert from "node:assert/strict";
import { giveBack, POOL_BYTES, POOLED_MAX, pooledBytes, takeBuffer } from "../buffer_pool.ts";
import { connect } from "../mod.ts";
import { serve } from "../serve.ts";

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
  assert.equal(giveBack(a.buffer), true);
  assert.equal(pooledBytes(), a.length);
  assert.equal(takeBuffer(50_000).buffer, a.buffer, "same class: the same buffer");
  assert.equal(pooledBytes(), 0);
  assert.notEqual(takeBuffer(50_000).buffer, a.buffer, "taken: not handed out twice");
});

Deno.test("giveBack() refuses buffers it did not issue, twice-given ones and past its bound", () => {
  drain();
  assert.equal(giveBack(new ArrayBuffer(65_568)), false, "not the pool's");
  assert.equal(giveBack(new SharedArrayBuffer(8)), false, "not an ArrayBuffer");
  const big = takeBuffer(POOLED_MAX + 100_000);
  assert.equal(big.length, POOLED_MAX + 100_000, "over POOLED_MAX: exactly the size");
  assert.equal(giveBack(big.buffer), false, "over POOLED_MAX: not pooled");
  const a = takeBuffer(10_000);
  assert.equal(giveBack(a.buffer), true);
  assert.equal(giveBack(a.buffer), false, "already free");
  drain();
  const taken = Array.from({ length: 100 }, () => takeBuffer(POOLED_MAX));
  const pooled = taken.filter((b) => giveBack(b.buffer)).length;
  assert.equal(pooled, Math.floor(POOL_BYTES / taken[0]!.length));
  assert.ok(pooledBytes() <= POOL_BYTES);
  drain();
});

Deno.test("serve() echoes large messages of one size class from buffers it reuses, intact", async () => {
  drain();
  await using server = serve();
  // Several clients, messages of one class (8 KiB to 64 KiB) with different lengths and bytes,
  // all in flight at once: a buffer given back too early, or stale bytes past a shorter
  // message, would show in an echo.
  const clients = await Promise.all([1, 2, 3].map(() => connect(server.url)));
  const lengths = [65_000, 40_000, 33_000, 64_000, 50_001];
  const sent = clients.map((_, c) => lengths.map((n, i) => new Uint8Array(n).fill(c * 16 + i + 1)));
  const texts = clients.map((_, c) => "xyz€".repeat(9000 + c)); // 54 000+ bytes of UTF-8
  for (const [c, client] of clients.entries()) {
    for (const bytes of sent[c]!) await client.send(bytes);
    await client.send(texts[c]!);
  }
  for (const [c, client] of clients.entries()) {
    const iterator = client[Symbol.asyncIterator]();
    for (const bytes of sent[c]!) assert.deepEqual((await iterator.next()).value, bytes);
    assert.equal((await iterator.next()).value, texts[c]);
  }
  assert.ok(pooledBytes() > 0, "the echoes' buffers went back to the pool");
  await Promise.all(clients.map((client) => client.close()));
});
