/**
 * The client layer: {@linkcode connect}, which resolves its options once
 * (`client/resolve.ts`; the path they take is in `client/options.ts`),
 * checks the URL, picks the transport (wsbeat's own where `Deno.connect` exists, the
 * runtime's `WebSocket` elsewhere), and resolves with an open
 * {@linkcode WebSocketClient} or rejects with a {@linkcode ConnectError}
 * that names the cause.
 *
 * @module
 */

import { WebSocketClient } from "./client/websocket_client.ts";
import type { CheckedConnectOptions, ConnectOptions } from "./client/options.ts";
import { resolveConnectOptions } from "./client/resolve.ts";
import type { Transport } from "./transport/transport.ts";
import { NativeTransport } from "./transport/native.ts";
import type { OpenOptions } from "./transport/tcp_connect.ts";
import { headerPairs } from "./protocol/handshake.ts";
import { TcpTransport, type TcpTransportOptions } from "./transport/socket.ts";
import { checkUrl, maskUrl } from "./util/url.ts";
import { parseUnixUrl, tap, wireTcpOptions } from "./transport/wire_options.ts";

/** Creates the transport {@linkcode connect} picked, from the checked options alone. */
function openTransport(
  url: URL,
  options: CheckedConnectOptions,
  socketPath?: string,
): Transport {
  if (options.transport === "native") {
    const { client, protocols } = options;
    const { origin } = options.wire;
    const headers = origin === undefined
      ? options.headers
      : [...headerPairs(options.headers), ["Origin", origin]] as [string, string][];
    const init = headers === undefined && client === undefined
      ? protocols
      // Deno's (and Bun's) non-standard options object.
      : { protocols, headers, client } as unknown as string[];
    let socket: WebSocket;
    try {
      socket = new WebSocket(url.href, init);
    } catch (error) {
      throw withoutHeaderValues(error, headers);
    }
    return new NativeTransport(socket, maskUrl(url), { url, headers });
  }
  const transportOptions: TcpTransportOptions & Pick<OpenOptions, "connectTimeout"> = {
    url,
    displayUrl: maskUrl(url),
    protocols: options.protocols,
    headers: url.username ? withBasicAuth(options.headers, url) : options.headers,
    caCerts: options.caCerts,
    clientCert: options.clientCert,
    maxMessageSize: options.maxMessageSize,
    closeTimeout: options.closeTimeout,
    compression: options.compression,
    // For openConnection's timeout messages (it gets the transport's options).
    connectTimeout: options.connectTimeout,
    // Issue 25: the environment's proxy, redirects, Origin, User-Agent, trace, ws+unix:.
    ...wireTcpOptions(url, options.proxy, options.wire, {
      // A client certificate or a Unix socket: the environment's proxy is not for them.
      env: options.clientCert === undefined && socketPath === undefined,
    }),
    ...(socketPath === undefined ? {} : { socketPath, proxy: undefined }),
  };
  return new TcpTransport(transportOptions);
}

/**
 * An error the runtime's `WebSocket` constructor threw, as it may reach the
 * caller: when it is about a header, the header named and its value hidden
 * (Deno's says `Invalid header value: "Bearer ..."`, value and all).
 */
function withoutHeaderValues(error: unknown, headers: HeadersInit | undefined): unknown {
  if (!(error instanceof TypeError) || headers === undefined) return error;
  let pairs: [string, string][];
  try {
    pairs = headerPairs(headers);
  } catch {
    return error;
  }
  for (const [name, value] of pairs) {
    try {
      new Headers([[name, value]]);
    } catch {
      return new TypeError(
        `Cannot send the header "${name}" as the runtime's WebSocket refused it: current value is hidden`,
      );
    }
  }
  let message = error.message;
  const values = pairs.map(([, value]) => value.trim()).filter((value) => value !== "");
  for (const value of values) message = message.replaceAll(value, "***");
  if (message === error.message) return error;
  return new TypeError(`${message} (header values hidden)`);
}

/**
 * Opens a WebSocket and resolves when it is open.
 *
 * @param url A `ws:`, `wss:`, `http:` or `https:` URL.
 * @param options Transport, subprotocols, headers, TLS, timeouts, limits, heartbeat.
 * @returns The open client.
 * @throws {ConnectError} If the connection could not be opened; `kind` says why.
 * @throws {SyntaxError} If the URL is invalid (a `DOMException`, naming the value).
 * @throws {TypeError} If `url` is not a string or URL, an option has the
 *   wrong type, or a subprotocol is not a token or is repeated (the same
 *   `TypeError` from every entry point, where the runtime's `WebSocket`
 *   throws a `DOMException`).
 * @throws {RangeError} If an option is out of range.
 * @throws The signal's reason, if `options.signal` aborts while connecting.
 *
 * @example Connect with a heartbeat
 * ```ts ignore
 * import { connect } from "@wsbeat/wsbeat";
 *
 * await using ws = await connect("wss://example.com/feed", {
 *   heartbeat: { interval: 10_000, timeout: 5_000 },
 * });
 * for await (const message of ws) console.log(message);
 * ```
 */
export async function connect(
  url: string | URL,
  options: ConnectOptions = {},
): Promise<WebSocketClient> {
  return await openChecked(url, resolveConnectOptions(options));
}

/**
 * {@linkcode connect} with options already resolved by
 * `resolveConnectOptions` (`client/resolve.ts`): checks the URL, opens the
 * transport and hands the same frozen options to the
 * {@linkcode WebSocketClient}, which takes them without checking them again.
 * `reconnecting()` calls it on each attempt. Internal: not exported from
 * `mod.ts`.
 *
 * @param url A `ws:`, `wss:`, `http:` or `https:` URL.
 * @param options The resolved options.
 * @returns The open client.
 * @throws {ConnectError} If the connection could not be opened.
 * @throws {SyntaxError} If the URL is invalid (a `DOMException`).
 * @throws {TypeError} If `url` is not a string or URL.
 * @throws The signal's reason, if `options.signal` aborts while connecting.
 */
export async function openChecked(
  url: string | URL,
  options: CheckedConnectOptions,
): Promise<WebSocketClient> {
  if (typeof url !== "string" && !(url instanceof URL)) {
    throw new TypeError(
      `Cannot connect to url as it is not a string or URL: current value is ${String(url)}`,
    );
  }
  const unix = parseUnixUrl(url);
  const parsed = unix?.url ?? checkUrl(url);
  if (options.signal?.aborted) throw options.signal.reason;
  const transport = tap(openTransport(parsed, options, unix?.socketPath), options.wire);
  const ws = new WebSocketClient(transport, options);
  await ws.opened;
  return ws;
}

/**
 * Adds `Authorization: Basic` from the URL's user info (as browsers do),
 * unless the caller set one. The caller's headers stay as given, so that
 * `buildClientRequest` can refuse a bad one without printing a secret.
 */
function withBasicAuth(headers: HeadersInit | undefined, url: URL): HeadersInit {
  const pairs: [string, string][] = headers === undefined
    ? []
    : headers instanceof Headers
    ? [...headers]
    : Array.isArray(headers)
    ? headers.map((pair) => [String(pair[0]), String(pair[1])])
    : Object.entries(headers);
  if (pairs.some(([name]) => name.toLowerCase() === "authorization")) return pairs;
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  pairs.push(["authorization", `Basic ${btoa(String.fromCharCode(...bytes))}`]);
  return pairs;
}
