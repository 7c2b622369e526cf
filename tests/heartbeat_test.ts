import assert from "node:assert/strict";
import {
  connect,
  ConnectionClosedError,
  failAfter,
  heartbeat,
  type Message,
  type Pingable,
  sleep,
  TooSlowError,
} from "../mod.ts";
import { serve } from "../serve.ts";
import { closePayload, OP, rawServer } from "./_raw_server.ts";
import { silentServer } from "./_servers.ts";

Deno.test("sleep() resolves after the delay", async () => {
  const start = performance.now();
  await sleep(20);
  assert.ok(performance.now() - start >= 19);
});

Deno.test("sleep() rejects with the signal's reason when aborted", async (t) => {
  await t.step("while sleeping", async () => {
    const controller = new AbortController();
    const sleeping = sleep(60_000, { signal: controller.signal });
    const reason = new Error("wake up");
    controller.abort(reason);
    await assert.rejects(sleeping, (e) => e === reason);
  });
  await t.step("already aborted", async () => {
    const reason = new Error("never");
    await assert.rejects(sleep(10, { signal: AbortSignal.abort(reason) }), (e) => e === reason);
  });
  await t.step("Infinity sleeps until aborted", async () => {
    const controller = new AbortController();
    const sleeping = sleep(Infinity, { signal: controller.signal });
    controller.abort("done");
    await assert.rejects(sleeping, (e) => e === "done");
  });
});

Deno.test("sleep() rejects bad delays", () => {
  assert.throws(() => sleep(-1), {
    name: "RangeError",
    message:
      "Cannot use ms as it is not a number of milliseconds from 0 to 2147483647 or Infinity: current value is -1",
  });
  assert.throws(() => sleep(NaN), {
    name: "TypeError",
    message: "Cannot use ms as it is not a number of milliseconds: current value is NaN",
  });
  assert.throws(() => sleep(2 ** 31), { name: "RangeError" });
});

Deno.test("failAfter() resolves with what fn resolves to", async () => {
  assert.equal(await failAfter(1_000, () => Promise.resolve("done")), "done");
});

Deno.test("failAfter() rejects with TooSlowError and aborts fn's signal when time is up", async () => {
  let seen: unknown;
  const error = await failAfter(20, (signal) => {
    signal.addEventListener("abort", () => (seen = signal.reason), { once: true });
    return sleep(60_000, { signal });
  }).catch((e) => e);
  assert.ok(error instanceof TooSlowError);
  assert.equal(error.timeout, 20);
  assert.equal(error.message, "Operation did not finish within 20 ms");
  assert.equal(seen, error);
});

Deno.test("failAfter() uses the error option's error when time is up", async () => {
  const error = await failAfter(
    5,
    (signal) => sleep(60_000, { signal }),
    { error: (ms) => new TooSlowError(ms, `custom ${ms}`) },
  ).catch((e) => e);
  assert.equal(error.message, "custom 5");
});

Deno.test("failAfter() rejects with the signal's reason when aborted", async (t) => {
  await t.step("while running", async () => {
    const controller = new AbortController();
    const reason = new Error("cancelled");
    let inner: unknown;
    const running = failAfter(60_000, (signal) => {
      signal.addEventListener("abort", () => (inner = signal.reason), { once: true });
      return sleep(60_000, { signal });
    }, { signal: controller.signal });
    controller.abort(reason);
    await assert.rejects(running, (e) => e === reason);
    assert.equal(inner, reason);
  });
  await t.step("already aborted: fn is not run", async () => {
    let ran = false;
    const reason = new Error("before");
    await assert.rejects(
      failAfter(10, () => {
        ran = true;
        return Promise.resolve();
      }, { signal: AbortSignal.abort(reason) }),
      (e) => e === reason,
    );
    assert.equal(ran, false);
  });
});

Deno.test("failAfter() passes on fn's own failure, thrown or rejected", async () => {
  await assert.rejects(failAfter(100, () => Promise.reject(new Error("async"))), {
    message: "async",
  });
  await assert.rejects(
    failAfter(100, () => {
      throw new Error("sync");
    }),
    { message: "sync" },
  );
});

