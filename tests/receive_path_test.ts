// The receive path made cheap (issue 26): text decoded from the read itself, byte counts the
// protocol already knows handed up instead of re-encoding every queued string, and the
// client's bounds and statistics still counting UTF-8 bytes.
import assert from "node:assert/strict";
import { connect } from "../mod.ts";
import { Inbox } from "../client/inbox.ts";
import { FrameReader } from "../protocol/frame_reader.ts";
import {
  encodeFrame,
  HEADER_ROOM,
  OP_BINARY,
  OP_CONTINUATION,
  OP_TEXT,
} from "../protocol/frames.ts";
import { Protocol } from "../protocol/protocol.ts";
import { concat, encoder } from "./_protocol_helpers.ts";
import { OP, rawServer } from "./_raw_server.ts";

Deno.test("FrameReader with streamText gives a whole text payload as a view of the chunk", () => {
  const reader = new FrameReader({ expectMasked: false, maxFrameSize: 1 << 20, streamText: true });
  const chunk = concat(
    encodeFrame(OP_TEXT, encoder.encode("héllo")),
    encodeFrame(OP_BINARY, new Uint8Array([1, 2])),
  );
  reader.push(chunk);
  const text = reader.next()!;
  assert.deepEqual(text.payload, encoder.encode("héllo"));
  assert.equal(text.payload.buffer, chunk.buffer, "not copied");
  const binary = reader.next()!;
  assert.notEqual(binary.payload.buffer, chunk.buffer, "a binary message is the application's");
  assert.equal(reader.next(), undefined);
});

Deno.test("FrameReader with streamText hands a text frame spanning pushes on in pieces", () => {
  const reader = new FrameReader({ expectMasked: false, maxFrameSize: 1 << 20, streamText: true });
  const payload = encoder.encode("abcdefghij");
  const frame = encodeFrame(OP_TEXT, payload, { fin: false });
  const pieces = [];
  for (const part of [frame.subarray(0, 5), frame.subarray(5, 9), frame.subarray(9)]) {
    reader.push(part);
    for (let piece = reader.next(); piece; piece = reader.next()) pieces.push(piece);
  }
  assert.deepEqual(
    pieces.map(({ opcode, fin, payload }) => [opcode, fin, new TextDecoder().decode(payload)]),
    [[OP_TEXT, false, "abc"], [OP_CONTINUATION, false, "defg"], [OP_CONTINUATION, false, "hij"]],
    "the frame's FIN (here none) only on the last piece",
  );
  // Its continuation is text too; a binary message's is not streamed.
  reader.push(encodeFrame(OP_CONTINUATION, encoder.encode("k")));
  assert.equal(reader.next()?.fin, true);
  const binary = encodeFrame(OP_BINARY, new Uint8Array(10));
  reader.push(binary.subarray(0, 5));
  assert.equal(reader.next(), undefined, "binary is gathered whole");
  reader.push(binary.subarray(5));
  assert.equal(reader.next()?.payload.length, 10);
});

Deno.test("FrameReader with streamText leaves an echo server's whole text message room for a header", () => {
  const reader = new FrameReader({
    expectMasked: true,
    maxFrameSize: 1 << 20,
    headerRoom: HEADER_ROOM,
    streamText: true,
  });
  const frame = encodeFrame(OP_TEXT, encoder.encode("echo me"), { mask: true });
  reader.push(frame.subarray(0, 8));
  assert.equal(reader.next(), undefined);
  reader.push(frame.subarray(8));
  const whole = reader.next()!;
  assert.equal(new TextDecoder().decode(whole.payload), "echo me");
  assert.ok(whole.payload.byteOffset >= HEADER_ROOM);
});

Deno.test("Protocol.eventBytes is each message's payload size, text as UTF-8", () => {
  const client = new Protocol({ role: "client" });
  client.receiveData(concat(
    encodeFrame(OP_TEXT, encoder.encode("€uro")), // 6 bytes, 4 characters
    encodeFrame(OP_TEXT, encoder.encode("ab"), { fin: false }),
    encodeFrame(0x9, new Uint8Array(3)), // a ping between the fragments
    encodeFrame(OP_CONTINUATION, encoder.encode("cdé")),
    encodeFrame(OP_BINARY, new Uint8Array(5)),
  ));
  const seen = [];
  for (let event = client.nextEvent(); event; event = client.nextEvent()) {
    seen.push([event.type, client.eventBytes]);
  }
  assert.deepEqual(seen, [["text", 6], ["ping", 3], ["text", 6], ["binary", 5]]);
  assert.equal(client.eventBytes, undefined, "no event");
});

Deno.test("Inbox.push() counts a message by the size it is given, else in UTF-8", () => {
  let full = 0;
  const options = { maxMessages: 100, maxBytes: 7000, onFull: () => full++, onRoom: () => {} };
  const told = new Inbox(options);
  for (let i = 0; i < 4; i++) told.push("x", 2000); // as the transport counted them
  assert.equal(full, 1, "8000 bytes told: over 7000");
  const counted = new Inbox(options);
  for (let i = 0; i < 4; i++) counted.push("é".repeat(1000)); // 2000 bytes each
  assert.equal(full, 2, "counted in UTF-8, not in characters (4000)");
});

Deno.test("WebSocketClient's stats count received text in UTF-8 bytes on either transport", async (t) => {
  const text = "é".repeat(1000); // 2000 bytes, 1000 characters
  for (const transport of ["wsbeat", "native"] as const) {
    await t.step(transport, async () => {
      await using server = rawServer(async (peer) => {
        await peer.sendFrames(
          Array.from({ length: 4 }, () => ({ opcode: OP.TEXT, payload: text })),
        );
        await peer.expectClose();
      });
      const ws = await connect(server.url, { transport });
      for (let i = 0; i < 4; i++) assert.equal(await ws.receive(), text);
      assert.equal(ws.stats.bytesReceived, 8000);
      await ws.close();
      await server.done;
    });
  }
});

Deno.test("FrameReader with streamText gives the first piece of a spanning text frame the frame's length", () => {
  const reader = new FrameReader({ expectMasked: false, maxFrameSize: 1 << 20, streamText: true });
  const frame = encodeFrame(OP_TEXT, encoder.encode("x".repeat(1000)));
  reader.push(frame.subarray(0, 300));
  const first = reader.next()!;
  assert.equal(first.frameLength, 1000);
  reader.push(frame.subarray(300));
  const last = reader.next()!;
  assert.equal(last.frameLength, undefined, "only on the first piece");
  assert.equal(first.payload.length + last.payload.length, 1000);
});

Deno.test("a for-await consumer keeps up with a feed: reading waits for it, the queue stays within one read", async () => {
  const count = 3000;
  await using server = rawServer(async (peer) => {
    // 3 MB in one write: a read loop running ahead of the consumer would fill the queue (300).
    await peer.sendFrames(
      Array.from({ length: count }, (_, i) => ({ opcode: OP.TEXT, payload: `${i}`.padEnd(1000) })),
    );
    await peer.expectClose();
  });
  const ws = await connect(server.url, { maxQueuedMessages: 300 });
  let n = 0, deepest = 0;
  for await (const message of ws) {
    assert.equal(message, `${n}`.padEnd(1000));
    deepest = Math.max(deepest, ws.unread);
    if (++n === count) break;
  }
  assert.equal(ws.stats.readPauses, 0, "never full");
  assert.ok(deepest < 300, `at most one read's messages waited: ${deepest}`);
  await ws.close();
  await server.done;
});
