/**
 * The transport layer: the options of `connect()` about how a connection
 * reaches the server and what it shows of it (issue 25): the proxy from the
 * environment, redirects, `origin`, the `User-Agent`, `ws+unix:` URLs,
 * `answer` and `trace`. {@linkcode resolveWireOptions} checks them once
 * (called by `client/resolve.ts`); {@linkcode wireTcpOptions} turns them
 * into the wsbeat transport's options for one URL; {@linkcode tap} wraps a
 * transport for `answer` and `trace`.
 *
 * @module
 */

import { checkProxyUrl } from "./proxy.ts";
import { proxyFromEnv } from "./proxy_env.ts";
import { DEFAULT_MAX_REDIRECTS } from "./redirect.ts";
import { type AnswerFunction, TappedTransport } from "./tap.ts";
import type { TraceListener } from "./trace.ts";
import type { Transport } from "./transport.ts";
import { defaultUserAgent } from "./user_agent.ts";
import { checkHeaderField } from "../protocol/http.ts";

/** The wire options once checked: see the module doc. */
export interface WireOptions {
  /** Whether the proxy comes from the environment (`proxy` was not given). */
  readonly proxyFromEnv: boolean;
  /** How many redirects to follow. */
  readonly maxRedirects: number;
  /** The `Origin` header, if any. */
  readonly origin: string | undefined;
  /** The `User-Agent` the wsbeat transport sends unless `headers` has one. */
  readonly userAgent: string;
  /** Answers the server's application pings. */
  readonly answer: AnswerFunction | undefined;
  /** Told of each step. */
  readonly trace: TraceListener | undefined;
}

/** What {@linkcode resolveWireOptions} reads of `connect()`'s options. */
export interface WireInput {
  maxRedirects?: number;
  origin?: string;
  answer?: AnswerFunction;
  trace?: TraceListener;
}

function checkFunctionOption<F>(name: string, value: unknown): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "function") {
    throw new TypeError(
      `Cannot use ${name} as it is not a function: current value is ${String(value)}`,
    );
  }
  return value as F;
}

/**
 * Checks the wire options and fills in the defaults.
 *
 * @param options What the caller passed to `connect()` (each option read once).
 * @param proxyGiven Whether `proxy` was given (`null` included): if not, the
 *   environment's is used.
 * @returns The options, frozen.
 * @throws {TypeError} If `origin` is not a string fit for a header, or
 *   `answer` or `trace` is not a function.
 * @throws {RangeError} If `maxRedirects` is not a whole number of at least 0.
 */
export function resolveWireOptions(options: WireInput, proxyGiven: boolean): WireOptions {
  const { maxRedirects = DEFAULT_MAX_REDIRECTS, origin, answer, trace } = options;
  if (!Number.isInteger(maxRedirects) || maxRedirects < 0) {
    throw new RangeError(
      `Cannot use maxRedirects as it is not a whole number of at least 0: current value is ${
        String(maxRedirects)
      }`,
    );
  }
  if (origin !== undefined) {
    if (typeof origin !== "string") {
      throw new TypeError(
        `Cannot use origin as it is not a string: current value is ${String(origin)}`,
      );
    }
    checkHeaderField("Origin", origin);
  }
  return Object.freeze({
    proxyFromEnv: !proxyGiven,
    maxRedirects,
    origin,
    userAgent: defaultUserAgent(),
    answer: checkFunctionOption<AnswerFunction>("answer", answer),
    trace: checkFunctionOption<TraceListener>("trace", trace),
  });
}

/**
 * A `ws+unix:` or `wss+unix:` URL, as Node's `ws` writes it
 * (`ws+unix:/path/to.sock:/request/path`): the socket's path and the
 * `ws:`/`wss:` URL to send the request for (host `localhost`).
 *
 * @param url The URL as given.
 * @returns The socket path and the URL, or `undefined` for another scheme.
 * @throws {DOMException} A `SyntaxError` when the socket path is empty.
 *
 * @example
 * ```ts
 * import { parseUnixUrl } from "./wire_options.ts";
 * import assert from "node:assert/strict";
 *
 * const parsed = parseUnixUrl("ws+unix:/run/feed.sock:/v1/stream?x=1")!;
 * assert.equal(parsed.socketPath, "/run/feed.sock");
 * assert.equal(parsed.url.href, "ws://localhost/v1/stream?x=1");
 * assert.equal(parseUnixUrl("ws://example.com/"), undefined);
 * ```
 */
export function parseUnixUrl(url: string | URL): { socketPath: string; url: URL } | undefined {
  const text = String(url);
  const match = /^(wss?)\+unix:(?:\/\/)?([^:]*)(?::(.*))?$/i.exec(text);
  if (!match) return undefined;
  const [, scheme, path = "", request = "/"] = match;
  if (path === "") {
    throw new DOMException(
      `Invalid URL: '${text}' names no socket path (ws+unix:/path/to.sock:/request/path)`,
      "SyntaxError",
    );
  }
  const target = request.startsWith("/") ? request : `/${request}`;
  return { socketPath: path, url: new URL(`${scheme!.toLowerCase()}://localhost${target}`) };
}

/**
 * The wsbeat transport's options for one URL: the proxy (the given one, or
 * the environment's for that URL, re-read after a redirect), origin,
 * `User-Agent`, redirects and trace.
 *
 * @param url The server's URL.
 * @param proxy The `proxy` option, parsed (`undefined` when not given or `null`).
 * @param wire The resolved wire options.
 * @param use `env: false` to leave the environment's proxy out (with a
 *   client certificate, which cannot go through a tunnel, or a Unix socket).
 * @returns Options to spread into `TcpTransport`'s.
 * @throws {TypeError} If the environment names a proxy that is not a valid
 *   proxy URL (the message names the variable's value, masked), or an
 *   `https:` proxy for a `wss:` URL (Deno cannot run TLS inside TLS).
 */
export function wireTcpOptions(
  url: URL,
  proxy: URL | undefined,
  wire: WireOptions,
  use: { env: boolean } = { env: true },
): {
  proxy: URL | undefined;
  proxyFor: (url: URL) => URL | undefined;
  origin: string | undefined;
  userAgent: string;
  maxRedirects: number;
  trace: TraceListener | undefined;
} {
  const proxyFor = (target: URL) => {
    const chosen = proxy ?? (wire.proxyFromEnv && use.env ? fromEnv(target) : undefined);
    if (chosen?.protocol === "https:" && target.protocol === "wss:") {
      throw new TypeError(
        "Cannot reach a wss: URL through an https:// proxy as Deno.startTls cannot run TLS " +
          "inside TLS: use an http:// or socks5h:// proxy",
      );
    }
    return chosen;
  };
  return {
    proxy: proxyFor(url),
    proxyFor,
    origin: wire.origin,
    userAgent: wire.userAgent,
    maxRedirects: wire.maxRedirects,
    trace: wire.trace,
  };
}

function fromEnv(url: URL): URL | undefined {
  const value = proxyFromEnv(url);
  return value === undefined ? undefined : checkProxyUrl(value);
}

/**
 * The transport wrapped for `answer` and `trace`, or as it is without them.
 *
 * @param transport The transport.
 * @param wire The resolved wire options.
 * @returns The transport to hand the client.
 */
export function tap(transport: Transport, wire: WireOptions): Transport {
  if (wire.answer === undefined && wire.trace === undefined) return transport;
  return new TappedTransport(transport, { answer: wire.answer, trace: wire.trace });
}
