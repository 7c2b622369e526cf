/**
 * A Deno Deploy relay: one upstream WebSocket subscription, kept alive by a
 * heartbeat and reconnected with backoff by wsbeat's
 * {@linkcode ReconnectingClient}, fanned out to any number of browsers over
 * Server-Sent Events.
 *
 * - `GET /`: a page that shows the messages as they arrive (`EventSource`).
 * - `GET /events`: the stream. Each upstream message is one `message` event
 *   (binary ones are `binary` events, base64), with an `id`; `status` events
 *   tell when the upstream drops and comes back. Each browser has a bounded
 *   buffer: one that does not keep up is dropped (its `EventSource`
 *   reconnects), so a slow reader never makes the relay grow.
 * - `GET /health`: JSON, HTTP 200 while the upstream is open and 503 while
 *   it is not: upstream state, age of the last message, heartbeat latency,
 *   reconnects, clients, memory.
 *
 * A Deploy script: `Deno.serve`, no file system, configuration from
 * environment variables (`UPSTREAM_URL`, `UPSTREAM_SEND`, `HEARTBEAT_*`,
 * `RECONNECT_*`, ...: the table is in docs/deploy.md). Their defaults point
 * at a local echo server, which answers the relay's periodic `UPSTREAM_SEND`
 * message, so that locally messages flow with no other setup:
 *
 * ```sh
 * deno run -A cli.ts serve --port 9000 &
 * deno run --allow-net --allow-env examples/relay.ts   # open http://127.0.0.1:8000/
 * ```
 *
 * On SIGINT (Ctrl-C, or Deno Deploy evicting the instance, which sends
 * SIGKILL 5 s later) it ends every browser's stream and closes the upstream
 * within `CLOSE_TIMEOUT_MS`, then exits. Outside this repository, import from
 * `jsr:@wsbeat/wsbeat`.
 *
 * @module
 */

import { type Message, ReconnectingClient, type ReconnectingStatus } from "@wsbeat/wsbeat";

export type { ReconnectingStatus };

/** The relay's settings; {@linkcode configFromEnv} reads them from the environment. */
export interface RelayConfig {
  /** The upstream WebSocket URL. */
  upstreamUrl: string;
  /** Sent on every new upstream connection; `{n}` is replaced by a counter. Empty: nothing. */
  upstreamSend: string;
  /** Milliseconds between repeats of `upstreamSend` while connected; 0 sends it once. */
  upstreamSendEvery: number;
  /** The heartbeat's sleep, ms. */
  heartbeatInterval: number;
  /** The heartbeat's bound for a reply, ms. */
  heartbeatTimeout: number;
  /** An application probe, with `heartbeatPong` its reply; unset: ping frames. */
  heartbeatPing?: string;
  /** The reply to `heartbeatPing`. */
  heartbeatPong?: string;
  /** Milliseconds without a message after which the feed is reconnected; `Infinity`: never. */
  staleAfter: number;
  /** The first backoff delay, ms. */
  reconnectInitialDelay: number;
  /** The longest backoff delay, ms. */
  reconnectMaxDelay: number;
  /** Bytes of events one browser may have waiting before it is dropped. */
  clientBufferBytes: number;
  /** Browsers at once. */
  maxClients: number;
}

/** What `GET /health` answers. */
export interface Health {
  /** Whether the upstream connection is open. */
  ok: boolean;
  /** The upstream connection. */
  upstream: {
    /** The URL, without credentials. */
    url: string;
    /** `"open"`, `"connecting"`, `"backing-off"` (waiting to retry) or `"closed"`. */
    status: ReconnectingStatus;
    /** Connections opened so far. */
    connections: number;
    /** Connections opened after a drop: `connections - 1`. */
    reconnects: number;
    /** How long the last outage lasted, from the drop to the next open, in ms. */
    lastOutageMs: number | null;
    /** Messages received from the upstream (heartbeat replies excluded). */
    messages: number;
    /** Milliseconds since the last message. */
    lastMessageAgeMs: number | null;
    /** Heartbeat round trips of the open connection, in ms. */
    latencyMs: { last: number; avg: number; p99: number } | null;
    /** Why the last connection ended or attempt failed. */
    lastError: string | null;
  };
  /**
   * The browsers subscribed to `/events`: connected now, served since the
   * start, dropped because they did not keep up, and the buffer each has.
   */
  clients: { connected: number; served: number; dropped: number; bufferBytes: number };
  /** The process's memory, where the runtime tells it. */
  memory: { rssBytes: number; heapUsedBytes: number } | null;
}

