// FrameReader (protocol/frame_reader.ts): bytes in, frames out; what one frame alone may be.
import assert from "node:assert/strict";
import { ProtocolError } from "../util/errors.ts";
import {
  encodeFrame,
  HEADER_ROOM,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_TEXT,
} from "../protocol/frames.ts";
import { type Frame, FrameReader } from "../protocol/frame_reader.ts";
import { encodeClosePayload } from "../protocol/close_payload.ts";
import { type PayloadAllocator, payloadAllocator, type PayloadUse } from "../protocol/buffers.ts";

/** Bytes 0, 1, 2, ... wrapping at 251 (a prime, so no pattern lines up with the key). */
function pattern(length: number): Uint8Array {
  return new Uint8Array(length).map((_, i) => i % 251);
}

/** The header size of an encoded frame, read from its second byte. */
function headerSizeOf(frame: Uint8Array): number {
  const length = frame[1]! & 0x7f;
  return 2 + (length === 126 ? 2 : length === 127 ? 8 : 0) + (frame[1]! & 0x80 ? 4 : 0);
}

function readAll(reader: FrameReader): Frame[] {
  const frames: Frame[] = [];
  for (let frame = reader.next(); frame !== undefined; frame = reader.next()) frames.push(frame);
  return frames;
}

function protocolError(code: number, rule: string) {
  return (error: unknown) =>
    error instanceof ProtocolError && error.closeCode === code && error.rule === rule &&
    error.message === `Protocol error: ${rule}`;
}

Deno.test("FrameReader.next() reads 7-bit, 16-bit and 64-bit lengths at the RFC boundaries", () => {
  for (const length of [0, 1, 125, 126, 127, 65535, 65536, 70000]) {
    for (const mask of [false, true]) {
      const payload = pattern(length);
      const reader = new FrameReader({ expectMasked: mask, maxFrameSize: 1 << 20 });
      reader.push(encodeFrame(OP_BINARY, payload, { mask }));
      const frame = reader.next();
      assert.deepEqual(frame, { fin: true, rsv: 0, opcode: OP_BINARY, payload });
      assert.equal(reader.next(), undefined);
      assert.equal(reader.bufferedBytes, 0);
    }
  }
});

Deno.test("FrameReader.push() handles a frame split at every byte offset", () => {
  for (const mask of [false, true]) {
    const payload = pattern(300);
    const bytes = encodeFrame(OP_BINARY, payload, { mask });
    for (let split = 0; split <= bytes.length; split++) {
      const reader = new FrameReader({ expectMasked: mask, maxFrameSize: 1000 });
      reader.push(bytes.subarray(0, split));
      if (split < bytes.length) {
        assert.equal(reader.next(), undefined);
        assert.equal(
          reader.bufferedBytes,
          split < headerSizeOf(bytes) ? split : split - headerSizeOf(bytes),
        );
      }
      reader.push(bytes.subarray(split));
      assert.deepEqual(reader.next()?.payload, payload, `split at ${split}, mask ${mask}`);
    }
    const reader = new FrameReader({ expectMasked: mask, maxFrameSize: 1000 });
    for (const byte of bytes) reader.push(new Uint8Array([byte]));
    assert.deepEqual(reader.next()?.payload, payload, "one byte per push");
  }
});

