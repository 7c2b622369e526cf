// The wsbeat transport's heartbeat, flow control and options, against a raw scripted server.
import assert from "node:assert/strict";
import { connect, ConnectionClosedError } from "../mod.ts";
import { closePayload, concat, encodeFrame, OP, type RawPeer, rawServer } from "./_raw_server.ts";

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Answers ping frames with pongs; ignores every data frame; returns the ping payloads seen. */
async function answerPings(peer: RawPeer, pings: string[]): Promise<void> {
  for (let f = await peer.readFrame(); f; f = await peer.readFrame()) {
    if (f.opcode === OP.PING) {
      pings.push(decode(f.payload));
      await peer.sendFrame({ opcode: OP.PONG, payload: f.payload });
    } else if (f.opcode === OP.CLOSE) {
      await peer.sendFrame({ opcode: OP.CLOSE, payload: f.payload });
      return;
    }
  }
}

Deno.test("heartbeat: true sends ping frames numbered 1, 2, 3 and keeps a server that ignores text", async () => {
  const pings: string[] = [];
  await using server = rawServer((peer) => answerPings(peer, pings));
  const rtts: number[] = [];
  const { promise: fiveBeats, resolve } = Promise.withResolvers<void>();
  await using ws = await connect(server.url, {
    heartbeat: {
      interval: 10,
      timeout: 1_000,
      onBeat: (rtt) => rtts.push(rtt) === 5 && resolve(),
    },
  });
  await fiveBeats;
  assert.equal(ws.state, "open");
  assert.deepEqual(pings.slice(0, 5), ["1", "2", "3", "4", "5"]);
  assert.equal(ws.stats.messagesSent, 0, "ping frames are not messages");
  assert.equal((await ws.close()).wasClean, true);
  await server.done;
});

Deno.test("heartbeat with message and reply sends application probes on the wsbeat transport", async () => {
  await using server = rawServer(async (peer) => {
    const message = await peer.readMessage();
    assert.equal(message && decode(message.payload), "hb");
    await peer.sendFrame({ opcode: OP.TEXT, payload: "hb-ok" });
    const close = await peer.expectClose();
    await peer.sendFrame({ opcode: OP.CLOSE, payload: close!.payload });
  });
  const { promise: beat, resolve } = Promise.withResolvers<void>();
  await using ws = await connect(server.url, {
    heartbeat: {
      interval: 60_000,
      timeout: 1_000,
      message: "hb",
      reply: "hb-ok",
      onBeat: () => resolve(),
    },
  });
  await beat;
  assert.equal(ws.stats.messagesSent, 1);
  await ws.close();
  await server.done;
});

Deno.test("a slow consumer is not reported as a dead peer: the late pong is excused while reading is paused", async () => {
  // 50 messages in one write against a queue of 4: the client stops reading at once, so the
  // peer's pongs wait in the socket behind them for as long as the consumer dawdles.
  const messages = Array.from({ length: 50 }, (_, i) => `m${i}`);
  const pings: string[] = [];
  await using server = rawServer(async (peer) => {
    await peer.sendRaw(concat(messages.map((m) => encodeFrame({ opcode: OP.TEXT, payload: m }))));
    await answerPings(peer, pings);
  });
  await using ws = await connect(server.url, {
    maxQueuedMessages: 4,
    heartbeat: { interval: 5, timeout: 20 },
  });
  // Stall the consumer for ten heartbeat timeouts: a slow application, not a dead peer.
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(ws.stats.readPaused, true);
  const received = [];
  for (let i = 0; i < messages.length; i++) received.push(await ws.receive());
  assert.deepEqual(received, messages);
  assert.equal(ws.state, "open", "the heartbeat did not blame the peer");
  assert.ok(ws.stats.readPauses >= 1);
  const info = await ws.close();
  assert.equal(info.initiator, "client");
  assert.equal(info.error, undefined);
  await server.done;
});

