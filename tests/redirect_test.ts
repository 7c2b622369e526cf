// Redirects (301, 302, 303, 307, 308) followed up to maxRedirects, never from wss: to ws:,
// Authorization and Cookie dropped off the origin, a loop named.

import assert from "node:assert/strict";
import { connect, ConnectError } from "../mod.ts";
import { feedServer } from "./_connect_proxy.ts";
import { redirectTarget } from "../transport/redirect.ts";

const to = (location: string, status = 302) => () =>
  new Response(null, { status, headers: { location } });

Deno.test("connect() follows 301, 302, 303, 307 and 308 to the landing path", async () => {
  for (const status of [301, 302, 303, 307, 308]) {
    await using server = feedServer({ "/old": to("/new?via=redirect", status) });
    await using ws = await connect(`${server.url}/old`);
    assert.equal(ws.url, `${server.url}/new?via=redirect`, `status ${status}`);
    assert.deepEqual(server.seen.map((s) => s.path), ["/old", "/new?via=redirect"]);
    ws.send("landed");
    assert.equal(await ws.receive(), "landed");
  }
});

Deno.test("connect() keeps Authorization on the origin and drops it (and Cookie) off it", async () => {
  await using other = feedServer();
  await using server = feedServer({
    "/a": to("/b"),
    "/b": to(`http://localhost:${other.port}/c`),
  });
  await using ws = await connect(`${server.url}/a`, {
    headers: { Authorization: "Bearer t", Cookie: "s=1", "X-Feed": "kept" },
  });
  assert.equal(ws.state, "open");
  assert.equal(server.seen[1]!.headers.get("authorization"), "Bearer t");
  const landed = other.seen[0]!.headers;
  assert.equal(landed.get("authorization"), null);
  assert.equal(landed.get("cookie"), null);
  assert.equal(landed.get("x-feed"), "kept");
  assert.equal(ws.url, `ws://localhost:${other.port}/c`);
});

Deno.test("connect() ends a redirect loop with a ConnectError that says so", async () => {
  await using server = feedServer({ "/a": to("/b"), "/b": to("/a") });
  const error = await connect(`${server.url}/a`).catch((e) => e);
  assert.ok(error instanceof ConnectError);
  assert.equal(error.kind, "status");
  assert.equal(error.status, 302);
  assert.match(error.message, /visited already: the server redirects in a loop/);
});

Deno.test("connect() follows at most maxRedirects, and none with 0", async () => {
  await using server = feedServer({ "/1": to("/2"), "/2": to("/3"), "/3": to("/4") });
  const error = await connect(`${server.url}/1`, { maxRedirects: 2 }).catch((e) => e);
  assert.ok(error instanceof ConnectError);
  assert.match(error.message, /too many redirects \(more than 2, maxRedirects\)/);
  assert.equal(server.seen.length, 3);
  const none = await connect(`${server.url}/1`, { maxRedirects: 0 }).catch((e) => e);
  assert.match(none.message, /redirects are not followed \(maxRedirects is 0\)/);
  assert.equal(none.headers.get("location"), "/2");
  await assert.rejects(() => connect(server.url, { maxRedirects: -1 }), RangeError);
});

Deno.test("redirectTarget() never leaves wss: for ws:, and maps http(s): to ws(s):", () => {
  const from = new URL("wss://feed.example/old");
  assert.throws(() => redirectTarget(from, "ws://feed.example/new", "wss://feed.example/old"), {
    name: "ConnectError",
    message: /redirected from wss: to ws:\/\/feed\.example\/new; a redirect never leaves TLS/,
  });
  assert.equal(redirectTarget(from, "https://b.example/x", "").href, "wss://b.example/x");
  assert.equal(redirectTarget(new URL("ws://a/"), "wss://b/", "").href, "wss://b/");
  assert.throws(() => redirectTarget(from, "ftp://b.example/", ""), /not a WebSocket URL/);
});

Deno.test("connect() refuses a redirect from wss: to ws: end to end", async () => {
  const cert = await Deno.readTextFile("tests/fixtures/localhost.pem");
  const key = await Deno.readTextFile("tests/fixtures/localhost.key");
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert, key, onListen() {} },
    () => new Response(null, { status: 302, headers: { location: "ws://localhost:9/plain" } }),
  );
  try {
    const error = await connect(`wss://localhost:${server.addr.port}/`, { caCerts: [cert] })
      .catch((e) => e);
    assert.ok(error instanceof ConnectError);
    assert.match(error.message, /a redirect never leaves TLS/);
  } finally {
    await server.shutdown();
  }
});
