import assert from "node:assert/strict";
import { connect } from "../mod.ts";
import { serve } from "../serve.ts";
import {
  closeOf,
  KINDS,
  logLines,
  OP,
  openPeer,
  RawClient,
  type ServerFrame,
} from "./_serve_clients.ts";
import { encodeFrame } from "./_raw_frames.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

Deno.test("serve() echoes text as text and binary as binary, in order, to every client", async (t) => {
  await using server = serve();
  const big = "é".repeat(100_000);
  const bytes = new Uint8Array(70_000).map((_, i) => i & 0xff);
  for (const kind of KINDS) {
    await t.step(kind, async () => {
      const peer = await openPeer(kind, server.url);
      for (const m of ["hello", "", big, bytes, new Uint8Array(0)]) peer.send(m);
      assert.equal(await peer.next(), "hello");
      assert.equal(await peer.next(), "");
      assert.equal(await peer.next(), big);
      assert.deepEqual(await peer.next(), bytes);
      assert.deepEqual(await peer.next(), new Uint8Array(0));
      assert.deepEqual(await peer.close(), { code: 1000, reason: "" });
    });
  }
});

Deno.test("serve() echoes large messages split at any byte, and fails invalid UTF-8 with 1007", async () => {
  await using server = serve();
  await using raw = await RawClient.open(server.port);
  await raw.head();
  const text = "aé€😀".repeat(7000); // 70 000 bytes, code points of every length
  const binary = new Uint8Array(70_001).map((_, i) => i % 251);
  const frames = [
    encodeFrame({ opcode: OP.TEXT, payload: text, mask: true }),
    encodeFrame({ opcode: OP.BINARY, payload: binary, mask: true }),
  ];
  for (const [i, size] of [1, 4093, 65_537].entries()) {
    const bytes = frames[i % 2]!;
    for (let at = 0; at < bytes.length; at += size) await raw.write(bytes.subarray(at, at + size));
    const echo = (await raw.frame()) as ServerFrame;
    assert.equal(echo.opcode, i % 2 ? OP.BINARY : OP.TEXT);
    assert.equal(echo.masked, false);
    if (i % 2) assert.deepEqual(echo.payload, binary);
    else assert.equal(new TextDecoder().decode(echo.payload), text);
  }
  const bad = new TextEncoder().encode(text);
  bad[60_001] = 0xff; // inside a code point
  await raw.send({ opcode: OP.TEXT, payload: bad, mask: true });
  assert.deepEqual(closeOf((await raw.frame()) as ServerFrame), {
    code: 1007,
    reason: "invalid UTF-8 in text message",
  });
});

Deno.test("serve() answers plain HTTP with 426 and a hint", async () => {
  await using server = serve();
  const response = await fetch(server.url.replace("ws:", "http:"));
  assert.equal(response.status, 426);
  assert.equal(response.headers.get("upgrade"), "websocket");
  assert.equal(await response.text(), "wsbeat echo server: connect with a WebSocket client\n");
});

Deno.test("serve() answers the pong option's ping with its pong and echoes the rest", async (t) => {
  await using server = serve({ pong: { ping: "hb", pong: "ok" } });
  for (const kind of KINDS) {
    await t.step(kind, async () => {
      const peer = await openPeer(kind, server.url);
      peer.send("hb");
      peer.send("other");
      assert.equal(await peer.next(), "ok");
      assert.equal(await peer.next(), "other");
      await peer.close();
    });
  }
});

Deno.test("serve() picks the client's first subprotocol, or the first in its own list", async (t) => {
  await t.step("no list: the first offer", async () => {
    await using server = serve();
    await using ws = await connect(server.url, { protocols: ["a.v1", "b.v1"] });
    assert.equal(ws.protocol, "a.v1");
  });
  await t.step("a list: the first offer in it, for every client", async () => {
    const seen: string[] = [];
    await using server = serve({ protocols: ["b.v1"], onConnect: (c) => seen.push(c.protocol) });
    for (const kind of KINDS) {
      const peer = await openPeer(kind, server.url, { protocols: ["a.v1", "b.v1"] });
      await peer.close();
    }
    assert.deepEqual(seen, ["b.v1", "b.v1", "b.v1"]);
  });
});

Deno.test("serve() counts connections and reports each disconnect", async () => {
  const closes: number[] = [];
  await using server = serve({ onDisconnect: (_, code) => closes.push(code) });
  const a = await connect(server.url);
  const b = await connect(server.url);
  a.send("x");
  b.send("x");
  await Promise.all([a.receive(), b.receive()]);
  assert.equal(server.connections, 2);
  await a.close(3001, "done");
  await server.close();
  assert.deepEqual((await b.closed).code, 1001);
  assert.deepEqual(closes.sort(), [1001, 3001]);
  assert.equal(server.connections, 0);
});

