/**
 * The client layer: {@linkcode connect}, which checks the URL and options,
 * picks the transport (wsbeat's own where `Deno.connect` exists, the
 * runtime's `WebSocket` elsewhere), and resolves with an open
 * {@linkcode WebSocketClient} or rejects with a {@linkcode ConnectError}
 * that names the cause.
 *
 * @module
 */

import { WebSocketClient } from "./client/websocket_client.ts";
import {
  checkClientOptions,
  type CheckedOptions,
  checkMaxMessageSize,
  type ConnectOptions,
} from "./client/options.ts";
import type { Transport } from "./transport/transport.ts";
import { NativeTransport } from "./transport/native.ts";
import { canUseTcp, type OpenOptions } from "./transport/tcp_connect.ts";
import { headerPairs } from "./protocol/handshake.ts";
import { checkHeaderField } from "./protocol/http.ts";
import { TcpTransport, type TcpTransportOptions } from "./transport/socket.ts";
import { checkUrl, maskUrl } from "./util/url.ts";
import { checkProxyUrl } from "./transport/proxy.ts";

function checkProtocols(protocols: unknown): string[] {
  const list = protocols === undefined
    ? []
    : typeof protocols === "string"
    ? [protocols]
    : protocols;
  if (!Array.isArray(list)) {
    throw new TypeError(
      `Cannot offer protocols as they are not a string or an array of strings: current value is ${
        String(protocols)
      }`,
    );
  }
  const seen = new Set<string>();
  for (const protocol of list) {
    if (typeof protocol !== "string" || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(protocol)) {
      throw new DOMException(`Invalid protocol value: '${String(protocol)}'`, "SyntaxError");
    }
    if (seen.has(protocol)) {
      throw new DOMException(
        `Cannot supply multiple times the same protocol: ${protocol}`,
        "SyntaxError",
      );
    }
    seen.add(protocol);
  }
  return list;
}

interface Host {
  Deno?: unknown;
  Bun?: { version?: string };
  process?: { versions?: { node?: string } };
  navigator?: { userAgent?: string };
}

const BROWSERS: [string, RegExp][] = [
  ["Edge", /Edg\/(\d+)/],
  ["Firefox", /Firefox\/(\d+)/],
  ["Chrome", /Chrome\/(\d+)/],
  ["Safari", /Version\/(\d+).*Safari/],
];

/** The runtime, named for an error message: "Node 22.23.3", "Chrome 156", ... */
function runtimeName(host: Host): string {
  if (host.Bun !== undefined) return `Bun ${host.Bun.version ?? ""}`.trim();
  const node = host.process?.versions?.node;
  if (node !== undefined) return `Node ${node}`;
  const agent = host.navigator?.userAgent ?? "";
  for (const [name, pattern] of BROWSERS) {
    const match = pattern.exec(agent);
    if (match) return `${name} ${match[1]}`;
  }
  return agent || "unknown";
}

/**
 * Refuses the options that the runtime's `WebSocket` would ignore or misread:
 * `headers` where the constructor takes only the standard arguments
 * (browsers, workers: Chromium reads the object as a subprotocol), and
 * `client` anywhere but Deno.
 */
function checkNativeOptions(options: ConnectOptions): void {
  const host = globalThis as Host;
  const isDeno = host.Deno !== undefined;
  const takesHeaders = isDeno || host.Bun !== undefined ||
    host.process?.versions?.node !== undefined;
  if (options.headers !== undefined && !takesHeaders) {
    throw new TypeError(
      `Cannot send headers as the WebSocket of this runtime (${
        runtimeName(host)
      }) takes none: only Deno, Bun and Node send extra handshake headers`,
    );
  }
  if (options.client !== undefined && !isDeno) {
    throw new TypeError(
      `Cannot use client as it is an HTTP client of Deno and this runtime (${
        runtimeName(host)
      }) is not Deno`,
    );
  }
}

