// The specification of client/watchdogs.ts: a connection's heartbeat (with
// its catch-up before blaming the peer) and stale watch, in one scope.

import assert from "node:assert/strict";
import { Watchdogs } from "../client/watchdogs.ts";
import { StaleFeedError } from "../client/stale.ts";
import { TooSlowError } from "../util/errors.ts";
import { pendingAlarms } from "../heartbeat/alarms.ts";
import type { Probe, ProbeListener } from "../heartbeat/loop.ts";

/** A heartbeat's settings as the client passes them: checked, every field set. */
function beat(interval: number, timeout: number) {
  return { interval, timeout, onBeat: undefined };
}

/** Watchdogs on recording hooks; the test answers probes and moves `progress`. */
function watchdogs() {
  const probes: (Probe & { application: boolean; listener: ProbeListener; abandoned?: unknown })[] =
    [];
  const failures: { initiator: string; error: Error }[] = [];
  const state = { progress: 0, paused: false, onFail: () => {}, onProgress: () => {} };
  const dogs = new Watchdogs({
    probe: (application, listener) => {
      const probe = {
        application,
        listener,
        abandoned: undefined as unknown,
        abandon(reason: unknown) {
          probe.abandoned = reason;
        },
      };
      probes.push(probe);
      return probe;
    },
    excuseLate: () => undefined,
    readPaused: () => state.paused,
    progress: () => {
      state.onProgress();
      return state.progress++;
    },
    fail: (initiator, error) => {
      failures.push({ initiator, error });
      state.onFail();
    },
  });
  const failed = new Promise<void>((resolve) => (state.onFail = resolve));
  return { dogs, probes, failures, state, failed };
}

Deno.test("Watchdogs.start() beats with ping frames, or application probes without them", async (t) => {
  for (
    const [name, canPing, heartbeat, application] of [
      ["ping frames", true, beat(60_000, 1_000), false],
      ["no ping frames on the transport", false, beat(60_000, 1_000), true],
      ["a probe message asked for", true, { ...beat(60_000, 1_000), message: "hi" }, true],
    ] as const
  ) {
    await t.step(name, () => {
      const { dogs, probes } = watchdogs();
      dogs.start({ heartbeat, canPing, staleAfter: Infinity });
      assert.equal(probes.length, 1, "the first probe goes out at once");
      assert.equal(probes[0]!.application, application);
      dogs.stop(new Error("closing"));
    });
  }
});

Deno.test("Watchdogs fail the connection as the heartbeat's with TooSlowError when no reply comes", async () => {
  const { dogs, failures, failed } = watchdogs();
  dogs.start({ heartbeat: beat(60_000, 20), canPing: true, staleAfter: Infinity });
  await failed;
  assert.equal(failures.length, 1);
  assert.equal(failures[0]!.initiator, "heartbeat");
  assert.ok(failures[0]!.error instanceof TooSlowError);
  assert.ok(dogs.lag >= 0);
  dogs.stop(failures[0]!.error);
});

Deno.test("Watchdogs take in what arrived before blaming the peer: a reply read in the catch-up counts", async () => {
  const { dogs, probes, failures, state } = watchdogs();
  // Input keeps arriving once the deadline passed (a backlog being read), and the reply is in
  // it: progress() is asked only by the catch-up, and grows each time.
  let asked = 0;
  state.onProgress = () => {
    if (++asked === 3) probes[0]!.listener.replied(probes[0]!, 25);
  };
  dogs.start({ heartbeat: beat(60_000, 20), canPing: true, staleAfter: Infinity });
  for (let i = 0; i < 100 && asked < 4; i++) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 10));
  assert.ok(asked >= 4, "the catch-up went on past the reply");
  assert.deepEqual(failures, [], "the reply was late only because it was not yet read");
  assert.equal(probes.length, 1, "no new beat before the interval");
  dogs.stop(new Error("closing"));
  assert.equal(pendingAlarms(), 0);
});

Deno.test("Watchdogs.stop() abandons the probe in flight with the reason, and nothing fails after", async () => {
  const { dogs, probes, failures } = watchdogs();
  dogs.start({ heartbeat: beat(60_000, 10), canPing: true, staleAfter: 10 });
  const reason = new Error("the server closed");
  dogs.stop(reason);
  assert.equal(probes[0]!.abandoned, reason);
  await new Promise((r) => setTimeout(r, 40));
  assert.deepEqual(failures, []);
  assert.equal(pendingAlarms(), 0);
  dogs.start({ heartbeat: beat(10, 10), canPing: true, staleAfter: 10 });
  assert.equal(probes.length, 1, "once stopped, start() does nothing");
});

Deno.test("Watchdogs fail the connection as the client's with StaleFeedError when no message comes", async () => {
  const { dogs, failures, failed } = watchdogs();
  const start = performance.now();
  const touching = setInterval(() => dogs.touch(), 5);
  setTimeout(() => clearInterval(touching), 40);
  dogs.start({ heartbeat: undefined, canPing: true, staleAfter: 20 });
  await failed;
  clearInterval(touching);
  assert.ok(performance.now() - start >= 40, "touched until 40 ms, then silent for 20");
  assert.equal(failures[0]!.initiator, "client");
  assert.ok(failures[0]!.error instanceof StaleFeedError);
  dogs.stop(failures[0]!.error);
});
