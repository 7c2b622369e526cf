/**
 * The client layer's options resolver: turns the options a caller gave
 * `connect()` or `new WebSocketClient()` into one frozen object, checked with
 * the checkers of `util/checks.ts`, every default filled in from the
 * constants of `client/options.ts`. The path the result takes from there is
 * in `client/options.ts`'s module doc. Internal: not exported from `mod.ts`.
 *
 * This module does not touch `Deno.*` (it asks `transport/` whether the
 * runtime has `Deno.connect`).
 *
 * @module
 */

import {
  checkBoolean,
  checkCount,
  checkDelay,
  checkFunction,
  checkOptions,
  checkSignal,
  checkTokens,
} from "../util/checks.ts";
import {
  type CheckedConnectOptions,
  type CheckedHeartbeat,
  type CheckedOptions,
  type ClientHeartbeatOptions,
  type ClientOptions,
  type ConnectOptions,
  DEFAULT_CLOSE_TIMEOUT,
  DEFAULT_COMPRESSION,
  DEFAULT_CONNECT_TIMEOUT,
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_INTERVAL,
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_MAX_QUEUED,
  DEFAULT_MAX_QUEUED_BYTES,
  DEFAULT_TIMEOUT,
} from "./options.ts";
import type { TransportName } from "../transport/transport.ts";
import { canUseTcp } from "../transport/tcp_connect.ts";
import { checkProxyUrl } from "../transport/proxy.ts";
import { resolveWireOptions } from "../transport/wire_options.ts";
import { headerPairs } from "../protocol/handshake.ts";
import { checkHeaderField } from "../protocol/http.ts";
import { checkCompression } from "../protocol/deflate_extension.ts";

/** The objects this module resolved: frozen, so what they hold is what was checked. */
const RESOLVED = new WeakSet<object>();

function seal<T extends object>(value: T): T {
  RESOLVED.add(Object.freeze(value));
  return value;
}

function checkProbe<T>(name: string, value: T): T {
  if (
    value !== undefined && typeof value !== "string" && typeof value !== "function" &&
    !(value instanceof Uint8Array)
  ) {
    throw new TypeError(
      `Cannot use ${name} as it is not a string, Uint8Array or function: current value is ${
        String(value)
      }`,
    );
  }
  return value;
}

function resolveHeartbeat(value: unknown): CheckedHeartbeat | undefined {
  if (value === undefined || value === false) return undefined;
  if (value !== true && (typeof value !== "object" || value === null)) {
    throw new TypeError(
      `Cannot use heartbeat as it is not a boolean or an object: current value is ${String(value)}`,
    );
  }
  const { interval, timeout, onBeat, message, reply } = value === true
    ? {} as ClientHeartbeatOptions
    : value as ClientHeartbeatOptions;
  return Object.freeze({
    interval: checkDelay("heartbeat.interval", interval ?? DEFAULT_INTERVAL),
    timeout: checkDelay("heartbeat.timeout", timeout ?? DEFAULT_TIMEOUT),
    onBeat: checkFunction("heartbeat.onBeat", onBeat),
    message: checkProbe("heartbeat.message", message),
    reply: checkProbe("heartbeat.reply", reply),
  });
}

