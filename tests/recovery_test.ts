// Recovery without waiting on the dead: a peer that stops answering and keeps
// TCP open is found by the heartbeat, and the next attempt starts after the
// backoff delay alone, on both transports; close(), `await using` and `break`
// return at once once the connection is declared dead. And the stale-feed
// watchdog: a feed that goes quiet while pings are answered is reconnected.
import assert from "node:assert/strict";
import {
  type AttemptContext,
  type CloseInfo,
  connect,
  ConnectionClosedError,
  reconnecting,
  StaleFeedError,
  TooSlowError,
  type TransportName,
} from "../mod.ts";
import { silentServer } from "./_servers.ts";
import { OP, type RawPeer, rawServer } from "./_raw_server.ts";

const TRANSPORTS: readonly TransportName[] = ["wsbeat", "native"];
const beat = { interval: 100, timeout: 200 } as const;
const backoff = { initialDelay: 50, maxDelay: 50, jitter: 0 } as const;
/** What the issue allows on top of interval + timeout + backoff. */
const SLACK = 100;

/**
 * Records every native socket made while `fn` runs, and waits for each to be
 * released by the runtime once the server has closed TCP: the native
 * transport reports a dead connection at once, but the runtime lets go of
 * the socket only when TCP ends.
 */
async function withNativeSockets(
  fn: () => Promise<void>,
  stopServer: () => Promise<void>,
): Promise<void> {
  const Native = globalThis.WebSocket;
  const sockets: WebSocket[] = [];
  globalThis.WebSocket = class extends Native {
    constructor(url: string | URL, init?: ConstructorParameters<typeof WebSocket>[1]) {
      super(url, init);
      sockets.push(this);
    }
  };
  try {
    await fn();
  } finally {
    globalThis.WebSocket = Native;
    await stopServer();
    await Promise.all(
      sockets.map((socket) =>
        socket.readyState === WebSocket.CLOSED
          ? undefined
          : new Promise((resolve) => socket.addEventListener("close", resolve, { once: true }))
      ),
    );
  }
}

for (const transport of TRANSPORTS) {
  Deno.test(`reconnecting() on the ${transport} transport starts the next attempt within interval + timeout + backoff of a dead peer`, async () => {
    const server = silentServer({ handshake: true });
    await withNativeSockets(async () => {
      const attempts: number[] = [];
      const opened: number[] = [];
      const detected: number[] = [];
      const infos: CloseInfo[] = [];
      const loop = reconnecting(server.url, {
        ...backoff,
        transport,
        heartbeat: beat,
        prepare: ({ attempt }: AttemptContext) => {
          attempts[attempt - 1] = performance.now();
        },
      });
      for await (const ws of loop) {
        opened.push(performance.now());
        ws.closed.then((info) => {
          detected.push(performance.now());
          infos.push(info);
        });
        for await (const _ of ws) { /* nothing arrives; ends quietly when the heartbeat fails */ }
        if (opened.length === 2) break;
      }
      assert.equal(infos[0]!.initiator, "heartbeat");
      assert.ok(infos[0]!.error instanceof TooSlowError);
      const bound = beat.interval + beat.timeout + backoff.initialDelay;
      const recovery = attempts[1]! - opened[0]!;
      assert.ok(
        recovery <= bound + SLACK,
        `attempt 2 started ${
          recovery.toFixed(0)
        } ms after attempt 1 opened (bound ${bound} + ${SLACK})`,
      );
      // The wait between detection and the next attempt is the backoff delay, not a close timeout.
      const waited = attempts[1]! - detected[0]!;
      assert.ok(
        waited < backoff.initialDelay + SLACK,
        `waited ${waited.toFixed(0)} ms after detection`,
      );
      assert.ok(waited >= backoff.initialDelay - 1, `waited only ${waited.toFixed(0)} ms`);
    }, () => server.close());
  });

  Deno.test(`close(), await using and break return at once after a heartbeat failure on the ${transport} transport`, async (t) => {
    const server = silentServer({ handshake: true });
    await withNativeSockets(async () => {
      const options = { transport, heartbeat: beat, closeTimeout: 5_000 };
      await t.step("close() returns the known CloseInfo", async () => {
        const ws = await connect(server.url, options);
        const info = await ws.closed;
        const start = performance.now();
        const again = await ws.close();
        assert.ok(performance.now() - start < 20);
        assert.equal(again, info);
        assert.equal(again.initiator, "heartbeat");
      });
      await t.step("await using", async () => {
        let start = 0;
        {
          await using ws = await connect(server.url, options);
          await ws.closed;
          start = performance.now();
        }
        assert.ok(performance.now() - start < 20);
      });
      await t.step("break out of reconnecting()", async () => {
        let start = 0;
        for await (const ws of reconnecting(server.url, { ...backoff, ...options })) {
          await ws.closed;
          start = performance.now();
          break;
        }
        assert.ok(performance.now() - start < 20);
      });
    }, () => server.close());
  });
}

