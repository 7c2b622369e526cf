/**
 * The echo server's settings: the types of `serve()`'s options and
 * results, each limit's default with the reason for it, and the frozen
 * {@linkcode ServeSettings} that `resolveServeOptions` (`serve/resolve.ts`)
 * checks them into, once: `serve()` (`serve.ts`) calls it, and the server,
 * each connection (`serve/connection.ts`) and its handshake
 * (`serve/handshake.ts`) read only that. No sockets here.
 *
 * @module
 */

import { isValidCloseCode } from "../protocol/close_payload.ts";
import { MAX_HEAD_BYTES } from "../protocol/http.ts";
import { DEFAULT_MAX_MESSAGE_SIZE } from "../protocol/events.ts";
import type { ServerCompressionOptions } from "../protocol/deflate_extension.ts";

export type { ServerCompressionOptions } from "../protocol/deflate_extension.ts";

/**
 * A connection as seen by the server, for {@linkcode ServeOptions.onConnect}.
 * Its texts are as the client sent them (credentials included, and any
 * character but a control byte): escape them before printing.
 */
export interface ConnectionInfo {
  /** A number, counting up from 1, for each TCP connection accepted (refused ones included). */
  id: number;
  /** The client's address, `host:port`. */
  remoteAddr: string;
  /** The request's path and query. */
  path: string;
  /** The handshake request's headers. */
  headers: Headers;
  /** The subprotocol chosen, or `""`. */
  protocol: string;
}

/** Options for `serve()`. Times are in milliseconds, sizes in bytes. */
export interface ServeOptions {
  /**
   * The port to listen on; 0 picks a free one (read it from
   * {@linkcode EchoServer.port}).
   *
   * @default {0}
   */
  port?: number;
  /**
   * The address to listen on.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /** Signal that stops the server, like {@linkcode EchoServer.close}. */
  signal?: AbortSignal;
  /**
   * Subprotocols the server accepts; it picks the first the client offers
   * that is in this list. When unset it accepts the client's first offer.
   */
  protocols?: string[];
  /** PEM certificate chain, to serve `wss:` (with {@linkcode ServeOptions.key}). */
  cert?: string;
  /** PEM private key, to serve `wss:` (with {@linkcode ServeOptions.cert}). */
  key?: string;

  // --- limits -----------------------------------------------------------------

