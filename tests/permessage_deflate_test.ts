// deno-lint-ignore-file no-import-prefix -- npm:ws is a test-only peer; the library has no dependencies
// permessage-deflate (RFC 7692): negotiation in both roles, the codecs at
// byte level (the examples of section 7.2.3), limits after inflating, and
// interop with Node `ws`'s own PerMessageDeflate (test-only, from npm). Needs
// --allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE: `ws` reads both when it
// loads.

import assert from "node:assert/strict";
import * as zlib from "node:zlib";
import * as wsModule from "npm:ws@8";
import {
  acceptDeflateOffer,
  checkDeflateResponse,
  deflateDirections,
  deflateOffer,
  type DeflateParams,
  ExtensionNegotiationError,
  parseExtensions,
} from "../protocol/permessage_deflate.ts";
import { Deflater, Inflater, loadZlib } from "../protocol/deflate_codec.ts";
import { ProtocolError } from "../util/errors.ts";

const bytes = (...values: number[]) => new Uint8Array(values);
const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);
const MiB = 1024 * 1024;

/** Compressible JSON of about `size` bytes, different for each `seed`. */
function json(size: number, seed: number): Uint8Array {
  const items = [];
  let out = "";
  for (let i = 0; out.length < size; i++) {
    items.push({ id: seed * 1000 + i, user: `user-${(seed + i) % 97}`, ok: i % 3 === 0 });
    out = JSON.stringify({ type: "update", seq: seed, items });
  }
  return utf8(out.slice(0, size));
}

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

function assertNegotiationError(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ExtensionNegotiationError, String(error));
    assert.match(error.message, pattern);
    return true;
  });
}

function assertProtocolError(run: () => unknown, closeCode: number, rule: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, String(error));
    assert.equal(error.closeCode, closeCode);
    assert.equal(error.message, `Protocol error: ${rule}`);
    return true;
  });
}

Deno.test("parseExtensions() reads several offers, parameters with and without values", () => {
  assert.deepEqual(
    parseExtensions(
      ' Permessage-Deflate ;Client_Max_Window_Bits; server_max_window_bits = "10" ,, x-webkit ; a=b\t,permessage-deflate',
    ),
    [
      {
        name: "permessage-deflate",
        params: [["client_max_window_bits", true], ["server_max_window_bits", "10"]],
      },
      { name: "x-webkit", params: [["a", "b"]] },
      { name: "permessage-deflate", params: [] },
    ],
  );
  assert.deepEqual(parseExtensions(""), []);
  assert.deepEqual(parseExtensions(" , "), []);
  assert.deepEqual(parseExtensions('a; b="c\\d"'), [{ name: "a", params: [["b", "cd"]] }]);
});

Deno.test("parseExtensions() rejects what breaks RFC 7230 syntax", async (t) => {
  for (
    const header of [
      "; client_max_window_bits",
      "permessage-deflate; ",
      'permessage-deflate; server_max_window_bits="10',
      'permessage-deflate; server_max_window_bits="1 0"',
      "permessage-deflate; server_max_window_bits=",
      "permessage-deflate client_max_window_bits",
      "permessage-deflate; =10",
      "permessage@deflate",
    ]
  ) {
    await t.step(header, () => {
      assertNegotiationError(
        () => parseExtensions(header),
        /^Cannot parse Sec-WebSocket-Extensions as /,
      );
    });
  }
});

Deno.test("deflateOffer() offers each parameter", () => {
  assert.equal(
    deflateOffer(),
    "permessage-deflate; client_no_context_takeover; client_max_window_bits",
  );
  assert.equal(
    deflateOffer({
      clientNoContextTakeover: false,
      serverNoContextTakeover: true,
      serverMaxWindowBits: 10,
      clientMaxWindowBits: 9,
    }),
    "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9",
  );
  assert.equal(
    deflateOffer({ clientNoContextTakeover: false, clientMaxWindowBits: false }),
    "permessage-deflate",
  );
  for (const bits of [7, 16, 9.5, NaN]) {
    assert.throws(() => deflateOffer({ serverMaxWindowBits: bits }), RangeError);
    assert.throws(() => deflateOffer({ clientMaxWindowBits: bits }), RangeError);
  }
  assert.throws(() => deflateOffer({ serverMaxWindowBits: 16 }), {
    message:
      "Cannot use serverMaxWindowBits as it is not an integer from 8 to 15: current value is 16",
  });
});

