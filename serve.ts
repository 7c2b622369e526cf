/**
 * An echo server with fault injection, for tests, demos and trying a client:
 * the replacement for the public echo servers that went away.
 *
 * It echoes text as text and binary as binary, and can misbehave on purpose:
 * close idle clients (`idleTimeout`, like servers that drop a client silent
 * for 30 s), answer a ping text with a pong text (`pong`), stop answering
 * while keeping the connection open (`stallAfter`), drop the TCP connection
 * with no close frame (`dropAfter`), or close with a given code
 * (`closeWith`).
 *
 * Deno only (it uses `Deno.serve` and `Deno.upgradeWebSocket`), so it is a
 * separate entry point, `@wsbeat/wsbeat/serve`, and not part of `mod.ts`.
 * Permissions: `--allow-net` (and `--allow-read` for certificate files).
 *
 * @example Start a server on a free port, connect, and stop it
 * ```ts
 * import { serve } from "@wsbeat/wsbeat/serve";
 * import { connect } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ port: 0 });
 * await using ws = await connect(server.url);
 * ws.send("hello");
 * assert.equal(await ws.receive(), "hello");
 * ```
 *
 * @module
 */

/** A connection as seen by the server, for {@linkcode ServeOptions.onConnect}. */
export interface ConnectionInfo {
  /** A number, counting up from 1, for each connection. */
  id: number;
  /** The client's address, `host:port`. */
  remoteAddr: string;
  /** The request's path and query. */
  path: string;
  /** The handshake request's headers. */
  headers: Headers;
  /** The subprotocol chosen, or `""`. */
  protocol: string;
}

/** Options for {@linkcode serve}. */
export interface ServeOptions {
  /**
   * The port to listen on; 0 picks a free one (read it from
   * {@linkcode EchoServer.port}).
   *
   * @default {0}
   */
  port?: number;
  /**
   * The address to listen on.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /** Signal that stops the server, like {@linkcode EchoServer.close}. */
  signal?: AbortSignal;
  /**
   * Close a client that has sent nothing for this many milliseconds, with
   * code 1001 and reason `idle timeout`: the behaviour of servers that drop
   * idle clients (seed 000: 30 s). Any message from the client resets it.
   *
   * @default {undefined}
   */
  idleTimeout?: number;
  /**
   * Answer this ping text with this pong text instead of echoing it.
   *
   * @default {undefined}
   */
  pong?: { ping: string; pong: string };
  /**
   * Answer the first `n` messages of each connection, then nothing: no echo,
   * no pong, no idle close, while the connection stays open. A peer that is
   * alive at the TCP level but dead to the application, which only an
   * application heartbeat can find. A function is called per connection,
   * for random faults; `Infinity` never stalls.
   *
   * @default {undefined}
   */
  stallAfter?: number | (() => number);
  /**
   * Drop each connection abruptly (TCP closed, no close frame) once the
   * server has sent it `n` messages; every one of them is delivered first.
   * A function is called per connection, for random faults.
   *
   * @default {undefined}
   */
  dropAfter?: number | (() => number);
  /**
   * Echo the first message of each connection, then close with this code
   * and reason.
   *
   * @default {undefined}
   */
  closeWith?: { code: number; reason?: string };
  /**
   * Subprotocols the server accepts; it picks the first the client offers
   * that is in this list. When unset it accepts the client's first offer.
   */
  protocols?: string[];
  /** PEM certificate chain, to serve `wss:` (with {@linkcode ServeOptions.key}). */
  cert?: string;
  /** PEM private key, to serve `wss:` (with {@linkcode ServeOptions.cert}). */
  key?: string;
  /** Called when a client has connected. */
  onConnect?: (info: ConnectionInfo) => void;
  /** Called when a client's connection has closed. */
  onDisconnect?: (info: ConnectionInfo, code: number, reason: string) => void;
}

/** A running server, as returned by {@linkcode serve}. */
export interface EchoServer extends AsyncDisposable {
  /** The URL to connect to, `ws://host:port` (or `wss:`). */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** The address it listens on. */
  readonly hostname: string;
  /** How many clients are connected now. */
  readonly connections: number;
  /**
   * Closes every connection with 1001 (`server shutting down`) and stops
   * listening; resolves when all is released.
   */
  close(): Promise<void>;
}

