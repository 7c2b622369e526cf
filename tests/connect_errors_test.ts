// Errors named for what failed (issue 21): a ConnectError's kind comes from the error's class
// and the step that failed, never from words in the runtime's message; and no error about a
// header shows its value (it may be a credential).
import assert from "node:assert/strict";
import { connect, ConnectError, defaultShouldRetry } from "../mod.ts";
import { buildClientRequest } from "../protocol/handshake.ts";
import { checkHeaderField } from "../protocol/http.ts";
import { classify } from "../transport/tcp_connect.ts";
import { closedPort } from "./_servers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const read = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));
const CERT = read("localhost.pem");
const KEY = read("localhost.key");

/** A TLS server on 127.0.0.1 that completes handshakes (or fails them) and then closes. */
function tlsServer(cert: string, key: string): { port: number } & AsyncDisposable {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
  const handshakes: Promise<unknown>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      handshakes.push(conn.handshake().catch(() => {}).finally(() => conn.close()));
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      await Promise.all(handshakes);
    },
  };
}

Deno.test("connect() names a certificate for another host a TLS failure, not DNS, and it is not retried", async () => {
  // Valid for DNS:localhost only; rustls says `... only valid for DnsName("localhost")`.
  const cert = read("localhost_only.pem");
  await using server = tlsServer(cert, read("localhost_only.key"));
  const error = await connect(`wss://127.0.0.1:${server.port}/`, { caCerts: [cert] })
    .catch((e) => e);
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(error.kind, "tls");
  assert.match(
    error.message,
    /^Cannot connect to wss:\/\/127\.0\.0\.1:\d+\/: TLS failed \(invalid peer certificate: certificate not valid for name "127\.0\.0\.1".*\); connect with a host name the certificate lists$/,
  );
  assert.equal(defaultShouldRetry({ error, failures: 1 } as never), false);
});

/**
 * Runs `run` against tests/fixtures/tls_server.mjs (Node, OpenSSL) presenting the fixture
 * certificate `name`, which answers a WebSocket upgrade: a connect() that trusts the certificate
 * opens.
 */
async function nodeTlsServer(name: string, run: (port: number) => Promise<void>): Promise<void> {
  await withNodeServer([new URL("tls_server.mjs", FIXTURES).pathname, name], run);
}

/**
 * Runs `node ARGS` (a server that prints its port on its first line and exits when its stdin
 * ends), then `run` with that port, and stops the server.
 */
async function withNodeServer(args: string[], run: (port: number) => Promise<void>): Promise<void> {
  const server = new Deno.Command("node", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    await run(Number((await lines.read()).value));
  } finally {
    await server.stdin.close();
    await server.status;
    await lines.cancel();
  }
}