Deno.test("failAfter() rejects bad arguments", () => {
  assert.throws(() => failAfter(10, "nope" as unknown as () => Promise<void>), {
    name: "TypeError",
    message: "Cannot run fn as it is not a function: current value is nope",
  });
  assert.throws(() => failAfter(-5, () => Promise.resolve()), {
    name: "RangeError",
    message: /current value is -5/,
  });
});

/** A fake peer whose replies the test controls. */
function fakePeer(
  answer: (n: number, signal?: AbortSignal) => Promise<number>,
): Pingable & { calls: number } {
  const peer = {
    calls: 0,
    ping(options: { signal?: AbortSignal } = {}) {
      return answer(++peer.calls, options.signal);
    },
  };
  return peer;
}

Deno.test("heartbeat() beats until the signal aborts, then resolves", async () => {
  const controller = new AbortController();
  const rtts: number[] = [];
  const peer = fakePeer((n) => {
    if (n === 5) controller.abort();
    return Promise.resolve(n);
  });
  await heartbeat(peer, {
    interval: 1,
    timeout: 100,
    signal: controller.signal,
    onBeat: (rtt) => rtts.push(rtt),
  });
  assert.equal(peer.calls, 5);
  assert.deepEqual(rtts, [1, 2, 3, 4]); // the fifth beat was cancelled mid-ping
});

Deno.test("heartbeat() rejects with TooSlowError when a reply is late", async () => {
  const peer = fakePeer((n, signal) =>
    n < 3 ? Promise.resolve(0) : sleep(60_000, { signal }).then(() => 0)
  );
  const error = await heartbeat(peer, { interval: 1, timeout: 30 }).catch((e) => e);
  assert.ok(error instanceof TooSlowError);
  assert.equal(error.timeout, 30);
  assert.equal(
    error.message,
    "Heartbeat reply not received within 30 ms (timeout); the peer is not responding",
  );
  assert.equal(peer.calls, 3);
});

Deno.test("heartbeat() beats again instead of failing while excuseLate excuses a late reply", async (t) => {
  await t.step("excused: waits for the promise, then a fresh beat", async () => {
    // Beat 1 is late and excused; beat 2 answers; beat 3 is late and not excused.
    const peer = fakePeer((n, signal) =>
      n === 2 ? Promise.resolve(0) : sleep(60_000, { signal }).then(() => 0)
    );
    const asked: number[] = [];
    const error = await heartbeat(peer, {
      interval: 1,
      timeout: 20,
      excuseLate: () => {
        asked.push(peer.calls);
        return peer.calls === 1 ? Promise.resolve() : undefined;
      },
    }).catch((e) => e);
    assert.ok(error instanceof TooSlowError);
    assert.deepEqual(asked, [1, 3]);
    assert.equal(peer.calls, 3);
  });
  await t.step("the signal ends the wait for an excuse", async () => {
    const peer = fakePeer((_, signal) => sleep(60_000, { signal }).then(() => 0));
    const stop = new AbortController();
    const beating = heartbeat(peer, {
      timeout: 10,
      signal: stop.signal,
      excuseLate: () => {
        stop.abort();
        return new Promise(() => {}); // never settles: only the signal ends the wait
      },
    });
    assert.equal(await beating, undefined);
  });
});

Deno.test("heartbeat() rejects with the ping's error", async () => {
  const closed = new ConnectionClosedError(1006, "", "gone");
  const error = await heartbeat(fakePeer(() => Promise.reject(closed)), { interval: 1 }).catch((
    e,
  ) => e);
  assert.equal(error, closed);
});

Deno.test("heartbeat() rejects something without ping()", async () => {
  await assert.rejects(heartbeat({} as Pingable), {
    name: "TypeError",
    message: "Cannot beat on ws as it has no ping() method: current value is [object Object]",
  });
  await assert.rejects(heartbeat(fakePeer(() => Promise.resolve(0)), { interval: -1 }), {
    name: "RangeError",
    message: /Cannot use interval as it is not a number of milliseconds .*: current value is -1$/,
  });
});

