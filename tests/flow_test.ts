// The specification of client/flow.ts: pausing reading for a slow consumer
// (and excusing the heartbeat meanwhile), and drain() for a producer.

import assert from "node:assert/strict";
import { Flow } from "../client/flow.ts";
import type { Transport } from "../transport/transport.ts";

/** A transport that only records pause and resume, with a settable bufferedAmount. */
function transport(canPause = true) {
  const calls: string[] = [];
  const fake = {
    bufferedAmount: 0,
    canPause,
    pause: () => calls.push("pause"),
    resume: () => calls.push("resume"),
  };
  return { transport: fake as unknown as Transport & { bufferedAmount: number }, calls };
}

const never = () => undefined;

Deno.test("Flow.pause() and resume() stop and restart reading once each, and count the pauses", () => {
  const { transport: t, calls } = transport();
  const flow = new Flow(t, 100);
  flow.pause();
  flow.pause();
  assert.equal(flow.paused, true);
  flow.resume();
  flow.resume();
  assert.equal(flow.paused, false);
  flow.pause();
  assert.deepEqual(calls, ["pause", "resume", "pause"]);
  assert.equal(flow.pauses, 2);
});

Deno.test("Flow.excuseLate() excuses a late reply while reading is paused and just after", async () => {
  const { transport: t } = transport();
  const flow = new Flow(t, 100);
  assert.equal(flow.excuseLate(1_000), undefined, "never paused: the peer is to blame");
  flow.pause();
  let resumed = false;
  const excused = flow.excuseLate(1_000)!.then(() => (resumed = true));
  await Promise.resolve();
  assert.equal(resumed, false, "waits while paused");
  flow.resume();
  await excused;
  assert.ok(flow.excuseLate(1_000) instanceof Promise, "resumed within the timeout");
  assert.equal(flow.excuseLate(0), undefined, "resumed longer ago than the timeout");
});

Deno.test("Flow.end() releases an excuse waiting on a pause", async () => {
  const { transport: t } = transport();
  const flow = new Flow(t, 100);
  flow.pause();
  const excused = flow.excuseLate(1_000)!;
  flow.end();
  await excused;
  assert.equal(flow.paused, false);
});

Deno.test("Flow.drain() resolves once at most the high-water mark waits to be written", async (t) => {
  await t.step("below the mark: at once", async () => {
    const { transport: fake } = transport();
    fake.bufferedAmount = 100;
    await new Flow(fake, 100).drain(never, undefined);
  });
  await t.step("above: after the write that brings it down", async () => {
    const { transport: fake } = transport();
    const flow = new Flow(fake, 100);
    fake.bufferedAmount = 500;
    let drained = false;
    const waiting = flow.drain(never, undefined).then(() => (drained = true));
    flow.written();
    await Promise.resolve();
    assert.equal(drained, false, "still above the mark");
    fake.bufferedAmount = 50;
    flow.written();
    await waiting;
  });
  await t.step("on a transport without drain events (native): by polling", async () => {
    const { transport: fake } = transport(false);
    const flow = new Flow(fake, 100);
    fake.bufferedAmount = 500;
    const waiting = flow.drain(never, undefined);
    setTimeout(() => (fake.bufferedAmount = 0), 15);
    await waiting;
  });
});

Deno.test("Flow.drain() rejects with the connection's end, or the signal's reason", async (t) => {
  const closed = new Error("closed");
  await t.step("ended before the call", async () => {
    const { transport: fake } = transport();
    await assert.rejects(new Flow(fake, 100).drain(() => closed, undefined), (e) => e === closed);
  });
  await t.step("ended while waiting", async () => {
    const { transport: fake } = transport();
    const flow = new Flow(fake, 100);
    fake.bufferedAmount = 500;
    const state: { end?: Error } = {};
    const waiting = flow.drain(() => state.end, undefined);
    state.end = closed;
    flow.end();
    await assert.rejects(waiting, (e) => e === closed);
  });
  await t.step("the signal aborts", async () => {
    const { transport: fake } = transport(false);
    const flow = new Flow(fake, 100);
    fake.bufferedAmount = 500;
    const controller = new AbortController();
    const waiting = flow.drain(never, controller.signal);
    controller.abort(new Error("stop"));
    await assert.rejects(waiting, { message: "stop" });
    await assert.rejects(flow.drain(never, controller.signal), { message: "stop" });
  });
});
