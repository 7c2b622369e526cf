import assert from "node:assert/strict";
import {
  type CloseInfo,
  connect,
  ConnectError,
  ConnectionClosedError,
  type Message,
  WebSocketClient,
} from "../mod.ts";
import { type ConnectionInfo, serve } from "../serve.ts";
import { burstServer, closedPort, silentServer, statusServer } from "./_servers.ts";
import { closePayload, concat, encodeFrame, OP, rawServer } from "./_raw_server.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);

function bytes(n: number): Uint8Array {
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = (i * 31 + 7) & 0xff;
  return data;
}

Deno.test("connect() echoes text and binary of 1 B, 64 KiB and 16 MiB", async (t) => {
  await using server = serve();
  await using ws = await connect(server.url);
  for (const size of [1, 64 * 1024, 16 * 1024 * 1024]) {
    await t.step(`text, ${size} B`, async () => {
      // Exactly `size` bytes of UTF-8: the default maxMessageSize is 16 MiB.
      const text = size > 1 ? "x".repeat(size - 2) + "é" : "x";
      ws.send(text);
      assert.equal(await ws.receive(), text);
    });
    await t.step(`binary, ${size} B`, async () => {
      const data = bytes(size);
      ws.send(data);
      const echoed = await ws.receive();
      assert.ok(echoed instanceof Uint8Array);
      assert.deepEqual(echoed, data);
    });
  }
  await t.step("ArrayBuffer and other views are sent as binary", async () => {
    ws.send(new Uint16Array([1, 2]).buffer);
    assert.deepEqual(await ws.receive(), new Uint8Array([1, 0, 2, 0]));
    ws.send(new DataView(new Uint8Array([9, 8, 7]).buffer, 1, 2));
    assert.deepEqual(await ws.receive(), new Uint8Array([8, 7]));
  });
});

Deno.test("WebSocketClient delivers every message the server sent before anyone iterated", async () => {
  const messages = Array.from({ length: 500 }, (_, i) => `message ${i}`);
  await using server = burstServer(messages);
  await using ws = await connect(server.url);
  const info = await ws.closed; // everything has arrived, and the server has closed
  assert.equal(info.code, 1000);
  assert.equal(info.initiator, "server");
  const received: Message[] = [];
  for await (const message of ws) received.push(message);
  assert.deepEqual(received, messages);
});

Deno.test("connect() sends headers and subprotocols to the server", async () => {
  let seen: ConnectionInfo | undefined;
  await using server = serve({ onConnect: (info) => (seen = info), protocols: ["v2.wsbeat"] });
  await using ws = await connect(server.url + "/feed?x=1", {
    protocols: ["v1.wsbeat", "v2.wsbeat"],
    headers: { "Authorization": "Bearer s3cret", "X-Trace": "42" },
  });
  assert.equal(ws.protocol, "v2.wsbeat");
  ws.send("sync");
  await ws.receive(); // onConnect has run by the time the echo arrives
  assert.equal(seen?.headers.get("authorization"), "Bearer s3cret");
  assert.equal(seen?.headers.get("x-trace"), "42");
  assert.equal(seen?.path, "/feed?x=1");
  assert.equal(seen?.protocol, "v2.wsbeat");
});

