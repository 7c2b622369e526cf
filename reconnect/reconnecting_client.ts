/**
 * The recovery layer: {@linkcode ReconnectingClient}, a handle that outlives
 * its connections, for producers. It runs the {@linkcode reconnecting} loop
 * itself; `send()` works whatever the state of the connection of the moment.
 *
 * - While no connection is open, messages wait in a queue bounded in
 *   messages and bytes, and go out in order on the next connection, after
 *   the `onOpen` hook (which renews subscriptions first). A full queue
 *   throws {@linkcode SendQueueFullError}: nothing is dropped silently.
 * - Delivery is **at most once**. A message handed to a connection (sent
 *   while it was open, or flushed to it from the queue) belongs to that
 *   connection: if it drops before the bytes reach the server, the message
 *   is lost, and no client can know, since WebSocket has no
 *   acknowledgements. Make messages idempotent and have the server
 *   acknowledge them when that matters.
 * - Iterating the handle yields the messages of every connection in turn.
 * - `status` and `client` say where it stands; `onStatus` reports each change.
 *
 * This module does not touch `Deno.*`.
 *
 * @module
 */

import type { WebSocketClient } from "../client/websocket_client.ts";
import type { Message, SendData } from "../client/options.ts";
import { resolveAttempt } from "../client/resolve.ts";
import { ConnectionClosedError } from "../util/errors.ts";
import { checkClientClose } from "../client/close_info.ts";
import { checkBoolean, checkCount, checkFunction } from "../util/checks.ts";
import {
  DEFAULT_MAX_PENDING_BYTES,
  DEFAULT_MAX_PENDING_MESSAGES,
  SendQueue,
} from "./send_queue.ts";
import {
  type AttemptContext,
  type ReconnectOptions,
  type ReconnectSettings,
  resolveReconnectOptions,
  type RetryEvent,
  runReconnecting,
} from "./reconnecting.ts";

/** Where a {@linkcode ReconnectingClient} stands. */
export type ReconnectingStatus = "connecting" | "open" | "backing-off" | "closed";

/** Options for {@linkcode ReconnectingClient}: those of {@linkcode reconnecting}, and the queue. */
export interface ReconnectingClientOptions extends ReconnectOptions {
  /**
   * Runs on each new connection before the queued messages go out: renew
   * subscriptions here, with `client.send()`. The connection counts as open
   * (and `send()` on the handle goes straight to it) once the hook has
   * resolved and the queue is flushed. If it throws, the handle closes and
   * `closed` rejects with the error.
   */
  onOpen?: (client: WebSocketClient) => void | Promise<void>;
  /** Called on each change of {@linkcode ReconnectingClient.status}, with the open client if any. */
  onStatus?: (status: ReconnectingStatus, client: WebSocketClient | undefined) => void;
  /**
   * The most messages kept while no connection is open. 1000 covers a
   * producer of 30 messages a second through the longest default backoff
   * delay (30 s).
   *
   * @default {1000} ({@linkcode DEFAULT_MAX_PENDING_MESSAGES})
   */
  maxPendingMessages?: number;
  /**
   * The most bytes (text as UTF-8) kept while no connection is open: the
   * default equals `sendHighWaterMark`, what one connection may hold unsent
   * before `drain()` waits.
   *
   * @default {1048576} ({@linkcode DEFAULT_MAX_PENDING_BYTES})
   */
  maxPendingBytes?: number;
  /**
   * Whether received messages are kept for iteration. `false` for a pure
   * producer: they are read and dropped as they arrive, and iterating the
   * handle throws. With `true`, read them: unread, they wait (up to
   * `maxQueuedMessages` and `maxQueuedBytes` per connection, then reading
   * pauses).
   *
   * @default {true}
   */
  receive?: boolean;
}

/**
 * A WebSocket client that outlives its connections: see the module doc. It
 * starts connecting when constructed.
 *
 * @example Publish across reconnects, renewing a subscription on each connection
 * ```ts ignore
 * import { ReconnectingClient } from "@wsbeat/wsbeat";
 *
 * await using feed = new ReconnectingClient("wss://example.com/feed", {
 *   heartbeat: true,
 *   onOpen: (client) => client.send(JSON.stringify({ op: "subscribe", channel: "orders" })),
 *   onStatus: (status) => console.error(status),
 * });
 * feed.send(JSON.stringify({ op: "order", id: 1 })); // queued until the connection is open
 * for await (const message of feed) console.log(message); // across reconnects
 * ```
 */
