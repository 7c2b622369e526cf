/**
 * The protocol layer (sans-I/O): what a `Protocol` is configured
 * with and what it reports: its role, options, states and events. The
 * connection itself is in `protocol/protocol.ts`, which re-exports all of these.
 *
 * @module
 */

import type { DeflateSettings } from "./deflate_extension.ts";
import { Fifo } from "../util/fifo.ts";

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
 * What `Protocol.events` returns: a whole message, a ping (already answered
 * by a queued pong unless a close frame was sent or
 * {@linkcode ProtocolOptions.autoReply} is off), a pong, or the peer's close
 * frame (code 1005 when it had no code).
 *
 * Binary data, a ping's and a pong's may be views of a buffer shared with
 * other payloads (`protocol/buffers.ts`): their bytes are never written
 * again, so they can be kept as they are; `slice()` one to keep it without
 * the rest of its buffer.
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
   * `data` is that payload too.
   * @default {false}
   */
  echo?: boolean;
  /**
   * Whether the protocol answers by itself: a pong to each ping (until a
   * close frame was sent) and a close frame to the peer's (with its code).
   * Off, as in wsproto, the application answers with `Protocol.sendPong`
   * and `Protocol.sendClose`: the echo server does, to decide per event
   * what gets an answer (nothing after its `stallAfter` fault). A close
   * frame that fails the connection is queued either way.
   * @default {true} RFC 6455 asks for both answers, and most callers want them
   */
  autoReply?: boolean;
  /**
   * Whether a rule the peer breaks waits for the I/O layer to fail the
   * connection: `Protocol.receiveData` reports the events before the
   * violation, records it (`Protocol.failure`, `Protocol.failurePending`)
   * and ignores later input, but queues no close frame, and sending stays
   * possible until the I/O layer calls `Protocol.fail` with the failure's
   * code. So the application can still answer the messages that arrived
   * before the bad frame, as Node's `ws` and browsers let it (Autobahn's
   * strict cases 3.2, 4.1.3, 5.15, ...).
   * @default {false} the connection fails at once, within `receiveData`
   */
  deferFailure?: boolean;
  /**
   * permessage-deflate (RFC 7692) as the opening handshake agreed on it:
   * the zlib module, the parameters and the tuning
   * (`protocol/deflate_extension.ts`). Then RSV1 is allowed on the first
   * frame of a text or binary message, such messages are inflated (past
   * `maxMessageSize` once inflated: 1009), and messages of at least
   * `threshold` bytes are sent compressed.
   * @default {undefined} no extension: RSV1 fails the connection with 1002
   */
  deflate?: DeflateSettings;
}

/**
 * The connection's state: `"open"`; `"closing"` once a close frame went
 * one way only (sent by `sendClose` or `fail` and not yet answered, or,
 * with `autoReply` off, received and not yet answered); `"closed"` once close
 * frames went both ways, or the peer closed TCP. With `autoReply` on, the
 * peer's close frame is answered at once, so receiving one goes straight
 * from `"open"` to `"closed"`.
 *
 * @example
 * ```ts
 * import { Protocol, type ProtocolState } from "./protocol.ts";
 *
 * const state: ProtocolState = new Protocol({ role: "client" }).state;
 * ```
 */
export type ProtocolState = "open" | "closing" | "closed";

/**
 * The events a `Protocol` parsed and not yet taken, each with its payload
 * size in bytes (text as UTF-8; undefined when unknown), so that whoever
 * takes a message need not encode it again to count it.
 */
export class EventQueue {
  readonly #events = new Fifo<ProtocolEvent>();
  readonly #sizes = new Fifo<number | undefined>();
  /** The size of the event {@linkcode EventQueue.shift} returned last. */
  taken: number | undefined;

  /** How many events wait. */
  get size(): number {
    return this.#events.size;
  }

  /**
   * Adds an event.
   *
   * @param event The event.
   * @param bytes Its payload size, if known.
   */
  push(event: ProtocolEvent, bytes: number | undefined): void {
    this.#events.push(event);
    this.#sizes.push(bytes);
  }

  /**
   * Takes the oldest event; its size becomes {@linkcode EventQueue.taken}.
   *
   * @returns The event, or undefined.
   */
  shift(): ProtocolEvent | undefined {
    this.taken = this.#sizes.shift();
    return this.#events.shift();
  }

  /**
   * Takes every event.
   *
   * @returns The events, oldest first.
   */
  takeAll(): ProtocolEvent[] {
    this.#sizes.takeAll();
    return this.#events.takeAll();
  }
}
