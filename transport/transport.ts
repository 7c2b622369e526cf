/**
 * The transport layer: the small interface between the client's
 * semantics (`client/websocket_client.ts`) and the I/O that moves its messages. There are two:
 *
 * - `transport/socket.ts`: wsbeat's own RFC 6455 connection (`protocol/protocol.ts`) over
 *   `Deno.connect`/`Deno.startTls`, the default wherever `Deno.connect`
 *   exists. It sends ping frames, pauses reading for a slow consumer, and
 *   releases a dead connection at once.
 * - `transport/native.ts`: the runtime's Web `WebSocket`, for browsers, Node
 *   and Bun, or chosen on Deno with `transport: "native"`.
 *
 * A transport is created connecting; `opened` settles once. After it opens,
 * the transport calls its handler for each message and pong, and calls
 * `onClosed` exactly once, when nothing of the connection is left open.
 *
 * @module
 */

import type { ProtocolError } from "../util/errors.ts";
import type { Protocol } from "../protocol/protocol.ts";

/** Which transport {@linkcode connect} uses; see the module doc. */
export type TransportName = "wsbeat" | "native";

/** How a transport's connection ended, given to {@linkcode TransportHandler.onClosed}. */
export interface TransportEnd {
  /** The close code: the peer's, the one we failed with, or 1006 without a close frame. */
  code: number;
  /** The close reason that goes with `code`. */
  reason: string;
  /** Whether close frames went both ways before TCP closed. */
  wasClean: boolean;
  /** Which side sent the first close frame, if any. */
  firstClose: "local" | "remote" | undefined;
  /** The error behind an abnormal end: a `ProtocolError`, a network error, an abort reason. */
  error?: Error;
}

/**
 * How the closing handshake began, when the transport learns of it before
 * the client does: the peer's close frame arrived, or the peer broke a rule
 * of RFC 6455 and the protocol failed the connection (a close frame with
 * `error.closeCode` went out). Given to {@linkcode TransportHandler.onClosing}.
 */
export type ClosingStart =
  | { by: "peer"; code: number; reason: string }
  | { by: "failure"; error: ProtocolError };

/** What a transport calls as things happen; the client implements it. */
export interface TransportHandler {
  /**
   * A whole message arrived.
   *
   * @param data The message.
   * @param bytes Its payload size (text as UTF-8) when the transport knows it
   *   without counting (the protocol parsed it), so that the client need not
   *   encode a text message again to count it; else undefined.
   */
  onMessage(data: string | Uint8Array, bytes?: number): void;
  /** A pong frame arrived (only on transports that can ping). */
  onPong(data: Uint8Array): void;
  /** A ping frame arrived and was answered (only on transports that see them): for a trace. */
  onPing?(data: Uint8Array): void;
  /**
   * The closing handshake began on the peer's side, or the protocol failed the
   * connection: from now on nothing can be sent, and the first cause of the
   * close is this one. Called at most once, before {@linkcode onClosed}, and
   * not when the client's own `close()` or `abort()` began it (transports that
   * cannot see close frames, such as the native one, never call it).
   */
  onClosing?(start: ClosingStart): void;
  /** The connection is over and released. Called once, after `opened` settled. */
  onClosed(end: TransportEnd): void;
  /** A write to the socket completed, so `bufferedAmount` went down. */
  onDrain?(): void;
  /**
   * Called by a transport that reads in bulk after it handed on a read's
   * messages: a promise while the application has not taken them yet; the
   * transport reads again once it resolves (the client resolves it when the
   * application has taken them, or after one turn of the event loop, so
   * that reading stays at most one read ahead of a prompt consumer).
   */
  settle?(): Promise<void> | undefined;
}

/** The server's answer to the opening handshake, as {@linkcode Transport.response} holds it. */
export interface HandshakeResponse {
  /** The HTTP status: 101. */
  status: number;
  /** The status line's reason phrase, e.g. `"Switching Protocols"`. */
  statusText: string;
  /** The response's headers. */
  headers: Headers;
}

/** The I/O under a client: see the module doc. */
export interface Transport {
  /** The server's answer to the opening handshake, once open (transports that see it). */
  readonly response?: HandshakeResponse | undefined;
  /** The URL, with credentials masked: for messages. */
  readonly url: string;
  /** Resolves when the connection is open; rejects with a `ConnectError` or an abort reason. */
  readonly opened: Promise<void>;
  /** The subprotocol the server chose, or `""`. */
  readonly protocol: string;
  /** The extensions the server chose, or `""`. */
  readonly extensions: string;
  /** Bytes handed to `send()` (and control frames) not yet written to the socket. */
  readonly bufferedAmount: number;
  /** Whether `ping()` sends a protocol ping frame. */
  readonly canPing: boolean;
  /** Whether `pause()` really stops reading (TCP flow control). */
  readonly canPause: boolean;
  /**
   * Payload bytes of the messages sent so far (text as UTF-8), when the
   * transport counts them; the client counts them itself otherwise.
   */
  readonly bytesSent?: number;
  /** Payload bytes of the messages received so far, as {@linkcode Transport.bytesSent}. */
  readonly bytesReceived?: number;
  /**
   * How many reads from the socket have completed, when the transport counts
   * them: the heartbeat watches it to tell input still arriving from none.
   */
  readonly reads?: number;
  /** Sets the handler; called once, before the event loop turns. */
  attach(handler: TransportHandler): void;
  /** Sends a text (string) or binary message. */
  send(data: string | Uint8Array): void;
  /** Sends a ping frame with `payload` (at most 125 bytes). */
  ping(payload: Uint8Array): void;
  /** Starts the closing handshake; `onClosed` follows when the peer answers. */
  close(code: number, reason: string): void;
  /**
   * Ends the connection now. While connecting, `opened` rejects with
   * `reason`. Once open, a close frame with `code` is sent if it can go out
   * at once, the socket is released, and `onClosed` follows promptly.
   */
  abort(reason: Error, code?: number): void;
  /** Stops reading from the socket (a no-op where `canPause` is false). */
  pause(): void;
  /** Reads again after `pause()`. */
  resume(): void;
}

/**
 * How a connection driven by a `Protocol` (the wsbeat transport's) ended,
 * from what the protocol recorded: failed by it (the close frame it sent,
 * with the rule broken), a closing handshake (the peer's close frame), or
 * neither (1006, with the I/O error or abort reason).
 *
 * @param protocol The connection's protocol.
 * @param firstClose Which side sent the first close frame, if any.
 * @param error Why TCP closed without a closing handshake, if known.
 * @returns The end, for {@linkcode TransportHandler.onClosed}.
 */
export function protocolEnd(
  protocol: Pick<Protocol, "closeSent" | "closeReceived" | "failure">,
  firstClose: TransportEnd["firstClose"],
  error: Error | undefined,
): TransportEnd {
  const { closeSent: sent, closeReceived: received, failure } = protocol;
  if (failure && sent) {
    const { code, reason } = sent;
    return { code, reason, wasClean: false, firstClose: "local", error: failure };
  }
  if (sent && received) {
    return { code: received.code, reason: received.reason, wasClean: true, firstClose };
  }
  error ??= new Error("the connection closed without a closing handshake");
  return { code: 1006, reason: "", wasClean: false, firstClose, error };
}
