// deno-lint-ignore-file no-import-prefix -- npm:ws is a test-only peer; the library has no dependencies
// permessage-deflate end to end (issue 24): negotiation against serve() and
// against a raw scripted server (each parameter offered and answered,
// refused, invalid answers failing the connection), compressed frames from a
// server we script byte by byte (fragments, a control frame between them,
// RSV1 where it is not allowed, a decompression bomb), and round trips with
// Node `ws` compressing on both sides, with and without context takeover.
// Byte-level tests: tests/deflate_extension_test.ts. Needs
// --allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE (`ws` reads both).

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as zlib from "node:zlib";
import type { AddressInfo } from "node:net";
// @ts-types="npm:@types/ws@8"
import { WebSocket as WsClient, type WebSocket as WsSocket, WebSocketServer } from "npm:ws@8";
import { connect, ConnectError, type ConnectOptions } from "../mod.ts";
import { serve, type ServeOptions } from "../serve.ts";
import { concat, OP, rawServer } from "./_raw_server.ts";

const CLIENT: ConnectOptions = { transport: "wsbeat" };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Raw DEFLATE of one message, sync-flushed, without its 00 00 ff ff (RFC 7692 7.2.1). */
function deflate(data: Uint8Array | string): Uint8Array {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const out = zlib.deflateRawSync(bytes, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return new Uint8Array(out.subarray(0, out.length - 4));
}

function inflate(payload: Uint8Array): Uint8Array {
  const input = concat([payload, new Uint8Array([0, 0, 0xff, 0xff])]);
  return new Uint8Array(zlib.inflateRawSync(input, { finishFlush: zlib.constants.Z_SYNC_FLUSH }));
}

/** A feed-like JSON message of about `size` bytes: compressible, different each time. */
function json(size: number, seq = 0): string {
  const rows = [];
  for (let i = 0; JSON.stringify(rows).length < size; i++) {
    rows.push({ seq, i, price: 100 + ((seq * 7 + i) % 13) / 4, side: i % 2 ? "buy" : "sell" });
  }
  return JSON.stringify(rows);
}

function echoServer(options: ServeOptions) {
  const server = serve({ port: 0, ...options });
  return { url: `ws://127.0.0.1:${server.port}/`, [Symbol.asyncDispose]: () => server.close() };
}

Deno.test("connect() and serve() agree on permessage-deflate, each parameter offered and answered", async (t) => {
  const cases: [string, ConnectOptions["compression"], ServeOptions["compression"], string][] = [
    ["the defaults", true, true, "permessage-deflate; server_no_context_takeover"],
    [
      "server_no_context_takeover, server_max_window_bits and client_max_window_bits offered",
      { serverNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 12 },
      true,
      "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12",
    ],
    [
      "the server asks for client_no_context_takeover and a 9-bit client window",
      { clientNoContextTakeover: false },
      { clientNoContextTakeover: true, clientMaxWindowBits: 9 },
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=9",
    ],
    ["the client offers nothing", false, true, ""],
    ["the server declines", true, false, ""],
  ];
  for (const [name, client, server, answer] of cases) {
    await t.step(name, async () => {
      await using echo = echoServer({ compression: server });
      await using ws = await connect(echo.url, { ...CLIENT, compression: client });
      assert.equal(ws.extensions, answer);
      for (let seq = 0; seq < 3; seq++) {
        const text = json(4096, seq);
        ws.send(text);
        assert.equal(await ws.receive(), text);
        const data = encoder.encode(json(2000, seq));
        ws.send(data);
        assert.deepEqual(await ws.receive(), data);
      }
      ws.send("short");
      assert.equal(await ws.receive(), "short");
      const { bytesSent, bytesReceived } = ws.stats;
      // Compressed both ways when agreed (payload bytes as framed), as is otherwise.
      if (answer) assert.ok(bytesSent < 10_000 && bytesReceived < 10_000, `${bytesSent}`);
      else assert.ok(bytesSent > 18_000 && bytesReceived > 18_000, `${bytesSent}`);
    });
  }
});

Deno.test("serve() answers a malformed Sec-WebSocket-Extensions with HTTP 400", async () => {
  const lines: string[] = [];
  await using echo = echoServer({ compression: true, log: (line) => lines.push(line) });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(echo.url).port) });
  await conn.write(encoder.encode(
    "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
      'Sec-WebSocket-Extensions: permessage-deflate; x="a b"\r\n\r\n',
  ));
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(4096);
  for (let n; (n = await conn.read(buffer)) !== null && chunks.length < 100;) {
    chunks.push(buffer.slice(0, n));
  }
  conn.close();
  const answer = decoder.decode(concat(chunks));
  assert.match(answer, /^HTTP\/1\.1 400 /);
  assert.match(answer, /Sec-WebSocket-Extensions as a quoted value is not a token/);
});

