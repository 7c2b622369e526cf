// The trace option: one event per step (request and response heads, frames both ways with
// opcode, length and preview, pings and pongs, close), credentials masked.

import assert from "node:assert/strict";
import { connect, type TraceEvent } from "../mod.ts";
import { feedServer } from "./_connect_proxy.ts";
import { maskHead, preview } from "../transport/trace.ts";

Deno.test("trace tells every step of a connection, with secrets masked", async () => {
  await using server = feedServer();
  const events: TraceEvent[] = [];
  const ws = await connect(`${server.url}/feed?token=abc123&room=1`, {
    headers: { "X-Api-Key": "k-abc123", Cookie: "s=abc123" },
    trace: (event) => events.push(event),
  });
  ws.send("hello");
  assert.equal(await ws.receive(), "hello");
  ws.send(new Uint8Array(20).fill(0xab));
  await ws.receive();
  await ws.ping();
  await ws.close();
  const steps = events.map((e) => `${e.step}${e.opcode ? ` ${e.opcode}` : ""}`);
  assert.deepEqual(steps, [
    "request",
    "response",
    "send text",
    "receive text",
    "send binary",
    "receive binary",
    "send ping",
    "receive pong",
    "send close",
    "receive close",
    "closed",
  ]);
  const [request, response] = events;
  assert.match(request!.detail, /^GET \/feed\?token=\*\*\*&room=1 HTTP\/1\.1\r\n/);
  assert.match(request!.detail, /\r\nX-Api-Key: \*\*\*/);
  assert.match(request!.detail, /\r\nCookie: \*\*\*/);
  assert.equal(response!.status, 101);
  assert.match(response!.detail, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  assert.deepEqual(events[2], { step: "send", opcode: "text", length: 5, detail: "hello" });
  assert.equal(events[4]!.length, 20);
  assert.equal(events[4]!.detail, "ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ...");
  assert.equal(events.at(-1)!.detail, "1000 clean");
  assert.doesNotMatch(JSON.stringify(events), /abc123/);
});

Deno.test("trace shows a server's ping and the pong that answered it", async () => {
  // A raw server: after the handshake it sends a ping frame with payload "hb".
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    const buffer = new Uint8Array(4096);
    const n = (await conn.read(buffer))!;
    const key = /sec-websocket-key: *(\S+)/i.exec(
      new TextDecoder().decode(buffer.subarray(0, n)),
    )![1]!;
    const digest = await crypto.subtle.digest(
      "SHA-1",
      new TextEncoder().encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
    );
    const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
    await conn.write(new TextEncoder().encode(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    ));
    await conn.write(Uint8Array.of(0x89, 2, 0x68, 0x62)); // ping "hb"
    await conn.read(buffer); // the pong
    await conn.write(Uint8Array.of(0x88, 2, 0x03, 0xe8)); // close 1000
    await conn.read(buffer); // the client's close frame; the server closes TCP first
    conn.close();
  })();
  const events: TraceEvent[] = [];
  const ws = await connect(`ws://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`, {
    trace: (event) => events.push(event),
  });
  await ws.closed;
  await serving;
  listener.close();
  const frames = events.filter((e) => e.opcode !== undefined);
  assert.deepEqual(frames.slice(0, 2), [
    { step: "receive", opcode: "ping", length: 2, detail: "68 62" },
    { step: "send", opcode: "pong", length: 2, detail: "68 62" },
  ]);
  assert.deepEqual(frames[2], { step: "receive", opcode: "close", length: 2, detail: "1000" });
});

Deno.test("maskHead() and preview() keep a trace line short and free of secrets", () => {
  assert.equal(
    maskHead("GET /?signature=x HTTP/1.1\r\nProxy-Authorization: Basic x\r\n\r\n"),
    "GET /?signature=*** HTTP/1.1\r\nProxy-Authorization: ***",
  );
  assert.equal(preview("x".repeat(70)), "x".repeat(60) + "...");
});
