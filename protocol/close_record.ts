/**
 * The protocol layer (sans-I/O): the one state value of a `Protocol`
 * (`protocol/protocol.ts`): the connection's phase, and what is ending it
 * and why (the close frames sent and received, a failure, EOF). The rules
 * that change it are `Protocol`'s; what follows from it is here.
 *
 * @module
 */

import type { ProtocolError } from "../util/errors.ts";
import type { ProtocolState } from "./events.ts";

/** A close frame sent or received (code 1005 when it had no payload). */
export interface CloseFrame {
  code: number;
  reason: string;
}

/**
 * The connection's one state value: its phase, and what is ending it and
 * why. Every field only ever goes one way (from undefined or false to set),
 * and `phase` follows from the others (see {@linkcode phaseOf}).
 */
export interface CloseRecord {
  phase: ProtocolState;
  /** The close frame queued (by `sendClose`, `fail`, or in reply to the peer's). */
  sent: CloseFrame | undefined;
  /** The peer's close frame: later input is ignored. */
  received: CloseFrame | undefined;
  /** Whether the connection was failed (`fail`): later input is ignored, TCP is to be closed. */
  failed: boolean;
  /** The rule the peer broke, when the protocol failed the connection itself. */
  failure: ProtocolError | undefined;
  /** Whether the peer closed TCP: later input is ignored, nothing more is sent. */
  eof: boolean;
}

/**
 * The phase a record stands for: `"closed"` once close frames went both ways
 * or TCP is gone, `"closing"` once one went or the connection failed, else
 * `"open"`.
 *
 * @param close The record.
 * @returns Its phase.
 */
export function phaseOf(close: CloseRecord): ProtocolState {
  if (close.eof || (close.sent !== undefined && close.received !== undefined)) return "closed";
  return close.sent !== undefined || close.received !== undefined || close.failed
    ? "closing"
    : "open";
}

/**
 * The record of a connection that is open: nothing sent, received or failed.
 *
 * @returns A new record.
 */
export function openRecord(): CloseRecord {
  return {
    phase: "open",
    sent: undefined,
    received: undefined,
    failed: false,
    failure: undefined,
    eof: false,
  };
}

/**
 * Whether input is ignored: after a failure, the peer's close frame, or EOF.
 *
 * @param close The record.
 * @returns Whether to ignore input.
 */
export function ignoresInput(close: CloseRecord): boolean {
  return close.failed || close.eof || close.received !== undefined;
}
