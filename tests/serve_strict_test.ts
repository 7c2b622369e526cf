// The echo server answers every message that came before a broken rule, then
// fails the connection with the rule's code (Autobahn's strict cases 3.2,
// 4.1.3, 5.15, run by its fuzzing client against `wsbeat serve`).

import assert from "node:assert/strict";
import { serve } from "../serve.ts";
import { encodeFrame, OP } from "./_raw_frames.ts";

/** Opens a raw TCP connection and completes the opening handshake by hand. */
async function rawClient(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode(
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ),
  );
  return conn;
}

/** Reads everything the server sends until it closes, and splits off the 101 head. */
async function readAll(conn: Deno.TcpConn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(4096);
  for (let i = 0; i < 1_000; i++) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
  }
  const all = new Uint8Array(chunks.reduce((sum, c) => sum + c.length, 0));
  let at = 0;
  for (const c of chunks) all.set(c, (at += c.length) - c.length);
  const head = new TextDecoder().decode(all).indexOf("\r\n\r\n");
  assert.ok(head > 0, "no 101 answer");
  assert.match(new TextDecoder().decode(all.subarray(0, head)), /^HTTP\/1\.1 101 /);
  return all.subarray(head + 4);
}

/** The server's unmasked frames, as [opcode, payload text], a close frame's as its code. */
function framesOf(bytes: Uint8Array): [number, string | number][] {
  const out: [number, string | number][] = [];
  for (let at = 0; at < bytes.length;) {
    const opcode = bytes[at]! & 0x0f;
    const length = bytes[at + 1]! & 0x7f; // the server's frames here are all short
    const payload = bytes.subarray(at + 2, at + 2 + length);
    out.push([
      opcode,
      opcode === OP.CLOSE ? payload[0]! << 8 | payload[1]! : new TextDecoder().decode(payload),
    ]);
    at += 2 + length;
  }
  return out;
}

Deno.test("serve() echoes the messages before a broken rule in the same read, then closes with its code", async (t) => {
  await using server = serve({ port: 0, log: () => {} });
  const port = Number(new URL(server.url).port);
  for (
    const [name, bad, code] of [
      ["reserved bits", { opcode: OP.TEXT, payload: "x", rsv: 4 }, 1002],
      ["an unknown opcode", { opcode: 5 }, 1002],
      ["a continuation without a message", { opcode: OP.CONTINUATION, payload: "x" }, 1002],
    ] as const
  ) {
    await t.step(name, async () => {
      const conn = await rawClient(port);
      await conn.write(
        new Uint8Array([
          ...encodeFrame({ opcode: OP.TEXT, payload: "first", mask: true }),
          ...encodeFrame({ opcode: OP.TEXT, payload: "second", mask: true }),
          ...encodeFrame({ ...bad, mask: true }),
        ]),
      );
      const frames = framesOf(await readAll(conn));
      conn.close();
      assert.deepEqual(frames, [[OP.TEXT, "first"], [OP.TEXT, "second"], [OP.CLOSE, code]]);
    });
  }
});
