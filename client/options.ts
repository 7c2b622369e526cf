/**
 * The client layer: the types of `connect()`'s options and results, their
 * defaults with the reasons for them, and the checks that turn a bad option
 * into a `TypeError` or `RangeError` naming it.
 *
 * @module
 */

import { checkDelay, DEFAULT_INTERVAL, DEFAULT_TIMEOUT } from "../heartbeat.ts";
import type { TransportName } from "../transport/transport.ts";

export type { CloseInfo, CloseInitiator } from "./close_info.ts";

/**
 * A received message: text as `string`, binary as `Uint8Array`. A small
 * binary message may be a view of a larger buffer that other messages share
 * (as Node's `Buffer` pool does): its bytes never change, but read them
 * through the view (or `slice()` it to keep a buffer of its own), not through
 * its `buffer`.
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
   * @default {10000}
   */
  interval?: number;
  /**
   * Milliseconds to wait for a reply before the connection is declared dead.
   *
   * @default {5000}
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
   * @default {10000}
   */
  connectTimeout?: number;
  /**
   * Milliseconds {@linkcode WebSocketClient.close} waits for the closing
   * handshake before it closes the TCP connection anyway.
   *
   * @default {5000}
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
   * @default {10000}
   */
  maxQueuedMessages?: number;
  /**
   * The most bytes of received messages kept waiting for the application
   * (text counted as UTF-8), with the same effect as `maxQueuedMessages`.
   * 16 MiB holds a burst of large messages, and bounds what a consumer that
   * stopped reading costs: the queue, plus at most one message being
   * received.
   *
   * @default {16777216}
   */
  maxQueuedBytes?: number;
  /**
   * The bytes waiting to be written above which
   * {@linkcode WebSocketClient.drain} waits: a producer that awaits
   * `drain()` after each `send()` never holds more than this in memory, even
   * when the peer stops reading. 1 MiB keeps a fast link busy.
   *
   * @default {1048576}
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
   * @default {16777216}
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
   * An HTTP proxy to tunnel through with `CONNECT` (wsbeat transport), e.g.
   * `http://user:password@proxy.example:3128`; user info is sent as
   * `Proxy-Authorization: Basic` and never shown. Only `http://` proxies.
   * Not combinable with `cert`: `Deno.startTls`, which TLS through a tunnel
   * needs, cannot present a client certificate.
   */
  proxy?: string | URL;
  /**
   * A client certificate chain (PEM) for `wss:`, for servers that require
   * one; goes with `key`. wsbeat transport only (`Deno.connectTls`).
   */
  cert?: string;
  /** The private key (PEM) of `cert`. */
  key?: string;
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
/** Default {@linkcode ConnectOptions.maxMessageSize}. */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;
/** Default {@linkcode ClientOptions.sendHighWaterMark}. */
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;

/** {@linkcode ClientOptions} with the defaults filled in. */
export interface CheckedOptions {
  signal: AbortSignal | undefined;
  connectTimeout: number;
  closeTimeout: number;
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  sendHighWaterMark: number;
  heartbeat: ClientHeartbeatOptions | undefined;
  staleAfter: number;
  quietEnd: boolean;
}

function checkCount(name: string, value: unknown, min: number): number {
  if (
    typeof value !== "number" ||
    !(value === Infinity || (Number.isInteger(value) && value >= min))
  ) {
    throw new RangeError(
      `Cannot use ${name} as it is not a whole number of at least ${min} or Infinity: current value is ${
        String(value)
      }`,
    );
  }
  return value;
}

function checkProbe(name: string, value: unknown): void {
  if (
    value !== undefined && typeof value !== "string" && typeof value !== "function" &&
    !(value instanceof Uint8Array)
  ) {
    throw new TypeError(
      `Cannot use ${name} as it is not a string, Uint8Array or function: current value is ${
        String(value)
      }`,
    );
  }
}

/**
 * Checks the client's options and fills in the defaults.
 *
 * @param options What the caller passed.
 * @returns The options with defaults.
 * @throws {TypeError} If an option has the wrong type.
 * @throws {RangeError} If an option is out of range.
 */
export function checkClientOptions(options: ClientOptions): CheckedOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot use options as they are not an object: current value is ${String(options)}`,
    );
  }
  const connectTimeout = checkDelay(
    "connectTimeout",
    options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT,
  );
  const closeTimeout = checkDelay("closeTimeout", options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT);
  const maxQueuedMessages = checkCount(
    "maxQueuedMessages",
    options.maxQueuedMessages ?? DEFAULT_MAX_QUEUED,
    1,
  );
  const maxQueuedBytes = checkCount(
    "maxQueuedBytes",
    options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
    1,
  );
  const sendHighWaterMark = checkCount(
    "sendHighWaterMark",
    options.sendHighWaterMark ?? DEFAULT_HIGH_WATER_MARK,
    0,
  );
  const staleAfter = checkDelay("staleAfter", options.staleAfter ?? Infinity);
  if (staleAfter === 0) {
    throw new RangeError(
      "Cannot use staleAfter as it is 0, which would close every connection at once: current value is 0",
    );
  }
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(
      `Cannot use signal as it is not an AbortSignal: current value is ${String(signal)}`,
    );
  }
  let heartbeat: ClientHeartbeatOptions | undefined;
  if (options.heartbeat === true) heartbeat = {};
  else if (options.heartbeat && typeof options.heartbeat === "object") {
    heartbeat = options.heartbeat;
  } else if (options.heartbeat !== undefined && options.heartbeat !== false) {
    throw new TypeError(
      `Cannot use heartbeat as it is not a boolean or an object: current value is ${
        String(options.heartbeat)
      }`,
    );
  }
  if (heartbeat) {
    checkDelay("heartbeat.interval", heartbeat.interval ?? DEFAULT_INTERVAL);
    checkDelay("heartbeat.timeout", heartbeat.timeout ?? DEFAULT_TIMEOUT);
    checkProbe("heartbeat.message", heartbeat.message);
    checkProbe("heartbeat.reply", heartbeat.reply);
  }
  return {
    signal,
    connectTimeout,
    closeTimeout,
    maxQueuedMessages,
    maxQueuedBytes,
    sendHighWaterMark,
    heartbeat,
    staleAfter,
    quietEnd: checkBoolean("quietEnd", options.quietEnd ?? false),
  };
}

function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== "boolean") {
    throw new TypeError(
      `Cannot use ${name} as it is not a boolean: current value is ${String(value)}`,
    );
  }
  return value;
}

/**
 * Checks {@linkcode ConnectOptions.maxMessageSize}.
 *
 * @param value The option as given.
 * @returns The size in bytes.
 * @throws {RangeError} If it is not a whole number of at least 1.
 */
export function checkMaxMessageSize(value: unknown): number {
  return checkCount("maxMessageSize", value ?? DEFAULT_MAX_MESSAGE_SIZE, 1);
}