Deno.test("connect() reaches a wss server with a private CA through the client option", async (t) => {
  const cert = await Deno.readTextFile(new URL("localhost.pem", FIXTURES));
  const key = await Deno.readTextFile(new URL("localhost.key", FIXTURES));
  await using server = serve({ cert, key, hostname: "127.0.0.1" });
  assert.match(server.url, /^wss:\/\//);

  await t.step("trusted with caCerts", async () => {
    await using ws = await connect(server.url.replace("127.0.0.1", "localhost"), {
      caCerts: [cert],
    });
    ws.send("over tls");
    assert.equal(await ws.receive(), "over tls");
  });

  await t.step("trusted with a Deno.HttpClient on the native transport", async () => {
    using client = Deno.createHttpClient({ caCerts: [cert] });
    await using ws = await connect(server.url.replace("127.0.0.1", "localhost"), {
      transport: "native",
      client,
    });
    ws.send("over tls");
    assert.equal(await ws.receive(), "over tls");
  });

  await t.step("untrusted: ConnectError of kind tls that says how to trust it", async () => {
    const error = await connect(server.url).catch((e) => e);
    assert.ok(error instanceof ConnectError, String(error));
    assert.equal(error.kind, "tls");
    assert.match(error.message, /^Cannot connect to wss:\/\/127\.0\.0\.1:\d+\/: TLS failed/);
    assert.match(error.message, /UnknownIssuer/);
    assert.match(error.message, /caCerts/);
  });
});

Deno.test("connect() rejects with a ConnectError whose kind names the failure", async (t) => {
  await t.step("refused", async () => {
    const port = closedPort();
    const error = await connect(`ws://127.0.0.1:${port}`).catch((e) => e);
    assert.ok(error instanceof ConnectError);
    assert.equal(error.kind, "refused");
    assert.equal(error.url, `ws://127.0.0.1:${port}/`);
    assert.equal(error.message, `Cannot connect to ws://127.0.0.1:${port}/: connection refused`);
    assert.ok(error.cause instanceof Error);
  });

  for (const status of [403, 500]) {
    await t.step(`HTTP ${status}`, async () => {
      await using server = statusServer(status);
      const error = await connect(server.url).catch((e) => e);
      assert.ok(error instanceof ConnectError);
      assert.equal(error.kind, "status");
      assert.equal(error.status, status);
      assert.equal(
        error.message,
        `Cannot connect to ${server.url}: the server answered HTTP ${status} ${
          status === 403 ? "Forbidden" : "Internal Server Error"
        } instead of switching protocols`,
      );
    });
  }

  await t.step("DNS failure (a host name no resolver can look up)", async () => {
    const url = `ws://${"a".repeat(64)}.invalid/`;
    const error = await connect(url).catch((e) => e);
    assert.ok(error instanceof ConnectError);
    assert.equal(error.kind, "dns");
    assert.match(error.message, /: host name not found \(DNS error\)$/);
  });

  await t.step("a server that accepts TCP and never answers: timeout", async () => {
    await using server = silentServer();
    const error = await connect(server.url, { connectTimeout: 100 }).catch((e) => e);
    assert.ok(error instanceof ConnectError);
    assert.equal(error.kind, "timeout");
    assert.equal(
      error.message,
      `Cannot connect to ${server.url}: no handshake within 100 ms (connectTimeout); ` +
        "is the server up and speaking WebSocket on that port?",
    );
  });

  await t.step("close() while connecting: aborted", async () => {
    await using server = silentServer();
    const ws = new WebSocketClient(new WebSocket(server.url));
    await server.accepted;
    const closing = ws.close();
    const error = await ws.opened.catch((e) => e);
    assert.ok(error instanceof ConnectError);
    assert.equal(error.kind, "aborted");
    const info = await closing;
    assert.equal(info.code, 1006);
    assert.equal(info.initiator, "client");
    assert.equal(info.error, error);
  });
});

Deno.test("connect() rejects with the signal's reason when aborted", async (t) => {
  await t.step("while connecting", async () => {
    await using server = silentServer();
    const controller = new AbortController();
    const connecting = connect(server.url, { signal: controller.signal });
    await server.accepted;
    const reason = new Error("user gave up");
    controller.abort(reason);
    await assert.rejects(connecting, (e) => e === reason);
  });
  await t.step("before starting", async () => {
    const reason = new Error("already");
    await assert.rejects(
      connect("ws://127.0.0.1:1/", { signal: AbortSignal.abort(reason) }),
      (e) => e === reason,
    );
  });
  await t.step("once open, the signal closes the connection with 1000", async () => {
    await using server = serve();
    const controller = new AbortController();
    const ws = await connect(server.url, { signal: controller.signal });
    controller.abort();
    const info = await ws.closed;
    assert.equal(info.code, 1000);
    assert.equal(info.initiator, "client");
    await ws.close();
  });
});

Deno.test("connect() rejects bad input with an error that names the value", async (t) => {
  await t.step("invalid URL", async () => {
    await assert.rejects(connect("not a url"), { name: "SyntaxError", message: /not a url/ });
  });
  await t.step("wrong scheme", async () => {
    await assert.rejects(connect("ftp://127.0.0.1/"), { name: "SyntaxError", message: /ftp:/ });
  });
  await t.step("url of the wrong type", async () => {
    await assert.rejects(connect(42 as unknown as string), {
      name: "TypeError",
      message: "Cannot connect to url as it is not a string or URL: current value is 42",
    });
  });
  await t.step("negative connectTimeout", async () => {
    await assert.rejects(connect("ws://127.0.0.1/", { connectTimeout: -1 }), {
      name: "RangeError",
      message: /connectTimeout as it is not a number of milliseconds .*: current value is -1$/,
    });
  });
  await t.step("maxQueuedMessages of 0", async () => {
    await assert.rejects(connect("ws://127.0.0.1/", { maxQueuedMessages: 0 }), {
      name: "RangeError",
      message: /maxQueuedMessages .* current value is 0/,
    });
  });
  await t.step("heartbeat interval that is not a number", async () => {
    await assert.rejects(
      connect("ws://127.0.0.1/", { heartbeat: { interval: "10" as unknown as number } }),
      { name: "TypeError", message: /heartbeat\.interval .* current value is 10/ },
    );
  });
});

Deno.test("WebSocketClient.send() throws instead of dropping data", async (t) => {
  await using server = serve();
  const ws = await connect(server.url);
  await t.step("data of the wrong type: TypeError", () => {
    assert.throws(() => ws.send(42 as unknown as string), {
      name: "TypeError",
      message: /not a string, ArrayBuffer or view: current value is \[object Number\]/,
    });
  });
  await ws.close();
  await t.step("after close: ConnectionClosedError", () => {
    assert.throws(() => ws.send("late"), (error) => {
      assert.ok(error instanceof ConnectionClosedError);
      assert.equal(error.code, 1000);
      assert.match(
        error.message,
        /^Cannot send as the connection is not open: current state is closed/,
      );
      return true;
    });
  });
  await t.step("ping after close: ConnectionClosedError", async () => {
    await assert.rejects(ws.ping(), ConnectionClosedError);
  });
});

Deno.test("WebSocketClient ends iteration quietly on a normal close", async (t) => {
  await t.step("client close(1000)", async () => {
    await using server = serve();
    const ws = await connect(server.url);
    ws.send("one");
    const received: Message[] = [];
    const reading = (async () => {
      for await (const message of ws) {
        received.push(message);
        await ws.close();
      }
    })();
    await reading;
    assert.deepEqual(received, ["one"]);
    const info = await ws.closed;
    assert.deepEqual(info, { code: 1000, reason: "", wasClean: true, initiator: "client" });
    assert.equal(ws.state, "closed");
    await assert.rejects(ws.receive(), { name: "ConnectionClosedError", code: 1000 });
  });
  await t.step("server shutting down (1001)", async () => {
    const server = serve();
    const ws = await connect(server.url);
    await server.close();
    const received: Message[] = [];
    for await (const message of ws) received.push(message);
    assert.deepEqual(received, []);
    const info = await ws.closed;
    assert.equal(info.code, 1001);
    assert.equal(info.reason, "server shutting down");
    assert.equal(info.initiator, "server");
  });
});

Deno.test("WebSocketClient rejects iteration with the code when the server closes with 4001", async () => {
  await using server = serve({ closeWith: { code: 4001, reason: "bye" } });
  await using ws = await connect(server.url);
  ws.send("first");
  const received: Message[] = [];
  const error = await (async () => {
    for await (const message of ws) received.push(message);
  })().catch((e) => e);
  assert.deepEqual(received, ["first"]); // messages before the close are delivered
  assert.ok(error instanceof ConnectionClosedError);
  assert.equal(error.code, 4001);
  assert.equal(error.reason, "bye");
  assert.equal(error.message, "Connection closed by the server with code 4001 (bye)");
  assert.deepEqual(await ws.closed, {
    code: 4001,
    reason: "bye",
    wasClean: true,
    initiator: "server",
  });
});

Deno.test("WebSocketClient reports an abrupt drop as 1006", async () => {
  await using server = serve({ dropAfter: 2 });
  await using ws = await connect(server.url);
  for (const m of ["a", "b", "c"]) ws.send(m);
  const received: Message[] = [];
  const error = await (async () => {
    for await (const message of ws) received.push(message);
  })().catch((e) => e);
  assert.deepEqual(received, ["a", "b"]);
  assert.ok(error instanceof ConnectionClosedError);
  assert.equal(error.code, 1006);
  assert.match(error.message, /^Connection lost without a closing handshake \(1006\)/);
  const info = await ws.closed;
  assert.equal(info.code, 1006);
  assert.equal(info.wasClean, false);
  assert.equal(info.initiator, "network");
  assert.ok(info.error instanceof Error);
});

Deno.test("WebSocketClient stops reading when the consumer falls behind, and loses nothing", async (t) => {
  // The server sends a burst in one write; the client's queue bound is far below it.
  for (
    const [name, bound, count, size] of [
      ["maxQueuedMessages", { maxQueuedMessages: 4 }, 200, 10],
      ["maxQueuedBytes", { maxQueuedBytes: 4096 }, 40, 1024],
    ] as const
  ) {
    await t.step(name, async () => {
      const messages = Array.from({ length: count }, (_, i) => String(i).padEnd(size, "."));
      await using server = rawServer(async (peer) => {
        await peer.sendRaw(
          concat(messages.map((m) => encodeFrame({ opcode: OP.TEXT, payload: m }))),
        );
        await peer.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1000) });
        await peer.expectClose();
        peer.close();
      });
      await using ws = await connect(server.url, bound);
      const received: Message[] = [];
      for await (const message of ws) received.push(message);
      assert.deepEqual(received, messages);
      assert.ok(ws.stats.readPauses >= 1, `readPauses: ${ws.stats.readPauses}`);
      assert.equal((await ws.closed).code, 1000);
      await server.done;
    });
  }
});