/** The client's part, each option read once; not frozen yet. */
function clientPart(options: ClientOptions): CheckedOptions {
  checkOptions(options);
  const {
    signal,
    connectTimeout,
    closeTimeout,
    maxQueuedMessages,
    maxQueuedBytes,
    sendHighWaterMark,
    heartbeat,
    staleAfter,
    quietEnd,
  } = options;
  const stale = checkDelay("staleAfter", staleAfter ?? Infinity);
  if (stale === 0) {
    throw new RangeError(
      "Cannot use staleAfter as it is 0, which would close every connection at once: current value is 0",
    );
  }
  return {
    signal: checkSignal("signal", signal),
    connectTimeout: checkDelay("connectTimeout", connectTimeout ?? DEFAULT_CONNECT_TIMEOUT),
    closeTimeout: checkDelay("closeTimeout", closeTimeout ?? DEFAULT_CLOSE_TIMEOUT),
    maxQueuedMessages: checkCount("maxQueuedMessages", maxQueuedMessages ?? DEFAULT_MAX_QUEUED, {
      min: 1,
    }),
    maxQueuedBytes: checkCount("maxQueuedBytes", maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES, {
      min: 1,
    }),
    sendHighWaterMark: checkCount(
      "sendHighWaterMark",
      sendHighWaterMark ?? DEFAULT_HIGH_WATER_MARK,
    ),
    heartbeat: resolveHeartbeat(heartbeat),
    staleAfter: stale,
    quietEnd: checkBoolean("quietEnd", quietEnd ?? false),
  };
}

/**
 * Resolves {@linkcode ClientOptions} for a `WebSocketClient`: checks them
 * and fills in the defaults, once. An object this module resolved (for
 * `connect()`) is returned as it is: it was checked, and is frozen.
 *
 * @param options What the caller passed, or what `connect()` resolved.
 * @returns The options, checked, defaulted and frozen.
 * @throws {TypeError} If an option has the wrong type.
 * @throws {RangeError} If an option is out of range.
 *
 * @example
 * ```ts
 * import { resolveClientOptions } from "./resolve.ts";
 * import assert from "node:assert/strict";
 *
 * const checked = resolveClientOptions({ heartbeat: true });
 * assert.equal(checked.heartbeat?.interval, 10_000);
 * assert.ok(Object.isFrozen(checked));
 * assert.equal(resolveClientOptions(checked), checked); // not checked again
 * ```
 */
export function resolveClientOptions(options: ClientOptions): CheckedOptions {
  if (typeof options === "object" && options !== null && RESOLVED.has(options)) {
    return options as CheckedOptions;
  }
  return seal(clientPart(options));
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
 * Checks the headers for the transport: on the native one, refuses them
 * where the runtime's `WebSocket` takes none (browsers, workers: Chromium
 * reads the object as a subprotocol), and checks each field as the wsbeat
 * transport's handshake does (the runtime's own errors print the value).
 */
function checkHeaders(transport: TransportName, headers: HeadersInit | undefined): void {
  if (transport !== "native" || headers === undefined) return;
  const host = globalThis as Host;
  const takesHeaders = host.Deno !== undefined || host.Bun !== undefined ||
    host.process?.versions?.node !== undefined;
  if (!takesHeaders) {
    throw new TypeError(
      `Cannot send headers as the WebSocket of this runtime (${
        runtimeName(host)
      }) takes none: only Deno, Bun and Node send extra handshake headers`,
    );
  }
  for (const [name, value] of headerPairs(headers)) {
    checkHeaderField(name, value, { latin1: true });
  }
}

function checkTransport(value: unknown): TransportName {
  const name = value ?? (canUseTcp() ? "wsbeat" : "native");
  if (name !== "wsbeat" && name !== "native") {
    throw new TypeError(
      `Cannot use transport ${JSON.stringify(name)} as it is not "wsbeat" or "native"`,
    );
  }
  if (name === "wsbeat" && !canUseTcp()) {
    throw new TypeError(
      'Cannot use transport "wsbeat" as this runtime has no Deno.connect; use transport "native"',
    );
  }
  return name;
}

/** Checks `cert` and `key`: both or neither, PEM strings, and not through a proxy. */
function checkClientCert(
  cert: unknown,
  key: unknown,
  proxy: URL | undefined,
): { cert: string; key: string } | undefined {
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
  return Object.freeze({ cert, key });
}