Deno.test("a client without a heartbeat is dropped by an idle-timeout server", async () => {
  await using server = serve({ idleTimeout: 150 });
  await using ws = await connect(server.url);
  const info = await ws.closed;
  assert.deepEqual(info, {
    code: 1001,
    reason: "idle timeout",
    wasClean: true,
    initiator: "server",
  });
  assert.ok(ws.stats.uptimeMs >= 140, `closed after ${ws.stats.uptimeMs} ms`);
});

Deno.test("a heartbeat keeps an idle-timeout server's connection open well past its idle limit", async () => {
  const idle = 150;
  await using server = serve({ idleTimeout: idle, pong: { ping: "ping", pong: "pong" } });
  let beats = 0;
  const { promise: enough, resolve } = Promise.withResolvers<void>();
  await using ws = await connect(server.url, {
    heartbeat: {
      interval: 40,
      timeout: 1_000,
      reply: "pong",
      onBeat: () => ++beats === 15 && resolve(),
    },
  });
  await Promise.race([enough, ws.closed]);
  assert.equal(ws.state, "open", "the idle server closed the connection");
  assert.ok(ws.stats.uptimeMs > 3 * idle, `open for ${ws.stats.uptimeMs} ms`);
  assert.equal(ws.stats.latency?.samples, 15);
  const info = await ws.close();
  assert.equal(info.code, 1000);
  assert.equal(info.initiator, "client");
});

Deno.test("a heartbeat finds a stalled server, fails with TooSlowError and closes the client", async (t) => {
  await t.step("wsbeat transport: ping frames", async () => {
    // The server answers three messages, then nothing at all: no echo, no pong, TCP left open.
    await using server = serve({ stallAfter: 3 });
    const ws = await connect(server.url, { heartbeat: { interval: 20, timeout: 100 } });
    for (const text of ["a", "b", "c", "d"]) ws.send(text);
    const info = await ws.closed;
    assert.equal(info.initiator, "heartbeat");
    assert.equal(info.code, 1006);
    assert.equal(info.wasClean, false);
    assert.ok(info.error instanceof TooSlowError);
    assert.equal(info.error.timeout, 100);
    assert.equal(ws.state, "closed");
    const received: Message[] = [];
    const error = await (async () => {
      for await (const message of ws) received.push(message);
    })().catch((e) => e);
    assert.deepEqual(received, ["a", "b", "c"]);
    assert.ok(error instanceof ConnectionClosedError);
    assert.equal(error.code, 1006);
    assert.equal(error.cause, info.error);
    assert.match(
      error.message,
      /^Connection closed by the heartbeat: Heartbeat reply not received within 100 ms/,
    );
    assert.throws(() => ws.send("anyone?"), ConnectionClosedError);
    assert.equal(await ws.close(), info, "close() returns at once with what is known");
  });
  await t.step("native transport: application probes, echoed as messages", async () => {
    await using server = serve({ stallAfter: 3 });
    const ws = await connect(server.url, {
      transport: "native",
      heartbeat: { interval: 20, timeout: 100 },
    });
    const info = await ws.closed;
    assert.equal(info.initiator, "heartbeat");
    assert.ok(info.error instanceof TooSlowError);
    // The three echoed probes ("ping") answered their probes: heartbeat traffic, never delivered.
    const received: Message[] = [];
    await (async () => {
      for await (const message of ws) received.push(message);
    })().catch(() => {});
    assert.deepEqual(received, []);
    assert.equal(ws.stats.latency?.samples, 3);
    await server.close(); // the server lets go of the stalled socket, and so does the runtime
  });
});