Deno.test("acceptDeflateOffer() answers each parameter of an offer", async (t) => {
  const accept = (header: string | null, options = {}) => acceptDeflateOffer(header, options);
  await t.step("no offer, or none for permessage-deflate", () => {
    assert.equal(accept(null), undefined);
    assert.equal(accept("x-foo; bar, x-baz"), undefined);
  });
  await t.step("a bare offer: the server says it keeps no context", () => {
    assert.deepEqual(accept("permessage-deflate"), {
      response: "permessage-deflate; server_no_context_takeover",
      params: {
        serverNoContextTakeover: true,
        clientNoContextTakeover: false,
        serverMaxWindowBits: 15,
        clientMaxWindowBits: 15,
      },
    });
    assert.deepEqual(accept("permessage-deflate", { serverNoContextTakeover: false }), {
      response: "permessage-deflate",
      params: {
        serverNoContextTakeover: false,
        clientNoContextTakeover: false,
        serverMaxWindowBits: 15,
        clientMaxWindowBits: 15,
      },
    });
  });
  await t.step("server_no_context_takeover is always answered when offered", () => {
    const accepted = accept("permessage-deflate; server_no_context_takeover", {
      serverNoContextTakeover: false,
    });
    assert.equal(accepted?.response, "permessage-deflate; server_no_context_takeover");
    assert.equal(accepted?.params.serverNoContextTakeover, true);
  });
  await t.step("client_no_context_takeover: taken from the offer, or demanded", () => {
    const offered = accept("permessage-deflate; client_no_context_takeover");
    assert.equal(offered?.response, "permessage-deflate; server_no_context_takeover");
    assert.equal(offered?.params.clientNoContextTakeover, true);
    const demanded = accept("permessage-deflate", { clientNoContextTakeover: true });
    assert.equal(
      demanded?.response,
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    );
    assert.equal(demanded?.params.clientNoContextTakeover, true);
  });
  await t.step("server_max_window_bits is honoured and answered", () => {
    const accepted = accept("permessage-deflate; server_max_window_bits=10");
    assert.equal(
      accepted?.response,
      "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
    );
    assert.equal(accepted?.params.serverMaxWindowBits, 10);
    assert.equal(
      accept('permessage-deflate; server_max_window_bits="8"')?.params.serverMaxWindowBits,
      8,
    );
  });
  await t.step("client_max_window_bits: the smaller of the offer and our limit", () => {
    const bare = accept("permessage-deflate; client_max_window_bits");
    assert.equal(bare?.response, "permessage-deflate; server_no_context_takeover");
    assert.equal(bare?.params.clientMaxWindowBits, 15);
    const limited = accept("permessage-deflate; client_max_window_bits", {
      clientMaxWindowBits: 12,
    });
    assert.equal(
      limited?.response,
      "permessage-deflate; server_no_context_takeover; client_max_window_bits=12",
    );
    assert.equal(limited?.params.clientMaxWindowBits, 12);
    const valued = accept("permessage-deflate; client_max_window_bits=10", {
      clientMaxWindowBits: 12,
    });
    assert.equal(valued?.params.clientMaxWindowBits, 10);
    assert.match(valued!.response, /client_max_window_bits=10$/);
    // Not offered: the server must not answer it, and inflates with a full window.
    const absent = accept("permessage-deflate", { clientMaxWindowBits: 12 });
    assert.equal(absent?.response, "permessage-deflate; server_no_context_takeover");
    assert.equal(absent?.params.clientMaxWindowBits, 15);
  });
  await t.step("an invalid offer is declined and the next one taken", () => {
    for (
      const invalid of [
        "permessage-deflate; x_unknown",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; client_no_context_takeover=1",
      ]
    ) {
      assert.equal(accept(invalid), undefined, invalid);
      const next = accept(`${invalid}, permessage-deflate; server_max_window_bits=12`);
      assert.equal(next?.params.serverMaxWindowBits, 12, invalid);
    }
  });
  await t.step("a header that breaks the syntax throws (answer HTTP 400)", () => {
    assertNegotiationError(() => accept("permessage-deflate; ="), /^Cannot parse/);
  });
  await t.step("bad options throw RangeError", () => {
    assert.throws(() => accept("permessage-deflate", { clientMaxWindowBits: 7 }), RangeError);
  });
});

