/**
 * The echo server: the echo server's opening handshake on an accepted
 * socket, and its refusals. The request head is read into a buffer capped
 * at `maxHeaderSize` (HTTP 431 past it) within `handshakeTimeout`, checked
 * with `checkRequest` from `protocol/handshake.ts` (400 or 426), and answered 101 or
 * `rejectStatus`. Every refusal is one log line, never a stack trace, and an
 * HTTP answer the client can read before the socket closes.
 *
 * `serve/connection.ts` calls it and owns the socket: closing it (at
 * shutdown, or when a timer here asks) ends any read or write here.
 *
 * @module
 */

import { acceptKey, buildResponse, checkRequest, HandshakeError } from "../protocol/handshake.ts";
import { buildErrorResponse, type HttpHead, parseHttpHead } from "../protocol/http.ts";
import { controlByte, messageOf, shownMessage, shownTarget } from "./log.ts";
import { ProtocolError } from "../util/errors.ts";
import type { ConnectionInfo, ServeSettings } from "./options.ts";
import { writeAll } from "../transport/frame_writer.ts";
import { type DeflateSettings, sharedZlib } from "../protocol/deflate_extension.ts";
import { acceptDeflateOffer, ExtensionNegotiationError } from "../protocol/permessage_deflate.ts";

/** The socket and what the handshake needs around it. */
export interface HandshakeContext {
  conn: Deno.Conn;
  settings: ServeSettings;
  /** The connection's number, for its log lines and its {@linkcode ConnectionInfo}. */
  id: number;
  /** The client's `host:port`. */
  remoteAddr: string;
  log(line: string): void;
  /** Closes the socket (it ends the handshake). */
  abort(why: string): void;
  /** Whether the socket was closed. */
  ended(): boolean;
}

/** A handshake that succeeded: the connection and the bytes that followed the request. */
export interface Opened {
  info: ConnectionInfo;
  /** The first frames, if the client sent them with its request. */
  rest: Uint8Array;
  /** permessage-deflate, when the client offered it and `compression` accepted it. */
  deflate?: DeflateSettings;
}

/** After answering with an error, read at most this much before closing. */
export const LINGER_BYTES = 1024 * 1024;
const HINT = "wsbeat echo server: connect with a WebSocket client\n";

/**
 * A connection's first phase: refuses it (HTTP 503) when `refuse` is given,
 * else reads and answers its opening handshake. What the socket throws (a
 * TLS failure, a reset) is logged on one line, not thrown.
 *
 * @param ctx The socket and what the handshake needs around it.
 * @param refuse Why to refuse, and whether to linger (`serve.ts` decides).
 * @returns The open connection, or undefined (refused, rejected, failed, or closed).
 */
export async function handshakePhase(
  ctx: HandshakeContext,
  refuse?: { reason: string; linger: boolean },
): Promise<Opened | undefined> {
  try {
    if (refuse === undefined) return await acceptHandshake(ctx);
    await refuseConnection(ctx, refuse.reason, refuse.linger);
  } catch (error) {
    if (!ctx.ended()) {
      ctx.log(
        `#${ctx.id} handshake failed from ${ctx.remoteAddr}: ${shownMessage(messageOf(error))}`,
      );
    }
  }
  return undefined;
}

/**
 * Reads and answers the opening handshake.
 *
 * @returns The open connection, or undefined when it was refused, timed out,
 * or closed (each logged on one line).
 * @throws What the socket throws (a TLS failure, a reset): the caller logs it.
 */
