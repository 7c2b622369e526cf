// The specification of heartbeat/loop.ts: HeartbeatLoop, trio's
// `fail_after(timeout): ping; sleep(interval)` on the shared clock.

import assert from "node:assert/strict";
import { pendingAlarms } from "../heartbeat/alarms.ts";
import { TooSlowError } from "../util/errors.ts";
import { HeartbeatLoop, type Probe, type ProbeListener } from "../heartbeat/loop.ts";

/** A probe sender whose probes the test answers; each probe records what abandoned it. */
function manualProbes() {
  const sent: { abandoned: unknown; answer(rtt: number): void; fail(error: unknown): void }[] = [];
  const send = (listener: ProbeListener): Probe => {
    const probe = {
      abandoned: undefined as unknown,
      abandon(reason: unknown) {
        probe.abandoned = reason;
      },
      answer: (rtt: number) => listener.replied(probe, rtt),
      fail: (error: unknown) => listener.failed(probe, error),
    };
    sent.push(probe);
    return probe;
  };
  return { send, sent };
}

/** A probe sender whose every probe is answered (with `rtt`) as soon as the send returned. */
function answeredProbes(rtt = 1): (listener: ProbeListener) => Probe {
  return (listener) => {
    const probe = { abandon() {} };
    queueMicrotask(() => listener.replied(probe, rtt));
    return probe;
  };
}

Deno.test("HeartbeatLoop.stop() abandons the probe in flight with the reason and resolves done", async () => {
  const { send, sent } = manualProbes();
  const loop = new HeartbeatLoop(send, { interval: 10, timeout: 60_000 });
  const reason = new Error("closing");
  loop.stop(reason);
  await loop.done;
  assert.equal(sent[0]!.abandoned, reason);
  assert.ok(loop.ended);
  assert.equal(pendingAlarms(), 0);
});

Deno.test("HeartbeatLoop() fails with TooSlowError when a reply is late, and abandons the probe with it", async () => {
  const { send, sent } = manualProbes();
  const loop = new HeartbeatLoop(send, { interval: 10, timeout: 15 });
  const error = await loop.done.catch((e) => e);
  assert.ok(error instanceof TooSlowError);
  assert.equal(error.timeout, 15);
  assert.equal(sent[0]!.abandoned, error);
  sent[0]!.answer(1); // a reply after the failure changes nothing
  sent[0]!.fail(new Error("late")); // nor does a failure
  assert.equal(sent.length, 1);
  assert.equal(pendingAlarms(), 0);
});

Deno.test("HeartbeatLoop() sleeps interval between a reply and the next probe", async () => {
  const sent: number[] = [];
  const answered = answeredProbes(0);
  const probe = (listener: ProbeListener): Probe => {
    sent.push(performance.now());
    if (sent.length === 3) queueMicrotask(() => loop.stop("done"));
    return answered(listener);
  };
  const loop: HeartbeatLoop = new HeartbeatLoop(probe, { interval: 25, timeout: 1_000 });
  await loop.done;
  assert.equal(sent.length, 3);
  assert.ok(sent[1]! - sent[0]! >= 25 && sent[2]! - sent[1]! >= 25, `sent at ${sent}`);
});

Deno.test("HeartbeatLoop() fails with what onBeat throws", async () => {
  const boom = new Error("onBeat failed");
  const loop = new HeartbeatLoop(answeredProbes(1), {
    interval: 10,
    timeout: 100,
    onBeat: () => {
      throw boom;
    },
  });
  await assert.rejects(loop.done, (e) => e === boom);
  assert.equal(pendingAlarms(), 0);
});

Deno.test("HeartbeatLoop() retries an excused late reply with a fresh probe when the excuse resolves", async () => {
  const { send, sent: probes } = manualProbes();
  let excuse!: () => void;
  let excused = 0;
  const beats: number[] = [];
  const loop = new HeartbeatLoop(send, {
    interval: 60_000,
    timeout: 10,
    excuseLate: () => {
      excused++;
      return new Promise<void>((resolve) => (excuse = resolve));
    },
    onBeat: (rtt) => beats.push(rtt),
  });
  while (excused === 0) await new Promise((r) => setTimeout(r, 5));
  assert.ok(probes[0]!.abandoned instanceof TooSlowError);
  assert.equal(probes.length, 1, "no new probe while excused");
  excuse();
  await Promise.resolve();
  assert.equal(probes.length, 2);
  probes[1]!.answer(7);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(beats, [7]);
  loop.stop("done");
  await loop.done;
  assert.equal(pendingAlarms(), 0);
});

