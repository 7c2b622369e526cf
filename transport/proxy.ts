/**
 * The transport layer, beside the wsbeat transport: a tunnel through an HTTP proxy with
 * `CONNECT host:port` (RFC 9110 section 9.3.6). The transport opens TCP to
 * the proxy (and TLS to it for an `https:` proxy), calls
 * {@linkcode openTunnel}, and then speaks TLS (for `wss:`) and WebSocket
 * through the tunnel as if connected to the server. SOCKS5 proxies are in
 * `transport/socks.ts`.
 *
 * @module
 */

import { ConnectError, ProtocolError } from "../util/errors.ts";
import { writeAll } from "./frame_writer.ts";
import { readHttpHead } from "../protocol/http.ts";
import { maskUrl } from "../util/url.ts";

/** The proxy schemes {@linkcode checkProxyUrl} accepts. */
const PROXY_SCHEMES = ["http:", "https:", "socks5:", "socks5h:"];

/**
 * Checks a proxy URL: `http:` (HTTP CONNECT), `https:` (TLS to the proxy,
 * then CONNECT), `socks5:` (SOCKS5, the client resolves the server's name)
 * or `socks5h:` (SOCKS5, the proxy resolves it); no path, query or fragment.
 *
 * @param proxy The proxy URL, e.g. `http://user:password@proxy.example:3128`.
 * @returns The parsed URL.
 * @throws {TypeError} If it is not a valid URL of one of those schemes; the
 *   message masks the password.
 *
 * @example
 * ```ts
 * import { checkProxyUrl } from "./proxy.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(checkProxyUrl("http://127.0.0.1:3128").port, "3128");
 * assert.equal(checkProxyUrl("socks5h://127.0.0.1:1080").protocol, "socks5h:");
 * assert.throws(() => checkProxyUrl("socks4://127.0.0.1:1080"), TypeError);
 * ```
 */
export function checkProxyUrl(proxy: string | URL): URL {
  let url: URL;
  try {
    url = new URL(proxy);
  } catch {
    throw new TypeError(
      `Cannot use proxy as it is not a URL: current value is ${maskUrl(String(proxy))}`,
    );
  }
  if (!PROXY_SCHEMES.includes(url.protocol)) {
    throw new TypeError(
      "Cannot use proxy as only http://, https://, socks5:// and socks5h:// proxies are " +
        `supported: current value is ${maskUrl(url)}`,
    );
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) {
    throw new TypeError(
      `Cannot use proxy as a proxy URL has no path, query or fragment: current value is ${
        maskUrl(url)
      }`,
    );
  }
  return url;
}

/** The proxy's host and port, for `Deno.connect`. */
export function proxyAddress(proxy: URL): { hostname: string; port: number } {
  const hostname = proxy.hostname.startsWith("[") ? proxy.hostname.slice(1, -1) : proxy.hostname;
  const port = Number(proxy.port) ||
    (proxy.protocol === "https:" ? 443 : proxy.protocol === "http:" ? 80 : 1080);
  return { hostname, port };
}

function basic(url: URL): string {
  const bytes = new TextEncoder().encode(
    `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`,
  );
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

/**
 * Asks the proxy on `conn` for a tunnel to `host:port` and waits for its
 * answer. Credentials in the proxy URL's user info go in
 * `Proxy-Authorization: Basic`; they never appear in an error.
 *
 * @param conn A connection to the proxy.
 * @param proxy The proxy URL, checked by {@linkcode checkProxyUrl}.
 * @param target The server's host name and port.
 * @param displayUrl The server's URL as errors show it.
 * @throws {ConnectError} Kind `"status"` (with the proxy's status) when the
 *   proxy refuses, e.g. 407 for a wrong password; kind `"network"` when it
 *   closes the connection or answers something that is not HTTP.
 */
export async function openTunnel(
  conn: Deno.Conn,
  proxy: URL,
  target: { hostname: string; port: number },
  displayUrl: string,
): Promise<void> {
  const host = target.hostname.includes(":") ? `[${target.hostname}]` : target.hostname;
  const authority = `${host}:${target.port}`;
  const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`];
  if (proxy.username || proxy.password) lines.push(`Proxy-Authorization: ${basic(proxy)}`);
  const request = new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
  await writeAll(conn, request);

  const via = `the proxy ${maskUrl(proxy)}`;
  // Reading in chunks is safe: after its answer the proxy relays the server, which speaks
  // only after our opening handshake (or TLS hello), so no server byte can follow the head.
  let answer;
  try {
    answer = await readHttpHead(conn, {
      ended: () =>
        new ConnectError(
          displayUrl,
          "network",
          `${via} closed the connection without answering CONNECT`,
        ),
    });
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    throw new ConnectError(
      displayUrl,
      "network",
      `${via} answered CONNECT with malformed HTTP (${error.rule})`,
      { cause: error },
    );
  }
  const match = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(answer.head.startLine);
  if (!match) {
    throw new ConnectError(displayUrl, "network", `${via} did not answer CONNECT with HTTP`);
  }
  const status = Number(match[1]);
  if (status >= 200 && status < 300) {
    if (answer.rest.length > 0) {
      throw new ConnectError(displayUrl, "network", `${via} sent data before the tunnel opened`);
    }
    return;
  }
  const phrase = match[2] ? ` ${match[2]}` : "";
  const hint = status === 407
    ? proxy.username || proxy.password
      ? ": the proxy refused its user name or password"
      : ": the proxy wants a user name and password (http://user:password@host:port)"
    : "";
  throw new ConnectError(
    displayUrl,
    "status",
    `${via} refused the tunnel with HTTP ${status}${phrase}${hint}`,
    { status },
  );
}
