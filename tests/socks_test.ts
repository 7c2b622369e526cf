// connect({ proxy }) through SOCKS5 (RFC 1928, RFC 1929) and HTTPS proxies, against local
// proxies that resolve feed.invalid, a name this process cannot resolve.

import assert from "node:assert/strict";
import { connect, ConnectError } from "../mod.ts";
import { connectProxy, feedServer, socksProxy } from "./_connect_proxy.ts";
import { socksAddress } from "../transport/socks.ts";

const hosts = { "feed.invalid": "127.0.0.1" };

Deno.test("socksAddress() encodes IPv4, IPv6 and names as RFC 1928 section 5 says", () => {
  assert.deepEqual([...socksAddress("127.0.0.1")], [1, 127, 0, 0, 1]);
  assert.deepEqual([...socksAddress("::1")], [4, ...new Array(15).fill(0), 1]);
  assert.deepEqual([...socksAddress("ab")], [3, 2, 97, 98]);
});

Deno.test("connect() through socks5h:// sends the name to the proxy, which resolves it", async () => {
  await using server = feedServer();
  await using proxy = socksProxy({ hosts, auth: { user: "me", password: "p w" } });
  await using ws = await connect(`ws://feed.invalid:${server.port}/prices`, {
    proxy: `socks5h://me:p%20w@127.0.0.1:${proxy.port}`,
  });
  ws.send("hello");
  assert.equal(await ws.receive(), "hello");
  assert.deepEqual(proxy.targets, [`feed.invalid:${server.port}`]);
  assert.deepEqual(proxy.types, [3]); // a domain name, not an address
  assert.equal(server.seen[0]!.path, "/prices");
});

Deno.test("connect() through socks5:// resolves the name itself and sends the address", async () => {
  await using server = feedServer();
  await using proxy = socksProxy({ hosts });
  await using ws = await connect(`ws://localhost:${server.port}/`, {
    proxy: `socks5://127.0.0.1:${proxy.port}`,
  });
  assert.equal(ws.state, "open");
  assert.deepEqual(proxy.types, [1]);
  assert.deepEqual(proxy.targets, [`127.0.0.1:${server.port}`]);
});

Deno.test("connect() names a SOCKS5 refusal of the credentials without showing them", async () => {
  await using proxy = socksProxy({ hosts, auth: { user: "me", password: "right" } });
  const error = await connect("ws://feed.invalid:9/", {
    proxy: `socks5h://me:wrong-secret@127.0.0.1:${proxy.port}`,
  }).catch((e) => e);
  assert.ok(error instanceof ConnectError);
  assert.equal(error.kind, "status");
  assert.equal(error.status, 407);
  assert.match(error.message, /SOCKS5 proxy socks5h:\/\/me:\*\*\*@127\.0\.0\.1:\d+ refused/);
  assert.doesNotMatch(error.message, /wrong-secret/);
});

Deno.test("connect() reports a name the SOCKS5 proxy cannot resolve as kind dns", async () => {
  await using proxy = socksProxy();
  const error = await connect("ws://nowhere.invalid:9/", {
    proxy: `socks5h://127.0.0.1:${proxy.port}`,
  }).catch((e) => e);
  assert.ok(error instanceof ConnectError);
  assert.equal(error.kind, "dns");
  assert.match(error.message, /host unreachable/);
});

Deno.test("connect() through an https:// proxy: TLS to the proxy, then CONNECT", async () => {
  const cert = await Deno.readTextFile("tests/fixtures/localhost.pem");
  const key = await Deno.readTextFile("tests/fixtures/localhost.key");
  await using server = feedServer();
  await using proxy = connectProxy(undefined, { hosts, tls: { cert, key } });
  await using ws = await connect(`ws://feed.invalid:${server.port}/`, {
    proxy: proxy.url,
    caCerts: [cert],
  });
  ws.send("over tls");
  assert.equal(await ws.receive(), "over tls");
  assert.deepEqual(proxy.targets, [`feed.invalid:${server.port}`]);
});

Deno.test("connect() refuses an https:// proxy for wss: (Deno cannot run TLS inside TLS)", async () => {
  await assert.rejects(
    () => connect("wss://feed.invalid/", { proxy: "https://127.0.0.1:1/" }),
    { name: "TypeError", message: /TLS inside TLS/ },
  );
});

Deno.test("connect() through an http:// proxy reaches a name only the proxy resolves", async () => {
  await using server = feedServer();
  await using proxy = connectProxy(undefined, { hosts });
  await using ws = await connect(`ws://feed.invalid:${server.port}/a`, { proxy: proxy.url });
  assert.equal(ws.state, "open");
  assert.deepEqual(proxy.targets, [`feed.invalid:${server.port}`]);
});