Deno.test("FrameReader.push() unmasks a large payload split at every offset, at every alignment", () => {
  const payload = pattern(5000);
  const bytes = encodeFrame(OP_BINARY, payload, { mask: true });
  /** `part` pushed from a buffer where it starts at offset `at`, the buffer then scribbled on. */
  const pushAt = (reader: FrameReader, part: Uint8Array, at: number) => {
    const buffer = new Uint8Array(at + part.length);
    buffer.set(part, at);
    reader.push(buffer.subarray(at));
    buffer.fill(0x55);
  };
  for (const headerRoom of [0, HEADER_ROOM]) {
    for (let split = 0; split <= bytes.length; split++) {
      const reader = new FrameReader({ expectMasked: true, maxFrameSize: 1 << 20, headerRoom });
      pushAt(reader, bytes.subarray(0, split), split % 8);
      pushAt(reader, bytes.subarray(split), (split >> 3) % 8);
      const frame = reader.next()!;
      const where = `split at ${split}, headerRoom ${headerRoom}`;
      assert.deepEqual(frame.payload, payload, where);
      const { byteOffset } = frame.payload;
      if (headerRoom === 0) assert.equal(byteOffset, 0, where);
      else assert.ok(byteOffset >= headerRoom && byteOffset < headerRoom + 8, where);
      assert.ok(frame.payload.buffer.byteLength >= byteOffset + payload.length, where);
    }
    for (const size of [1, 7, 1000, 3001]) {
      const reader = new FrameReader({ expectMasked: true, maxFrameSize: 1 << 20, headerRoom });
      for (let at = 0; at < bytes.length; at += size) {
        pushAt(reader, bytes.subarray(at, at + size), at % 8);
      }
      assert.deepEqual(reader.next()?.payload, payload, `${size} bytes per push`);
    }
  }
});

Deno.test("FrameReader.push() copies payloads so the caller may reuse its buffer", () => {
  const reader = new FrameReader({ expectMasked: true, maxFrameSize: 1 << 20 });
  const small = encodeFrame(OP_BINARY, pattern(10), { mask: true });
  const large = encodeFrame(OP_BINARY, pattern(5000), { mask: true });
  const buffer = new Uint8Array(small.length + large.length + 3);
  buffer.set(small);
  buffer.set(large, small.length);
  buffer.set(large.subarray(0, 3), small.length + large.length); // the start of a third frame
  reader.push(buffer);
  buffer.fill(0);
  reader.push(large.subarray(3));
  const frames = readAll(reader);
  assert.deepEqual(frames.map((frame) => frame.payload), [
    pattern(10),
    pattern(5000),
    pattern(5000),
  ]);
  assert.equal(frames[1]!.payload.buffer.byteLength, 5000, "a large payload has its own buffer");
});

Deno.test("FrameReader.next() returns many frames of one push in order", () => {
  const reader = new FrameReader({ expectMasked: false, maxFrameSize: 125 });
  const parts = [0, 1, 2, 3, 4].map((n) => encodeFrame(OP_BINARY, pattern(n), { fin: n === 4 }));
  reader.push(new Uint8Array(parts.flatMap((part) => [...part])));
  assert.deepEqual(readAll(reader).map((frame) => [frame.fin, frame.payload.length]), [
    [false, 0],
    [false, 1],
    [false, 2],
    [false, 3],
    [true, 4],
  ]);
});

Deno.test("FrameReader.next() reports reserved bits and unknown opcodes without judging them", () => {
  const reader = new FrameReader({ expectMasked: false, maxFrameSize: 125 });
  reader.push(new Uint8Array([0xf3, 0x00, 0x8b, 0x01, 0x07]));
  assert.deepEqual(readAll(reader), [
    { fin: true, rsv: 7, opcode: 3, payload: new Uint8Array() },
    { fin: true, rsv: 0, opcode: 0xb, payload: new Uint8Array([7]) },
  ]);
});

Deno.test("FrameReader.next() rejects a mask bit that does not fit the role", () => {
  const client = new FrameReader({ expectMasked: false, maxFrameSize: 125 });
  client.push(encodeFrame(OP_TEXT, new Uint8Array([0x61]), { mask: true }));
  assert.throws(() => client.next(), protocolError(1002, "masked frame from a server"));
  const server = new FrameReader({ expectMasked: true, maxFrameSize: 125 });
  server.push(encodeFrame(OP_TEXT, new Uint8Array([0x61])));
  assert.throws(() => server.next(), protocolError(1002, "unmasked frame from a client"));
});