Deno.test("a heartbeat correlates JSON probes with a reply predicate and hides them from the application", async () => {
  await using server = serve();
  const probes: number[] = [];
  let beats = 0;
  const { promise: beaten, resolve } = Promise.withResolvers<void>();
  await using ws = await connect(server.url, {
    heartbeat: {
      interval: 5,
      timeout: 1_000,
      message: (id) => {
        probes.push(id);
        return JSON.stringify({ op: "ping", id });
      },
      reply: (message, id) => typeof message === "string" && JSON.parse(message).id === id,
      onBeat: () => ++beats === 10 && resolve(),
    },
  });
  await beaten;
  assert.deepEqual(probes.slice(0, 10), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  // Application messages still arrive, and only they do.
  for (let i = 0; i < 5; i++) ws.send(JSON.stringify({ op: "data", i }));
  const received: Message[] = [];
  for await (const message of ws) {
    received.push(message);
    if (received.length === 5) break;
  }
  assert.deepEqual(received.map((m) => JSON.parse(m as string).op), [
    "data",
    "data",
    "data",
    "data",
    "data",
  ]);
});

Deno.test("a heartbeat with a string reply never delivers the reply to the application", async () => {
  await using server = serve({ pong: { ping: "ping", pong: "pong" } });
  let beats = 0;
  const { promise: beaten, resolve } = Promise.withResolvers<void>();
  await using ws = await connect(server.url, {
    heartbeat: {
      interval: 1,
      timeout: 1_000,
      reply: "pong",
      onBeat: () => ++beats === 20 && resolve(),
    },
  });
  ws.send("hello");
  await beaten;
  ws.send("bye");
  assert.equal(await ws.receive(), "hello");
  assert.equal(await ws.receive(), "bye");
  assert.ok(ws.stats.messagesReceived >= 22);
});

Deno.test("WebSocketClient.ping() sends a ping frame and resolves with the round trip on its pong", async () => {
  await using server = serve();
  await using ws = await connect(server.url);
  const rtt = await ws.ping();
  assert.equal(typeof rtt, "number");
  assert.ok(rtt >= 0);
  assert.equal(ws.stats.latency?.last, rtt);
  assert.equal(ws.stats.messagesReceived, 0, "a pong is not a message");
  ws.send("after");
  assert.equal(await ws.receive(), "after");
});

Deno.test("WebSocketClient.ping() on the native transport takes the probe's echo as its answer, never delivered", async () => {
  await using server = serve();
  await using ws = await connect(server.url, { transport: "native" });
  const rtt = await ws.ping();
  assert.ok(rtt >= 0);
  ws.send("after");
  assert.equal(await ws.receive(), "after"); // the echoed "ping" came first and was kept back
});

Deno.test("WebSocketClient.ping() on the native transport is answered by any other message, which is delivered", async () => {
  // A server that does not echo but answers with data of its own: that proves it alive, and is
  // the application's.
  await using server = rawServer(async (peer) => {
    const probe = await peer.readMessage();
    assert.equal(new TextDecoder().decode(probe!.payload), "ping");
    await peer.sendFrame({ opcode: OP.TEXT, payload: "tick" });
    await peer.expectClose();
    await peer.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1000) });
  });
  const ws = await connect(server.url, { transport: "native" });
  assert.ok(await ws.ping() >= 0);
  assert.equal(await ws.receive(), "tick");
  await ws.close();
  await server.done;
});

Deno.test("WebSocketClient.ping() rejects with the signal's reason", async () => {
  await using server = serve({ stallAfter: 0 });
  await using ws = await connect(server.url);
  const controller = new AbortController();
  const pinging = ws.ping({ signal: controller.signal });
  controller.abort("enough");
  await assert.rejects(pinging, (e) => e === "enough");
});

Deno.test("close() stops the heartbeat: a slow closing handshake is not a heartbeat failure", async () => {
  // This peer completes the opening handshake, then answers nothing: no probe, no close frame.
  await using server = silentServer({ handshake: true });
  const ws = await connect(server.url, {
    closeTimeout: 300,
    heartbeat: { interval: 10, timeout: 100 },
  });
  const info = await ws.close(); // the heartbeat's 100 ms would run out inside the 300 ms close
  assert.equal(info.initiator, "client");
  assert.equal(
    info.error?.message,
    "The peer did not finish the closing handshake within 300 ms (closeTimeout)",
  );
  await server.close();
  await ws.close(); // waits for the runtime to release the socket
});
