// The specification of client/probes.ts: ping frames and application probes,
// what answers each, and the round-trip times they measure.

import assert from "node:assert/strict";
import { Probes, untilAborted } from "../client/probes.ts";
import type { ProbeOptions } from "../client/options.ts";
import type { Probe, ProbeListener } from "../heartbeat/loop.ts";

const text = new TextDecoder();

/** Probes whose sends are recorded: `pings` as their payloads in text, `sent` as messages. */
function probes(options: ProbeOptions = {}) {
  const pings: string[] = [];
  const sent: (string | Uint8Array)[] = [];
  const state = { refuse: undefined as Error | undefined };
  const p = new Probes(options, {
    send: (message) => {
      if (state.refuse) throw state.refuse;
      sent.push(message);
    },
    ping: (payload) => {
      if (state.refuse) throw state.refuse;
      pings.push(text.decode(payload));
    },
  });
  return { p, pings, sent, state };
}

/** A listener that records what it heard. */
function listener() {
  const heard: string[] = [];
  const l: ProbeListener = {
    replied: (_probe: Probe, rtt: number) => heard.push(`replied ${rtt >= 0}`),
    failed: (_probe: Probe, error: unknown) => heard.push(`failed ${(error as Error).message}`),
  };
  return { l, heard };
}

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("Probes.pingFrame() numbers its pings, and only the pong with the same payload answers", () => {
  const { p, pings } = probes();
  const first = listener();
  const second = listener();
  p.pingFrame(first.l);
  p.pingFrame(second.l);
  assert.deepEqual(pings, ["1", "2"]);
  p.onPong(bytes("3")); // unsolicited, or for no probe: ignored
  p.onPong(bytes("02"));
  p.onPong(new Uint8Array());
  assert.deepEqual([first.heard, second.heard], [[], []]);
  p.onPong(bytes("2"));
  assert.deepEqual([first.heard, second.heard], [[], ["replied true"]]);
  p.onPong(bytes("2")); // a second pong for it: nothing more
  assert.deepEqual(second.heard, ["replied true"]);
  assert.equal(p.latency?.samples, 1);
});

Deno.test("Probes.probeMessage() takes its echo as the answer and keeps it from the application", () => {
  const { p, sent } = probes({ message: (seq) => `probe ${seq}` });
  const beat = listener();
  p.probeMessage(beat.l);
  assert.deepEqual(sent, ["probe 1"]);
  assert.equal(p.awaitingMessage, true);
  assert.equal(p.onMessage("probe 1"), true, "heartbeat traffic");
  assert.deepEqual(beat.heard, ["replied true"]);
  assert.equal(p.awaitingMessage, false);
});

Deno.test("Probes.onMessage() without reply: any other message answers every probe and is delivered", () => {
  const { p } = probes();
  const a = listener();
  const b = listener();
  p.probeMessage(a.l);
  p.probeMessage(b.l);
  assert.equal(p.onMessage("a price"), false, "delivered");
  assert.deepEqual([a.heard, b.heard], [["replied true"], ["replied true"]]);
  assert.equal(p.onMessage("another"), false, "no probe waits: delivered");
});

Deno.test("Probes.onMessage() with reply: only the reply answers, and never reaches the application", async (t) => {
  await t.step("a string: answers the oldest probe", () => {
    const { p } = probes({ reply: "pong" });
    assert.equal(p.hasReply, true);
    const a = listener();
    const b = listener();
    p.probeMessage(a.l);
    p.probeMessage(b.l);
    assert.equal(p.onMessage("other"), false);
    assert.equal(p.onMessage("pong"), true);
    assert.deepEqual([a.heard, b.heard], [["replied true"], []]);
    assert.equal(p.onMessage("pong"), true, "a reply with no probe waiting is still hidden");
  });
  await t.step("bytes: compared byte by byte", () => {
    const { p } = probes({ reply: bytes("ok") });
    const a = listener();
    p.probeMessage(a.l);
    assert.equal(p.onMessage("ok"), false, "text is not the bytes");
    assert.equal(p.onMessage(bytes("ok")), true);
    assert.deepEqual(a.heard, ["replied true"]);
  });
  await t.step("a predicate: given each probe's number; a throw is no match", () => {
    const { p } = probes({
      message: (seq) => JSON.stringify({ op: "ping", seq }),
      reply: (message, seq) => {
        if (message === "bad") throw new Error("unparsable");
        return JSON.parse(String(message)).seq === seq;
      },
    });
    const a = listener();
    const b = listener();
    p.probeMessage(a.l);
    p.probeMessage(b.l);
    assert.equal(p.onMessage("bad"), false);
    assert.equal(p.onMessage(JSON.stringify({ seq: 2 })), true);
    assert.deepEqual([a.heard, b.heard], [[], ["replied true"]]);
  });
});

Deno.test("Probes.awaited() resolves with the round trip, or rejects when it cannot be sent", async () => {
  const { p, pings, state } = probes();
  const frame = p.awaited(false);
  p.onPong(bytes(pings[0]!));
  assert.ok((await frame.reply) >= 0);
  const message = p.awaited(true);
  p.onMessage("ping");
  assert.ok((await message.reply) >= 0);
  state.refuse = new Error("not open");
  await assert.rejects(p.awaited(false).reply, { message: "not open" });
});

Deno.test("Probes.pingFrame() throws what the send threw, and forgets the probe", () => {
  const { p, state } = probes();
  state.refuse = new Error("not open");
  const beat = listener();
  assert.throws(() => p.pingFrame(beat.l), { message: "not open" });
  p.rejectAll(new Error("closed"));
  assert.deepEqual(beat.heard, [], "the listener heard of it as the throw only");
});

Deno.test("Probes.rejectAll() fails every outstanding probe with the error", async () => {
  const { p } = probes();
  const beat = listener();
  p.pingFrame(beat.l);
  const frame = p.awaited(false);
  const message = p.awaited(true);
  p.rejectAll(new Error("closed"));
  assert.deepEqual(beat.heard, ["failed closed"]);
  await assert.rejects(frame.reply, { message: "closed" });
  await assert.rejects(message.reply, { message: "closed" });
});

Deno.test("Probes.latency gives last, min, avg and p99 over the last 100 round trips", () => {
  const { p } = probes();
  assert.equal(p.latency, undefined);
  for (let rtt = 1; rtt <= 150; rtt++) p.record(rtt);
  assert.deepEqual(p.latency, { last: 150, min: 51, avg: 100.5, p99: 149, samples: 100 });
});

Deno.test("untilAborted() abandons the probe with the signal's reason", async () => {
  const { p } = probes();
  const controller = new AbortController();
  const waiting = untilAborted(p.awaited(false), controller.signal);
  controller.abort(new Error("enough"));
  await assert.rejects(waiting, { message: "enough" });
  const aborted = AbortSignal.abort(new Error("already"));
  await assert.rejects(untilAborted(p.awaited(false), aborted), { message: "already" });
});