export class ReconnectingClient implements AsyncIterable<Message>, AsyncDisposable {
  #settings: ReconnectSettings;
  #onOpen: ReconnectingClientOptions["onOpen"];
  #onStatus: ReconnectingClientOptions["onStatus"];
  #receive: boolean;
  #status: ReconnectingStatus = "connecting";
  #client: WebSocketClient | undefined; // open, hook run, queue flushed
  #opening: WebSocketClient | undefined; // its onOpen hook is running
  #queue: SendQueue;
  #stop = new AbortController();
  #ended = false;
  #error: unknown;
  #closeCode = 1000;
  #closed: Promise<void>;
  #settle!: (error: unknown) => void;
  #run: Promise<void>;
  #readable: WebSocketClient[] = []; // connections whose messages may be unread, oldest first
  #wake: (() => void)[] = []; // readers and drainers waiting for a change

  /**
   * Checks the options, once for every connection to come, and starts
   * connecting.
   *
   * @param url A `ws:` or `wss:` URL (`prepare` may give another per attempt).
   * @param options Those of {@linkcode reconnecting}, the hooks and the queue bounds.
   * @throws {TypeError} If an option has the wrong type.
   * @throws {RangeError} If an option is out of range.
   */
  constructor(url: string | URL, options: ReconnectingClientOptions = {}) {
    // One read of each option: the copy is what the checks read.
    const given = { ...options };
    const { onOpen, onStatus, maxPendingMessages, maxPendingBytes, receive } = given;
    this.#settings = resolveReconnectOptions(given);
    this.#onOpen = checkFunction("onOpen", onOpen);
    this.#onStatus = checkFunction("onStatus", onStatus);
    this.#receive = checkBoolean("receive", receive ?? true);
    this.#queue = new SendQueue(
      checkCount("maxPendingMessages", maxPendingMessages ?? DEFAULT_MAX_PENDING_MESSAGES, {
        min: 1,
      }),
      checkCount("maxPendingBytes", maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES, { min: 1 }),
    );
    this.#closed = new Promise((resolve, reject) => {
      this.#settle = (error) => error === undefined ? resolve() : reject(error);
    });
    this.#closed.catch(() => {}); // rejecting is for those who await it
    this.#run = this.#loop(url);
  }

  /** `"connecting"`, `"open"`, `"backing-off"` (waiting to retry) or `"closed"`. */
  get status(): ReconnectingStatus {
    return this.#status;
  }

  /** The open connection, or `undefined` between connections. */
  get client(): WebSocketClient | undefined {
    return this.#client;
  }

  /** Messages and bytes waiting in the queue for a connection. */
  get queued(): { messages: number; bytes: number } {
    return this.#queue.size;
  }

  /**
   * Resolves once the handle is closed by {@linkcode ReconnectingClient.close}
   * or the signal; rejects with the error when it gave up: a
   * {@linkcode ReconnectError}, a failure not to be retried, or what
   * `onOpen` or `prepare` threw.
   */
  get closed(): Promise<void> {
    return this.#closed;
  }

  /**
   * Sends a message now if a connection is open, else queues it for the next
   * one (in order, after `onOpen`). Delivery is at most once: see the module doc.
   *
   * @param data The message: text for a string, binary otherwise.
   * @throws {SendQueueFullError} If no connection is open and the queue is full.
   * @throws {ConnectionClosedError} If the handle is closed.
   * @throws {TypeError} If `data` is not a string, `ArrayBuffer` or view.
   */
  send(data: SendData): void {
    if (this.#ended) throw this.#endError("send");
    const ws = this.#client;
    if (ws && this.#queue.length === 0) {
      try {
        ws.send(data);
        return;
      } catch (error) {
        if (!(error instanceof ConnectionClosedError)) throw error;
        // It closed a moment ago and the loop has not noticed yet: queue.
      }
    }
    this.#queue.push(data);
  }

  /**
   * Resolves once the queue is empty and the open connection has at most
   * `sendHighWaterMark` bytes unsent: a producer that awaits it after each
   * `send()` holds a bounded amount in memory, connected or not.
   *
   * @param options A signal to stop waiting.
   * @returns A promise that resolves as described.
   * @throws {ConnectionClosedError} If the handle closes first.
   * @throws The signal's reason, if it aborts first.
   */
  async drain(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    while (true) {
      signal?.throwIfAborted();
      if (this.#ended) throw this.#endError("drain");
      const ws = this.#client;
      if (ws && this.#queue.length === 0) {
        try {
          await ws.drain(signal ? { signal } : {});
          return;
        } catch (error) {
          if (!(error instanceof ConnectionClosedError)) throw error;
          return; // handed to a connection that dropped: at most once
        }
      }
      await this.#changed(signal);
    }
  }

  /**
   * Closes the open connection with `code` and `reason`, stops
   * reconnecting, and resolves once the loop has ended. Messages still in
   * the queue are not sent (`queued` tells how many); await `drain()` first
   * to send them. Iteration ends once every received message has been read.
   *
   * @param code A close code: 1000, or 3000 to 4999 for applications.
   * @param reason A reason of at most 123 UTF-8 bytes.
   * @returns A promise that resolves once the loop has ended.
   * @throws {RangeError} If the code or reason is not allowed.
   */
  async close(code = 1000, reason = ""): Promise<void> {
    checkClientClose(code, reason);
    if (!this.#stop.signal.aborted) {
      this.#closeCode = code;
      const ws = this.#client ?? this.#opening;
      const closing = ws?.close(code, reason);
      this.#stop.abort();
      await closing;
    }
    await this.#run;
  }

  /** Closes with code 1000, as `await using` does. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Iterates the messages of every connection in turn. Ends once the handle
   * is closed and every message read; rejects with the error if it gave up.
   *
   * @returns An iterator of the messages.
   * @throws {TypeError} If the handle was made with `receive: false`.
   */
  [Symbol.asyncIterator](): AsyncIterator<Message> {
    if (!this.#receive) {
      throw new TypeError(
        "Cannot iterate the messages as the ReconnectingClient was made with receive: false",
      );
    }
    return { next: () => this.#next() };
  }

  // --- internals -----------------------------------------------------------

  async #next(): Promise<IteratorResult<Message>> {
    while (true) {
      const ws = this.#readable[0];
      if (!ws) {
        if (this.#ended) {
          if (this.#error !== undefined) throw this.#error;
          return { value: undefined, done: true };
        }
        await this.#changed();
        continue;
      }
      try {
        return { value: await ws.receive(), done: false };
      } catch (error) {
        if (ws.state !== "closed") throw error;
        this.#forget(ws); // closed and read to the end: on to the next connection
      }
    }
  }

  #forget(ws: WebSocketClient): void {
    const i = this.#readable.indexOf(ws);
    if (i >= 0) this.#readable.splice(i, 1);
  }

  /** Waits for the next change of state (a connection, a flush, the end). */
  #changed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!signal) {
        this.#wake.push(resolve);
        return;
      }
      const onAbort = () => {
        const i = this.#wake.indexOf(wake);
        if (i >= 0) this.#wake.splice(i, 1);
        reject(signal.reason);
      };
      const wake = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#wake.push(wake);
    });
  }

  #notify(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }

  #setStatus(status: ReconnectingStatus): void {
    if (this.#status === status) return;
    this.#status = status;
    this.#onStatus?.(status, this.#client);
  }

  #endError(action: string): ConnectionClosedError {
    return new ConnectionClosedError(
      this.#closeCode,
      "",
      `Cannot ${action} as the ReconnectingClient is closed`,
      this.#error === undefined ? undefined : { cause: this.#error },
    );
  }

  async #loop(url: string | URL): Promise<void> {
    const settings = this.#settings;
    const given = settings.connect.signal;
    const signal = given ? AbortSignal.any([given, this.#stop.signal]) : this.#stop.signal;
    let error: unknown;
    try {
      // The checked settings, with this handle's signal and status hooks: nothing to check again.
      const loop = runReconnecting(
        url,
        Object.freeze({
          ...settings,
          connect: resolveAttempt(settings.connect, { signal }),
          prepare: (context: AttemptContext) => {
            this.#setStatus("connecting");
            return settings.prepare?.(context);
          },
          onRetry: (event: RetryEvent) => {
            this.#setStatus("backing-off");
            settings.onRetry?.(event);
          },
        }),
      );
      for await (const ws of loop) {
        await this.#serve(ws);
        if (signal.aborted) break;
      }
    } catch (thrown) {
      // After close() or the signal, what fails is a consequence, not a cause.
      if (!signal.aborted) error = thrown;
    }
    this.#ended = true;
    this.#error = error;
    this.#client = undefined;
    this.#setStatus("closed");
    this.#notify();
    this.#settle(error);
  }

  /** One connection: the hook, the queue, then wait for its end. */
  async #serve(ws: WebSocketClient): Promise<void> {
    if (!this.#receive) {
      (async () => {
        for await (const _ of ws) { /* a producer: drop what arrives */ }
      })().catch(() => {});
    } else {
      this.#readable.push(ws);
      this.#notify();
    }
    this.#opening = ws;
    try {
      await this.#onOpen?.(ws);
    } finally {
      this.#opening = undefined;
    }
    if (this.#queue.flush(ws)) {
      this.#client = ws;
      this.#setStatus("open");
      this.#notify();
    }
    await ws.closed;
    this.#client = undefined;
    if (ws.unread === 0) this.#forget(ws);
  }
}
