// A scripted WebSocket server on raw TCP, for conformance tests. Written from
// RFC 6455 alone and sharing no code with wsbeat's own framing or handshake, so
// a bug there cannot hide itself (the wire format is in tests/_raw_frames.ts).
//
// Each accepted connection gets the opening handshake (answered as `options`
// say, however wrong) and then runs `script` with a small API to send any
// frame, byte by byte if asked, and to read the client's masked frames. No
// sleeps: a script waits only for bytes or EOF, and a deadline per script
// closes its socket so that a silent client cannot hang the test.

import {
  type ClientFrame,
  concat,
  describeFrame,
  encodeFrame,
  type FrameSpec,
  OP,
  parseFrame,
} from "./_raw_frames.ts";

export * from "./_raw_frames.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** A whole data message the server read from the client. */
export interface ClientMessage {
  opcode: number;
  payload: Uint8Array;
  /** How many frames carried it. */
  frames: number;
}

/** A close frame the server read from the client. */
export interface ClientClose {
  /** The code, 1005 when the payload is empty. */
  code: number;
  reason: string;
  payload: Uint8Array;
}

/** The client's opening request, as received. */
export interface RawRequest {
  method: string;
  target: string;
  version: string;
  headers: Headers;
  /** The head as received, up to and including the blank line. */
  head: string;
}

/** Options for writing. */
export interface WriteOptions {
  /** Write in pieces of this many bytes, each its own awaited write. Default: all at once. */
  chunk?: number;
}

/** How the server answers the opening handshake. */
export interface HandshakeOptions {
  /** The status code. Default: 101. */
  status?: number;
  /** The whole status line, overriding `status`, e.g. "HTTP/1.1 200 OK". */
  statusLine?: string;
  /** The subprotocol to answer with, if any. */
  protocol?: string;
  /**
   * Changes to the default headers (Upgrade, Connection, Sec-WebSocket-Accept
   * for 101; Content-Length and Connection otherwise), matched without regard
   * to case: a string replaces the header (name spelled as given), a function
   * maps the default value, null removes it. Names not among the defaults are
   * added.
   */
  headers?: Record<string, string | null | ((value: string) => string)>;
  /** More header lines, appended as given (repeats allowed). */
  extraHeaders?: [string, string][];
  /** The body after the head. Default: "" for 101, "no" otherwise. */
  body?: string;
  /** Bytes sent in the same write right after the response (e.g. a first frame). */
  trailing?: Uint8Array;
}

/** Options for {@linkcode rawServer}. */
export interface RawServerOptions {
  /** The handshake answer. */
  handshake?: HandshakeOptions;
  /** Connections to accept before the listener closes. Default: 1. */
  connections?: number;
  /**
   * Milliseconds a script may run; then its socket is closed (so the client
   * and the script end) and `done` rejects. Default: 5000.
   */
  timeout?: number;
}

/** A running raw server. */
export interface RawServer extends AsyncDisposable {
  /** The ws:// URL to connect to. */
  readonly url: string;
  /** The port on 127.0.0.1. */
  readonly port: number;
  /** Resolves when every script ended and its socket closed; rejects with a script's error. */
  readonly done: Promise<void>;
}

/** The Sec-WebSocket-Accept value for a key (RFC 6455 section 4.2.2). */
export async function acceptFor(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

const STATUS_TEXT: Record<number, string> = {
  101: "Switching Protocols",
  200: "OK",
  403: "Forbidden",
  500: "Internal Server Error",
};

async function buildResponse(request: RawRequest, options: HandshakeOptions): Promise<Uint8Array> {
  const status = options.status ?? 101;
  const body = options.body ?? (status === 101 ? "" : "no");
  let headers: [string, string][] = status === 101
    ? [
      ["Upgrade", "websocket"],
      ["Connection", "Upgrade"],
      ["Sec-WebSocket-Accept", await acceptFor(request.headers.get("sec-websocket-key") ?? "")],
    ]
    : [["Content-Length", String(encoder.encode(body).length)], ["Connection", "close"]];
  if (options.protocol !== undefined) headers.push(["Sec-WebSocket-Protocol", options.protocol]);
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    const i = headers.findIndex(([n]) => n.toLowerCase() === name.toLowerCase());
    if (value === null) headers = headers.filter((_, j) => j !== i);
    else {
      const line: [string, string] = [
        name,
        typeof value === "function" ? value(headers[i]?.[1] ?? "") : value,
      ];
      if (i >= 0) headers[i] = line;
      else headers.push(line);
    }
  }
  headers.push(...(options.extraHeaders ?? []));
  const statusLine = options.statusLine ??
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Unknown"}`;
  const head = [statusLine, ...headers.map(([n, v]) => `${n}: ${v}`)].join("\r\n") + "\r\n\r\n";
  return concat([encoder.encode(head + body), options.trailing ?? new Uint8Array(0)]);
}