Deno.test("checkDeflateResponse() gives the agreed parameters of a valid answer", () => {
  const base: DeflateParams = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: true,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
  };
  assert.equal(checkDeflateResponse(null, {}), undefined, "refused: no header");
  assert.equal(checkDeflateResponse("", {}), undefined, "refused: empty header");
  assert.deepEqual(checkDeflateResponse("permessage-deflate", {}), base);
  assert.deepEqual(
    checkDeflateResponse("permessage-deflate", { clientNoContextTakeover: false }),
    { ...base, clientNoContextTakeover: false },
  );
  assert.deepEqual(
    checkDeflateResponse("permessage-deflate; client_no_context_takeover", {
      clientNoContextTakeover: false,
    }),
    base,
  );
  assert.deepEqual(
    checkDeflateResponse("permessage-deflate; server_no_context_takeover", {}),
    { ...base, serverNoContextTakeover: true },
  );
  assert.deepEqual(
    checkDeflateResponse("permessage-deflate; server_max_window_bits=10", {}),
    { ...base, serverMaxWindowBits: 10 },
  );
  assert.deepEqual(
    checkDeflateResponse("permessage-deflate; server_max_window_bits=9", {
      serverMaxWindowBits: 10,
    }),
    { ...base, serverMaxWindowBits: 9 },
  );
  assert.deepEqual(
    checkDeflateResponse('PERMESSAGE-DEFLATE; Client_Max_Window_Bits="8"', {
      clientMaxWindowBits: 9,
    }),
    { ...base, clientMaxWindowBits: 8 },
  );
  // A client_max_window_bits offered with a value still binds us when not answered.
  assert.deepEqual(
    checkDeflateResponse("permessage-deflate", { clientMaxWindowBits: 11 }),
    { ...base, clientMaxWindowBits: 11 },
  );
});

Deno.test("checkDeflateResponse() fails the connection on an invalid answer", async (t) => {
  const cases: [string, string, Parameters<typeof checkDeflateResponse>[1], RegExp][] = [
    ["an extension never offered", "x-foo", {}, /one was never offered: current value is x-foo$/],
    ["an extra extension", "permessage-deflate, x-foo", {}, /never offered/],
    ["the extension twice", "permessage-deflate, permessage-deflate", {}, /more than once/],
    [
      "an unknown parameter",
      "permessage-deflate; foo",
      {},
      /a parameter is unknown: current value is foo$/,
    ],
    [
      "a duplicate",
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
      {},
      /repeated/,
    ],
    [
      "client_max_window_bits never offered",
      "permessage-deflate; client_max_window_bits=10",
      { clientMaxWindowBits: false },
      /client_max_window_bits was never offered: current value is 10$/,
    ],
    [
      "client_max_window_bits over the offer",
      "permessage-deflate; client_max_window_bits=12",
      { clientMaxWindowBits: 11 },
      /over the 11 offered: current value is 12$/,
    ],
    [
      "client_max_window_bits without a value",
      "permessage-deflate; client_max_window_bits",
      {},
      /client_max_window_bits needs a value/,
    ],
    [
      "client_max_window_bits out of range",
      "permessage-deflate; client_max_window_bits=16",
      {},
      /is not 8 to 15: current value is client_max_window_bits=16$/,
    ],
    [
      "server_max_window_bits out of range",
      "permessage-deflate; server_max_window_bits=7",
      {},
      /is not 8 to 15/,
    ],
    [
      "server_max_window_bits with a leading zero",
      "permessage-deflate; server_max_window_bits=010",
      {},
      /is not 8 to 15/,
    ],
    [
      "server_max_window_bits missing after an offer",
      "permessage-deflate",
      { serverMaxWindowBits: 10 },
      /not within the 10 offered: current value is absent$/,
    ],
    [
      "server_max_window_bits over the offer",
      "permessage-deflate; server_max_window_bits=11",
      { serverMaxWindowBits: 10 },
      /not within the 10 offered: current value is 11$/,
    ],
    [
      "server_no_context_takeover missing after an offer",
      "permessage-deflate",
      { serverNoContextTakeover: true },
      /server_no_context_takeover was offered but not answered/,
    ],
    [
      "server_no_context_takeover with a value",
      "permessage-deflate; server_no_context_takeover=1",
      {},
      /takes no value/,
    ],
    ["bad syntax", "permessage-deflate;", {}, /^Cannot parse/],
  ];
  for (const [name, header, offered, pattern] of cases) {
    await t.step(
      name,
      () => assertNegotiationError(() => checkDeflateResponse(header, offered), pattern),
    );
  }
});