Deno.test("connect() fails on an invalid permessage-deflate answer with a ConnectError naming it", async (t) => {
  const cases: [string, string, ConnectOptions["compression"], RegExp][] = [
    [
      "a window under 8 bits",
      "permessage-deflate; server_max_window_bits=7",
      true,
      /server_max_window_bits is not 8 to 15/,
    ],
    [
      "an unknown parameter",
      "permessage-deflate; mode=fast",
      true,
      /a parameter is unknown: current value is mode/,
    ],
    [
      "a parameter twice",
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
      true,
      /server_no_context_takeover/,
    ],
    [
      "a value on a flag",
      "permessage-deflate; client_no_context_takeover=1",
      true,
      /client_no_context_takeover takes no value/,
    ],
    [
      "client_max_window_bits without a value",
      "permessage-deflate; client_max_window_bits",
      true,
      /client_max_window_bits needs a value/,
    ],
    [
      "an extension never offered",
      "x-webkit-deflate-frame",
      true,
      /one was never offered: current value is x-webkit-deflate-frame/,
    ],
    [
      "permessage-deflate twice",
      "permessage-deflate, permessage-deflate",
      true,
      /answered more than once/,
    ],
    ["server_no_context_takeover asked, not answered", "permessage-deflate", {
      serverNoContextTakeover: true,
    }, /server_no_context_takeover was offered but not answered/],
    ["a server window over the one asked for", "permessage-deflate; server_max_window_bits=12", {
      serverMaxWindowBits: 10,
    }, /server_max_window_bits is not within the 10 offered: current value is 12/],
    ["client_max_window_bits not offered", "permessage-deflate; client_max_window_bits=10", {
      clientMaxWindowBits: false,
    }, /client_max_window_bits was never offered/],
    [
      "an answer when compression is off",
      "permessage-deflate",
      false,
      /Sec-WebSocket-Extensions header is "permessage-deflate", but the client offered none/,
    ],
  ];
  for (const [name, header, compression, message] of cases) {
    await t.step(name, async () => {
      await using server = rawServer(async (peer) => {
        const offer = peer.request.headers.get("sec-websocket-extensions");
        assert.equal(offer !== null, compression !== false);
        await peer.closed;
      }, { handshake: { extraHeaders: [["Sec-WebSocket-Extensions", header]] } });
      const verdict = server.done;
      const error = await connect(server.url, { ...CLIENT, compression }).then(
        async (ws) => (await ws.close(), ws),
        (e) => e,
      );
      assert.ok(error instanceof ConnectError, `connect() gave ${error}`);
      assert.equal(error.kind, "handshake");
      assert.match(error.message, message);
      await verdict;
    });
  }
});