Deno.test("HeartbeatLoop() fails with the error of a probe that fails or cannot be sent", async () => {
  const { send, sent } = manualProbes();
  const loop = new HeartbeatLoop(send, { interval: 10, timeout: 60_000 });
  const closed = new Error("connection closed");
  sent[0]!.fail(closed);
  await assert.rejects(loop.done, (e) => e === closed);
  assert.equal(pendingAlarms(), 0);
  const refused = new Error("not open");
  const unsent = new HeartbeatLoop(() => {
    throw refused;
  }, { interval: 10, timeout: 60_000 });
  await assert.rejects(unsent.done, (e) => e === refused);
  assert.equal(pendingAlarms(), 0);
});

Deno.test("HeartbeatLoop() counts a reply that comes while catchUp runs, and fails only after it", async (t) => {
  await t.step("the reply comes during the catch-up: a beat, no failure", async () => {
    const { send, sent } = manualProbes();
    const beats: number[] = [];
    let caughtUp = 0;
    const loop = new HeartbeatLoop(send, {
      interval: 60_000,
      timeout: 10,
      onBeat: (rtt) => beats.push(rtt),
      catchUp: () => {
        caughtUp++;
        sent[0]!.answer(3); // what the owner took in was the reply
        return Promise.resolve();
      },
    });
    while (caughtUp === 0) await new Promise((r) => setTimeout(r, 5));
    await Promise.resolve();
    assert.deepEqual(beats, [3]);
    assert.equal(loop.ended, false);
    loop.stop("done");
    await loop.done;
    assert.equal(pendingAlarms(), 0);
  });
  await t.step("no reply after the catch-up: TooSlowError, catchUp called once", async () => {
    const { send } = manualProbes();
    let caughtUp = 0;
    const loop = new HeartbeatLoop(send, {
      interval: 60_000,
      timeout: 10,
      catchUp: () => {
        caughtUp++;
        return new Promise((r) => setTimeout(r, 5));
      },
    });
    await assert.rejects(loop.done, TooSlowError);
    assert.equal(caughtUp, 1);
    assert.equal(pendingAlarms(), 0);
  });
  await t.step("a catchUp that rejects fails the loop with its error", async () => {
    const boom = new Error("catch-up failed");
    const loop = new HeartbeatLoop(manualProbes().send, {
      interval: 60_000,
      timeout: 10,
      catchUp: () => Promise.reject(boom),
    });
    await assert.rejects(loop.done, (e) => e === boom);
  });
});

Deno.test("HeartbeatLoop() reports how late each of its alarms fired through onLag", async () => {
  const lags: number[] = [];
  const loop = new HeartbeatLoop(manualProbes().send, {
    interval: 60_000,
    timeout: 10,
    onLag: (ms) => lags.push(ms),
  });
  await assert.rejects(loop.done, TooSlowError);
  assert.equal(lags.length, 1, "the timeout's alarm");
  assert.ok(lags[0]! >= 0);
});

Deno.test("HeartbeatLoop() abandons a probe whose send stopped the loop, with the stop's reason", async () => {
  const { send, sent } = manualProbes();
  const owner: { loop?: HeartbeatLoop } = {};
  owner.loop = new HeartbeatLoop((listener) => {
    const probe = send(listener);
    owner.loop?.stop("closed while sending"); // not yet set on the first beat, sent at once
    return probe;
  }, { interval: 1, timeout: 60_000 });
  sent[0]!.answer(1); // the reply schedules the next beat, whose send stops the loop
  await owner.loop.done;
  assert.equal(sent.length, 2);
  assert.equal(sent[1]!.abandoned, "closed while sending");
  assert.equal(pendingAlarms(), 0);
});
