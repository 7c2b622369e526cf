/**
 * The echo server: how an echo server connection reports its end, the
 * code and reason of its first close frame and its one log line.
 * `serve/connection.ts` gathers what it knows at the end and logs the line.
 *
 * @module
 */

import type { Protocol } from "../protocol/protocol.ts";
import { quoted } from "./log.ts";

/** What a connection knows at its end, for {@linkcode closeReport}. */
export interface ConnectionEnd {
  /** The connection's protocol. */
  protocol: Protocol;
  /** Whether the server sent the first close frame (not as an answer). */
  serverClosedFirst: boolean;
  /** Why the socket was closed without a closing handshake, if it was. */
  why: string | undefined;
  /** Pings sent and pongs received, when the server pings (`pingInterval`). */
  pings?: { sent: number; received: number };
  /** How long the connection was open, ms. */
  lasted: number;
}

/** Formats milliseconds for a log line. */
export function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * The close of an open connection: the code and reason of its first close
 * frame (1006 and "" when none went out or came in), and what to log after
 * the connection's tag.
 *
 * @param end What the connection knows at its end.
 * @returns The code, the reason, and the log line's text.
 */
export function closeReport(end: ConnectionEnd): { code: number; reason: string; line: string } {
  const p = end.protocol;
  const sent = p.closeSent;
  const received = p.closeReceived;
  let code = 1006, reason = "", by = "";
  if (sent && (p.failure || end.serverClosedFirst || !received)) {
    ({ code, reason } = sent);
    by = p.failure ? "by the server: protocol error" : "by the server";
  } else if (received) {
    ({ code, reason } = received);
    by = "by the client";
  }
  const clean = sent !== undefined && received !== undefined;
  const why = clean || p.failure ? "" : end.why ?? "";
  const pings = end.pings && `${end.pings.sent} pings sent, ${end.pings.received} pongs received`;
  const parts = [
    [`${code}${reason ? ` ${quoted(reason)}` : ""}`, by].filter(Boolean).join(", "),
    why,
    pings,
  ].filter(Boolean).join("; ");
  return { code, reason, line: `closed (${parts}) after ${duration(end.lasted)}` };
}
