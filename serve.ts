/**
 * An echo server with limits and fault injection, for tests, demos and
 * trying a client: the replacement for the public echo servers that went
 * away, safe to leave running on a shared host.
 *
 * It echoes text as text and binary as binary, on wsbeat's own RFC 6455
 * core (`protocol/protocol.ts`, role `"server"`) over `Deno.listen` or
 * `Deno.listenTls`. This module is the server's top layer: the options,
 * listening, accepting within `maxConnections` (surviving `EMFILE`), and
 * shutdown; `serve/connection.ts` runs each connection, its handshake,
 * limits and faults; `serve/options.ts` holds the option types and
 * defaults, and `serve/resolve.ts` checks them once into the frozen
 * settings everything below reads.
 *
 * Limits, each with a default: `maxMessageSize` (close 1009),
 * `maxConnections` (HTTP 503), `handshakeTimeout` and `maxHeaderSize`
 * (HTTP 431), `maxUnsentBytes` (stop reading a client that does not read),
 * `closeTimeout`. Faults, off by default: `idleTimeout`, `pong`,
 * `stallAfter` (held at most `stallFor`), `dropAfter`, `closeWith`,
 * `echoDelay`, `fragment`, `pingInterval`, `rejectStatus`.
 *
 * What a client sent is shown escaped in the log lines (`\x1b` for ESC),
 * with credentials in the query or a subprotocol masked; a request with a
 * control byte in its target or a header value is answered HTTP 400.
 *
 * Deno only, so it is a separate entry point, `@wsbeat/wsbeat/serve`, and
 * not part of `mod.ts`. Permissions: `--allow-net` (and `--allow-read` for
 * certificate files).
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

import { ServerConnection } from "./serve/connection.ts";
import { listen } from "./serve/tls.ts";
import type { EchoServer, ServeOptions, ServeSettings } from "./serve/options.ts";
import { resolveServeOptions } from "./serve/resolve.ts";

export type {
  ConnectionInfo,
  EchoServer,
  ServeOptions,
  ServerCompressionOptions,
} from "./serve/options.ts";
export { TlsOptionError, type TlsProblem } from "./serve/tls.ts";
export type { CompressionTuning } from "./protocol/deflate_extension.ts";
export type { DeflateAcceptOptions } from "./protocol/permessage_deflate.ts";
export {
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_HEADER_SIZE,
  DEFAULT_MAX_UNSENT_BYTES,
  DEFAULT_SERVE_CLOSE_TIMEOUT,
  DEFAULT_SERVE_MAX_MESSAGE_SIZE,
  DEFAULT_STALL_FOR,
} from "./serve/options.ts";

/** The first pause after a failed accept; it doubles up to {@linkcode ACCEPT_BACKOFF_MAX}. */
const ACCEPT_BACKOFF_MIN = 50;
const ACCEPT_BACKOFF_MAX = 1_000;
/** Accept failures are logged at most once in this many ms (the others are counted). */
const ACCEPT_LOG_EVERY = 10_000;
/** Refused connections that may linger at once to let the 503 be read; more are closed at once. */
const MAX_LINGERING_REFUSALS = 64;

/**
 * Starts an echo server; it is listening when this returns.
 *
 * @param options Address, limits, faults to inject, TLS, hooks and logging.
 * @returns The running server; `await using` closes it.
 * @throws {RangeError} If a number is out of range, or `closeWith` is not a
 * code a server may send with a reason of at most 123 bytes.
 * @throws {TypeError} If an option has the wrong type, or only one of `cert`
 * and `key` is given.
 * @throws {TlsOptionError} (a `TypeError`) If `cert` holds no PEM
 * certificate, `key` no PEM private key, or `key` is not the certificate's.
 * @throws {Deno.errors.AddrInUse} If the port is taken.
 *
 * @example A server that drops idle clients after 3 s, and logs
 * ```ts
 * import { serve } from "@wsbeat/wsbeat/serve";
 *
 * await using server = serve({ idleTimeout: 3_000, log: (line) => console.error(line) });
 * console.log(`listening ${server.url}`);
 * ```
 *
 * @example A dead peer: two answers, then silence with TCP open
 * ```ts
 * import { serve } from "@wsbeat/wsbeat/serve";
 * import { connect, TooSlowError } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ stallAfter: 2 });
 * await using ws = await connect(server.url, { heartbeat: { interval: 20, timeout: 100 } });
 * ws.send("one");
 * ws.send("two"); // both echoed; from here the heartbeat's pings go unanswered
 * const info = await ws.closed;
 * assert.ok(info.error instanceof TooSlowError);
 * ```
 */