function checkCount(name: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot use ${name} as it is not a whole number of at least 0: current value is ${
        String(value)
      }`,
    );
  }
}

/**
 * Starts an echo server; it is listening when this returns.
 *
 * @param options Address, faults to inject, TLS, hooks.
 * @returns The running server; `await using` closes it.
 * @throws {RangeError} If a count or timeout is not a whole number of at least 0.
 * @throws {TypeError} If only one of `cert` and `key` is given.
 * @throws {Deno.errors.AddrInUse} If the port is taken.
 *
 * @example A server that drops idle clients after 3 s
 * ```ts
 * import { serve } from "@wsbeat/wsbeat/serve";
 *
 * await using server = serve({ idleTimeout: 3_000 });
 * console.log(`listening ${server.url}`);
 * ```
 */
export function serve(options: ServeOptions = {}): EchoServer {
  const {
    port = 0,
    hostname = "127.0.0.1",
    signal,
    idleTimeout,
    pong,
    stallAfter,
    dropAfter,
    closeWith,
    protocols,
    cert,
    key,
    onConnect,
    onDisconnect,
  } = options;
  checkCount("port", port);
  checkCount("idleTimeout", idleTimeout);
  if (typeof stallAfter !== "function") checkCount("stallAfter", stallAfter);
  if (typeof dropAfter !== "function") checkCount("dropAfter", dropAfter);
  if ((cert === undefined) !== (key === undefined)) {
    throw new TypeError("Cannot serve wss: as cert and key must be given together");
  }

  const sockets = new Set<WebSocket>();
  const socketsClosed = new Set<Promise<void>>();
  let nextId = 1;

  const handler = (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response => {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("wsbeat echo server: connect with a WebSocket client\n", {
        status: 426,
        headers: { upgrade: "websocket" },
      });
    }
    const offered = (req.headers.get("sec-websocket-protocol") ?? "")
      .split(",").map((p) => p.trim()).filter(Boolean);
    const protocol = offered.find((p) => !protocols || protocols.includes(p)) ?? "";
    const url = new URL(req.url);
    const conn: ConnectionInfo = {
      id: nextId++,
      remoteAddr: `${info.remoteAddr.hostname}:${info.remoteAddr.port}`,
      path: url.pathname + url.search,
      headers: new Headers(req.headers),
      protocol,
    };
    const { socket, response } = Deno.upgradeWebSocket(req, protocol ? { protocol } : {});
    let received = 0;
    const stallAt = typeof stallAfter === "function" ? stallAfter() : stallAfter;
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    const armIdle = () => {
      if (idleTimeout === undefined) return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        if (socket.readyState === WebSocket.OPEN) socket.close(1001, "idle timeout");
      }, idleTimeout);
    };
    const socketClosed: Promise<void> = new Promise((resolve) => {
      socket.onclose = (event) => {
        clearTimeout(idleTimer);
        sockets.delete(socket);
        socketsClosed.delete(socketClosed);
        onDisconnect?.(conn, event.code, event.reason);
        resolve();
      };
    });
    socketsClosed.add(socketClosed);
    socket.onopen = () => {
      sockets.add(socket);
      armIdle();
      onConnect?.(conn);
    };
    socket.onmessage = (event) => {
      received++;
      if (stallAt !== undefined && received > stallAt) {
        clearTimeout(idleTimer);
        return;
      }
      armIdle();
      if (socket.readyState !== WebSocket.OPEN) return;
      const data = event.data;
      socket.send(pong && data === pong.ping ? pong.pong : data);
      if (closeWith && received === 1) socket.close(closeWith.code, closeWith.reason ?? "");
    };
    socket.onerror = () => {};
    return response;
  };

  const tls = cert !== undefined && key !== undefined ? { cert, key } : {};
  const scheme = cert !== undefined ? "wss" : "ws";
  let front: FaultFront | undefined;
  let http: Deno.HttpServer<Deno.NetAddr>;
  if (dropAfter !== undefined) {
    // Deno's server sockets cannot be dropped abruptly: put a TCP front that
    // counts the server's messages before them.
    http = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, handler);
    front = new FaultFront({ port, hostname, ...tls }, http.addr.port, dropAfter);
  } else {
    http = Deno.serve({ port, hostname, onListen() {}, ...tls }, handler);
  }
  const boundPort = front ? front.port : http.addr.port;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      signal?.removeEventListener("abort", onAbort);
      for (const socket of sockets) {
        if (socket.readyState === WebSocket.OPEN) socket.close(1001, "server shutting down");
      }
      front?.close();
      await Promise.all(socketsClosed);
      await http.shutdown();
      await front?.closed;
    })();
    return closing;
  };
  const onAbort = () => void close();
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });

  return {
    url: `${scheme}://${host}:${boundPort}`,
    port: boundPort,
    hostname,
    get connections() {
      return sockets.size;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Counts whole WebSocket messages in a server-to-client byte stream, so a
 * connection can be cut right after the n-th one.
 */
class MessageCounter {
  #http = 0; // how much of the "\r\n\r\n" ending the HTTP response was seen; 4 when done
  #header: number[] = [];
  #remaining = 0;
  #ends = false;

  /**
   * Reads `chunk`; returns the offset just past the end of the message that
   * brings the count to `limit`, or -1.
   */
  feed(chunk: Uint8Array, count: { n: number }, limit: number): number {
    let i = 0;
    while (this.#http < 4 && i < chunk.length) {
      const expected = this.#http % 2 === 0 ? 13 : 10;
      const byte = chunk[i++];
      this.#http = byte === expected ? this.#http + 1 : byte === 13 ? 1 : 0;
    }
    while (i < chunk.length) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, chunk.length - i);
        i += take;
        this.#remaining -= take;
        if (this.#remaining === 0 && this.#ends && ++count.n >= limit) return i;
        continue;
      }
      this.#header.push(chunk[i++]!);
      const h = this.#header;
      if (h.length < 2) continue;
      const len7 = h[1]! & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (h[1]! & 0x80 ? 4 : 0);
      if (h.length < need) continue;
      let length = len7;
      if (len7 === 126) length = (h[2]! << 8) | h[3]!;
      if (len7 === 127) {
        length = 0;
        for (let k = 2; k < 10; k++) length = length * 256 + h[k]!;
      }
      const opcode = h[0]! & 0x0f;
      this.#ends = (h[0]! & 0x80) !== 0 && opcode <= 2;
      this.#header = [];
      this.#remaining = length;
      if (length === 0 && this.#ends && ++count.n >= limit) return i;
    }
    return -1;
  }
}

/** A TCP front that forwards to the echo server and drops connections on cue. */
class FaultFront {
  readonly port: number;
  readonly closed: Promise<void>;
  #listener: Deno.Listener;
  #conns = new Set<Deno.Conn>();
  #pumps = new Set<Promise<void>>();

  constructor(
    listen: { port: number; hostname: string; cert?: string; key?: string },
    upstream: number,
    dropAfter: number | (() => number),
  ) {
    this.#listener = listen.cert !== undefined
      ? Deno.listenTls({
        port: listen.port,
        hostname: listen.hostname,
        cert: listen.cert,
        key: listen.key!,
      })
      : Deno.listen({ port: listen.port, hostname: listen.hostname });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.closed = this.#accept(upstream, dropAfter);
  }

  close(): void {
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const conn of this.#conns) this.#drop(conn);
  }

  #drop(conn: Deno.Conn): void {
    if (!this.#conns.delete(conn)) return;
    try {
      conn.close();
    } catch { /* already closed */ }
  }

  async #accept(upstream: number, dropAfter: number | (() => number)): Promise<void> {
    try {
      for await (const client of this.#listener) {
        const limit = typeof dropAfter === "function" ? dropAfter() : dropAfter;
        const pump = this.#serve(client, upstream, limit).finally(() => this.#pumps.delete(pump));
        this.#pumps.add(pump);
      }
    } catch { /* listener closed */ }
    await Promise.all(this.#pumps);
  }

  async #serve(client: Deno.Conn, upstream: number, limit: number): Promise<void> {
    this.#conns.add(client);
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: upstream });
    } catch {
      this.#drop(client);
      return;
    }
    this.#conns.add(server);
    const cut = () => {
      this.#drop(client);
      this.#drop(server);
    };
    const counter = new MessageCounter();
    const count = { n: 0 };
    const forward = async (from: Deno.Conn, to: Deno.Conn, watch: boolean) => {
      const buffer = new Uint8Array(64 * 1024);
      try {
        while (true) {
          const n = await from.read(buffer);
          if (n === null) break;
          let chunk = buffer.subarray(0, n);
          const end = watch && limit !== Infinity ? counter.feed(chunk, count, limit) : -1;
          if (end >= 0) chunk = chunk.subarray(0, end);
          for (let off = 0; off < chunk.length;) off += await to.write(chunk.subarray(off));
          if (end >= 0 || (watch && limit === 0)) break;
        }
      } catch { /* the other side was cut */ }
      cut();
    };
    await Promise.all([forward(client, server, false), forward(server, client, true)]);
  }
}
