import assert from "node:assert/strict";
import { ALARM_GRID, pendingAlarms, setAlarm } from "../heartbeat/alarms.ts";
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

Deno.test("alarms fire in deadline order, never early, and share one timer", async () => {
  const fired: number[] = [];
  const start = performance.now();
  const done = new Promise<void>((resolve) => {
    for (const ms of [30, 5, 20, 5, 12]) {
      setAlarm(ms, () => {
        assert.ok(performance.now() - start >= ms, `alarm of ${ms} ms fired early`);
        fired.push(ms);
        if (fired.length === 5) resolve();
      });
    }
  });
  assert.equal(pendingAlarms(), 5);
  await done;
  assert.deepEqual(fired, [5, 5, 12, 20, 30]);
  assert.equal(pendingAlarms(), 0); // and no runtime timer left: the op sanitizer checks
});

Deno.test("a cancelled alarm never fires, from any place in its slot", async () => {
  const fired: number[] = [];
  const alarms = Array.from({ length: 40 }, (_, i) => setAlarm(i % 7, () => fired.push(i)));
  for (let i = 0; i < alarms.length; i += 3) alarms[i]!.cancel();
  alarms[0]!.cancel(); // twice is harmless
  assert.ok(alarms.every((a, i) => a.pending === (i % 3 !== 0)));
  await new Promise<void>((resolve) => setAlarm(7 + ALARM_GRID, resolve));
  assert.deepEqual(
    fired.sort((a, b) => a - b),
    alarms.map((_, i) => i).filter((i) => i % 3 !== 0),
  );
  assert.equal(pendingAlarms(), 0);
});

Deno.test("an alarm cancelled or set by another firing at the same time is handled in order", async () => {
  const fired: string[] = [];
  await new Promise<void>((resolve) => {
    let victim: ReturnType<typeof setAlarm> | undefined = undefined;
    setAlarm(2, () => {
      fired.push("first");
      victim!.cancel(); // same grid time, not fired yet
      setAlarm(0, () => fired.push("set while firing")); // due now: fired in this round or next
    });
    victim = setAlarm(2, () => fired.push("victim"));
    setAlarm(2, () => fired.push("third"));
    setAlarm(2 + 2 * ALARM_GRID, resolve);
  });
  assert.deepEqual(fired, ["first", "third", "set while firing"]);
  assert.equal(pendingAlarms(), 0);
});

Deno.test("cancelling the last alarm leaves no timer behind", () => {
  const alarm = setAlarm(60_000, () => assert.fail("fired"));
  alarm.cancel();
  assert.equal(pendingAlarms(), 0);
  // The test's op sanitizer fails it if the runtime timer were still armed.
});

Deno.test("an alarm that throws does not keep the others from firing", async () => {
  const fired: string[] = [];
  const errors: unknown[] = [];
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    errors.push(event.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    await new Promise<void>((resolve) => {
      setAlarm(1, () => {
        throw new Error("boom");
      });
      setAlarm(1, () => fired.push("second"));
      setAlarm(1 + ALARM_GRID, resolve);
    });
  } finally {
    globalThis.removeEventListener("error", onError);
  }
  assert.deepEqual(fired, ["second"]);
  assert.equal((errors[0] as Error)?.message, "boom");
});

Deno.test("HeartbeatLoop: stop() abandons the probe in flight with the reason and resolves done", async () => {
  const { send, sent } = manualProbes();
  const loop = new HeartbeatLoop(send, { interval: 10, timeout: 60_000 });
  const reason = new Error("closing");
  loop.stop(reason);
  await loop.done;
  assert.equal(sent[0]!.abandoned, reason);
  assert.ok(loop.ended);
  assert.equal(pendingAlarms(), 0);
});

Deno.test("HeartbeatLoop: a late reply abandons the probe with the TooSlowError it fails with", async () => {
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

Deno.test("HeartbeatLoop: sleeps interval between a reply and the next probe", async () => {
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

Deno.test("HeartbeatLoop: an onBeat that throws fails the heartbeat with its error", async () => {
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

Deno.test("HeartbeatLoop: an excused late reply is retried with a fresh probe when the excuse resolves", async () => {
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

Deno.test("HeartbeatLoop: a probe that fails, or cannot be sent, fails the loop with that error", async () => {
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
