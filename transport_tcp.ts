/**
 * Layer 2: wsbeat's own transport, the sans-I/O {@linkcode Protocol} driven
 * over `Deno.connect` (and `Deno.startTls` for `wss:`). It is the only place
 * with reads, writes and sockets for that protocol:
 *
 * - one read loop, feeding each chunk to the protocol and dispatching its
 *   events; paused while the client's queue is full, so TCP flow control
 *   holds the peer back instead of memory growing;
 * - one write pump that writes every frame queued since the last write in a
 *   single `write()` (with `TCP_NODELAY` on, so a frame never waits for the
 *   peer's delayed ACK);
 * - `abort()`, which closes the socket at once: a dead peer is released, not
 *   waited on.
 *
 * `Deno.*` is touched only inside the functions here, behind
 * {@linkcode canUseTcp}, so the module loads on every runtime.
 *
 * @module
 */

import { giveBack } from "./buffer_pool.ts";
import type { ProtocolError } from "./errors.ts";
import { acceptKey, buildClientRequest, generateKey } from "./handshake.ts";
import { Protocol } from "./protocol.ts";
import { classify, denoNet, openConnection, readHandshakeAnswer, writeAll } from "./tcp_connect.ts";
import type { Transport, TransportEnd, TransportHandler } from "./transport.ts";

/** Settings for {@linkcode TcpTransport}. */
export interface TcpTransportOptions {
  /** The `ws:` or `wss:` URL, already checked. */
  url: URL;
  /** The URL as errors show it, credentials masked. */
  displayUrl: string;
  /** Subprotocols to offer. */
  protocols: string[];
  /** Extra handshake headers, as the caller gave them (checked by `buildClientRequest`). */
  headers: HeadersInit | undefined;
  /** Extra CA certificates (PEM) for `wss:`. */
  caCerts: string[] | undefined;
  /** The largest message accepted, in bytes. */
  maxMessageSize: number;
  /**
   * Milliseconds to wait, once close frames went both ways, for the server
   * to close TCP (RFC 6455 section 7.1.1) before closing it ourselves.
   */
  closeTimeout: number;
  /** An HTTP proxy to tunnel through with CONNECT (see `proxy.ts`). */
  proxy?: URL | undefined;
  /** A client certificate and key (PEM) for `wss:`, presented with `Deno.connectTls`. */
  clientCert?: { cert: string; key: string } | undefined;
}

