// Misbehaving servers for tests: what serve.ts cannot be made to do.

/** A server that refuses the WebSocket upgrade with an HTTP status. */
export function statusServer(status: number): { url: string } & AsyncDisposable {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    () => new Response("no", { status }),
  );
  return {
    url: `ws://127.0.0.1:${server.addr.port}/`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function acceptKey(key: string): Promise<string> {
  const data = new TextEncoder().encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
  const digest = await crypto.subtle.digest("SHA-1", data);
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/**
 * A TCP server that accepts and then says nothing. With `handshake`, it first
 * completes the WebSocket opening handshake: a peer that is open but dead.
 */
export function silentServer(options: { handshake?: boolean } = {}): {
  url: string;
  /** Resolves when the first connection was accepted (and upgraded). */
  accepted: Promise<void>;
  close(): Promise<void>;
} & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const { promise: accepted, resolve } = Promise.withResolvers<void>();
  const loops: Promise<void>[] = [];
  const hold = async (conn: Deno.Conn) => {
    const buffer = new Uint8Array(4096);
    let request = "";
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        if (!options.handshake || request.includes("\r\n\r\n")) continue;
        request += new TextDecoder().decode(buffer.subarray(0, n));
        if (!request.includes("\r\n\r\n")) continue;
        const key = /sec-websocket-key: *(\S+)/i.exec(request)![1]!;
        await conn.write(
          new TextEncoder().encode(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
              `Sec-WebSocket-Accept: ${await acceptKey(key)}\r\n\r\n`,
          ),
        );
        resolve();
      }
    } catch { /* closed by close() */ }
  };
  const acceptLoop = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        if (!options.handshake) resolve();
        loops.push(hold(conn));
      }
    } catch { /* listener closed */ }
  })();
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      await acceptLoop;
      await Promise.all(loops);
    })();
  return {
    url: `ws://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`,
    accepted,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A server that sends `messages` as soon as a client connects, then closes with `code`. */
export function burstServer(
  messages: string[],
  code = 1000,
): { url: string } & AsyncDisposable {
  const closed: Promise<void>[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onopen = () => {
      for (const message of messages) socket.send(message);
      socket.close(code, "done");
    };
    closed.push(new Promise((resolve) => (socket.onclose = () => resolve())));
    return response;
  });
  return {
    url: `ws://127.0.0.1:${server.addr.port}/`,
    [Symbol.asyncDispose]: async () => {
      await Promise.all(closed);
      await server.shutdown();
    },
  };
}
