/**
 * The protocol layer (sans-I/O): the RFC 6455 opening handshake as bytes and
 * checks, for both roles. A client builds its request with
 * {@linkcode buildClientRequest} and checks the answer with
 * {@linkcode checkResponse}; a server checks a request with
 * {@linkcode checkRequest} and answers with {@linkcode buildResponse} or
 * `buildErrorResponse` (in `protocol/http.ts`, with `parseHttpHead`, which finds and
 * parses an HTTP head in received bytes). {@linkcode acceptKey} computes
 * `Sec-WebSocket-Accept`.
 *
 * No sockets, no timers, no `Deno.*`: only Web Crypto, `TextEncoder`, `btoa`,
 * `atob` and `Headers`, so it runs on Deno, Node 22+, Bun and browsers. The
 * transports (`transport/`) do the reading and writing.
 *
 * @example A full handshake, both sides, in memory
 * ```ts
 * import {
 *   acceptKey, buildClientRequest, buildResponse, checkRequest, checkResponse, generateKey,
 * } from "./handshake.ts";
 * import { parseHttpHead } from "./http.ts";
 * import assert from "node:assert/strict";
 *
 * const key = generateKey();
 * const request = buildClientRequest({ url: new URL("ws://example.com/chat"), key });
 * const offered = checkRequest(parseHttpHead(request)!.head);
 * const response = buildResponse({ accept: await acceptKey(offered.key) });
 * const answer = parseHttpHead(response)!.head;
 * const result = checkResponse(answer, { accept: await acceptKey(key), protocols: [] });
 * assert.equal(result.status, 101);
 * ```
 *
 * @module
 */

import { checkHeaderField, type HttpHead } from "./http.ts";
import {
  checkDeflateResponse,
  type DeflateOfferOptions,
  type DeflateParams,
  ExtensionNegotiationError,
} from "./permessage_deflate.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const encoder = new TextEncoder();
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HANDSHAKE_HEADER =
  /^(host|upgrade|connection|sec-websocket-(key|version|protocol|extensions))$/i;
const q = JSON.stringify;

/**
 * Why the opening handshake failed. `kind` is `"status"` when a server
 * answered with another status than 101 (`status` holds it) and
 * `"handshake"` when a response or request broke RFC 6455. On the server
 * side, `status` is the HTTP status to answer with (400 or 426) and
 * `responseHeaders` the headers that answer must carry.
 *
 * @example
 * ```ts
 * import { HandshakeError } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new HandshakeError("status", "the server answered HTTP 404", { status: 404 });
 * assert.equal(error.status, 404);
 * assert.equal(error.message, "the server answered HTTP 404");
 * ```
 */
export class HandshakeError extends Error {
  /** `"status"` for a non-101 answer, `"handshake"` for a broken rule. */
  readonly kind: "status" | "handshake";
  /** The HTTP status received (client side) or to send (server side). */
  readonly status: number | undefined;
  /** Headers the server's error response must carry, e.g. `Sec-WebSocket-Version: 13`. */
  readonly responseHeaders: Record<string, string>;

  /**
   * Constructs a new instance.
   *
   * @param kind `"status"` or `"handshake"`.
   * @param message What was wrong, naming the value (lower case: it is the
   * detail of a `ConnectError`).
   * @param options `status`, `responseHeaders`, and `cause`.
   */
  constructor(
    kind: "status" | "handshake",
    message: string,
    options: ErrorOptions & { status?: number; responseHeaders?: Record<string, string> } = {},
  ) {
    super(message, options);
    this.name = "HandshakeError";
    this.kind = kind;
    this.status = options.status;
    this.responseHeaders = options.responseHeaders ?? {};
  }
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]!);
  return btoa(binary);
}

/**
 * Makes a fresh `Sec-WebSocket-Key`: 16 random bytes in base64.
 *
 * @returns The key, 24 characters.
 *
 * @example
 * ```ts
 * import { generateKey } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(generateKey(), /^[A-Za-z0-9+/]{22}==$/);
 * ```
 */
export function generateKey(): string {
  return base64(crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * Computes the `Sec-WebSocket-Accept` value for a key: the base64 of the
 * SHA-1 of the key and the RFC 6455 GUID.
 *
 * @param key The `Sec-WebSocket-Key` value.
 * @returns The accept value.
 *
 * @example The sample of RFC 6455 section 1.3
 * ```ts
 * import { acceptKey } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
 * ```
 */
export async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID));
  return base64(new Uint8Array(digest));
}

