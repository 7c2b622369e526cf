// deno-lint-ignore-file no-import-prefix -- npm:ws is a test-only peer; the library has no dependencies
// permessage-deflate (RFC 7692): negotiation in both roles (the codecs are in
// tests/deflate_codec_test.ts), and interop with Node `ws`'s own
// PerMessageDeflate (test-only, from npm). Needs --allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE: `ws` reads both when it
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
import { Deflater, Inflater } from "../protocol/deflate_codec.ts";
import { json } from "./_protocol_helpers.ts";

function assertNegotiationError(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ExtensionNegotiationError, String(error));
    assert.match(error.message, pattern);
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