/** Reads a whole number of milliseconds (or bytes) from the environment. */
function numberFrom(
  env: (name: string) => string | undefined,
  name: string,
  fallback: number,
  min = 0,
): number {
  const text = env(name);
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(
      `Cannot use ${name} as it is not a whole number of at least ${min}: current value is ${text}`,
    );
  }
  return value;
}

/**
 * The configuration from environment variables (see the module doc).
 *
 * @param env Reads a variable; `Deno.env.get` by default.
 * @throws {RangeError} If a number is malformed or out of range.
 * @throws {TypeError} If only one of `HEARTBEAT_PING` and `HEARTBEAT_PONG` is set.
 */
export function configFromEnv(
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): RelayConfig {
  const ping = env("HEARTBEAT_PING") || undefined;
  const pong = env("HEARTBEAT_PONG") || undefined;
  if ((ping === undefined) !== (pong === undefined)) {
    throw new TypeError(
      "Cannot use an application probe as HEARTBEAT_PING and HEARTBEAT_PONG must be set together",
    );
  }
  return {
    upstreamUrl: env("UPSTREAM_URL") || "ws://127.0.0.1:9000",
    upstreamSend: env("UPSTREAM_SEND") ?? '{"tick":{n}}',
    upstreamSendEvery: numberFrom(env, "UPSTREAM_SEND_EVERY", 1000),
    heartbeatInterval: numberFrom(env, "HEARTBEAT_INTERVAL", 10_000, 1),
    heartbeatTimeout: numberFrom(env, "HEARTBEAT_TIMEOUT", 5_000, 1),
    ...(ping !== undefined ? { heartbeatPing: ping, heartbeatPong: pong } : {}),
    staleAfter: numberFrom(env, "STALE_AFTER", Infinity, 1),
    reconnectInitialDelay: numberFrom(env, "RECONNECT_INITIAL_DELAY", 1_000, 10),
    reconnectMaxDelay: numberFrom(env, "RECONNECT_MAX_DELAY", 30_000, 10),
    clientBufferBytes: numberFrom(env, "CLIENT_BUFFER_BYTES", 65_536, 1024),
    maxClients: numberFrom(env, "MAX_CLIENTS", 10_000, 1),
  };
}

/** A browser's stream. */
type Subscriber = ReadableStreamDefaultController<Uint8Array>;

/** The upstream's close code when the relay stops: 1001, going away. */
export const UPSTREAM_CLOSE_CODE = 1001;
/** The longest wait for the upstream's closing handshake: well inside Deploy's 5 s to SIGKILL. */
const CLOSE_TIMEOUT_MS = 2_000;
const encoder = new TextEncoder();
/** Every this many ms each browser gets a comment line, so that idle proxies keep the stream. */
const KEEPALIVE_MS = 15_000;