/**
 * Resolves {@linkcode ConnectOptions} for `connect()`: checks every option
 * once (the client's and the transport's), picks the transport, and fills
 * in the defaults.
 *
 * @param options What the caller passed.
 * @returns The options, checked, defaulted and frozen; `WebSocketClient`
 *   takes them without checking them again.
 * @throws {TypeError} If an option has the wrong type, a subprotocol is not
 *   a token or is repeated, or an option does not go with the transport.
 * @throws {RangeError} If an option is out of range.
 *
 * @example
 * ```ts
 * import { resolveConnectOptions } from "./resolve.ts";
 * import assert from "node:assert/strict";
 *
 * const checked = resolveConnectOptions({ protocols: "chat" });
 * assert.deepEqual(checked.protocols, ["chat"]);
 * assert.equal(checked.maxMessageSize, 16 * 1024 * 1024);
 * assert.throws(() => resolveConnectOptions({ protocols: ["a", "a"] }), TypeError);
 * ```
 */
export function resolveConnectOptions(options: ConnectOptions): CheckedConnectOptions {
  const part = clientPart(options);
  const { protocols, headers, transport, maxMessageSize, caCerts, client, proxy, cert, key } =
    options;
  const name = checkTransport(transport);
  const host = globalThis as Host;
  if (name === "native") {
    for (
      const [option, value] of [["proxy", proxy ?? undefined], ["cert", cert], [
        "key",
        key,
      ]] as const
    ) {
      if (value !== undefined) {
        throw new TypeError(
          `Cannot use ${option} with transport "native"; use the wsbeat transport`,
        );
      }
    }
    if (caCerts !== undefined) {
      throw new TypeError(
        'Cannot use caCerts with transport "native"; use the wsbeat transport, or pass ' +
          "client: Deno.createHttpClient({ caCerts }) on Deno",
      );
    }
    if (client !== undefined && host.Deno === undefined) {
      throw new TypeError(
        `Cannot use client as it is an HTTP client of Deno and this runtime (${
          runtimeName(host)
        }) is not Deno`,
      );
    }
  } else if (client !== undefined) {
    throw new TypeError(
      'Cannot use client with transport "wsbeat": it is for the native transport; pass caCerts to trust a private CA',
    );
  }
  checkHeaders(name, headers);
  const proxyUrl = proxy == null ? undefined : checkProxyUrl(proxy); // null: no proxy at all
  return seal({
    ...part,
    transport: name,
    protocols: Object.freeze(checkTokens("protocols", protocols)) as string[],
    headers,
    maxMessageSize: checkCount("maxMessageSize", maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE, {
      min: 1,
    }),
    caCerts,
    client,
    proxy: proxyUrl,
    clientCert: checkClientCert(cert, key, proxyUrl),
    wire: resolveWireOptions(options, proxy !== undefined),
    compression: checkCompression(options.compression, "client", DEFAULT_COMPRESSION),
  });
}

/** What may change between two attempts of `reconnecting()`. */
export interface AttemptChanges {
  /** New handshake headers (from `prepare`). */
  headers?: HeadersInit;
  /** New subprotocols (from `prepare`). */
  protocols?: string | string[];
  /** Another signal (the `ReconnectingClient`'s, which also aborts on `close()`). */
  signal?: AbortSignal;
}

/**
 * Resolved connect options with some of them replaced: only the new values
 * are checked, the rest is taken as it is.
 *
 * @param base Options {@linkcode resolveConnectOptions} resolved.
 * @param changes The values to replace; `undefined` ones are kept.
 * @returns New options, checked and frozen.
 * @throws {TypeError} If a new value is of the wrong type, or a subprotocol
 *   is not a token or is repeated.
 */
export function resolveAttempt(
  base: CheckedConnectOptions,
  changes: AttemptChanges,
): CheckedConnectOptions {
  const { headers, protocols, signal } = changes;
  if (headers !== undefined) checkHeaders(base.transport, headers);
  return seal({
    ...base,
    ...(headers !== undefined ? { headers } : {}),
    ...(protocols !== undefined
      ? { protocols: Object.freeze(checkTokens("protocols", protocols)) as string[] }
      : {}),
    ...(signal !== undefined ? { signal: checkSignal("signal", signal) } : {}),
  });
}
