/**
 * A WebSocket client on the runtime's native `WebSocket` that says what
 * happened: {@linkcode connect} resolves when the socket is open or rejects
 * with a {@linkcode ConnectError} that names the cause; messages arrive through
 * async iteration and are never dropped; {@linkcode WebSocketClient.send}
 * throws instead of discarding data on a closed socket; and every close is
 * reported as a {@linkcode CloseInfo} saying who closed and why.
 *
 * ## Close semantics
 *
 * - Iteration (`for await (const msg of ws)`) ends quietly on a normal close:
 *   code 1000 (normal), 1001 (going away) or 1005 (no code given).
 * - Any other close makes iteration and {@linkcode WebSocketClient.receive}
 *   reject with {@linkcode ConnectionClosedError}, carrying the `code`, the
 *   `reason` and, as `cause`, the error behind it (a heartbeat's
 *   {@linkcode TooSlowError}, the runtime's network error, ...).
 *   `receive()` also rejects after a normal close, once the queue is drained,
 *   since it has no message to give.
 * - Messages received before the close are delivered first.
 * - The runtime reports a connection that ended without a closing handshake as
 *   code 0; wsbeat reports it as 1006, as RFC 6455 says.
 * - {@linkcode WebSocketClient.closed} never rejects.
 *
 * This module does not touch `Deno.*`: it runs on Deno, Deno Deploy, Bun,
 * Node 22+ and browsers. The `headers` and `client` options are passed to the
 * runtime's `WebSocket` where it supports them (Deno; Bun takes `headers`).
 *
 * @example Connect, send, read, close
 * ```ts ignore
 * import { connect } from "@wsbeat/wsbeat";
 *
 * await using ws = await connect("ws://127.0.0.1:9000");
 * ws.send("hello");
 * for await (const message of ws) {
 *   console.log(message);
 *   break;
 * }
 * ```
 *
 * @module
 */

import {
  checkDelay,
  DEFAULT_INTERVAL,
  DEFAULT_TIMEOUT,
  heartbeat,
  TooSlowError,
} from "./heartbeat.ts";

/** A received message: text as `string`, binary as `Uint8Array`. */
export type Message = string | Uint8Array;

/** What {@linkcode WebSocketClient.send} accepts. */
export type SendData = string | ArrayBuffer | ArrayBufferView;

/**
 * Who closed the connection first.
 *
 * - `"client"`: this side called `close()`, the signal aborted, or the client
 *   gave up (the consumer fell behind, see `maxQueuedMessages`).
 * - `"server"`: the peer sent a close frame.
 * - `"heartbeat"`: the heartbeat found the peer unresponsive.
 * - `"network"`: the connection dropped with no closing handshake.
 */
export type CloseInitiator = "client" | "server" | "heartbeat" | "network";

/** How a connection ended, as resolved by {@linkcode WebSocketClient.closed}. */
export interface CloseInfo {
  /**
   * The close code: the peer's, or 1006 when no close frame was received
   * (the runtime says 0), or 1005 when the close frame had no code.
   */
  code: number;
  /** The close reason the peer sent; empty when it sent none. */
  reason: string;
  /** Whether the closing handshake completed. */
  wasClean: boolean;
  /** Who closed first. */
  initiator: CloseInitiator;
  /**
   * The error behind an abnormal close: the heartbeat's
   * {@linkcode TooSlowError}, the runtime's network error, a
   * {@linkcode ConnectError} if the socket never opened, or the error that
   * made the client give up.
   */
  error?: Error;
}

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
}

/** The state of a {@linkcode WebSocketClient}. */
export type ClientState = "connecting" | "open" | "closing" | "closed";

/** Why {@linkcode connect} failed. */
export type ConnectErrorKind =
  | "status"
  | "refused"
  | "dns"
  | "tls"
  | "timeout"
  | "aborted"
  | "network";