/** Read buffer size: a loopback read rarely returns more. */
const READ_SIZE = 64 * 1024;
/** The read buffer of a connection that has not yet received a burst that filled it. */
const READ_SIZE_IDLE = 1024;
/** Batches of frames up to this size are joined in a buffer the connection keeps. */
const BATCH_BUFFER_MAX = 64 * 1024;

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

  // Writing: frames wait in #outbox until the pump writes them in one write.
  #outbox: Uint8Array[] = [];
  #batchBuffer: Uint8Array | undefined;
  #buffered = 0;
  #writing = false;
  /** The frame `#writeOne` is writing. */
  #inFlight: Uint8Array | undefined;
  /** Ends the pump's wait for more frames early (see `#gather`). */
  #gathered: (() => void) | undefined;
  /** The pump waits for the next task before its first write (see `#burst`). */
  #deferred = false;
  /** The latest read delivered more than one message: answers are likely to follow in a burst. */
  #burst = false;
  #closeWhenFlushed = false;

  // Reading.
  #paused = false;
  #resume: (() => void) | undefined;
  #readLoop: Promise<void> | undefined;
  #writePump: Promise<void> | undefined;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;

  #key = generateKey();
  #request: Uint8Array | undefined; // dropped once written

  /**
   * Starts connecting.
   *
   * @param options The URL, offers, headers, TLS trust and message limit.
   * @throws {TypeError} If a header is invalid or one the handshake sets itself
   *   (before any connection is made).
   */
  constructor(options: TcpTransportOptions) {
    this.#options = options;
    this.#request = buildClientRequest({
      url: options.url,
      key: this.#key,
      protocols: options.protocols,
      headers: options.headers,
    });
    this.#protocol = new Protocol({ role: "client", maxMessageSize: options.maxMessageSize });
    this.opened = this.#connect();
    this.opened.catch(() => {});
  }

  get url(): string {
    return this.#options.displayUrl;
  }

  get protocol(): string {
    return this.#protocolName;
  }

  get extensions(): string {
    return this.#extensions;
  }

  get bufferedAmount(): number {
    return this.#buffered;
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
    // Best effort: the close frame goes out only if nothing is stuck ahead of it.
    if ((!this.#writing || this.#deferred) && this.#protocol.state === "open") {
      this.#firstClose ??= "local";
      this.#protocol.fail(code, reason.message.slice(0, 100));
      const frames = [...this.#outbox, ...this.#protocol.dataToSend()];
      let total = 0;
      for (const frame of frames) total += frame.byteLength;
      const batch = frames.length === 1
        ? frames[0]!
        : this.#concat(frames, 0, frames.length, total);
      this.#conn!.write(batch).catch(() => {});
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
    const { url, displayUrl } = this.#options;
    const net = denoNet();
    if (!net) throw new TypeError("Cannot use the wsbeat transport as Deno.connect is missing");
    const tls = url.protocol === "wss:";
    const signal = this.#connecting!.signal;
    try {
      const conn = await openConnection(net, { ...this.#options, signal }, (opened) => {
        this.#conn = opened; // closed by #release if connecting is aborted
      });
      const accept = await acceptKey(this.#key);
      if (signal.aborted) throw signal.reason;
      await writeAll(conn, this.#request!);
      this.#request = undefined;
      const answer = await readHandshakeAnswer(conn, {
        accept,
        tls,
        displayUrl,
        protocols: this.#options.protocols,
      });
      this.#protocolName = answer.protocol;
      this.#extensions = answer.extensions;
      this.#open = true;
      this.#connecting = undefined;
      if (answer.rest.byteLength > 0) this.#protocol.receiveData(answer.rest);
    } catch (error) {
      const reason = signal.aborted ? signal.reason : classify(displayUrl, error, tls);
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
    // A pending read holds its buffer, so an idle connection keeps a small one; a read that
    // fills it doubles it, up to READ_SIZE, for a connection that receives in bulk.
    let buffer = new Uint8Array(READ_SIZE_IDLE);
    try {
      while (!this.#ended) {
        if (this.#paused) {
          await new Promise<void>((resolve) => (this.#resume = resolve));
          continue;
        }
        const n = await conn.read(buffer);
        if (this.#ended) break;
        if (n === null) this.#protocol.receiveEof();
        else this.#protocol.receiveData(buffer, n);
        this.#dispatch();
        if (n === null) break;
        if (n === buffer.length && n < READ_SIZE) buffer = new Uint8Array(2 * n);
      }
    } catch (error) {
      if (!this.#ended) {
        this.#networkError ??= error instanceof Error ? error : new Error(String(error));
      }
    }
    this.#release();
  }

  /** Hands the protocol's events to the handler, then writes what it queued. */
  #dispatch(): void {
    const protocol = this.#protocol;
    const handler = this.#handler!;
    this.#burst = protocol.pendingEvents > 1;
    for (let event; (event = protocol.nextEvent()) !== undefined;) {
      switch (event.type) {
        case "text":
        case "binary":
          handler.onMessage(event.data);
          break;
        case "pong":
          handler.onPong(event.data);
          break;
        case "close":
          this.#firstClose ??= "remote";
          break;
        case "ping":
          break; // already answered by the protocol
      }
    }
    this.#flush();
    if (this.#protocol.closeExpected()) {
      this.#closeWhenFlushed = true;
      if (!this.#writing) this.#release();
    } else if (
      this.#protocol.closeSent && this.#protocol.closeReceived && !this.#lingerTimer &&
      this.#options.closeTimeout !== Infinity
    ) {
      // The server should close TCP now; do not wait on it for ever.
      this.#lingerTimer = setTimeout(() => this.#release(), this.#options.closeTimeout);
    }
  }

  // --- writing ---------------------------------------------------------------

  #flush(): void {
    if (this.#protocol.pendingBytes === 0 || this.#ended) return;
    for (let frame; (frame = this.#protocol.nextData()) !== undefined;) {
      this.#outbox.push(frame);
      this.#buffered += frame.byteLength;
    }
    if (this.#writing) {
      const gathered = this.#gathered;
      if (
        gathered !== undefined &&
        (this.#buffered >= GATHER_BYTES || this.#outbox.length >= GATHER_FRAMES)
      ) {
        this.#gathered = undefined;
        gathered();
      }
      return;
    }
    if (!this.#burst && this.#outbox.length === 1) this.#writeOne(this.#outbox.pop()!);
    else this.#writePump = this.#pump(this.#burst);
  }

  /**
   * Writes one frame on an idle pump (a heartbeat's ping, a lone message)
   * without an async function: the pump's work, for the common case.
   */
  /**
   * Waits while the application queues more frames: until the next task, or
   * until {@linkcode GATHER_BYTES} are queued, whichever comes first.
   */
  #gather(): Promise<void> {
    return new Promise((resolve) => {
      this.#gathered = resolve;
      nextTask(() => {
        if (this.#gathered === resolve) this.#gathered = undefined;
        resolve();
      });
    });
  }

  #writeOne(frame: Uint8Array): void {
    this.#writing = true;
    this.#inFlight = frame;
    this.#writePump = this.#conn!.write(frame).then(this.#wroteOne, this.#writeFailed);
  }

  #wroteOne = (written: number): void => {
    const frame = this.#inFlight!;
    this.#inFlight = undefined;
    if (written < frame.byteLength) { // rare: the rest, and what queued meanwhile, by the pump
      this.#outbox.unshift(frame.subarray(written));
      this.#buffered -= written;
      this.#writePump = this.#pump(false);
      return;
    }
    this.#buffered -= frame.byteLength;
    giveBack(frame.buffer);
    this.#handler?.onDrain?.();
    if (this.#outbox.length > 0 && !this.#ended) {
      this.#writePump = this.#pump(true); // queued during the write: together, next task
      return;
    }
    this.#writing = false;
    if (this.#closeWhenFlushed) this.#release();
  };

  #writeFailed = (error: unknown): void => {
    this.#inFlight = undefined;
    this.#writing = false;
    if (this.#ended) return;
    this.#networkError ??= error instanceof Error ? error : new Error(String(error));
    this.#release();
  };

  /**
   * Joins `chunks[from..to)` (`total` bytes) for one write: in a buffer kept
   * for the next batch when they fit in it (the previous write has
   * completed by then), else in a new one.
   */
  #concat(chunks: Uint8Array[], from: number, to: number, total: number): Uint8Array {
    let out: Uint8Array;
    if (total > BATCH_BUFFER_MAX) out = new Uint8Array(total);
    else {
      if (this.#batchBuffer === undefined || this.#batchBuffer.byteLength < total) {
        this.#batchBuffer = new Uint8Array(Math.min(BATCH_BUFFER_MAX, Math.max(total * 2, 4096)));
      }
      out = this.#batchBuffer.subarray(0, total);
    }
    let offset = 0;
    for (let i = from; i < to; i++) {
      out.set(chunks[i]!, offset);
      offset += chunks[i]!.byteLength;
    }
    return out;
  }

  /**
   * Writes the outbox until it is empty. With `defer` (the application is
   * answering a burst of messages) the first write waits for the next task,
   * so that the answers go out together.
   */
  async #pump(defer: boolean): Promise<void> {
    this.#writing = true;
    const conn = this.#conn!;
    try {
      if (defer) {
        this.#deferred = true;
        await this.#gather();
        this.#deferred = false;
      }
      while (this.#outbox.length > 0 && !this.#ended) {
        const frames = this.#outbox;
        this.#outbox = [];
        // Small frames are joined, up to BATCH_BUFFER_MAX a write; a large one is written as it
        // is, since copying it would cost more than the write it saves.
        for (let i = 0; i < frames.length && !this.#ended;) {
          let end = i + 1;
          let total = frames[i]!.byteLength;
          while (end < frames.length && total + frames[end]!.byteLength <= BATCH_BUFFER_MAX) {
            total += frames[end++]!.byteLength;
          }
          const batch = end === i + 1 ? frames[i]! : this.#concat(frames, i, end, total);
          // One await when the socket takes it all, as it nearly always does.
          const written = await conn.write(batch);
          if (written < total) await writeAll(conn, batch.subarray(written));
          // A large frame's buffer came from buffer_pool.ts (the protocol's `slab`); the others
          // are ignored. Nothing else holds a frame once it is written.
          for (let f = i; f < end; f++) giveBack(frames[f]!.buffer);
          this.#buffered -= total;
          this.#handler?.onDrain?.();
          i = end;
        }
        // Frames queued while that write was in flight: let the current task queue all it will
        // before writing them, so a burst goes out in one write (one loopback segment, one
        // syscall) instead of one per frame. A lone frame on an idle pump is written at once.
        if (this.#outbox.length > 0) await this.#gather();
      }
    } catch (error) {
      if (!this.#ended) {
        this.#networkError ??= error instanceof Error ? error : new Error(String(error));
        this.#writing = false;
        this.#release();
        return;
      }
    }
    this.#writing = false;
    if (this.#closeWhenFlushed) this.#release();
  }

  // --- the end -----------------------------------------------------------------

  /** Closes the socket (once) and, when open, reports the end after the loops finish. */
  #release(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#lingerTimer);
    this.#buffered = 0;
    this.#outbox = [];
    try {
      this.#conn?.close();
    } catch { /* already closed */ }
    this.#resume?.();
    if (!this.#open) return;
    const loops = [this.#readLoop, this.#writePump].filter(Boolean);
    Promise.all(loops).then(() => this.#handler!.onClosed(this.#end()));
  }

  #end(): TransportEnd {
    const p = this.#protocol;
    const sent = p.closeSent;
    const received = p.closeReceived;
    const failure: ProtocolError | undefined = p.failure;
    if (failure && sent) {
      return {
        code: sent.code,
        reason: sent.reason,
        wasClean: false,
        firstClose: "local",
        error: failure,
      };
    }
    if (sent && received) {
      return {
        code: received.code,
        reason: received.reason,
        wasClean: true,
        firstClose: this.#firstClose,
      };
    }
    const error = this.#abortError ?? this.#networkError ??
      new Error("the connection closed without a closing handshake");
    return { code: 1006, reason: "", wasClean: false, firstClose: this.#firstClose, error };
  }
}

/** Resolves in a later task (after the microtasks queued now), cheaply where the runtime can. */
function nextTask(resolve: () => void): void {
  const setImmediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
  // setTimeout(0) would wait about 2 ms here (Deno 2.9, nested timers).
  if (setImmediate) setImmediate(resolve);
  else queueMicrotask(resolve);
}

/**
 * A burst's answers gathered for one write go out early once they reach this
 * many bytes, so that the peer starts on them while the rest are made (the
 * two ends then work at once instead of taking turns).
 */
const GATHER_BYTES = 16 * 1024;
/** ... or this many frames. */
const GATHER_FRAMES = 16;
