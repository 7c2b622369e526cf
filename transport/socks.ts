/**
 * The transport layer, beside the wsbeat transport: a tunnel through a
 * SOCKS5 proxy (RFC 1928), with user name and password authentication (RFC
 * 1929) when the proxy URL carries credentials. `socks5h:` sends the
 * server's host name to the proxy, which resolves it (remote DNS, as curl's
 * `socks5h`); `socks5:` resolves it on this machine first and sends the
 * address. The transport opens TCP to the proxy, calls
 * {@linkcode openSocksTunnel}, and then speaks TLS (for `wss:`) and
 * WebSocket through the tunnel as if connected to the server.
 *
 * @module
 */

import { ConnectError } from "../util/errors.ts";
import { writeAll } from "./frame_writer.ts";
import { maskUrl } from "../util/url.ts";

const REPLIES: Record<number, string> = {
  1: "general SOCKS server failure",
  2: "connection not allowed by ruleset",
  3: "network unreachable",
  4: "host unreachable",
  5: "connection refused",
  6: "TTL expired",
  7: "command not supported",
  8: "address type not supported",
};

/** Reads exactly `n` bytes, or throws `ended()` at the end of the stream. */
async function readExactly(conn: Deno.Conn, n: number, ended: () => Error): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  for (let at = 0; at < n;) {
    const got = await conn.read(out.subarray(at));
    if (got === null) throw ended();
    at += got;
  }
  return out;
}

/**
 * The address bytes of a SOCKS5 request (RFC 1928 section 5): the type
 * (1 IPv4, 4 IPv6, 3 a domain name) and the address.
 *
 * @param host An IPv4 or IPv6 address, or a host name.
 * @returns The bytes.
 * @throws {TypeError} If a host name is over 255 bytes.
 */
export function socksAddress(host: string): Uint8Array {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4) return Uint8Array.of(1, ...v4.slice(1).map(Number));
  if (host.includes(":")) {
    const [head, tail = ""] = host.split("::") as [string, string?];
    const parts = (s: string) => (s ? s.split(":").map((h) => parseInt(h, 16)) : []);
    const a = parts(head), b = parts(tail);
    const words = host.includes("::") ? [...a, ...Array(8 - a.length - b.length).fill(0), ...b] : a;
    const bytes = new Uint8Array(17);
    bytes[0] = 4;
    words.forEach((word, i) => {
      bytes[1 + 2 * i] = word >> 8;
      bytes[2 + 2 * i] = word & 0xff;
    });
    return bytes;
  }
  const name = new TextEncoder().encode(host);
  if (name.length > 255) {
    throw new TypeError(
      `Cannot send the host name to a SOCKS5 proxy as it is over 255 bytes: current value is ${name.length} bytes`,
    );
  }
  return Uint8Array.of(3, name.length, ...name);
}

/**
 * Asks the SOCKS5 proxy on `conn` for a connection to `host:port`: the
 * greeting (no authentication, or user name and password when the proxy URL
 * has them), the RFC 1929 sub-negotiation, then CONNECT. Credentials never
 * appear in an error.
 *
 * @param conn A connection to the proxy.
 * @param proxy The proxy URL (`socks5:` or `socks5h:`).
 * @param target The server's host (a name for `socks5h:`, an address for
 *   `socks5:` once resolved) and port.
 * @param displayUrl The server's URL as errors show it.
 * @throws {ConnectError} Kind `"network"` when the proxy ends the connection
 *   or answers something else than SOCKS5; kind `"status"` when it refuses
 *   the credentials (status 407, as an HTTP proxy would say) or the
 *   connection (the reply code named); kind `"dns"` for its "host
 *   unreachable" to a name it resolved.
 */
export async function openSocksTunnel(
  conn: Deno.Conn,
  proxy: URL,
  target: { hostname: string; port: number },
  displayUrl: string,
): Promise<void> {
  const via = `the SOCKS5 proxy ${maskUrl(proxy)}`;
  const ended = () =>
    new ConnectError(displayUrl, "network", `${via} closed the connection during its handshake`);
  const withAuth = proxy.username !== "" || proxy.password !== "";
  await writeAll(conn, withAuth ? Uint8Array.of(5, 2, 0, 2) : Uint8Array.of(5, 1, 0));
  const [version, method] = await readExactly(conn, 2, ended);
  if (version !== 5) {
    throw new ConnectError(displayUrl, "network", `${via} does not speak SOCKS5`);
  }
  if (method === 2 && withAuth) {
    const encoder = new TextEncoder();
    const user = encoder.encode(decodeURIComponent(proxy.username));
    const password = encoder.encode(decodeURIComponent(proxy.password));
    if (user.length > 255 || password.length > 255) {
      throw new TypeError(
        "Cannot use the SOCKS5 proxy's credentials as a user name or password is over 255 bytes",
      );
    }
    await writeAll(
      conn,
      Uint8Array.of(1, user.length, ...user, password.length, ...password),
    );
    const [, status] = await readExactly(conn, 2, ended);
    if (status !== 0) {
      throw new ConnectError(
        displayUrl,
        "status",
        `${via} refused its user name or password`,
        { status: 407 },
      );
    }
  } else if (method !== 0) {
    throw new ConnectError(
      displayUrl,
      "status",
      withAuth
        ? `${via} accepts none of the authentication methods offered`
        : `${via} wants a user name and password (socks5h://user:password@host:port)`,
      { status: 407 },
    );
  }
  const address = socksAddress(target.hostname);
  await writeAll(
    conn,
    Uint8Array.of(5, 1, 0, ...address, target.port >> 8, target.port & 0xff),
  );
  const reply = await readExactly(conn, 4, ended);
  if (reply[0] !== 5) {
    throw new ConnectError(displayUrl, "network", `${via} does not speak SOCKS5`);
  }
  if (reply[1] !== 0) {
    const code = reply[1]!;
    const what = REPLIES[code] ?? `reply ${code}`;
    throw new ConnectError(
      displayUrl,
      code === 4 && address[0] === 3 ? "dns" : code === 5 ? "refused" : "network",
      `${via} could not connect to ${target.hostname}:${target.port}: ${what}`,
    );
  }
  // The bound address, which we do not use.
  const type = reply[3];
  const length = type === 1 ? 4 : type === 4 ? 16 : (await readExactly(conn, 1, ended))[0]!;
  await readExactly(conn, length + 2, ended);
}

/**
 * The address to send a `socks5:` proxy (local resolution): the host
 * itself when it is an address, the first A (then AAAA) record otherwise,
 * `127.0.0.1` for `localhost`.
 *
 * @param hostname The server's host name.
 * @param resolve `Deno.resolveDns`.
 * @returns The address.
 * @throws {Error} The resolver's error when the name does not resolve.
 */
export async function resolveForSocks(
  hostname: string,
  resolve: (name: string, type: "A" | "AAAA") => Promise<string[]>,
): Promise<string> {
  if (/^[\d.]+$/.test(hostname) || hostname.includes(":")) return hostname;
  if (hostname.toLowerCase() === "localhost") return "127.0.0.1";
  try {
    const [address] = await resolve(hostname, "A");
    if (address) return address;
  } catch { /* try AAAA */ }
  const [address] = await resolve(hostname, "AAAA");
  if (!address) throw new Error(`no address for ${hostname}`);
  return address;
}
