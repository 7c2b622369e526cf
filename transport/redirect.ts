/**
 * The transport layer: what the wsbeat transport does with a server's
 * answer that is not `101 Switching Protocols`. A redirect (301, 302, 303,
 * 307, 308 with a `Location`) is followed to its target, as browsers, Python
 * `websockets` and `ws` (with `followRedirects`) do; any other status
 * becomes a {@linkcode ConnectError} of kind `"status"` carrying the
 * answer's headers, the start of its body and, on 429 and 503, the
 * `Retry-After` it asked for.
 *
 * @module
 */

import { ConnectError, MAX_ERROR_BODY } from "../util/errors.ts";
import { maskUrl } from "../util/url.ts";

/** The statuses that redirect a WebSocket opening. */
export const REDIRECT_STATUSES: readonly number[] = [301, 302, 303, 307, 308];

/** The default `maxRedirects`: as Python `websockets` (and browsers' 20 is more than feeds need). */
export const DEFAULT_MAX_REDIRECTS = 10;

/**
 * The URL a redirect leads to: `location` resolved against `from`, with
 * `http:`/`https:` mapped to `ws:`/`wss:`.
 *
 * @param from The URL that answered.
 * @param location The `Location` header.
 * @param displayUrl The first URL as errors show it.
 * @returns The next URL.
 * @throws {ConnectError} Kind `"handshake"` when the target is not a
 *   WebSocket URL, or leaves `wss:` for `ws:` (a downgrade from TLS is never
 *   followed).
 *
 * @example
 * ```ts
 * import { redirectTarget } from "./redirect.ts";
 * import assert from "node:assert/strict";
 *
 * const next = redirectTarget(new URL("ws://a.example/old"), "/new?x=1", "ws://a.example/old");
 * assert.equal(next.href, "ws://a.example/new?x=1");
 * assert.throws(() => redirectTarget(new URL("wss://a.example/"), "ws://b.example/", ""));
 * ```
 */
export function redirectTarget(from: URL, location: string, displayUrl: string): URL {
  let next: URL;
  try {
    next = new URL(location, from.href.replace(/^ws/, "http"));
  } catch {
    throw new ConnectError(
      displayUrl,
      "handshake",
      `the server redirected to ${JSON.stringify(maskUrl(location))}, which is not a URL`,
    );
  }
  next.hash = "";
  if (next.protocol === "http:" || next.protocol === "https:") {
    next = new URL(next.href.replace(/^http/, "ws"));
  }
  if (next.protocol !== "ws:" && next.protocol !== "wss:") {
    throw new ConnectError(
      displayUrl,
      "handshake",
      `the server redirected to ${maskUrl(next)}, which is not a WebSocket URL`,
    );
  }
  if (from.protocol === "wss:" && next.protocol === "ws:") {
    throw new ConnectError(
      displayUrl,
      "handshake",
      `the server redirected from wss: to ${maskUrl(next)}; a redirect never leaves TLS`,
    );
  }
  return next;
}

/**
 * Whether two URLs have the same origin (scheme, host and port).
 *
 * @param a One URL.
 * @param b The other.
 * @returns Whether they share scheme, host and port.
 */
export function sameOrigin(a: URL, b: URL): boolean {
  return a.protocol === b.protocol && a.host === b.host;
}

/**
 * The headers to send after a redirect: as they were on the same origin,
 * without `Authorization` and `Cookie` on another.
 *
 * @param pairs The headers sent so far.
 * @param crossOrigin Whether the redirect leaves the origin.
 * @returns The headers to send next.
 */
export function headersForOrigin(
  pairs: [string, string][],
  crossOrigin: boolean,
): [string, string][] {
  if (!crossOrigin) return pairs;
  return pairs.filter(([name]) => !/^(authorization|cookie)$/i.test(name));
}

/** The next hop of a redirect, as {@linkcode followRedirect} returns it. */
export interface RedirectHop {
  /** Where to connect next. */
  url: URL;
  /** Whether it leaves the origin (scheme, host, port) of the URL that redirected. */
  crossOrigin: boolean;
  /** The headers to send there: without `Authorization` and `Cookie` when it leaves the origin. */
  headers(pairs: [string, string][]): [string, string][];
}

/**
 * Decides whether to follow a redirect and where to: at most `maxRedirects`
 * in all, never to a URL already visited (a loop), never from `wss:` to
 * `ws:`.
 *
 * @param from The URL that answered.
 * @param answer The redirect's status and `Location`.
 * @param visited The URLs connected to so far; the target is added.
 * @param maxRedirects How many redirects may be followed in all.
 * @param displayUrl The URL that answered, as errors show it.
 * @returns The next hop.
 * @throws {ConnectError} Kind `"status"` (with the redirect's status and
 *   headers) when `maxRedirects` is reached or the redirects loop; kind
 *   `"handshake"` for a target that is not a WebSocket URL or leaves TLS.
 */
