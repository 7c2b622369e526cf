/**
 * The protocol layer (sans-I/O): the HTTP/1.1 around the opening handshake,
 * for both roles: finding and parsing an HTTP head in received bytes, with a
 * size cap ({@linkcode parseHttpHead}), and a small complete error response
 * for a server that refuses an upgrade ({@linkcode buildErrorResponse}).
 * `protocol/handshake.ts` holds the WebSocket rules on top of it.
 *
 * @module
 */

import { ProtocolError } from "../util/errors.ts";
import { CloseCode } from "./close_code.ts";

const encoder = new TextEncoder();
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const q = JSON.stringify;

/** A header name as an error shows it: whatever follows a colon (a value typed into the name) masked. */
function shownName(name: string): string {
  const colon = name.indexOf(":");
  return q(colon === -1 ? name : `${name.slice(0, colon)}: ***`);
}

/** Names the first character of `value` a header cannot carry, or returns undefined. */
function badCharacter(value: string, latin1: boolean): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const at = ` at position ${i + 1}`;
    if (c === 13) return `a carriage return (CR)${at}`;
    if (c === 10) return `a line feed (LF)${at}`;
    if (c === 0) return `a NUL${at}`;
    if ((c < 32 && c !== 9) || c === 127) {
      return `a control character (U+${c.toString(16).padStart(4, "0").toUpperCase()})${at}`;
    }
    if (latin1 && c > 255) {
      return `a character beyond Latin-1${at}, which the runtime's WebSocket cannot send (percent-encode it)`;
    }
  }
  return undefined;
}

/**
 * Checks a header to be sent: a token name; a value of one line, with no
 * control character but tab (and, with `latin1`, no character beyond
 * U+00FF, which the runtime's `WebSocket` refuses).
 *
 * @param name The header name.
 * @param value The header value.
 * @param options `latin1`: also refuse characters beyond Latin-1.
 * @throws {TypeError} Naming the header and the character at fault. A value
 *   is never shown (it may be a credential), nor what follows a colon in a
 *   name (`"Authorization: Bearer x"` given as a name).
 *
 * @example
 * ```ts
 * import { checkHeaderField } from "./http.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => checkHeaderField("Authorization", "Bearer x\r\ny"), {
 *   message:
 *     'Cannot send the header "Authorization" as its value contains a carriage return (CR) at position 9: current value is hidden',
 * });
 * ```
 */
export function checkHeaderField(
  name: string,
  value: string,
  options: { latin1?: boolean } = {},
): void {
  if (!TOKEN.test(name)) {
    throw new TypeError(
      `Cannot send the header as its name is not a token: current value is ${shownName(name)}`,
    );
  }
  const bad = badCharacter(value, options.latin1 ?? false);
  if (bad !== undefined) {
    throw new TypeError(
      `Cannot send the header "${name}" as its value contains ${bad}: current value is hidden`,
    );
  }
}

/** Largest HTTP head (start line and headers) either role accepts: 16 KiB. */
export const MAX_HEAD_BYTES = 16 * 1024;

/**
 * A parsed HTTP head: its first line and its header fields.
 *
 * @example
 * ```ts
 * import type { HttpHead } from "./http.ts";
 *
 * const head: HttpHead = { startLine: "GET / HTTP/1.1", headers: new Headers({ host: "a" }) };
 * ```
 */
export interface HttpHead {
  /** The request line or status line, without CRLF. */
  startLine: string;
  /** The header fields; repeated ones are joined with ", ". */
  headers: Headers;
}

function findHeadEnd(buffer: Uint8Array, limit: number): number {
  let at = buffer.indexOf(13);
  while (at !== -1 && at + 3 < limit) {
    if (buffer[at + 1] === 10 && buffer[at + 2] === 13 && buffer[at + 3] === 10) return at + 4;
    at = buffer.indexOf(13, at + 1);
  }
  return -1;
}

function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    text += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return text;
}

/**
 * Finds an HTTP head (up to and including the empty line, `\r\n\r\n`) at the
 * start of `buffer` and parses it. Header lines are split at the first colon
 * and trimmed; repeated headers are joined with ", ".
 *
 * @param buffer The bytes received so far.
 * @param maxBytes The largest head accepted.
 * @returns The head and its length in bytes (what follows it is the first
 * WebSocket data), or undefined while the head is incomplete.
 * @throws {ProtocolError} 1002 when `maxBytes` bytes hold no complete head,
 * or when a header line is malformed.
 *
 * @example
 * ```ts
 * import { parseHttpHead } from "./http.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
 * assert.equal(parseHttpHead(bytes.subarray(0, 20)), undefined);
 * const { head, length } = parseHttpHead(bytes)!;
 * assert.equal(head.startLine, "HTTP/1.1 101 Switching Protocols");
 * assert.equal(head.headers.get("upgrade"), "websocket");
 * assert.equal(length, bytes.length);
 * ```
 */
export function parseHttpHead(
  buffer: Uint8Array,
  maxBytes: number = MAX_HEAD_BYTES,
): { head: HttpHead; length: number } | undefined {
  const length = findHeadEnd(buffer, Math.min(buffer.length, maxBytes));
  if (length === -1) {
    if (buffer.length >= maxBytes) {
      throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `HTTP head larger than ${maxBytes} bytes`);
    }
    return undefined;
  }
  const lines = latin1(buffer.subarray(0, length - 4)).split("\r\n");
  const headers = new Headers();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    const name = line.slice(0, colon), value = line.slice(colon + 1).trim();
    if (colon < 1 || !TOKEN.test(name) || /[\0\r\n]/.test(value)) {
      throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `malformed HTTP header line ${i}`);
    }
    headers.append(name, value);
  }
  return { head: { startLine: lines[0]!, headers }, length };
}

