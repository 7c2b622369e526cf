/**
 * The error classes every layer of wsbeat may throw, in one small file that
 * each layer imports: {@linkcode ConnectError} (the opening failed),
 * {@linkcode ConnectionClosedError} (the connection is closed) and
 * {@linkcode ProtocolError} (the peer broke RFC 6455) and
 * {@linkcode TooSlowError} (a heartbeat reply, or `failAfter` work, was late:
 * thrown by `heartbeat.ts` and `heartbeat/loop.ts`). `ReconnectError` stays
 * with `reconnecting()`.
 *
 * @module
 */

/** Why {@linkcode ConnectError} was thrown: see its table. */
export type ConnectErrorKind =
  | "status"
  | "handshake"
  | "refused"
  | "dns"
  | "tls"
  | "timeout"
  | "aborted"
  | "rejected"
  | "network";

/**
 * The connection could not be opened. `kind` says why, `status` carries the
 * HTTP status when the server refused the upgrade, and `cause` the runtime's
 * error.
 *
 * | kind | meaning |
 * | --- | --- |
 * | `"status"` | the server answered the handshake with HTTP `status` |
 * | `"handshake"` | the server's answer broke RFC 6455 (wrong `Sec-WebSocket-Accept`, a subprotocol or extension never offered, ...) |
 * | `"refused"` | nothing accepted the TCP connection |
 * | `"dns"` | the host name did not resolve |
 * | `"tls"` | TLS failed: a certificate not trusted or not valid for the host, the server's alert (one that wants a client certificate), the server closing during the TLS handshake, or a `wss:` URL for a server that does not speak TLS (or the reverse) |
 * | `"timeout"` | the opening did not finish within `connectTimeout`; the message names the step it stopped (TCP, a proxy's `CONNECT`, TLS, the handshake) |
 * | `"aborted"` | `close()` was called while connecting |
 * | `"rejected"` | the server answered HTTP but refused the upgrade, and the runtime hides the status (Node, browsers): see `reconnecting()` for how often it is retried |
 * | `"network"` | any other network failure |
 *
 * On the wsbeat transport the kind comes from the runtime error's class and
 * from the step of opening that failed, never from the words of a message.
 * What can be told apart depends on the runtime: Deno, Node 22+ and Bun
 * report a refused port as `"refused"` and an upgrade answered 403 as
 * `"status"` (Node through a plain `GET` of the URL); a browser says only
 * `"network"` and `"rejected"` (the README has the table per runtime).
 *
 * @example Tell a refused connection from a rejected one (Deno, Node, Bun; a browser says "network")
 * ```ts
 * import { connect, ConnectError } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * const error = await connect("ws://127.0.0.1:9/").catch((e) => e);
 * assert.ok(error instanceof ConnectError);
 * assert.equal(error.kind, "refused");
 * assert.equal(error.message, "Cannot connect to ws://127.0.0.1:9/: connection refused");
 * ```
 */
export class ConnectError extends Error {
  /** The URL that could not be opened. */
  readonly url: string;
  /** Why the connection failed. */
  readonly kind: ConnectErrorKind;
  /** The HTTP status the server answered with, for kinds `"status"` and `"handshake"`. */
  readonly status: number | undefined;
  /**
   * The headers of the server's answer when it refused the upgrade (kind
   * `"status"`, wsbeat transport), e.g. `Retry-After` or `WWW-Authenticate`.
   */
  readonly headers: Headers | undefined;
  /**
   * The start of the body of that answer, as text: at most 4096 bytes
   * (decoded as UTF-8), and only what arrived with the head or
   * within `Content-Length` (waited for at most a second). Never part of
   * the message.
   */
  readonly body: string | undefined;
  /**
   * Milliseconds the server asked to wait before trying again: its
   * `Retry-After` (seconds or an HTTP date) on a 429 or 503, else undefined.
   */
  readonly retryAfter: number | undefined;