export function followRedirect(
  from: URL,
  answer: { location?: string; response: { status: number; statusText: string; headers: Headers } },
  visited: string[],
  maxRedirects: number,
  displayUrl: string,
): RedirectHop {
  const { status, statusText, headers } = answer.response;
  const next = redirectTarget(from, answer.location ?? "", displayUrl);
  const said = `the server answered HTTP ${status}${statusText ? ` ${statusText}` : ""}`;
  if (visited.length > maxRedirects) {
    throw new ConnectError(
      displayUrl,
      "status",
      maxRedirects === 0
        ? `${said} to ${maskUrl(next)}; redirects are not followed (maxRedirects is 0)`
        : `${said} to ${
          maskUrl(next)
        }: too many redirects (more than ${maxRedirects}, maxRedirects)`,
      { status, headers },
    );
  }
  if (visited.includes(next.href)) {
    throw new ConnectError(
      displayUrl,
      "status",
      `${said} to ${maskUrl(next)}, which was visited already: the server redirects in a loop`,
      { status, headers },
    );
  }
  visited.push(next.href);
  const crossOrigin = !sameOrigin(from, next);
  return { url: next, crossOrigin, headers: (pairs) => headersForOrigin(pairs, crossOrigin) };
}

/** The most a server may ask `reconnecting()` to wait: see `parseRetryAfter`. */
export const MAX_RETRY_AFTER = 10 * 60_000;

/**
 * A `Retry-After` value in milliseconds: a number of seconds, or an HTTP
 * date (its distance from `now`, at least 0). Undefined when absent or
 * unreadable.
 *
 * @param value The header's value.
 * @param now The current time, as `Date.now()`.
 * @returns The delay in milliseconds.
 *
 * @example
 * ```ts
 * import { parseRetryAfter } from "./redirect.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseRetryAfter("2"), 2000);
 * assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:28:10 GMT", Date.UTC(2015, 9, 21, 7, 28)), 10_000);
 * assert.equal(parseRetryAfter("soon"), undefined);
 * ```
 */
export function parseRetryAfter(
  value: string | null,
  now: number = Date.now(),
): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** How long a refused upgrade's announced body is waited for, in milliseconds. */
const BODY_WAIT = 1000;

/**
 * Reads from a connection until `wanted` bytes arrived in all, the stream
 * ends, it fails, or {@linkcode BODY_WAIT} passed: the error must not wait
 * on a server that announces a body and sends none.
 */
async function readBody(conn: Deno.Conn, first: Uint8Array, wanted: number): Promise<Uint8Array> {
  const body = new Uint8Array(wanted);
  let used = Math.min(first.length, wanted);
  body.set(first.subarray(0, used));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), BODY_WAIT)));
  try {
    while (used < wanted) {
      const read = conn.read(body.subarray(used));
      read.catch(() => {}); // a read left behind fails when the connection is closed
      const n = await Promise.race([read, late]);
      if (n === null) break;
      used += n;
    }
  } catch {
    /* what arrived is enough */
  } finally {
    clearTimeout(timer);
  }
  return body.subarray(0, used);
}

/**
 * The error for an answer that refused the upgrade (any status but 101 and
 * a followed redirect), with its headers, the start of its body (what came
 * with the head, plus what `Content-Length` announces, up to 4096 bytes
 * and for at most a second: a body without a length is not waited for) and `retryAfter` on 429 and
 * 503. The message names the status, never the body or the headers.
 *
 * @param conn The connection, to read the rest of a short body from.
 * @param answer The status, reason phrase, headers and the bytes after the head.
 * @param displayUrl The URL as errors show it.
 * @returns The error to throw.
 */
export async function refusal(
  conn: Deno.Conn,
  answer: { status: number; statusText: string; headers: Headers; rest: Uint8Array },
  displayUrl: string,
): Promise<ConnectError> {
  const { status, statusText, headers, rest } = answer;
  const length = Number(headers.get("content-length"));
  const wanted = Number.isInteger(length) && length >= 0
    ? Math.min(length, MAX_ERROR_BODY)
    : Math.min(rest.length, MAX_ERROR_BODY);
  const bytes = await readBody(conn, rest, wanted);
  const body = new TextDecoder().decode(bytes);
  const retryAfter = status === 429 || status === 503
    ? parseRetryAfter(headers.get("retry-after"))
    : undefined;
  const phrase = statusText ? ` ${statusText}` : "";
  const wait = retryAfter === undefined ? "" : `; it asks to retry after ${retryAfter} ms`;
  return new ConnectError(
    displayUrl,
    "status",
    `the server answered HTTP ${status}${phrase} instead of switching protocols${wait}`,
    { status, headers, body, ...(retryAfter === undefined ? {} : { retryAfter }) },
  );
}