/** What {@linkcode readHttpHead} reads from. */
export interface HeadSource {
  /** Reads into `buffer`; resolves with the count, or null at the end of the stream. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/** Options for {@linkcode readHttpHead}. */
export interface ReadHttpHeadOptions {
  /**
   * The error to throw when the stream ends before the head is whole.
   *
   * @param received How many bytes of the head had arrived.
   */
  ended(received: number): Error;
  /**
   * Looks at the first bytes read, before they are parsed; may throw (say,
   * for a TLS record where HTTP was expected).
   */
  first?(bytes: Uint8Array): void;
  /** The largest head accepted. @default {MAX_HEAD_BYTES} */
  maxBytes?: number;
}

/**
 * Reads from `source` until a whole HTTP head has arrived and parses it: the
 * read loop of a client that waits for an answer (the opening handshake, a
 * proxy's answer to CONNECT). Memory is bounded by `maxBytes` and one read.
 *
 * @param source What to read from: a `Deno.Conn`, or anything with its `read`.
 * @param options The error for an early end, and a look at the first bytes.
 * @returns The head, and the bytes read past it (a copy).
 * @throws {ProtocolError} 1002 from {@linkcode parseHttpHead}: no head within
 * `maxBytes`, or a malformed header line.
 *
 * @example
 * ```ts
 * import { readHttpHead } from "./http.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("HTTP/1.1 200 OK\r\nA: b\r\n\r\nrest");
 * let at = 0;
 * const source = {
 *   read: (buffer: Uint8Array) => {
 *     if (at === bytes.length) return Promise.resolve(null);
 *     const n = Math.min(6, buffer.length, bytes.length - at); // a few bytes a read
 *     buffer.set(bytes.subarray(at, at + n));
 *     at += n;
 *     return Promise.resolve(n);
 *   },
 * };
 * const { head, rest } = await readHttpHead(source, { ended: () => new Error("ended") });
 * assert.equal(head.startLine, "HTTP/1.1 200 OK");
 * assert.equal(head.headers.get("a"), "b");
 * assert.equal(new TextDecoder().decode(rest), "rest"); // came in the read that ended the head
 * ```
 */
export async function readHttpHead(
  source: HeadSource,
  options: ReadHttpHeadOptions,
): Promise<{ head: HttpHead; rest: Uint8Array }> {
  const maxBytes = options.maxBytes ?? MAX_HEAD_BYTES;
  let buffer = new Uint8Array(Math.min(4096, maxBytes));
  let used = 0;
  while (true) {
    if (used === buffer.length) {
      // parseHttpHead has thrown before the buffer outgrows maxBytes and one read.
      const bigger = new Uint8Array(Math.min(buffer.length * 2, maxBytes + 4096));
      bigger.set(buffer);
      buffer = bigger;
    }
    const n = await source.read(buffer.subarray(used));
    if (n === null) throw options.ended(used);
    if (used === 0) options.first?.(buffer.subarray(0, n));
    used += n;
    const parsed = parseHttpHead(buffer.subarray(0, used), maxBytes);
    if (parsed) return { head: parsed.head, rest: buffer.slice(parsed.length, used) };
  }
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/**
 * Builds a small, complete HTTP error response: `Connection: close`, a
 * `text/plain` body and its `Content-Length`, plus any extra headers (such as
 * `Sec-WebSocket-Version: 13` with a 426).
 *
 * @param status The HTTP status, 100 to 599.
 * @param body The body text.
 * @param headers Extra headers.
 * @returns The whole response as bytes.
 * @throws {RangeError} When `status` is not an integer from 100 to 599.
 * @throws {TypeError} When an extra header's name is not a token or its value
 * has CR, LF or NUL.
 *
 * @example
 * ```ts
 * import { buildErrorResponse } from "./http.ts";
 * import assert from "node:assert/strict";
 *
 * const text = new TextDecoder().decode(
 *   buildErrorResponse(426, "Upgrade required", { "Sec-WebSocket-Version": "13" }),
 * );
 * assert.ok(text.startsWith("HTTP/1.1 426 Upgrade Required\r\n"));
 * assert.ok(text.includes("\r\nSec-WebSocket-Version: 13\r\n"));
 * assert.ok(text.endsWith("\r\n\r\nUpgrade required"));
 * ```
 */
export function buildErrorResponse(
  status: number,
  body: string,
  headers: Record<string, string> = {},
): Uint8Array {
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    throw new RangeError(
      `Cannot send the HTTP status as it is not 100 to 599: current value is ${status}`,
    );
  }
  const content = encoder.encode(body);
  const lines = [
    `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}`,
    "Connection: close",
    "Content-Type: text/plain; charset=utf-8",
    `Content-Length: ${content.length}`,
  ];
  for (const [name, value] of Object.entries(headers)) {
    checkHeaderField(name, value);
    lines.push(`${name}: ${value}`);
  }
  const head = encoder.encode(lines.join("\r\n") + "\r\n\r\n");
  const out = new Uint8Array(head.length + content.length);
  out.set(head);
  out.set(content, head.length);
  return out;
}