/** Sends `messages` a few ms apart, then only answers pings, forever: a feed gone quiet. */
async function quietFeed(peer: RawPeer, messages: string[]): Promise<void> {
  for (const message of messages) await peer.sendFrame({ opcode: OP.TEXT, payload: message });
  for (let frame = await peer.readFrame(); frame; frame = await peer.readFrame()) {
    if (frame.opcode === OP.PING) await peer.sendFrame({ opcode: OP.PONG, payload: frame.payload });
    if (frame.opcode === OP.CLOSE) return;
  }
}

Deno.test("reconnecting() with staleAfter reconnects a feed that went quiet while answering pings", async () => {
  const staleAfter = 150;
  await using server = rawServer((peer) => quietFeed(peer, ["tick 1", "tick 2"]), {
    connections: 2,
  });
  const closes: CloseInfo[] = [];
  const received: string[] = [];
  let beats = 0;
  let lastMessageAt = 0;
  let reopenedAt = 0;
  for await (
    const ws of reconnecting(server.url, {
      ...backoff,
      staleAfter,
      heartbeat: { interval: 20, timeout: 500, onBeat: () => beats++ },
    })
  ) {
    if (closes.length === 1) {
      reopenedAt = performance.now();
      break;
    }
    for await (const message of ws) {
      received.push(message as string);
      lastMessageAt = performance.now();
    }
    closes.push(await ws.closed);
  }
  assert.deepEqual(received, ["tick 1", "tick 2"]);
  const [info] = closes;
  assert.equal(info!.code, 1006);
  assert.equal(info!.initiator, "client");
  assert.ok(info!.error instanceof StaleFeedError, String(info!.error));
  assert.ok(!(info!.error instanceof TooSlowError));
  assert.equal(info!.error.staleAfter, staleAfter);
  assert.ok(beats >= 3, `the peer answered ${beats} pings: it was alive`);
  const quiet = reopenedAt - lastMessageAt;
  assert.ok(quiet >= staleAfter, `reconnected ${quiet.toFixed(0)} ms after the last message`);
  assert.ok(quiet <= staleAfter + backoff.initialDelay + SLACK, `quiet for ${quiet.toFixed(0)} ms`);
});

Deno.test("connect() with staleAfter: iteration rejects with the StaleFeedError as cause; messages reset it", async () => {
  // Messages 60 ms apart keep a 150 ms watchdog quiet; then silence trips it.
  await using server = rawServer(async (peer) => {
    for (let i = 1; i <= 4; i++) {
      await peer.sendFrame({ opcode: OP.TEXT, payload: `tick ${i}` });
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    await quietFeed(peer, []);
  });
  const ws = await connect(server.url, { staleAfter: 150 });
  const received: string[] = [];
  const error = await (async () => {
    for await (const message of ws) received.push(message as string);
  })().catch((e) => e);
  assert.deepEqual(received, ["tick 1", "tick 2", "tick 3", "tick 4"]);
  assert.ok(error instanceof ConnectionClosedError);
  assert.equal(error.code, 1006);
  assert.ok(error.cause instanceof StaleFeedError);
  assert.equal(
    error.message,
    "No application message arrived for 150 ms (staleAfter): the feed went quiet",
  );
  // The last tick came at about 180 ms: the watchdog fired 150 ms after it, not 150 ms after opening.
  assert.ok(ws.stats.uptimeMs >= 3 * 60 + 150 - 15, `open for ${ws.stats.uptimeMs} ms`);
});

Deno.test("connect() rejects a staleAfter that is not a positive delay", async () => {
  await assert.rejects(connect("ws://127.0.0.1:9/", { staleAfter: 0 }), {
    name: "RangeError",
    message:
      "Cannot use staleAfter as it is 0, which would close every connection at once: current value is 0",
  });
  await assert.rejects(connect("ws://127.0.0.1:9/", { staleAfter: -1 }), {
    name: "RangeError",
    message:
      /^Cannot use staleAfter as it is not a number of milliseconds from 0 to 2147483647 or Infinity: current value is -1$/,
  });
});
