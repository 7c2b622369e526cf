// The first cause of a close, whatever else is running: a heartbeat never
// replaces the rule the server broke or the close it sent, and the client's
// state and errors say what is going on from the moment closing begins.
// (Issue 21, points 1 and 7.)

import assert from "node:assert/strict";
import {
  type ClientOptions,
  connect,
  ConnectionClosedError,
  ProtocolError,
  reconnecting,
  WebSocketClient,
} from "../mod.ts";
import type { Transport, TransportEnd, TransportHandler } from "../transport/transport.ts";
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

Deno.test("WebSocketClient answers the messages before a protocol fault, then fails with the fault's code", async () => {
  const decoder = new TextDecoder();
  await using server = rawServer(async (peer) => {
    // A valid message and a bad frame in one write: the client's answer, then its close frame.
    await peer.sendFrames([{ opcode: OP.TEXT, payload: "order" }, { opcode: 3 }]);
    const answer = await peer.readMessage();
    assert.equal(decoder.decode(answer?.payload), "ack");
    assert.equal((await peer.expectClose())?.code, 1002);
    await drain(peer);
  });
  const ws = await connect(server.url);
  const message = await ws.receive();
  assert.equal(message, "order");
  assert.equal(ws.state, "open", "the fault after the message waits for its answer");
  ws.send("ack");
  const info = await ws.closed;
  assert.deepEqual(
    { code: info.code, initiator: info.initiator, rule: (info.error as ProtocolError).rule },
    { code: 1002, initiator: "client", rule: "unknown opcode 3" },
  );
  assert.throws(() => ws.send("late"), (error) => {
    assert.ok(error instanceof ConnectionClosedError);
    assert.equal(error.code, 1002);
    assert.equal(
      error.message,
      "Cannot send as the connection is not open: current state is closed (Connection failed " +
        "with code 1002: the server broke the protocol (Protocol error: unknown opcode 3))",
    );
    assert.ok(error.cause instanceof ProtocolError);
    return true;
  });
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

// --- The lifecycle, on a transport the test drives: one phase, one first cause. ---

/** A transport whose opening and end the test decides; it records what the client asks of it. */
class ScriptedTransport {
  readonly url = "ws://scripted.test/";
  readonly protocol = "";
  readonly extensions = "";
  readonly bufferedAmount = 0;
  readonly canPing = true;
  readonly canPause: boolean;
  readonly calls: string[] = [];
  readonly opened: Promise<void>;
  handler!: TransportHandler;
  open!: () => void;
  #fail!: (error: unknown) => void;
  #connecting = true;

  constructor(canPause = true) {
    this.canPause = canPause;
    this.opened = new Promise((resolve, reject) => {
      this.open = () => {
        this.#connecting = false;
        resolve();
      };
      this.#fail = reject;
    });
  }
  attach(handler: TransportHandler): void {
    this.handler = handler;
  }
  send(): void {
    this.calls.push("send");
  }
  ping(): void {
    this.calls.push("ping");
  }
  close(code: number): void {
    this.calls.push(`close ${code}`);
  }
  abort(reason: Error, code?: number): void {
    this.calls.push(`abort${code ? ` ${code}` : ""}`);
    if (this.#connecting) this.#fail(reason);
  }
  pause(): void {}
  resume(): void {}
}

function scripted(options: ClientOptions = {}, canPause = true) {
  const transport = new ScriptedTransport(canPause);
  const ws = new WebSocketClient(transport as unknown as Transport, options);
  return { ws, transport };
}

const CLEAN: TransportEnd = { code: 1000, reason: "", wasClean: true, firstClose: "local" };
const DROPPED: TransportEnd = {
  code: 1006,
  reason: "",
  wasClean: false,
  firstClose: undefined,
  error: new Error("Unexpected EOF"),
};

Deno.test("WebSocketClient.state goes connecting, open, closing, closed, with close()", async () => {
  const { ws, transport } = scripted();
  assert.equal(ws.state, "connecting");
  transport.open();
  await ws.opened;
  assert.equal(ws.state, "open");
  const closing = ws.close(4000, "done");
  assert.equal(ws.state, "closing");
  assert.deepEqual(transport.calls, ["close 4000"]);
  assert.throws(() => ws.send("late"), {
    message: "Cannot send as the connection is not open: current state is closing " +
      "(Connection closed by the client with code 4000 (done))",
  });
  transport.handler.onClosed({ ...CLEAN, code: 4000, reason: "done" });
  assert.equal(ws.state, "closed");
  assert.deepEqual(await closing, {
    code: 4000,
    reason: "done",
    wasClean: true,
    initiator: "client",
  });
});

Deno.test("WebSocketClient.state reads closing while a forced end releases the socket, and send() names it", async () => {
  const { ws, transport } = scripted({ maxQueuedMessages: 1 }, false); // cannot stop reading
  transport.open();
  await ws.opened;
  transport.handler.onMessage("a"); // the queue is full and the transport cannot pause
  assert.deepEqual(transport.calls, ["abort 1011"]);
  assert.equal(ws.state, "closing");
  assert.throws(() => ws.send("x"), /current state is closing \(Consumer fell behind: 1 received/);
  transport.handler.onClosed(DROPPED);
  const info = await ws.closed;
  assert.equal(info.code, 1006, "reported as 1006, whatever the transport saw");
  assert.equal(info.initiator, "client");
  assert.match(info.error!.message, /^Consumer fell behind/);
  assert.equal(await ws.receive(), "a", "what was received is still read first");
  await assert.rejects(ws.receive(), (e) => e === info.error);
});

Deno.test("WebSocketClient keeps the first cause: the server's close stays the server's after close() and a drop", async () => {
  const { ws, transport } = scripted({ heartbeat: { interval: 60_000, timeout: 60_000 } });
  transport.open();
  await ws.opened;
  assert.deepEqual(transport.calls, ["ping"], "the heartbeat's first beat");
  transport.handler.onClosing!({ by: "peer", code: 1012, reason: "restarting" });
  assert.equal(ws.state, "closing");
  const closing = ws.close();
  assert.deepEqual(transport.calls, ["ping"], "no close frame of ours: the transport answers");
  transport.handler.onClosed(DROPPED);
  const info = await closing;
  assert.equal(info.initiator, "server");
  assert.equal(info.code, 1006);
});

Deno.test("WebSocketClient starts no heartbeat when frames in the handshake's answer began the close", async () => {
  const { ws, transport } = scripted({ heartbeat: { interval: 10, timeout: 10 } });
  transport.handler.onClosing!({ by: "peer", code: 1001, reason: "" });
  assert.equal(ws.state, "connecting");
  transport.open();
  await ws.opened;
  assert.equal(ws.state, "closing");
  await assert.rejects(ws.ping(), /current state is closing \(Connection closed by the server/);
  assert.deepEqual(transport.calls, []);
  transport.handler.onClosed({ code: 1001, reason: "", wasClean: true, firstClose: "remote" });
  assert.equal((await ws.closed).initiator, "server");
});

Deno.test("WebSocketClient.close() while connecting aborts: opened rejects with the transport's error", async () => {
  const { ws, transport } = scripted();
  const opened = ws.opened.catch((e) => e);
  const info = await ws.close();
  const error = await opened;
  assert.equal(error.kind, "aborted");
  assert.deepEqual(transport.calls, ["abort"]);
  assert.deepEqual(info, { code: 1006, reason: "", wasClean: false, initiator: "client", error });
  assert.equal(ws.state, "closed");
});

Deno.test("WebSocketClient's signal aborting while connecting: opened rejects with the reason itself", async () => {
  const controller = new AbortController();
  const { ws } = scripted({ signal: controller.signal });
  controller.abort("shutting down"); // not an Error
  await assert.rejects(ws.opened, (e) => e === "shutting down");
  const info = await ws.closed;
  assert.equal(info.initiator, "client");
  assert.ok(info.error instanceof Error, "every close that is not clean has an error");
  assert.equal(info.error.message, "shutting down");
});