/** Picks and creates the transport for {@linkcode connect}. */
function openTransport(
  url: URL,
  options: ConnectOptions,
  checked: CheckedOptions,
  protocols: string[],
): Transport {
  const name = options.transport ?? (canUseTcp() ? "wsbeat" : "native");
  if (name !== "wsbeat" && name !== "native") {
    throw new TypeError(
      `Cannot use transport ${JSON.stringify(name)} as it is not "wsbeat" or "native"`,
    );
  }
  if (name === "native") {
    for (const option of ["proxy", "cert", "key"] as const) {
      if (options[option] !== undefined) {
        throw new TypeError(
          `Cannot use ${option} with transport "native"; use the wsbeat transport`,
        );
      }
    }
    if (options.caCerts !== undefined) {
      throw new TypeError(
        'Cannot use caCerts with transport "native"; use the wsbeat transport, or pass ' +
          "client: Deno.createHttpClient({ caCerts }) on Deno",
      );
    }
    const { client } = options;
    checkNativeOptions(options);
    // Checked here, as the wsbeat transport checks them: the runtime's own errors print the value.
    for (const [name, value] of headerPairs(options.headers)) {
      checkHeaderField(name, value, { latin1: true });
    }
    const init = options.headers === undefined && client === undefined
      ? protocols
      // Deno's (and Bun's) non-standard options object.
      : { protocols, headers: options.headers, client } as unknown as string[];
    let socket: WebSocket;
    try {
      socket = new WebSocket(url.href, init);
    } catch (error) {
      throw withoutHeaderValues(error, options.headers);
    }
    return new NativeTransport(socket, maskUrl(url), {
      url,
      headers: options.headers,
    });
  }
  if (!canUseTcp()) {
    throw new TypeError(
      'Cannot use transport "wsbeat" as this runtime has no Deno.connect; use transport "native"',
    );
  }
  if (options.client !== undefined) {
    throw new TypeError(
      'Cannot use client with transport "wsbeat": it is for the native transport; pass caCerts to trust a private CA',
    );
  }
  let headers = options.headers;
  if (url.username) headers = withBasicAuth(headers, url);
  const proxy = options.proxy === undefined ? undefined : checkProxyUrl(options.proxy);
  const clientCert = checkClientCert(options, proxy);
  const transportOptions: TcpTransportOptions & Pick<OpenOptions, "connectTimeout"> = {
    url,
    displayUrl: maskUrl(url),
    protocols,
    headers,
    caCerts: options.caCerts,
    proxy,
    clientCert,
    maxMessageSize: checkMaxMessageSize(options.maxMessageSize),
    closeTimeout: checked.closeTimeout,
    // For openConnection's timeout messages (it gets the transport's options).
    connectTimeout: checked.connectTimeout,
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
 * @throws {SyntaxError} If the URL or a subprotocol is invalid (a
 *   `DOMException`, naming the value).
 * @throws {TypeError} If `url` is not a string or URL, or an option has the wrong type.
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
  if (typeof url !== "string" && !(url instanceof URL)) {
    throw new TypeError(
      `Cannot connect to url as it is not a string or URL: current value is ${String(url)}`,
    );
  }
  const checked = checkClientOptions(options);
  const parsed = checkUrl(url);
  const protocols = checkProtocols(options.protocols);
  if (options.signal?.aborted) throw options.signal.reason;
  const ws = new WebSocketClient(openTransport(parsed, options, checked, protocols), options);
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

/** Checks `cert` and `key`: both or neither, PEM, and not through a proxy. */
function checkClientCert(
  options: ConnectOptions,
  proxy: URL | undefined,
): { cert: string; key: string } | undefined {
  const { cert, key } = options;
  if (cert === undefined && key === undefined) return undefined;
  if (typeof cert !== "string" || typeof key !== "string") {
    throw new TypeError(
      "Cannot use a client certificate as cert and key go together, both PEM strings",
    );
  }
  if (proxy) {
    throw new TypeError(
      "Cannot use cert with proxy as TLS through a tunnel (Deno.startTls) cannot present a client certificate",
    );
  }
  return { cert, key };
}
