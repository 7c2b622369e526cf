import assert from "node:assert/strict";
import { ProtocolError } from "../util/errors.ts";
import {
  applyMask,
  encodeFrame,
  encodeFrameInPlace,
  encodeTextFrame,
  HEADER_ROOM,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_TEXT,
  unmaskInto,
} from "../protocol/frames.ts";
import { type Frame, FrameReader } from "../protocol/frame_reader.ts";
import {
  decodeClosePayload,
  encodeClosePayload,
  isValidCloseCode,
} from "../protocol/close_payload.ts";

/** Bytes 0, 1, 2, ... wrapping at 251 (a prime, so no pattern lines up with the key). */
function pattern(length: number): Uint8Array {
  return new Uint8Array(length).map((_, i) => i % 251);
}

/** Masks a copy byte by byte: the reference applyMask is checked against. */
function maskSlowly(data: Uint8Array, key: ArrayLike<number>): Uint8Array {
  return data.map((byte, i) => byte ^ key[i & 3]!);
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
    error instanceof ProtocolError && error.closeCode === code &&
    error.message === `Protocol error: ${rule}`;
}

Deno.test("encodeFrame() uses 7-bit, 16-bit and 64-bit lengths at the RFC boundaries", () => {
  const cases: [number, number[]][] = [
    [0, [0x82, 0]],
    [125, [0x82, 125]],
    [126, [0x82, 126, 0x00, 0x7e]],
    [65535, [0x82, 126, 0xff, 0xff]],
    [65536, [0x82, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]],
  ];
  for (const [length, header] of cases) {
    const payload = pattern(length);
    const frame = encodeFrame(OP_BINARY, payload);
    assert.deepEqual([...frame.subarray(0, header.length)], header, `length ${length}`);
    assert.equal(frame.length, header.length + length);
    assert.deepEqual(frame.subarray(header.length), payload);
    const masked = encodeFrame(OP_BINARY, payload, { mask: true });
    assert.equal(masked[1], header[1]! | 0x80);
    assert.deepEqual([...masked.subarray(2, header.length)], header.slice(2));
    assert.equal(masked.length, header.length + 4 + length);
  }
});

Deno.test("encodeFrame() masks a copy with a fresh key that unmasks it", () => {
  for (const length of [0, 1, 3, 31, 32, 125, 126, 1000, 65536]) {
    const payload = pattern(length);
    const frame = encodeFrame(OP_BINARY, payload, { mask: true });
    const at = headerSizeOf(frame);
    const key = frame.subarray(at - 4, at);
    assert.deepEqual(maskSlowly(frame.subarray(at), key), payload, `length ${length}`);
    assert.deepEqual(payload, pattern(length), "the caller's payload is untouched");
  }
});

Deno.test("encodeFrame() gives two frames different masking keys", () => {
  const payload = new TextEncoder().encode("same payload");
  const keys = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const frame = encodeFrame(OP_TEXT, payload, { mask: true });
    keys.add(frame.subarray(2, 6).join());
  }
  assert.equal(keys.size, 300);
  const first = encodeFrame(OP_TEXT, payload, { mask: true });
  const second = encodeFrame(OP_TEXT, payload, { mask: true });
  assert.notDeepEqual(first.subarray(2, 6), second.subarray(2, 6));
  assert.notDeepEqual(first.subarray(6), second.subarray(6));
});

Deno.test("encodeFrame() sets the FIN bit, reserved bits and opcode as told", () => {
  assert.deepEqual(encodeFrame(OP_TEXT, new Uint8Array(), { fin: false }), new Uint8Array([1, 0]));
  assert.deepEqual(encodeFrame(OP_CONTINUATION, new Uint8Array()), new Uint8Array([0x80, 0]));
  assert.deepEqual(encodeFrame(0xb, new Uint8Array(), { rsv: 4 }), new Uint8Array([0xcb, 0]));
  assert.throws(() => encodeFrame(16, new Uint8Array()), RangeError);
  assert.throws(() => encodeFrame(-1, new Uint8Array()), RangeError);
  assert.throws(() => encodeFrame(1.5, new Uint8Array()), RangeError);
  assert.throws(() => encodeFrame(OP_TEXT, new Uint8Array(), { rsv: 8 }), {
    name: "RangeError",
    message: "Cannot encode the frame as opcode is not 0-15 or rsv not 0-7: opcode 1, rsv 8",
  });
});

