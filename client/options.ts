/**
 * The client layer: the types of `connect()`'s options and results, each
 * option's default (one constant each, named in its `@default`), and the
 * types of the options once resolved: {@linkcode CheckedOptions} and
 * {@linkcode CheckedConnectOptions}, frozen, every default filled in.
 *
 * ## The options pipeline
 *
 * Options are checked and defaulted once, at the entry, and only read below:
 *
 * 1. `connect(url, options)` (`client.ts`) calls `resolveConnectOptions`
 *    (`client/resolve.ts`), which checks every option with the small checkers
 *    of `util/checks.ts` and returns a frozen {@linkcode CheckedConnectOptions}.
 * 2. `openChecked(url, checked)` (`client.ts`) checks the URL, builds the
 *    transport from `checked` (`TcpTransport` gets `protocols`, `headers`,
 *    `caCerts`, `proxy`, `clientCert`, `maxMessageSize`, `closeTimeout`,
 *    `connectTimeout`; `NativeTransport` the protocols, headers and `client`),
 *    and hands the same object to `new WebSocketClient(transport, checked)`.
 * 3. The constructor (`client/websocket_client.ts`) calls
 *    `resolveClientOptions`, which returns an object it resolved itself as
 *    it is (a frozen object remembered in a private `WeakSet`: no caller can
 *    forge one) and resolves anything else, so a user's own
 *    `new WebSocketClient(socket, options)` is still checked. It passes
 *    `sendHighWaterMark` to `Flow`, `heartbeat` (interval and timeout
 *    filled in) to `Probes` and `Watchdogs`, `maxQueuedMessages` and
 *    `maxQueuedBytes` to `Inbox`, and keeps `connectTimeout`,
 *    `closeTimeout`, `signal` and `quietEnd` for itself.
 *
 * `reconnecting()` and `ReconnectingClient` (`reconnect/`) resolve their
 * options once, before the first attempt, and call `openChecked` per
 * attempt; what `prepare` returns (headers, subprotocols) goes through
 * `resolveAttempt`, which checks only those. `serve()` does the same with
 * `resolveServeOptions` (`serve/options.ts`).
 *
 * @module
 */

import type { TransportName } from "../transport/transport.ts";
import type { AnswerFunction } from "../transport/tap.ts";
import type { TraceListener } from "../transport/trace.ts";
import type { WireOptions } from "../transport/wire_options.ts";
import type { ClientCompressionOptions } from "../protocol/deflate_extension.ts";

export type { ClientCompressionOptions } from "../protocol/deflate_extension.ts";

export { DEFAULT_INTERVAL, DEFAULT_TIMEOUT } from "../heartbeat.ts";
/** Default {@linkcode ConnectOptions.maxMessageSize}, the protocol's own: 16 MiB. */
export { DEFAULT_MAX_MESSAGE_SIZE } from "../protocol/events.ts";

export type { CloseInfo, CloseInitiator } from "./close_info.ts";

/**
 * A received message: text as `string`, binary as `Uint8Array`.
 *
 * The one caveat: a binary message up to 4 KiB is a view of a 32 KiB buffer
 * that other messages share (as Node's `Buffer` pool does), because a buffer
 * of its own cost more than the rest of receiving it (about 0.7 µs, Deno
 * 2.9). Its bytes never change, so it can be kept as it is; read it through
 * the view, not through its `buffer` (or `slice()` it for a buffer of its own).
 */
export type Message = string | Uint8Array;

/** What {@linkcode WebSocketClient.send} accepts. */
export type SendData = string | ArrayBuffer | ArrayBufferView;

/** Round-trip times measured by {@linkcode WebSocketClient.ping}, in ms. */
export interface LatencyStats {
  /** The latest round trip. */
  last: number;
  /** The shortest round trip in the window. */
  min: number;
  /** The mean of the window. */
  avg: number;
  /** The 99th percentile of the window. */
  p99: number;
  /** How many samples the window holds (at most 100). */
  samples: number;
}