Deno.test("deflateDirections() gives each role the peer's direction to inflate", () => {
  const params: DeflateParams = {
    serverNoContextTakeover: true,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 9,
    clientMaxWindowBits: 12,
  };
  assert.deepEqual(deflateDirections(params, "server"), {
    inflate: { noContextTakeover: false, maxWindowBits: 12 },
    deflate: { noContextTakeover: true, maxWindowBits: 9 },
  });
  assert.deepEqual(deflateDirections(params, "client"), {
    inflate: { noContextTakeover: true, maxWindowBits: 9 },
    deflate: { noContextTakeover: false, maxWindowBits: 12 },
  });
});

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

interface WsDeflate {
  offer(): Record<string, unknown>;
  accept(configurations: Record<string, unknown>[]): Record<string, unknown>;
  compress(
    data: Uint8Array,
    fin: boolean,
    callback: (error: Error | null, result?: Uint8Array) => void,
  ): void;
  decompress(
    data: Uint8Array,
    fin: boolean,
    callback: (error: Error | null, result?: Uint8Array) => void,
  ): void;
  cleanup(): void;
}
type WsOptions = Record<string, unknown>;
// @types/ws does not declare these two exports of ws's wrapper.mjs.
const wsLib = wsModule as unknown as {
  PerMessageDeflate: new (options: WsOptions) => WsDeflate;
  extension: {
    parse(header: string): Record<string, Record<string, unknown[]>[]>;
    format(extensions: Record<string, unknown>): string;
  };
};
const WsPerMessageDeflate = wsLib.PerMessageDeflate;
const wsExtension = wsLib.extension;

const wsCall = (run: (cb: (error: Error | null, result?: Uint8Array) => void) => void) =>
  new Promise<Uint8Array>((resolve, reject) =>
    run((error, result) => error ? reject(error) : resolve(new Uint8Array(result!)))
  );

/** A ws server endpoint that accepted our offer; and our agreed parameters. */
function wsServerFor(offerOptions: Parameters<typeof deflateOffer>[0], wsOptions: WsOptions) {
  const ws = new WsPerMessageDeflate({ ...wsOptions, isServer: true, threshold: 0 });
  const offers = wsExtension.parse(deflateOffer(offerOptions))["permessage-deflate"]!;
  const accepted = ws.accept(offers);
  const response = wsExtension.format({ "permessage-deflate": accepted });
  const params = checkDeflateResponse(response, offerOptions ?? {});
  assert.ok(params, response);
  return { ws, response, ...deflateDirections(params, "client") };
}

Deno.test("interop: ws as server agrees to our offers, and we to its answers", async (t) => {
  const cases: [Parameters<typeof deflateOffer>[0], WsOptions, string][] = [
    [{}, {}, "permessage-deflate; client_no_context_takeover"],
    [{}, { serverNoContextTakeover: true }, "server_no_context_takeover"],
    [{ serverMaxWindowBits: 10 }, {}, "server_max_window_bits=10"],
    [{}, { clientMaxWindowBits: 11 }, "client_max_window_bits=11"],
    [
      { serverNoContextTakeover: true, clientNoContextTakeover: false },
      {},
      "server_no_context_takeover",
    ],
  ];
  for (const [offer, wsOptions, expected] of cases) {
    await t.step(`${JSON.stringify(offer)} against ws ${JSON.stringify(wsOptions)}`, () => {
      const { ws, response } = wsServerFor(offer, wsOptions);
      assert.ok(response.includes(expected), response);
      ws.cleanup();
    });
  }
});