Deno.test("WebSocketClient on the native transport closes when the consumer falls behind", async () => {
  const messages = Array.from({ length: 50 }, (_, i) => String(i));
  await using server = burstServer(messages);
  await using ws = await connect(server.url, { maxQueuedMessages: 10, transport: "native" });
  const info = await ws.closed;
  assert.equal(info.initiator, "client");
  assert.equal(info.code, 1006);
  assert.ok(info.error instanceof ConnectionClosedError);
  const received: Message[] = [];
  const error = await (async () => {
    for await (const message of ws) received.push(message);
  })().catch((e) => e);
  assert.deepEqual(received, messages.slice(0, 10)); // what was queued is still delivered
  assert.equal(error, info.error);
  assert.equal(
    error.message,
    "Consumer fell behind: 10 received messages were waiting to be read " +
      "(maxQueuedMessages, maxQueuedBytes), and the native transport cannot stop reading; " +
      "read faster, raise the bounds, or use the wsbeat transport",
  );
  await assert.rejects(ws.receive(), (e) => e === info.error);
});

Deno.test("WebSocketClient closes with 1000 at the end of an await using block", async () => {
  const { promise: disconnected, resolve } = Promise.withResolvers<[number, string]>();
  await using server = serve({ onDisconnect: (_, code, reason) => resolve([code, reason]) });
  let client: WebSocketClient;
  {
    await using ws = await connect(server.url);
    client = ws;
    assert.equal(ws.state, "open");
  }
  assert.equal(client.state, "closed");
  assert.deepEqual(await disconnected, [1000, ""]);
});

