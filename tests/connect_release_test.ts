// Nothing outlives a failed connect (issue 21): at each step of opening (TCP to the server or
// to a proxy, the proxy's CONNECT, the TLS handshake, the WebSocket upgrade), a peer that stays
// silent at that step, a short connectTimeout or an aborted signal: the error names the step,
// and where the peer has a socket it must see EOF (the client closed its own). Every wait is
// bounded; the only clock is the client's connectTimeout. The op sanitizer checks that no
// connect, read or handshake of the client is left pending.
import assert from "node:assert/strict";
import { connect, ConnectError } from "../mod.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const CERT = Deno.readTextFileSync(new URL("localhost.pem", FIXTURES));
const KEY = Deno.readTextFileSync(new URL("localhost.key", FIXTURES));

/** Rejects if `promise` has not settled within `ms` (a bound, not a sleep: it never waits more). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A peer that accepts one connection, reads and never writes. */
interface MutePeer extends AsyncDisposable {
  port: number;
  /** Resolves when the bytes read so far contain `until` (or any byte, without it). */
  heard: Promise<void>;
  /** Resolves when a read returned null or failed: the client closed its socket. */
  eof: Promise<void>;
}

/**
 * A peer on 127.0.0.1 that says nothing: over TCP (it reads a TLS hello, a CONNECT or an
 * upgrade request and never answers), or over TLS (the handshake completes, then silence).
 * With `tunnel`, a proxy that grants the CONNECT (200) and then says nothing: `heard`
 * resolves on the first bytes sent through the tunnel (the TLS hello, for `wss:`).
 */
function mutePeer(options: { tls?: boolean; until?: string; tunnel?: boolean } = {}): MutePeer {
  const listener = options.tls
    ? Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: CERT, key: KEY })
    : Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const heard = Promise.withResolvers<void>();
  const eof = Promise.withResolvers<void>();
  let conn: Deno.Conn | undefined;
  const serving = (async () => {
    try {
      conn = await listener.accept();
    } catch {
      return; // the listener closed before a client came
    }
    const buffer = new Uint8Array(4096);
    let text = "";
    let granted = !options.tunnel;
    try {
      for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
        if (!granted) {
          text += new TextDecoder().decode(buffer.subarray(0, n));
          if (!text.endsWith(REQUEST_END)) continue; // a client sends nothing before the answer
          granted = true;
          text = "";
          await conn.write(new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n"));
          continue;
        }
        text += new TextDecoder().decode(buffer.subarray(0, n));
        if (options.until === undefined || text.includes(options.until)) heard.resolve();
      }
    } catch { /* reset by the client, or closed by dispose */ }
    eof.resolve();
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    heard: heard.promise,
    eof: eof.promise,
    async [Symbol.asyncDispose]() {
      listener.close();
      try {
        conn?.close();
      } catch { /* already */ }
      await serving;
    },
  };
}

const REQUEST_END = "\r\n\r\n";

Deno.test("connect() closes its socket when connectTimeout stops the upgrade (ws and wss)", async (t) => {
  for (const scheme of ["ws", "wss"] as const) {
    await t.step(scheme, async () => {
      await using peer = mutePeer({ tls: scheme === "wss", until: REQUEST_END });
      const host = scheme === "wss" ? "localhost" : "127.0.0.1";
      const error = await connect(`${scheme}://${host}:${peer.port}/`, {
        connectTimeout: 500,
        caCerts: [CERT],
      }).catch((e) => e);
      assert.ok(error instanceof ConnectError, String(error));
      assert.equal(error.kind, "timeout");
      assert.match(error.message, /: no handshake within 500 ms \(connectTimeout\)/);
      await within(peer.eof, 2_000, "the peer's EOF");
    });
  }
});

