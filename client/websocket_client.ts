/**
 * The client layer: {@linkcode WebSocketClient}, the semantics users see,
 * the same on either transport. `connect()` (in `client.ts`) resolves when
 * the connection is open or rejects with a {@linkcode ConnectError} that
 * names the cause; messages arrive through
 * async iteration and are never dropped; {@linkcode WebSocketClient.send}
 * throws instead of discarding data on a closed socket; and every close is
 * reported as a {@linkcode CloseInfo} saying who closed and why.
 *
 * ## Close semantics
 *
 * As `client/close_info.ts` states them: iteration ends quietly on a normal close
 * (1000, 1001, 1005) and rejects with {@linkcode ConnectionClosedError} on
 * any other, after the messages received before the close;
 * {@linkcode WebSocketClient.closed} never rejects, and resolves once the
 * socket is released.
 *
 * This module does not touch `Deno.*`: it runs on every runtime.
 *
 * @module
 */

import type {
  CheckedOptions,
  ClientOptions,
  ClientState,
  ClientStats,
  CloseInfo,
  Message,
  SendData,
  SignalOptions,
} from "./options.ts";
import { resolveClientOptions } from "./resolve.ts";
import { ConnectError, ConnectionClosedError, TooSlowError } from "../util/errors.ts";
import { ClientCounters } from "./stats.ts";
import {
  checkClientClose,
  type CloseCause,
  closeInfoOf,
  connectFailureInfo,
  describeClose,
  isNormalClose,
  notOpenError,
} from "./close_info.ts";
import { Watchdogs } from "./watchdogs.ts";
import { Flow } from "./flow.ts";
import type { Probe, ProbeListener } from "../heartbeat/loop.ts";
import { Inbox } from "./inbox.ts";
import { Probes, untilAborted } from "./probes.ts";
import type {
  ClosingStart,
  HandshakeResponse,
  Transport,
  TransportHandler,
} from "../transport/transport.ts";
import { NativeTransport } from "../transport/native.ts";
import { maskUrl } from "../util/url.ts";