/** Counters of a {@linkcode WebSocketClient}, as read by its `stats` getter. */
export interface ClientStats {
  /** Milliseconds from creating the socket to its `open` event. */
  openMs: number | undefined;
  /** When the socket opened, as `Date.now()`. */
  openedAt: number | undefined;
  /** Milliseconds the connection has been open, or stayed open once closed. */
  uptimeMs: number;
  /** Messages sent, heartbeat probes included. */
  messagesSent: number;
  /** Payload bytes sent (text as UTF-8). */
  bytesSent: number;
  /** Messages received, heartbeat replies included. */
  messagesReceived: number;
  /** Payload bytes received (text as UTF-8). */
  bytesReceived: number;
  /** Round-trip times over the latest 100 pings, if any were answered. */
  latency: LatencyStats | undefined;
  /** Whether reading is paused now because the application fell behind. */
  readPaused: boolean;
  /**
   * How many times reading was paused because the received messages reached
   * `maxQueuedMessages` or `maxQueuedBytes` (wsbeat transport).
   */
  readPauses: number;
  /**
   * The longest a heartbeat timer fired after its time, in milliseconds: how
   * late the event loop ran (a consumer that blocks it shows here). A late
   * deadline is not blamed on the peer before the client has taken in what
   * arrived meanwhile. 0 without a heartbeat.
   */
  eventLoopLag: number;
}

/** The state of a {@linkcode WebSocketClient}. */
export type ClientState = "connecting" | "open" | "closing" | "closed";

/**
 * An application-level probe, for servers that want a heartbeat message of
 * their own (the seed-000 trading API). Without `message` and `reply`, the
 * heartbeat on the wsbeat transport sends protocol ping frames, which every
 * conforming server answers; the native transport cannot, so there the probe
 * is always an application message (default `"ping"`).
 */
export interface ProbeOptions {
  /**
   * The probe to send: text, bytes, or a function of the probe's sequence
   * number (1, 2, 3, ...), e.g. `(id) => JSON.stringify({ op: "ping", id })`.
   * Setting it (or `reply`) makes the heartbeat use application probes.
   *
   * @default {"ping" (application probes only)}
   */
  message?: string | Uint8Array | ((seq: number) => string | Uint8Array);
  /**
   * How to recognise the reply to an application probe.
   *
   * - Unset: the probe's echo (a message equal to the probe, as an echo
   *   server sends back) answers it and never reaches the application; any
   *   other message received after the probe also proves the peer alive, and
   *   is delivered as usual. So the default native probe works against echo
   *   servers and against servers that send data at least once per
   *   `timeout`; for a server that answers with a message of its own (a
   *   `pong`), set `reply`.
   * - A string (or bytes): a message equal to it answers the oldest
   *   outstanding probe. Such messages are heartbeat traffic and never reach
   *   the application.
   * - A predicate of (message, sequence number): a message for which it
   *   returns `true` answers that probe and does not reach the application.
   *   It is called only while probes are outstanding; a throw counts as no
   *   match, and messages that match nothing are delivered.
   *
   * @default {undefined}
   */
  reply?: string | Uint8Array | ((message: Message, seq: number) => boolean);
}

/**
 * Heartbeat settings for {@linkcode connect}: a probe every `interval` ms,
 * failing after `timeout` ms without a reply.
 */
export interface ClientHeartbeatOptions extends ProbeOptions {
  /**
   * Milliseconds to sleep after each reply before the next probe.
   *
   * @default {10000} ({@linkcode DEFAULT_INTERVAL})
   */
  interval?: number;
  /**
   * Milliseconds to wait for a reply before the connection is declared dead.
   *
   * @default {5000} ({@linkcode DEFAULT_TIMEOUT})
   */
  timeout?: number;
  /** Called with each round-trip time in milliseconds. */
  onBeat?: (rtt: number) => void;
}

