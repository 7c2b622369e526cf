/**
 * The protocol layer (sans-I/O): what a `Protocol` is configured
 * with and what it reports: its role, options, states and events. The
 * connection itself is in `protocol/protocol.ts`, which re-exports all of these.
 *
 * @module
 */

/**
 * Which end of the connection a `Protocol` is: a client masks what
 * it sends and expects unmasked frames, a server the reverse.
 *
 * @example
 * ```ts
 * import type { Role } from "./protocol.ts";
 *
 * const role: Role = "client";
 * ```
 */
export type Role = "client" | "server";

/**
 * What `Protocol.events` returns: a whole message, a ping (already
 * answered by a queued pong unless a close was sent), a pong, or the peer's
 * close frame (code 1005 when it had no code). A binary message's and a
 * ping's data are always in a buffer of their own; a pong's (at most 125
 * bytes, read to match it to its ping) may be a view of a buffer shared with
 * other payloads, whose bytes nothing else changes: slice it to keep it apart.
 *
 * @example
 * ```ts
 * import type { ProtocolEvent } from "./protocol.ts";
 *
 * function describe(event: ProtocolEvent): string {
 *   return event.type === "close" ? `closed with ${event.code}` : event.type;
 * }
 * describe({ type: "close", code: 1000, reason: "" });
 * ```
 */
export type ProtocolEvent =
  | { type: "text"; data: string; echo?: Uint8Array }
  | { type: "binary"; data: Uint8Array; echo?: Uint8Array }
  | { type: "ping"; data: Uint8Array }
  | { type: "pong"; data: Uint8Array }
  | { type: "close"; code: number; reason: string };

/** The largest message accepted unless told otherwise: 16 MiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

/**
 * Options for `Protocol`.
 *
 * @example
 * ```ts
 * import { Protocol, type ProtocolOptions } from "./protocol.ts";
 *
 * const options: ProtocolOptions = { role: "client", maxMessageSize: 1024 * 1024 };
 * new Protocol(options);
 * ```
 */
export interface ProtocolOptions {
  /** Which end this is. */
  role: Role;
  /**
   * Largest message (the sum of its fragments' payloads) accepted; past it
   * the connection fails with 1009, on the frame header, before the payload
   * is buffered.
   * @default {16 * 1024 * 1024}
   */
  maxMessageSize?: number;
  /**
   * An echo server's mode: a message in one frame comes with `echo`, its
   * payload with room for a header, for `Protocol.sendEcho`. Its binary
   * `data` is that payload too: up to 4 KiB, a view of a slab shared with
   * other payloads (never reused, so the view stays valid).
   * @default {false}
   */
  echo?: boolean;
}

/**
 * The connection's state: `"open"`; `"closing"` once a close frame was sent
 * or received, or the connection failed; `"closed"` once close frames went
 * both ways, or the peer closed TCP.
 *
 * @example
 * ```ts
 * import { Protocol, type ProtocolState } from "./protocol.ts";
 *
 * const state: ProtocolState = new Protocol({ role: "client" }).state;
 * ```
 */
export type ProtocolState = "open" | "closing" | "closed";