/**
 * The name-value pairs of headers given as a `Headers`, a record or pairs.
 *
 * @param init The headers.
 * @returns The pairs, in order.
 * @throws {TypeError} When an item of a list is not a pair (its items are
 *   not shown: one may be a credential).
 */
export function headerPairs(init: HeadersInit | undefined): [string, string][] {
  if (init === undefined) return [];
  if (init instanceof Headers) return [...init];
  if (Array.isArray(init)) {
    return init.map((pair, i) => {
      if (pair.length === 2) return [String(pair[0]), String(pair[1])];
      throw new TypeError(
        `Cannot send header ${
          i + 1
        } of the list as it is not a [name, value] pair: current value has ${pair.length} items`,
      );
    });
  }
  return Object.entries(init).map(([name, value]) => [name, String(value)]);
}

function checkProtocols(protocols: string[]): void {
  for (const protocol of protocols) {
    if (!TOKEN.test(protocol)) {
      throw new TypeError(
        `Cannot use the subprotocol as it is not a token: current value is ${q(protocol)}`,
      );
    }
  }
  if (new Set(protocols).size !== protocols.length) {
    throw new TypeError(
      `Cannot offer the subprotocols as one is repeated: current value is ${q(protocols)}`,
    );
  }
}

/**
 * Builds a client's opening handshake request: `GET <path+query> HTTP/1.1`,
 * `Host` (with the port when it is not the scheme's default), `Upgrade`,
 * `Connection`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13`,
 * `Sec-WebSocket-Protocol` when `protocols` is not empty, `Origin` when
 * `origin` is given, `User-Agent` when `userAgent` is given and `headers`
 * has none, then the extra `headers`.
 *
 * @param options The URL, the key from {@linkcode generateKey}, the
 * subprotocols to offer and extra headers (a `Headers`, a record or pairs).
 * @returns The request head as bytes.
 * @throws {TypeError} When an extra header would set one of the handshake's
 * own headers (or `Sec-WebSocket-Extensions`: none is supported), when a
 * header name is not a token or a value has CR, LF, NUL or another control
 * character (the message names the header, never its value), or when a
 * subprotocol is not a token or is repeated.
 *
 * @example
 * ```ts
 * import { buildClientRequest } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const request = buildClientRequest({
 *   url: new URL("ws://example.com:8080/chat?room=1"),
 *   key: "dGhlIHNhbXBsZSBub25jZQ==",
 *   protocols: ["chat"],
 * });
 * const text = new TextDecoder().decode(request);
 * assert.ok(text.startsWith("GET /chat?room=1 HTTP/1.1\r\nHost: example.com:8080\r\n"));
 * assert.ok(text.endsWith("Sec-WebSocket-Protocol: chat\r\n\r\n"));
 * ```
 */
export function buildClientRequest(options: {
  url: URL;
  key: string;
  protocols?: string[];
  headers?: HeadersInit;
  /** An `Origin` header to send (before `headers`, which may not set another). */
  origin?: string;
  /** A `User-Agent` to send unless `headers` has one. */
  userAgent?: string;
  /** A `Sec-WebSocket-Extensions` offer (`protocol/deflate_extension.ts`'s `compressionOffer`). */
  extensions?: string;
}): Uint8Array {
  const { url, key, protocols = [] } = options;
  checkProtocols(protocols);
  checkHeaderField("Sec-WebSocket-Key", key);
  const lines = [
    `GET ${url.pathname || "/"}${url.search} HTTP/1.1`,
    `Host: ${url.host}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${key}`,
    "Sec-WebSocket-Version: 13",
  ];
  if (protocols.length > 0) lines.push(`Sec-WebSocket-Protocol: ${protocols.join(", ")}`);
  if (options.extensions) lines.push(`Sec-WebSocket-Extensions: ${options.extensions}`);
  const pairs = headerPairs(options.headers);
  if (options.origin !== undefined) {
    if (pairs.some(([name]) => name.toLowerCase() === "origin")) {
      throw new TypeError('Cannot set the header "Origin" in headers as the origin option sets it');
    }
    checkHeaderField("Origin", options.origin);
    lines.push(`Origin: ${options.origin}`);
  }
  if (
    options.userAgent !== undefined &&
    !pairs.some(([name]) => name.toLowerCase() === "user-agent")
  ) {
    lines.push(`User-Agent: ${options.userAgent}`);
  }
  for (const [name, value] of pairs) {
    if (HANDSHAKE_HEADER.test(name)) {
      throw new TypeError(
        `Cannot set the header "${name}" as the WebSocket handshake sets it itself`,
      );
    }
    checkHeaderField(name, value);
    lines.push(`${name}: ${value.trim()}`);
  }
  return encoder.encode(lines.join("\r\n") + "\r\n\r\n");
}