  /**
   * The largest message accepted (all its fragments together). A bigger one
   * fails the connection with 1009 as soon as a frame header announces it,
   * before its payload is buffered, so a client sending continuation frames
   * forever costs at most this much. 16 MiB is the wsbeat client's own
   * limit: whatever it accepts, the server echoes. `Infinity` sets no limit.
   *
   * @default {16777216} ({@linkcode DEFAULT_SERVE_MAX_MESSAGE_SIZE})
   */
  maxMessageSize?: number;
  /**
   * permessage-deflate (RFC 7692): `true` accepts a client's offer with the
   * defaults, an object tunes what is accepted (`clientNoContextTakeover`,
   * `clientMaxWindowBits`) and the compression (`threshold`, `level`),
   * `false` declines every offer. Compressed messages are inflated
   * (`maxMessageSize` counts the inflated size, so a decompression bomb
   * stops there with 1009) and replies of at least `threshold` (1 KiB)
   * bytes go out compressed, each on its own (`server_no_context_takeover`
   * is answered). A client that keeps its context (browsers, Node `ws`)
   * costs 32 KiB per connection for its window, once it sent a compressed
   * message; `clientNoContextTakeover: true` or a smaller
   * `clientMaxWindowBits` lowers that. See docs/compression.md.
   *
   * @default {false} as Node `ws`'s server: 32 KiB per connection with a client's context takeover, and 10-80 µs of CPU per compressed message, are the operator's choice to make
   */
  compression?: boolean | ServerCompressionOptions;
  /**
   * The most TCP connections held at once, those still in their opening
   * handshake included. Past it a new connection is answered HTTP 503 at
   * once and closed, so it costs a socket for a moment only. 1000 stays
   * below the common open-file limit of 1024, so refusing never runs out of
   * descriptors; raise both together. If the process does run out
   * (`EMFILE`), accepting pauses briefly and resumes; nothing crashes.
   *
   * @default {1000} ({@linkcode DEFAULT_MAX_CONNECTIONS})
   */
  maxConnections?: number;
  /**
   * How long a client has to complete its opening handshake (TLS included)
   * before the connection is closed: a real client sends its request at
   * once, while a half-sent one (slowloris) would hold a connection forever.
   * 10 s leaves room for a slow link. `Infinity` waits forever. (On `wss:`,
   * Deno 2.9 keeps the socket of a client that never completes TLS open
   * until that client closes it, though the connection's place is freed.)
   *
   * @default {10000} ({@linkcode DEFAULT_HANDSHAKE_TIMEOUT})
   */
  handshakeTimeout?: number;
  /**
   * The largest request head (request line and headers) accepted; a bigger
   * one is answered HTTP 431. 16 KiB is far above what browsers and
   * WebSocket clients send, even with cookies.
   *
   * @default {16384} ({@linkcode DEFAULT_MAX_HEADER_SIZE})
   */
  maxHeaderSize?: number;
  /**
   * The most bytes of replies a connection may hold unsent (written to the
   * socket but not accepted by it, or waiting for `echoDelay`). Past it the
   * server stops reading from that client, so a client that sends without
   * reading is held back by TCP flow control instead of growing the server;
   * reading resumes once the client catches up, and nothing is lost or
   * dropped. A connection's memory is then bounded by about this plus two
   * messages. 1 MiB keeps a fast link busy. `Infinity` never stops reading.
   *
   * @default {1048576} ({@linkcode DEFAULT_MAX_UNSENT_BYTES})
   */
  maxUnsentBytes?: number;
  /**
   * How long the server waits for the client's answer after sending a close
   * frame (at shutdown, idle timeout, `closeWith`, a protocol error), or for
   * its last bytes to be written, before it closes the TCP connection
   * anyway: a client that stopped reading cannot hold the server open.
   * 2 s is ample for a live client and keeps Ctrl-C prompt.
   *
   * @default {2000} ({@linkcode DEFAULT_SERVE_CLOSE_TIMEOUT})
   */
  closeTimeout?: number;

  // --- faults -------------------------------------------------------------------

