// The specification of client/inbox.ts: the bounded queue of received
// messages and the readers waiting on it.

import assert from "node:assert/strict";
import { Inbox } from "../client/inbox.ts";

/** An inbox whose onFull and onRoom calls are recorded in `calls`. */
function inbox(maxMessages = 4, maxBytes = 1_000) {
  const calls: string[] = [];
  const box = new Inbox({
    maxMessages,
    maxBytes,
    onFull: () => calls.push("full"),
    onRoom: () => calls.push("room"),
  });
  return { box, calls };
}

Deno.test("Inbox.shift() gives the queued messages in the order they were pushed", () => {
  const { box } = inbox(10_000, Infinity);
  const bytes = new Uint8Array([1, 2]);
  box.push("a");
  box.push(bytes);
  assert.equal(box.length, 2);
  assert.equal(box.shift(), "a");
  assert.equal(box.shift(), bytes);
  assert.equal(box.shift(), undefined);
  for (let i = 0; i < 3000; i++) box.push(String(i)); // a deep queue, drained while it refills
  for (let i = 0; i < 5000; i++) {
    box.push(String(3000 + i));
    assert.equal(box.shift(), String(i));
  }
  assert.equal(box.length, 3000);
});

Deno.test("Inbox.push() calls onFull once at either bound, and shift() calls onRoom at half of both", async (t) => {
  await t.step("the message bound", () => {
    const { box, calls } = inbox(4, 1_000);
    for (let i = 0; i < 3; i++) box.push("x");
    assert.deepEqual(calls, []);
    box.push("x");
    box.push("x"); // past the bound: no second call
    assert.deepEqual(calls, ["full"]);
    box.shift();
    box.shift();
    assert.deepEqual(calls, ["full"], "3 left, above half of 4");
    box.shift();
    assert.deepEqual(calls, ["full", "room"]);
  });
  await t.step("the byte bound, counted in UTF-8", () => {
    const { box, calls } = inbox(100, 10);
    box.push("é".repeat(4)); // 8 bytes
    assert.deepEqual(calls, []);
    box.push(new Uint8Array(2));
    assert.deepEqual(calls, ["full"]);
    box.shift();
    assert.deepEqual(calls, ["full", "room"], "2 bytes left, at most half of 10");
  });
});

Deno.test("Inbox.push() hands a message to a waiting reader directly, outside the bounds", async () => {
  const { box, calls } = inbox(1, 1);
  const waiting = box.receive();
  const iterating = box.next();
  box.push("first");
  box.push("second");
  assert.equal(await waiting, "first");
  assert.deepEqual(await iterating, { value: "second", done: false });
  assert.equal(box.length, 0);
  assert.deepEqual(calls, [], "nothing waited, so no bound was reached");
});

Deno.test("Inbox.receive() rejects with the signal's reason and leaves the next message for later", async () => {
  const { box } = inbox();
  const controller = new AbortController();
  const waiting = box.receive(controller.signal);
  controller.abort(new Error("gave up"));
  await assert.rejects(waiting, { message: "gave up" });
  box.push("kept");
  assert.equal(box.length, 1);
  assert.equal(await box.receive(controller.signal), "kept", "a queued message even so");
  await assert.rejects(box.receive(controller.signal), { message: "gave up" });
});

Deno.test("Inbox.end() lets the queued messages be read first, then rejects readers", async (t) => {
  const closed = new Error("closed with 4001");
  await t.step("not quiet: receive() and next() reject", async () => {
    const { box } = inbox();
    const waiting = box.receive();
    const iterating = box.next();
    box.end(closed, false);
    await assert.rejects(waiting, (e) => e === closed);
    await assert.rejects(iterating, (e) => e === closed);
  });
  await t.step("quiet: iteration is done, receive() still rejects", async () => {
    const { box } = inbox();
    box.push("last");
    const iterating = box.next();
    box.end(closed, true);
    assert.deepEqual(await iterating, { value: "last", done: false });
    assert.deepEqual(await box.next(), { value: undefined, done: true });
    await assert.rejects(box.receive(), (e) => e === closed);
  });
  await t.step("a waiting iterator is done at a quiet end", async () => {
    const { box } = inbox();
    const iterating = box.next();
    box.end(closed, true);
    assert.deepEqual(await iterating, { value: undefined, done: true });
  });
});

Deno.test("Inbox.settled() is undefined while no message waits, and otherwise waits for the reader", async (t) => {
  await t.step("nothing queued: no wait", () => {
    const { box } = inbox(100, Infinity);
    assert.equal(box.settled(), undefined);
    box.push("a");
    box.shift();
    assert.equal(box.settled(), undefined);
  });
  await t.step("resolved when the reader takes the last queued message", async () => {
    const { box } = inbox(100, Infinity);
    box.push("a");
    box.push("b");
    const order: string[] = [];
    const wait = box.settled()!.then(() => order.push("settled"));
    box.shift();
    await Promise.resolve();
    assert.deepEqual(order, [], "one message still waits");
    box.shift();
    await wait;
    assert.deepEqual(order, ["settled"]);
  });
  await t.step("resolved after a turn of the event loop when no one reads", async () => {
    const { box } = inbox(100, Infinity);
    box.push("a");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise((resolve) => (timer = setTimeout(resolve, 2000, "late")));
    const first = await Promise.race([box.settled()!.then(() => "settled"), late]);
    clearTimeout(timer);
    assert.equal(first, "settled");
    assert.equal(box.length, 1, "the message still waits");
  });
  await t.step("resolved at once when the inbox ends", async () => {
    const { box } = inbox(100, Infinity);
    box.push("a");
    const wait = box.settled()!;
    box.end(new Error("gone"), true);
    await wait; // no timer left behind: the sanitizers would say so
    assert.equal(box.settled(), undefined, "ended: no wait");
  });
});
