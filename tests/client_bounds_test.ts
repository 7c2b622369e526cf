// What a hostile or slow server can make the client hold, and what a slow
// application can make its heartbeat believe. (Issue 21, points 3 and 10.)

import assert from "node:assert/strict";
import { connect } from "../mod.ts";
import { acceptFor, encodeFrame, OP, type RawPeer, rawServer } from "./_raw_server.ts";

const encoder = new TextEncoder();

/**
 * A server that upgrades one client, then writes `flood` and never reads
 * again: the client's pongs pile up in its socket buffers and then in the
 * client, unless the client coalesces them.
 */
function floodServer(flood: Uint8Array): { url: string; done: Promise<void>; release(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  const done = (async () => {
    const conn = await listener.accept();
    listener.close();
    try {
      const buffer = new Uint8Array(8192);
      let head = "";
      for (let i = 0; i < 64 && !head.includes("\r\n\r\n"); i++) {
        const n = await conn.read(buffer);
        if (n === null) return;
        head += new TextDecoder().decode(buffer.subarray(0, n));
      }
      const key = /sec-websocket-key: *(\S+)/i.exec(head)![1]!;
      await writeAll(
        conn,
        encoder.encode(
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            `Sec-WebSocket-Accept: ${await acceptFor(key)}\r\n\r\n`,
        ),
      );
      await writeAll(conn, flood);
      await released; // never reading, until the test is done
    } catch {
      /* the client closed the connection */
    } finally {
      conn.close();
    }
  })();
  return { url: `ws://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`, done, release };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

Deno.test("a server that floods pings and never reads leaves the client a bounded backlog", async () => {
  // 200 000 pings of 125 bytes: 26 MB of pongs to answer, far more than the socket buffers take.
  const PINGS = 200_000;
  const ping = encodeFrame({ opcode: OP.PING, payload: new Uint8Array(125).fill(0x61) });
  const flood = new Uint8Array(ping.length * PINGS + 6);
  for (let i = 0; i < PINGS; i++) flood.set(ping, i * ping.length);
  flood.set(encodeFrame({ opcode: OP.TEXT, payload: "done" }), ping.length * PINGS);
  const server = floodServer(flood);
  const ws = await connect(server.url, { closeTimeout: 50 });
  assert.equal(await ws.receive(), "done"); // every ping before it has been read and answered
  // At most the pong backlog (16 KiB), the write stuck in the socket, and one held pong.
  assert.ok(ws.bufferedAmount < 64 * 1024, `${ws.bufferedAmount} bytes unsent`);
  const info = await ws.close(); // the close frame cannot go out: closeTimeout ends it
  assert.equal(info.initiator, "client");
  server.release();
  await server.done;
});

Deno.test("a heartbeat takes in what arrived before blaming the peer when the event loop was blocked", async () => {
  // The server answers every probe at once and sends five messages; the application blocks
  // the event loop 150 ms on each, far past the heartbeat's 100 ms timeout, while the answer
  // to the probe in flight waits unread in the socket.
  await using server = rawServer(async (peer: RawPeer) => {
    await peer.sendFrames(
      Array.from({ length: 5 }, (_, i) => ({ opcode: OP.TEXT, payload: `tick ${i}` })),
    );
    for (let i = 0; i < 1_000; i++) {
      const frame = await peer.readFrame();
      if (frame === null || frame.opcode === OP.CLOSE) break;
      if (frame.opcode === OP.TEXT) await peer.sendFrame({ opcode: OP.TEXT, payload: "pong" });
    }
    await peer.sendFrame({ opcode: OP.CLOSE, payload: new Uint8Array([0x03, 0xe8]) });
  }, { timeout: 10_000 });
  let beats = 0;
  let wake: (() => void) | undefined;
  const ws = await connect(server.url, {
    heartbeat: {
      interval: 20,
      timeout: 100,
      message: "ping",
      reply: "pong",
      onBeat: () => {
        beats++;
        wake?.();
      },
    },
  });
  const received: string[] = [];
  for await (const message of ws) {
    received.push(message as string);
    const until = performance.now() + 150;
    while (performance.now() < until) { /* the application hogs the event loop */ }
    if (received.length === 5) break;
  }
  assert.deepEqual(received, ["tick 0", "tick 1", "tick 2", "tick 3", "tick 4"]);
  // The first deadline has long passed; the next beat comes, and the connection stays open.
  const before = beats;
  const outcome = await Promise.race([
    new Promise<string>((resolve) => (wake = () => beats > before && resolve("beat"))),
    ws.closed.then((info) => `closed by ${info.initiator}: ${info.error?.message}`),
  ]);
  assert.equal(outcome, "beat");
  assert.equal(ws.state, "open");
  assert.ok(ws.stats.eventLoopLag >= 100, `eventLoopLag ${ws.stats.eventLoopLag}`);
  const info = await ws.close();
  assert.equal(info.code, 1000);
  assert.equal(info.initiator, "client");
  await server.done;
});