  /**
   * Close a client that has sent no message for this long, with code 1001
   * and reason `idle timeout`: the behaviour of servers that drop idle
   * clients (seed 000: 30 s). Each message from the client resets it; ping
   * and pong frames do not, as on those servers.
   *
   * @default {undefined}
   */
  idleTimeout?: number;
  /**
   * Answer this text message with this one instead of echoing it.
   *
   * @default {undefined}
   */
  pong?: { ping: string; pong: string };
  /**
   * Answer the first `n` messages of each connection, then nothing at all:
   * no echo, no pong, no close reply, no idle close and no server ping
   * follow, while the TCP connection stays open. A peer alive at the TCP
   * level and dead above it, which only a heartbeat finds. Only data
   * messages count, not pings: for a client that only pings, 0 stalls right
   * after the opening handshake. A function is called per connection, for
   * random faults; `Infinity` (or a result that is not a whole number) never
   * stalls. The server still reads a stalled connection, throwing away what
   * it reads (up to 1 MiB, then it stops reading), only to see the client
   * leave: the connection and its place in `maxConnections` are released as
   * soon as the client closes TCP, and after `stallFor` at the latest.
   *
   * @default {undefined}
   */
  stallAfter?: number | (() => number);
  /**
   * How long a connection stalled by `stallAfter` is held, at most: then
   * the server closes TCP (no close frame). 60 s is longer than it takes a
   * heartbeat to find the stall (15 s with wsbeat's defaults, 40 s with
   * Python `websockets`' ping interval and timeout of 20 s each), and keeps
   * a client without a heartbeat that never closes from holding a place in
   * `maxConnections` for more than a minute. A client that closes TCP
   * releases its connection at once, whatever this is.
   *
   * @default {60000} ({@linkcode DEFAULT_STALL_FOR})
   */
  stallFor?: number;
  /**
   * Cut each connection (TCP closed, no close frame) right after writing
   * the `n`-th reply, 0 for right after the opening handshake; what the
   * client sent after the `n`-th message is ignored. A function is called
   * per connection, for random faults; `Infinity` (or a result that is not
   * a whole number) never drops.
   *
   * @default {undefined}
   */
  dropAfter?: number | (() => number);
  /**
   * Echo the first message of each connection, then close with this code
   * and reason. The code must be one a server may send (1000-1003,
   * 1007-1014, 3000-4999) and the reason at most 123 bytes of UTF-8.
   *
   * @default {undefined}
   */
  closeWith?: { code: number; reason?: string };
  /**
   * Wait this long before each reply. Replies keep their order, and waiting
   * ones count towards `maxUnsentBytes`.
   *
   * @default {0}
   */
  echoDelay?: number;
  /**
   * Send each reply as `n` frames (a first frame and `n - 1` continuations,
   * split by bytes, so a character may straddle two frames) with a ping
   * frame between each two: a client must reassemble the message and answer
   * the pings in the middle of it. 1 to 1000; 1 sends whole messages.
   *
   * @default {1}
   */
  fragment?: number;
  /**
   * Send a ping frame to each client every this many milliseconds; the
   * pongs are not checked. Tests that a client answers pings by itself.
   *
   * @default {undefined}
   */
  pingInterval?: number;
  /**
   * Answer every opening handshake with this HTTP status (400 to 599)
   * instead of switching protocols, e.g. 403 or 503.
   *
   * @default {undefined}
   */
  rejectStatus?: number;

  // --- hooks --------------------------------------------------------------------

  /** Called when a client has connected (after the opening handshake). */
  onConnect?: (info: ConnectionInfo) => void;
  /**
   * Called when a client's connection has closed: with the code and reason
   * of the first close frame sent or received (the server's 1001 at
   * shutdown, a client's own code, 1009 for a message too large), or 1006
   * and `""` when none went either way (a dropped connection). A client's
   * reason is as it sent it: escape it before printing.
   */
  onDisconnect?: (info: ConnectionInfo, code: number, reason: string) => void;
  /**
   * Receives one line per connection event: open, close (with its code and
   * how long the connection lasted), refused for a limit, handshake rejected
   * or timed out, reading stopped for `maxUnsentBytes`, and accept errors
   * such as `EMFILE` (at most one line in 10 s, then one when accepting
   * works again). Lines have no newline and no stack trace. What a client
   * sent (its path, subprotocol, close reason) is shown with control
   * characters escaped (`\x1b` for ESC) and cut at 256 characters, and the
   * values of credential query parameters (`token`, `key`, `auth`...) as
   * `***`; header values are never logged. `wsbeat serve` writes them on
   * stderr unless `-q`.
   *
   * @default {undefined}
   */
  log?: (line: string) => void;
}

/** A running server, as returned by `serve()`. */
export interface EchoServer extends AsyncDisposable {
  /** The URL to connect to, `ws://host:port` (or `wss:`). */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** The address it listens on. */
  readonly hostname: string;
  /** How many clients are connected now (opening handshake done, TCP not yet closed). */
  readonly connections: number;
  /**
   * Stops listening, sends every client a close frame with 1001 (`server
   * shutting down`), waits at most `closeTimeout` for their answers, then
   * closes the TCP connections left. Resolves when everything is released;
   * never rejects. Calling it again returns the same promise.
   */
  close(): Promise<void>;
}

