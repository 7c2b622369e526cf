/**
 * The client layer: the counters behind `WebSocketClient.stats`, timing
 * (when the socket opened, for how long) and traffic (messages and payload
 * bytes each way). Bytes are the transport's count where it keeps one (the
 * wsbeat transport counts as it frames and parses), else counted here from
 * each message (text as UTF-8).
 *
 * @module
 */

import type { ClientStats, Message } from "./options.ts";
import { byteLength } from "../util/bytes.ts";
import type { Transport } from "../transport/transport.ts";

/** What {@linkcode ClientCounters.snapshot} adds from other parts of the client. */
export type LiveStats = Pick<
  ClientStats,
  "latency" | "readPaused" | "readPauses" | "eventLoopLag"
>;

/**
 * One client's counters; see the module doc.
 *
 * @example
 * ```ts
 * import { ClientCounters } from "./stats.ts";
 * import type { Transport } from "../transport/transport.ts";
 * import assert from "node:assert/strict";
 *
 * const counters = new ClientCounters({} as Transport); // a transport that counts no bytes
 * counters.opened();
 * counters.sent("héllo");
 * counters.received(new Uint8Array(3));
 * const stats = counters.snapshot({
 *   latency: undefined,
 *   readPaused: false,
 *   readPauses: 0,
 *   eventLoopLag: 0,
 * });
 * assert.equal(stats.bytesSent, 6);
 * assert.equal(stats.messagesReceived, 1);
 * assert.equal(stats.bytesReceived, 3);
 * ```
 */
export class ClientCounters {
  readonly #transport: Transport;
  readonly #createdAt = performance.now();
  #openAt: number | undefined;
  #openedAt: number | undefined;
  #endAt: number | undefined;
  #messagesSent = 0;
  #bytesSent = 0;
  #messagesReceived = 0;
  #bytesReceived = 0;

  /**
   * Starts counting; the client was created now.
   *
   * @param transport Asked for its byte counts, when it keeps them.
   */
  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** The socket opened now. */
  opened(): void {
    this.#openAt = performance.now();
    this.#openedAt = Date.now();
  }

  /** The connection ended now. */
  ended(): void {
    this.#endAt = performance.now();
  }

  /**
   * A message was handed to the transport.
   *
   * @param payload The message.
   */
  sent(payload: string | Uint8Array): void {
    this.#messagesSent++;
    if (this.#transport.bytesSent === undefined) this.#bytesSent += byteLength(payload);
  }

  /**
   * A message arrived (heartbeat replies included).
   *
   * @param data The message.
   * @param bytes Its size in bytes (text as UTF-8), when the transport told it.
   * @returns Its size in bytes when known: told, or counted here (when the
   *   transport keeps no count, as the native one), so that no one counts it twice.
   */
  received(data: Message, bytes?: number): number | undefined {
    this.#messagesReceived++;
    if (this.#transport.bytesReceived !== undefined) return bytes;
    bytes ??= byteLength(data);
    this.#bytesReceived += bytes;
    return bytes;
  }

  /**
   * The counters now, with what the rest of the client knows.
   *
   * @param live Latency and flow control, from the probes and the flow.
   * @returns A snapshot: later traffic does not change it.
   */
  snapshot(live: LiveStats): ClientStats {
    const openAt = this.#openAt;
    return {
      openMs: openAt === undefined ? undefined : openAt - this.#createdAt,
      openedAt: this.#openedAt,
      uptimeMs: openAt === undefined ? 0 : (this.#endAt ?? performance.now()) - openAt,
      messagesSent: this.#messagesSent,
      bytesSent: this.#transport.bytesSent ?? this.#bytesSent,
      messagesReceived: this.#messagesReceived,
      bytesReceived: this.#transport.bytesReceived ?? this.#bytesReceived,
      ...live,
    };
  }
}