/** Options for {@linkcode WebSocketClient} (and so for {@linkcode connect}). */
export interface ClientOptions {
  /**
   * Signal that aborts connecting (rejecting with `signal.reason`) and, once
   * the connection is open, closes it with code 1000.
   */
  signal?: AbortSignal;
  /**
   * Milliseconds to wait for the connection and opening handshake; the
   * native socket has no bound of its own. `Infinity` waits forever.
   *
   * @default {10000} ({@linkcode DEFAULT_CONNECT_TIMEOUT})
   */
  connectTimeout?: number;
  /**
   * Milliseconds {@linkcode WebSocketClient.close} waits for the closing
   * handshake before it closes the TCP connection anyway.
   *
   * @default {5000} ({@linkcode DEFAULT_CLOSE_TIMEOUT})
   */
  closeTimeout?: number;
  /**
   * Runs a heartbeat owned by the client: `true` for the defaults, or the
   * settings. When it fails the connection is failed at once (a 1011 close
   * frame, best effort, then TCP is closed) and reported with initiator
   * `"heartbeat"`.
   *
   * @default {undefined}
   */
  heartbeat?: boolean | ClientHeartbeatOptions;
  /**
   * Milliseconds without an application message after which the connection
   * is closed (reported as 1006, initiator `"client"`, error a
   * {@linkcode StaleFeedError}), even if the peer answers pings: the peer is
   * alive but the feed is not. `reconnecting()` then connects again. Pongs and
   * the replies an application probe's `reply` recognises (or its echo,
   * without `reply`) do not count as messages; time while reading is
   * paused for a slow consumer does not count as silence. Set it well above
   * the feed's quietest normal gap. `Infinity` turns it off.
   *
   * @default {Infinity}
   */
  staleAfter?: number;
  /**
   * Whether message iteration ends quietly on every close, abnormal ones
   * included, rather than rejecting with a `ConnectionClosedError`: for a
   * caller that handles the close itself, from `closed`. `reconnecting()`
   * sets it for the connections it yields, since its loop handles their
   * closes (`receive()` still rejects after any close).
   *
   * @default {false}
   */
  quietEnd?: boolean;
  /**
   * The most received messages kept waiting for the application. When the
   * queue reaches it, the wsbeat transport stops reading from the socket
   * until the consumer catches up (TCP flow control slows the server; nothing
   * is dropped). The native transport cannot stop reading, so there the
   * consumer has fallen behind: the client closes the connection and, once
   * the queued messages are read, iteration rejects with
   * {@linkcode ConnectionClosedError}. `Infinity` sets no bound.
   *
   * @default {10000} ({@linkcode DEFAULT_MAX_QUEUED})
   */
  maxQueuedMessages?: number;
  /**
   * The most bytes of received messages kept waiting for the application
   * (text counted as UTF-8), with the same effect as `maxQueuedMessages`.
   * 16 MiB holds a burst of large messages, and bounds what a consumer that
   * stopped reading costs: the queue, plus at most one message being
   * received.
   *
   * @default {16777216} ({@linkcode DEFAULT_MAX_QUEUED_BYTES})
   */
  maxQueuedBytes?: number;
  /**
   * The bytes waiting to be written above which
   * {@linkcode WebSocketClient.drain} waits: a producer that awaits
   * `drain()` after each `send()` never holds more than this in memory, even
   * when the peer stops reading. 1 MiB keeps a fast link busy.
   *
   * @default {1048576} ({@linkcode DEFAULT_HIGH_WATER_MARK})
   */
  sendHighWaterMark?: number;
}

