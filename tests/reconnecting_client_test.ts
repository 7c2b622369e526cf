// ReconnectingClient: send() across reconnects, the bounded queue, the onOpen
// hook before queued sends, iteration across connections, status.
import assert from "node:assert/strict";
import {
  ConnectError,
  ConnectionClosedError,
  type Message,
  ReconnectingClient,
  type ReconnectingStatus,
  SendQueueFullError,
} from "../mod.ts";
import { closedPort, statusServer } from "./_servers.ts";

const fast = { initialDelay: 10, maxDelay: 20, jitter: 0 } as const;

/** What `fn` throws, or `undefined`. */
function thrown(fn: () => void): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

/**
 * A WebSocket server on Deno's own `Deno.serve` (not wsbeat's echo server),
 * on a port that can be reused after `stop()`: records each text message and
 * echoes it prefixed with `name`.
 */
function recorder(name: string, port = 0) {
  const received: string[] = [];
  const sockets = new Set<WebSocket>();
  const closed: Promise<void>[] = [];
  let onMessage = () => {};
  const server = Deno.serve({ port, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    sockets.add(socket);
    closed.push(new Promise((resolve) => socket.addEventListener("close", () => resolve())));
    socket.onmessage = (event) => {
      received.push(event.data);
      socket.send(`${name}:${event.data}`);
      onMessage();
    };
    return response;
  });
  return {
    url: `ws://127.0.0.1:${server.addr.port}/`,
    port: server.addr.port,
    received,
    /** Resolves once `n` messages have arrived in all. */
    got(n: number): Promise<void> {
      if (received.length >= n) return Promise.resolve();
      return new Promise((resolve) => {
        onMessage = () => received.length >= n && resolve();
      });
    },
    /** Closes every connection with 1001 and stops listening. */
    async stop(): Promise<void> {
      for (const socket of sockets) socket.close(1001, "restarting");
      await Promise.all(closed);
      await server.shutdown();
    },
  };
}

/** Records the statuses; `reach(s)` resolves when `s` comes next (or is current). */
function statusLog() {
  const seen: ReconnectingStatus[] = [];
  const waiters: [ReconnectingStatus, () => void][] = [];
  return {
    seen,
    onStatus: (status: ReconnectingStatus) => {
      seen.push(status);
      for (const [wanted, resolve] of waiters.splice(0)) {
        if (wanted === status) resolve();
        else waiters.push([wanted, resolve]);
      }
    },
    reach: (status: ReconnectingStatus) =>
      new Promise<void>((resolve) => waiters.push([status, resolve])),
  };
}

Deno.test("ReconnectingClient delivers every message sent while the server was down once, in order, after the onOpen hook", async () => {
  const first = recorder("A");
  const port = first.port;
  let second: ReturnType<typeof recorder> | undefined;
  const log = statusLog();
  const hooks: string[] = [];
  const client = new ReconnectingClient(first.url, {
    ...fast,
    onStatus: log.onStatus,
    onOpen: async (ws) => {
      hooks.push(ws.url);
      await new Promise((resolve) => setTimeout(resolve, 5)); // e.g. an auth round trip
      ws.send("subscribe");
    },
  });
  try {
    assert.equal(client.status, "connecting");
    await log.reach("open");
    assert.equal(client.client?.state, "open");
    client.send("m1");
    client.send("m2");
    await first.got(3);

    const down = log.reach("backing-off");
    await first.stop();
    await down;
    assert.equal(client.client, undefined);
    for (let i = 1; i <= 5; i++) client.send(`q${i}`);
    assert.deepEqual(client.queued, { messages: 5, bytes: 10 });

    const open = log.reach("open");
    second = recorder("B", port);
    await open;
    await second.got(6);
    assert.deepEqual(client.queued, { messages: 0, bytes: 0 });
    assert.deepEqual(first.received, ["subscribe", "m1", "m2"]);
    assert.deepEqual(second.received, ["subscribe", "q1", "q2", "q3", "q4", "q5"]);
    assert.equal(hooks.length, 2);

    // Iteration runs across both connections, in order.
    const echoes: Message[] = [];
    for await (const message of client) {
      echoes.push(message);
      if (message === "B:q5") break;
    }
    assert.deepEqual(echoes, [
      "A:subscribe",
      "A:m1",
      "A:m2",
      "B:subscribe",
      "B:q1",
      "B:q2",
      "B:q3",
      "B:q4",
      "B:q5",
    ]);
  } finally {
    await client.close();
    await first.stop();
    await second?.stop();
  }
  assert.equal(client.status, "closed");
  assert.deepEqual(log.seen.slice(0, 2), ["open", "backing-off"]);
  assert.ok(log.seen.includes("connecting"));
  assert.deepEqual(log.seen.slice(-2), ["open", "closed"]);
  await client.closed;
  assert.throws(() => client.send("late"), {
    name: "ConnectionClosedError",
    message: "Cannot send as the ReconnectingClient is closed",
  });
});

