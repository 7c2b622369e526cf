import assert from "node:assert/strict";
import { ProtocolError } from "../util/errors.ts";
import {
  acceptKey,
  buildClientRequest,
  buildResponse,
  checkRequest,
  checkResponse,
  generateKey,
  HandshakeError,
} from "../protocol/handshake.ts";
import {
  buildErrorResponse,
  type HttpHead,
  MAX_HEAD_BYTES,
  parseHttpHead,
} from "../protocol/http.ts";

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function head(text: string): HttpHead {
  return parseHttpHead(encoder.encode(text))!.head;
}

function response(...lines: string[]): HttpHead {
  return head(lines.join("\r\n") + "\r\n\r\n");
}

const SWITCHING = [
  "HTTP/1.1 101 Switching Protocols",
  "Upgrade: websocket",
  "Connection: Upgrade",
  `Sec-WebSocket-Accept: ${ACCEPT}`,
];

function request(...extra: string[]): HttpHead {
  const lines = [
    "GET /chat?room=1 HTTP/1.1",
    "Host: example.com",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${KEY}`,
    "Sec-WebSocket-Version: 13",
  ];
  for (const line of extra) {
    const name = line.slice(0, line.indexOf(":") + 1).toLowerCase();
    const at = lines.findIndex((l) => l.toLowerCase().startsWith(name));
    if (at === -1) lines.push(line);
    else if (line.endsWith(":")) lines.splice(at, 1); // "Name:" removes the header
    else lines[at] = line;
  }
  return head(lines.join("\r\n") + "\r\n\r\n");
}

/** The error `fn` throws; fails the test when it throws none. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.fail("Missing expected exception");
}

function handshakeError(kind: string, status: number | undefined, message: string) {
  return (error: unknown) =>
    error instanceof HandshakeError && error.kind === kind && error.status === status &&
    error.message === message;
}

Deno.test("acceptKey() computes the RFC 6455 section 1.3 sample", async () => {
  assert.equal(await acceptKey(KEY), ACCEPT);
});

Deno.test("generateKey() makes 16 fresh random bytes in base64", () => {
  const key = generateKey();
  assert.equal(atob(key).length, 16);
  assert.notEqual(generateKey(), key);
});

Deno.test("buildClientRequest() writes the request line, Host and handshake headers", () => {
  const bytes = buildClientRequest({ url: new URL("ws://example.com/chat?room=1#x"), key: KEY });
  assert.equal(
    decoder.decode(bytes),
    "GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n" +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const hostOf = (url: string) =>
    head(decoder.decode(buildClientRequest({ url: new URL(url), key: KEY }))).headers.get("host");
  assert.equal(hostOf("ws://example.com:80/"), "example.com");
  assert.equal(hostOf("wss://example.com:443/"), "example.com");
  assert.equal(hostOf("ws://example.com:8080/"), "example.com:8080");
  assert.equal(hostOf("wss://[::1]:9443/"), "[::1]:9443");
  const root = buildClientRequest({ url: new URL("ws://example.com"), key: KEY });
  assert.ok(decoder.decode(root).startsWith("GET / HTTP/1.1\r\n"));
});

Deno.test("buildClientRequest() offers subprotocols and appends extra headers", () => {
  const bytes = buildClientRequest({
    url: new URL("wss://example.com/"),
    key: KEY,
    protocols: ["chat", "superchat"],
    headers: { "User-Agent": "wsbeat", Authorization: "Bearer abc" },
  });
  assert.ok(
    decoder.decode(bytes).endsWith(
      "Sec-WebSocket-Protocol: chat, superchat\r\nUser-Agent: wsbeat\r\n" +
        "Authorization: Bearer abc\r\n\r\n",
    ),
  );
  const fromHeaders = buildClientRequest({
    url: new URL("ws://a/"),
    key: KEY,
    headers: new Headers([["X-One", "1"]]),
  });
  assert.ok(decoder.decode(fromHeaders).endsWith("x-one: 1\r\n\r\n"));
  const fromPairs = buildClientRequest({
    url: new URL("ws://a/"),
    key: KEY,
    headers: [["X-Two", "2"]],
  });
  assert.ok(decoder.decode(fromPairs).endsWith("X-Two: 2\r\n\r\n"));
});

Deno.test("buildClientRequest() refuses extra headers that would override the handshake", () => {
  const url = new URL("ws://example.com/");
  for (
    const name of [
      "Host",
      "Upgrade",
      "connection",
      "Sec-WebSocket-Key",
      "SEC-WEBSOCKET-VERSION",
      "Sec-WebSocket-Protocol",
      "Sec-WebSocket-Extensions",
    ]
  ) {
    assert.throws(() => buildClientRequest({ url, key: KEY, headers: { [name]: "x" } }), {
      name: "TypeError",
      message: `Cannot set the header "${name}" as the WebSocket handshake sets it itself`,
    });
  }
});

Deno.test("buildClientRequest() refuses CR, LF, NUL and control characters, hiding every value", () => {
  const url = new URL("ws://example.com/");
  const names = ["Authorization", "Cookie", "X-Api-Token", "X-Api-Key", "Client-Secret", "X-Trace"];
  const values: [string, string][] = [
    ["top\r\nsecret", "a carriage return (CR) at position 4"],
    ["top\nsecret", "a line feed (LF) at position 4"],
    ["top\0secret", "a NUL at position 4"],
    ["top\x1bsecret", "a control character (U+001B) at position 4"],
  ];
  for (const name of names) {
    for (const [value, what] of values) {
      const error = thrown(() => buildClientRequest({ url, key: KEY, headers: [[name, value]] }));
      assert.ok(error instanceof TypeError);
      assert.equal(
        error.message,
        `Cannot send the header "${name}" as its value contains ${what}: current value is hidden`,
      );
      assert.ok(!error.message.includes("secret"));
    }
  }
  // A tab is allowed inside a value.
  buildClientRequest({ url, key: KEY, headers: { "X-Trace": "a\tb" } });
  assert.throws(() => buildClientRequest({ url, key: KEY, headers: { "Bad Name": "x" } }), {
    name: "TypeError",
    message: 'Cannot send the header as its name is not a token: current value is "Bad Name"',
  });
  assert.throws(
    () => buildClientRequest({ url, key: KEY, headers: { "Authorization: Bearer secret": "" } }),
    {
      name: "TypeError",
      message:
        'Cannot send the header as its name is not a token: current value is "Authorization: ***"',
    },
  );
});

Deno.test("buildClientRequest() refuses subprotocols that are not tokens or are repeated", () => {
  const url = new URL("ws://example.com/");
  assert.throws(() => buildClientRequest({ url, key: KEY, protocols: ["a b"] }), {
    name: "TypeError",
    message: 'Cannot use the subprotocol as it is not a token: current value is "a b"',
  });
  assert.throws(() => buildClientRequest({ url, key: KEY, protocols: ["a", "a"] }), TypeError);
});

Deno.test("parseHttpHead() waits for the empty line, then parses the head", () => {
  const text =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-A: 1\r\nx-a:  2 \r\n\r\n";
  const bytes = encoder.encode(text + "\x81\x00");
  for (let end = 0; end < text.length; end++) {
    assert.equal(parseHttpHead(bytes.subarray(0, end)), undefined, `${end} bytes`);
  }
  const parsed = parseHttpHead(bytes)!;
  assert.equal(parsed.length, text.length);
  assert.equal(parsed.head.startLine, "HTTP/1.1 101 Switching Protocols");
  assert.equal(parsed.head.headers.get("upgrade"), "websocket");
  assert.equal(parsed.head.headers.get("x-a"), "1, 2");
});

Deno.test("parseHttpHead() throws ProtocolError past MAX_HEAD_BYTES without an end", () => {
  const filler = "X-Filler: " + "a".repeat(100) + "\r\n";
  const long = encoder.encode("GET / HTTP/1.1\r\n" + filler.repeat(200));
  assert.ok(long.length > MAX_HEAD_BYTES);
  assert.throws(
    () => parseHttpHead(long),
    (error: unknown) =>
      error instanceof ProtocolError && error.closeCode === 1002 &&
      error.message === "Protocol error: HTTP head larger than 16384 bytes",
  );
  assert.equal(parseHttpHead(long.subarray(0, MAX_HEAD_BYTES - 1)), undefined);
  const exact = new Uint8Array(MAX_HEAD_BYTES).fill(0x61);
  exact.set(encoder.encode("GET / HTTP/1.1\r\nX: "));
  exact.set(encoder.encode("\r\n\r\n"), MAX_HEAD_BYTES - 4);
  assert.equal(parseHttpHead(exact)?.length, MAX_HEAD_BYTES);
  assert.throws(
    () => parseHttpHead(encoder.encode("GET / HTTP/1.1\r\nHost: a"), 10),
    ProtocolError,
  );
});

Deno.test("parseHttpHead() rejects malformed header lines", () => {
  for (const line of ["no colon here", ": empty name", "Bad Name: x", " folded: x"]) {
    assert.throws(
      () => parseHttpHead(encoder.encode(`GET / HTTP/1.1\r\n${line}\r\n\r\n`)),
      (error: unknown) =>
        error instanceof ProtocolError &&
        error.message === "Protocol error: malformed HTTP header line 1",
    );
  }
});

Deno.test("checkResponse() accepts a valid 101 and returns the subprotocol", () => {
  assert.deepEqual(checkResponse(response(...SWITCHING), { accept: ACCEPT, protocols: [] }), {
    status: 101,
    protocol: "",
    extensions: "",
  });
  const chosen = response(...SWITCHING, "Sec-WebSocket-Protocol: superchat");
  assert.equal(
    checkResponse(chosen, { accept: ACCEPT, protocols: ["chat", "superchat"] }).protocol,
    "superchat",
  );
});

Deno.test("checkResponse() reads Connection and Upgrade case-insensitively as token lists", () => {
  for (const connection of ["keep-alive, Upgrade", "UPGRADE", "upgrade,keep-alive"]) {
    const lines = [SWITCHING[0]!, "Upgrade: WebSocket", `Connection: ${connection}`, SWITCHING[3]!];
    assert.equal(checkResponse(response(...lines), { accept: ACCEPT, protocols: [] }).status, 101);
  }
});

Deno.test("checkResponse() throws kind status for another status than 101", () => {
  assert.throws(
    () => checkResponse(response("HTTP/1.1 403 Forbidden"), { accept: ACCEPT, protocols: [] }),
    handshakeError(
      "status",
      403,
      "the server answered HTTP 403 Forbidden instead of switching protocols",
    ),
  );
  assert.throws(
    () => checkResponse(response("HTTP/1.1 200"), { accept: ACCEPT, protocols: [] }),
    handshakeError("status", 200, "the server answered HTTP 200 instead of switching protocols"),
  );
  assert.throws(
    () => checkResponse(response("HTTP/1.0 101 Switching"), { accept: ACCEPT, protocols: [] }),
    handshakeError(
      "handshake",
      undefined,
      'the server answered with a malformed status line "HTTP/1.0 101 Switching"',
    ),
  );
});

Deno.test("checkResponse() throws kind handshake for a response that breaks RFC 6455", () => {
  const [status, upgrade, connection, accept] = SWITCHING as [string, string, string, string];
  const cases: [string[], string[], string][] = [
    [[status, connection, accept], [], "the response has no Upgrade header"],
    [
      [status, "Upgrade: h2c", connection, accept],
      [],
      'the response\'s Upgrade header is "h2c", not "websocket"',
    ],
    [[status, upgrade, accept], [], "the response has no Connection header"],
    [
      [status, upgrade, "Connection: keep-alive", accept],
      [],
      'the response\'s Connection header is "keep-alive", without "upgrade"',
    ],
    [[status, upgrade, connection], [], "the response has no Sec-WebSocket-Accept header"],
    [
      [status, upgrade, connection, "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA="],
      [],
      `the response's Sec-WebSocket-Accept header is "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", expected "${ACCEPT}"`,
    ],
    [
      [...SWITCHING, "Sec-WebSocket-Protocol: chat"],
      [],
      'the response\'s Sec-WebSocket-Protocol header is "chat", but the client offered none',
    ],
    [
      [...SWITCHING, "Sec-WebSocket-Protocol: other"],
      ["chat", "v2"],
      'the response\'s Sec-WebSocket-Protocol header is "other", but the client offered "chat, v2"',
    ],
    [
      [...SWITCHING, "Sec-WebSocket-Protocol: chat, v2"],
      ["chat", "v2"],
      'the response\'s Sec-WebSocket-Protocol header is "chat, v2", but the client offered "chat, v2"',
    ],
    [
      [...SWITCHING, "Sec-WebSocket-Extensions: permessage-deflate"],
      [],
      'the response\'s Sec-WebSocket-Extensions header is "permessage-deflate", but the client offered none',
    ],
  ];
  for (const [lines, protocols, message] of cases) {
    assert.throws(
      () => checkResponse(response(...lines), { accept: ACCEPT, protocols }),
      handshakeError("handshake", 101, message),
    );
  }
});