  /**
   * Constructs a new instance.
   *
   * @param url The URL that could not be opened (credentials already masked).
   * @param kind Why the connection failed.
   * @param detail What went wrong, appended to the message.
   * @param options `cause`, and for kind `"status"` the `status`, `headers`,
   *   `body` and `retryAfter` of the server's answer.
   */
  constructor(
    url: string,
    kind: ConnectErrorKind,
    detail: string,
    options: ErrorOptions & {
      status?: number;
      headers?: Headers;
      body?: string;
      retryAfter?: number;
    } = {},
  ) {
    super(`Cannot connect to ${url}: ${detail}`, options);
    this.name = "ConnectError";
    this.url = url;
    this.kind = kind;
    this.status = options.status;
    this.headers = options.headers;
    this.body = options.body;
    this.retryAfter = options.retryAfter;
  }
}

/** The most bytes of a refused upgrade's body kept in {@linkcode ConnectError.body}. */
export const MAX_ERROR_BODY = 4096;

/**
 * The connection is closed (or closing), so the operation cannot go on.
 *
 * Thrown by `WebSocketClient.send` and rejected by `receive()`, `ping()` and
 * by iteration after an abnormal close. `code` and `reason` describe the
 * close, `cause` the error behind it.
 *
 * @example Catch a send on a closed connection
 * ```ts ignore
 * import { connect, ConnectionClosedError } from "@wsbeat/wsbeat";
 *
 * const ws = await connect("ws://127.0.0.1:9000");
 * await ws.close();
 * try {
 *   ws.send("too late");
 * } catch (error) {
 *   if (error instanceof ConnectionClosedError) console.error(error.message);
 * }
 * ```
 */
export class ConnectionClosedError extends Error {
  /** The close code, 1006 when no close frame was received. */
  readonly code: number;
  /** The close reason, if the peer gave one. */
  readonly reason: string;

  /**
   * Constructs a new instance.
   *
   * @param code The close code.
   * @param reason The close reason.
   * @param message What could not be done, and why.
   * @param options Standard error options, such as `cause`.
   */
  constructor(code: number, reason: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionClosedError";
    this.code = code;
    this.reason = reason;
  }
}

/**
 * The peer broke a rule of RFC 6455, so the connection is failed (section
 * 7.1.7) with `closeCode`: 1002 for a framing or handshake error, 1007 for
 * invalid UTF-8, 1009 for a message over the size limit. `rule` names the
 * rule; `message` is `"Protocol error: "` and the rule, as it always was.
 *
 * @example The error behind a 1002 close
 * ```ts
 * import { ProtocolError } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * const error = new ProtocolError(1002, "reserved bits set without an extension");
 * assert.equal(error.closeCode, 1002);
 * assert.equal(error.rule, "reserved bits set without an extension");
 * assert.equal(error.message, "Protocol error: reserved bits set without an extension");
 * ```
 */
export class ProtocolError extends Error {
  /** The close code the connection is failed with: 1002, 1007 or 1009. */
  readonly closeCode: number;
  /** The rule that was broken, in a few words (the message without its `"Protocol error: "`). */
  readonly rule: string;

  /**
   * Constructs a new instance.
   *
   * @param closeCode The close code to fail the connection with.
   * @param rule The rule that was broken, in a few words.
   * @param options Standard error options, such as `cause`.
   */
  constructor(closeCode: number, rule: string, options?: ErrorOptions) {
    super(`Protocol error: ${rule}`, options);
    this.name = "ProtocolError";
    this.closeCode = closeCode;
    this.rule = rule;
  }
}

/**
 * Rejected by {@linkcode failAfter} (and so by {@linkcode heartbeat}) when
 * the work did not settle in time. Named after trio's `TooSlowError`.
 *
 * @example Tell a timeout from other failures
 * ```ts
 * import { failAfter, sleep, TooSlowError } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * const error = await failAfter(10, (signal) => sleep(1_000, { signal }))
 *   .catch((e) => e);
 * assert.ok(error instanceof TooSlowError);
 * assert.equal(error.timeout, 10);
 * ```
 */
export class TooSlowError extends Error {
  /** The bound that was exceeded, in milliseconds. */
  readonly timeout: number;

  /**
   * Constructs a new instance.
   *
   * @param timeout The bound that was exceeded, in milliseconds.
   * @param message What was too slow; defaults to a sentence naming the bound.
   * @param options Standard error options, such as `cause`.
   */
  constructor(timeout: number, message?: string, options?: ErrorOptions) {
    super(message ?? `Operation did not finish within ${timeout} ms`, options);
    this.name = "TooSlowError";
    this.timeout = timeout;
  }
}