/** Default {@linkcode ServeOptions.maxMessageSize}. */
export const DEFAULT_SERVE_MAX_MESSAGE_SIZE: number = DEFAULT_MAX_MESSAGE_SIZE;
/** Default {@linkcode ServeOptions.compression}: declined. */
export const DEFAULT_SERVE_COMPRESSION = false;
/** Default {@linkcode ServeOptions.maxConnections}. */
export const DEFAULT_MAX_CONNECTIONS = 1000;
/** Default {@linkcode ServeOptions.handshakeTimeout}. */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;
/** Default {@linkcode ServeOptions.maxHeaderSize}. */
export const DEFAULT_MAX_HEADER_SIZE: number = MAX_HEAD_BYTES;
/** Default {@linkcode ServeOptions.maxUnsentBytes}. */
export const DEFAULT_MAX_UNSENT_BYTES = 1024 * 1024;
/** Default {@linkcode ServeOptions.closeTimeout}. */
export const DEFAULT_SERVE_CLOSE_TIMEOUT = 2_000;
/** Default {@linkcode ServeOptions.stallFor}. */
export const DEFAULT_STALL_FOR = 60_000;

/**
 * {@linkcode ServeOptions} once resolved: checked, defaults filled in,
 * frozen. What the server and each connection read.
 */
export interface ServeSettings {
  readonly port: number;
  readonly hostname: string;
  readonly signal: AbortSignal | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly maxConnections: number;
  readonly maxMessageSize: number;
  /** {@linkcode ServeOptions.compression}: what to accept, or `undefined` to decline. */
  readonly compression: Readonly<ServerCompressionOptions> | undefined;
  readonly handshakeTimeout: number;
  readonly maxHeaderSize: number;
  readonly maxUnsentBytes: number;
  readonly closeTimeout: number;
  readonly idleTimeout: number | undefined;
  readonly pong: { readonly ping: string; readonly pong: string } | undefined;
  readonly stallAfter: number | (() => number) | undefined;
  readonly stallFor: number;
  readonly dropAfter: number | (() => number) | undefined;
  readonly closeWith: { readonly code: number; readonly reason: string } | undefined;
  readonly echoDelay: number;
  readonly fragment: number;
  readonly pingInterval: number | undefined;
  readonly rejectStatus: number | undefined;
  readonly protocols: string[] | undefined;
  readonly onConnect: ServeOptions["onConnect"];
  readonly onDisconnect: ServeOptions["onDisconnect"];
  readonly log: (line: string) => void;
}

/**
 * Checks a `closeWith` value: a code a server may send and a reason of at
 * most 123 bytes of UTF-8.
 *
 * @param value The option as given.
 * @returns The code, and the reason (`""` when none).
 * @throws {RangeError} Naming the code or the reason's length when either is out of range.
 * @throws {TypeError} When it is not an object with a numeric code and a string reason.
 */
export function checkCloseWith(value: unknown): { code: number; reason: string } {
  const { code, reason = "" } = (typeof value === "object" && value !== null ? value : {}) as {
    code?: unknown;
    reason?: unknown;
  };
  if (typeof code !== "number" || typeof reason !== "string") {
    throw new TypeError(
      `Cannot use closeWith as it is not { code: number, reason?: string }: current value is ${
        JSON.stringify(value) ?? String(value)
      }`,
    );
  }
  if (!isValidCloseCode(code)) {
    throw new RangeError(
      `Cannot use closeWith.code as it is not a code a server may send (1000-1003, 1007-1014, 3000-4999): current value is ${code}`,
    );
  }
  const bytes = new TextEncoder().encode(reason).length;
  if (bytes > 123) {
    throw new RangeError(
      `Cannot use closeWith.reason as it is over 123 bytes of UTF-8: current value is ${bytes} bytes`,
    );
  }
  return { code, reason };
}

/**
 * The per-connection count of a fault option: a function's result, or the
 * number; Infinity for "never" (unset, or a result that is not a whole number).
 */
export function faultCount(value: number | (() => number) | undefined): number {
  const n = typeof value === "function" ? value() : value;
  return typeof n === "number" && Number.isInteger(n) && n >= 0 ? n : Infinity;
}