/** One Server-Sent Event, encoded once for every browser. */
function sseEvent(event: string, data: string, id?: number): Uint8Array {
  let text = id === undefined ? "" : `id: ${id}\n`;
  if (event !== "message") text += `event: ${event}\n`;
  for (const line of data.split(/\r\n|\r|\n/)) text += `data: ${line}\n`;
  return encoder.encode(text + "\n");
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function withoutCredentials(url: string): string {
  const parsed = URL.parse(url);
  if (parsed === null) return url;
  parsed.username = parsed.password = "";
  return parsed.href;
}

/** The upstream subscription and the browsers it is relayed to. */
export class Relay implements AsyncDisposable {
  readonly #config: RelayConfig;
  readonly #feed: ReconnectingClient;
  readonly #subscribers = new Set<Subscriber>();
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  readonly #pumping: Promise<void>;
  #sent = 0;
  #eventId = 0;
  #connections = 0;
  #messages = 0;
  #lastMessageAt: number | undefined;
  #lostAt: number | undefined;
  #lastOutageMs: number | null = null;
  #lastError: string | null = null;
  #served = 0;
  #dropped = 0;

  /**
   * Connects to the upstream and keeps it connected until
   * {@linkcode Relay.close}.
   *
   * @param config The settings, e.g. from {@linkcode configFromEnv}.
   */
  constructor(config: RelayConfig) {
    this.#config = config;
    this.#feed = new ReconnectingClient(config.upstreamUrl, {
      heartbeat: {
        interval: config.heartbeatInterval,
        timeout: config.heartbeatTimeout,
        ...(config.heartbeatPing !== undefined
          ? { message: config.heartbeatPing, reply: config.heartbeatPong }
          : {}),
      },
      staleAfter: config.staleAfter,
      closeTimeout: CLOSE_TIMEOUT_MS,
      initialDelay: config.reconnectInitialDelay,
      maxDelay: config.reconnectMaxDelay,
      // A relay never gives up: a refused login or a policy close is
      // retried at the backoff's pace, and shown in /health meanwhile.
      shouldRetry: () => true,
      onOpen: (client) => {
        if (config.upstreamSend !== "") client.send(this.#nextSend());
      },
      onStatus: (status) => this.#onStatus(status),
      onRetry: ({ reason }) => {
        this.#lastError = reason instanceof Error
          ? reason.message
          : `closed with ${reason.code}${reason.reason ? ` "${reason.reason}"` : ""}${
            reason.error ? `: ${reason.error.message}` : ""
          }`;
      },
    });
    if (config.upstreamSend !== "" && config.upstreamSendEvery > 0) {
      // Straight to the open connection: a repeat is never queued for the next
      // one, where it would go out after that connection's first message.
      this.#timers.push(setInterval(() => {
        const client = this.#feed.client;
        if (client?.state !== "open") return;
        try {
          client.send(this.#nextSend());
        } catch { /* it closed a moment ago: the next connection sends its own */ }
      }, config.upstreamSendEvery));
    }
    this.#timers.push(setInterval(() => this.#broadcast(encoder.encode(":\n\n")), KEEPALIVE_MS));
    this.#pumping = this.#pump();
  }

  /** Answers `GET /`, `GET /events` and `GET /health`. */
  readonly handler = (request: Request): Response => {
    const { pathname } = new URL(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    if (pathname === "/") {
      return new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    if (pathname === "/events") return this.#subscribe();
    if (pathname === "/health") {
      const health = this.health();
      return Response.json(health, {
        status: health.ok ? 200 : 503,
        headers: { "cache-control": "no-store" },
      });
    }
    return new Response("not found\n", { status: 404 });
  };

  /** The relay's state, as `GET /health` answers it. */
  health(): Health {
    const latency = this.#feed.client?.stats.latency;
    const round = (ms: number) => Math.round(ms * 100) / 100;
    let memory: Health["memory"] = null;
    try {
      const usage = Deno.memoryUsage();
      memory = { rssBytes: usage.rss, heapUsedBytes: usage.heapUsed };
    } catch { /* not every host has it */ }
    return {
      ok: this.#feed.status === "open",
      upstream: {
        url: withoutCredentials(this.#config.upstreamUrl),
        status: this.#feed.status,
        connections: this.#connections,
        reconnects: Math.max(0, this.#connections - 1),
        lastOutageMs: this.#lastOutageMs,
        messages: this.#messages,
        lastMessageAgeMs: this.#lastMessageAt === undefined
          ? null
          : Date.now() - this.#lastMessageAt,
        latencyMs: latency
          ? { last: round(latency.last), avg: round(latency.avg), p99: round(latency.p99) }
          : null,
        lastError: this.#lastError,
      },
      clients: {
        connected: this.#subscribers.size,
        served: this.#served,
        dropped: this.#dropped,
        bufferBytes: this.#config.clientBufferBytes,
      },
      memory,
    };
  }

  /**
   * Ends every browser's stream, then closes the upstream with
   * {@linkcode UPSTREAM_CLOSE_CODE}; resolves within `CLOSE_TIMEOUT_MS`.
   */
  async close(): Promise<void> {
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    for (const subscriber of [...this.#subscribers]) {
      this.#subscribers.delete(subscriber);
      try {
        subscriber.close();
      } catch { /* already cancelled */ }
    }
    await this.#feed.close(UPSTREAM_CLOSE_CODE, "relay going away");
    await this.#pumping;
  }

  /** Same as {@linkcode Relay.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #nextSend(): string {
    return this.#config.upstreamSend.replaceAll("{n}", String(++this.#sent));
  }

  async #pump(): Promise<void> {
    try {
      for await (const message of this.#feed) this.#relay(message);
    } catch (error) {
      this.#lastError = (error as Error).message; // only if the handle itself failed
    }
  }

  #relay(message: Message): void {
    this.#messages++;
    this.#lastMessageAt = Date.now();
    const id = ++this.#eventId;
    this.#broadcast(
      typeof message === "string"
        ? sseEvent("message", message, id)
        : sseEvent("binary", base64(message), id),
    );
  }

  #onStatus(status: ReconnectingStatus): void {
    if (status === "open") {
      this.#connections++;
      if (this.#lostAt !== undefined) this.#lastOutageMs = Date.now() - this.#lostAt;
      this.#lostAt = undefined;
    } else if (this.#lostAt === undefined && this.#connections > 0) {
      this.#lostAt = Date.now();
    }
    this.#broadcast(this.#statusEvent());
  }

  #statusEvent(): Uint8Array {
    return sseEvent(
      "status",
      JSON.stringify({ status: this.#feed.status, reconnects: Math.max(0, this.#connections - 1) }),
    );
  }

  /**
   * Queues an event for every browser. One whose queue would pass
   * `clientBufferBytes` is dropped instead (an event larger than the whole
   * buffer still goes to a browser whose queue is empty).
   */
  #broadcast(chunk: Uint8Array): void {
    const limit = this.#config.clientBufferBytes;
    for (const subscriber of this.#subscribers) {
      const queued = limit - (subscriber.desiredSize ?? 0);
      if (queued > 0 && queued + chunk.byteLength > limit) {
        this.#drop(subscriber);
        continue;
      }
      subscriber.enqueue(chunk);
    }
  }

  #drop(subscriber: Subscriber): void {
    if (!this.#subscribers.delete(subscriber)) return;
    this.#dropped++;
    subscriber.error(
      new Error(
        `dropped: over ${this.#config.clientBufferBytes} bytes waiting (CLIENT_BUFFER_BYTES)`,
      ),
    );
  }

  #subscribe(): Response {
    if (this.#subscribers.size >= this.#config.maxClients) {
      return new Response(`too many clients (MAX_CLIENTS ${this.#config.maxClients})\n`, {
        status: 503,
        headers: { "retry-after": "5" },
      });
    }
    let subscriber: Subscriber | undefined;
    // The server cancels the stream when the browser goes away.
    const leave = () => {
      if (subscriber) this.#subscribers.delete(subscriber);
    };
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          subscriber = controller;
          this.#subscribers.add(subscriber);
          this.#served++;
          controller.enqueue(encoder.encode("retry: 2000\n\n"));
          controller.enqueue(this.#statusEvent());
        },
        cancel: leave,
      },
      new ByteLengthQueuingStrategy({ highWaterMark: this.#config.clientBufferBytes }),
    );
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  }
}

/** The page at `/`: the messages as they arrive, newest first, the last 100. */
const PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wsbeat relay</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 50rem; padding: 0 1rem; }
  #status { font-weight: bold; }
  #status.open { color: #080; }
  #log { font-family: ui-monospace, monospace; list-style: none; padding: 0; }
  #log li { border-bottom: 1px solid #eee; padding: 0.2rem 0; overflow-wrap: anywhere; }
</style>
<h1>wsbeat relay</h1>
<p>Upstream: <span id="status">connecting</span>, <span id="reconnects">0</span> reconnects.
  Received here: <span id="count">0</span> messages. <a href="/health">/health</a></p>
<ol id="log"></ol>
<script>
  const $ = (id) => document.getElementById(id);
  let count = 0;
  function show(text) {
    $("count").textContent = String(++count);
    const item = document.createElement("li");
    item.textContent = text;
    $("log").prepend(item);
    while ($("log").children.length > 100) $("log").lastChild.remove();
  }
  const events = new EventSource("/events");
  events.addEventListener("message", (event) => show(event.data));
  events.addEventListener("binary", (event) => show("binary (base64) " + event.data));
  events.addEventListener("status", (event) => {
    const { status, reconnects } = JSON.parse(event.data);
    $("status").textContent = status;
    $("status").className = status;
    $("reconnects").textContent = String(reconnects);
  });
  events.addEventListener("error", () => {
    $("status").textContent = "relay unreachable, retrying";
    $("status").className = "";
  });
</script>
</html>
`;

if (import.meta.main) {
  const relay = new Relay(configFromEnv());
  // On Deploy, DENO_SERVE_ADDRESS overrides this address.
  const server = Deno.serve({
    port: Number(Deno.env.get("PORT") ?? 8000),
    hostname: Deno.env.get("LISTEN_HOSTNAME") || "127.0.0.1",
    onListen: ({ hostname, port }) => {
      console.log(`listening http://${hostname}:${port}/`);
      console.error(`relaying ${relay.health().upstream.url}`);
    },
  }, relay.handler);
  // Ctrl-C, or Deploy evicting this instance (SIGKILL follows 5 s later).
  const stop = async () => {
    Deno.removeSignalListener("SIGINT", stop);
    console.error("SIGINT: ending the browsers' streams and closing the upstream");
    // A browser that stopped reading could hold the server's shutdown: end anyway, before SIGKILL.
    Deno.unrefTimer(setTimeout(() => Deno.exit(0), 4_000));
    await relay.close();
    await server.shutdown();
  };
  Deno.addSignalListener("SIGINT", stop);
}
