// deno-lint-ignore-file no-import-prefix -- npm:ws is a test-only peer; the library has no dependencies
// Clients for the echo server's tests. The same few operations over three
// independent clients: wsbeat's own (`connect()`, wsbeat transport), the
// runtime's native `WebSocket`, and Node's `ws` (test-only, from npm; needs
// --allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE). And a raw TCP client
// that writes any bytes and reads the server's bytes exactly, for what no
// real client does: half-sent requests, floods, a peer that never reads.
// Nothing here sleeps: every wait is for an event, with a deadline.

import { Buffer } from "node:buffer";
// @ts-types="npm:@types/ws@8"
import WsWebSocket from "npm:ws@8";
import { connect, ConnectError, type ConnectOptions, type Message } from "../mod.ts";
import { encodeFrame, type FrameSpec } from "./_raw_frames.ts";

export { OP } from "./_raw_frames.ts";

/** The three clients every limit and fault is tried with. */
export type Kind = "wsbeat" | "native" | "ws";
export const KINDS: readonly Kind[] = ["wsbeat", "native", "ws"];

/** How a client saw its connection end: 1006 when no close frame came (native says 0). */
export interface Ended {
  code: number;
  reason: string;
}

/** A connected client, whichever kind. */
export interface Peer {
  readonly kind: Kind;
  send(data: string | Uint8Array): void;
  /** The next message, in order; rejects once the connection ended with nothing left. */
  next(): Promise<Message>;
  /** Resolves once the connection is over and released. */
  readonly closed: Promise<Ended>;
  /** Starts the closing handshake with 1000 and waits for the end. */
  close(): Promise<Ended>;
  /** Ping frames received so far (`ws` only; the others answer pings unseen). */
  readonly pings: number | undefined;
  /** Stops reading from the socket (`ws` only). */
  pause?(): void;
  resume?(): void;
}

/** Messages in arrival order, and waiters for the next one. */
class Inbox {
  #items: Message[] = [];
  #waiters: { resolve: (m: Message) => void; reject: (e: Error) => void }[] = [];
  #ended: Error | undefined;

  push(message: Message): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(message);
    else this.#items.push(message);
  }

  end(error: Error): void {
    this.#ended = error;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }

  next(): Promise<Message> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }
}

function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  const buffer = Array.isArray(data) ? Buffer.concat(data) : data;
  return buffer instanceof ArrayBuffer
    ? new Uint8Array(buffer.slice(0))
    : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength).slice();
}

/** Options for {@linkcode openPeer}. */
export interface PeerOptions {
  protocols?: string[];
  /** Extra handshake headers (the native WebSocket takes them on Deno). */
  headers?: Record<string, string>;
  /** More options for the wsbeat client. */
  wsbeat?: ConnectOptions;
}

/**
 * Opens a connection with a client of `kind`.
 *
 * @throws The client's own error when the handshake fails (see {@linkcode refusedStatus}).
 */
