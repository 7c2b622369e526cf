// Proxies for the tests: an HTTP CONNECT proxy (plain, or over TLS for https:// proxies) that
// checks Proxy-Authorization (when given a user and password), and a SOCKS5 proxy (RFC 1928,
// RFC 1929). Both relay bytes both ways, record each target, and resolve the names in `hosts`
// (say feed.invalid, which the client cannot resolve) to the address given there.

/** A running proxy. */
export interface ConnectProxy extends AsyncDisposable {
  port: number;
  url: string;
  /** The CONNECT targets it was asked for, `host:port`. */
  targets: string[];
}

/** Where the proxies send a name of `hosts`. */
function resolveName(hosts: Record<string, string> | undefined, name: string): string {
  return hosts?.[name] ?? name;
}

/** Starts a proxy on 127.0.0.1. */
export function connectProxy(
  auth?: { user: string; password: string },
  options: { hosts?: Record<string, string>; tls?: { cert: string; key: string } } = {},
): ConnectProxy {
  const listener = options.tls
    ? Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...options.tls })
    : Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const targets: string[] = [];
  const conns = new Set<Deno.Conn>();
  const expected = auth ? `Basic ${btoa(`${auth.user}:${auth.password}`)}` : undefined;
  const encoder = new TextEncoder();

  async function handle(client: Deno.Conn): Promise<void> {
    conns.add(client);
    let upstream: Deno.Conn | undefined;
    try {
      const buffer = new Uint8Array(8192);
      let used = 0;
      let head = "";
      while (!head.includes("\r\n\r\n")) {
        const n = await client.read(buffer.subarray(used));
        if (n === null) return;
        used += n;
        head = new TextDecoder().decode(buffer.subarray(0, used));
      }
      const target = /^CONNECT (\S+) HTTP\/1\.1\r\n/.exec(head)?.[1];
      const given = /\r\nproxy-authorization: *([^\r]+)/i.exec(head)?.[1];
      if (!target) {
        await client.write(encoder.encode("HTTP/1.1 405 Method Not Allowed\r\n\r\n"));
        return;
      }
      targets.push(target);
      if (expected && given !== expected) {
        await client.write(
          encoder.encode(
            "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n",
          ),
        );
        return;
      }
      const [hostname, port] = [
        target.slice(0, target.lastIndexOf(":")),
        target.slice(target.lastIndexOf(":") + 1),
      ];
      upstream = await Deno.connect({
        hostname: resolveName(options.hosts, hostname),
        port: Number(port),
      });
      conns.add(upstream);
      await client.write(encoder.encode("HTTP/1.1 200 Connection Established\r\n\r\n"));
      const up = upstream;
      const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
        const chunk = new Uint8Array(65536);
        try {
          for (let n = await from.read(chunk); n !== null; n = await from.read(chunk)) {
            for (let off = 0; off < n;) off += await to.write(chunk.subarray(off, n));
          }
        } catch { /* closed */ }
        try {
          to.close();
        } catch { /* already */ }
        conns.delete(to);
      };
      await Promise.all([pipe(client, up), pipe(up, client)]);
    } catch {
      /* a test ended the connection */
    } finally {
      closeTracked(conns, [client, upstream]);
    }
  }

  const stop = acceptEach(listener, handle, conns);
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    port,
    url: `${options.tls ? "https" : "http"}://${options.tls ? "localhost" : "127.0.0.1"}:${port}`,
    targets,
    [Symbol.asyncDispose]: stop,
  };
}

/** Relays bytes both ways until either side ends. */
async function relay(a: Deno.Conn, b: Deno.Conn): Promise<void> {
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    const chunk = new Uint8Array(65536);
    try {
      for (let n = await from.read(chunk); n !== null; n = await from.read(chunk)) {
        for (let off = 0; off < n;) off += await to.write(chunk.subarray(off, n));
      }
    } catch { /* closed */ }
    try {
      to.close();
    } catch { /* already */ }
  };
  await Promise.all([pipe(a, b), pipe(b, a)]);
}

async function readN(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  for (let at = 0; at < n;) {
    const got = await conn.read(out.subarray(at));
    if (got === null) throw new Error("ended");
    at += got;
  }
  return out;
}

/** A running SOCKS5 proxy. */
export interface SocksProxy extends AsyncDisposable {
  port: number;
  /** The targets asked for, `host:port` (a name as sent, for socks5h). */
  targets: string[];
  /** The address types of the requests: 1 (IPv4), 3 (domain name), 4 (IPv6). */
  types: number[];
}

