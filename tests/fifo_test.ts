import assert from "node:assert/strict";
import { Fifo } from "../util/fifo.ts";

Deno.test("Fifo.shift() keeps order across refills, bursts and a producer that never lets it empty", () => {
  const queue = new Fifo<number>();
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 40; i++) queue.push(round * 100 + i); // a burst past the kept slots
    for (let i = 0; i < 40; i++) assert.equal(queue.shift(), round * 100 + i);
    assert.equal(queue.size, 0);
    assert.equal(queue.shift(), undefined);
  }
  // Steady: one in, one out, never empty; the taken slots in front are dropped as it goes.
  let next = 0;
  queue.push(next++);
  for (let i = 0; i < 10_000; i++) {
    queue.push(next++);
    assert.equal(queue.shift(), i);
  }
  assert.equal(queue.size, 1);
  assert.deepEqual(queue.takeAll(), [10_000]);
  assert.deepEqual(queue.takeAll(), []);
  // A deep queue that is never emptied: its array is compacted as it goes, order kept.
  for (let i = 0; i < 3000; i++) queue.push(i);
  for (let i = 0; i < 5000; i++) {
    queue.push(3000 + i);
    assert.equal(queue.shift(), i);
  }
  assert.equal(queue.size, 3000);
  assert.deepEqual(queue.takeAll(), Array.from({ length: 3000 }, (_, i) => 5000 + i));
});