/**
 * The connection could not be opened. `kind` says why, `status` carries the
 * HTTP status when the server refused the upgrade, and `cause` the runtime's
 * error.
 *
 * | kind | meaning |
 * | --- | --- |
 * | `"status"` | the server answered the handshake with HTTP `status` |
 * | `"refused"` | nothing accepted the TCP connection |
 * | `"dns"` | the host name did not resolve |
 * | `"tls"` | the certificate was not trusted or TLS failed |
 * | `"timeout"` | no handshake within `connectTimeout` |
 * | `"aborted"` | `close()` was called while connecting |
 * | `"network"` | any other network failure |
 *
 * @example Tell a refused connection from a rejected one
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
  /** The HTTP status the server answered with, for kind `"status"`. */
  readonly status: number | undefined;

  /**
   * Constructs a new instance.
   *
   * @param url The URL that could not be opened.
   * @param kind Why the connection failed.
   * @param detail What went wrong, appended to the message.
   * @param options `cause`, and `status` for kind `"status"`.
   */
  constructor(
    url: string,
    kind: ConnectErrorKind,
    detail: string,
    options: ErrorOptions & { status?: number } = {},
  ) {
    super(`Cannot connect to ${url}: ${detail}`, options);
    this.name = "ConnectError";
    this.url = url;
    this.kind = kind;
    this.status = options.status;
  }
}

/**
 * The connection is closed (or closing), so the operation cannot go on.
 *
 * Thrown by {@linkcode WebSocketClient.send} and rejected by
 * {@linkcode WebSocketClient.receive}, {@linkcode WebSocketClient.ping} and
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

/** The probe and reply of the heartbeat and of {@linkcode WebSocketClient.ping}. */
export interface ProbeOptions {
  /**
   * The probe to send: text, bytes, or a function of the probe's sequence
   * number (1, 2, 3, ...), e.g. `(id) => JSON.stringify({ op: "ping", id })`.
   *
   * @default {"ping"}
   */
  message?: string | Uint8Array | ((seq: number) => string | Uint8Array);
  /**
   * How to recognise the reply.
   *
   * - Unset: any message received after the probe proves the peer alive, and
   *   is delivered to the application as usual.
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
   * Milliseconds to wait for the opening handshake; the native socket has no
   * bound of its own. `Infinity` waits forever.
   *
   * @default {10000}
   */
  connectTimeout?: number;
  /**
   * Milliseconds {@linkcode WebSocketClient.close} waits for the peer's close
   * frame before giving up on the handshake.
   *
   * @default {5000}
   */
  closeTimeout?: number;
  /**
   * Runs a heartbeat owned by the client: `true` for the defaults, or the
   * settings. When it fails the connection is closed at once and reported
   * with initiator `"heartbeat"`. The probe settings also apply to
   * {@linkcode WebSocketClient.ping}.
   *
   * @default {undefined}
   */
  heartbeat?: boolean | ClientHeartbeatOptions;
  /**
   * The most received messages kept waiting for the application. Past it the
   * consumer has fallen behind: the client closes the connection and, once
   * the queued messages are read, iteration rejects with
   * {@linkcode ConnectionClosedError}. `Infinity` never closes.
   *
   * @default {10000}
   */
  maxQueuedMessages?: number;
}

/** Options for {@linkcode connect}. */
export interface ConnectOptions extends ClientOptions {
  /** Subprotocols to offer; the chosen one is {@linkcode WebSocketClient.protocol}. */
  protocols?: string | string[];
  /**
   * Extra HTTP headers for the opening handshake (Deno, Bun). On Deno a
   * `User-Agent` here is appended to Deno's own.
   */
  headers?: HeadersInit;
  /**
   * The HTTP client to connect with (Deno): a `Deno.HttpClient`, e.g.
   * `Deno.createHttpClient({ caCerts: [pem] })` to trust a private CA or to
   * use a proxy.
   */
  client?: object;
}

