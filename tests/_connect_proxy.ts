// An HTTP CONNECT proxy for the tests: checks Proxy-Authorization (when given a user and
// password), then relays bytes both ways. Records each CONNECT target.

/** A running proxy. */
export interface ConnectProxy extends AsyncDisposable {
  port: number;
  url: string;
  /** The CONNECT targets it was asked for, `host:port`. */
  targets: string[];
}

/** Starts a proxy on 127.0.0.1. */
export function connectProxy(auth?: { user: string; password: string }): ConnectProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const targets: string[] = [];
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
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
      upstream = await Deno.connect({ hostname, port: Number(port) });
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
      for (const c of [client, upstream]) {
        if (c && conns.delete(c)) {
          try {
            c.close();
          } catch { /* already */ }
        }
      }
    }
  }

  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const task = handle(conn);
        tasks.add(task);
        task.finally(() => tasks.delete(task));
      }
    } catch { /* closed */ }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    targets,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already */ }
      }
      await Promise.all(tasks);
    },
  };
}
