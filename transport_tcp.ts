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

import { ConnectError, type ProtocolError } from "./errors.ts";
import {
  acceptKey,
  buildClientRequest,
  checkResponse,
  generateKey,
  HandshakeError,
} from "./handshake.ts";
import { MAX_HEAD_BYTES, parseHttpHead } from "./http.ts";
import { Protocol, type ProtocolEvent } from "./protocol.ts";
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
}

interface DenoNet {
  connect(options: { hostname: string; port: number; signal?: AbortSignal }): Promise<Deno.TcpConn>;
  startTls(conn: Deno.Conn, options: Deno.StartTlsOptions): Promise<Deno.TlsConn>;
}

function denoNet(): DenoNet | undefined {
  const deno = (globalThis as { Deno?: Partial<DenoNet> }).Deno;
  return typeof deno?.connect === "function" && typeof deno.startTls === "function"
    ? deno as DenoNet
    : undefined;
}

/** Whether this runtime has what {@linkcode TcpTransport} needs (`Deno.connect`). */
export function canUseTcp(): boolean {
  return denoNet() !== undefined;
}

/** Read buffer size: a loopback read rarely returns more. */
const READ_SIZE = 64 * 1024;

/** Turns a failure of `Deno.connect`, TLS or the handshake into a {@linkcode ConnectError}. */
function classify(url: string, error: unknown, tls: boolean): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof HandshakeError) {
    return new ConnectError(url, error.kind, error.message, {
      cause: error,
      ...(error.status === undefined ? {} : { status: error.status }),
    });
  }
  const e = error instanceof Error ? error : new Error(String(error));
  const text = e.message;
  if (e.name === "ConnectionRefused" || /refused/i.test(text)) {
    return new ConnectError(url, "refused", "connection refused", { cause: e });
  }
  if (/lookup address|name or service|name resolution|dns/i.test(text)) {
    return new ConnectError(url, "dns", "host name not found (DNS error)", { cause: e });
  }
  if (tls && (e.name === "InvalidData" || /certificate|tls|alert|handshake/i.test(text))) {
    const hint = /UnknownIssuer|CaUsedAsEndEntity|certificate/i.test(text)
      ? "; to trust a private CA pass caCerts: [pem]"
      : /corrupt message|InvalidContentType/i.test(text)
      ? "; the server does not speak TLS on that port: use ws://"
      : "";
    return new ConnectError(url, "tls", `TLS failed (${text})${hint}`, { cause: e });
  }
  return new ConnectError(url, "network", text || "the connection failed before opening", {
    cause: e,
  });
}

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
  #connecting = new AbortController();
  #protocolName = "";
  #extensions = "";
  #open = false;
  #ended = false;
  #abortError: Error | undefined;
  #networkError: Error | undefined;
  #firstClose: "local" | "remote" | undefined;

  // Writing: frames wait in #outbox until the pump writes them in one write.
  #outbox: Uint8Array[] = [];
  #buffered = 0;
  #writing = false;
  #closeWhenFlushed = false;

  // Reading.
  #paused = false;
  #resume: (() => void) | undefined;
  #readLoop: Promise<void> | undefined;
  #writePump: Promise<void> | undefined;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;

  #key = generateKey();
  #request: Uint8Array;

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
      this.#connecting.abort(reason);
      this.#release();
      return;
    }
    // Best effort: the close frame goes out only if nothing is stuck ahead of it.
    if (!this.#writing && this.#protocol.state === "open") {
      this.#firstClose ??= "local";
      this.#protocol.fail(code, reason.message.slice(0, 100));
      const frames = this.#protocol.dataToSend();
      const conn = this.#conn!;
      for (const frame of frames) conn.write(frame).catch(() => {});
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
    const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    const port = Number(url.port) || (tls ? 443 : 80);
    const signal = this.#connecting.signal;
    try {
      const tcp = await net.connect({ hostname, port, signal });
      let conn: Deno.Conn = tcp;
      this.#conn = conn;
      if (signal.aborted) throw signal.reason;
      tcp.setNoDelay(true);
      if (tls) {
        conn = await net.startTls(conn, {
          hostname,
          caCerts: this.#options.caCerts,
          alpnProtocols: ["http/1.1"],
        });
        this.#conn = conn;
        if (signal.aborted) throw signal.reason;
        await (conn as Deno.TlsConn).handshake();
      }
      const accept = await acceptKey(this.#key);
      if (signal.aborted) throw signal.reason;
      await writeAll(conn, this.#request);
      const rest = await this.#readResponse(conn, accept, tls);
      this.#open = true;
      if (rest.byteLength > 0) this.#protocol.receiveData(rest);
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

  /** Reads the response head, checks it, and returns the bytes that followed it. */
  async #readResponse(conn: Deno.Conn, accept: string, tls: boolean): Promise<Uint8Array> {
    let buffer = new Uint8Array(4096);
    let used = 0;
    while (true) {
      if (used === buffer.length) {
        const bigger = new Uint8Array(Math.min(buffer.length * 2, MAX_HEAD_BYTES + 4096));
        bigger.set(buffer);
        buffer = bigger;
      }
      const n = await conn.read(buffer.subarray(used));
      if (n === null) {
        throw new ConnectError(
          this.#options.displayUrl,
          "network",
          used === 0
            ? "the server closed the connection without answering the handshake"
            : "the server closed the connection in the middle of its handshake answer",
        );
      }
      if (used === 0 && !tls && (buffer[0] === 0x15 || buffer[0] === 0x16)) {
        throw new ConnectError(
          this.#options.displayUrl,
          "handshake",
          "the server answered with TLS: use wss://",
        );
      }
      used += n;
      let parsed;
      try {
        parsed = parseHttpHead(buffer.subarray(0, used), MAX_HEAD_BYTES);
      } catch (error) {
        throw new ConnectError(
          this.#options.displayUrl,
          "handshake",
          (error as Error).message.replace(/^Protocol error: /, ""),
          { cause: error },
        );
      }
      if (!parsed) continue;
      const result = checkResponse(parsed.head, { accept, protocols: this.#options.protocols });
      this.#protocolName = result.protocol;
      this.#extensions = result.extensions;
      return buffer.slice(parsed.length, used);
    }
  }

  // --- reading ---------------------------------------------------------------

  async #read(): Promise<void> {
    const conn = this.#conn!;
    const buffer = new Uint8Array(READ_SIZE);
    try {
      while (!this.#ended) {
        if (this.#paused) {
          await new Promise<void>((resolve) => (this.#resume = resolve));
          continue;
        }
        const n = await conn.read(buffer);
        if (this.#ended) break;
        if (n === null) this.#protocol.receiveEof();
        else this.#protocol.receiveData(buffer.subarray(0, n));
        this.#dispatch();
        if (n === null) break;
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
    const events: ProtocolEvent[] = this.#protocol.events();
    const handler = this.#handler!;
    for (const event of events) {
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
    const frames = this.#protocol.dataToSend();
    if (frames.length === 0 || this.#ended) return;
    for (const frame of frames) {
      this.#outbox.push(frame);
      this.#buffered += frame.byteLength;
    }
    if (!this.#writing) this.#writePump = this.#pump();
  }

  async #pump(): Promise<void> {
    this.#writing = true;
    const conn = this.#conn!;
    try {
      while (this.#outbox.length > 0 && !this.#ended) {
        const frames = this.#outbox;
        this.#outbox = [];
        const batch = frames.length === 1 ? frames[0]! : concat(frames);
        await writeAll(conn, batch);
        this.#buffered -= batch.byteLength;
        this.#handler?.onDrain?.();
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

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.byteLength;) {
    offset += await conn.write(offset === 0 ? data : data.subarray(offset));
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const chunk of chunks) total += chunk.byteLength;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