function hasToken(value: string | null, token: string): boolean {
  if (value === null) return false;
  return value.split(",").some((item) => item.trim().toLowerCase() === token);
}

/** Says what is wrong with a header of the request or response. */
function headerProblem(who: string, name: string, value: string | null, want: string): string {
  if (value === null) return `the ${who} has no ${name} header`;
  return `the ${who}'s ${name} header is ${q(value)}, ${want}`;
}

function fail(message: string, status?: number): never {
  throw new HandshakeError("handshake", message, { status });
}

/**
 * Checks a server's answer to the opening handshake (client side).
 *
 * @param head The response head, from `parseHttpHead`.
 * @param expected The accept value ({@linkcode acceptKey} of the key sent)
 * and the subprotocols offered.
 * @returns The status (101), the subprotocol chosen ("" for none), the
 * extensions answered ("" for none) and, when `expected.deflate` was offered
 * and accepted, the agreed permessage-deflate parameters.
 * @throws {HandshakeError} Kind `"status"` when the status is not 101; kind
 * `"handshake"` for a malformed status line, `Upgrade` not `websocket`,
 * `Connection` without the `upgrade` token, a missing or wrong
 * `Sec-WebSocket-Accept`, a subprotocol not offered (or several), or a
 * `Sec-WebSocket-Extensions` without an offer or that breaks RFC 7692 (the
 * message names the parameter).
 *
 * @example A 403 instead of 101
 * ```ts
 * import { checkResponse, HandshakeError } from "./handshake.ts";
 * import { parseHttpHead } from "./http.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
 * const { head } = parseHttpHead(bytes)!;
 * assert.throws(() => checkResponse(head, { accept: "", protocols: [] }), {
 *   name: "HandshakeError",
 *   message: "the server answered HTTP 403 Forbidden instead of switching protocols",
 * });
 * ```
 */
