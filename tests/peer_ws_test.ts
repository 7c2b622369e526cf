// deno-lint-ignore-file no-import-prefix -- npm:ws is a test-only peer; the library has no dependencies
// connect() against independent peers: Node's `ws` server (test-only, from
// npm), and a raw TCP server that goes silent after the handshake (a dead
// peer). Needs --allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE: `ws` reads
// both when it loads.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { AddressInfo } from "node:net";
// @ts-types="npm:@types/ws@8"
import { type ServerOptions, type WebSocket as WsSocket, WebSocketServer } from "npm:ws@8";
import { connect, ConnectionClosedError, type ConnectOptions, TooSlowError } from "../mod.ts";
import { OP, rawServer } from "./_raw_server.ts";

const CLIENT: ConnectOptions = { transport: "wsbeat" };
const FIXTURE = new URL("./fixtures/dead_peer_client.ts", import.meta.url).pathname;

/** A `ws` server on 127.0.0.1; `connection()` resolves with the next server-side socket. */
async function wsServer(options: ServerOptions = {}) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, ...options });
  await new Promise<void>((resolve, reject) => {
    wss.once("listening", resolve);
    wss.once("error", reject);
  });
  const pending: WsSocket[] = [];
  const waiting: ((socket: WsSocket) => void)[] = [];
  const errors: Error[] = [];
  wss.on("connection", (socket) => {
    socket.on("error", (error) => errors.push(error));
    const waiter = waiting.shift();
    if (waiter) waiter(socket);
    else pending.push(socket);
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`,
    /** Errors the server-side sockets emitted. */
    errors,
    connection(): Promise<WsSocket> {
      const socket = pending.shift();
      return socket ? Promise.resolve(socket) : new Promise((resolve) => waiting.push(resolve));
    },
    async [Symbol.asyncDispose]() {
      for (const socket of wss.clients) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** Resolves with the arguments of the next `event` on `socket`. */
function next<T extends unknown[]>(socket: WsSocket, event: string): Promise<T> {
  return new Promise((resolve) => socket.once(event, (...args: unknown[]) => resolve(args as T)));
}

function bytes(n: number): Uint8Array {
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = (i * 31 + 7) & 0xff;
  return data;
}

Deno.test("connect() echoes text and binary up to 1 MiB through a ws server", async (t) => {
  await using server = await wsServer();
  server.connection().then((socket) =>
    socket.on("message", (data, isBinary) => socket.send(data as Buffer, { binary: isBinary }))
  );
  await using ws = await connect(server.url, CLIENT);
  for (const size of [0, 1, 125, 126, 65535, 64 * 1024, 1024 * 1024]) {
    await t.step(`text, ${size} B`, async () => {
      const text = "é".repeat(Math.floor(size / 4)) + "x".repeat(size - 2 * Math.floor(size / 4));
      ws.send(text);
      assert.equal(await ws.receive(), text);
    });
    await t.step(`binary, ${size} B`, async () => {
      const data = bytes(size);
      ws.send(data);
      assert.deepEqual(await ws.receive(), data);
    });
  }
});

Deno.test("connect() receives whole messages that ws sends in fragments, a ping between them", async () => {
  await using server = await wsServer();
  await using ws = await connect(server.url, CLIENT);
  const socket = await server.connection();
  const pong = next<[Buffer]>(socket, "pong");
  socket.send("Hello, ", { fin: false });
  socket.send("fragmented ", { fin: false });
  socket.send("world", { fin: true });
  socket.send(Buffer.from([1, 2]), { binary: true, fin: false });
  socket.ping(Buffer.from("between"));
  socket.send(Buffer.from([3]), { binary: true, fin: true });
  assert.equal(await ws.receive(), "Hello, fragmented world");
  assert.deepEqual(await ws.receive(), new Uint8Array([1, 2, 3]));
  const [data] = await pong;
  assert.equal(data.toString(), "between");
});

Deno.test("connect() answers a ws server's ping with a pong carrying the same payload", async () => {
  await using server = await wsServer();
  await using ws = await connect(server.url, CLIENT);
  const socket = await server.connection();
  for (const payload of ["", "are you there?", "x".repeat(125)]) {
    const pong = next<[Buffer]>(socket, "pong");
    socket.ping(Buffer.from(payload));
    const [data] = await pong;
    assert.equal(data.toString(), payload);
  }
  assert.equal(ws.state, "open");
});

Deno.test("WebSocketClient.ping() resolves with the round trip when ws answers, and a heartbeat beats", async () => {
  await using server = await wsServer();
  const rtts: number[] = [];
  const { promise: beaten, resolve } = Promise.withResolvers<void>();
  await using ws = await connect(server.url, {
    ...CLIENT,
    heartbeat: {
      interval: 20,
      timeout: 1000,
      onBeat: (rtt) => rtts.push(rtt) === 3 && resolve(),
    },
  });
  const socket = await server.connection();
  const pinged = next<[Buffer]>(socket, "ping"); // a protocol ping, not a message
  const rtt = await ws.ping();
  assert.ok(rtt >= 0 && rtt < 1000, `rtt ${rtt}`);
  await pinged;
  await beaten;
  assert.ok(rtts.every((r) => r >= 0 && r < 1000), `rtts ${rtts}`);
});

Deno.test("connect() reports a ws server's close code and reason", async (t) => {
  for (const [code, reason, quiet] of [[1000, "done", true], [4001, "bye", false]] as const) {
    await t.step(`${code} ${reason}`, async () => {
      await using server = await wsServer();
      server.connection().then((socket) => socket.close(code, reason));
      await using ws = await connect(server.url, CLIENT);
      const ended = await (async () => {
        for await (const _ of ws) { /* no messages */ }
      })().then(() => undefined, (e) => e);
      const info = await ws.closed;
      assert.deepEqual(
        {
          code: info.code,
          reason: info.reason,
          wasClean: info.wasClean,
          initiator: info.initiator,
        },
        { code, reason, wasClean: true, initiator: "server" },
      );
      if (quiet) assert.equal(ended, undefined);
      else {
        assert.ok(ended instanceof ConnectionClosedError, String(ended));
        assert.equal(ended.code, code);
      }
    });
  }
});

Deno.test("WebSocketClient.close() reaches a ws server with its code and reason", async (t) => {
  for (const [code, reason] of [[1000, ""], [4000, "going"]] as const) {
    await t.step(`${code}`, async () => {
      await using server = await wsServer();
      const ws = await connect(server.url, CLIENT);
      const socket = await server.connection();
      const closed = next<[number, Buffer]>(socket, "close");
      const info = await ws.close(code, reason);
      const [seenCode, seenReason] = await closed;
      assert.deepEqual([seenCode, seenReason.toString()], [code, reason]);
      assert.equal(info.code, code);
      assert.equal(info.wasClean, true);
      assert.equal(info.initiator, "client");
    });
  }
});

Deno.test("a message over a ws server's maxPayload gets close 1009 from ws", async () => {
  await using server = await wsServer({ maxPayload: 1024 });
  await using ws = await connect(server.url, CLIENT);
  const socket = await server.connection();
  const closed = next<[number, Buffer]>(socket, "close");
  ws.send(bytes(2048));
  const info = await ws.closed;
  assert.equal(info.code, 1009);
  assert.equal(info.initiator, "server");
  await closed; // ws reports 1006 there: it stops reading, so it never sees our close reply
  const error = server.errors[0] as Error & { code?: string };
  assert.equal(error?.code, "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH", String(error));
});

Deno.test("connect() negotiates a subprotocol with ws's handleProtocols", async (t) => {
  await using server = await wsServer({
    handleProtocols: (offered: Set<string>) => offered.has("v2.wsbeat") ? "v2.wsbeat" : false,
  });
  await t.step("an offered protocol is chosen", async () => {
    await using ws = await connect(server.url, {
      ...CLIENT,
      protocols: ["v1.wsbeat", "v2.wsbeat"],
    });
    const socket = await server.connection();
    assert.equal(ws.protocol, "v2.wsbeat");
    assert.equal(socket.protocol, "v2.wsbeat");
  });
  await t.step("the server chooses none: open, with protocol ''", async () => {
    await using ws = await connect(server.url, { ...CLIENT, protocols: ["v1.wsbeat"] });
    await server.connection();
    assert.equal(ws.protocol, "");
  });
});

/** A peer that completes the handshake, then never answers; records when the client hung up. */
function deadPeer(timeout = 5000) {
  let eofAt = 0;
  const server = rawServer(async (peer) => {
    await peer.closed;
    eofAt = performance.now();
    assert.ok(peer.eofFromClient, "the client closes TCP");
    const opcodes: number[] = [];
    for (let f = await peer.readFrame(); f; f = await peer.readFrame()) opcodes.push(f.opcode);
    assert.ok(opcodes.includes(OP.PING), `the heartbeat sends ping frames: got ${opcodes}`);
  }, { timeout });
  return { server, eofAt: () => eofAt };
}

Deno.test("a heartbeat finds a dead peer within interval + timeout and closes TCP", async () => {
  const { server, eofAt } = deadPeer();
  await using _ = server;
  const verdict = server.done;
  const start = performance.now();
  await using ws = await connect(server.url, {
    ...CLIENT,
    heartbeat: { interval: 100, timeout: 200 },
  });
  const error = await (async () => {
    for await (const _ of ws) { /* the peer says nothing */ }
  })().then(() => undefined, (e) => e);
  const failedAt = performance.now();
  assert.ok(error instanceof ConnectionClosedError, String(error));
  assert.ok(error.cause instanceof TooSlowError, `cause: ${error.cause}`);
  assert.ok(failedAt - start < 100 + 200 + 700, `failed after ${failedAt - start} ms`);
  assert.equal((await ws.closed).initiator, "heartbeat");
  await verdict;
  assert.ok(eofAt() - failedAt < 500, `TCP closed ${eofAt() - failedAt} ms after the failure`);
});

Deno.test("a process whose peer is dead exits by itself once the heartbeat fails", async () => {
  const { server } = deadPeer(10_000);
  await using _ = server;
  const verdict = server.done;
  const child = new Deno.Command("deno", {
    args: ["run", "--allow-net=127.0.0.1", FIXTURE, server.url],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const output = child.output();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((
    resolve,
  ) => (timer = setTimeout(() => resolve("late"), 10_000)));
  const result = await Promise.race([output, late]);
  clearTimeout(timer);
  if (result === "late") {
    child.kill("SIGKILL");
    await output;
    assert.fail("the process did not exit within 10 s of starting");
  }
  const decoder = new TextDecoder();
  assert.equal(result.code, 0, decoder.decode(result.stderr));
  assert.equal(
    decoder.decode(result.stdout).trim(),
    "ConnectionClosedError caused by TooSlowError",
  );
  await verdict;
});
