// The echo server's limits, tried as a hostile client would: a message that
// never ends, more connections than allowed, half-sent and oversized
// requests, a client that sends without reading. Each with wsbeat's client,
// the native WebSocket and Node's ws where a real client can do it, and with
// a raw socket where only a hostile one would.

import assert from "node:assert/strict";
import { connect } from "../mod.ts";
import { serve } from "../serve.ts";
import {
  closeOf,
  KINDS,
  logLines,
  OP,
  openPeer,
  type Peer,
  RawClient,
  refusedStatus,
  type ServerFrame,
  upgradeRequest,
} from "./_serve_clients.ts";
import { encodeFrame } from "./_raw_frames.ts";

const MiB = 1024 * 1024;

Deno.test("serve() closes with 1009 a message over maxMessageSize", async (t) => {
  for (const kind of KINDS) {
    await t.step(kind, async () => {
      await using server = serve({ maxMessageSize: 1024 });
      const peer = await openPeer(kind, server.url);
      peer.send("x".repeat(1024)); // at the limit: echoed
      assert.equal(await peer.next(), "x".repeat(1024));
      peer.send(new Uint8Array(1025));
      assert.deepEqual(await peer.closed, { code: 1009, reason: "message over 1024 bytes" });
    });
  }
});

Deno.test("serve() closes a flood of continuation frames with 1009, its memory bounded", async () => {
  const logs = logLines();
  await using server = serve({ maxMessageSize: MiB, log: logs.log });
  await using raw = await RawClient.open(server.port);
  await raw.head();
  const chunk = new Uint8Array(64 * 1024);
  const continuation = encodeFrame({
    opcode: OP.CONTINUATION,
    fin: false,
    payload: chunk,
    mask: true,
  });
  const rssBefore = Deno.memoryUsage().rss;
  await raw.send({ opcode: OP.BINARY, fin: false, payload: chunk });
  let written = chunk.length;
  try {
    // Up to 256 MiB: far past the limit, unless the server stops taking them.
    for (let i = 0; i < 4096; i++) {
      await raw.write(continuation);
      written += chunk.length;
    }
  } catch { /* the server closed the connection: the flood is over */ }
  const close = (await raw.frame()) as ServerFrame;
  assert.deepEqual(closeOf(close), { code: 1009, reason: `message over ${MiB} bytes` });
  assert.ok(written < 32 * MiB, `${written} bytes went in before the server closed`);
  const grown = (Deno.memoryUsage().rss - rssBefore) / MiB;
  assert.ok(grown < 64, `RSS grew ${grown.toFixed(1)} MiB`);
  await logs.next(
    /^#1 closed \(1009 "message over 1048576 bytes", by the server: protocol error\) after /,
  );
});

