// The raw socket side the benchmark servers share: writing a whole buffer,
// reading an HTTP request head and answering it with a 101, and closing with
// a close frame and waiting for the client's.

import { acceptKey } from "../protocol/handshake.ts";

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
}

/** The request head, read up to its blank line (nothing follows it before our answer). */
export async function readHead(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(4096);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buffer);
    if (n === null || head.length > 16384) throw new Error("no request head");
    head += new TextDecoder().decode(buffer.subarray(0, n));
  }
  return head;
}

/** The parts of a request head the benchmark servers read. */
export interface RequestHead {
  /** The request target's query. */
  query: URLSearchParams;
  /** The value of a header (the first line with that name), or undefined. */
  header(name: string): string | undefined;
}

/**
 * Reads the request head and answers the upgrade with a 101 (and `extraHeaders`, each line
 * ending in CRLF), or a 400 without a `Sec-WebSocket-Key`.
 *
 * @returns The head, or undefined after a 400.
 */
export async function acceptUpgrade(
  conn: Deno.Conn,
  extraHeaders: (head: RequestHead) => string = () => "",
): Promise<RequestHead | undefined> {
  const text = await readHead(conn);
  const target = text.slice(0, text.indexOf("\r\n")).split(" ")[1] ?? "/";
  const head: RequestHead = {
    query: new URL(target, "http://localhost").searchParams,
    header: (name) => new RegExp(`^${name}:\\s*(.*?)\\s*$`, "im").exec(text)?.[1],
  };
  const key = head.header("sec-websocket-key");
  if (!key) {
    await writeAll(conn, new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"));
    return undefined;
  }
  await writeAll(
    conn,
    new TextEncoder().encode(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${await acceptKey(key)}\r\n${extraHeaders(head)}\r\n`,
    ),
  );
  return head;
}

/** Sends a close frame (1000) and waits up to 5 s for the client's (or EOF). */
export async function closeAndAwait(conn: Deno.Conn): Promise<void> {
  await writeAll(conn, new Uint8Array([0x88, 2, 0x03, 0xe8]));
  const timer = setTimeout(() => conn.close(), 5000);
  try {
    await awaitClose(conn);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads the client's frames until its close frame (or EOF): client frames are masked. */
export async function awaitClose(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(4096);
  let pending = new Uint8Array(0);
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) return;
    const joined = new Uint8Array(pending.length + n);
    joined.set(pending);
    joined.set(buffer.subarray(0, n), pending.length);
    let at = 0;
    while (joined.length - at >= 2) {
      const b1 = joined[at + 1]! & 0x7f;
      const extra = b1 === 126 ? 2 : b1 === 127 ? 8 : 0;
      if (joined.length - at < 2 + extra) break;
      const length = extra === 0
        ? b1
        : extra === 2
        ? (joined[at + 2]! << 8) | joined[at + 3]!
        : Number(new DataView(joined.buffer, at + 2, 8).getBigUint64(0));
      const frameLength = 2 + extra + (joined[at + 1]! & 0x80 ? 4 : 0) + length;
      if (joined.length - at < frameLength) break;
      if ((joined[at]! & 0x0f) === 8) return;
      at += frameLength;
    }
    pending = joined.subarray(at);
  }
}

/**
 * Listens on 127.0.0.1 and a free port, prints `listening ws://HOST:PORT/` on stdout, runs
 * `handle` on each connection until SIGTERM, then exits (connections a client left open do not
 * keep the process).
 */
export async function serveUntilTerm(
  handle: (conn: Deno.TcpConn) => Promise<void>,
): Promise<never> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const onTerm = () => {
    Deno.removeSignalListener("SIGTERM", onTerm);
    listener.close();
  };
  Deno.addSignalListener("SIGTERM", onTerm);
  console.log(`listening ws://127.0.0.1:${listener.addr.port}/`);
  try {
    for await (const conn of listener) void handle(conn);
  } catch { /* closed by SIGTERM */ }
  Deno.exit(0);
}