// Trust is the runtime's (rustls, webpki): these guard it against a TLS stack that trusts less
// strictly. Deno 2.9.6's node:tls accepts both certificates (see transport/tcp_connect.ts).
Deno.test("connect() refuses a forged certificate that names a trusted CA as its issuer", async () => {
  // forged_v1.pem: X.509 v1, CN=localhost, issuer "wsbeat test private CA" (private_ca.pem's
  // name) but signed by another key. Node's node:tls on Deno 2.9.6 checks a v1 chain by names
  // only, and accepts it when the CA came in caCerts (ca).
  await nodeTlsServer("forged_v1", async (port) => {
    const opened = await connect(`wss://localhost:${port}/`, { caCerts: [read("private_ca.pem")] })
      .catch((e) => e);
    if (!(opened instanceof Error)) opened.close();
    assert.ok(opened instanceof ConnectError, `opened over a forged certificate: ${opened}`);
    assert.equal(opened.kind, "tls");
    assert.match(
      opened.message,
      /: TLS failed \(invalid peer certificate: .*UnsupportedCertVersion/,
    );
  });
});

Deno.test("connect() refuses a certificate that names its host only in the subject CN", async () => {
  // cn_only.pem: CN=localhost, no subjectAltName, signed by private_ca.pem. webpki reads names
  // from subjectAltName only; Node's checkServerIdentity falls back to the CN.
  await nodeTlsServer("cn_only", async (port) => {
    const opened = await connect(`wss://localhost:${port}/`, { caCerts: [read("private_ca.pem")] })
      .catch((e) => e);
    if (!(opened instanceof Error)) opened.close();
    assert.ok(opened instanceof ConnectError, `opened with a CN-only certificate: ${opened}`);
    assert.equal(opened.kind, "tls");
    assert.match(
      opened.message,
      /: TLS failed \(invalid peer certificate: certificate not valid for name "localhost"/,
    );
  });
});

Deno.test("connect() names an untrusted certificate a TLS failure, with what to do", async () => {
  await using server = tlsServer(CERT, KEY);
  const error = await connect(`wss://localhost:${server.port}/`).catch((e) => e);
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(error.kind, "tls");
  assert.match(
    error.message,
    /TLS failed \(.*UnknownIssuer\); to trust a private CA pass caCerts: \[pem\]$/,
  );
});

Deno.test("connect() with wss:// to a server that does not speak TLS says so", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const answering = (async () => {
    using conn = await listener.accept();
    await conn.read(new Uint8Array(4096));
    await conn.write(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"));
  })();
  const error = await connect(`wss://localhost:${listener.addr.port}/`, { caCerts: [CERT] })
    .catch((e) => e);
  await answering;
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(error.kind, "tls");
  assert.match(error.message, /: the server does not speak TLS: use ws:\/\/$/);
});

Deno.test("connect() to a server that wants a client certificate says to pass one", async () => {
  await withNodeServer([new URL("mtls_server.mjs", FIXTURES).pathname], async (port) => {
    const error = await connect(`wss://localhost:${port}/`, { caCerts: [CERT] }).catch((e) => e);
    assert.ok(error instanceof ConnectError, String(error));
    assert.equal(error.kind, "tls");
    assert.match(error.message, /; the server requires a client certificate \(cert and key\)$/);
  });
});

/**
 * A TLS server (Node) that asks for a client certificate signed by client_ca.pem. With "alert"
 * (TLS 1.2) it ends the handshake with an alert when none comes (HandshakeFailure); with "drop"
 * (TLS 1.3, where the client is done with the handshake before the server has read its
 * certificate) it closes TCP without a word.
 */
async function askingForCertificate(
  mode: "alert" | "drop",
  run: (port: number) => Promise<void>,
): Promise<void> {
  const script = `
    import { readFileSync } from "node:fs";
    import { createServer } from "node:tls";
    const [dir, mode] = process.argv.slice(-2);
    const server = createServer({
      key: readFileSync(dir + "localhost.key"), cert: readFileSync(dir + "localhost.pem"),
      ca: readFileSync(dir + "client_ca.pem"), maxVersion: mode === "alert" ? "TLSv1.2" : "TLSv1.3",
      requestCert: true, rejectUnauthorized: mode === "alert",
    }, (socket) => { socket.on("error", () => {}); if (!socket.authorized) socket.destroy(); });
    server.on("tlsClientError", () => {});
    server.listen(0, "127.0.0.1", () => console.log(server.address().port));
    process.stdin.on("end", () => process.exit(0)).resume();`;
  await withNodeServer(["--input-type=module", "-e", script, FIXTURES.pathname, mode], run);
}

Deno.test("connect() to a server that drops TLS after asking for a client certificate hints at one", async (t) => {
  await t.step("an alert during the handshake (TLS 1.2): kind tls", async () => {
    await askingForCertificate("alert", async (port) => {
      const error = await connect(`wss://localhost:${port}/`, { caCerts: [CERT] }).catch((e) => e);
      assert.ok(error instanceof ConnectError, String(error));
      assert.equal(error.kind, "tls");
      // Its alert, or a broken pipe when the client was still writing as the server closed.
      assert.match(
        error.message,
        /(TLS failed \(.*\); the server refused the TLS handshake: |the server closed the connection during the TLS handshake; )it may require a client certificate \(cert and key\)/,
      );
    });
  });
  await t.step("closed without a word after the handshake (TLS 1.3)", async () => {
    await askingForCertificate("drop", async (port) => {
      const error = await connect(`wss://localhost:${port}/`, { caCerts: [CERT] }).catch((e) => e);
      assert.ok(error instanceof ConnectError, String(error));
      // Whether the client was still flushing its last handshake bytes when the server closed
      // (kind tls) or already writing the upgrade (kind network) is a race; the advice is not.
      assert.match(
        error.message,
        /: the server closed the connection (during the TLS handshake|without answering the handshake); .*it may require a client certificate \(cert and key\)/,
      );
    });
  });
  await t.step("closed during the handshake: kind tls", async () => {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const dropping = (async () => {
      using conn = await listener.accept();
      await conn.read(new Uint8Array(4096)); // the ClientHello
    })();
    const error = await connect(`wss://localhost:${listener.addr.port}/`, { caCerts: [CERT] })
      .catch((e) => e);
    await dropping;
    assert.ok(error instanceof ConnectError, String(error));
    assert.equal(error.kind, "tls");
    assert.match(
      error.message,
      /: the server closed the connection during the TLS handshake; it may require a client certificate \(cert and key\), or not speak TLS on that port$/,
    );
  });
});

Deno.test("connect() names a refused proxy as the proxy's, its password masked", async () => {
  const port = closedPort();
  const error = await connect("ws://127.0.0.1:1/", { proxy: `http://me:hunter2@127.0.0.1:${port}` })
    .catch((e) => e);
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(error.kind, "refused");
  assert.equal(
    error.message,
    `Cannot connect to ws://127.0.0.1:1/: the proxy http://me:***@127.0.0.1:${port}/: connection refused`,
  );
});

Deno.test("classify() takes the kind from the error's class and the step, not its words", async (t) => {
  const url = "wss://127.0.0.1:1/";
  await t.step("a TLS failure whose text says DnsName is TLS", () => {
    const rustls = new Deno.errors.InvalidData(
      'invalid peer certificate: certificate not valid for name "127.0.0.1"; certificate is only valid for DnsName("localhost")',
    );
    assert.equal(classify(url, rustls, true, "tls").kind, "tls");
    // Any error of the TLS step, whatever it says.
    assert.equal(classify(url, new Error("dns lookup refused"), true, "tls").kind, "tls");
  });
  await t.step("an InvalidData read over TLS after the handshake (an alert) is TLS", () => {
    const alert = new Deno.errors.InvalidData("received fatal alert: HandshakeFailure");
    const error = classify(url, alert, true, "upgrade");
    assert.equal(error.kind, "tls");
    assert.match(error.message, /it may require a client certificate \(cert and key\)$/);
  });
  await t.step("refused by class", () => {
    const refused = new Deno.errors.ConnectionRefused("os error 111");
    assert.equal(classify(url, refused, true, "connect").kind, "refused");
  });
  await t.step(
    "a failed lookup (a plain Error from Deno.connect) is DNS; Deno's other classes are not",
    () => {
      const lookup = new Error("failed to lookup address information: Name or service not known");
      assert.equal(classify(url, lookup, false, "connect").kind, "dns");
      assert.equal(
        classify(url, new Deno.errors.ConnectionReset("dns"), false, "connect").kind,
        "network",
      );
      // The same words after the connection opened are no DNS failure.
      assert.equal(classify(url, new Error("dns error"), false, "upgrade").kind, "network");
    },
  );
});

Deno.test("no error about a header shows its value", async (t) => {
  const key = "dGhlIHNhbXBsZSBub25jZQ==";
  const request = (headers: HeadersInit) =>
    buildClientRequest({ url: new URL("ws://127.0.0.1/"), key, headers });
  const noSecret = (fn: () => unknown, message: string) => {
    assert.throws(fn, (error: unknown) => {
      assert.ok(error instanceof TypeError, String(error));
      assert.equal(error.message, message);
      assert.ok(!error.message.includes("SECRET"));
      return true;
    });
  };
  await t.step("a name with a value typed into it", () => {
    noSecret(
      () => request([["Bad Name: SECRET", "x"]]),
      'Cannot send the header as its name is not a token: current value is "Bad Name: ***"',
    );
  });
  await t.step("a value with CR, LF, NUL or a control character, whatever the name", () => {
    noSecret(
      () => request({ "X-Trace": "SECRET\r\nX-Evil: 1" }),
      'Cannot send the header "X-Trace" as its value contains a carriage return (CR) at position 7: current value is hidden',
    );
    noSecret(
      () => request({ Authorization: "Bearer SECRET\u0001" }),
      'Cannot send the header "Authorization" as its value contains a control character (U+0001) at position 14: current value is hidden',
    );
  });
  await t.step("a list item that is not a pair", () => {
    noSecret(
      () => request([["Authorization", "Bearer SECRET", "x"]] as unknown as [string, string][]),
      "Cannot send header 1 of the list as it is not a [name, value] pair: current value has 3 items",
    );
  });
  await t.step("beyond Latin-1, for the runtime's WebSocket", () => {
    noSecret(
      () => checkHeaderField("X-Api-Key", "SECRET\u20ac", { latin1: true }),
      `Cannot send the header "X-Api-Key" as its value contains a character beyond Latin-1 at position 7, which the runtime's WebSocket cannot send (percent-encode it): current value is hidden`,
    );
  });
});

Deno.test('connect() with transport "native" names a header the runtime would refuse, value hidden', async (t) => {
  const url = `ws://127.0.0.1:${closedPort()}/`;
  const cases: [string, HeadersInit, RegExp][] = [
    ["a line feed", { Authorization: "Bearer SECRET\nx" }, /"Authorization" .*line feed/],
    ["a NUL", { Cookie: "id=SECRET\0" }, /"Cookie" .*NUL/],
    ["a control character", { "X-Api-Key": "SECRET\u007f" }, /"X-Api-Key" .*U\+007F/],
    [
      "beyond Latin-1",
      { Authorization: "Bearer SECRET\u20ac" },
      /"Authorization" .*beyond Latin-1/,
    ],
    ["a bad name", [["Proxy-Authorization: SECRET", "x"]], /"Proxy-Authorization: \*\*\*"/],
  ];
  for (const [label, headers, pattern] of cases) {
    await t.step(label, async () => {
      // The wsbeat transport sends UTF-8 beyond Latin-1; the other cases it refuses alike.
      const transports = label === "beyond Latin-1" ? ["native"] : ["native", "wsbeat"];
      for (const transport of transports as ("native" | "wsbeat")[]) {
        const error = await connect(url, { transport, headers }).catch((e) => e);
        assert.ok(error instanceof TypeError, `${transport}: ${error}`);
        assert.match(error.message, pattern, transport);
        assert.ok(!error.message.includes("SECRET"), `${transport}: ${error.message}`);
      }
    });
  }
});