Deno.test("connect() reads compressed frames from a scripted server: fragments, a ping between, its own sent compressed", async () => {
  const text = json(3000);
  await using server = rawServer(async (peer) => {
    assert.equal(
      peer.request.headers.get("sec-websocket-extensions"),
      "permessage-deflate; client_no_context_takeover; client_max_window_bits",
    );
    const payload = deflate(text);
    const half = payload.length >> 1;
    await peer.sendFrames([
      { opcode: OP.TEXT, rsv: 4, fin: false, payload: payload.subarray(0, half) },
      { opcode: OP.PING, payload: "between" },
      { opcode: OP.CONTINUATION, payload: payload.subarray(half) },
      { opcode: OP.BINARY, rsv: 4, payload: deflate(new Uint8Array(10_000)) },
    ]);
    const pong = await peer.readFrame();
    assert.deepEqual([pong?.opcode, pong?.rsv, decoder.decode(pong?.payload)], [
      OP.PONG,
      0,
      "between",
    ]);
    const echo = await peer.readMessage(); // the client sends the text back, compressed
    const first = echo!;
    assert.equal(decoder.decode(inflate(first.payload)), text);
    const frame = await peer.readFrame(); // then a short one, as is
    assert.deepEqual([frame?.rsv, decoder.decode(frame?.payload)], [0, "ok"]);
    await peer.sendFrame({ opcode: OP.CLOSE, payload: new Uint8Array([0x03, 0xe8]) });
    await peer.expectClose();
  }, { handshake: { extraHeaders: [["Sec-WebSocket-Extensions", "permessage-deflate"]] } });
  const verdict = server.done;
  await using ws = await connect(server.url, CLIENT);
  assert.equal(ws.extensions, "permessage-deflate");
  assert.equal(await ws.receive(), text);
  assert.deepEqual(await ws.receive(), new Uint8Array(10_000));
  ws.send(text);
  ws.send("ok");
  await ws.closed;
  await verdict;
});

Deno.test("connect() fails the connection on RSV1 where RFC 7692 forbids it, and on a bomb", async (t) => {
  const cases: [
    string,
    { opcode: number; rsv?: number; fin?: boolean; payload?: Uint8Array | string }[],
    number,
    ConnectOptions,
  ][] = [
    [
      "RSV1 on a continuation",
      [
        { opcode: OP.TEXT, rsv: 4, fin: false, payload: deflate("abc") },
        { opcode: OP.CONTINUATION, rsv: 4, payload: new Uint8Array(0) },
      ],
      1002,
      CLIENT,
    ],
    ["RSV1 on a ping", [{ opcode: OP.PING, rsv: 4, payload: "p" }], 1002, CLIENT],
    [
      "RSV2 on a compressed message",
      [{ opcode: OP.TEXT, rsv: 6, payload: deflate("abc") }],
      1002,
      CLIENT,
    ],
    [
      "RSV1 when compression was not agreed",
      [{ opcode: OP.TEXT, rsv: 4, payload: deflate("abc") }],
      1002,
      { ...CLIENT, compression: false },
    ],
    [
      "64 MiB of zeros (64 KiB compressed) past a 1 MiB maxMessageSize",
      [
        { opcode: OP.BINARY, rsv: 4, payload: deflate(new Uint8Array(64 * 1024 * 1024)) },
      ],
      1009,
      { ...CLIENT, maxMessageSize: 1024 * 1024 },
    ],
  ];
  for (const [name, frames, code, options] of cases) {
    await t.step(name, async () => {
      const agreed = options.compression !== false;
      await using server = rawServer(async (peer) => {
        await peer.sendFrames(frames);
        const close = await peer.expectClose();
        assert.equal(close?.code, code);
      }, {
        handshake: agreed
          ? { extraHeaders: [["Sec-WebSocket-Extensions", "permessage-deflate"]] }
          : {},
      });
      const verdict = server.done;
      await using ws = await connect(server.url, options);
      const info = await ws.closed;
      assert.equal(info.code, code);
      await verdict;
    });
  }
});

