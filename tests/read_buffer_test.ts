// The specification of transport/read_buffer.ts: the read buffer grows while
// reads fill it, further for large frames than for small messages, and goes
// back to the small size once the burst is over.

import assert from "node:assert/strict";
import {
  LARGE_FRAME,
  READ_SIZE_BULK,
  READ_SIZE_IDLE,
  READ_SIZE_MAX,
  ReadBuffer,
  SHRINK_AFTER,
} from "../transport/read_buffer.ts";

/** Fills the buffer `times` times with reads holding `eventsPerRead(size)` events. */
function fill(reads: ReadBuffer, times: number, eventsPerRead: (size: number) => number) {
  for (let i = 0; i < times; i++) {
    const size = reads.bytes.length;
    reads.filled(size, eventsPerRead(size));
  }
}

Deno.test("ReadBuffer doubles while reads fill it: to READ_SIZE_BULK for small messages", () => {
  const reads = new ReadBuffer();
  assert.equal(reads.bytes.length, READ_SIZE_IDLE);
  reads.filled(100, 3);
  assert.equal(reads.bytes.length, READ_SIZE_IDLE, "a read that did not fill it");
  fill(reads, 30, (size) => size / 32); // 32-byte messages
  assert.equal(reads.bytes.length, READ_SIZE_BULK);
});

Deno.test("ReadBuffer grows to READ_SIZE_MAX while the reads that fill it hold large frames", () => {
  const reads = new ReadBuffer();
  fill(reads, 30, (size) => Math.floor(size / (4 * LARGE_FRAME))); // frames of 64 KiB
  assert.equal(reads.bytes.length, READ_SIZE_MAX);
  const inside = new ReadBuffer();
  fill(inside, 30, () => 0); // reads inside one large frame make no event
  assert.equal(inside.bytes.length, READ_SIZE_MAX);
});

Deno.test("ReadBuffer goes back to READ_SIZE_IDLE after SHRINK_AFTER small reads in a row", () => {
  const reads = new ReadBuffer();
  fill(reads, 30, () => 0);
  const large = reads.bytes;
  for (let i = 0; i < SHRINK_AFTER - 1; i++) reads.filled(10, 1);
  reads.filled(READ_SIZE_MAX / 2, 1); // a larger read in between starts the count again
  for (let i = 0; i < SHRINK_AFTER - 1; i++) reads.filled(10, 1);
  assert.equal(reads.bytes, large, "not yet");
  reads.filled(10, 1);
  assert.equal(reads.bytes.length, READ_SIZE_IDLE);
});
