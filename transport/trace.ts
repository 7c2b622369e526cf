/**
 * The transport layer: a trace of what goes over the wire, one event per
 * step, for the `trace` option of `connect()` (as websocket-client's
 * `enableTrace` or websockets' DEBUG logger): the proxy step, the request
 * and response heads, redirects, every frame sent and received (with its
 * opcode, payload length and a short preview), and the end. Credentials are
 * masked before an event is made: the values of `Authorization`,
 * `Proxy-Authorization`, `Cookie`, `Set-Cookie` and of headers whose name
 * says token, key, secret or auth, secret query parameters, and a proxy's
 * password.
 *
 * `TappedTransport` (`transport/tap.ts`) wraps a transport to see its
 * frames; the opening steps come from the transport itself
 * (`transport/socket.ts`).
 *
 * @module
 */

import { isSecretName, maskUrl } from "../util/url.ts";

/** What a {@linkcode TraceEvent} is about. */
export type TraceStep =
  | "proxy"
  | "request"
  | "response"
  | "redirect"
  | "send"
  | "receive"
  | "closed";

/** A frame's kind, in a {@linkcode TraceEvent} of step `"send"` or `"receive"`. */
export type TraceOpcode = "text" | "binary" | "ping" | "pong" | "close";

/**
 * One step of a connection, given to the `trace` option of `connect()`.
 *
 * | step | `detail` |
 * | --- | --- |
 * | `"proxy"` | the proxy (password masked) and the target asked of it |
 * | `"request"` | the request head, its lines joined by `"\r\n"`, secrets masked |
 * | `"response"` | the response head, likewise (`status` set) |
 * | `"redirect"` | the status and the new URL (masked) |
 * | `"send"`, `"receive"` | a preview of the payload: the first 60 characters of text, the first 16 bytes of binary in hex, a close's code and reason (`opcode`, `length` set) |
 * | `"closed"` | the close code, reason and whether it was clean |
 */
export interface TraceEvent {
  /** What happened. */
  step: TraceStep;
  /** For frames: which kind. */
  opcode?: TraceOpcode;
  /** For frames: the payload's length in bytes (text as UTF-8). */
  length?: number;
  /** For `"response"` and `"redirect"`: the HTTP status. */
  status?: number;
  /** What to show; see the table. Text from the peer is not escaped: escape it to print it. */
  detail: string;
}

/** Receives each {@linkcode TraceEvent}. */
export type TraceListener = (event: TraceEvent) => void;

const SECRET_HEADERS = /^(authorization|proxy-authorization|cookie|set-cookie)$/i;
const PREVIEW_CHARS = 60;
const PREVIEW_BYTES = 16;
const encoder = new TextEncoder();

/**
 * An HTTP head as one trace `detail`: its lines joined by `"\r\n"`, the
 * request target's secret query values and secret header values masked.
 *
 * @param head The head's text, lines separated by CRLF.
 * @returns The masked head, without the empty line that ends it.
 *
 * @example
 * ```ts
 * import { maskHead } from "./trace.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   maskHead("GET /feed?token=abc HTTP/1.1\r\nAuthorization: Bearer x\r\nHost: a\r\n\r\n"),
 *   "GET /feed?token=*** HTTP/1.1\r\nAuthorization: ***\r\nHost: a",
 * );
 * ```
 */
export function maskHead(head: string): string {
  const lines = head.split("\r\n").filter((line) => line !== "");
  return lines.map((line, i) => {
    if (i === 0) {
      const m = /^(\S+) (\S+) (HTTP\/\S+)$/.exec(line);
      if (!m) return line;
      const masked = maskUrl(`http://h${m[2]}`).slice("http://h".length);
      return `${m[1]} ${masked} ${m[3]}`;
    }
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    return colon > 0 && (SECRET_HEADERS.test(name) || isSecretName(name)) ? `${name}: ***` : line;
  }).join("\r\n");
}

/**
 * A short preview of a payload: text cut at 60 characters (with `...`),
 * binary as the hex of its first 16 bytes.
 *
 * @param data The payload.
 * @returns The preview.
 */
export function preview(data: string | Uint8Array): string {
  if (typeof data === "string") {
    return data.length > PREVIEW_CHARS ? `${data.slice(0, PREVIEW_CHARS)}...` : data;
  }
  const hex = [...data.subarray(0, PREVIEW_BYTES)].map((b) => b.toString(16).padStart(2, "0"));
  return hex.join(" ") + (data.length > PREVIEW_BYTES ? " ..." : "");
}

/**
 * A frame's trace event.
 *
 * @param step `"send"` or `"receive"`.
 * @param opcode The frame's kind.
 * @param data The payload.
 * @returns The event, with a preview of the payload.
 */
export function frameEvent(
  step: "send" | "receive",
  opcode: TraceOpcode,
  data: string | Uint8Array,
): TraceEvent {
  const length = typeof data === "string" ? encoder.encode(data).length : data.length;
  return { step, opcode, length, detail: preview(data) };
}

/**
 * Calls the listener, and keeps a throw from breaking the connection.
 *
 * @param listener The `trace` option, if any.
 * @param event The event.
 */
export function emit(listener: TraceListener | undefined, event: TraceEvent): void {
  if (listener === undefined) return;
  try {
    listener(event);
  } catch { /* a trace must not change what it traces */ }
}

/**
 * A close frame's trace event.
 *
 * @param step `"send"` or `"receive"`.
 * @param code The close code (1005: no code, an empty payload).
 * @param reason The close reason.
 * @returns The event.
 */
export function closeEvent(step: "send" | "receive", code: number, reason: string): TraceEvent {
  return {
    step,
    opcode: "close",
    length: code === 1005 ? 0 : 2 + encoder.encode(reason).length,
    detail: `${code}${reason ? ` ${preview(reason)}` : ""}`,
  };
}
