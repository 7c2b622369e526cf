// permessage-deflate on a Protocol, byte by byte (protocol/deflate_extension.ts
// and its hooks in protocol/protocol.ts): RSV1 where RFC 7692 allows it and
// nowhere else, compressed messages whole and fragmented, control frames
// between fragments, context takeover, a decompression bomb, the send path.
// End to end: tests/compression_test.ts.

import assert from "node:assert/strict";
import * as zlib from "node:zlib";
import { Protocol, type ProtocolEvent } from "../protocol/protocol.ts";
import {
  checkCompression,
  compressionOffer,
  type DeflateSettings,
  PerMessageDeflate,
} from "../protocol/deflate_extension.ts";
import type { DeflateParams } from "../protocol/permessage_deflate.ts";
import { FrameReader } from "../protocol/frame_reader.ts";
import { concat, encodeFrame, OP } from "./_raw_frames.ts";

const TAKEOVER: DeflateParams = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: true,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
};
const NO_TAKEOVER: DeflateParams = { ...TAKEOVER, serverNoContextTakeover: true };
const encoder = new TextEncoder();

function settings(params: DeflateParams, tuning: Partial<DeflateSettings> = {}): DeflateSettings {
  return { zlib, params, ...tuning };
}

/** Raw DEFLATE of one message, sync-flushed, without its 00 00 ff ff (RFC 7692 7.2.1). */
function deflate(data: Uint8Array | string): Uint8Array {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const out = zlib.deflateRawSync(bytes, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return new Uint8Array(out.subarray(0, out.length - 4));
}

/** A client Protocol with permessage-deflate agreed, fed `bytes`; its events and failure. */
function clientReceives(bytes: Uint8Array, options: Partial<DeflateSettings> & {
  params?: DeflateParams;
  maxMessageSize?: number;
} = {}) {
  const { params = TAKEOVER, maxMessageSize, ...tuning } = options;
  const client = new Protocol({
    role: "client",
    deflate: settings(params, tuning),
    ...(maxMessageSize === undefined ? {} : { maxMessageSize }),
  });
  client.receiveData(bytes);
  return { client, events: client.events(), failure: client.failure };
}

/** The frames a Protocol queued, parsed back (as its peer would read them). */
function sentFrames(protocol: Protocol, masked: boolean) {
  const reader = new FrameReader({ expectMasked: masked, maxFrameSize: 1 << 24 });
  for (const bytes of protocol.dataToSend()) reader.push(bytes);
  const frames = [];
  for (let frame; (frame = reader.next()) !== undefined;) frames.push(frame);
  return frames;
}

Deno.test("Protocol with deflate inflates the RFC 7692 examples (7.2.3.1, 7.2.3.2)", () => {
  const hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
  const again = [0xf2, 0x00, 0x11, 0x00, 0x00]; // refers back to the first "Hello"
  const bytes = new Uint8Array([0xc1, hello.length, ...hello, 0xc1, again.length, ...again]);
  const { events, failure } = clientReceives(bytes);
  assert.equal(failure, undefined);
  assert.deepEqual(events, [{ type: "text", data: "Hello" }, { type: "text", data: "Hello" }]);
});

Deno.test("Protocol with deflate reads a compressed message in fragments, a ping between", () => {
  const text = JSON.stringify({ items: Array.from({ length: 50 }, (_, i) => ({ i, v: "x" })) });
  const payload = deflate(text);
  const third = Math.floor(payload.length / 3);
  const bytes = concat([
    encodeFrame({ opcode: OP.TEXT, rsv: 4, fin: false, payload: payload.subarray(0, third) }),
    encodeFrame({ opcode: OP.PING, payload: "p" }),
    encodeFrame({
      opcode: OP.CONTINUATION,
      fin: false,
      payload: payload.subarray(third, 2 * third),
    }),
    encodeFrame({ opcode: OP.CONTINUATION, payload: payload.subarray(2 * third) }),
    encodeFrame({ opcode: OP.BINARY, payload: new Uint8Array([1, 2]) }), // uncompressed
  ]);
  const { client, events, failure } = clientReceives(bytes);
  assert.equal(failure, undefined);
  assert.deepEqual(events, [
    { type: "ping", data: encoder.encode("p") },
    { type: "text", data: text },
    { type: "binary", data: new Uint8Array([1, 2]) },
  ]);
  assert.equal(sentFrames(client, true)[0]?.opcode, OP.PING + 1); // the pong, uncompressed
});

Deno.test("Protocol with deflate keeps the rules on reserved bits (1002)", async (t) => {
  const cases: [string, Uint8Array, string][] = [
    [
      "RSV1 on a continuation of a compressed message",
      concat([
        encodeFrame({ opcode: OP.TEXT, rsv: 4, fin: false, payload: deflate("ab") }),
        encodeFrame({ opcode: OP.CONTINUATION, rsv: 4, payload: new Uint8Array(0) }),
      ]),
      "reserved bits set",
    ],
    [
      "RSV1 on a continuation of an uncompressed message",
      concat([
        encodeFrame({ opcode: OP.TEXT, fin: false, payload: "ab" }),
        encodeFrame({ opcode: OP.CONTINUATION, rsv: 4, payload: "c" }),
      ]),
      "reserved bits set",
    ],
    ["RSV1 on a ping", encodeFrame({ opcode: OP.PING, rsv: 4, payload: "p" }), "reserved bits set"],
    ["RSV1 on a close", encodeFrame({ opcode: OP.CLOSE, rsv: 4 }), "reserved bits set"],
    [
      "RSV2 on a text frame",
      encodeFrame({ opcode: OP.TEXT, rsv: 2, payload: "a" }),
      "reserved bits set",
    ],
    [
      "RSV1 and RSV3",
      encodeFrame({ opcode: OP.TEXT, rsv: 5, payload: deflate("a") }),
      "reserved bits set",
    ],
    [
      "a new message inside a compressed one",
      concat([
        encodeFrame({ opcode: OP.BINARY, rsv: 4, fin: false, payload: deflate("ab") }),
        encodeFrame({ opcode: OP.TEXT, payload: "c" }),
      ]),
      "new message inside a fragmented message",
    ],
  ];
  for (const [name, bytes, rule] of cases) {
    await t.step(name, () => {
      const { failure, client } = clientReceives(bytes);
      assert.equal(failure?.closeCode, 1002);
      assert.equal(failure?.rule, rule);
      assert.equal(client.closeSent?.code, 1002);
    });
  }
  await t.step("RSV1 without an agreement", () => {
    const client = new Protocol({ role: "client" });
    client.receiveData(encodeFrame({ opcode: OP.TEXT, rsv: 4, payload: deflate("Hello") }));
    assert.equal(client.failure?.closeCode, 1002);
  });
});

Deno.test("Protocol with deflate stops a decompression bomb at maxMessageSize (1009)", () => {
  const payload = deflate(new Uint8Array(4 * 1024 * 1024)); // 4 MiB of zeros, about 4 KiB
  assert.ok(payload.length < 8192);
  const bytes = encodeFrame({ opcode: OP.BINARY, rsv: 4, payload });
  const { failure, client } = clientReceives(bytes, { maxMessageSize: 64 * 1024 });
  assert.equal(failure?.closeCode, 1009);
  assert.equal(client.closeSent?.code, 1009);
  // Under the limit the same message passes.
  const ok = clientReceives(bytes, { maxMessageSize: 4 * 1024 * 1024 });
  assert.equal(ok.failure, undefined);
  assert.equal((ok.events[0] as { data: Uint8Array }).data.length, 4 * 1024 * 1024);
});

Deno.test("Protocol with deflate fails invalid compressed data and invalid UTF-8 with 1007", () => {
  const garbage = encodeFrame({ opcode: OP.BINARY, rsv: 4, payload: new Uint8Array([0xff, 0xff]) });
  assert.equal(clientReceives(garbage).failure?.closeCode, 1007);
  const badText = encodeFrame({
    opcode: OP.TEXT,
    rsv: 4,
    payload: deflate(new Uint8Array([0xc3])),
  });
  const { failure } = clientReceives(badText);
  assert.equal(failure?.closeCode, 1007);
  assert.equal(failure?.rule, "invalid UTF-8 in text message");
});

Deno.test("Protocol with deflate inflates with and without the server's context takeover", async (t) => {
  const message = JSON.stringify({ price: 101.25, symbol: "ABCD", side: "buy", size: 300 });
  // With takeover the peer's second message refers into the first: a stream, sync-flushed.
  const stream = zlib.createDeflateRaw();
  const flushed = async (text: string) => {
    stream.write(encoder.encode(text));
    const chunks: Uint8Array[] = [];
    stream.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    await new Promise<void>((resolve) =>
      stream.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve())
    );
    stream.removeAllListeners("data");
    const all = concat(chunks);
    return all.subarray(0, all.length - 4);
  };
  const first = await flushed(message);
  const second = await flushed(message);
  stream.close();
  assert.ok(second.length < first.length / 2); // a back-reference to the first
  await t.step("takeover: both inflate, the window kept", () => {
    const { events, failure, client } = clientReceives(concat([
      encodeFrame({ opcode: OP.TEXT, rsv: 4, payload: first }),
      encodeFrame({ opcode: OP.TEXT, rsv: 4, payload: second }),
    ]));
    assert.equal(failure, undefined);
    assert.deepEqual(events.map((e) => (e as { data: string }).data), [message, message]);
    client.fail(1000);
  });
  await t.step("no takeover: each message on its own, no window kept", () => {
    const extension = new PerMessageDeflate(settings(NO_TAKEOVER), "client", 1 << 20);
    const reader = new FrameReader({ expectMasked: false, maxFrameSize: 1 << 20 });
    reader.push(encodeFrame({ opcode: OP.TEXT, rsv: 4, payload: deflate(message) }));
    reader.push(encodeFrame({ opcode: OP.TEXT, rsv: 4, payload: deflate(message) }));
    for (let frame; (frame = reader.next()) !== undefined;) {
      assert.ok(extension.takes(frame, false));
      assert.deepEqual(extension.receive(frame), { type: "text", data: message });
    }
    assert.equal(extension.retainedBytes, 0);
  });
});