export async function acceptHandshake(ctx: HandshakeContext): Promise<Opened | undefined> {
  const { conn, settings, id, remoteAddr } = ctx;
  const { maxHeaderSize, handshakeTimeout, rejectStatus, protocols } = settings;
  const timer = handshakeTimeout === Infinity ? undefined : setTimeout(() => {
    ctx.log(
      `#${id} handshake timeout from ${remoteAddr}: no complete request within ${handshakeTimeout} ms (handshakeTimeout); closed`,
    );
    ctx.abort("handshake timeout");
  }, handshakeTimeout);
  let buffer = new Uint8Array(Math.min(4096, maxHeaderSize));
  let used = 0;
  let end = -1;
  try {
    while (end === -1) {
      if (used === buffer.length) {
        if (used >= maxHeaderSize) {
          clearTimeout(timer);
          return reject(ctx, 431, `request head over ${maxHeaderSize} bytes (maxHeaderSize)`);
        }
        const larger = new Uint8Array(Math.min(buffer.length * 2, maxHeaderSize));
        larger.set(buffer);
        buffer = larger;
      }
      const n = await conn.read(buffer.subarray(used));
      if (ctx.ended()) return undefined;
      if (n === null) {
        ctx.log(`#${id} closed by ${remoteAddr} before completing the handshake`);
        return undefined;
      }
      end = headEnd(buffer, Math.max(0, used - 3), used + n);
      used += n;
      if (buffer[0] === 0x16) {
        // A TLS ClientHello (record type 22) cannot start an HTTP request: answer at once in
        // plain HTTP, which the client's TLS reports as "not TLS", instead of a timeout.
        clearTimeout(timer);
        return reject(ctx, 400, "the client speaks TLS to a ws:// server (wss:// URL?)");
      }
    }
    clearTimeout(timer);
    let request;
    try {
      const head = parseHttpHead(buffer.subarray(0, end), end + 1)!.head;
      checkControlBytes(head);
      request = checkRequest(head);
    } catch (error) {
      if (rejectStatus !== undefined) return rejectAll(ctx, rejectStatus);
      if (error instanceof HandshakeError) {
        const plainHttp = error.status === 426 && "Upgrade" in error.responseHeaders;
        const body = plainHttp ? HINT : `${error.message}\n`;
        return reject(ctx, error.status ?? 400, error.message, error.responseHeaders, body);
      }
      return reject(
        ctx,
        400,
        error instanceof ProtocolError ? error.rule : (error as Error).message,
      );
    }
    if (rejectStatus !== undefined) return rejectAll(ctx, rejectStatus);
    const protocol = request.protocols.find((p) => !protocols || protocols.includes(p)) ?? "";
    let accepted;
    try {
      accepted = settings.compression &&
        acceptDeflateOffer(request.headers.get("sec-websocket-extensions"), settings.compression);
    } catch (error) {
      if (!(error instanceof ExtensionNegotiationError)) throw error;
      return reject(ctx, 400, error.message);
    }
    // node:zlib is imported for the first client that offers it (the import blocks ~40 ms, once).
    const zlib = accepted ? await sharedZlib() : undefined;
    const accept = await acceptKey(request.key);
    if (ctx.ended()) return undefined;
    const extensions = accepted && zlib ? accepted.response : undefined;
    const response = {
      accept,
      ...(protocol ? { protocol } : {}),
      ...(extensions && { extensions }),
    };
    await writeAll(conn, buildResponse(response));
    const info = { id, remoteAddr, path: request.path, headers: request.headers, protocol };
    if (!accepted || !zlib) return { info, rest: buffer.slice(end, used) };
    const { threshold, level } = settings.compression!;
    const deflate = { zlib, params: accepted.params, threshold, level };
    return { info, rest: buffer.slice(end, used), deflate };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Refuses a connection over `maxConnections`: HTTP 503 and close.
 *
 * @param reason What to log.
 * @param linger Whether to wait (within `closeTimeout`) for the client to
 * close first, so that it reads the answer rather than a reset.
 */
export async function refuseConnection(
  ctx: HandshakeContext,
  reason: string,
  linger: boolean,
): Promise<void> {
  ctx.log(`#${ctx.id} refused ${ctx.remoteAddr}: ${reason}; answered 503`);
  const body = "wsbeat echo server: too many connections, try again later\n";
  await answer(ctx, buildErrorResponse(503, body, { "Retry-After": "1" }), linger);
}

/** Answers the handshake with an HTTP error, logs it on one line, and closes. */
async function reject(
  ctx: HandshakeContext,
  status: number,
  detail: string,
  headers: Record<string, string> = {},
  body: string = `${detail}\n`,
): Promise<undefined> {
  ctx.log(
    `#${ctx.id} handshake rejected from ${ctx.remoteAddr}: ${status} ${shownMessage(detail)}`,
  );
  await answer(ctx, buildErrorResponse(status, body, headers), true);
  return undefined;
}

/**
 * Refuses control bytes where HTTP forbids them (RFC 9112 and RFC 9110): in
 * the request target, and in a header value (a tab aside). A header's value
 * is not quoted back: it may be a credential.
 *
 * @throws {HandshakeError} 400, naming the byte and where it is.
 */
function checkControlBytes(head: HttpHead): void {
  const line = head.startLine;
  const first = line.indexOf(" "), last = line.lastIndexOf(" ");
  const target = first !== -1 && last > first ? line.slice(first + 1, last) : line;
  const inTarget = controlByte(target, false);
  if (inTarget !== undefined) {
    throw new HandshakeError(
      "handshake",
      `the request target "${shownTarget(target)}" holds the control byte ${
        hex(inTarget.byte)
      }; a client must percent-encode it`,
      { status: 400 },
    );
  }
  for (const [name, value] of head.headers) {
    const inValue = controlByte(value, true);
    if (inValue !== undefined) {
      throw new HandshakeError(
        "handshake",
        `the request's ${name} header holds the control byte ${
          hex(inValue.byte)
        }, which RFC 9110 forbids in a field value`,
        { status: 400 },
      );
    }
  }
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, "0")}`;
}

/** Answers with the `rejectStatus` fault's status. */
function rejectAll(ctx: HandshakeContext, status: number): Promise<undefined> {
  const body = `wsbeat echo server: every opening handshake is answered ${status} (rejectStatus)\n`;
  return reject(ctx, status, "(rejectStatus)", {}, body);
}

/**
 * Writes a whole HTTP answer, then (with `linger`) shuts down writing and
 * reads until the client closes, so that closing does not reset the
 * connection before the client has read the answer. All within
 * `closeTimeout`, and at most {@linkcode LINGER_BYTES} read.
 */
async function answer(ctx: HandshakeContext, bytes: Uint8Array, linger: boolean): Promise<void> {
  const timer = setTimeout(() => ctx.abort("answered"), ctx.settings.closeTimeout);
  try {
    await writeAll(ctx.conn, bytes);
    if (!linger || ctx.ended()) return;
    await ctx.conn.closeWrite();
    const sink = new Uint8Array(4096);
    for (let read = 0; read <= LINGER_BYTES && !ctx.ended();) {
      const n = await ctx.conn.read(sink);
      if (n === null) break;
      read += n;
    }
  } catch {
    /* the client went away, or the timer closed the socket */
  } finally {
    clearTimeout(timer);
  }
}

/** Finds the end of an HTTP head (just past `\r\n\r\n`) in `buffer[from, to)`, or -1. */
function headEnd(buffer: Uint8Array, from: number, to: number): number {
  for (let i = buffer.indexOf(10, from + 3); i !== -1 && i < to; i = buffer.indexOf(10, i + 1)) {
    if (buffer[i - 1] === 13 && buffer[i - 2] === 10 && buffer[i - 3] === 13) return i + 1;
  }
  return -1;
}
