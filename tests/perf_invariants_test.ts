// Performance invariants, not behaviour: how much memory the protocol layer recycles and how
// much a kept message keeps alive. Nothing here is an RFC rule or an API promise; a change
// that breaks one of these should be a choice, checked against bench/RESULTS.md.
import assert from "node:assert/strict";
import { KEPT_SLAB, pooledBytes, release, takeBuffer } from "../protocol/buffers.ts";
import { FrameReader } from "../protocol/frame_reader.ts";
import {
  encodeFrame,
  encodeTextFrame,
  OP_BINARY,
  OP_CONTINUATION,
  OP_TEXT,
} from "../protocol/frames.ts";
import { Protocol } from "../protocol/protocol.ts";
import { connect } from "../mod.ts";
import { serve } from "../serve.ts";
import { closePayload, concat, OP, rawServer } from "./_raw_server.ts";

/** Empties the pool (it is process-wide) by taking every free buffer of the classes used here. */
function drain(): void {
  for (let guard = 0; pooledBytes() > 0 && guard < 10_000; guard++) {
    for (const size of [4096, 8192, 16384, 32768, 65536, 131072, 262144]) takeBuffer(size);
  }
  assert.equal(pooledBytes(), 0);
}

Deno.test("serve() echoes large messages of one size class from buffers it reuses, intact", async () => {
  drain();
  await using server = serve();
  // Several clients, messages of one class (8 KiB to 64 KiB) with different lengths and bytes,
  // all in flight at once: a buffer given back too early, or stale bytes past a shorter
  // message, would show in an echo.
  const clients = await Promise.all([1, 2, 3].map(() => connect(server.url)));
  const lengths = [65_000, 40_000, 33_000, 64_000, 50_001];
  const sent = clients.map((_, c) => lengths.map((n, i) => new Uint8Array(n).fill(c * 16 + i + 1)));
  const texts = clients.map((_, c) => "xyz€".repeat(9000 + c)); // 54 000+ bytes of UTF-8
  for (const [c, client] of clients.entries()) {
    for (const bytes of sent[c]!) await client.send(bytes);
    await client.send(texts[c]!);
  }
  for (const [c, client] of clients.entries()) {
    const iterator = client[Symbol.asyncIterator]();
    for (const bytes of sent[c]!) assert.deepEqual((await iterator.next()).value, bytes);
    assert.equal((await iterator.next()).value, texts[c]);
  }
  assert.ok(pooledBytes() > 0, "the echoes' buffers went back to the pool");
  await Promise.all(clients.map((client) => client.close()));
});

Deno.test("encodeFrame() and encodeTextFrame() with slab put a large frame in a pooled buffer", () => {
  drain();
  const payload = new Uint8Array(40_000).fill(9);
  for (const mask of [false, true]) {
    const frame = encodeFrame(OP_BINARY, payload, { mask, slab: true });
    assert.ok(frame.buffer.byteLength > frame.length, "a view of a larger buffer");
    assert.equal(release(frame), true, "the pool's");
    // Taken again (stale bytes in it), the next frame is still exactly right.
    const next = encodeFrame(OP_BINARY, payload.subarray(0, 35_000), { mask, slab: true });
    assert.equal(next.buffer, frame.buffer);
    const reader = new FrameReader({ expectMasked: mask, maxFrameSize: 1 << 20 });
    reader.push(next);
    assert.deepEqual(reader.next()?.payload, payload.subarray(0, 35_000));
  }
  const text = encodeTextFrame("x".repeat(20_000), { mask: true, slab: true });
  assert.equal(release(text), true);
  assert.equal(release(encodeFrame(OP_BINARY, payload)), false, "without slab: its own");
  drain();
});

Deno.test("a client's large frames are written from the pool and given back once written", async () => {
  drain();
  const sent = [1, 2, 3, 4].map((i) => new Uint8Array(30_000 + i * 1000).fill(i));
  const text = "é".repeat(10_000); // 20 000 bytes of UTF-8
  // A scripted server (it uses no pool): what is in the pool afterwards is the client's.
  await using server = rawServer(async (peer) => {
    for (const bytes of sent) {
      const message = await peer.readMessage();
      assert.deepEqual(message?.payload, bytes);
    }
    const message = await peer.readMessage();
    assert.equal(new TextDecoder().decode(message?.payload), text);
    await peer.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1000) });
    await peer.expectClose();
    peer.close();
  });
  const client = await connect(server.url, { transport: "wsbeat" });
  for (const bytes of sent) await client.send(bytes);
  await client.send(text);
  await client.closed;
  await server.done;
  // The 32 KiB class (31 000 bytes), the 64 KiB class (the others) and the text's frame.
  assert.ok(pooledBytes() >= 32 * 1024 + 64 * 1024, `${pooledBytes()} bytes pooled`);
});

Deno.test("Protocol gives back the buffers of text and fragments it decoded or copied, never a binary message's", () => {
  drain();
  const client = new Protocol({ role: "client" });
  const server = new Protocol({ role: "server" });
  const receive = (bytes: Uint8Array, protocol = client) => {
    // Split across pushes, so that each payload gets a buffer of its own.
    for (let at = 0; at < bytes.length; at += 3000) {
      protocol.receiveData(bytes.subarray(at, at + 3000));
    }
    return protocol.events();
  };
  const long = "€".repeat(20_000); // 60 000 bytes of UTF-8
  const short = "ab".repeat(20_000); // 40 000: the same classes, stale bytes after it
  let pooled: number | undefined;
  for (const text of [long, short]) {
    for (const protocol of [client, server]) {
      const mask = protocol === server;
      const bytes = encodeFrame(OP_TEXT, new TextEncoder().encode(text), { mask });
      assert.deepEqual(receive(bytes, protocol), [{ type: "text", data: text }]);
    }
    pooled ??= pooledBytes();
    assert.ok(pooled >= 64 * 1024 + 32, `${pooled} bytes pooled: the text's buffers are back`);
    assert.equal(pooledBytes(), pooled, "and they were taken again, not new ones");
  }
  drain();
  const binary = new Uint8Array(50_000).fill(7);
  const [whole] = receive(encodeFrame(OP_BINARY, binary));
  assert.deepEqual(whole, { type: "binary", data: binary });
  assert.equal((whole as { data: Uint8Array }).data.buffer.byteLength, 50_000, "its own buffer");
  const parts = [binary.subarray(0, 20_000), binary.subarray(20_000)];
  const fragmented = receive(
    concat([
      encodeFrame(OP_BINARY, parts[0]!, { fin: false }),
      encodeFrame(OP_CONTINUATION, parts[1]!),
    ]),
  );
  assert.deepEqual(fragmented, [{ type: "binary", data: binary }]);
  assert.ok(pooledBytes() > 0, "the fragments' buffers too");
  drain();
});

Deno.test("a small binary message keeps at most KEPT_SLAB (32 KiB) alive, a large one only itself", () => {
  const client = new Protocol({ role: "client" });
  const received: Uint8Array[] = [];
  for (const data of [new Uint8Array(100).fill(1), new Uint8Array(5000).fill(9)]) {
    client.receiveData(encodeFrame(OP_BINARY, data));
    for (const event of client.events()) if (event.type === "binary") received.push(event.data);
  }
  assert.ok(received[0]!.buffer.byteLength <= KEPT_SLAB, `${received[0]!.buffer.byteLength} bytes`);
  assert.equal(received[1]!.buffer.byteLength, 5000, "a large one has a buffer of its own");
});