Deno.test("Protocol with deflate compresses messages from the threshold on, never control frames", () => {
  const client = new Protocol({ role: "client", deflate: settings(TAKEOVER, { threshold: 100 }) });
  const long = "abc".repeat(100);
  client.sendText(long);
  client.sendText("short");
  client.sendBinary(new Uint8Array(1000));
  client.sendBinary(new Uint8Array(99));
  client.sendPing(new Uint8Array(125));
  const frames = sentFrames(client, true);
  assert.deepEqual(frames.map((f) => [f.opcode, f.rsv]), [
    [OP.TEXT, 4],
    [OP.TEXT, 0],
    [OP.BINARY, 4],
    [OP.BINARY, 0],
    [OP.PING, 0],
  ]);
  const inflate = (payload: Uint8Array) =>
    new Uint8Array(
      zlib.inflateRawSync(concat([payload, new Uint8Array([0, 0, 0xff, 0xff])]), {
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
      }),
    );
  assert.equal(new TextDecoder().decode(inflate(frames[0]!.payload)), long);
  assert.ok(frames[0]!.payload.length < 50);
  assert.deepEqual(inflate(frames[2]!.payload), new Uint8Array(1000));
  // bytesSent counts payloads as framed: compressed where compressed.
  const payloads = frames.slice(0, 4).reduce((n, f) => n + f.payload.length, 0);
  assert.equal(client.bytesSent, payloads);
});