Deno.test("ReconnectingClient.send() throws SendQueueFullError when the queue is full, and drops nothing", async (t) => {
  const port = closedPort();
  await t.step("bounded in messages", async () => {
    await using client = new ReconnectingClient(`ws://127.0.0.1:${port}/`, {
      ...fast,
      maxPendingMessages: 3,
    });
    for (const m of ["a", "b", "c"]) client.send(m);
    const error = thrown(() => client.send("d"));
    assert.ok(error instanceof SendQueueFullError);
    assert.equal(error.messages, 3);
    assert.equal(error.bytes, 3);
    assert.equal(
      error.message,
      "Cannot queue the message as the send queue is full: 3 messages (3 bytes) wait for a " +
        "connection; the bounds are maxPendingMessages 3 and maxPendingBytes 1048576",
    );
    assert.deepEqual(client.queued, { messages: 3, bytes: 3 });
  });
  await t.step("bounded in bytes (text as UTF-8)", async () => {
    await using client = new ReconnectingClient(`ws://127.0.0.1:${port}/`, {
      ...fast,
      maxPendingBytes: 10,
    });
    client.send("ééé"); // 6 bytes
    client.send(new Uint8Array(4));
    assert.throws(() => client.send("x"), SendQueueFullError);
    assert.throws(() => client.send(new Uint8Array(11)), SendQueueFullError);
    assert.deepEqual(client.queued, { messages: 2, bytes: 10 });
  });
  await t.step("a queued view is a copy, taken when send() was called", async () => {
    const server = recorderBinary();
    const bytes = new Uint8Array([1, 2, 3]);
    const client = new ReconnectingClient(`ws://127.0.0.1:${closedPort()}/`, {
      ...fast,
      prepare: ({ attempt }) => attempt === 1 ? undefined : { url: server.url },
    });
    client.send(bytes);
    bytes[0] = 9;
    await server.first;
    await client.close();
    await server.stop();
    assert.deepEqual(server.received, [[1, 2, 3]]);
  });
});

/** Records the first binary message. */
function recorderBinary() {
  const received: number[][] = [];
  const { promise: first, resolve } = Promise.withResolvers<void>();
  const closed: Promise<void>[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer";
    closed.push(new Promise((r) => socket.addEventListener("close", () => r())));
    socket.onmessage = (event) => {
      received.push([...new Uint8Array(event.data)]);
      resolve();
    };
    return response;
  });
  return {
    url: `ws://127.0.0.1:${server.addr.port}/`,
    received,
    first,
    stop: async () => {
      await Promise.all(closed);
      await server.shutdown();
    },
  };
}

Deno.test("ReconnectingClient gives up like reconnecting(): closed and iteration reject, status closed", async () => {
  await using server = statusServer(403);
  const log = statusLog();
  const client = new ReconnectingClient(server.url, { ...fast, onStatus: log.onStatus });
  const error = await client.closed.catch((e) => e);
  assert.ok(error instanceof ConnectError);
  assert.equal(error.status, 403);
  assert.equal(client.status, "closed");
  assert.deepEqual(log.seen, ["closed"]);
  await assert.rejects(client[Symbol.asyncIterator]().next(), ConnectError);
  const sendError = thrown(() => client.send("x"));
  assert.ok(sendError instanceof ConnectionClosedError);
  assert.equal(sendError.cause, error);
  await client.close(); // resolves: already over
});

Deno.test("ReconnectingClient.drain() waits for the next connection and the flush", async () => {
  const refused = `ws://127.0.0.1:${closedPort()}/`;
  const server = recorder("A");
  let attempts = 0;
  const client = new ReconnectingClient(refused, {
    ...fast,
    prepare: () => (++attempts < 3 ? undefined : { url: server.url }),
  });
  client.send("one");
  client.send("two");
  await client.drain();
  assert.equal(attempts, 3);
  assert.deepEqual(client.queued, { messages: 0, bytes: 0 });
  await server.got(2);
  assert.deepEqual(server.received, ["one", "two"]);
  await client.close();
  await server.stop();
  await assert.rejects(client.drain(), ConnectionClosedError);
});

Deno.test("ReconnectingClient with receive: false drops what arrives and cannot be iterated", async () => {
  const server = recorder("A");
  const log = statusLog();
  const client = new ReconnectingClient(server.url, {
    ...fast,
    receive: false,
    onStatus: log.onStatus,
  });
  await log.reach("open");
  client.send("x"); // echoed, and dropped
  await server.got(1);
  assert.throws(() => client[Symbol.asyncIterator](), {
    name: "TypeError",
    message: "Cannot iterate the messages as the ReconnectingClient was made with receive: false",
  });
  await client.close(4000, "bye");
  await server.stop();
});

Deno.test("ReconnectingClient closes with the code given, and an onOpen that throws ends it", async (t) => {
  await t.step("close(4000, reason)", async () => {
    const codes: number[] = [];
    const server = recorder("A");
    const log = statusLog();
    const client = new ReconnectingClient(server.url, { ...fast, onStatus: log.onStatus });
    await log.reach("open");
    const ws = client.client!;
    await client.close(4000, "bye");
    codes.push((await ws.closed).code);
    await server.stop();
    assert.deepEqual(codes, [4000]);
    assert.deepEqual(log.seen, ["open", "closed"]);
  });
  await t.step("onOpen throws", async () => {
    const server = recorder("A");
    const client = new ReconnectingClient(server.url, {
      ...fast,
      onOpen: () => {
        throw new Error("subscription refused");
      },
    });
    await assert.rejects(client.closed, { message: "subscription refused" });
    assert.equal(client.status, "closed");
    await server.stop();
  });
  await t.step("bad options throw at once", () => {
    assert.throws(() => new ReconnectingClient("ws://x", { maxPendingMessages: 0 }), {
      name: "RangeError",
      message:
        "Cannot use maxPendingMessages as it is not a whole number of at least 1 or Infinity: current value is 0",
    });
    assert.throws(() => new ReconnectingClient("ws://x", { maxDelay: 1 }), RangeError);
    assert.throws(
      () => new ReconnectingClient("ws://x", { onOpen: "x" as unknown as undefined }),
      TypeError,
    );
  });
});