export function serve(options: ServeOptions = {}): EchoServer {
  return new Server(resolveServeOptions(options));
}

class Server implements EchoServer {
  readonly url: string;
  readonly port: number;
  readonly hostname: string;
  readonly #listener: Deno.Listener;
  readonly #settings: ServeSettings;
  readonly #log: (line: string) => void;
  /** Every connection not yet released, refusals included. */
  readonly #all = new Set<ServerConnection>();
  #held = 0;
  #refusing = 0;
  #open = 0;
  #nextId = 1;
  #accepting: Promise<void>;
  #closing: Promise<void> | undefined;
  #backoffTimer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;
  readonly #onAbort = () => void this.close();

  constructor(settings: ServeSettings) {
    const { port, hostname, cert, key, signal } = settings;
    this.#settings = settings;
    this.#log = settings.log;
    this.#listener = listen({ port, hostname, cert, key });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.hostname = hostname;
    const host = hostname.includes(":") ? `[${hostname}]` : hostname;
    this.url = `${cert !== undefined ? "wss" : "ws"}://${host}:${this.port}`;
    this.#accepting = this.#accept();
    if (signal?.aborted) this.#onAbort();
    else signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  get connections(): number {
    return this.#open;
  }

  close(): Promise<void> {
    return this.#closing ??= this.#shutdown();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #accept(): Promise<void> {
    let backoff = 0;
    let failures = 0; // in a row
    let unlogged = 0;
    let loggedAt = -Infinity;
    let recovery = false;
    while (this.#closing === undefined) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#closing !== undefined || error instanceof Deno.errors.BadResource) break;
        failures++;
        backoff = Math.min(Math.max(backoff * 2, ACCEPT_BACKOFF_MIN), ACCEPT_BACKOFF_MAX);
        if (performance.now() - loggedAt < ACCEPT_LOG_EVERY) unlogged++;
        else {
          const more = unlogged > 0 ? `; ${unlogged} more since the last such line` : "";
          this.#log(
            `accept failed: ${
              (error as Error).message
            }; pausing ${backoff} ms, up to ${ACCEPT_BACKOFF_MAX} ms while it fails${more}`,
          );
          loggedAt = performance.now();
          unlogged = 0;
          recovery = true;
        }
        await this.#pause(backoff);
        continue;
      }
      if (recovery) this.#log(`accepting again after ${failures} failed accepts`);
      recovery = false;
      backoff = failures = 0;
      if (this.#closing !== undefined) {
        conn.close();
        break;
      }
      this.#start(conn);
    }
  }

  #start(conn: Deno.Conn): void {
    const addr = conn.remoteAddr as Deno.NetAddr;
    const start = { id: this.#nextId++, remoteAddr: `${addr.hostname}:${addr.port}` };
    const full = this.#held >= this.#settings.maxConnections;
    const refuse = full
      ? {
        reason: `${this.#held} connections held (maxConnections)`,
        linger: this.#refusing < MAX_LINGERING_REFUSALS,
      }
      : undefined;
    const connection = new ServerConnection(conn, this.#settings, {
      log: this.#log,
      onOpen: (info) => {
        this.#open++;
        this.#hook("onConnect", () => this.#settings.onConnect?.(info));
      },
      onClose: (info, code, reason) => {
        this.#open--;
        this.#hook("onDisconnect", () => this.#settings.onDisconnect?.(info, code, reason));
      },
    }, refuse ? { ...start, refuse } : start);
    if (refuse) this.#refusing++;
    else this.#held++;
    this.#all.add(connection);
    connection.done.then(() => {
      this.#all.delete(connection);
      if (refuse) this.#refusing--;
      else this.#held--;
    });
  }

  /** Calls a user hook; a throw is logged, not allowed to break the connection. */
  #hook(name: string, call: () => void): void {
    try {
      call();
    } catch (error) {
      this.#log(`${name} threw: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#backoffTimer = setTimeout(resolve, ms);
    });
  }

  async #shutdown(): Promise<void> {
    this.#settings.signal?.removeEventListener("abort", this.#onAbort);
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    clearTimeout(this.#backoffTimer);
    this.#wake?.();
    await this.#accepting.catch(() => {});
    for (const connection of this.#all) connection.shutdown();
    // Each connection bounds its own close by closeTimeout; this is the backstop.
    const backstop = setTimeout(() => {
      for (const connection of this.#all) connection.abort();
    }, this.#settings.closeTimeout + 100);
    await Promise.allSettled([...this.#all].map((c) => c.done));
    clearTimeout(backstop);
  }
}