/**
 * A connected (or connecting) WebSocket: iterate it for messages, `send()` on
 * it, `close()` it. Create one with {@linkcode connect}; the constructor also
 * wraps a native `WebSocket` you made yourself (wrap it before yielding to the
 * event loop, so no message is missed), or any {@linkcode Transport}.
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
  #transport: Transport;
  #opts: CheckedOptions;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #onSignal = () => this.#onAbort();
  #probes: Probes;
  #inbox: Inbox;

  // Lifecycle: one phase, and one record of the close once something began it.
  #opened: Promise<void>;
  #phase: ClientState = "connecting";
  /** What is ending the connection and why: its first cause, never replaced. */
  #cause: CloseCause | undefined;
  /** How it ended, and the error readers get, once `#phase` is `"closed"`. */
  #ended: { info: CloseInfo; error: ConnectionClosedError } | undefined;
  #closed: Promise<CloseInfo>;
  #resolveClosed!: (info: CloseInfo) => void;
  #watchdogs: Watchdogs; // the heartbeat and the stale watch, while open

  #flow: Flow;

  #counters: ClientCounters;
  /** Messages and pongs handed over by the transport: what the heartbeat's catch-up watches. */
  #arrivals = 0;

  /**
   * Wraps a native `WebSocket` (in the `CONNECTING` or `OPEN` state) or a
   * {@linkcode Transport} that is connecting.
   *
   * @param socket The socket or transport to wrap.
   * @param options Timeouts, heartbeat, queue bounds and signal; checked here,
   *   unless `connect()` resolved them (see `client/options.ts`).
   * @throws {TypeError} If an option has the wrong type.
   * @throws {RangeError} If an option is out of range.
   */
  constructor(socket: WebSocket | Transport, options: ClientOptions = {}) {
    const opts = resolveClientOptions(options);
    this.#opts = opts;
    const transport: Transport = "attach" in socket
      ? socket
      : new NativeTransport(socket, maskUrl(socket.url));
    this.#transport = transport;
    this.#counters = new ClientCounters(transport);
    this.#flow = new Flow(transport, opts.sendHighWaterMark);
    this.#probes = new Probes(opts.heartbeat ?? {}, {
      send: (message) => this.send(message),
      ping: (payload) => {
        this.#checkOpen("ping");
        transport.ping(payload);
      },
    });
    this.#inbox = new Inbox({
      maxMessages: opts.maxQueuedMessages,
      maxBytes: opts.maxQueuedBytes,
      onFull: () => this.#onFull(),
      onRoom: () => this.#flow.resume(),
    });
    this.#watchdogs = new Watchdogs({
      probe: (application, listener) => this.#probe(application, listener),
      excuseLate: (timeout) => this.#flow.excuseLate(timeout),
      readPaused: () => this.#flow.paused,
      progress: () => this.#arrivals + (transport.reads ?? 0),
      fail: (initiator, error) => {
        if (this.#phase === "open") this.#forceEnd(initiator, error);
      },
    });
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    transport.attach(this.#handler);
    let failure: unknown;
    this.#opened = transport.opened.then(
      () => this.#onOpen(),
      (error) => {
        failure = error;
        // An aborted signal rejects `opened` with its reason, whatever that is.
        throw this.#cause?.by === "abort" ? this.#cause.reason : error;
      },
    );
    this.#opened.catch((error) => this.#onConnectFailed(error, failure));
    if (opts.connectTimeout !== Infinity) {
      this.#connectTimer = setTimeout(() => {
        transport.abort(
          new ConnectError(
            transport.url,
            "timeout",
            `no handshake within ${opts.connectTimeout} ms (connectTimeout); ` +
              "is the server up and speaking WebSocket on that port?",
          ),
        );
      }, opts.connectTimeout);
    }
    const signal = opts.signal;
    if (signal) {
      if (signal.aborted) this.#onAbort();
      else signal.addEventListener("abort", this.#onSignal, { once: true });
    }
  }

  /** The URL, credentials masked. */
  get url(): string {
    return this.#transport.url;
  }

  /** The subprotocol the server chose, or `""`. */
  get protocol(): string {
    return this.#transport.protocol;
  }

  /** The extensions the server chose, or `""`. */
  get extensions(): string {
    return this.#transport.extensions;
  }

  /**
   * The server's answer to the opening handshake (`status` 101,
   * `statusText`, `headers`), once open; `undefined` on the native
   * transport, which does not show it.
   */
  get response(): HandshakeResponse | undefined {
    return this.#transport.response;
  }

  /** Received messages waiting to be read (by iteration or `receive()`). */
  get unread(): number {
    return this.#inbox.length;
  }

  /** Bytes passed to `send()` that have not yet been written to the socket. */
  get bufferedAmount(): number {
    return this.#ended ? 0 : this.#transport.bufferedAmount;
  }

  /** `"connecting"`, `"open"`, `"closing"` or `"closed"`. */
  get state(): ClientState {
    return this.#phase;
  }

  /**
   * Resolves when the socket is open; rejects with a {@linkcode ConnectError},
   * or with the signal's reason when the signal aborted first.
   */
  get opened(): Promise<void> {
    return this.#opened;
  }

  /** Resolves with how the connection ended, once it is released. Never rejects. */
  get closed(): Promise<CloseInfo> {
    return this.#closed;
  }

  /** A snapshot of the counters: timing, traffic, round-trip times, flow control. */
  get stats(): ClientStats {
    return this.#counters.snapshot({
      latency: this.#probes.latency,
      readPaused: this.#flow.paused,
      readPauses: this.#flow.pauses,
      eventLoopLag: this.#watchdogs.lag,
    });
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
    this.#checkOpen("send");
    let payload: string | Uint8Array;
    if (typeof data === "string" || data instanceof Uint8Array) payload = data;
    else if (data instanceof ArrayBuffer) payload = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) {
      payload = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } else {
      throw new TypeError(
        `Cannot send data as it is not a string, ArrayBuffer or view: current value is ${
          Object.prototype.toString.call(data)
        }`,
      );
    }
    try {
      this.#transport.send(payload);
    } catch (error) {
      throw this.#notOpen("send", error);
    }
    this.#counters.sent(payload);
  }

  /**
   * Resolves once the bytes waiting to be written are at or below
   * `sendHighWaterMark`: a producer that awaits it after each `send()` holds
   * a bounded amount in memory, however slowly the peer reads.
   *
   * @param options A signal to stop waiting.
   * @throws {ConnectionClosedError} If the connection closes first.
   */
  drain(options: SignalOptions = {}): Promise<void> {
    return this.#flow.drain(() => this.#ended?.error, options.signal);
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
    return this.#inbox.receive(options.signal);
  }

  /**
   * Iterates the messages. Ends quietly on a normal close (1000, 1001, 1005);
   * rejects with {@linkcode ConnectionClosedError} on any other. Leaving the
   * loop early (`break`) does not close the connection.
   */
  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return { next: () => this.#inbox.next() };
  }

  /**
   * Measures a round trip: on the wsbeat transport a ping frame answered by
   * the peer's pong (every conforming server answers), on the native one an
   * application probe (see {@linkcode ProbeOptions}). It does not time out by
   * itself: bound it with a signal, or use {@linkcode failAfter}.
   *
   * @param options A signal to stop waiting.
   * @returns The round-trip time in milliseconds.
   * @throws {ConnectionClosedError} If the connection is or becomes closed.
   */
  ping(options: SignalOptions = {}): Promise<number> {
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    if (this.#phase !== "open") return Promise.reject(this.#notOpen("ping"));
    return untilAborted(this.#probes.awaited(!this.#transport.canPing), options.signal);
  }

  /**
   * Starts the closing handshake and resolves when it completes and the
   * socket is released. If the peer has not answered within `closeTimeout`
   * ms, the TCP connection is closed anyway. Closing a closed client
   * resolves with how it ended; closing a connecting one aborts the connect.
   *
   * @param code A close code: 1000, 1001 when this end is going away (not on
   *   the native transport, whose Web API refuses it), or 3000 to 4999 for
   *   applications.
   * @param reason A reason of at most 123 UTF-8 bytes.
   * @returns How the connection ended.
   * @throws {RangeError} If the code or reason is not allowed.
   */
  async close(code = 1000, reason = ""): Promise<CloseInfo> {
    checkClientClose(code, reason);
    if (code === 1001 && this.#transport instanceof NativeTransport) {
      throw new RangeError(
        "Cannot close with code 1001 on the native transport as the runtime's WebSocket " +
          "sends only 1000 or 3000 to 4999: use 1000, or the wsbeat transport",
      );
    }
    if (this.#ended) return this.#ended.info;
    this.#cause ??= { by: "close", code, reason };
    if (this.#phase === "connecting") {
      this.#transport.abort(
        new ConnectError(this.#transport.url, "aborted", "close() was called while connecting"),
      );
      return this.#closed;
    }
    // The closing handshake has its own bound (closeTimeout): the watchdogs' work is done.
    this.#watchdogs.stop(
      new ConnectionClosedError(code, reason, "The client is closing the connection"),
    );
    if (this.#phase === "open") {
      this.#phase = "closing";
      this.#transport.close(code, reason);
    }
    if (this.#opts.closeTimeout === Infinity) return this.#closed;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((
      resolve,
    ) => (timer = setTimeout(resolve, this.#opts.closeTimeout)));
    const info = await Promise.race([this.#closed, late]);
    clearTimeout(timer);
    if (info) return info;
    // The peer did not finish the handshake in time: close TCP. If close
    // frames did go both ways, the close is still reported as clean.
    this.#transport.abort(
      new TooSlowError(
        this.#opts.closeTimeout,
        `The peer did not finish the closing handshake within ${this.#opts.closeTimeout} ms (closeTimeout)`,
      ),
    );
    return this.#closed;
  }

  /** Closes the connection with code 1000, as `await using` does. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // --- internals -----------------------------------------------------------

  #handler: TransportHandler = {
    onMessage: (data, bytes) => {
      if (this.#ended) return;
      this.#arrivals++;
      bytes = this.#counters.received(data, bytes); // counted once, for the inbox too
      const probes = this.#probes;
      if ((probes.hasReply || probes.awaitingMessage) && probes.onMessage(data)) return;
      this.#watchdogs.touch();
      this.#inbox.push(data, bytes);
    },
    onPong: (payload) => {
      this.#arrivals++;
      this.#probes.onPong(payload);
    },
    onDrain: () => this.#flow.written(),
    settle: () => this.#inbox.settled(),
    onClosing: (start) => this.#onClosing(start),
    onClosed: (end) => this.#finish(closeInfoOf(end, this.#cause)),
  };

  #checkOpen(action: string): void {
    if (this.#phase !== "open") throw this.#notOpen(action);
  }

  #notOpen(action: string, cause?: unknown): ConnectionClosedError {
    return notOpenError(action, this.#phase, this.#ended?.info ?? this.#cause, cause);
  }

  /**
   * The peer began the closing handshake, or broke the protocol and the
   * connection is being failed: that is the first cause of the close. Nothing
   * can be sent any more, and the watchdogs stop, so that neither can become
   * the cause instead (the closing handshake has its own bound, closeTimeout).
   */
  #onClosing(start: ClosingStart): void {
    if (this.#cause || this.#ended) return;
    this.#cause = start;
    if (this.#phase === "open") this.#phase = "closing"; // while connecting: once open
    this.#watchdogs.stop(this.#notOpen("ping"));
  }

  /** One heartbeat probe: a ping frame, or an application message when `application`. */
  #probe(application: boolean, listener: ProbeListener): Probe {
    if (this.#phase !== "open") throw this.#notOpen("ping");
    return application ? this.#probes.probeMessage(listener) : this.#probes.pingFrame(listener);
  }

  #onOpen(): void {
    clearTimeout(this.#connectTimer);
    this.#counters.opened();
    if (this.#phase !== "connecting") return; // closed already
    // Frames that came with the handshake's answer (or a close() just now) may have begun the
    // close already: then the close has its cause, and no watchdog is started to replace it.
    this.#phase = this.#cause ? "closing" : "open";
    if (this.#cause) return;
    this.#watchdogs.start({
      heartbeat: this.#opts.heartbeat,
      canPing: this.#transport.canPing,
      staleAfter: this.#opts.staleAfter,
    });
  }

  #onFull(): void {
    if (this.#transport.canPause) {
      this.#flow.pause();
      return;
    }
    this.#forceEnd(
      "client",
      new ConnectionClosedError(
        1006,
        "",
        `Consumer fell behind: ${this.#inbox.length} received messages were waiting to be read ` +
          "(maxQueuedMessages, maxQueuedBytes), and the native transport cannot stop reading; " +
          "read faster, raise the bounds, or use the wsbeat transport",
      ),
    );
  }

  /** `opened` rejected with `rejected`, the transport's `opened` with `failure`. */
  #onConnectFailed(rejected: unknown, failure: unknown): void {
    const error = rejected instanceof Error ? rejected : failure;
    this.#finish(connectFailureInfo(this.#cause, error instanceof Error ? error : undefined));
  }

  #onAbort(): void {
    const reason = this.#opts.signal!.reason;
    if (this.#phase !== "connecting") {
      this.close().catch(() => {});
      return;
    }
    this.#cause ??= { by: "abort", reason }; // `opened` rejects with the reason itself
    this.#transport.abort(reason instanceof Error ? reason : new Error(String(reason)));
  }

  /**
   * Ends the connection at once, without waiting for the peer: for a peer
   * that is not answering, or a consumer that fell behind. Reported as 1006
   * with `error`, as soon as the transport has let go of the socket.
   */
  #forceEnd(initiator: "client" | "heartbeat", error: Error): void {
    if (this.#ended || this.#cause?.by === "forced") return;
    // A close under way (only the native transport's own close() can be) keeps its cause.
    this.#cause ??= { by: "forced", initiator, error };
    this.#phase = "closing";
    this.#watchdogs.stop(error);
    this.#transport.abort(error, 1011);
  }

  #finish(info: CloseInfo): void {
    if (this.#ended) return;
    clearTimeout(this.#connectTimer);
    const error = info.error instanceof ConnectionClosedError
      ? info.error
      : new ConnectionClosedError(info.code, info.reason, describeClose(info), {
        cause: info.error,
      });
    this.#ended = { info, error };
    this.#phase = "closed";
    this.#counters.ended();
    this.#opts.signal?.removeEventListener("abort", this.#onSignal);
    this.#watchdogs.stop(error);
    this.#flow.end();
    this.#inbox.end(error, this.#opts.quietEnd || isNormalClose(info));
    this.#probes.rejectAll(error);
    this.#resolveClosed(info);
  }
}