Deno.test("encodeTextFrame() writes the UTF-8 bytes straight into one frame", () => {
  const encoder = new TextEncoder();
  const texts = [
    "",
    "hello",
    "héllo €𝄞",
    "\ud800 lone surrogate",
    "a".repeat(125),
    "a".repeat(126),
    "é".repeat(2000), // 4000 bytes, short string path
    "x".repeat(65535),
    "x".repeat(65536),
    "x".repeat(5000) + "é€𝄞".repeat(3000), // long string: ASCII first, then grown
    "€".repeat(30000),
  ];
  for (const text of texts) {
    const bytes = encoder.encode(text);
    for (const mask of [false, true]) {
      const frame = encodeTextFrame(text, { mask });
      const binary = encodeFrame(OP_TEXT, bytes, { mask });
      const at = headerSizeOf(frame);
      assert.deepEqual(
        frame.subarray(0, at - (mask ? 4 : 0)),
        binary.subarray(0, at - (mask ? 4 : 0)),
      );
      const payload = mask
        ? maskSlowly(frame.subarray(at), frame.subarray(at - 4, at))
        : frame.subarray(at);
      assert.deepEqual(payload, bytes, `${text.length} units, mask ${mask}`);
    }
  }
});

Deno.test("applyMask() matches a byte-by-byte XOR at every alignment and length", () => {
  const key = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);
  const base = pattern(200);
  for (let offset = 0; offset < 4; offset++) {
    for (let length = 0; length <= 80; length++) {
      const data = base.slice().subarray(offset, offset + length);
      applyMask(data, key);
      assert.deepEqual(data, maskSlowly(base.subarray(offset, offset + length), key));
    }
  }
  const big = pattern(65536 + 3);
  const masked = big.slice();
  applyMask(masked.subarray(1), key);
  assert.deepEqual(masked.subarray(1), maskSlowly(big.subarray(1), key));
  assert.equal(masked[0], big[0], "bytes outside the view are untouched");
});

Deno.test("unmaskInto() matches a byte-by-byte XOR at every alignment, phase and length", () => {
  const key = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);
  const base = pattern(3000);
  const lengths = [0, 1, 7, 31, 32, 33, 100, 1023, 1024, 1031, 1032, 1039, 2047, 2900];
  for (const length of lengths) {
    for (let phase = 0; phase < 4; phase++) {
      const rotated = [0, 1, 2, 3].map((k) => key[(phase + k) & 3]!);
      const expected = maskSlowly(base.subarray(0, length), rotated);
      for (let from = 0; from < 8; from++) {
        const source = new Uint8Array(length + 16);
        source.set(base.subarray(0, length), from);
        const before = source.slice();
        for (let to = 0; to < 8; to++) {
          const target = new Uint8Array(length + 16).fill(0xee);
          unmaskInto(target.subarray(to), source.subarray(from, from + length), key, phase);
          const where = `length ${length}, phase ${phase}, source at ${from}, target at ${to}`;
          assert.deepEqual(target.subarray(to, to + length), expected, where);
          assert.ok(target.subarray(0, to).every((b) => b === 0xee), `before ${where}`);
          assert.ok(target.subarray(to + length).every((b) => b === 0xee), `after ${where}`);
        }
        assert.deepEqual(source, before, "the source is not changed");
        const inPlace = source.subarray(from, from + length);
        unmaskInto(inPlace, inPlace, key, phase);
        assert.deepEqual(inPlace, expected, `in place, length ${length}, phase ${phase}`);
      }
    }
  }
});

