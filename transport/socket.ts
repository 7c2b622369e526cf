/**
 * The transport layer: wsbeat's own transport, the sans-I/O {@linkcode Protocol} driven
 * over `Deno.connect` (and `Deno.startTls` for `wss:`), once `transport/opening.ts`
 * has opened the socket and run the handshake. It is the only place with the
 * open connection's reads and writes:
 *
 * - one read loop, feeding each chunk to the protocol and dispatching its
 *   events, then letting a prompt consumer take them (`settle`); paused while
 *   the client's queue is full, so TCP flow control holds the peer back;
 * - one write pump (`transport/frame_writer.ts`, gathering) that writes every frame
 *   queued since the last write in a single `write()` (with `TCP_NODELAY`
 *   on, so a frame never waits for the peer's delayed ACK);
 * - `abort()`, which closes the socket at once: a dead peer is released, not
 *   waited on.
 *
 * `Deno.*` is touched only inside the functions here, behind
 * `canUseTcp()` in `transport/tcp_connect.ts`, so the module loads on every runtime.
 *
 * @module
 */

import { FrameWriter } from "./frame_writer.ts";
import { Protocol } from "../protocol/protocol.ts";
import { loadDeflate } from "../protocol/deflate_extension.ts";
import { connectFailure, denoNet } from "./tcp_connect.ts";
import { Opening, type OpeningOptions } from "./opening.ts";
import { ReadBuffer } from "./read_buffer.ts";
import { protocolEnd } from "./transport.ts";
import type { HandshakeResponse, Transport, TransportHandler } from "./transport.ts";

/** Settings for {@linkcode TcpTransport}: the opening's (`transport/opening.ts`), and these. */
export interface TcpTransportOptions extends OpeningOptions {
  /** The largest message accepted, in bytes. */
  maxMessageSize: number;
  /**
   * Milliseconds to wait, once close frames went both ways, for the server
   * to close TCP (RFC 6455 section 7.1.1) before closing it ourselves.
   */
  closeTimeout: number;
}

/**
 * Unsent bytes past which automatic pongs are coalesced (see `#flush`): far
 * above what a healthy connection leaves waiting between two writes, and a
 * small bound on what a ping flood can make us hold.
 */
const PONG_BACKLOG = 16 * 1024;

/** The first byte of an unfragmented pong frame, and of a close frame. */
const PONG_BYTE = 0x8a;
const CLOSE_BYTE = 0x88;

/** The protocol's settings: a fault waits for the answers to the messages before it (`#dispatch`). */
const CLIENT = { role: "client", deferFailure: true } as const;

/**
 * wsbeat's own transport: see the module doc. Created connecting; the
 * connection, TLS and opening handshake run in the constructor's promise,
 * {@linkcode TcpTransport.opened}.
 */
export class TcpTransport implements Transport {
  readonly opened: Promise<void>;
  readonly canPing = true;
  readonly canPause = true;
  #options: TcpTransportOptions;
  #handler: TransportHandler | undefined;
  #protocol: Protocol;
  #conn: Deno.Conn | undefined;
  #connecting: AbortController | undefined = new AbortController(); // dropped once open
  #protocolName = "";
  #extensions = "";
  #open = false;
  #ended = false;
  #abortError: Error | undefined;
  #networkError: Error | undefined;
  #firstClose: "local" | "remote" | undefined;

  // Writing (transport/frame_writer.ts): created once the connection is open.
  #writer: FrameWriter | undefined;
  /** The latest read delivered more than one message: answers are likely to follow in a burst. */
  #burst = false;
  #closeWhenFlushed = false;
  /** The latest automatic pong, waiting for the unsent bytes ahead of it (see `#flush`). */
  #heldPong: Uint8Array | undefined;
  #closingTold = false;

  // Reading.
  #paused = false;
  #reads = 0;
  #resume: (() => void) | undefined;
  #readLoop: Promise<void> | undefined;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;

  #opening: Opening; // the request, the redirects and the URL they led to
  #response: HandshakeResponse | undefined;

  /**
   * Starts connecting.
   *
   * @param options The URL, offers, headers, TLS trust and message limit.
   * @throws {TypeError} If a header is invalid or one the handshake sets itself
   *   (before any connection is made).
   */
  constructor(options: TcpTransportOptions) {
    this.#options = options;
    this.#opening = new Opening(options);
    this.#protocol = new Protocol({ ...CLIENT, maxMessageSize: options.maxMessageSize });
    this.opened = this.#connect();
    this.opened.catch(() => {});
  }

  get url(): string {
    return this.#opening.displayUrl;
  }

  /** The server's 101 answer, once open. */
  get response(): HandshakeResponse | undefined {
    return this.#response;
  }

  get protocol(): string {
    return this.#protocolName;
  }

  get extensions(): string {
    return this.#extensions;
  }

  get bufferedAmount(): number {
    return this.#writer?.unsent ?? 0;
  }

