// permessage-deflate's codecs (RFC 7692): the examples of section 7.2.3 at
// byte level, round trips with and without context takeover, fragments, and
// limits after inflating (decompression bombs).

import assert from "node:assert/strict";
import * as zlib from "node:zlib";
import { Deflater, Inflater, loadZlib } from "../protocol/deflate_codec.ts";
import { ProtocolError } from "../util/errors.ts";
import { json } from "./_protocol_helpers.ts";

const bytes = (...values: number[]) => new Uint8Array(values);
const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);
const MiB = 1024 * 1024;

/** Random bytes (incompressible). */
function noise(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13, x ^= x >>> 17, x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function assertProtocolError(run: () => unknown, closeCode: number, rule: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, String(error));
    assert.equal(error.closeCode, closeCode);
    assert.equal(error.message, `Protocol error: ${rule}`);
    return true;
  });
}

Deno.test("Inflater decodes the examples of RFC 7692 section 7.2.3", async (t) => {
  await t.step("7.2.3.1 a message compressed in one frame, and in two fragments", () => {
    const inflater = new Inflater({ zlib, noContextTakeover: true });
    assert.equal(
      text(inflater.inflate([bytes(0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00)], 5)),
      "Hello",
    );
    assert.equal(
      text(inflater.inflate([bytes(0xf2, 0x48, 0xcd), bytes(0xc9, 0xc9, 0x07, 0x00)], 5)),
      "Hello",
    );
  });
  await t.step("7.2.3.2 context takeover: the second Hello is f2 00 11 00 00", () => {
    const inflater = new Inflater({ zlib });
    assert.equal(
      text(inflater.inflate([bytes(0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00)], 5)),
      "Hello",
    );
    assert.equal(text(inflater.inflate([bytes(0xf2, 0x00, 0x11, 0x00, 0x00)], 5)), "Hello");
    assert.equal(text(inflater.inflate([bytes(0xf2, 0x00, 0x11, 0x00, 0x00)], 5)), "Hello");
    // Without takeover the back-reference points before the message: invalid data.
    const plain = new Inflater({ zlib, noContextTakeover: true });
    plain.inflate([bytes(0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00)], 5);
    assertProtocolError(
      () => plain.inflate([bytes(0xf2, 0x00, 0x11, 0x00, 0x00)], 5),
      1007,
      "invalid compressed data",
    );
  });
  await t.step("7.2.3.3 a DEFLATE block with BFINAL set", () => {
    const inflater = new Inflater({ zlib });
    assert.equal(
      text(inflater.inflate([bytes(0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00)], 5)),
      "Hello",
    );
  });
  await t.step("7.2.3.4 two DEFLATE blocks in one message", () => {
    const inflater = new Inflater({ zlib });
    const payload = bytes(
      0xf2,
      0x48,
      0x05,
      0x00,
      0x00,
      0x00,
      0xff,
      0xff,
      0xca,
      0xc9,
      0xc9,
      0x07,
      0x00,
    );
    assert.equal(text(inflater.inflate([payload], 5)), "Hello");
  });
  await t.step("7.2.3.5 no compression (a stored block)", () => {
    const inflater = new Inflater({ zlib });
    const payload = bytes(0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00);
    assert.equal(text(inflater.inflate([payload], 5)), "Hello");
  });
  await t.step("7.2.3.6 an empty message", () => {
    const inflater = new Inflater({ zlib });
    assert.deepEqual(inflater.inflate([bytes(0x00)], 0), new Uint8Array());
    assert.deepEqual(inflater.inflate([], 0), new Uint8Array());
  });
});

Deno.test("Deflater produces the RFC 7692 bytes for Hello, stripped of 00 00 ff ff", () => {
  const deflater = new Deflater({ zlib });
  assert.deepEqual(
    deflater.deflate(utf8("Hello")),
    bytes(0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00),
  );
  // Each message stands alone: the second Hello is the same bytes again.
  assert.deepEqual(
    deflater.deflate(utf8("Hello")),
    bytes(0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00),
  );
  const empty = deflater.deflate(new Uint8Array());
  assert.deepEqual(new Inflater({ zlib }).inflate([empty], 0), new Uint8Array());
});