Deno.test("checkRequest() accepts a valid upgrade request", () => {
  const result = checkRequest(request("Sec-WebSocket-Protocol: chat, , superchat"));
  assert.equal(result.path, "/chat?room=1");
  assert.equal(result.key, KEY);
  assert.deepEqual(result.protocols, ["chat", "superchat"]);
  assert.equal(result.headers.get("host"), "example.com");
});

Deno.test("checkRequest() answers 400 or 426 with the reason", () => {
  const cases: [HttpHead, number, string, Record<string, string>][] = [
    [request("Sec-WebSocket-Key:"), 400, "the request has no Sec-WebSocket-Key header", {}],
    [
      request(`Sec-WebSocket-Key: ${btoa("fifteen bytes!!")}`),
      400,
      `the request's Sec-WebSocket-Key header is "${
        btoa("fifteen bytes!!")
      }", not 16 bytes in base64`,
      {},
    ],
    [
      request("Sec-WebSocket-Version: 8"),
      426,
      'the request\'s Sec-WebSocket-Version header is "8", not 13',
      { "Sec-WebSocket-Version": "13" },
    ],
    [request("Sec-WebSocket-Version:"), 426, "the request has no Sec-WebSocket-Version header", {
      "Sec-WebSocket-Version": "13",
    }],
    [request("Upgrade:"), 426, "the request has no Upgrade header", { Upgrade: "websocket" }],
    [
      request("Connection: keep-alive"),
      400,
      'the request\'s Connection header is "keep-alive", without "upgrade"',
      {},
    ],
    [request("Host:"), 400, "the request has no Host header", {}],
    [head(`POST / HTTP/1.1\r\nHost: a\r\n\r\n`), 400, "the request method is POST, not GET", {}],
    [
      head(`GET / HTTP/1.0\r\nHost: a\r\n\r\n`),
      400,
      "the request version is HTTP/1.0, not HTTP/1.1",
      {},
    ],
    [head(`GET /\r\n\r\n`), 400, 'the request line "GET /" is malformed', {}],
  ];
  for (const [bad, status, message, responseHeaders] of cases) {
    const error = thrown(() => checkRequest(bad));
    assert.ok(error instanceof HandshakeError, message);
    assert.equal(error.message, message);
    assert.equal(error.status, status);
    assert.deepEqual(error.responseHeaders, responseHeaders);
  }
});