export async function openPeer(kind: Kind, url: string, options: PeerOptions = {}): Promise<Peer> {
  const protocols = options.protocols ?? [];
  const headers = options.headers ?? {};
  if (kind === "wsbeat") {
    const ws = await connect(url, { transport: "wsbeat", protocols, headers, ...options.wsbeat });
    const closed = ws.closed.then((info) => ({ code: info.code, reason: info.reason }));
    return {
      kind,
      send: (data) => ws.send(data),
      next: () => ws.receive(),
      closed,
      close: async () => (await ws.close(), closed),
      pings: undefined,
    };
  }
  const inbox = new Inbox();
  if (kind === "native") {
    // Deno's WebSocket takes headers in a second-argument object (not in the DOM types).
    const init = { protocols, headers } as unknown as string[];
    const socket = new WebSocket(url, init);
    socket.binaryType = "arraybuffer";
    const closed = new Promise<Ended>((resolve) => {
      socket.onclose = (event) => {
        inbox.end(new Error(`closed with ${event.code}`));
        resolve({ code: event.code === 0 ? 1006 : event.code, reason: event.reason });
      };
    });
    socket.onmessage = (event) =>
      inbox.push(typeof event.data === "string" ? event.data : new Uint8Array(event.data));
    const failed = new Promise<string>((resolve) => {
      socket.onerror = (event) => resolve((event as ErrorEvent).message ?? "error");
    });
    const opened = new Promise<void>((resolve) => (socket.onopen = () => resolve()));
    const first = await Promise.race([opened, failed.then(async (m) => (await closed, m))]);
    if (typeof first === "string") throw new Error(first);
    return {
      kind,
      send: (data) => socket.send(data),
      next: () => inbox.next(),
      closed,
      close: () => (socket.close(1000), closed),
      pings: undefined,
    };
  }
  const socket = new WsWebSocket(url, protocols, { headers });
  let pings = 0;
  let error: Error | undefined;
  socket.on("error", (e: Error) => (error = e));
  socket.on("ping", () => pings++);
  socket.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
    inbox.push(isBinary ? toBytes(data) : toBytes(data).length === 0 ? "" : data.toString());
  });
  const closed = new Promise<Ended>((resolve) => {
    socket.on("close", (code: number, reason: Buffer) => {
      inbox.end(new Error(`closed with ${code}`));
      resolve({ code, reason: reason.toString() });
    });
  });
  const opened = await Promise.race([
    new Promise<boolean>((resolve) => socket.once("open", () => resolve(true))),
    closed.then(() => false),
  ]);
  if (!opened) throw error ?? new Error("closed before opening");
  return {
    kind,
    send: (data) => socket.send(data),
    next: () => inbox.next(),
    closed,
    close: () => (socket.close(1000), closed),
    get pings() {
      return pings;
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
  };
}

/** The HTTP status a client of `kind` reports when the server refuses its handshake. */
export async function refusedStatus(
  kind: Kind,
  url: string,
  options: PeerOptions = {},
): Promise<number | undefined> {
  try {
    const peer = await openPeer(kind, url, options);
    await peer.close();
    return undefined;
  } catch (error) {
    if (error instanceof ConnectError) return error.status;
    const match = /(?:Invalid status code|Unexpected server response): (\d+)/.exec(
      (error as Error).message,
    );
    if (!match) throw error;
    return Number(match[1]);
  }
}

/** Log lines a server wrote, and a way to wait for one. */
export function logLines(): {
  lines: string[];
  log: (line: string) => void;
  next(pattern: RegExp, ms?: number): Promise<string>;
} {
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  return {
    lines,
    log(line) {
      lines.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.pattern.test(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    },
    next(pattern, ms = 5_000) {
      const seen = lines.find((line) => pattern.test(line));
      if (seen !== undefined) return Promise.resolve(seen);
      return within(
        new Promise<string>((resolve) => waiters.push({ pattern, resolve })),
        ms,
        `no log line matching ${pattern} within ${ms} ms; got:\n${lines.join("\n")}`,
      );
    },
  };
}

/** Rejects with `message` unless `promise` settles within `ms`; the timer never outlives it. */
export async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// --- the raw client ---------------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A frame from the server, as read off the wire. */
export interface ServerFrame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  payload: Uint8Array;
}