/** Options for {@linkcode WebSocketClient.receive} and {@linkcode WebSocketClient.ping}. */
export interface SignalOptions {
  /** Signal that abandons the wait; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

const DEFAULT_CONNECT_TIMEOUT = 10_000;
const DEFAULT_CLOSE_TIMEOUT = 5_000;
const DEFAULT_MAX_QUEUED = 10_000;
/** Round trips kept for the latency figures: enough for a p99, 800 bytes a connection. */
const LATENCY_WINDOW = 100;
const OPEN = 1;
const CONNECTING = 0;
const NORMAL_CODES: ReadonlySet<number> = new Set([1000, 1001, 1005]);
/**
 * Milliseconds to wait for the `close` event that the WebSocket standard
 * queues after a failed connection. Some runtimes never fire it (undici
 * before Node 22.10: nodejs/undici#3546), and `connect()` must settle anyway.
 */
const CLOSE_GRACE = 100;

interface Waiter {
  resolve(message: Message): void;
  reject(error: unknown): void;
}

interface PendingPing {
  seq: number;
  sentAt: number;
  resolve(): void;
  reject(error: unknown): void;
}

const encoder = new TextEncoder();
// deno-lint-ignore no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;
const SCRATCH_CHARS = 64 * 1024;
let scratch: Uint8Array | undefined;

/**
 * Payload size in bytes, text as UTF-8, on the hot path of every send and
 * receive. Measured (deno bench): for short strings a regex test is fastest
 * (28 ns for 32 chars); for longer ones `encodeInto` a reused buffer is
 * (1.3 us for 64 Ki chars, where the regex takes 35 us). Past 64 Ki chars
 * `encode()` avoids keeping a buffer sized for the largest message.
 */
function byteLength(data: string | ArrayBuffer | ArrayBufferView): number {
  if (typeof data !== "string") return data.byteLength;
  if (data.length < 64) return NON_ASCII.test(data) ? encoder.encode(data).byteLength : data.length;
  if (data.length > SCRATCH_CHARS) return encoder.encode(data).byteLength;
  scratch ??= new Uint8Array(SCRATCH_CHARS * 3);
  return encoder.encodeInto(data, scratch).written;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Turns the runtime's handshake error into a {@linkcode ConnectError}. */
function classify(url: string, event: Event | undefined): ConnectError {
  const cause = (event as ErrorEvent | undefined)?.error ?? event;
  const text = (event as ErrorEvent | undefined)?.message ?? "";
  const status = /status code:? *(\d{3})/i.exec(text);
  if (status) {
    const code = Number(status[1]);
    return new ConnectError(
      url,
      "status",
      `the server answered HTTP ${code} instead of switching protocols`,
      { cause, status: code },
    );
  }
  if (/dns error|failed to lookup|name resolution/i.test(text)) {
    return new ConnectError(url, "dns", "host name not found (DNS error)", { cause });
  }
  if (/tcp connect error|connection refused/i.test(text)) {
    return new ConnectError(url, "refused", "connection refused", { cause });
  }
  if (/certificate|tls|ssl|handshake failure/i.test(text)) {
    return new ConnectError(
      url,
      "tls",
      `TLS failed (${text.replace(/^.*?WebSocket: /, "")}); to trust a private CA pass ` +
        "client: Deno.createHttpClient({ caCerts: [pem] }) or run deno with --cert ca.pem",
      { cause },
    );
  }
  const detail = text.replace(/^.*?WebSocket: /, "") || "the connection failed before opening";
  return new ConnectError(url, "network", detail, { cause });
}

function describeClose(info: CloseInfo): string {
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
      return info.error
        ? info.error.message
        : `Connection closed by the client with code ${info.code}${reason}`;
  }
}

/**
 * Makes `ws`'s message iteration end quietly whatever the close, as
 * {@linkcode reconnecting} promises inside its loop. Internal: not exported
 * from `mod.ts`.
 */
export let endIterationQuietly: (ws: WebSocketClient) => void;

/**
 * A connected (or connecting) WebSocket: iterate it for messages, `send()` on
 * it, `close()` it. Create one with {@linkcode connect}; the constructor wraps
 * a native `WebSocket` you made yourself (wrap it before yielding to the event
 * loop, so no message is missed).
 *
 * @example Iterate messages until the server closes
 * ```ts ignore
 * import { connect } from "@wsbeat/wsbeat";
 *
 * await using ws = await connect("ws://127.0.0.1:9000", {
 *   heartbeat: { interval: 10_000, timeout: 5_000 },
 * });
 * ws.send(JSON.stringify({ op: "subscribe", channel: "prices" }));
 * for await (const message of ws) console.log(message);
 * console.log(await ws.closed); // { code: 1000, initiator: "server", ... }
 * ```
 */
export class WebSocketClient implements AsyncIterable<Message>, AsyncDisposable {
  static {
    endIterationQuietly = (ws) => {
      ws.#alwaysQuiet = true;
      if (ws.#info) ws.#quiet = true;
    };
  }

  #ws: WebSocket;
  #alwaysQuiet = false;
  #url: string;
  #maxQueued: number;
  #closeTimeout: number;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #closeGrace: ReturnType<typeof setTimeout> | undefined;
  #signal: AbortSignal | undefined;
  #onSignal = () => this.#onAbort();

  // Probe settings.
  #probe: string | Uint8Array | ((seq: number) => string | Uint8Array);
  #reply: string | Uint8Array | ((message: Message, seq: number) => boolean) | undefined;
  #beat: ClientHeartbeatOptions | undefined;
  #pings: Map<number, PendingPing> | undefined; // created by the first ping()
  #seq = 0;

  // Receiving.
  #queue: Message[] = [];
  #head = 0;
  #waiters: Waiter[] = [];

  // Lifecycle.
  #opened: Promise<void>;
  #resolveOpened!: () => void;
  #rejectOpened!: (error: unknown) => void;
  #connectFailure: unknown;
  #initiator: CloseInitiator | undefined;
  #closeError: Error | undefined;
  #lastError: Event | undefined;
  #info: CloseInfo | undefined;
  #end: ConnectionClosedError | undefined;
  #quiet = false;
  #closed: Promise<CloseInfo>;
  #resolveClosed!: (info: CloseInfo) => void;
  #transportOpen = true; // until the native socket's close event
  #released: Promise<void> | undefined; // created when close() has to wait for that event
  #release: (() => void) | undefined;
  #scope: AbortController | undefined; // the heartbeat's scope, when there is a heartbeat

  // Counters.
  #createdAt = performance.now();
  #openAt: number | undefined;
  #openedAt: number | undefined;
  #endAt: number | undefined;
  #messagesSent = 0;
  #bytesSent = 0;
  #messagesReceived = 0;
  #bytesReceived = 0;
  #rtts: Float64Array | undefined; // allocated on the first round trip
  #rttCount = 0; // round trips recorded, ever

  /**
   * Wraps a native `WebSocket`, in the `CONNECTING` or `OPEN` state.
   *
   * @param socket The socket to wrap; its `binaryType` is set to `"arraybuffer"`.
   * @param options Timeouts, heartbeat, queue bound and signal.
   * @throws {TypeError} If an option has the wrong type.
   * @throws {RangeError} If an option is out of range.
   */
  constructor(socket: WebSocket, options: ClientOptions = {}) {
    const opts = checkClientOptions(options);
    this.#ws = socket;
    this.#url = socket.url;
    this.#maxQueued = opts.maxQueuedMessages;
    this.#closeTimeout = opts.closeTimeout;
    this.#beat = opts.heartbeat;
    this.#probe = opts.heartbeat?.message ?? "ping";
    this.#reply = opts.heartbeat?.reply;
    socket.binaryType = "arraybuffer";

    this.#opened = new Promise((resolve, reject) => {
      this.#resolveOpened = resolve;
      this.#rejectOpened = reject;
    });
    this.#opened.catch(() => {});
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));

    socket.addEventListener("message", this.#onMessage);
    socket.addEventListener("error", this.#onError);
    socket.addEventListener("close", this.#onClose);
    if (socket.readyState === CONNECTING) {
      socket.addEventListener("open", this.#onOpen, { once: true });
      if (opts.connectTimeout !== Infinity) {
        this.#connectTimer = setTimeout(() => {
          this.#abortConnect(
            new ConnectError(
              this.#url,
              "timeout",
              `no handshake within ${opts.connectTimeout} ms (connectTimeout); ` +
                "is the server up and speaking WebSocket on that port?",
            ),
          );
        }, opts.connectTimeout);
      }
    } else if (socket.readyState === OPEN) {
      this.#onOpen();
    } else {
      const error = new ConnectError(this.#url, "network", "the socket was already closed");
      this.#rejectOpened(error);
      this.#transportOpen = false;
      this.#finish({ code: 1006, reason: "", wasClean: false, initiator: "network", error });
      return;
    }
    const signal = opts.signal;
    if (signal) {
      this.#signal = signal;
      if (signal.aborted) this.#onAbort();
      else signal.addEventListener("abort", this.#onSignal, { once: true });
    }
  }

  /** The URL, as the runtime normalised it. */
  get url(): string {
    return this.#url;
  }

  /** The subprotocol the server chose, or `""`. */
  get protocol(): string {
    return this.#ws.protocol;
  }

  /** The extensions the server chose, or `""`. */
  get extensions(): string {
    return this.#ws.extensions;
  }

  /** Bytes passed to `send()` that the runtime has not yet written. */
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  /** `"connecting"`, `"open"`, `"closing"` or `"closed"`. */
  get state(): ClientState {
    if (this.#info) return "closed";
    switch (this.#ws.readyState) {
      case CONNECTING:
        return "connecting";
      case OPEN:
        return "open";
      default:
        return "closing";
    }
  }

  /**
   * Resolves when the socket is open; rejects with a {@linkcode ConnectError},
   * or with the signal's reason when the signal aborted first.
   */
  get opened(): Promise<void> {
    return this.#opened;
  }

  /** Resolves with how the connection ended. Never rejects. */
  get closed(): Promise<CloseInfo> {
    return this.#closed;
  }

  /** A snapshot of the counters: timing, traffic and round-trip times. */
  get stats(): ClientStats {
    let latency: LatencyStats | undefined;
    const count = this.#rttCount;
    if (this.#rtts && count > 0) {
      const samples = Math.min(count, LATENCY_WINDOW);
      const sorted = this.#rtts.slice(0, samples).sort();
      let sum = 0;
      for (const rtt of sorted) sum += rtt;
      latency = {
        last: this.#rtts[(count - 1) % LATENCY_WINDOW]!,
        min: sorted[0]!,
        avg: sum / samples,
        p99: sorted[Math.min(samples - 1, Math.ceil(samples * 0.99) - 1)]!,
        samples,
      };
    }
    const openAt = this.#openAt;
    return {
      openMs: openAt === undefined ? undefined : openAt - this.#createdAt,
      openedAt: this.#openedAt,
      uptimeMs: openAt === undefined ? 0 : (this.#endAt ?? performance.now()) - openAt,
      messagesSent: this.#messagesSent,
      bytesSent: this.#bytesSent,
      messagesReceived: this.#messagesReceived,
      bytesReceived: this.#bytesReceived,
      latency,
    };
  }

  /**
   * Sends a message: text for a string, binary otherwise.
   *
   * @param data The message.
   * @throws {ConnectionClosedError} If the connection is not open; the native
   *   API would silently discard the data.
   * @throws {TypeError} If `data` is not a string, `ArrayBuffer` or view.
   */
  send(data: SendData): void {
    if (this.#info !== undefined || this.#ws.readyState !== OPEN) throw this.#notOpen("send");
    if (typeof data !== "string" && !(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data)) {
      throw new TypeError(
        `Cannot send data as it is not a string, ArrayBuffer or view: current value is ${
          Object.prototype.toString.call(data)
        }`,
      );
    }
    this.#ws.send(data);
    this.#messagesSent++;
    this.#bytesSent += byteLength(data);
  }

  /**
   * Resolves with the next message.
   *
   * @param options A signal to stop waiting.
   * @returns The next message, queued or yet to come.
   * @throws {ConnectionClosedError} Once the connection has closed and every
   *   queued message has been read, whatever the close code.
   */
  receive(options: SignalOptions = {}): Promise<Message> {
    if (this.#head < this.#queue.length) return Promise.resolve(this.#dequeue());
    if (this.#end) return Promise.reject(this.#end);
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      if (!signal) {
        this.#waiters.push({ resolve, reject });
        return;
      }
      const waiter: Waiter = {
        resolve: (message) => {
          signal.removeEventListener("abort", onAbort);
          resolve(message);
        },
        reject: (error) => {
          signal.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /**
   * Iterates the messages. Ends quietly on a normal close (1000, 1001, 1005);
   * rejects with {@linkcode ConnectionClosedError} on any other. Leaving the
   * loop early (`break`) does not close the connection.
   */
  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return {
      next: (): Promise<IteratorResult<Message>> => {
        if (this.#head < this.#queue.length) {
          return Promise.resolve({ value: this.#dequeue(), done: false });
        }
        if (this.#end) {
          return this.#quiet
            ? Promise.resolve({ value: undefined, done: true })
            : Promise.reject(this.#end);
        }
        return new Promise((resolve, reject) => {
          this.#waiters.push({
            resolve: (value) => resolve({ value, done: false }),
            reject: (error) =>
              error === this.#end && this.#quiet
                ? resolve({ value: undefined, done: true })
                : reject(error),
          });
        });
      },
    };
  }

  /**
   * Sends one probe and resolves with the round-trip time in milliseconds
   * when its reply arrives (see {@linkcode ProbeOptions}). It does not time
   * out by itself: bound it with a signal, or use {@linkcode failAfter}.
   *
   * @param options A signal to stop waiting.
   * @returns The round-trip time in milliseconds.
   * @throws {ConnectionClosedError} If the connection is or becomes closed.
   */
  ping(options: SignalOptions = {}): Promise<number> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#info !== undefined || this.#ws.readyState !== OPEN) {
      return Promise.reject(this.#notOpen("ping"));
    }
    const seq = ++this.#seq;
    const pings = this.#pings ??= new Map();
    const probe = typeof this.#probe === "function" ? this.#probe(seq) : this.#probe;
    return new Promise((resolve, reject) => {
      const sentAt = performance.now();
      const settle = () => {
        pings.delete(seq);
        signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        settle();
        reject(signal!.reason);
      };
      const pending: PendingPing = {
        seq,
        sentAt,
        resolve: () => {
          settle();
          const rtt = performance.now() - sentAt;
          this.#recordRtt(rtt);
          resolve(rtt);
        },
        // Called by #finish when the connection closes, and on a failed send.
        reject: (error) => {
          settle();
          reject(error);
        },
      };
      pings.set(seq, pending);
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        this.send(probe);
      } catch (error) {
        pending.reject(error);
      }
    });
  }

  /**
   * Starts the closing handshake and resolves when it completes, or after
   * `closeTimeout` ms if the peer does not answer. Closing a closed client
   * resolves with how it ended; closing a connecting one aborts the connect.
   *
   * @param code A close code: 1000, or 3000 to 4999 for applications.
   * @param reason A reason of at most 123 UTF-8 bytes.
   * @returns How the connection ended.
   * @throws {RangeError} If the code or reason is not allowed.
   */
  async close(code = 1000, reason = ""): Promise<CloseInfo> {
    if (!Number.isInteger(code) || (code !== 1000 && (code < 3000 || code > 4999))) {
      throw new RangeError(
        `Cannot close with code ${code} as clients may only send 1000 or 3000 to 4999`,
      );
    }
    if (typeof reason !== "string" || encoder.encode(reason).byteLength > 123) {
      throw new RangeError(
        `Cannot close with reason ${
          JSON.stringify(reason)
        } as it must be a string of at most 123 UTF-8 bytes`,
      );
    }
    if (!this.#info) {
      this.#initiator ??= "client";
      // The closing handshake has its own bound (closeTimeout): the heartbeat's work is done.
      this.#scope?.abort(
        new ConnectionClosedError(code, reason, "The client is closing the connection"),
      );
      if (this.#ws.readyState === CONNECTING) {
        this.#abortConnect(
          new ConnectError(this.#url, "aborted", "close() was called while connecting"),
        );
      } else if (this.#ws.readyState === OPEN) {
        this.#ws.close(code, reason);
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (this.#closeTimeout === Infinity) {
      await this.#whenReleased();
    } else {
      await Promise.race([
        this.#whenReleased(),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#closeTimeout))),
      ]);
      clearTimeout(timer);
    }
    if (!this.#info) {
      this.#finish({
        code: 1006,
        reason: "",
        wasClean: false,
        initiator: this.#initiator ?? "client",
        error: new TooSlowError(
          this.#closeTimeout,
          `The peer did not answer the closing handshake within ${this.#closeTimeout} ms (closeTimeout)`,
        ),
      });
    }
    return this.#info!;
  }

  /** Closes the connection with code 1000, as `await using` does. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // --- internals -----------------------------------------------------------

  #dequeue(): Message {
    const message = this.#queue[this.#head]!;
    this.#queue[this.#head++] = undefined as unknown as Message;
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return message;
  }

  #notOpen(action: string): ConnectionClosedError {
    const info = this.#info;
    return new ConnectionClosedError(
      info?.code ?? 1006,
      info?.reason ?? "",
      `Cannot ${action} as the connection is not open: current state is ${this.state}` +
        (info ? ` (${describeClose(info)})` : ""),
      { cause: info?.error },
    );
  }

  /** Resolves once the runtime has released the socket (its close event). */
  #whenReleased(): Promise<void> {
    if (!this.#transportOpen) return Promise.resolve();
    return this.#released ??= new Promise((resolve) => (this.#release = resolve));
  }

  #recordRtt(rtt: number): void {
    this.#rtts ??= new Float64Array(LATENCY_WINDOW);
    this.#rtts[this.#rttCount++ % LATENCY_WINDOW] = rtt;
  }

  /** Settles outstanding probes; returns true if `message` is heartbeat traffic. */
  #isReply(message: Message): boolean {
    const reply = this.#reply;
    const pings = this.#pings;
    if (reply === undefined) {
      if (pings) { for (const pending of pings.values()) pending.resolve(); }
      return false;
    }
    if (typeof reply === "function") {
      if (!pings) return false;
      for (const pending of pings.values()) {
        let match = false;
        try {
          match = reply(message, pending.seq);
        } catch {
          match = false;
        }
        if (match) {
          pending.resolve();
          return true;
        }
      }
      return false;
    }
    const match = typeof reply === "string"
      ? message === reply
      : typeof message !== "string" && sameBytes(message, reply);
    if (!match) return false;
    pings?.values().next().value?.resolve();
    return true;
  }

  #onOpen = (): void => {
    clearTimeout(this.#connectTimer);
    this.#openAt = performance.now();
    this.#openedAt = Date.now();
    if (this.#beat) {
      const beat = this.#beat;
      this.#scope = new AbortController();
      heartbeat(this, {
        interval: beat.interval,
        timeout: beat.timeout,
        signal: this.#scope.signal,
        onBeat: beat.onBeat,
      }).catch((error) => {
        if (!this.#info) this.#kill("heartbeat", error, "heartbeat timeout");
      });
    }
    this.#resolveOpened();
  };

  #onMessage = (event: MessageEvent): void => {
    if (this.#info) return;
    const data = event.data;
    const message: Message = typeof data === "string" ? data : new Uint8Array(data as ArrayBuffer);
    this.#messagesReceived++;
    this.#bytesReceived += byteLength(message);
    if ((this.#reply !== undefined || this.#pings?.size) && this.#isReply(message)) return;
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter.resolve(message);
      return;
    }
    this.#queue.push(message);
    if (this.#queue.length - this.#head > this.#maxQueued) {
      this.#queue.pop();
      this.#kill(
        "client",
        new ConnectionClosedError(
          1006,
          "",
          `Consumer fell behind: more than ${this.#maxQueued} received messages were waiting to be read ` +
            "(maxQueuedMessages); read faster or raise maxQueuedMessages",
        ),
        "consumer fell behind",
      );
    }
  };

  #onError = (event: Event): void => {
    this.#lastError = event;
    if (this.#openAt === undefined) this.#expectClose();
  };

  /** After a failed or aborted connect: wait for `close`, but not forever. */
  #expectClose(): void {
    this.#closeGrace ??= setTimeout(
      () => this.#onClose({ code: 0, reason: "", wasClean: false }),
      CLOSE_GRACE,
    );
  }

  #onClose = (event: Pick<CloseEvent, "code" | "reason" | "wasClean">): void => {
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#closeGrace);
    this.#transportOpen = false;
    this.#release?.();
    if (this.#info) return;
    if (this.#openAt === undefined) {
      const error = this.#connectFailure ?? classify(this.#url, this.#lastError);
      this.#rejectOpened(error);
      this.#finish({
        code: 1006,
        reason: "",
        wasClean: false,
        initiator: this.#initiator ?? "network",
        ...(error instanceof Error ? { error } : {}),
      });
      return;
    }
    const code = event.code === 0 ? 1006 : event.code;
    const abnormal = code === 1006 || !event.wasClean;
    const runtimeError = this.#lastError as ErrorEvent | undefined;
    const error = this.#closeError ??
      (abnormal && runtimeError
        ? runtimeError.error instanceof Error ? runtimeError.error : new Error(runtimeError.message)
        : undefined);
    this.#finish({
      code,
      reason: event.reason,
      wasClean: event.wasClean && code !== 1006,
      initiator: this.#initiator ?? (abnormal ? "network" : "server"),
      ...(error ? { error } : {}),
    });
  };

  #onAbort(): void {
    const signal = this.#signal!;
    if (this.#ws.readyState === CONNECTING) {
      this.#initiator ??= "client";
      this.#abortConnect(signal.reason);
    } else {
      this.close().catch(() => {});
    }
  }

  /** Fails the opening handshake with `error` once the native socket has closed. */
  #abortConnect(error: unknown): void {
    this.#connectFailure ??= error;
    this.#ws.close();
    this.#expectClose();
  }

  /**
   * Closes at once, without waiting for the peer: for a peer that is not
   * answering, or a consumer that fell behind. Reported as 1006 with `error`.
   */
  #kill(initiator: CloseInitiator, error: Error, reason: string): void {
    this.#initiator = initiator;
    this.#closeError = error;
    if (this.#ws.readyState === OPEN) this.#ws.close(1000, reason);
    this.#finish({ code: 1006, reason: "", wasClean: false, initiator, error });
  }

  #finish(info: CloseInfo): void {
    if (this.#info) return;
    this.#info = info;
    this.#endAt = performance.now();
    this.#quiet = this.#alwaysQuiet || (NORMAL_CODES.has(info.code) && info.error === undefined);
    this.#end = info.error instanceof ConnectionClosedError
      ? info.error
      : new ConnectionClosedError(info.code, info.reason, describeClose(info), {
        cause: info.error,
      });
    this.#signal?.removeEventListener("abort", this.#onSignal);
    this.#ws.removeEventListener("message", this.#onMessage);
    this.#scope?.abort(this.#end);
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#end);
    if (this.#pings) { for (const pending of [...this.#pings.values()]) pending.reject(this.#end); }
    this.#resolveClosed(info);
  }
}

