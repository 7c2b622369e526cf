/**
 * wsbeat: keep a WebSocket connection alive, and know when it is dead.
 *
 * Servers drop clients that stay silent (often after 30 s), and a peer can die
 * without closing the TCP connection, so a client that only listens may wait
 * forever. wsbeat's client reports exactly how a connection opened and ended,
 * and runs a trio-style heartbeat beside it: each beat sends a ping and fails
 * after `timeout` unless the pong arrives, then sleeps `interval`. When a beat
 * fails the connection is failed, its socket released at once, and the
 * failure reported as a {@linkcode TooSlowError}.
 *
 * The exports, by layer, bottom up; each layer is a folder and imports only
 * from the ones before it (`util/` holds the errors and helpers every layer
 * may use):
 *
 * - `protocol/`: RFC 6455 is spoken by wsbeat itself (sans-I/O: frames,
 *   handshake, the `Protocol` state machine); a server that breaks it gets
 *   the connection failed with a {@linkcode ProtocolError}, whose close code
 *   is one of {@linkcode CloseCode}'s.
 * - `transport/`: {@linkcode Transport} is the interface between the client
 *   and the I/O. `"wsbeat"` runs the protocol over `Deno.connect` (ping
 *   frames, size limits, flow control, real release of a dead connection),
 *   the default wherever `Deno.connect` exists; `"native"` wraps the
 *   runtime's `WebSocket`, the default elsewhere (browsers, Node, Bun).
 * - `heartbeat/` (entry point `heartbeat.ts`): {@linkcode heartbeat},
 *   {@linkcode failAfter}, {@linkcode sleep}, and the loop and clock the
 *   client runs.
 * - `client/` (entry point `client.ts`): {@linkcode connect},
 *   {@linkcode WebSocketClient} and their options, {@linkcode CloseInfo},
 *   {@linkcode ConnectError}, {@linkcode ConnectionClosedError}, the
 *   stale-feed watchdog (`staleAfter`, {@linkcode StaleFeedError}).
 * - `reconnect/`: {@linkcode reconnecting}, a loop of connections,
 *   reconnecting with backoff after each close or failure, with fresh
 *   settings per attempt (`prepare`); {@linkcode ReconnectingClient}, a
 *   handle whose `send()` works across reconnects.
 * - `serve/` (entry point `serve.ts`, exported as `@wsbeat/wsbeat/serve`): an
 *   echo server with fault injection (Deno only).
 *
 * Runs on Deno, Deno Deploy, Bun, Node 22+ and browsers: this entry point
 * touches `Deno.*` only behind feature detection.
 *
 * @example Keep a subscription alive and find a dead peer
 * ```ts ignore
 * import { connect, ConnectionClosedError } from "@wsbeat/wsbeat";
 *
 * await using ws = await connect("wss://example.com/feed", {
 *   heartbeat: { interval: 10_000, timeout: 5_000 },
 * });
 * ws.send(JSON.stringify({ op: "subscribe", channel: "prices" }));
 * try {
 *   for await (const message of ws) console.log(message);
 * } catch (error) {
 *   // Code 1006 and a TooSlowError as cause when the heartbeat failed.
 *   if (error instanceof ConnectionClosedError) console.error(error.message);
 * }
 * ```
 *
 @module
 */

export {
  type ClientCompressionOptions,
  type ClientHeartbeatOptions,
  type ClientOptions,
  type ClientState,
  type ClientStats,
  type ConnectOptions,
  type LatencyStats,
  type Message,
  type ProbeOptions,
  type SendData,
  type SignalOptions,
} from "./client/options.ts";
export type { CloseInfo, CloseInitiator } from "./client/close_info.ts";
export { WebSocketClient } from "./client/websocket_client.ts";
export { connect } from "./client.ts";
export {
  ConnectError,
  type ConnectErrorKind,
  ConnectionClosedError,
  ProtocolError,
  TooSlowError,
} from "./util/errors.ts";
export { CloseCode, type CloseCodeName } from "./protocol/close_code.ts";
export type { CompressionTuning } from "./protocol/deflate_extension.ts";
export type { DeflateOfferOptions } from "./protocol/permessage_deflate.ts";
export type {
  ClosingStart,
  Transport,
  TransportEnd,
  TransportHandler,
  TransportName,
} from "./transport/transport.ts";
export {
  failAfter,
  type FailAfterOptions,
  heartbeat,
  type HeartbeatOptions,
  type Pingable,
  sleep,
  type SleepOptions,
} from "./heartbeat.ts";
export { StaleFeedError } from "./client/stale.ts";
export {
  backoffDelay,
  type BackoffOptions,
  checkBackoff,
  MIN_RETRY_DELAY,
} from "./reconnect/backoff.ts";
export {
  type AttemptContext,
  type AttemptSettings,
  defaultShouldRetry,
  ReconnectError,
  reconnecting,
  type ReconnectOptions,
  REJECTED_RETRIES,
  type RetryContext,
  type RetryEvent,
} from "./reconnect/reconnecting.ts";
export {
  ReconnectingClient,
  type ReconnectingClientOptions,
  type ReconnectingStatus,
} from "./reconnect/reconnecting_client.ts";
export {
  DEFAULT_MAX_PENDING_BYTES,
  DEFAULT_MAX_PENDING_MESSAGES,
  SendQueueFullError,
} from "./reconnect/send_queue.ts";
export type { HandshakeResponse } from "./transport/transport.ts";
export type { AnswerFunction } from "./transport/tap.ts";
export type { TraceEvent, TraceListener, TraceOpcode, TraceStep } from "./transport/trace.ts";