/** An upgrade request for `port`; `key: null` leaves out `Sec-WebSocket-Key`. */
export function upgradeRequest(port: number, options: { key?: string | null } = {}): string {
  const key = options.key === undefined ? "dGhlIHNhbXBsZSBub25jZQ==" : options.key;
  return `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
    `Connection: Upgrade\r\n${key === null ? "" : `Sec-WebSocket-Key: ${key}\r\n`}` +
    "Sec-WebSocket-Version: 13\r\n\r\n";
}

/**
 * A TCP client that writes what it is told and collects what arrives (unless
 * made deaf: then it reads nothing at all after the response head).
 */
export class RawClient {
  readonly conn: Deno.Conn;
  #data = new Uint8Array(0);
  #eof = false;
  #notify: (() => void) | undefined;
  #pump: Promise<void>;
  #deaf: boolean;

  private constructor(conn: Deno.Conn, deaf: boolean) {
    this.conn = conn;
    this.#deaf = deaf;
    this.#pump = this.#read();
  }

  /** Connects to 127.0.0.1:`port` and writes `request` (an upgrade request by default). */
  static async open(
    port: number,
    options: { request?: string; deaf?: boolean } = {},
  ): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const client = new RawClient(conn, options.deaf ?? false);
    const request = options.request ?? upgradeRequest(port);
    if (request !== "") await client.write(encoder.encode(request));
    return client;
  }

  /** Whether the server closed its side. */
  get eof(): boolean {
    return this.#eof;
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        if (this.#deaf && indexOfHeadEnd(this.#data) !== -1) return; // deaf from here on
        const n = await this.conn.read(buffer);
        if (n === null) break;
        const data = new Uint8Array(this.#data.length + n);
        data.set(this.#data);
        data.set(buffer.subarray(0, n), this.#data.length);
        this.#data = data;
        this.#notify?.();
      }
    } catch { /* reset, or closed by close() */ }
    this.#eof = true;
    this.#notify?.();
  }

  /** Waits until `take` finds what it wants in the data received, EOF, or `ms`. */
  async #until<T>(take: () => T | undefined, ms: number): Promise<T | "eof" | "timeout"> {
    const deadline = performance.now() + ms;
    while (true) {
      const found = take();
      if (found !== undefined) return found;
      if (this.#eof) return "eof";
      const left = deadline - performance.now();
      if (left <= 0) return "timeout";
      await within(new Promise<void>((resolve) => (this.#notify = resolve)), left, "").catch(
        () => {},
      );
    }
  }

  /** The response head (status and text), consumed. */
  async head(ms = 5_000): Promise<{ status: number; text: string } | "eof" | "timeout"> {
    return await this.#until(() => {
      const end = indexOfHeadEnd(this.#data);
      if (end === -1) return undefined;
      const text = decoder.decode(this.#data.subarray(0, end));
      this.#data = this.#data.slice(end);
      return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), text };
    }, ms);
  }

  /** The next whole frame, consumed. */
  frame(ms = 5_000): Promise<ServerFrame | "eof" | "timeout"> {
    return this.#until(() => {
      const parsed = parseServerFrame(this.#data);
      if (!parsed) return undefined;
      this.#data = this.#data.slice(parsed.size);
      return parsed.frame;
    }, ms);
  }

  /** Everything up to EOF, consumed ("timeout" if the server keeps it open for `ms`). */
  async rest(ms = 5_000): Promise<Uint8Array | "timeout"> {
    const result = await this.#until(() => undefined, ms);
    if (result === "timeout") return result;
    const data = this.#data;
    this.#data = new Uint8Array(0);
    return data;
  }

  /** Bytes received and not yet consumed. */
  get pending(): number {
    return this.#data.length;
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let off = 0; off < bytes.length;) off += await this.conn.write(bytes.subarray(off));
  }

  /** Sends a client frame, masked unless the spec says otherwise. */
  send(spec: FrameSpec): Promise<void> {
    return this.write(encodeFrame({ mask: true, ...spec }));
  }

  /** Closes the socket and waits for the reader to end. */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch { /* already closed */ }
    await this.#pump;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function indexOfHeadEnd(data: Uint8Array): number {
  for (let i = 3; i < data.length; i++) {
    if (data[i] === 10 && data[i - 1] === 13 && data[i - 2] === 10 && data[i - 3] === 13) {
      return i + 1;
    }
  }
  return -1;
}

/** Parses one server frame from the front of `bytes`. */
export function parseServerFrame(
  bytes: Uint8Array,
): { frame: ServerFrame; size: number } | undefined {
  if (bytes.length < 2) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let length = bytes[1]! & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (bytes.length < 4) return undefined;
    length = view.getUint16(2);
    offset = 4;
  } else if (length === 127) {
    if (bytes.length < 10) return undefined;
    length = Number(view.getBigUint64(2));
    offset = 10;
  }
  const masked = (bytes[1]! & 0x80) !== 0;
  if (masked) offset += 4;
  if (bytes.length < offset + length) return undefined;
  return {
    frame: {
      fin: (bytes[0]! & 0x80) !== 0,
      opcode: bytes[0]! & 0x0f,
      masked,
      payload: bytes.slice(offset, offset + length),
    },
    size: offset + length,
  };
}

/** A close frame's code and reason. */
export function closeOf(frame: ServerFrame): Ended {
  if (frame.payload.length < 2) return { code: 1005, reason: "" };
  return {
    code: (frame.payload[0]! << 8) | frame.payload[1]!,
    reason: decoder.decode(frame.payload.subarray(2)),
  };
}