Deno.test("buildResponse() writes the 101 answer a client accepts", async () => {
  const offered = checkRequest(request("Sec-WebSocket-Protocol: chat"));
  const bytes = buildResponse({ accept: await acceptKey(offered.key), protocol: "chat" });
  assert.equal(
    decoder.decode(bytes),
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n\r\n`,
  );
  const answer = parseHttpHead(bytes)!.head;
  assert.equal(checkResponse(answer, { accept: ACCEPT, protocols: ["chat"] }).protocol, "chat");
  assert.throws(() => buildResponse({ accept: ACCEPT, protocol: "a b" }), TypeError);
});

Deno.test("buildErrorResponse() writes a complete response that closes the connection", () => {
  const bytes = buildErrorResponse(426, "Upgrade required ✓", { "Sec-WebSocket-Version": "13" });
  assert.equal(
    decoder.decode(bytes),
    "HTTP/1.1 426 Upgrade Required\r\nConnection: close\r\n" +
      "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 20\r\n" +
      "Sec-WebSocket-Version: 13\r\n\r\nUpgrade required ✓",
  );
  assert.ok(decoder.decode(buildErrorResponse(418, "")).startsWith("HTTP/1.1 418 Error\r\n"));
  assert.throws(() => buildErrorResponse(99, ""), {
    name: "RangeError",
    message: "Cannot send the HTTP status as it is not 100 to 599: current value is 99",
  });
  assert.throws(() => buildErrorResponse(400, "", { "X-A": "a\nb" }), TypeError);
});