/** Starts a SOCKS5 proxy on 127.0.0.1 (no authentication, or user name and password). */
export function socksProxy(
  options: { auth?: { user: string; password: string }; hosts?: Record<string, string> } = {},
): SocksProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const targets: string[] = [];
  const types: number[] = [];
  const conns = new Set<Deno.Conn>();
  async function handle(client: Deno.Conn): Promise<void> {
    conns.add(client);
    let upstream: Deno.Conn | undefined;
    try {
      const [, count] = await readN(client, 2);
      const methods = [...await readN(client, count!)];
      const method = options.auth ? 2 : 0;
      if (!methods.includes(method)) {
        await client.write(Uint8Array.of(5, 0xff));
        return;
      }
      await client.write(Uint8Array.of(5, method));
      if (options.auth) {
        const [, ulen] = await readN(client, 2);
        const user = new TextDecoder().decode(await readN(client, ulen!));
        const [plen] = await readN(client, 1);
        const password = new TextDecoder().decode(await readN(client, plen!));
        const ok = user === options.auth.user && password === options.auth.password;
        await client.write(Uint8Array.of(1, ok ? 0 : 1));
        if (!ok) return;
      }
      const [, , , type] = await readN(client, 4);
      types.push(type!);
      let host: string;
      if (type === 1) host = [...await readN(client, 4)].join(".");
      else if (type === 3) {
        const [len] = await readN(client, 1);
        host = new TextDecoder().decode(await readN(client, len!));
      } else throw new Error("IPv6 not used by the tests");
      const portBytes = await readN(client, 2);
      const port = (portBytes[0]! << 8) | portBytes[1]!;
      targets.push(`${host}:${port}`);
      const address = resolveName(options.hosts, host);
      if (!/^[\d.]+$/.test(address)) {
        await client.write(Uint8Array.of(5, 4, 0, 1, 0, 0, 0, 0, 0, 0)); // host unreachable
        return;
      }
      upstream = await Deno.connect({ hostname: address, port });
      conns.add(upstream);
      await client.write(Uint8Array.of(5, 0, 0, 1, 127, 0, 0, 1, 0, 0));
      await relay(client, upstream);
    } catch {
      /* a test ended the connection */
    } finally {
      closeTracked(conns, [client, upstream]);
    }
  }
  const stop = acceptEach(listener, handle, conns);
  return {
    port: (listener.addr as Deno.NetAddr).port,
    targets,
    types,
    [Symbol.asyncDispose]: stop,
  };
}

/** What a {@linkcode feedServer} saw of one request. */
export interface SeenRequest {
  path: string;
  headers: Headers;
}

/** A running feed server: see {@linkcode feedServer}. */
export interface FeedServer extends AsyncDisposable {
  port: number;
  url: string;
  /** Every request, in order. */
  seen: SeenRequest[];
}

/**
 * A WebSocket echo server on 127.0.0.1 that records each request's path and
 * headers, answers the paths in `routes` with their response instead (a
 * redirect, a 429, ...), and sets `X-Feed-Version: 7` on its 101.
 */
export function feedServer(
  routes: Record<string, (request: Request) => Response> = {},
): FeedServer {
  const seen: SeenRequest[] = [];
  const sockets = new Set<WebSocket>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const url = new URL(request.url);
    const path = url.pathname + url.search;
    seen.push({ path, headers: new Headers(request.headers) });
    const route = routes[url.pathname];
    if (route) return route(request);
    const { socket, response } = Deno.upgradeWebSocket(request);
    sockets.add(socket);
    socket.onmessage = (event) => socket.send(event.data);
    socket.onclose = () => sockets.delete(socket);
    response.headers.set("X-Feed-Version", "7");
    return response;
  });
  const port = server.addr.port;
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    seen,
    async [Symbol.asyncDispose]() {
      for (const socket of sockets) socket.close();
      await server.shutdown();
    },
  };
}

/** Closes each connection still tracked in `conns`, once, and forgets it. */
function closeTracked(conns: Set<Deno.Conn>, list: (Deno.Conn | undefined)[]): void {
  for (const c of list) {
    if (c && conns.delete(c)) {
      try {
        c.close();
      } catch { /* already */ }
    }
  }
}

/**
 * Runs `handle` on each accepted connection until the listener closes; returns the stop: close
 * the listener and the connections in `conns`, and wait for every handler.
 */
function acceptEach(
  listener: Deno.Listener,
  handle: (conn: Deno.Conn) => Promise<void>,
  conns: Set<Deno.Conn>,
): () => Promise<void> {
  const tasks = new Set<Promise<void>>();
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const task = handle(conn);
        tasks.add(task);
        task.finally(() => tasks.delete(task));
      }
    } catch { /* closed */ }
  })();
  return async () => {
    listener.close();
    await accepting;
    for (const c of conns) {
      try {
        c.close();
      } catch { /* already */ }
    }
    await Promise.all(tasks);
  };
}