Deno.test("Deflater and Inflater round-trip with and without context takeover", async (t) => {
  const messages = [
    new Uint8Array(),
    utf8("Hello"),
    ...Array.from({ length: 40 }, (_, i) => json([30, 200, 1024, 5000, 70_000][i % 5]!, i)),
    noise(3000, 1),
    noise(100_000, 2),
    new Uint8Array(300_000).fill(0x61),
  ];
  for (const bits of [8, 9, 10, 12, 15]) {
    for (const noContextTakeover of [false, true]) {
      await t.step(`window bits ${bits}, ${noContextTakeover ? "no " : ""}context takeover`, () => {
        const deflater = new Deflater({ zlib, maxWindowBits: bits });
        const inflater = new Inflater({ zlib, noContextTakeover, maxWindowBits: bits });
        for (const message of messages) {
          const payload = deflater.deflate(message);
          assert.deepEqual(inflater.inflate([payload], message.length), message);
        }
        assert.equal(inflater.retainedBytes, noContextTakeover ? 0 : 1 << bits);
      });
    }
  }
  await t.step("compresses JSON to a fraction", () => {
    const message = json(16 * 1024, 7);
    assert.ok(new Deflater({ zlib }).deflate(message).length < message.length / 4);
  });
});

Deno.test("Deflater.shouldCompress() applies the threshold, and refuses window bits 8", () => {
  const deflater = new Deflater({ zlib });
  assert.equal(deflater.shouldCompress(1023), false);
  assert.equal(deflater.shouldCompress(1024), true);
  assert.equal(new Deflater({ zlib, threshold: 0 }).shouldCompress(0), true);
  const eight = new Deflater({ zlib, maxWindowBits: 8, threshold: 0 });
  assert.equal(eight.shouldCompress(100_000), false);
  // Still valid if used: stored blocks only, decodable with a 256-byte window.
  const message = json(2000, 3);
  assert.deepEqual(
    new Inflater({ zlib, maxWindowBits: 8 }).inflate([eight.deflate(message)], 2000),
    message,
  );
});

Deno.test("Inflater.inflate() takes a message's fragments in pieces", () => {
  const deflater = new Deflater({ zlib });
  const messages = [json(300, 1), json(300, 2), json(4000, 3)];
  const payloads = messages.map((m) => deflater.deflate(m));
  const inflater = new Inflater({ zlib });
  for (const [index, payload] of payloads.entries()) {
    // Every split point of two pieces, then one byte per piece.
    for (let cut = 0; cut <= payload.length; cut++) {
      const pieces = [payload.subarray(0, cut), payload.subarray(cut)];
      assert.deepEqual(inflater.inflate(pieces, 1 * MiB), messages[index]);
    }
    const single = Array.from(payload, (b) => bytes(b));
    assert.deepEqual(inflater.inflate(single, 1 * MiB), messages[index]);
  }
});

Deno.test("Inflater.push() copies each fragment, so pooled buffers can be reused before end()", () => {
  const deflater = new Deflater({ zlib });
  const inflater = new Inflater({ zlib });
  for (const seed of [1, 2, 3]) {
    const message = json(5000, seed);
    const payload = deflater.deflate(message);
    const pool = new Uint8Array(64);
    for (let offset = 0; offset < payload.length; offset += 64) {
      const piece = payload.subarray(offset, offset + 64);
      pool.set(piece);
      inflater.push(pool.subarray(0, piece.length));
      pool.fill(0xaa); // reused by the next frame
    }
    inflater.push(new Uint8Array());
    assert.deepEqual(inflater.end(5000), message);
  }
  assert.deepEqual(inflater.end(0), new Uint8Array(), "nothing pushed: an empty message");
});

