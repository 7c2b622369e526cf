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
 *   gave up (a stale feed, a consumer that fell behind on the native
 *   transport), or the
 *   server broke RFC 6455 and the client failed the connection (the error is
 *   a `ProtocolError`, the code the one sent: 1002, 1007 or 1009).
 * - `"server"`: the peer sent a close frame.
 * - `"heartbeat"`: the heartbeat found the peer unresponsive.
 * - `"network"`: the connection dropped with no closing handshake.
 */
export type CloseInitiator = "client" | "server" | "heartbeat" | "network";

/**
 * How a connection ended, as resolved by {@linkcode WebSocketClient.closed}.
 *
 * Each case, as `code`, `reason`, `wasClean`, `initiator`, `error`:
 *
 * - Close frames went both ways: the peer's code (1005 when its frame had
 *   none) and reason, `true`, who began, no error. The same when the peer's
 *   TCP close came late and the client closed TCP after `closeTimeout`.
 * - The server broke RFC 6455 (wsbeat transport): the code and reason the
 *   client sent (1002, 1007, 1009), `false`, `"client"`, the `ProtocolError`.
 * - The heartbeat found the peer unresponsive: 1006, `""`, `false`,
 *   `"heartbeat"`, its `TooSlowError` (or what `onBeat` threw).
 * - The feed went stale, or the consumer fell behind on the native
 *   transport: 1006, `""`, `false`, `"client"`, a `StaleFeedError` or the
 *   error that says so.
 * - `close()` got no close frame back within `closeTimeout`: 1006, `""`,
 *   `false`, `"client"`, a `TooSlowError`.
 * - The connection dropped with no closing handshake (the native runtime's
 *   code 0 included): 1006, `""`, `false`, who began (`"network"` if no one
 *   did), the network error.
 * - It never opened: 1006, `""`, `false`, `"client"` if `close()` or the
 *   signal aborted it (else `"network"`), the `ConnectError` or the abort
 *   reason.
 */
export interface CloseInfo {
  /**
   * The close code: the peer's when close frames went both ways (1005 when
   * its frame had no code); the one the client sent when it failed the
   * connection because the server broke the protocol (1002, 1007, 1009);
   * 1006 when no close frame came back, when wsbeat ended the connection
   * itself, and when it never opened (the native runtime's code 0 is
   * reported as 1006 too).
   */
  code: number;
  /**
   * The reason that goes with `code`: the peer's when close frames went both
   * ways, the one the client sent when it failed the connection for a
   * protocol error, and `""` with 1006.
   */
  reason: string;
  /**
   * Whether close frames went both ways: `true` even if the peer's TCP close
   * was late and the client closed TCP itself after `closeTimeout`.
   */
  wasClean: boolean;
  /** Who began the close: the first cause, see {@linkcode CloseInitiator}. */
  initiator: CloseInitiator;
  /**
   * What ended the connection, present on every close that is not clean
   * (when the cause is not an `Error`, such as a signal's string reason, an
   * `Error` naming it): a `ProtocolError`, the heartbeat's
   * {@linkcode TooSlowError}, a `StaleFeedError`, the error that made the
   * client give up, the runtime's network error, a {@linkcode ConnectError}
   * if the socket never opened, or the abort reason. Absent after a clean
   * close.
   */
  error?: Error;
}

/**
 * What is ending a connection, and why: the first cause of its close, as a
 * client records it. It is set once; a later cause (a heartbeat that fails
 * while the server's close is under way, say) never replaces it, and
 * `CloseInfo.initiator` and the errors of refused operations derive from it.
 *
 * - `peer`: the peer's close frame arrived (the transport's `onClosing`).
 * - `failure`: the peer broke RFC 6455 and the protocol failed the
 *   connection, sending `error.closeCode`.
 * - `close`: this side's `close(code, reason)`, or the signal once open.
 * - `forced`: wsbeat ended the connection itself without waiting for the
 *   peer (a failed heartbeat, a stale feed, a consumer that fell behind on
 *   the native transport): reported as 1006 with `error`.
 * - `abort`: the signal aborted while connecting; `opened` rejects with
 *   `reason`, whatever it is.
 */
export type CloseCause =
  | ClosingStart
  | { by: "close"; code: number; reason: string }
  | { by: "forced"; initiator: "client" | "heartbeat"; error: Error }
  | { by: "abort"; reason: unknown };

/**
 * Who began a close with this first cause.
 *
 * @param cause The first cause.
 * @returns `"server"` for the peer's close frame, the watchdog's side for a
 *   forced end, `"client"` otherwise.
 */
export function initiatorOf(cause: CloseCause): CloseInitiator {
  if (cause.by === "peer") return "server";
  return cause.by === "forced" ? cause.initiator : "client";
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
 * or why it is closing (the server's close, the rule it broke, the client's
 * close, the watchdog that gave up).
 *
 * @param action What could not be done, e.g. `"send"`.
 * @param state The client's state now.
 * @param known How the connection ended, or the first cause of its close, if known.
 * @param cause The error behind the refusal, if no close explains it.
 * @returns The error, with the close's code and reason (1006 while unknown).
 */
export function notOpenError(
  action: string,
  state: string,
  known: CloseInfo | CloseCause | undefined,
  cause?: unknown,
): ConnectionClosedError {
  const info = known === undefined || !("by" in known) ? known : closingInfo(known);
  return new ConnectionClosedError(
    info?.code ?? 1006,
    info?.reason ?? "",
    `Cannot ${action} as the connection is not open: current state is ${state}` +
      (info ? ` (${describeClose(info)})` : ""),
    { cause: info?.error ?? cause },
  );
}

/** What is known of a close from its first cause alone, before it ends; none for an abort. */
function closingInfo(cause: CloseCause): CloseInfo | undefined {
  const initiator = initiatorOf(cause);
  switch (cause.by) {
    case "peer":
    case "close":
      return { code: cause.code, reason: cause.reason, wasClean: false, initiator };
    case "failure":
      return {
        code: cause.error.closeCode,
        reason: "",
        wasClean: false,
        initiator,
        error: cause.error,
      };
    case "forced":
      return { code: 1006, reason: "", wasClean: false, initiator, error: cause.error };
    case "abort":
      return undefined;
  }
}

/**
 * The {@linkcode CloseInfo} of a transport's end.
 *
 * @param end What the transport reported.
 * @param cause The first cause the client recorded, if any; a forced end is
 *   reported as 1006 with its error, whatever the transport saw.
 * @returns How the connection ended.
 */
export function closeInfoOf(end: TransportEnd, cause: CloseCause | undefined): CloseInfo {
  if (cause?.by === "forced") return closingInfo(cause)!;
  return {
    code: end.code,
    reason: end.reason,
    wasClean: end.wasClean,
    initiator: cause
      ? initiatorOf(cause)
      : end.error instanceof ProtocolError || end.firstClose === "local"
      ? "client"
      : end.firstClose === "remote"
      ? "server"
      : "network",
    ...(end.error ? { error: end.error } : {}),
  };
}

/**
 * The {@linkcode CloseInfo} of a connection that never opened.
 *
 * @param cause The first cause the client recorded, if any (an abort, a `close()`).
 * @param error Why it did not open: a `ConnectError`, the abort reason.
 * @returns How the connection ended: 1006, not clean.
 */
export function connectFailureInfo(
  cause: CloseCause | undefined,
  error: Error | undefined,
): CloseInfo {
  return {
    code: 1006,
    reason: "",
    wasClean: false,
    initiator: cause ? initiatorOf(cause) : "network",
    ...(error ? { error } : {}),
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
