/**
 * The client layer: how a connection ended, stated exactly.
 *
 * - A normal close is code 1000, 1001 or 1005 with no error behind it:
 *   iteration ends quietly. Any other close makes iteration reject with a
 *   `ConnectionClosedError` that carries the code, the reason and the error.
 * - The code is the peer's when close frames went both ways (1005 when its
 *   frame had no code), the one the client sent when it failed the connection
 *   for a protocol error (1002, 1007, 1009), and 1006 when no close frame came
 *   back: a dropped connection, or one wsbeat ended itself (a failed
 *   heartbeat, a consumer that fell behind on the native transport).
 * - The error a rejection carries as `cause` is what ended the connection:
 *   a heartbeat's `TooSlowError`, a `ProtocolError`, a network error.
 * - Messages received before the close are delivered first. `receive()`
 *   rejects after any close, normal or not, once they are read, since it has
 *   no message to give.
 * - A client's `closed` promise never rejects, and resolves only once the
 *   transport has released the socket (on the native transport, which cannot
 *   release a dead socket, once the client has given up on it).
 *
 * @module
 */

import { ConnectionClosedError, ProtocolError } from "../util/errors.ts";
import { byteLength } from "../util/bytes.ts";
import type { ClosingStart, TransportEnd } from "../transport/transport.ts";

/**
 * Who closed the connection first.
 *
 * - `"client"`: this side called `close()`, the signal aborted, the client
 *   gave up (the consumer fell behind on the native transport), or the
 *   server broke RFC 6455 and the client failed the connection (the error is
 *   a `ProtocolError`, the code the one sent: 1002, 1007 or 1009).
 * - `"server"`: the peer sent a close frame.
 * - `"heartbeat"`: the heartbeat found the peer unresponsive.
 * - `"network"`: the connection dropped with no closing handshake.
 */
export type CloseInitiator = "client" | "server" | "heartbeat" | "network";

/** How a connection ended, as resolved by {@linkcode WebSocketClient.closed}. */
export interface CloseInfo {
  /**
   * The close code: the peer's, or 1006 when no close frame was received
   * (the runtime says 0), or 1005 when the close frame had no code.
   */
  code: number;
  /** The close reason the peer sent; empty when it sent none. */
  reason: string;
  /** Whether the closing handshake completed. */
  wasClean: boolean;
  /** Who closed first. */
  initiator: CloseInitiator;
  /**
   * The error behind an abnormal close: the heartbeat's
   * {@linkcode TooSlowError}, the runtime's network error, a
   * {@linkcode ConnectError} if the socket never opened, or the error that
   * made the client give up.
   */
  error?: Error;
}

const NORMAL_CODES: ReadonlySet<number> = new Set([1000, 1001, 1005]);

/**
 * Whether iteration ends quietly after this close.
 *
 * @param info How the connection ended.
 * @returns `true` for 1000, 1001 and 1005 with no error behind them.
 */
export function isNormalClose(info: CloseInfo): boolean {
  return NORMAL_CODES.has(info.code) && info.error === undefined;
}

/**
 * A sentence saying how the connection ended, for error messages.
 *
 * @param info How the connection ended.
 * @returns The sentence.
 */
export function describeClose(info: CloseInfo): string {
  const reason = info.reason ? ` (${info.reason})` : "";
  switch (info.initiator) {
    case "heartbeat":
      return `Connection closed by the heartbeat: ${
        info.error?.message ?? "the peer did not answer"
      }`;
    case "network":
      return `Connection lost without a closing handshake (${info.code})` +
        (info.error ? `: ${info.error.message}` : "");
    case "server":
      return `Connection closed by the server with code ${info.code}${reason}`;
    case "client":
      if (info.error instanceof ProtocolError) {
        return `Connection failed with code ${info.code}: the server broke the protocol (${info.error.message})`;
      }
      return info.error
        ? info.error.message
        : `Connection closed by the client with code ${info.code}${reason}`;
  }
}

/**
 * The error for an operation refused because the connection is not open,
 * naming the state and, once known, the close's first cause: how it ended,
 * or why it is closing (the server's close, the rule it broke).
 *
 * @param action What could not be done, e.g. `"send"`.
 * @param state The client's state now.
 * @param known How the connection ended, or how its closing began, if known.
 * @param cause The error behind the refusal, if no close explains it.
 * @returns The error, with the close's code and reason (1006 while unknown).
 */
export function notOpenError(
  action: string,
  state: string,
  known: CloseInfo | ClosingStart | undefined,
  cause?: unknown,
): ConnectionClosedError {
  let info: CloseInfo | undefined;
  if (known === undefined || "initiator" in known) info = known;
  else if (known.by === "peer") {
    info = { code: known.code, reason: known.reason, wasClean: false, initiator: "server" };
  } else {
    info = {
      code: known.error.closeCode,
      reason: "",
      wasClean: false,
      initiator: "client",
      error: known.error,
    };
  }
  return new ConnectionClosedError(
    info?.code ?? 1006,
    info?.reason ?? "",
    `Cannot ${action} as the connection is not open: current state is ${state}` +
      (info ? ` (${describeClose(info)})` : ""),
    { cause: info?.error ?? cause },
  );
}

/**
 * The {@linkcode CloseInfo} of a transport's end.
 *
 * @param end What the transport reported.
 * @param initiator Who closed first, if the client already knows (it called
 *   `close()`, or its heartbeat failed).
 * @param forced The error for which wsbeat ended the connection itself; such
 *   an end is reported as 1006 whatever the transport saw.
 * @returns How the connection ended.
 */
export function closeInfoOf(
  end: TransportEnd,
  initiator: CloseInitiator | undefined,
  forced: Error | undefined,
): CloseInfo {
  if (forced) {
    return {
      code: 1006,
      reason: "",
      wasClean: false,
      initiator: initiator ?? "client",
      error: forced,
    };
  }
  return {
    code: end.code,
    reason: end.reason,
    wasClean: end.wasClean,
    initiator: initiator ??
      (end.error instanceof ProtocolError || end.firstClose === "local"
        ? "client"
        : end.firstClose === "remote"
        ? "server"
        : "network"),
    ...(end.error ? { error: end.error } : {}),
  };
}

/**
 * Checks what a client's `close(code, reason)` may send: code 1000, 1001
 * ("going away": a process shutting down, a page left), or 3000 to 4999 for
 * applications (the other codes of RFC 6455 section 7.4.1 describe a
 * protocol or server condition and are the library's to send, not the
 * caller's), and a reason of at most 123 bytes of UTF-8.
 *
 * @param code The close code.
 * @param reason The close reason.
 * @throws {RangeError} Naming the value that is not allowed.
 */
export function checkClientClose(code: number, reason: string): void {
  if (
    !Number.isInteger(code) || (code !== 1000 && code !== 1001 && (code < 3000 || code > 4999))
  ) {
    throw new RangeError(
      `Cannot close with code ${code} as clients may only send 1000, 1001 or 3000 to 4999`,
    );
  }
  if (typeof reason !== "string" || byteLength(reason) > 123) {
    throw new RangeError(
      `Cannot close with reason ${
        JSON.stringify(reason)
      } as it must be a string of at most 123 UTF-8 bytes`,
    );
  }
}
