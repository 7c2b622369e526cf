// The handshake, visible: ws.response on an open client, ConnectError's status, headers and
// bounded body for a refused upgrade, Retry-After, Origin and the default User-Agent.

import assert from "node:assert/strict";
import { connect, ConnectError, reconnecting, type RetryEvent } from "../mod.ts";
import { feedServer } from "./_connect_proxy.ts";
import { parseRetryAfter } from "../transport/redirect.ts";
import { VERSION } from "../transport/user_agent.ts";

Deno.test("ws.response holds the 101's status, reason and headers", async () => {
  await using server = feedServer();
  await using ws = await connect(server.url);
  assert.equal(ws.response?.status, 101);
  assert.equal(ws.response?.statusText, "Switching Protocols");
  assert.ok(ws.response?.headers instanceof Headers);
  assert.equal(ws.response?.headers.get("x-feed-version"), "7");
});

Deno.test("ConnectError carries a refused upgrade's headers, bounded body and Retry-After", async () => {
  await using server = feedServer({
    "/busy": () =>
      new Response("slow down", { status: 429, headers: { "retry-after": "2", "x-why": "rate" } }),
    "/big": () => new Response("x".repeat(10_000), { status: 403 }),
  });
  const error = await connect(`${server.url}/busy?token=secret`).catch((e) => e);
  assert.ok(error instanceof ConnectError);
  assert.equal(error.status, 429);
  assert.equal(error.headers?.get("x-why"), "rate");
  assert.equal(error.body, "slow down");
  assert.equal(error.retryAfter, 2000);
  assert.doesNotMatch(error.message, /secret|slow down/);
  const big = await connect(`${server.url}/big`).catch((e) => e);
  assert.equal(big.status, 403);
  assert.equal(big.body.length, 4096);
  assert.equal(big.retryAfter, undefined);
});

Deno.test("parseRetryAfter() reads seconds and HTTP dates", () => {
  assert.equal(parseRetryAfter("120"), 120_000);
  const now = Date.UTC(2026, 0, 1);
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now), 5000);
  assert.equal(parseRetryAfter("Wed, 31 Dec 2025 00:00:00 GMT", now), 0);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter("later"), undefined);
});

Deno.test("reconnecting() waits at least the server's Retry-After, and onRetry says so", async () => {
  let refused = 0;
  await using server = feedServer({
    "/": () => {
      refused++;
      return refused === 1
        ? new Response("busy", { status: 503, headers: { "retry-after": "1" } })
        : new Response(null, { status: 404 }); // not retried: ends the loop
    },
  });
  const retries: RetryEvent[] = [];
  const started = performance.now();
  const error = await (async () => {
    for await (const _ of reconnecting(server.url + "/", { onRetry: (e) => retries.push(e) })) {
      // never opens
    }
  })().catch((e) => e);
  const waited = performance.now() - started;
  assert.ok(error instanceof ConnectError && error.status === 404, String(error));
  assert.equal(retries.length, 1);
  assert.equal(retries[0]!.retryAfter, 1000);
  assert.ok(retries[0]!.delay >= 1000, `delay ${retries[0]!.delay}`);
  assert.ok(waited >= 990, `waited ${waited} ms`);
});

Deno.test("connect() sends origin and a User-Agent naming wsbeat, its version and Deno", async () => {
  await using server = feedServer();
  await using ws = await connect(server.url, { origin: "https://app.example" });
  const seen = server.seen[0]!.headers;
  assert.equal(seen.get("origin"), "https://app.example");
  assert.equal(seen.get("user-agent"), `wsbeat/${VERSION} Deno/${Deno.version.deno}`);
  await using custom = await connect(server.url, { headers: { "User-Agent": "feed-bot/2" } });
  assert.equal(server.seen[1]!.headers.get("user-agent"), "feed-bot/2");
  assert.equal(ws.state, "open");
  assert.equal(custom.state, "open");
  await assert.rejects(() => connect(server.url, { origin: "a\nb" }), TypeError);
});

Deno.test("the User-Agent's version is deno.json's", async () => {
  const config = JSON.parse(await Deno.readTextFile("deno.json"));
  assert.equal(VERSION, config.version);
});

Deno.test("ConnectError waits at most a second for a body the server announces and never sends", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const serving = (async () => {
    const conn = await listener.accept();
    held.push(conn);
    await conn.read(new Uint8Array(4096));
    await conn.write(
      new TextEncoder().encode(
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 100\r\nWWW-Authenticate: Bearer\r\n\r\npart",
      ),
    );
  })();
  const started = performance.now();
  const error = await connect(`ws://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`)
    .catch((e) => e);
  const took = performance.now() - started;
  await serving;
  for (const conn of held) conn.close();
  listener.close();
  assert.ok(error instanceof ConnectError);
  assert.equal(error.status, 401);
  assert.equal(error.body, "part");
  assert.equal(error.headers?.get("www-authenticate"), "Bearer");
  assert.ok(took < 3000, `took ${took} ms`);
});
