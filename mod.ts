/**
 * wsbeat: keep a WebSocket connection alive, and know when it is dead.
 *
 * Servers drop clients that stay silent (often after 30 s), and a peer can die
 * without closing the TCP connection, so a client that only listens may wait
 * forever. wsbeat wraps the runtime's native `WebSocket` in a client that
 * reports exactly how a connection opened and ended, and runs a trio-style
 * heartbeat beside it: each beat sends a probe and fails after `timeout`
 * unless its reply arrives, then sleeps `interval`. When a beat fails the
 * connection is closed and the failure is reported as a
 * {@linkcode TooSlowError}.
 *
 * - {@linkcode connect} and {@linkcode WebSocketClient}: the client.
 * - {@linkcode heartbeat}, {@linkcode failAfter}, {@linkcode sleep}: the
 *   heartbeat and its timing primitives.
 * - {@linkcode reconnecting}: a loop of connections, reconnecting with
 *   backoff after each close or failure.
 * - `@wsbeat/wsbeat/serve`: an echo server with fault injection (Deno only).
 *
 * Runs on Deno, Deno Deploy, Bun, Node 22+ and browsers: this entry point
 * does not touch `Deno.*`.
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
 * @module
 */

export {
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
} from "./client_options.ts";
export type { CloseInfo, CloseInitiator } from "./close_info.ts";
export { WebSocketClient } from "./client.ts";
export { connect } from "./connect.ts";
export {
  ConnectError,
  type ConnectErrorKind,
  ConnectionClosedError,
  ProtocolError,
} from "./errors.ts";
export type { Transport, TransportEnd, TransportHandler, TransportName } from "./transport.ts";
export {
  failAfter,
  type FailAfterOptions,
  heartbeat,
  type HeartbeatOptions,
  type Pingable,
  sleep,
  type SleepOptions,
  TooSlowError,
} from "./heartbeat.ts";
export {
  backoffDelay,
  defaultShouldRetry,
  ReconnectError,
  reconnecting,
  type ReconnectOptions,
  type RetryContext,
  type RetryEvent,
} from "./reconnect.ts";