Deno.test("serve() logs one line per connection event, with the close code and duration", async () => {
  const logs = logLines();
  await using server = serve({ log: logs.log });
  await using ws = await connect(server.url + "/room?x=1", { protocols: ["chat"] });
  ws.send("hi");
  await ws.receive();
  await ws.close(4000, "bye");
  await logs.next(/closed/);
  assert.match(
    logs.lines[0]!,
    /^#1 connected from 127\.0\.0\.1:\d+ \/room\?x=1 \(subprotocol chat\)$/,
  );
  assert.match(logs.lines[1]!, /^#1 closed \(4000 "bye", by the client\) after \d+ ms$/);
  assert.equal(logs.lines.length, 2);
});

Deno.test("serve() stops when its signal aborts", async () => {
  const controller = new AbortController();
  const server = serve({ signal: controller.signal });
  const ws = await connect(server.url);
  controller.abort();
  assert.equal((await ws.closed).code, 1001);
  await server.close(); // the same close, already under way
});

Deno.test("serve() serves wss: with a certificate and key", async () => {
  const cert = await Deno.readTextFile(FIXTURES + "localhost.pem");
  const key = await Deno.readTextFile(FIXTURES + "localhost.key");
  await using server = serve({ cert, key });
  assert.match(server.url, /^wss:\/\/127\.0\.0\.1:\d+$/);
  await using ws = await connect(server.url.replace("127.0.0.1", "localhost"), {
    caCerts: [cert],
  });
  ws.send("secret");
  assert.equal(await ws.receive(), "secret");
});

Deno.test("serve() keeps serving when a hook throws, and logs the throw", async () => {
  const logs = logLines();
  await using server = serve({
    log: logs.log,
    onConnect: () => {
      throw new Error("oops");
    },
  });
  await using ws = await connect(server.url);
  ws.send("still here");
  assert.equal(await ws.receive(), "still here");
  assert.ok(logs.lines.includes("onConnect threw: oops"), logs.lines.join("\n"));
});

Deno.test("serve() rejects bad options, naming the value", async () => {
  const cases: [Parameters<typeof serve>[0], string, RegExp][] = [
    [
      { stallAfter: -1 },
      "RangeError",
      /^Cannot use stallAfter as it is not a whole number of at least 0 or Infinity: current value is -1$/,
    ],
    [{ cert: "x" }, "TypeError", /^Cannot serve wss: as cert and key must be given together$/],
    [
      { cert: "x", key: "y" },
      "TlsOptionError",
      /^Cannot use cert as it holds no PEM certificate \(-----BEGIN CERTIFICATE-----\)$/,
    ],
    [
      { cert: "-----BEGIN CERTIFICATE-----", key: "y" },
      "TlsOptionError",
      /^Cannot use key as it holds no PEM private key \(-----BEGIN PRIVATE KEY-----\)$/,
    ],
    [
      { stallFor: 0 },
      "RangeError",
      /^Cannot use stallFor as it is not a number of milliseconds above 0 to 2147483647: current value is 0$/,
    ],
    [{ stallFor: Infinity }, "RangeError", /^Cannot use stallFor .*: current value is Infinity$/],
    [
      { closeWith: { code: 1005 } },
      "RangeError",
      /^Cannot use closeWith\.code as it is not a code a server may send \(1000-1003, 1007-1014, 3000-4999\): current value is 1005$/,
    ],
    [
      { closeWith: { code: 1000, reason: "x".repeat(130) } },
      "RangeError",
      /^Cannot use closeWith\.reason as it is over 123 bytes of UTF-8: current value is 130 bytes$/,
    ],
    [
      { closeWith: { code: 4000, reason: "é".repeat(62) } },
      "RangeError",
      /current value is 124 bytes$/,
    ],
    [
      { rejectStatus: 101 },
      "RangeError",
      /^Cannot use rejectStatus as .* from 400 to 599: current value is 101$/,
    ],
    [
      { fragment: 0 },
      "RangeError",
      /^Cannot use fragment as .* from 1 to 1000: current value is 0$/,
    ],
    [{ maxConnections: 0 }, "RangeError", /^Cannot use maxConnections .*: current value is 0$/],
    [
      { closeTimeout: Infinity },
      "RangeError",
      /^Cannot use closeTimeout .*: current value is Infinity$/,
    ],
    [
      { idleTimeout: 2 ** 31 },
      "RangeError",
      /^Cannot use idleTimeout .*: current value is 2147483648$/,
    ],
    [
      { protocols: ["a b"] },
      "TypeError",
      /^Cannot use protocols as one is not a token: current value is "a b"$/,
    ],
  ];
  for (const [options, name, message] of cases) {
    assert.throws(() => serve(options), { name, message }, JSON.stringify(options));
  }
  const cert = await Deno.readTextFile(FIXTURES + "localhost.pem");
  const keys: [string, RegExp][] = [
    [
      cert.replaceAll("CERTIFICATE", "PRIVATE KEY"),
      /^Cannot use key as it is not an RSA, ECDSA or EdDSA private key$/,
    ],
    [
      (await Deno.readTextFile(FIXTURES + "localhost.key")).replace(/\n[A-Za-z]/, "\n!"),
      /^Cannot use key as its PEM private key does not decode: current error is Unable to decode key$/,
    ],
    [
      await Deno.readTextFile(FIXTURES + "client.key"),
      /^Cannot use key as it does not match the certificate in cert$/,
    ],
  ];
  for (const [key, message] of keys) {
    assert.throws(() => serve({ cert, key }), (error) => {
      assert.ok(error instanceof TypeError, String(error));
      assert.match(error.message, message);
      return true;
    });
  }
  for (const code of [1000, 1003, 1007, 1014, 3000, 4999]) {
    await serve({ closeWith: { code, reason: "é".repeat(61) } }).close(); // 122 bytes
  }
  for (const code of [999, 1004, 1006, 1015, 2000, 2999, 5000, 1000.5]) {
    assert.throws(() => serve({ closeWith: { code } }), { name: "RangeError" }, String(code));
  }
});