  /** Reads from the socket that completed (see {@linkcode Transport.reads}). */
  get reads(): number {
    return this.#reads;
  }

  /** Counted by the protocol, as it frames them. */
  get bytesSent(): number {
    return this.#protocol.bytesSent;
  }

  /** Counted by the protocol, as it parses them. */
  get bytesReceived(): number {
    return this.#protocol.bytesReceived;
  }

  attach(handler: TransportHandler): void {
    this.#handler = handler;
  }

  send(data: string | Uint8Array): void {
    if (typeof data === "string") this.#protocol.sendText(data);
    else this.#protocol.sendBinary(data);
    this.#flush();
  }

  ping(payload: Uint8Array): void {
    this.#protocol.sendPing(payload);
    this.#flush();
  }

  close(code: number, reason: string): void {
    if (!this.#open || this.#protocol.closeSent) return;
    if (this.#protocol.failurePending) return this.#failNow(); // the peer's fault came first
    this.#firstClose ??= "local";
    this.#protocol.sendClose(code, reason);
    this.#flush();
  }

  abort(reason: Error, code = 1011): void {
    if (this.#ended) return;
    this.#abortError ??= reason;
    if (!this.#open) {
      this.#connecting?.abort(reason);
      this.#release();
      return;
    }
    // Best effort: the close frame goes out only if no write is stuck ahead of it.
    const writer = this.#writer!;
    if (!writer.writing && this.#protocol.state === "open") {
      this.#firstClose ??= "local";
      const failure = this.#protocol.failurePending ? this.#protocol.failure! : undefined;
      this.#protocol.fail(failure?.closeCode ?? code, failure?.rule ?? reason.message.slice(0, 99));
      writer.abandon(this.#protocol.dataToSend());
    }
    this.#release();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    const resume = this.#resume;
    this.#resume = undefined;
    resume?.();
  }

  // --- connecting ------------------------------------------------------------

  async #connect(): Promise<void> {
    const options = this.#options;
    const net = denoNet();
    if (!net) throw new TypeError("Cannot use the wsbeat transport as Deno.connect is missing");
    const signal = this.#connecting!.signal;
    try {
      const { conn, answer } = await this.#opening.run(net, signal, (opened) => {
        this.#conn = opened; // closed by #release if connecting is aborted
      });
      this.#response = answer.response;
      this.#protocolName = answer.protocol;
      this.#extensions = answer.extensions;
      if (answer.deflate !== undefined) {
        // node:zlib is imported when a server first agrees (the import blocks ~40 ms, once).
        const deflate = await loadDeflate(answer.deflate, options.compression!, signal);
        this.#protocol = new Protocol({
          ...CLIENT,
          maxMessageSize: options.maxMessageSize,
          deflate,
        });
      }
      this.#open = true;
      this.#writer = new FrameWriter(conn, {
        onWritten: () => this.#written(),
        onIdle: () => {
          if (this.#closeWhenFlushed) this.#release();
        },
        onError: (error) => {
          this.#networkError ??= error instanceof Error ? error : new Error(String(error));
          this.#release();
        },
      }, { gather: true });
      this.#connecting = undefined;
      if (answer.rest.byteLength > 0) this.#protocol.receiveData(answer.rest);
    } catch (error) {
      const { displayUrl, tls } = this.#opening;
      const reason = connectFailure(displayUrl, error, signal, tls);
      this.#abortError ??= reason;
      this.#release();
      throw reason;
    }
    // The read loop starts after the client has seen `opened` resolve.
    queueMicrotask(() => {
      this.#dispatch();
      if (!this.#ended) this.#readLoop = this.#read();
    });
  }

  // --- reading ---------------------------------------------------------------

  async #read(): Promise<void> {
    const conn = this.#conn!;
    const reads = new ReadBuffer(); // small while idle, large for a feed
    try {
      while (!this.#ended) {
        if (this.#protocol.failurePending) {
          // A fault after messages in one read waits for the answers to them (sent in the
          // microtasks after #dispatch), as Node's ws and browsers let them out; then it fails.
          await new Promise((resolve) => setTimeout(resolve, 0));
          if (!this.#ended && this.#protocol.failurePending) this.#failNow();
          continue;
        }
        if (this.#paused) {
          await new Promise<void>((resolve) => (this.#resume = resolve));
          continue;
        }
        const buffer = reads.bytes;
        const n = await conn.read(buffer);
        this.#reads++;
        if (this.#ended) break;
        if (n === null) this.#protocol.receiveEof();
        else this.#protocol.receiveData(buffer, n);
        const events = this.#protocol.pendingEvents;
        this.#dispatch();
        if (n === null) break;
        reads.filled(n, events);
        const settling = this.#handler!.settle?.(); // a prompt consumer takes them first
        if (settling) await settling;
      }
    } catch (error) {
      if (!this.#ended) {
        this.#networkError ??= error instanceof Error ? error : new Error(String(error));
      }
    }
    this.#release();
  }

  /** Hands the protocol's events to the handler, then writes what it queued (a fault: `#read`). */
  #dispatch(): void {
    const protocol = this.#protocol;
    const handler = this.#handler!;
    this.#burst = protocol.pendingEvents > 1;
    let messages = 0;
    for (let event; (event = protocol.nextEvent()) !== undefined;) {
      switch (event.type) {
        case "text":
        case "binary":
          handler.onMessage(event.data, protocol.eventBytes);
          messages++;
          break;
        case "pong":
          handler.onPong(event.data);
          break;
        case "close":
          this.#firstClose ??= "remote";
          break;
        case "ping":
          handler.onPing?.(event.data); // already answered by the protocol
          break;
      }
    }
    if (protocol.failurePending && messages > 0) return this.#flush(); // #read fails it later
    if (protocol.failurePending) return this.#failNow();
    this.#closing();
  }

  /** Fails the connection for the rule the peer broke (`Protocol.failure`). */
  #failNow(): void {
    const failure = this.#protocol.failure!;
    this.#protocol.fail(failure.closeCode, failure.rule);
    this.#closing();
  }

  /** After events: tells the client how closing began, writes, and closes TCP when due. */
  #closing(): void {
    const protocol = this.#protocol;
    if (!this.#closingTold && (protocol.failure || protocol.closeReceived)) this.#tellClosing();
    this.#flush();
    if (protocol.closeExpected()) {
      this.#closeWhenFlushed = true;
      if (!this.#writer!.busy) this.#release();
      else this.#linger(); // a peer that does not read must not hold the close for ever
    } else if (protocol.closeSent && protocol.closeReceived) {
      this.#linger(); // the server should close TCP now; do not wait on it for ever
    }
  }

  /**
   * Tells the client, once, that the peer began the closing handshake or that
   * the protocol failed the connection: the first cause of the close, which
   * the client records before anything else (a heartbeat, say) can end it.
   */
  #tellClosing(): void {
    this.#closingTold = true;
    const protocol = this.#protocol;
    const failure = protocol.failure;
    if (failure) {
      this.#handler!.onClosing?.({ by: "failure", error: failure });
    } else if (this.#firstClose === "remote") {
      const { code, reason } = protocol.closeReceived!;
      this.#handler!.onClosing?.({ by: "peer", code, reason });
    }
  }

  /** Releases the socket after `closeTimeout` unless it is released before. */
  #linger(): void {
    if (this.#lingerTimer || this.#options.closeTimeout === Infinity) return;
    this.#lingerTimer = setTimeout(() => this.#release(), this.#options.closeTimeout);
  }

  // --- writing ---------------------------------------------------------------

  /**
   * Hands the protocol's frames to the writer and starts it. Every ping is
   * answered while the peer keeps up with what we write; once
   * {@linkcode PONG_BACKLOG} bytes wait unsent, an automatic pong is held
   * aside instead, and a newer one replaces it (RFC 6455 section 5.5.3 lets
   * an endpoint answer only the most recent ping): a peer that floods pings
   * and never reads leaves at most that backlog and one pong waiting, not a
   * pong per ping.
   */
  #flush(): void {
    if (this.#protocol.pendingBytes === 0 || this.#ended) return;
    const writer = this.#writer;
    if (writer === undefined) return; // opening: #dispatch flushes once open
    for (let frame; (frame = this.#protocol.nextData()) !== undefined;) {
      const first = frame[0];
      if (first === PONG_BYTE && writer.unsent >= PONG_BACKLOG) {
        this.#heldPong = frame.slice(); // its own copy: the frame may be a view of a shared slab
        continue;
      }
      if (first === CLOSE_BYTE) this.#heldPong = undefined; // nothing follows a close frame
      writer.queue(frame);
    }
    writer.flush(this.#burst);
  }

  /**
   * After a write completed: the socket is moving, so the held pong joins the
   * queue (at most one pong per completed write, however many pings came).
   */
  #written(): void {
    const pong = this.#heldPong;
    if (pong !== undefined && !this.#ended) {
      this.#heldPong = undefined;
      this.#writer!.queue(pong);
      this.#writer!.flush(false);
    }
    this.#handler?.onDrain?.();
  }

  // --- the end -----------------------------------------------------------------

  /** Closes the socket (once) and, when open, reports the end after the loops finish. */
  #release(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#lingerTimer);
    this.#writer?.stop();
    try {
      this.#conn?.close();
    } catch { /* already closed */ }
    this.#resume?.();
    if (!this.#open) return;
    const loops = [this.#readLoop, this.#writer?.pump].filter(Boolean);
    Promise.all(loops).then(() => {
      const error = this.#abortError ?? this.#networkError;
      this.#handler!.onClosed(protocolEnd(this.#protocol, this.#firstClose, error));
    });
  }
}