Deno.test("FrameReader.next() rejects control frames over 125 bytes or fragmented", () => {
  const long = new FrameReader({ expectMasked: false, maxFrameSize: 1000 });
  long.push(new Uint8Array([0x89, 126, 0x00, 126])); // the header alone: no payload yet
  assert.throws(() => long.next(), protocolError(1002, "control frame payload over 125 bytes"));
  const fragmented = new FrameReader({ expectMasked: false, maxFrameSize: 1000 });
  fragmented.push(new Uint8Array([0x09, 0x00]));
  assert.throws(() => fragmented.next(), protocolError(1002, "fragmented control frame"));
  const close = new FrameReader({ expectMasked: false, maxFrameSize: 1000 });
  close.push(encodeFrame(OP_CLOSE, pattern(125)));
  assert.equal(close.next()?.payload.length, 125);
});

Deno.test("FrameReader.next() rejects a 64-bit length with the top bit set", () => {
  const reader = new FrameReader({ expectMasked: false, maxFrameSize: Infinity });
  reader.push(new Uint8Array([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]));
  assert.throws(() => reader.next(), protocolError(1002, "64-bit length with the top bit set"));
});

Deno.test("FrameReader.next() fails 1009 on the header of a frame over maxFrameSize", () => {
  const reader = new FrameReader({ expectMasked: false, maxFrameSize: 65536 });
  reader.push(new Uint8Array([0x82, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x01])); // 65537, no payload
  assert.throws(() => reader.next(), protocolError(1009, "frame over 65536 bytes"));
  const exact = new FrameReader({ expectMasked: false, maxFrameSize: 65536 });
  exact.push(encodeFrame(OP_BINARY, pattern(65536)));
  assert.equal(exact.next()?.payload.length, 65536);
});

Deno.test("FrameReader.next() fails 1009 on a frame too large to allocate, without a limit", () => {
  const reader = new FrameReader({ expectMasked: false, maxFrameSize: Infinity });
  reader.push(new Uint8Array([0x82, 127, 0x00, 0x10, 0, 0, 0, 0, 0, 0])); // 2^52 bytes
  assert.equal(reader.next(), undefined);
  reader.push(new Uint8Array([1]));
  assert.throws(
    () => reader.next(),
    protocolError(1009, "frame of 4503599627370496 bytes too large to buffer"),
  );
});

Deno.test("FrameReader.next() fails 1009 when fragments take a message past maxMessageSize", () => {
  const reader = new FrameReader({ expectMasked: false, maxFrameSize: 100, maxMessageSize: 100 });
  reader.push(encodeFrame(OP_TEXT, pattern(60), { fin: false }));
  reader.push(encodeFrame(OP_PING, pattern(100))); // control frames do not count
  reader.push(encodeFrame(OP_CONTINUATION, pattern(40), { fin: false }));
  reader.push(new Uint8Array([0x80, 1])); // header only: 101 bytes in all
  for (let i = 0; i < 3; i++) assert.ok(reader.next());
  assert.throws(() => reader.next(), protocolError(1009, "message over 100 bytes"));
  const next = new FrameReader({ expectMasked: false, maxFrameSize: 100, maxMessageSize: 100 });
  next.push(encodeFrame(OP_TEXT, pattern(60), { fin: false }));
  next.push(encodeFrame(OP_CONTINUATION, pattern(40)));
  next.push(encodeFrame(OP_BINARY, pattern(100))); // a new message starts from zero
  assert.equal(readAll(next).length, 3);
});

Deno.test("FrameReader.next() returns the frames before a violation, then throws every time", () => {
  const reader = new FrameReader({ expectMasked: false, maxFrameSize: 125 });
  reader.push(new Uint8Array([0x81, 0x01, 0x61, 0x89, 0x7e, 0x81, 0x01, 0x62]));
  assert.deepEqual(reader.next()?.payload, new Uint8Array([0x61]));
  assert.throws(() => reader.next(), ProtocolError);
  reader.push(new Uint8Array([0x81, 0x00]));
  assert.throws(() => reader.next(), ProtocolError);
});