Deno.test("WebSocketClient.close() gives up on a peer that never answers the handshake", async () => {
  await using server = silentServer({ handshake: true });
  const ws = await connect(server.url, { closeTimeout: 100 });
  const info = await ws.close();
  assert.equal(info.code, 1006);
  assert.equal(info.initiator, "client");
  assert.equal(info.wasClean, false);
  assert.equal(
    info.error?.message,
    "The peer did not finish the closing handshake within 100 ms (closeTimeout)",
  );
  await server.close(); // the runtime releases the socket once TCP closes
  await ws.close(); // ... and close() waits for that, bounded by closeTimeout
});

Deno.test("WebSocketClient.close() rejects codes and reasons a client may not send", async () => {
  await using server = serve();
  await using ws = await connect(server.url);
  await assert.rejects(ws.close(1002), {
    name: "RangeError",
    message: "Cannot close with code 1002 as clients may only send 1000, 1001 or 3000 to 4999",
  });
  await assert.rejects(ws.close(1000, "x".repeat(124)), {
    name: "RangeError",
    message: /must be a string of at most 123 UTF-8 bytes/,
  });
  assert.equal(ws.state, "open");
});

Deno.test("WebSocketClient.close(1001) says the client is going away; the native transport refuses it", async () => {
  const { promise: seen, resolve } = Promise.withResolvers<number>();
  await using server = serve({ onDisconnect: (_info, code) => resolve(code) });
  const ws = await connect(server.url);
  assert.equal((await ws.close(1001, "shutting down")).code, 1001);
  assert.equal(await seen, 1001);
  await using native = await connect(server.url, { transport: "native" });
  await assert.rejects(native.close(1001), {
    name: "RangeError",
    message: "Cannot close with code 1001 on the native transport as the runtime's WebSocket " +
      "sends only 1000 or 3000 to 4999: use 1000, or the wsbeat transport",
  });
  assert.equal(native.state, "open");
});