Deno.test("connect() closes its socket when the signal aborts the upgrade (ws and wss)", async (t) => {
  for (const scheme of ["ws", "wss"] as const) {
    await t.step(scheme, async () => {
      await using peer = mutePeer({ tls: scheme === "wss", until: REQUEST_END });
      const host = scheme === "wss" ? "localhost" : "127.0.0.1";
      const controller = new AbortController();
      const reason = new Error("stop");
      const opening = connect(`${scheme}://${host}:${peer.port}/`, {
        signal: controller.signal,
        caCerts: [CERT],
      }).catch((e) => e);
      await within(peer.heard, 2_000, "the upgrade request");
      controller.abort(reason);
      assert.equal(await opening, reason);
      await within(peer.eof, 2_000, "the peer's EOF");
    });
  }
});

Deno.test("connect() closes its socket to a proxy that never answers CONNECT, and names the proxy (ws and wss)", async (t) => {
  for (const scheme of ["ws", "wss"] as const) {
    await t.step(`${scheme}, connectTimeout`, async () => {
      await using proxy = mutePeer({ until: REQUEST_END });
      const error = await connect(`${scheme}://127.0.0.1:1/`, {
        proxy: `http://user:hunter2@127.0.0.1:${proxy.port}`,
        connectTimeout: 200,
      }).catch((e) => e);
      assert.ok(error instanceof ConnectError, String(error));
      assert.equal(error.kind, "timeout");
      assert.equal(
        error.message,
        `Cannot connect to ${scheme}://127.0.0.1:1/: the proxy http://user:***@127.0.0.1:${proxy.port}/ ` +
          "did not answer CONNECT within 200 ms (connectTimeout)",
      );
      assert.ok(error.cause instanceof ConnectError); // the client's timeout
      await within(proxy.eof, 2_000, "the proxy's EOF");
    });
    await t.step(`${scheme}, signal`, async () => {
      await using proxy = mutePeer({ until: REQUEST_END });
      const controller = new AbortController();
      const opening = connect(`${scheme}://127.0.0.1:1/`, {
        proxy: `http://127.0.0.1:${proxy.port}`,
        signal: controller.signal,
      }).catch((e) => e);
      await within(proxy.heard, 2_000, "the CONNECT request");
      controller.abort(new Error("stop"));
      assert.equal((await opening).message, "stop");
      await within(proxy.eof, 2_000, "the proxy's EOF");
    });
  }
});

// The TLS step, a server or a tunnel silent at the TLS hello. Deno 2.9.6 cannot cancel a TLS
// handshake (Deno.connectTls and Deno.startTls): closing the client's Deno.TlsConn rejects the
// handshake at once, but the runtime's handshake task (rustls-tokio-stream) keeps the socket
// until the peer answers or closes it. So these assert the error and its promptness, not the
// peer's EOF: `deno run -A tests/fixtures/silent_hello_count.ts` counts the sockets a silent TLS
// peer is left holding (30 of 30 on Deno 2.9.6; 0 over ws:). Each peer closes its side when
// disposed, which ends the runtime's handshake.
Deno.test("connect() gives up a TLS hello that gets no answer, to the server or through a proxy, by timeout or signal", async (t) => {
  for (const via of ["server", "proxy"] as const) {
    await t.step(`${via}, connectTimeout`, async () => {
      await using peer = mutePeer({ tunnel: via === "proxy" });
      const url = via === "proxy" ? "wss://localhost:1/" : `wss://localhost:${peer.port}/`;
      const error = await connect(url, {
        connectTimeout: 200,
        caCerts: [CERT],
        ...(via === "proxy" ? { proxy: `http://127.0.0.1:${peer.port}` } : {}),
      }).catch((e) => e);
      assert.ok(error instanceof ConnectError, String(error));
      assert.equal(error.kind, "timeout");
      assert.equal(
        error.message,
        `Cannot connect to ${url}: the server did not complete the TLS handshake within 200 ms ` +
          "(connectTimeout); is it speaking TLS on that port?",
      );
      await within(peer.heard, 2_000, "the ClientHello"); // the TLS step was under way
    });
    await t.step(`${via}, signal`, async () => {
      await using peer = mutePeer({ tunnel: via === "proxy" });
      const url = via === "proxy" ? "wss://localhost:1/" : `wss://localhost:${peer.port}/`;
      const controller = new AbortController();
      const reason = new Error("stop");
      const opening = connect(url, {
        signal: controller.signal,
        caCerts: [CERT],
        ...(via === "proxy" ? { proxy: `http://127.0.0.1:${peer.port}` } : {}),
      }).catch((e) => e);
      await within(peer.heard, 2_000, "the ClientHello");
      controller.abort(reason);
      assert.equal(await within(opening, 1_000, "the rejection"), reason);
    });
  }
});