export function checkResponse(
  head: HttpHead,
  expected: { accept: string; protocols: string[]; deflate?: DeflateOfferOptions | undefined },
): { status: number; protocol: string; extensions: string; deflate?: DeflateParams } {
  const match = /^HTTP\/1\.1 (\d{3})(?: (.*))?$/.exec(head.startLine);
  if (match === null) {
    fail(`the server answered with a malformed status line ${q(head.startLine)}`);
  }
  const status = Number(match[1]);
  if (status !== 101) {
    const phrase = match[2] ? ` ${match[2]}` : "";
    throw new HandshakeError(
      "status",
      `the server answered HTTP ${status}${phrase} instead of switching protocols`,
      { status },
    );
  }
  const { headers } = head;
  const upgrade = headers.get("upgrade");
  if (upgrade?.toLowerCase() !== "websocket") {
    fail(headerProblem("response", "Upgrade", upgrade, 'not "websocket"'), status);
  }
  const connection = headers.get("connection");
  if (!hasToken(connection, "upgrade")) {
    fail(headerProblem("response", "Connection", connection, 'without "upgrade"'), status);
  }
  const accept = headers.get("sec-websocket-accept");
  if (accept !== expected.accept) {
    const want = `expected ${q(expected.accept)}`;
    fail(headerProblem("response", "Sec-WebSocket-Accept", accept, want), status);
  }
  const offered = expected.protocols.length > 0 ? q(expected.protocols.join(", ")) : "none";
  const protocol = headers.get("sec-websocket-protocol");
  if (protocol !== null && !expected.protocols.includes(protocol)) {
    const want = `but the client offered ${offered}`;
    fail(headerProblem("response", "Sec-WebSocket-Protocol", protocol, want), status);
  }
  const extensions = headers.get("sec-websocket-extensions");
  if (extensions !== null && expected.deflate === undefined) {
    const want = "but the client offered none";
    fail(headerProblem("response", "Sec-WebSocket-Extensions", extensions, want), status);
  }
  let deflate: DeflateParams | undefined;
  try {
    deflate = checkDeflateResponse(extensions, expected.deflate ?? {});
  } catch (error) {
    if (!(error instanceof ExtensionNegotiationError)) throw error;
    throw new HandshakeError("handshake", lowerFirst(error.message), { status, cause: error });
  }
  return deflate === undefined
    ? { status, protocol: protocol ?? "", extensions: "" }
    : { status, protocol: protocol ?? "", extensions: extensions!, deflate };
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function reject(status: number, message: string, responseHeaders?: Record<string, string>): never {
  throw new HandshakeError("handshake", message, { status, responseHeaders });
}

/**
 * Checks a client's opening handshake request (server side).
 *
 * @param head The request head, from `parseHttpHead`.
 * @returns The request target (path and query), the key, the subprotocols
 * offered (in order) and all headers.
 * @throws {HandshakeError} With `status` 400 for a malformed request line, a
 * method other than GET, a version other than HTTP/1.1, a target not starting
 * with "/", no `Host`, `Connection` without the `upgrade` token, a
 * `Sec-WebSocket-Key` missing or not the base64 of 16 bytes, or a subprotocol
 * that is not a token; with `status` 426 for a missing or other `Upgrade`
 * (`responseHeaders` then has `Upgrade: websocket`) or a
 * `Sec-WebSocket-Version` other than 13 (`responseHeaders` then has
 * `Sec-WebSocket-Version: 13`).
 *
 * @example
 * ```ts
 * import { checkRequest } from "./handshake.ts";
 * import { parseHttpHead } from "./http.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode(
 *   "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
 *     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
 * );
 * const request = checkRequest(parseHttpHead(bytes)!.head);
 * assert.equal(request.path, "/chat");
 * assert.deepEqual(request.protocols, []);
 * ```
 */
export function checkRequest(
  head: HttpHead,
): { path: string; key: string; protocols: string[]; headers: Headers } {
  const match = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) (HTTP\/\d\.\d)$/.exec(head.startLine);
  if (match === null) {
    reject(400, `the request line ${q(head.startLine)} is malformed`);
  }
  const method = match[1]!, path = match[2]!, version = match[3]!;
  if (method !== "GET") reject(400, `the request method is ${method}, not GET`);
  if (version !== "HTTP/1.1") reject(400, `the request version is ${version}, not HTTP/1.1`);
  if (!path.startsWith("/")) reject(400, `the request target ${q(path)} is not a path`);
  const { headers } = head;
  if (!headers.has("host")) reject(400, "the request has no Host header");
  const upgrade = headers.get("upgrade");
  if (upgrade?.toLowerCase() !== "websocket") {
    const problem = headerProblem("request", "Upgrade", upgrade, 'not "websocket"');
    reject(426, problem, { Upgrade: "websocket" });
  }
  const connection = headers.get("connection");
  if (!hasToken(connection, "upgrade")) {
    reject(400, headerProblem("request", "Connection", connection, 'without "upgrade"'));
  }
  const key = headers.get("sec-websocket-key");
  if (key === null || !/^[A-Za-z0-9+/]{22}==$/.test(key) || atob(key).length !== 16) {
    reject(400, headerProblem("request", "Sec-WebSocket-Key", key, "not 16 bytes in base64"));
  }
  const version13 = headers.get("sec-websocket-version");
  if (version13 !== "13") {
    const problem = headerProblem("request", "Sec-WebSocket-Version", version13, "not 13");
    reject(426, problem, { "Sec-WebSocket-Version": "13" });
  }
  const offered = headers.get("sec-websocket-protocol");
  const protocols = offered === null
    ? []
    : offered.split(",").map((item) => item.trim()).filter((item) => item !== "");
  for (const protocol of protocols) {
    if (!TOKEN.test(protocol)) {
      reject(400, `the request offers the subprotocol ${q(protocol)}, not a token`);
    }
  }
  return { path, key, protocols, headers };
}

/**
 * Builds a server's `101 Switching Protocols` answer.
 *
 * @param options The accept value ({@linkcode acceptKey} of the client's
 * key), the subprotocol chosen, if any, and the extensions accepted, if any
 * (`acceptDeflateOffer`'s `response`).
 * @returns The response head as bytes.
 * @throws {TypeError} When the subprotocol is not a token or the accept value
 * has CR, LF or NUL.
 *
 * @example
 * ```ts
 * import { buildResponse } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = buildResponse({ accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", protocol: "chat" });
 * assert.equal(
 *   new TextDecoder().decode(bytes),
 *   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
 *     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
 * );
 * ```
 */
export function buildResponse(
  options: { accept: string; protocol?: string; extensions?: string },
): Uint8Array {
  checkHeaderField("Sec-WebSocket-Accept", options.accept);
  const lines = [
    "HTTP/1.1 101 Switching Protocols",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Accept: ${options.accept}`,
  ];
  if (options.protocol !== undefined) {
    checkProtocols([options.protocol]);
    lines.push(`Sec-WebSocket-Protocol: ${options.protocol}`);
  }
  if (options.extensions) lines.push(`Sec-WebSocket-Extensions: ${options.extensions}`);
  return encoder.encode(lines.join("\r\n") + "\r\n\r\n");
}