/** Received bytes not yet consumed. */
class Inbox {
  #bytes: Uint8Array = new Uint8Array(0);

  get size(): number {
    return this.#bytes.length;
  }

  push(chunk: Uint8Array): void {
    this.#bytes = this.#bytes.length === 0 ? chunk.slice() : concat([this.#bytes, chunk]);
  }

  view(): Uint8Array {
    return this.#bytes;
  }

  skip(n: number): void {
    this.#bytes = this.#bytes.subarray(n);
  }
}

const MAX_HEAD = 64 * 1024;
/** One accepted connection, as its script sees it. */
export class RawPeer {
  /** The client's opening request. */
  request!: RawRequest;
  /** Resolves when reading ended: EOF or reset from the client, or this side closed. */
  readonly closed: Promise<void>;
  /** Whether reading ended because of the client (EOF or reset), not this side's close. */
  eofFromClient = false;
  /** The read loop (internal: the server awaits it). */
  readonly pump: Promise<void>;
  #conn: Deno.TcpConn;
  #inbox = new Inbox();
  #eof = false;
  #wake: (() => void) | undefined;
  #resolveClosed!: () => void;
  #socketClosed = false;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    conn.setNoDelay(true);
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.pump = this.#read();
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        this.#inbox.push(buffer.subarray(0, n));
        this.#wake?.();
      }
      this.eofFromClient = true;
    } catch {
      // A reset is the client's doing; a read cut short by close() is ours.
      this.eofFromClient = !this.#socketClosed;
    }
    this.#eof = true;
    this.#resolveClosed();
    this.#wake?.();
  }

  /** Waits until more bytes or EOF arrive. */
  #more(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = () => {
        this.#wake = undefined;
        resolve();
      };
    });
  }

  /** Reads the request head (internal: the server calls it before the script). */
  async readHead(): Promise<RawRequest | null> {
    while (true) {
      const bytes = this.#inbox.view();
      let end = -1;
      for (let i = 3; i < bytes.length && i < MAX_HEAD; i++) {
        if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) {
          end = i + 1;
          break;
        }
      }
      if (end > 0) {
        const head = decoder.decode(bytes.subarray(0, end));
        this.#inbox.skip(end);
        const [requestLine = "", ...lines] = head.slice(0, -4).split("\r\n");
        const [method = "", target = "", version = ""] = requestLine.split(" ");
        const headers = new Headers();
        for (const line of lines) {
          const colon = line.indexOf(":");
          headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
        }
        return this.request = { method, target, version, headers, head };
      }
      if (bytes.length >= MAX_HEAD) throw new Error("Client request head over 64 KiB");
      if (this.#eof) return null;
      await this.#more();
    }
  }

  /** Writes bytes; `chunk` splits them into writes of that many bytes. */
  async sendRaw(bytes: Uint8Array, options: WriteOptions = {}): Promise<void> {
    const chunk = Math.max(1, options.chunk ?? bytes.length);
    for (let offset = 0; offset < bytes.length; offset += chunk) {
      let piece = bytes.subarray(offset, offset + chunk);
      while (piece.length > 0) piece = piece.subarray(await this.#conn.write(piece));
    }
  }

  /** Encodes one frame (see {@linkcode encodeFrame}) and writes it. */
  sendFrame(frame: FrameSpec, options?: WriteOptions): Promise<void> {
    return this.sendRaw(encodeFrame(frame), options);
  }

  /** Encodes frames into one buffer and writes it. */
  sendFrames(frames: FrameSpec[], options?: WriteOptions): Promise<void> {
    return this.sendRaw(concat(frames.map(encodeFrame)), options);
  }

  /** The next client frame, or null at EOF. Throws if the client did not mask it. */
  async readFrame(): Promise<ClientFrame | null> {
    while (true) {
      const parsed = parseFrame(this.#inbox.view());
      if (parsed) {
        this.#inbox.skip(parsed.size);
        return parsed.frame;
      }
      if (this.#eof) {
        if (this.#inbox.size > 0) {
          throw new Error(`TCP ended inside a client frame (${this.#inbox.size} bytes left)`);
        }
        return null;
      }
      await this.#more();
    }
  }

  /** The next data message, reassembled; throws if another frame comes first. Null at EOF. */
  async readMessage(): Promise<ClientMessage | null> {
    const first = await this.readFrame();
    if (first === null) return null;
    if (first.opcode !== OP.TEXT && first.opcode !== OP.BINARY) {
      throw new Error(`Expected a data message from the client, got ${describeFrame(first)}`);
    }
    const parts = [first.payload];
    let last = first;
    while (!last.fin) {
      const next = await this.readFrame();
      if (next === null) throw new Error("TCP ended inside a fragmented client message");
      if (next.opcode !== OP.CONTINUATION) {
        throw new Error(`Expected a continuation frame, got ${describeFrame(next)}`);
      }
      parts.push(next.payload);
      last = next;
    }
    return { opcode: first.opcode, payload: concat(parts), frames: parts.length };
  }

  /** The next frame, which must be a close frame; throws if another comes first. Null at EOF. */
  async expectClose(): Promise<ClientClose | null> {
    const frame = await this.readFrame();
    if (frame === null) return null;
    if (frame.opcode !== OP.CLOSE) {
      throw new Error(`Expected a close frame from the client, got ${describeFrame(frame)}`);
    }
    const { payload } = frame;
    const code = payload.length >= 2 ? payload[0]! << 8 | payload[1]! : 1005;
    return { code, reason: decoder.decode(payload.subarray(2)), payload };
  }

  /** Half-closes: sends FIN but keeps reading. */
  async closeWrite(): Promise<void> {
    await this.#conn.closeWrite();
  }

  /** Closes the socket (also done when the script ends). */
  close(): void {
    if (this.#socketClosed) return;
    this.#socketClosed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

/**
 * Starts a raw WebSocket server on 127.0.0.1 that answers each opening
 * handshake as `options.handshake` says, runs `script` on the connection and
 * then closes it. Await `done` for the scripts' verdict.
 */
export function rawServer(
  script: (peer: RawPeer) => Promise<void>,
  options: RawServerOptions = {},
): RawServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const timeout = options.timeout ?? 5000;
  const peers = new Set<RawPeer>();
  let listenerClosed = false;
  const closeListener = () => {
    if (listenerClosed) return;
    listenerClosed = true;
    listener.close();
  };

  const run = async (peer: RawPeer): Promise<void> => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      peer.close();
    }, timeout);
    const late = () => new Error(`Raw server script did not finish within ${timeout} ms`);
    try {
      const request = await peer.readHead();
      if (request === null) throw new Error("The client closed TCP before its request ended");
      await peer.sendRaw(await buildResponse(request, options.handshake ?? {}));
      await script(peer);
    } catch (error) {
      if (!timedOut) throw error;
      throw Object.assign(late(), { cause: error });
    } finally {
      clearTimeout(timer);
      peer.close();
      await peer.pump;
      peers.delete(peer);
    }
    if (timedOut) throw late();
  };

  const accepting = (async () => {
    const scripts: Promise<void>[] = [];
    try {
      for (let i = 0; i < (options.connections ?? 1); i++) {
        let conn: Deno.TcpConn;
        try {
          conn = await listener.accept() as Deno.TcpConn;
        } catch {
          break; // the listener was closed by dispose
        }
        const peer = new RawPeer(conn);
        peers.add(peer);
        scripts.push(run(peer));
      }
    } finally {
      closeListener();
    }
    const results = await Promise.allSettled(scripts);
    for (const result of results) if (result.status === "rejected") throw result.reason;
  })();
  accepting.catch(() => {});

  let observed = false;
  return {
    url: `ws://127.0.0.1:${port}/`,
    port,
    get done() {
      observed = true;
      return accepting;
    },
    async [Symbol.asyncDispose]() {
      closeListener();
      for (const peer of peers) peer.close();
      try {
        await accepting;
      } catch (error) {
        if (!observed) throw error;
      }
    },
  };
}
