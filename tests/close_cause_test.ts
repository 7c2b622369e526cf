// The first cause of a close, whatever else is running: a heartbeat never
// replaces the rule the server broke or the close it sent, and the client's
// state and errors say what is going on from the moment closing begins.
// (Issue 21, points 1 and 7.)

import assert from "node:assert/strict";
import { connect, ConnectionClosedError, ProtocolError, reconnecting } from "../mod.ts";
import {
  closePayload,
  encodeFrame,
  type FrameSpec,
  OP,
  type RawPeer,
  rawServer,
} from "./_raw_server.ts";

/** The seven ways a server breaks RFC 6455 that the review tried, and the code each fails with. */
const FAULTS: { name: string; frame: FrameSpec; code: number }[] = [
  { name: "reserved bits", frame: { opcode: OP.TEXT, payload: "x", rsv: 4 }, code: 1002 },
  { name: "a masked frame", frame: { opcode: OP.TEXT, payload: "x", mask: true }, code: 1002 },
  { name: "an unknown opcode", frame: { opcode: 3, payload: "x" }, code: 1002 },
  {
    name: "a 126-byte control frame",
    frame: { opcode: OP.PING, payload: new Uint8Array(126) },
    code: 1002,
  },
  { name: "close code 999", frame: { opcode: OP.CLOSE, payload: closePayload(999) }, code: 1002 },
  {
    name: "a 1-byte close payload",
    frame: { opcode: OP.CLOSE, payload: new Uint8Array([3]) },
    code: 1002,
  },
  {
    name: "invalid UTF-8",
    frame: { opcode: OP.TEXT, payload: new Uint8Array([0xce, 0xba, 0xff]) },
    code: 1007,
  },
];

/** How many connections each case makes: the old race showed in 9 to 18 of 20. */
const RUNS = 10;

/** Reads what the client sends until EOF, ignoring it (pings, the close). */
async function drain(peer: RawPeer): Promise<void> {
  for (let i = 0; i < 1_000 && (await peer.readFrame()) !== null; i++) { /* bounded */ }
}

Deno.test("a protocol fault with a heartbeat running is reported as the fault, never as the heartbeat", async (t) => {
  for (const fault of FAULTS) {
    for (const when of ["with the handshake's answer", "after a beat"] as const) {
      await t.step(`${fault.name}, ${when}`, async () => {
        for (let run = 0; run < RUNS; run++) {
          const early = when === "with the handshake's answer";
          await using server = rawServer(async (peer) => {
            if (!early) {
              const ping = await peer.readFrame(); // the first beat's ping
              assert.equal(ping?.opcode, OP.PING);
              await peer.sendFrame({ opcode: OP.PONG, payload: ping!.payload });
              await peer.sendFrame(fault.frame);
            }
            await drain(peer);
          }, { handshake: early ? { trailing: encodeFrame(fault.frame) } : {} });
          const ws = await connect(server.url, { heartbeat: { interval: 1, timeout: 1_000 } });
          const info = await ws.closed;
          assert.equal(info.initiator, "client", `run ${run}: ${info.error?.message}`);
          assert.equal(info.code, fault.code);
          assert.ok(info.error instanceof ProtocolError, `run ${run}: ${info.error}`);
          assert.equal(info.error.closeCode, fault.code);
          await server.done;
        }
      });
    }
  }
});

Deno.test("a server's close with a heartbeat running is the server's, and a 1008 is not retried", async (t) => {
  await t.step("the close frame comes while a beat is due", async () => {
    for (let run = 0; run < RUNS; run++) {
      await using server = rawServer(async (peer) => {
        await peer.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1008, "policy") });
        await drain(peer); // the client's reply, then it closes TCP when we do
      });
      const ws = await connect(server.url, {
        heartbeat: { interval: 1, timeout: 1_000 },
        closeTimeout: 100,
      });
      const info = await ws.closed;
      assert.deepEqual(
        { code: info.code, reason: info.reason, initiator: info.initiator },
        { code: 1008, reason: "policy", initiator: "server" },
      );
      await server.done;
    }
  });

  await t.step("reconnecting() stops on it", async () => {
    let connections = 0;
    await using server = rawServer(async (peer) => {
      connections++;
      await peer.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1008, "policy") });
      await drain(peer);
    }, { connections: 5 });
    const error = await (async () => {
      for await (
        const ws of reconnecting(server.url, {
          heartbeat: { interval: 1, timeout: 1_000 },
          closeTimeout: 100,
          initialDelay: 10,
          maxDelay: 10,
        })
      ) {
        for await (const _ of ws) { /* nothing comes */ }
      }
    })().catch((e) => e);
    assert.ok(error instanceof ConnectionClosedError, String(error));
    assert.equal(error.code, 1008);
    assert.equal(connections, 1);
  });
});

Deno.test("a server's close frame not followed by its TCP close is still the server's close", async () => {
  await using server = rawServer(async (peer) => {
    await peer.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1008, "policy") });
    assert.equal((await peer.expectClose())?.code, 1008); // the client's reply
    await peer.closed; // and TCP stays open until the client gives up on it
  });
  const ws = await connect(server.url, { closeTimeout: 50 });
  const info = await ws.closed;
  assert.deepEqual(
    { code: info.code, reason: info.reason, initiator: info.initiator, wasClean: info.wasClean },
    { code: 1008, reason: "policy", initiator: "server", wasClean: true },
  );
  await server.done;
});

Deno.test("WebSocketClient.state says closing, and send() names the cause, once the server broke the protocol", async () => {
  await using server = rawServer(async (peer) => {
    // A valid message and a bad frame in one write: the client fails the connection at once.
    await peer.sendFrames([{ opcode: OP.TEXT, payload: "order" }, { opcode: 3 }]);
    await drain(peer);
  });
  const ws = await connect(server.url);
  const message = await ws.receive();
  assert.equal(message, "order");
  assert.equal(ws.state, "closing");
  assert.throws(() => ws.send("ack"), (error) => {
    assert.ok(error instanceof ConnectionClosedError);
    assert.equal(error.code, 1002);
    assert.equal(
      error.message,
      "Cannot send as the connection is not open: current state is closing (Connection failed " +
        "with code 1002: the server broke the protocol (Protocol error: unknown opcode 3))",
    );
    assert.ok(error.cause instanceof ProtocolError);
    return true;
  });
  assert.equal((await ws.closed).code, 1002);
  await server.done;
});

Deno.test("WebSocketClient.state says closing, and send() names the server's close, once it arrived", async () => {
  await using server = rawServer(async (peer) => {
    await peer.sendFrames([
      { opcode: OP.TEXT, payload: "last" },
      { opcode: OP.CLOSE, payload: closePayload(1012, "restarting") },
    ]);
    await peer.expectClose();
  });
  const ws = await connect(server.url);
  assert.equal(await ws.receive(), "last");
  assert.equal(ws.state, "closing");
  assert.throws(() => ws.send("ack"), (error) => {
    assert.ok(error instanceof ConnectionClosedError);
    assert.equal(error.code, 1012);
    assert.equal(error.reason, "restarting");
    assert.equal(
      error.message,
      "Cannot send as the connection is not open: current state is closing (Connection closed " +
        "by the server with code 1012 (restarting))",
    );
    return true;
  });
  const info = await ws.closed;
  assert.equal(info.initiator, "server");
  await server.done;
});