Deno.test("serve() refuses connections over maxConnections with 503 while the others keep echoing", async (t) => {
  for (const kind of KINDS) {
    await t.step(kind, async () => {
      const logs = logLines();
      await using server = serve({ maxConnections: 2, log: logs.log });
      const held: Peer[] = [await openPeer(kind, server.url), await openPeer(kind, server.url)];
      assert.equal(await refusedStatus(kind, server.url), 503);
      await logs.next(
        /^#3 refused 127\.0\.0\.1:\d+: 2 connections held \(maxConnections\); answered 503$/,
      );
      for (const [i, peer] of held.entries()) {
        peer.send(`still ${i}`);
        assert.equal(await peer.next(), `still ${i}`);
      }
      await held[0]!.close();
      await logs.next(/^#1 closed/);
      const again = await openPeer(kind, server.url); // a place is free again
      again.send("in");
      assert.equal(await again.next(), "in");
      await Promise.all([again.close(), held[1]!.close()]);
    });
  }
  await t.step("connections still in their handshake count too", async () => {
    await using server = serve({ maxConnections: 1 });
    await using _slow = await RawClient.open(server.port, { request: "GET / HTTP/1.1\r\n" });
    assert.equal(await refusedStatus("wsbeat", server.url), 503);
  });
});

Deno.test("serve() drops a half-sent request (slowloris) after handshakeTimeout", async () => {
  const logs = logLines();
  await using server = serve({ handshakeTimeout: 200, log: logs.log });
  const started = performance.now();
  const slow: RawClient[] = [];
  for (let i = 0; i < 20; i++) {
    slow.push(await RawClient.open(server.port, { request: "GET / HTTP/1.1\r\nHost: x\r\n" }));
  }
  for (const kind of KINDS) { // meanwhile real clients are served
    const peer = await openPeer(kind, server.url);
    peer.send("hi");
    assert.equal(await peer.next(), "hi");
    await peer.close();
  }
  for (const client of slow) assert.deepEqual(await client.rest(), new Uint8Array(0));
  const waited = performance.now() - started;
  assert.ok(waited >= 190 && waited < 2_000, `${waited} ms`);
  await Promise.all(slow.map((client) => client.close()));
  const line = await logs.next(/handshake timeout/);
  assert.match(
    line,
    /^#\d+ handshake timeout from 127\.0\.0\.1:\d+: no complete request within 200 ms \(handshakeTimeout\); closed$/,
  );
});

Deno.test("serve() answers a bad upgrade request on one quiet line, with no stack trace", async (t) => {
  const port = 1; // only for the Host header
  const cases: [string, string, number, RegExp][] = [
    [
      "no Sec-WebSocket-Key",
      upgradeRequest(port, { key: null }),
      400,
      /: 400 the request has no Sec-WebSocket-Key header$/,
    ],
    [
      "malformed header line",
      "GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n",
      400,
      /: 400 malformed HTTP header line 2$/,
    ],
    [
      "version 8",
      upgradeRequest(port).replace("Version: 13", "Version: 8"),
      426,
      /: 426 the request's Sec-WebSocket-Version header is "8", not 13$/,
    ],
    [
      "a head over maxHeaderSize",
      upgradeRequest(port).replace("\r\n\r\n", `\r\nX-Big: ${"b".repeat(2000)}\r\n\r\n`),
      431,
      /: 431 request head over 1024 bytes \(maxHeaderSize\)$/,
    ],
  ];
  for (const [name, request, status, pattern] of cases) {
    await t.step(name, async () => {
      const logs = logLines();
      await using server = serve({ maxHeaderSize: 1024, log: logs.log });
      await using raw = await RawClient.open(server.port, { request });
      const head = (await raw.head()) as { status: number; text: string };
      assert.equal(head.status, status, head.text);
      assert.match(head.text, /\r\nConnection: close\r\n/);
      assert.notEqual(await raw.rest(), "timeout"); // and the server closes
      const line = await logs.next(/handshake rejected/);
      assert.match(line, /^#1 handshake rejected from 127\.0\.0\.1:\d+/);
      assert.match(line, pattern);
      assert.equal(logs.lines.length, 1);
    });
  }
  for (const kind of KINDS) {
    await t.step(`${kind}, with a header too large: 431`, async () => {
      const logs = logLines();
      await using server = serve({ maxHeaderSize: 1024, log: logs.log });
      const headers = { "X-Big": "b".repeat(2000) };
      assert.equal(await refusedStatus(kind, server.url, { headers }), 431);
      await logs.next(/: 431 request head over 1024 bytes \(maxHeaderSize\)$/);
      const peer = await openPeer(kind, server.url, { headers: { "X-Small": "s" } });
      await peer.close();
    });
  }
  await t.step("a head just under maxHeaderSize is served", async () => {
    await using server = serve({ maxHeaderSize: 1024 });
    const request = upgradeRequest(server.port);
    const padded = request.replace(
      "\r\n\r\n",
      `\r\nX-Pad: ${"p".repeat(1015 - request.length)}\r\n\r\n`,
    );
    assert.equal(padded.length, 1024);
    await using raw = await RawClient.open(server.port, { request: padded });
    assert.equal(((await raw.head()) as { status: number }).status, 101);
  });
});

Deno.test("serve() stops reading a client that does not read, and loses nothing", async (t) => {
  const message = "m".repeat(64 * 1024);
  const count = 400; // 25 MiB of echoes: more than the socket buffers hold
  await t.step("ws, paused", async () => {
    const logs = logLines();
    await using server = serve({ maxUnsentBytes: 256 * 1024, log: logs.log });
    const peer = await openPeer("ws", server.url);
    peer.pause!();
    for (let i = 0; i < count; i++) peer.send(`${i}:${message}`);
    await logs.next(/^#1 stopped reading: \d+ bytes unsent, over 262144 \(maxUnsentBytes\)/);
    peer.resume!();
    for (let i = 0; i < count; i++) assert.equal(await peer.next(), `${i}:${message}`);
    await peer.close();
  });
  await t.step("wsbeat, with a full receive queue", async () => {
    const logs = logLines();
    await using server = serve({ maxUnsentBytes: 256 * 1024, log: logs.log });
    await using ws = await connect(server.url, { maxQueuedMessages: 4 });
    for (let i = 0; i < count; i++) ws.send(`${i}:${message}`);
    await logs.next(/^#1 stopped reading/);
    for (let i = 0; i < count; i++) assert.equal(await ws.receive(), `${i}:${message}`);
  });
  await t.step("raw, never reading: the server stops taking its messages", async () => {
    const logs = logLines();
    await using server = serve({ maxUnsentBytes: 256 * 1024, closeTimeout: 100, log: logs.log });
    await using raw = await RawClient.open(server.port, { deaf: true });
    const frame = encodeFrame({ opcode: OP.TEXT, payload: message, mask: true });
    const stopped = logs.next(/^#1 stopped reading/);
    let written = 0;
    // Writes block once the server stops reading and the socket buffers are full.
    const writing = (async () => {
      for (let i = 0; i < 4096; i++) written += (await raw.write(frame), frame.length);
    })().catch(() => {});
    await stopped;
    // Were the server still reading, 256 MiB would go in well within this window.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(written < 64 * MiB, `${written} bytes went in`);
    await server.close(); // closes the socket, so the blocked write ends
    await writing;
  });
});

Deno.test("serve() shuts down within closeTimeout, even with a client that never reads", async (t) => {
  await t.step("a deaf client", async () => {
    const logs = logLines();
    const server = serve({ closeTimeout: 300, log: logs.log });
    await using _deaf = await RawClient.open(server.port, { deaf: true });
    await logs.next(/connected/);
    const started = performance.now();
    await server.close();
    const took = performance.now() - started;
    assert.ok(took >= 290 && took < 1_000, `close() took ${took} ms`);
    await logs.next(
      /^#1 closed \(1001 "server shutting down", by the server; no answer within 300 ms \(closeTimeout\)\) after/,
    );
  });
  await t.step("a deaf client whose replies fill the socket", async () => {
    const logs = logLines();
    const server = serve({ closeTimeout: 300, log: logs.log });
    await using deaf = await RawClient.open(server.port, { deaf: true });
    const frame = encodeFrame({ opcode: OP.BINARY, payload: new Uint8Array(MiB), mask: true });
    const writing = (async () => {
      for (let i = 0; i < 64; i++) await deaf.write(frame);
    })().catch(() => {});
    await logs.next(/stopped reading/); // the server's writes are stuck
    const started = performance.now();
    await server.close();
    assert.ok(performance.now() - started < 1_000);
    await writing;
  });
  await t.step("clients in their handshake, and every kind of client gets 1001", async () => {
    const server = serve({ closeTimeout: 300 });
    await using slow = await RawClient.open(server.port, { request: "GET / HTTP/1.1\r\n" });
    const peers = await Promise.all(KINDS.map((kind) => openPeer(kind, server.url)));
    const started = performance.now();
    await server.close();
    assert.ok(performance.now() - started < 300);
    for (const peer of peers) {
      assert.deepEqual(await peer.closed, { code: 1001, reason: "server shutting down" });
    }
    assert.deepEqual(await slow.rest(), new Uint8Array(0));
  });
});