/** Options for {@linkcode connect}. */
export interface ConnectOptions extends ClientOptions {
  /** Subprotocols to offer; the chosen one is {@linkcode WebSocketClient.protocol}. */
  protocols?: string | string[];
  /**
   * Extra HTTP headers for the opening handshake (on the native transport:
   * Deno and Bun only).
   */
  headers?: HeadersInit;
  /**
   * Which transport moves the frames: `"wsbeat"`, wsbeat's own RFC 6455
   * implementation over `Deno.connect` (ping frames, a message size limit,
   * flow control, the handshake checked, a dead connection released at once),
   * or `"native"`, the runtime's `WebSocket`, which can do none of these.
   *
   * @default {"wsbeat" where Deno.connect exists, "native" elsewhere}
   */
  transport?: TransportName;
  /**
   * The largest message accepted, in bytes (all its fragments). A bigger one
   * fails the connection with 1009, so a server that never stops sending
   * cannot grow the client without bound. 16 MiB is far above the largest
   * messages of common feeds (snapshots of a few MiB) and a quarter of what
   * the native client allows (64 MiB). wsbeat transport only.
   *
   * @default {16777216} ({@linkcode DEFAULT_MAX_MESSAGE_SIZE})
   */
  maxMessageSize?: number;
  /**
   * Extra CA certificates (PEM) to trust for `wss:`, e.g. a private CA. On
   * the native transport this needs Deno (`Deno.createHttpClient`).
   */
  caCerts?: string[];
  /**
   * The HTTP client for the native transport on Deno (a `Deno.HttpClient`),
   * e.g. to use a proxy. Not used by the wsbeat transport.
   */
  client?: object;
  /**
   * The proxy to go through (wsbeat transport): `http://` (HTTP `CONNECT`),
   * `https://` (TLS to the proxy, then `CONNECT`; `ws:` URLs only, as Deno
   * cannot run TLS inside TLS), `socks5://` (SOCKS5, the name resolved
   * here) or `socks5h://` (SOCKS5, the proxy resolves the name), e.g.
   * `socks5h://user:password@proxy.example:1080`. Credentials are sent to
   * the proxy (`Proxy-Authorization: Basic`, or RFC 1929) and masked
   * wherever the proxy is named. Unset, the environment's is used, as curl
   * and Python `websockets` do: `HTTPS_PROXY` for `wss:`, `HTTP_PROXY` for
   * `ws:`, then `ALL_PROXY`, unless `NO_PROXY` names the host; only
   * variables the process may read without a prompt (`--allow-env`) count,
   * and never with `cert` or a `ws+unix:` URL. `null` turns proxies off.
   * Not combinable with `cert`: `Deno.startTls`, which TLS through a tunnel
   * needs, cannot present a client certificate.
   *
   * @default {undefined (the environment's)}
   */
  proxy?: string | URL | null;
  /**
   * How many redirects (301, 302, 303, 307, 308) to follow, as browsers and
   * Python `websockets` do (wsbeat transport); 0 follows none. A redirect
   * never goes from `wss:` to `ws:`, `Authorization` and `Cookie` are not
   * sent to another origin, and a loop fails with a `ConnectError`.
   *
   * @default {10}
   */
  maxRedirects?: number;
  /**
   * The `Origin` header to send, for servers that check it (as browsers
   * send it). The wsbeat transport also sends a `User-Agent` naming wsbeat,
   * its version and the runtime (`wsbeat/0.1.0 Deno/2.9.6`), unless
   * `headers` has one.
   *
   * @default {undefined (no Origin)}
   */
  origin?: string;
  /**
   * Answers the server's own application pings, for feeds that send a
   * heartbeat of their own (`{"ping": n}`) and close clients that do not
   * reply (`{"pong": n}`): given each received message, return the reply to
   * send (that message is then not delivered), or `undefined` to deliver
   * it. It runs as messages are read from the socket, before the queue of
   * received messages, so a slow consumer does not delay the replies; it
   * may be async (messages after it wait, in order). See docs/heartbeat.md.
   *
   * @default {undefined}
   */
  answer?: AnswerFunction;
  /**
   * Told of each step of the connection, one event each: proxy, request
   * and response heads, redirects, frames sent and received (opcode, length,
   * a short preview), pings, pongs, the close. Credentials are masked. The
   * heads and proxy steps on the wsbeat transport only. See docs/trace.md.
   *
   * @default {undefined}
   */
  trace?: TraceListener;
  /**
   * A client certificate chain (PEM) for `wss:`, for servers that require
   * one; goes with `key`. wsbeat transport only (`Deno.connectTls`).
   */
  cert?: string;
  /** The private key (PEM) of `cert`. */
  key?: string;
  /**
   * permessage-deflate (RFC 7692) on the wsbeat transport: `true` offers
   * it with the defaults, an object tunes the offer and the compression
   * (`threshold`, `level`), `false` offers nothing. It is used only if the
   * server accepts; then messages from the server may arrive compressed
   * (inflated here, `maxMessageSize` counting the inflated size), and ours
   * of at least `threshold` (1 KiB) bytes go out compressed. With the
   * server's context takeover (its default) the connection keeps the
   * server's 32 KiB window. The native transport keeps the runtime's own
   * behaviour. See docs/compression.md.
   *
   * @default {true} as browsers, Node `ws` and Python `websockets` do: a server that compresses its feed does so to save bandwidth, and a client that does not offer gets the feed uncompressed
   */
  compression?: boolean | ClientCompressionOptions;
}