/** An allocator that records what the reader asked for, then does as the default one. */
function recording(): { allocator: PayloadAllocator; asked: string[] } {
  const asked: string[] = [];
  const allocator: PayloadAllocator = {
    smallMax: payloadAllocator.smallMax,
    small(length, use, room) {
      asked.push(`small ${length} ${use} room ${room}`);
      return payloadAllocator.small(length, use, room);
    },
    large(length, use, room, from) {
      asked.push(`large ${length} ${use} room ${room}`);
      return payloadAllocator.large(length, use, room, from);
    },
    release(bytes) {
      asked.push(`release ${bytes.length}`);
      payloadAllocator.release(bytes);
    },
  };
  return { allocator, asked };
}

Deno.test("FrameReader asks its allocator for each payload by what it is for", async (t) => {
  const frames = [
    encodeFrame(OP_TEXT, new Uint8Array(5)),
    encodeFrame(OP_BINARY, new Uint8Array(6)),
    encodeFrame(OP_PING, new Uint8Array(2)),
    encodeFrame(OP_BINARY, new Uint8Array(7), { fin: false }),
    encodeFrame(OP_CONTINUATION, new Uint8Array(5000)),
    encodeFrame(OP_CLOSE, encodeClosePayload(1000)),
  ];
  const expected: Record<string, PayloadUse[]> = {
    client: ["read", "kept", "kept", "read", "read", "read"],
    echo: ["echo", "echo", "kept", "read", "read", "read"],
  };
  for (const [mode, uses] of Object.entries(expected)) {
    await t.step(mode, () => {
      const { allocator, asked } = recording();
      const headerRoom = mode === "echo" ? HEADER_ROOM : 0;
      const reader = new FrameReader({
        expectMasked: false,
        maxFrameSize: 1 << 20,
        headerRoom,
        allocator,
      });
      for (const frame of frames) reader.push(frame);
      assert.equal(readAll(reader).length, frames.length);
      assert.deepEqual(
        asked.map((line) => line.split(" ")[2]),
        uses,
        asked.join(", "),
      );
      assert.ok(asked[4]!.startsWith("large 5000"), "over smallMax: a buffer of its own");
      const rooms = asked.map((line) => Number(line.split(" ")[4]));
      assert.deepEqual(rooms, uses.map((use) => use === "echo" ? HEADER_ROOM : 0));
    });
  }
});

Deno.test("FrameReader gives release() only to a payload in a buffer of its own, and it releases that payload", () => {
  const { allocator, asked } = recording();
  const reader = new FrameReader({ expectMasked: false, maxFrameSize: 1 << 20, allocator });
  const small = encodeFrame(OP_TEXT, new Uint8Array(100));
  const large = encodeFrame(OP_TEXT, pattern(10_000));
  reader.push(small);
  reader.push(large.subarray(0, 50)); // trickling in: a buffer of its own even when small
  reader.push(large.subarray(50));
  const [a, b] = readAll(reader);
  assert.equal(a!.release, undefined, "a slab's view: nothing to give back");
  assert.deepEqual(b!.payload, pattern(10_000));
  b!.release!();
  assert.equal(asked.at(-1), "release 10000");
});

Deno.test("FrameReader.push() leaves an echo server's whole message, even an empty one, room for a header", () => {
  for (const length of [0, 1, 125, 4096, 4097, 70_000]) {
    const reader = new FrameReader({
      expectMasked: true,
      maxFrameSize: 1 << 20,
      headerRoom: HEADER_ROOM,
    });
    reader.push(encodeFrame(OP_BINARY, pattern(length), { mask: true }));
    const frame = reader.next()!;
    assert.deepEqual(frame.payload, pattern(length), `${length} bytes`);
    assert.ok(frame.payload.byteOffset >= HEADER_ROOM, `${length} bytes: room before it`);
  }
});
