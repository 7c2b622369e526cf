/**
 * The recovery layer: the queue of {@linkcode ReconnectingClient}, where
 * messages wait while no connection is open, bounded in messages and in
 * bytes. A message that does not fit is refused with
 * {@linkcode SendQueueFullError}; a message leaves the queue only once a
 * connection has taken it, so nothing in it is ever lost.
 *
 * This module does not touch `Deno.*`.
 *
 * @module
 */

import type { WebSocketClient } from "../client/websocket_client.ts";
import type { SendData } from "../client/options.ts";
import { byteLength } from "../util/bytes.ts";

/**
 * Default {@linkcode ReconnectingClientOptions.maxPendingMessages}.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_PENDING_MESSAGES } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_MAX_PENDING_MESSAGES, 1000);
 * ```
 */
export const DEFAULT_MAX_PENDING_MESSAGES = 1000;
/**
 * Default {@linkcode ReconnectingClientOptions.maxPendingBytes}: 1 MiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_PENDING_BYTES } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_MAX_PENDING_BYTES, 1024 * 1024);
 * ```
 */
export const DEFAULT_MAX_PENDING_BYTES = 1024 * 1024;

/**
 * {@linkcode ReconnectingClient.send} could not queue a message: the queue
 * of messages waiting for a connection is full. The message was not queued;
 * nothing else was dropped.
 *
 * @example Back off when the queue is full
 * ```ts
 * import { SendQueueFullError } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * const error = new SendQueueFullError({ messages: 1000, bytes: 5000 }, { maxMessages: 1000, maxBytes: 1048576 });
 * assert.equal(error.messages, 1000);
 * assert.match(error.message, /^Cannot queue the message as the send queue is full/);
 * ```
 */
export class SendQueueFullError extends Error {
  /** Messages waiting in the queue. */
  readonly messages: number;
  /** Bytes waiting in the queue. */
  readonly bytes: number;

  /**
   * Constructs a new instance.
   *
   * @param queued What waits in the queue.
   * @param limits The queue's bounds (`maxPendingMessages`, `maxPendingBytes`).
   * @param options Standard error options.
   */
  constructor(
    queued: { messages: number; bytes: number },
    limits: { maxMessages: number; maxBytes: number },
    options?: ErrorOptions,
  ) {
    super(
      `Cannot queue the message as the send queue is full: ${queued.messages} messages ` +
        `(${queued.bytes} bytes) wait for a connection; the bounds are maxPendingMessages ` +
        `${limits.maxMessages} and maxPendingBytes ${limits.maxBytes}`,
      options,
    );
    this.name = "SendQueueFullError";
    this.messages = queued.messages;
    this.bytes = queued.bytes;
  }
}

/** A copy of what `send()` was given, as the connection will send it. */
function snapshot(data: SendData): string | Uint8Array {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0));
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  }
  throw new TypeError(
    `Cannot send data as it is not a string, ArrayBuffer or view: current value is ${
      Object.prototype.toString.call(data)
    }`,
  );
}

/**
 * Messages waiting for a connection, in order. Internal: not exported from
 * `mod.ts`.
 */
export class SendQueue {
  #items: { data: string | Uint8Array; bytes: number }[] = [];
  #bytes = 0;
  #maxMessages: number;
  #maxBytes: number;

  /**
   * Creates an empty queue.
   *
   * @param maxMessages The most messages it holds.
   * @param maxBytes The most bytes it holds (text as UTF-8).
   */
  constructor(maxMessages: number, maxBytes: number) {
    this.#maxMessages = maxMessages;
    this.#maxBytes = maxBytes;
  }

  /** How many messages wait. */
  get length(): number {
    return this.#items.length;
  }

  /** Messages and bytes waiting. */
  get size(): { messages: number; bytes: number } {
    return { messages: this.#items.length, bytes: this.#bytes };
  }

  /**
   * Queues a copy of `data`.
   *
   * @param data The message.
   * @throws {SendQueueFullError} If it does not fit.
   * @throws {TypeError} If `data` is not a string, `ArrayBuffer` or view.
   */
  push(data: SendData): void {
    const message = snapshot(data);
    const bytes = byteLength(message);
    if (this.#items.length + 1 > this.#maxMessages || this.#bytes + bytes > this.#maxBytes) {
      throw new SendQueueFullError(this.size, {
        maxMessages: this.#maxMessages,
        maxBytes: this.#maxBytes,
      });
    }
    this.#items.push({ data: message, bytes });
    this.#bytes += bytes;
  }

  /**
   * Hands the queued messages to `ws`, in order, each leaving the queue once
   * `ws` took it.
   *
   * @param ws The connection.
   * @returns Whether the queue is empty and `ws` still open.
   */
  flush(ws: WebSocketClient): boolean {
    while (this.#items.length > 0) {
      if (ws.state !== "open") return false;
      const { data, bytes } = this.#items[0]!;
      try {
        ws.send(data);
      } catch {
        return false; // it closed: the rest wait for the next connection
      }
      this.#items.shift();
      this.#bytes -= bytes;
    }
    return ws.state === "open";
  }
}