/**
 * A listener whose accept queue is full (backlog 0 and one connection not accepted): the
 * kernel drops further SYNs, so a TCP connect to it hangs, the TCP step of opening.
 */
async function fullListener(): Promise<{ port: number } & AsyncDisposable> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, tcpBacklog: 0 });
  const port = listener.addr.port;
  const filler = await Deno.connect({ hostname: "127.0.0.1", port });
  return {
    port,
    [Symbol.asyncDispose]() {
      filler.close();
      listener.close();
      return Promise.resolve();
    },
  };
}

Deno.test("connect() gives up a TCP connect that hangs, named for TCP, to the server or to the proxy", async (t) => {
  // The op sanitizer checks that no Deno.connect is left pending.
  for (const scheme of ["ws", "wss"] as const) {
    await t.step(`${scheme}, to the server`, async () => {
      await using full = await fullListener();
      const error = await connect(`${scheme}://127.0.0.1:${full.port}/`, { connectTimeout: 200 })
        .catch((e) => e);
      assert.ok(error instanceof ConnectError, String(error));
      assert.equal(error.kind, "timeout");
      assert.match(
        error.message,
        /: the TCP connection to the server did not open within 200 ms \(connectTimeout\)$/,
      );
    });
    await t.step(`${scheme}, to the proxy`, async () => {
      await using full = await fullListener();
      const error = await connect(`${scheme}://127.0.0.1:1/`, {
        connectTimeout: 200,
        proxy: `http://me:hunter2@127.0.0.1:${full.port}`,
      }).catch((e) => e);
      assert.ok(error instanceof ConnectError, String(error));
      assert.equal(error.kind, "timeout");
      assert.equal(
        error.message,
        `Cannot connect to ${scheme}://127.0.0.1:1/: the TCP connection to the proxy ` +
          `http://me:***@127.0.0.1:${full.port}/ did not open within 200 ms (connectTimeout)`,
      );
    });
  }
});

Deno.test("connect() with a client certificate to a server that never answers the TLS hello: timeout or abort, at once", async (t) => {
  const cert = Deno.readTextFileSync(new URL("client.pem", FIXTURES));
  const key = Deno.readTextFileSync(new URL("client.key", FIXTURES));
  await t.step("connectTimeout", async () => {
    await using peer = mutePeer();
    const error = await connect(`wss://localhost:${peer.port}/`, {
      connectTimeout: 200,
      caCerts: [CERT],
      cert,
      key,
    }).catch((e) => e);
    assert.ok(error instanceof ConnectError, String(error));
    assert.equal(error.kind, "timeout");
    assert.match(error.message, /: the server did not complete the TLS handshake within 200 ms/);
  });
  await t.step("signal", async () => {
    await using peer = mutePeer();
    const controller = new AbortController();
    const reason = new Error("stop");
    const opening = connect(`wss://localhost:${peer.port}/`, {
      signal: controller.signal,
      caCerts: [CERT],
      cert,
      key,
    }).catch((e) => e);
    await within(peer.heard, 2_000, "the ClientHello");
    controller.abort(reason);
    assert.equal(await within(opening, 1_000, "the rejection"), reason);
  });
});
