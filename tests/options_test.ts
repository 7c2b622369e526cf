// The options pipeline (client/options.ts): every entry resolves its options
// once into a frozen object the layers below only read; a bad option is the
// same error from every entry.

import assert from "node:assert/strict";
import { connect, reconnecting, ReconnectingClient, WebSocketClient } from "../mod.ts";
import { serve } from "../serve.ts";
import { resolveClientOptions, resolveConnectOptions } from "../client/resolve.ts";

/** The options, behind a proxy that counts the reads of each one. */
function counted<T extends object>(options: T): { options: T; reads: Map<string, number> } {
  const reads = new Map<string, number>();
  const proxy = new Proxy(options, {
    get(target, key, receiver) {
      if (typeof key === "string") reads.set(key, (reads.get(key) ?? 0) + 1);
      return Reflect.get(target, key, receiver);
    },
  });
  return { options: proxy, reads };
}

function assertReadOnce(reads: Map<string, number>, names: string[]): void {
  for (const name of names) {
    assert.equal(reads.get(name), 1, `${name} read ${reads.get(name)} times`);
  }
  for (const [name, n] of reads) assert.ok(n <= 1, `${name} read ${n} times`);
}

const CLIENT_NAMES = [
  "connectTimeout",
  "closeTimeout",
  "heartbeat",
  "staleAfter",
  "maxQueuedMessages",
  "maxQueuedBytes",
  "sendHighWaterMark",
  "quietEnd",
  "signal",
];

Deno.test("connect() reads and checks each option once, for the client and the transport", async () => {
  await using server = serve();
  for (const transport of ["wsbeat", "native"] as const) {
    const { options, reads } = counted({
      transport,
      connectTimeout: 2_000,
      heartbeat: { interval: 1_000 },
      protocols: ["chat"],
      maxMessageSize: 1024,
    });
    await using ws = await connect(server.url, options);
    ws.send("hi");
    assert.equal(await ws.receive(), "hi");
    assertReadOnce(reads, [...CLIENT_NAMES, "transport", "protocols", "maxMessageSize"]);
  }
});

Deno.test("reconnecting() and ReconnectingClient read each option once, whatever the attempts", async (t) => {
  await using server = serve();
  const fast = { initialDelay: 10, maxDelay: 20, jitter: 0 };
  await t.step("reconnecting(), three connections", async () => {
    const { options, reads } = counted({ ...fast, connectTimeout: 2_000, maxRetries: 5 });
    let connections = 0;
    for await (const ws of reconnecting(server.url, options)) {
      ws.send("x");
      assert.equal(await ws.receive(), "x");
      if (++connections === 3) break;
    }
    assert.equal(connections, 3);
    // Copied once ({ ...options }), then checked on the copy: the options given are read once.
    assertReadOnce(reads, ["initialDelay", "maxDelay", "jitter", "connectTimeout", "maxRetries"]);
  });
  await t.step("ReconnectingClient, two connections", async () => {
    let opened = 0;
    const { promise: twice, resolve } = Promise.withResolvers<void>();
    const { options, reads } = counted({
      ...fast,
      onOpen: (client: WebSocketClient) => {
        if (++opened === 2) resolve();
        else void client.close(4000); // closes the first one: the handle connects again
      },
    });
    const client = new ReconnectingClient(server.url, options);
    await twice;
    await client.close();
    assertReadOnce(reads, ["initialDelay", "maxDelay", "jitter", "onOpen"]);
  });
});

Deno.test("serve() reads and checks each option once", async () => {
  const { options, reads } = counted({ maxConnections: 5, closeTimeout: 500 });
  await using server = serve(options);
  await using ws = await connect(server.url);
  ws.send("hi");
  assert.equal(await ws.receive(), "hi");
  assertReadOnce(reads, ["port", "maxConnections", "closeTimeout", "maxMessageSize", "log"]);
});

Deno.test("WebSocketClient's constructor checks what a caller gives it", async (t) => {
  await using server = serve();
  await t.step("a user's options: read and checked", async () => {
    const { options, reads } = counted({ closeTimeout: 1_000 });
    const socket = new WebSocket(server.url);
    await using ws = new WebSocketClient(socket, options);
    await ws.opened;
    assertReadOnce(reads, CLIENT_NAMES);
  });
  await t.step("a bad option: the same error as from connect()", async () => {
    const socket = new WebSocket(server.url);
    assert.throws(() => new WebSocketClient(socket, { maxQueuedBytes: 0 }), {
      name: "RangeError",
      message: "Cannot use maxQueuedBytes as it is not a whole number of at least 1 " +
        "or Infinity: current value is 0",
    });
    const { promise: closed, resolve } = Promise.withResolvers<void>();
    socket.onclose = () => resolve();
    socket.onopen = () => socket.close();
    await closed;
  });
  await t.step("a frozen object it did not resolve is not taken on trust", () => {
    const forged = Object.freeze({ connectTimeout: -1 });
    assert.throws(() => resolveClientOptions(forged), RangeError);
  });
});

Deno.test("resolved options are frozen, fully defaulted, and not resolved again", () => {
  const checked = resolveConnectOptions({ heartbeat: true, transport: "wsbeat" });
  assert.ok(Object.isFrozen(checked));
  assert.ok(Object.isFrozen(checked.heartbeat));
  assert.ok(Object.isFrozen(checked.protocols));
  assert.equal(checked.heartbeat?.interval, 10_000);
  assert.equal(checked.heartbeat?.timeout, 5_000);
  assert.equal(checked.connectTimeout, 10_000);
  assert.equal(checked.closeTimeout, 5_000);
  assert.equal(checked.maxQueuedMessages, 10_000);
  assert.equal(checked.maxQueuedBytes, 16 * 1024 * 1024);
  assert.equal(checked.sendHighWaterMark, 1024 * 1024);
  assert.equal(checked.maxMessageSize, 16 * 1024 * 1024);
  assert.equal(checked.staleAfter, Infinity);
  assert.equal(checked.quietEnd, false);
  assert.equal(resolveClientOptions(checked), checked);
  assert.equal(resolveConnectOptions({ heartbeat: false }).heartbeat, undefined);
});

Deno.test("a bad subprotocol is the same TypeError from every entry", async () => {
  const message = 'Cannot use protocols as one is not a token: current value is "a b"';
  const error = { name: "TypeError", message };
  await assert.rejects(connect("ws://127.0.0.1:9/", { protocols: ["a b"] }), error);
  await assert.rejects(
    connect("ws://127.0.0.1:9/", { protocols: "a b", transport: "native" }),
    error,
  );
  await assert.rejects(reconnecting("ws://127.0.0.1:9/", { protocols: ["a b"] }).next(), error);
  assert.throws(() => new ReconnectingClient("ws://127.0.0.1:9/", { protocols: ["a b"] }), error);
  assert.throws(() => serve({ protocols: ["a b"] }), error);
  await assert.rejects(connect("ws://127.0.0.1:9/", { protocols: ["a", "a"] }), {
    name: "TypeError",
    message: 'Cannot use protocols as one is repeated: current value is "a"',
  });
});

Deno.test("maxMessageSize 0 is refused by connect() and serve() alike", async () => {
  const error = {
    name: "RangeError",
    message: "Cannot use maxMessageSize as it is not a whole number of at least 1 " +
      "or Infinity: current value is 0",
  };
  await assert.rejects(connect("ws://127.0.0.1:9/", { maxMessageSize: 0 }), error);
  assert.throws(() => serve({ maxMessageSize: 0 }), error);
});