Deno.test("applyMask() masks the RFC 6455 section 5.7 sample", () => {
  const data = new TextEncoder().encode("Hello");
  applyMask(data, new Uint8Array([0x37, 0xfa, 0x21, 0x3d]));
  assert.deepEqual(data, new Uint8Array([0x7f, 0x9f, 0x4d, 0x51, 0x58]));
  assert.throws(() => applyMask(data, new Uint8Array(3)), {
    name: "RangeError",
    message: "Cannot mask with the key as it is not 4 bytes long: current value is 3 bytes",
  });
});

Deno.test("isValidCloseCode() accepts only the codes allowed on the wire", () => {
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]) {
    assert.equal(isValidCloseCode(code), true, `${code}`);
  }
  for (const code of [3000, 3999, 4000, 4999]) assert.equal(isValidCloseCode(code), true);
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535, 1000.5, NaN]) {
    assert.equal(isValidCloseCode(code), false, `${code}`);
  }
});

Deno.test("encodeClosePayload() writes the code then the reason", () => {
  assert.deepEqual(encodeClosePayload(), new Uint8Array());
  assert.deepEqual(encodeClosePayload(1000), new Uint8Array([0x03, 0xe8]));
  assert.deepEqual(encodeClosePayload(4999, "é"), new Uint8Array([0x13, 0x87, 0xc3, 0xa9]));
  assert.equal(encodeClosePayload(1000, "a".repeat(123)).length, 125);
  assert.throws(() => encodeClosePayload(1000, "a".repeat(124)), {
    name: "RangeError",
    message: "Cannot send the close reason as it is over 123 bytes: current value is 124 bytes",
  });
  assert.throws(() => encodeClosePayload(1000, "é".repeat(62)), RangeError);
  assert.throws(() => encodeClosePayload(1005), {
    name: "RangeError",
    message: "Cannot send the close code as it is not valid on the wire: current value is 1005",
  });
  assert.throws(() => encodeClosePayload(undefined, "why"), {
    name: "RangeError",
    message: "Cannot send a close reason as no close code was given",
  });
});

Deno.test("decodeClosePayload() reads the code and reason, and rejects bad ones", () => {
  assert.deepEqual(decodeClosePayload(new Uint8Array()), { code: 1005, reason: "" });
  assert.deepEqual(decodeClosePayload(encodeClosePayload(3001, "bye ☃")), {
    code: 3001,
    reason: "bye ☃",
  });
  assert.throws(
    () => decodeClosePayload(new Uint8Array([0x03])),
    protocolError(1002, "close frame payload of 1 byte"),
  );
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) {
    const payload = new Uint8Array([code >> 8, code & 0xff]);
    assert.throws(
      () => decodeClosePayload(payload),
      protocolError(1002, `invalid close code ${code}`),
    );
  }
  assert.throws(
    () => decodeClosePayload(new Uint8Array([0x03, 0xe8, 0xce, 0xba, 0xe1, 0xbd])),
    protocolError(1007, "invalid UTF-8 in close reason"),
  );
});

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
      assert.equal(frame.room, headerRoom > 0 ? true : undefined, where);
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

Deno.test("encodeFrameInPlace() writes the header into the room before the payload", () => {
  for (const length of [0, 125, 126, 65535, 65536]) {
    const payload = new Uint8Array(HEADER_ROOM + 3 + length).subarray(HEADER_ROOM + 3);
    payload.set(pattern(length));
    const frame = encodeFrameInPlace(OP_TEXT, payload);
    assert.deepEqual(frame, encodeFrame(OP_TEXT, pattern(length)), `${length} bytes`);
    assert.equal(frame.buffer, payload.buffer);
  }
  assert.throws(() => encodeFrameInPlace(OP_BINARY, new Uint8Array(126).subarray(1)), {
    name: "RangeError",
    message:
      "Cannot encode the frame in place as there is no room for its header: current value is 1 bytes",
  });
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