Deno.test("drain() keeps a producer's memory bounded when the peer stops reading", async () => {
  const { promise: release, resolve: releasePeer } = Promise.withResolvers<void>();
  // The peer reads nothing until the test is done: its socket buffers fill up.
  await using server = rawServer(() => release, { timeout: 10_000 });
  const highWater = 256 * 1024;
  await using ws = await connect(server.url, { sendHighWaterMark: highWater, closeTimeout: 100 });
  const chunk = new Uint8Array(64 * 1024);
  const stop = AbortSignal.timeout(1_000);
  let sent = 0;
  let peak = 0;
  const error = await (async () => {
    // At most 4 096 sends (256 MiB): a loop that never blocks would fail the assertions below.
    for (; sent < 4096; sent++) {
      ws.send(chunk);
      peak = Math.max(peak, ws.bufferedAmount);
      await ws.drain({ signal: stop });
    }
  })().catch((e) => e);
  assert.equal(error, stop.reason, "drain() blocked until the signal gave up");
  assert.ok(sent < 4096, `the producer was held back after ${sent} sends`);
  assert.ok(peak <= highWater + chunk.length, `at most ${peak} bytes were buffered`);
  releasePeer();
  const info = await ws.close();
  assert.equal(info.code, 1006, "the peer never answered the close");
  await assert.rejects(ws.drain(), ConnectionClosedError);
  await server.done.catch(() => {});
});

Deno.test("connect() rejects options that do not fit the transport, naming them", async (t) => {
  await t.step("an unknown transport: TypeError", async () => {
    await assert.rejects(
      // deno-lint-ignore no-explicit-any
      connect("ws://127.0.0.1:9/", { transport: "tcp" as any }),
      {
        name: "TypeError",
        message: 'Cannot use transport "tcp" as it is not "wsbeat" or "native"',
      },
    );
  });
  await t.step("caCerts on the native transport: TypeError with the way that works", async () => {
    await assert.rejects(
      connect("wss://127.0.0.1:9/", { transport: "native", caCerts: ["pem"] }),
      { name: "TypeError", message: /caCerts.*native.*Deno\.createHttpClient/ },
    );
  });
  await t.step(
    "a Deno.HttpClient on the wsbeat transport: TypeError pointing to caCerts",
    async () => {
      await assert.rejects(
        connect("wss://127.0.0.1:9/", { client: {} }),
        { name: "TypeError", message: /client.*wsbeat.*caCerts/ },
      );
    },
  );
  await t.step("maxMessageSize below 1: RangeError", async () => {
    await assert.rejects(
      connect("ws://127.0.0.1:9/", { maxMessageSize: 0 }),
      { name: "RangeError", message: /maxMessageSize.*current value is 0/ },
    );
  });
  await t.step("a header the handshake sets itself: TypeError naming it", async () => {
    await using server = rawServer(() => Promise.resolve(), { connections: 0 });
    await assert.rejects(
      connect(server.url, { headers: { "Sec-WebSocket-Key": "x" } }),
      { name: "TypeError", message: /Sec-WebSocket-Key/ },
    );
  });
  await t.step("a CR in a secret header: TypeError that does not print the value", async () => {
    const error = await connect("ws://127.0.0.1:9/", {
      headers: [["Authorization", "Bearer hunter2\r\nX: y"]],
    }).catch((e) => e);
    assert.equal(error.name, "TypeError");
    assert.match(error.message, /Authorization/);
    assert.doesNotMatch(error.message, /hunter2/);
  });
});

Deno.test("connect() sends URL user info as Basic auth and never shows the password", async () => {
  let authorization: string | null = null;
  await using server = rawServer(async (peer) => {
    authorization = peer.request.headers.get("authorization");
    await peer.sendFrame({ opcode: OP.CLOSE, payload: closePayload(4001, "no") });
    await peer.expectClose();
  });
  const url = server.url.replace("ws://", "ws://me:hunter2@");
  await using ws = await connect(url);
  assert.equal(authorization, `Basic ${btoa("me:hunter2")}`);
  assert.equal(ws.url, server.url.replace("ws://", "ws://me:***@"));
  const error = await ws.receive().catch((e) => e);
  assert.ok(error instanceof ConnectionClosedError);
  assert.doesNotMatch(error.message, /hunter2/);
  await server.done;
});