/** Options for {@linkcode WebSocketClient.receive}, {@linkcode WebSocketClient.ping} and {@linkcode WebSocketClient.drain}. */
export interface SignalOptions {
  /** Signal that abandons the wait; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** Default {@linkcode ClientOptions.connectTimeout}. */
export const DEFAULT_CONNECT_TIMEOUT = 10_000;
/** Default {@linkcode ClientOptions.closeTimeout}. */
export const DEFAULT_CLOSE_TIMEOUT = 5_000;
/** Default {@linkcode ClientOptions.maxQueuedMessages}. */
export const DEFAULT_MAX_QUEUED = 10_000;
/** Default {@linkcode ClientOptions.maxQueuedBytes}. */
export const DEFAULT_MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/** Default {@linkcode ClientOptions.sendHighWaterMark}. */
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;
/** Default {@linkcode ConnectOptions.compression}: offered. */
export const DEFAULT_COMPRESSION = true;

/** {@linkcode ClientHeartbeatOptions} once resolved: `interval` and `timeout` filled in. */
export interface CheckedHeartbeat extends ProbeOptions {
  /** Milliseconds to sleep after each reply before the next probe. */
  readonly interval: number;
  /** Milliseconds to wait for a reply. */
  readonly timeout: number;
  /** Called with each round-trip time in milliseconds. */
  readonly onBeat: ((rtt: number) => void) | undefined;
}

/**
 * {@linkcode ClientOptions} once resolved: checked, every default filled in,
 * frozen. What `WebSocketClient` and its parts read; see the module doc.
 */
export interface CheckedOptions {
  /** {@linkcode ClientOptions.signal}. */
  readonly signal: AbortSignal | undefined;
  /** {@linkcode ClientOptions.connectTimeout}. */
  readonly connectTimeout: number;
  /** {@linkcode ClientOptions.closeTimeout}. */
  readonly closeTimeout: number;
  /** {@linkcode ClientOptions.maxQueuedMessages}. */
  readonly maxQueuedMessages: number;
  /** {@linkcode ClientOptions.maxQueuedBytes}. */
  readonly maxQueuedBytes: number;
  /** {@linkcode ClientOptions.sendHighWaterMark}. */
  readonly sendHighWaterMark: number;
  /** {@linkcode ClientOptions.heartbeat}: `undefined` for none. */
  readonly heartbeat: CheckedHeartbeat | undefined;
  /** {@linkcode ClientOptions.staleAfter}. */
  readonly staleAfter: number;
  /** {@linkcode ClientOptions.quietEnd}. */
  readonly quietEnd: boolean;
}

/**
 * {@linkcode ConnectOptions} once resolved: checked, every default filled
 * in, frozen. What `connect()` builds the transport from; see the module doc.
 */
export interface CheckedConnectOptions extends CheckedOptions {
  /** {@linkcode ConnectOptions.transport}, picked for this runtime when unset. */
  readonly transport: TransportName;
  /** {@linkcode ConnectOptions.protocols}, as a list of distinct tokens. */
  readonly protocols: string[];
  /** {@linkcode ConnectOptions.headers}. */
  readonly headers: HeadersInit | undefined;
  /** {@linkcode ConnectOptions.maxMessageSize}. */
  readonly maxMessageSize: number;
  /** {@linkcode ConnectOptions.caCerts}. */
  readonly caCerts: string[] | undefined;
  /** {@linkcode ConnectOptions.client}. */
  readonly client: object | undefined;
  /** {@linkcode ConnectOptions.proxy}, parsed. */
  readonly proxy: URL | undefined;
  /** {@linkcode ConnectOptions.cert} and {@linkcode ConnectOptions.key}, together. */
  readonly clientCert: { readonly cert: string; readonly key: string } | undefined;
  /** The proxy from the environment, `maxRedirects`, `origin`, `answer`, `trace`. */
  readonly wire: WireOptions;
  /** {@linkcode ConnectOptions.compression}: the offer's settings, or `undefined` for none. */
  readonly compression: Readonly<ClientCompressionOptions> | undefined;
}