Deno.test("Inflater.inflate() stops a decompression bomb at maxSize with bounded memory", async (t) => {
  // One sync-flushed MiB of zeros (about 1 KiB) repeated: 100 MiB from about 100 KiB.
  const unit = zlib.deflateRawSync(new Uint8Array(MiB), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const bomb = new Uint8Array(unit.length * 100);
  for (let i = 0; i < 100; i++) bomb.set(unit, i * unit.length);
  assert.ok(bomb.length < 120 * 1024, `bomb is ${bomb.length} bytes`);
  await t.step("10 MiB of zeros, maxSize 1 MiB", () => {
    const ten = bomb.subarray(0, unit.length * 10);
    assertProtocolError(
      () => new Inflater({ zlib }).inflate([ten], MiB),
      1009,
      "message too big after inflating",
    );
  });
  await t.step("100 MiB of zeros stops without inflating them (memory under 32 MiB)", () => {
    const before = Deno.memoryUsage().rss;
    let peak = before;
    for (let i = 0; i < 5; i++) {
      const inflater = new Inflater({ zlib });
      assertProtocolError(
        () => inflater.inflate([bomb], MiB),
        1009,
        "message too big after inflating",
      );
      peak = Math.max(peak, Deno.memoryUsage().rss);
    }
    const grown = (peak - before) / MiB;
    assert.ok(grown < 32, `RSS grew by ${grown.toFixed(1)} MiB`);
  });
  await t.step("with a full window, the limit still counts only the message", () => {
    const inflater = new Inflater({ zlib });
    const deflater = new Deflater({ zlib });
    inflater.inflate([deflater.deflate(noise(40_000, 9))], 40_000);
    const message = json(5000, 1);
    const payload = deflater.deflate(message);
    assert.deepEqual(inflater.inflate([payload], 5000), message);
    assertProtocolError(
      () => inflater.inflate([payload], 4999),
      1009,
      "message too big after inflating",
    );
    assertProtocolError(
      () => inflater.inflate([payload], 5000),
      1002,
      "inflating after a failed message",
    );
  });
  await t.step("exactly maxSize passes, one byte less fails", () => {
    const payload = new Deflater({ zlib }).deflate(new Uint8Array(MiB));
    assert.equal(new Inflater({ zlib }).inflate([payload], MiB).length, MiB);
    assertProtocolError(
      () => new Inflater({ zlib }).inflate([payload], MiB - 1),
      1009,
      "message too big after inflating",
    );
    assertProtocolError(
      () => new Inflater({ zlib }).inflate([bytes(0xf2, 0x48)], 0),
      1009,
      "message too big after inflating",
    );
  });
});

Deno.test("Inflater.inflate() fails with 1007 on data zlib rejects", () => {
  assertProtocolError(
    () => new Inflater({ zlib }).inflate([bytes(0xff, 0xff, 0xff, 0xff)], MiB),
    1007,
    "invalid compressed data",
  );
});

Deno.test("Inflater and Deflater check their arguments", () => {
  // @ts-expect-error: no zlib
  assert.throws(() => new Inflater({}), TypeError);
  // @ts-expect-error: no zlib
  assert.throws(() => new Deflater({}), TypeError);
  assert.throws(() => new Inflater({ zlib, maxWindowBits: 16 }), {
    name: "RangeError",
    message: "Cannot use maxWindowBits as it is not an integer from 8 to 15: current value is 16",
  });
  assert.throws(() => new Deflater({ zlib, maxWindowBits: 7 }), RangeError);
  assert.throws(() => new Deflater({ zlib, level: 0 }), RangeError);
  assert.throws(() => new Deflater({ zlib, threshold: -1 }), RangeError);
  assert.throws(() => new Inflater({ zlib }).inflate([], -1), RangeError);
  assert.throws(() => new Inflater({ zlib }).inflate([], 1.5), RangeError);
});

Deno.test("loadZlib() imports node:zlib in Deno", async () => {
  const loaded = await loadZlib();
  assert.equal(loaded?.inflateRawSync, zlib.inflateRawSync);
});

// --- Interop with Node `ws` (lib/permessage-deflate.js) -------------------

// @types/ws does not declare these two exports of ws's wrapper.mjs.