/** A `ws` server on 127.0.0.1 echoing every message, with its permessage-deflate settings. */
async function wsEchoServer(perMessageDeflate: Record<string, unknown>) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate });
  await new Promise<void>((resolve) => wss.once("listening", resolve));
  let connected: (socket: WsSocket) => void;
  const connection = new Promise<WsSocket>((resolve) => (connected = resolve));
  wss.on("connection", (socket) => {
    connected(socket);
    socket.on("message", (data, isBinary) => socket.send(data as Buffer, { binary: isBinary }));
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`,
    /** The first connection's server-side socket. */
    connection,
    async [Symbol.asyncDispose]() {
      for (const socket of wss.clients) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

Deno.test("interop: connect() round trips with a ws server compressing, with and without its context takeover", async (t) => {
  for (const serverNoContextTakeover of [false, true]) {
    await t.step(`server_no_context_takeover ${serverNoContextTakeover}`, async () => {
      await using server = await wsEchoServer({ threshold: 0, serverNoContextTakeover });
      await using ws = await connect(server.url, { ...CLIENT, compression: { threshold: 0 } });
      assert.match(ws.extensions, /^permessage-deflate/);
      assert.equal(ws.extensions.includes("server_no_context_takeover"), serverNoContextTakeover);
      for (let seq = 0; seq < 20; seq++) {
        const text = json([200, 1024, 16 * 1024][seq % 3]!, seq);
        ws.send(text);
        assert.equal(await ws.receive(), text);
      }
      const data = new Uint8Array(100_000).map((_, i) => i % 7);
      ws.send(data);
      assert.deepEqual(await ws.receive(), data);
      // Repeated messages with takeover come back as a few bytes each: the window works.
      const before = ws.stats.bytesReceived;
      for (let i = 0; i < 5; i++) {
        ws.send(json(1024, 99));
        await ws.receive();
      }
      const per = (ws.stats.bytesReceived - before) / 5;
      assert.ok(serverNoContextTakeover ? per > 50 : per < 50, `${per} bytes per message`);
    });
  }
});

Deno.test("interop: ws sends a fragmented compressed message with a ping between the fragments", async () => {
  await using server = await wsEchoServer({ threshold: 0 });
  await using ws = await connect(server.url, CLIENT);
  const socket = await server.connection;
  const pong = new Promise<Buffer>((resolve) => socket.once("pong", resolve));
  socket.send(json(500, 1), { fin: false });
  socket.ping(Buffer.from("between"));
  socket.send(json(500, 2), { fin: true });
  assert.equal(await ws.receive(), json(500, 1) + json(500, 2));
  assert.equal((await pong).toString(), "between");
});

Deno.test("interop: a ws client with context takeover round trips through serve() compressing", async () => {
  await using echo = echoServer({ compression: { threshold: 0 } });
  const client = new WsClient(echo.url, { perMessageDeflate: { threshold: 0 } });
  const received: string[] = [];
  const waiting: (() => void)[] = [];
  client.on("message", (data) => {
    received.push(String(data));
    waiting.shift()?.();
  });
  await new Promise<void>((resolve, reject) => {
    client.once("open", () => resolve());
    client.once("error", reject);
  });
  try {
    assert.match(client.extensions, /^permessage-deflate/);
    for (let seq = 0; seq < 20; seq++) {
      const text = json([200, 1024, 16 * 1024][seq % 3]!, seq);
      const got = new Promise<void>((resolve) => waiting.push(resolve));
      client.send(text);
      await got;
      assert.equal(received.at(-1), text);
    }
  } finally {
    const closed = new Promise((resolve) => client.once("close", resolve));
    client.close(1000);
    await closed;
  }
});

Deno.test("wsbeat serve --compression accepts it, the client offers it unless --no-compression", async () => {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const server = new Deno.Command("deno", {
    args: ["run", "--allow-net=127.0.0.1", cli, "serve", "--port", "0", "--compression"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(server.stderr).text();
  try {
    const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const { value = "" } = await reader.read();
    reader.releaseLock();
    const url = /^listening (ws:\S+)/.exec(value)?.[1];
    assert.ok(url, value);
    const client = async (...flags: string[]) => {
      const { code, stderr } = await new Deno.Command("deno", {
        args: [
          "run",
          "--allow-net=127.0.0.1",
          cli,
          "--trace",
          ...flags,
          "-x",
          "x".repeat(2000),
          url,
        ],
        stdin: "null",
        env: { NO_COLOR: "1" },
      }).output();
      assert.equal(code, 0);
      return decoder.decode(stderr).split("\n").filter((line) =>
        /^trace [<>] (GET|HTTP)/.test(line)
      );
    };
    const offered = await client();
    assert.match(
      offered[0]!,
      /Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover/,
    );
    assert.match(
      offered[1]!,
      /sec-websocket-extensions: permessage-deflate; server_no_context_takeover/,
    );
    const plain = await client("--no-compression");
    assert.doesNotMatch(plain.join("\n"), /extensions/i);
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await server.stdout.cancel().catch(() => {});
  }
  const log = await stderr;
  assert.match(log, /^#1 connected from 127\.0\.0\.1:\d+ \/ \(permessage-deflate\)$/m);
  assert.match(log, /^#2 connected from 127\.0\.0\.1:\d+ \/$/m);
});
