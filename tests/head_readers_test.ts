// The two places a client reads an HTTP head (the server's handshake answer, a proxy's answer to
// CONNECT) share readHttpHead (protocol/http.ts): each failure gives its own clear error.
import assert from "node:assert/strict";
import { ConnectError } from "../util/errors.ts";
import { readHttpHead } from "../protocol/http.ts";
import { openTunnel } from "../transport/proxy.ts";
import { readHandshakeAnswer } from "../transport/tcp_connect.ts";

/** A peer that reads what comes (up to the first empty line), answers `answer` and closes TCP. */
async function withPeer(
  answer: string,
  run: (conn: Deno.Conn) => Promise<void>,
): Promise<void> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const peer = (async () => {
    using conn = await listener.accept();
    await conn.write(new TextEncoder().encode(answer));
  })();
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  try {
    await run(conn);
  } finally {
    await peer;
  }
}

const URL_SHOWN = "ws://127.0.0.1:1/";
const ANSWER = { accept: "x", tls: false, displayUrl: URL_SHOWN, protocols: [] };
const OVERSIZED = "HTTP/1.1 101 Switching Protocols\r\n" + `X: ${"a".repeat(20_000)}\r\n`;

for (
  const [answer, kind, detail] of [
    ["", "network", "the server closed the connection without answering the handshake"],
    [
      "HTTP/1.1 101 Sw",
      "network",
      "the server closed the connection in the middle of its handshake answer",
    ],
    ["\x16\x03\x01", "tls", "the server answered with TLS: use wss://"],
    [OVERSIZED, "handshake", "HTTP head larger than 16384 bytes"],
    ["HTTP/1.1 101 OK\r\nno colon\r\n\r\n", "handshake", "malformed HTTP header line 1"],
  ] as const
) {
  Deno.test(`readHandshakeAnswer() fails with ConnectError "${kind}": ${detail}`, async () => {
    await withPeer(answer, async (conn) => {
      const error = await readHandshakeAnswer(conn, ANSWER).catch((e) => e);
      assert.ok(error instanceof ConnectError, String(error));
      assert.equal(error.kind, kind);
      assert.equal(error.message, `Cannot connect to ${URL_SHOWN}: ${detail}`);
    });
  });
}

const PROXY = new URL("http://me:secret@127.0.0.1:3128/");
const VIA = "the proxy http://me:***@127.0.0.1:3128/";
for (
  const [answer, detail] of [
    ["", `${VIA} closed the connection without answering CONNECT`],
    ["SSH-2.0-OpenSSH\r\n\r\n", `${VIA} did not answer CONNECT with HTTP`],
    ["HTTP/1.1 200 OK\r\n\r\nearly", `${VIA} sent data before the tunnel opened`],
    [OVERSIZED, `${VIA} answered CONNECT with malformed HTTP (HTTP head larger than 16384 bytes)`],
  ] as const
) {
  Deno.test(`openTunnel() fails with ConnectError "network": ${detail}`, async () => {
    await withPeer(answer, async (conn) => {
      const target = { hostname: "example.com", port: 443 };
      const error = await openTunnel(conn, PROXY, target, URL_SHOWN).catch((e) => e);
      assert.ok(error instanceof ConnectError, String(error));
      assert.equal(error.kind, "network");
      assert.equal(error.message, `Cannot connect to ${URL_SHOWN}: ${detail}`);
      assert.doesNotMatch(error.message, /secret/);
    });
  });
}

Deno.test("readHttpHead() keeps at most maxBytes and one read of a head that never ends", async () => {
  let reads = 0;
  const source = {
    read(buffer: Uint8Array): Promise<number> {
      reads++;
      buffer.fill(0x61); // "aaaa...", never a CRLF
      return Promise.resolve(buffer.length);
    },
  };
  await assert.rejects(
    readHttpHead(source, { ended: () => new Error("ended"), maxBytes: 1000 }),
    { name: "ProtocolError", message: "Protocol error: HTTP head larger than 1000 bytes" },
  );
  assert.ok(reads <= 2, `${reads} reads`);
});