interface CheckedOptions {
  signal: AbortSignal | undefined;
  connectTimeout: number;
  closeTimeout: number;
  maxQueuedMessages: number;
  heartbeat: ClientHeartbeatOptions | undefined;
}

function checkClientOptions(options: ClientOptions): CheckedOptions {
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
  const max = options.maxQueuedMessages ?? DEFAULT_MAX_QUEUED;
  if (typeof max !== "number" || !(max === Infinity || (Number.isInteger(max) && max >= 1))) {
    throw new RangeError(
      `Cannot use maxQueuedMessages as it is not a whole number of at least 1 or Infinity: current value is ${
        String(max)
      }`,
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
    const { message, reply } = heartbeat;
    if (
      message !== undefined && typeof message !== "string" && typeof message !== "function" &&
      !(message instanceof Uint8Array)
    ) {
      throw new TypeError(
        `Cannot use heartbeat.message as it is not a string, Uint8Array or function: current value is ${
          String(message)
        }`,
      );
    }
    if (
      reply !== undefined && typeof reply !== "string" && typeof reply !== "function" &&
      !(reply instanceof Uint8Array)
    ) {
      throw new TypeError(
        `Cannot use heartbeat.reply as it is not a string, Uint8Array or function: current value is ${
          String(reply)
        }`,
      );
    }
  }
  return { signal, connectTimeout, closeTimeout, maxQueuedMessages: max, heartbeat };
}

/**
 * Opens a WebSocket and resolves when it is open.
 *
 * @param url A `ws:`, `wss:`, `http:` or `https:` URL.
 * @param options Subprotocols, headers, TLS client, timeouts, heartbeat.
 * @returns The open client.
 * @throws {ConnectError} If the connection could not be opened; `kind` says why.
 * @throws {SyntaxError} If the URL or a subprotocol is invalid (the runtime's
 *   `DOMException`, naming the value).
 * @throws {TypeError} If `url` is not a string or URL, or an option has the wrong type.
 * @throws {RangeError} If an option is out of range.
 * @throws The signal's reason, if `options.signal` aborts while connecting.
 *
 * @example Connect with a heartbeat
 * ```ts ignore
 * import { connect } from "@wsbeat/wsbeat";
 *
 * await using ws = await connect("wss://example.com/feed", {
 *   heartbeat: { interval: 10_000, timeout: 5_000, message: "ping", reply: "pong" },
 * });
 * for await (const message of ws) console.log(message);
 * ```
 */
export async function connect(
  url: string | URL,
  options: ConnectOptions = {},
): Promise<WebSocketClient> {
  if (typeof url !== "string" && !(url instanceof URL)) {
    throw new TypeError(
      `Cannot connect to url as it is not a string or URL: current value is ${String(url)}`,
    );
  }
  checkClientOptions(options);
  const { signal, protocols, headers, client } = options;
  if (signal?.aborted) throw signal.reason;
  const socket = headers === undefined && client === undefined
    ? new WebSocket(url, protocols)
    // Deno's (and Bun's) non-standard options object.
    : new WebSocket(url, { protocols, headers, client } as unknown as string[]);
  const ws = new WebSocketClient(socket, options);
  await ws.opened;
  return ws;
}
