import assert from "node:assert/strict";
import { connect, type Message } from "../mod.ts";
import { serve } from "../serve.ts";

Deno.test("serve() answers plain HTTP with 426 and a hint", async () => {
  await using server = serve();
  const response = await fetch(server.url.replace("ws:", "http:"));
  assert.equal(response.status, 426);
  assert.equal(await response.text(), "wsbeat echo server: connect with a WebSocket client\n");
});

Deno.test("serve() answers the pong option's ping with its pong and echoes the rest", async () => {
  await using server = serve({ pong: { ping: "hb", pong: "ok" } });
  await using ws = await connect(server.url);
  ws.send("hb");
  ws.send("other");
  assert.equal(await ws.receive(), "ok");
  assert.equal(await ws.receive(), "other");
});

Deno.test("serve() accepts the client's first subprotocol when it has no list", async () => {
  await using server = serve();
  await using ws = await connect(server.url, { protocols: ["a.v1", "b.v1"] });
  assert.equal(ws.protocol, "a.v1");
});

Deno.test("serve() counts connections and reports each disconnect", async () => {
  const closes: number[] = [];
  await using server = serve({ onDisconnect: (_, code) => closes.push(code) });
  const a = await connect(server.url);
  const b = await connect(server.url);
  a.send("x");
  b.send("x");
  await Promise.all([a.receive(), b.receive()]);
  assert.equal(server.connections, 2);
  await a.close(3001, "done");
  await server.close();
  assert.deepEqual((await b.closed).code, 1001);
  assert.deepEqual(closes.sort(), [1001, 3001]);
  assert.equal(server.connections, 0);
});

Deno.test("serve() with dropAfter delivers exactly n messages, then cuts TCP, on every connection", async () => {
  await using server = serve({ dropAfter: 3 });
  for (let round = 0; round < 3; round++) {
    await using ws = await connect(server.url);
    for (let i = 0; i < 5; i++) ws.send(`${round}:${i}`);
    const received: Message[] = [];
    await (async () => {
      for await (const message of ws) received.push(message);
    })().catch(() => {});
    assert.deepEqual(received, [`${round}:0`, `${round}:1`, `${round}:2`]);
    assert.equal((await ws.closed).code, 1006);
  }
});

Deno.test("serve() with dropAfter counts large and empty messages as one each", async () => {
  await using server = serve({ dropAfter: 3 });
  await using ws = await connect(server.url);
  const big = "y".repeat(200_000);
  for (const m of ["", big, "z", "never"]) ws.send(m);
  const received: Message[] = [];
  await (async () => {
    for await (const message of ws) received.push(message);
  })().catch(() => {});
  assert.deepEqual(received, ["", big, "z"]);
});

Deno.test("serve() stops when its signal aborts", async () => {
  const controller = new AbortController();
  const server = serve({ signal: controller.signal });
  const ws = await connect(server.url);
  controller.abort();
  assert.equal((await ws.closed).code, 1001);
  await server.close(); // the same close, already under way
});

Deno.test("serve() rejects bad options", () => {
  assert.throws(() => serve({ stallAfter: -1 }), {
    name: "RangeError",
    message: "Cannot use stallAfter as it is not a whole number of at least 0: current value is -1",
  });
  assert.throws(() => serve({ cert: "x" }), {
    name: "TypeError",
    message: "Cannot serve wss: as cert and key must be given together",
  });
});
