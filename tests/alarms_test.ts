import assert from "node:assert/strict";
import { ALARM_GRID, pendingAlarms, setAlarm } from "../heartbeat/alarms.ts";

Deno.test("setAlarm() fires alarms in deadline order, never early, on one shared timer", async () => {
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

Deno.test("Alarm.cancel() keeps an alarm from firing, from any place in its slot", async () => {
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

Deno.test("setAlarm() handles in order an alarm cancelled or set by another firing at the same time", async () => {
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

Deno.test("Alarm.cancel() of the last alarm leaves no timer behind", () => {
  const alarm = setAlarm(60_000, () => assert.fail("fired"));
  alarm.cancel();
  assert.equal(pendingAlarms(), 0);
  // The test's op sanitizer fails it if the runtime timer were still armed.
});

Deno.test("setAlarm() fires the other due alarms when one throws", async () => {
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