Deno.test("Protocol with deflate on a server echoes compressed and uncompressed messages", () => {
  const server = new Protocol({
    role: "server",
    echo: true,
    deflate: settings(NO_TAKEOVER, { threshold: 10 }),
  });
  const text = "hello compressed world";
  server.receiveData(concat([
    encodeFrame({ opcode: OP.TEXT, rsv: 4, mask: true, payload: deflate(text) }),
    encodeFrame({ opcode: OP.TEXT, mask: true, payload: text }),
  ]));
  const events = server.events() as Extract<ProtocolEvent, { type: "text" }>[];
  assert.deepEqual(events.map((e) => e.data), [text, text]);
  assert.equal(events[0]!.echo, undefined); // inflated: no room for an in-place header
  assert.ok(events[1]!.echo instanceof Uint8Array);
  server.sendText(events[0]!.data);
  server.sendEcho("text", events[1]!.echo!);
  const frames = sentFrames(server, false);
  assert.deepEqual(frames.map((f) => [f.opcode, f.rsv]), [[OP.TEXT, 4], [OP.TEXT, 4]]);
  assert.deepEqual(frames[0]!.payload, frames[1]!.payload);
});

Deno.test("checkCompression() checks the option and compressionOffer() builds the offer", () => {
  assert.equal(checkCompression(false, "client", true), undefined);
  assert.deepEqual(checkCompression(undefined, "client", true), {});
  assert.equal(checkCompression(undefined, "server", false), undefined);
  const options = checkCompression({ serverMaxWindowBits: 10, level: 1 }, "client", false)!;
  assert.ok(Object.isFrozen(options));
  assert.equal(
    compressionOffer(options),
    "permessage-deflate; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits",
  );
  assert.throws(() => checkCompression("yes", "client", false), {
    name: "TypeError",
    message: "Cannot use compression as it is not a boolean or an object: current value is yes",
  });
  assert.throws(() => checkCompression({ threshold: -1 }, "client", false), RangeError);
  assert.throws(() => checkCompression({ level: 10 }, "server", false), {
    name: "RangeError",
    message:
      "Cannot use compression.level as it is not an integer from 1 to 9: current value is 10",
  });
  assert.throws(() => checkCompression({ serverMaxWindowBits: 16 }, "client", false), RangeError);
  assert.throws(() => checkCompression({ clientMaxWindowBits: 7 }, "server", false), RangeError);
});
