// The serialising half of the frame layer (protocol/frames.ts): encoding, masking, frames in
// place. Parsing is tests/frame_reader_test.ts; close payloads tests/close_payload_test.ts.
import assert from "node:assert/strict";
import {
  applyMask,
  encodeFrame,
  encodeFrameInPlace,
  encodeTextFrame,
  HEADER_ROOM,
  OP_BINARY,
  OP_CONTINUATION,
  OP_TEXT,
  statedPayloadLength,
  unmaskInto,
} from "../protocol/frames.ts";

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

Deno.test("statedPayloadLength() reads the length a frame's header states, at every size", () => {
  for (const n of [0, 125, 126, 65535, 65536, 70_000]) {
    for (const mask of [false, true]) {
      assert.equal(statedPayloadLength(encodeFrame(OP_BINARY, new Uint8Array(n), { mask })), n);
    }
  }
  assert.equal(statedPayloadLength(encodeTextFrame("€", { mask: true })), 3);
});