Deno.test("interop: ws as client accepts our answers to its offers", async (t) => {
  const cases: [WsOptions, Parameters<typeof acceptDeflateOffer>[1]][] = [
    [{}, {}],
    [{ clientMaxWindowBits: true }, { clientMaxWindowBits: 10 }],
    [{ serverMaxWindowBits: 9 }, {}],
    [{ serverNoContextTakeover: true, clientNoContextTakeover: true }, {}],
    [{}, { clientNoContextTakeover: true }],
  ];
  for (const [wsOptions, acceptOptions] of cases) {
    await t.step(`ws ${JSON.stringify(wsOptions)}, we ${JSON.stringify(acceptOptions)}`, () => {
      const ws = new WsPerMessageDeflate({ ...wsOptions, isServer: false });
      const offer = wsExtension.format({ "permessage-deflate": [ws.offer()] });
      const accepted = acceptDeflateOffer(offer, acceptOptions);
      assert.ok(accepted, offer);
      const answer = wsExtension.parse(accepted.response)["permessage-deflate"]!;
      ws.accept(answer); // throws on an answer ws finds invalid
      ws.cleanup();
    });
  }
});

Deno.test("interop: we inflate what ws deflates, with and without context takeover", async (t) => {
  const messages = Array.from({ length: 30 }, (_, i) => json([50, 300, 2000, 20_000][i % 4]!, i));
  const cases: [string, WsOptions][] = [
    ["context takeover", {}],
    ["no context takeover", { serverNoContextTakeover: true }],
    ["window bits 9", { serverMaxWindowBits: 9 }],
    ["window bits 12, no context takeover", {
      serverMaxWindowBits: 12,
      serverNoContextTakeover: true,
    }],
  ];
  for (const [name, wsOptions] of cases) {
    await t.step(name, async () => {
      const { ws, inflate } = wsServerFor({}, wsOptions);
      const inflater = new Inflater({ zlib, ...inflate });
      try {
        for (const message of messages) {
          const payload = await wsCall((cb) => ws.compress(message, true, cb));
          assert.deepEqual(inflater.inflate([payload], message.length), message);
        }
        // A message ws deflated in three fragments (fin false, false, true).
        const message = json(9000, 99);
        const pieces = [];
        for (
          const [start, end, fin] of [[0, 3000, false], [3000, 6000, false], [
            6000,
            9000,
            true,
          ]] as const
        ) {
          pieces.push(await wsCall((cb) => ws.compress(message.subarray(start, end), fin, cb)));
        }
        assert.deepEqual(inflater.inflate(pieces, 9000), message);
        assert.equal(
          inflater.retainedBytes,
          inflate.noContextTakeover ? 0 : 1 << inflate.maxWindowBits,
        );
      } finally {
        ws.cleanup();
      }
    });
  }
});

Deno.test("interop: ws inflates what we deflate, with and without its context takeover", async (t) => {
  const messages = Array.from({ length: 30 }, (_, i) => json([50, 300, 2000, 20_000][i % 4]!, i));
  const cases: [string, Parameters<typeof deflateOffer>[0], WsOptions][] = [
    ["ws keeps its window (we offered client_no_context_takeover: false)", {
      clientNoContextTakeover: false,
    }, {}],
    ["ws drops its window", {}, {}],
    ["client window bits 9", {}, { clientMaxWindowBits: 9 }],
    ["client window bits 8: stored blocks", {}, { clientMaxWindowBits: 8 }],
  ];
  for (const [name, offer, wsOptions] of cases) {
    await t.step(name, async () => {
      const { ws, deflate } = wsServerFor(offer, { ...wsOptions, maxPayload: 64 * 1024 });
      const deflater = new Deflater({ zlib, ...deflate });
      try {
        for (const message of messages) {
          const out = await wsCall((cb) => ws.decompress(deflater.deflate(message), true, cb));
          assert.deepEqual(out, message);
        }
      } finally {
        ws.cleanup();
      }
    });
  }
});