Deno.test("WebSocketClient.receive() rejects with the signal's reason and keeps the message for later", async () => {
  await using server = serve();
  await using ws = await connect(server.url);
  const reason = new Error("stop waiting");
  const controller = new AbortController();
  const waiting = ws.receive({ signal: controller.signal });
  controller.abort(reason);
  await assert.rejects(waiting, (e) => e === reason);
  ws.send("kept");
  assert.equal(await ws.receive(), "kept");
});

Deno.test("WebSocketClient counts messages, bytes and timing", async (t) => {
  await using server = serve();
  // The native transport's bytes are counted by the client, the wsbeat transport's by its protocol.
  await t.step("native transport", async () => {
    await using ws = await connect(server.url, { transport: "native" });
    for (const m of ["héllo", new Uint8Array(10), "€".repeat(30_000)]) {
      ws.send(m);
      await ws.receive();
    }
    assert.equal(ws.stats.bytesSent, 6 + 10 + 90_000);
    assert.equal(ws.stats.bytesReceived, 6 + 10 + 90_000);
  });
  await t.step("wsbeat transport, lengths of every header size", async () => {
    await using ws = await connect(server.url, { transport: "wsbeat" });
    for (const m of ["é".repeat(60), "€".repeat(300), "€".repeat(30_000)]) {
      ws.send(m);
      await ws.receive();
    }
    assert.equal(ws.stats.bytesSent, 120 + 900 + 90_000);
    assert.equal(ws.stats.bytesReceived, 120 + 900 + 90_000);
  });
  const ws = await connect(server.url);
  ws.send("héllo"); // 6 UTF-8 bytes
  await ws.receive();
  ws.send(new Uint8Array(10));
  await ws.receive();
  await ws.ping(); // a ping frame: not a message
  const stats = ws.stats;
  assert.equal(stats.messagesSent, 2);
  assert.equal(stats.messagesReceived, 2);
  assert.equal(stats.bytesSent, 6 + 10);
  assert.equal(stats.bytesReceived, 6 + 10);
  assert.ok(stats.openMs !== undefined && stats.openMs >= 0);
  assert.ok(stats.openedAt !== undefined && Math.abs(stats.openedAt - Date.now()) < 60_000);
  assert.equal(stats.latency?.samples, 1);
  const info: CloseInfo = await ws.close();
  assert.equal(info.code, 1000);
  const uptime = ws.stats.uptimeMs;
  assert.ok(uptime > 0);
  assert.equal(ws.stats.uptimeMs, uptime); // frozen once closed
});

/**
 * A socket that fails to connect the way Node 22's WebSocket does (undici,
 * seen on Node 22.23.3 in the runtime matrix): `error`, and never `close`.
 * Node 24 (24.21.0) and Bun fire `close` (1006) right after the `error`.
 */
class NoCloseSocket extends EventTarget {
  readyState = 0;
  url = "ws://fake.test/";
  protocol = "";
  extensions = "";
  bufferedAmount = 0;
  binaryType = "blob";
  close(): void {}
  send(): void {}
}

Deno.test("WebSocketClient settles even when the runtime never fires close after a failed connect", async (t) => {
  await t.step("error event only", async () => {
    const socket = new NoCloseSocket();
    const ws = new WebSocketClient(socket as unknown as WebSocket);
    socket.dispatchEvent(
      new ErrorEvent("error", { message: "Received network error or non-101 status code." }),
    );
    const error = await ws.opened.catch((e) => e);
    assert.ok(error instanceof ConnectError);
    assert.equal(error.kind, "network");
    assert.equal(
      error.message,
      "Cannot connect to ws://fake.test/: Received network error or non-101 status code.",
    );
    assert.deepEqual(await ws.closed, {
      code: 1006,
      reason: "",
      wasClean: false,
      initiator: "network",
      error,
    });
  });
  await t.step("connect timeout, and no event at all", async () => {
    const ws = new WebSocketClient(new NoCloseSocket() as unknown as WebSocket, {
      connectTimeout: 20,
    });
    const error = await ws.opened.catch((e) => e);
    assert.ok(error instanceof ConnectError);
    assert.equal(error.kind, "timeout");
  });
});
