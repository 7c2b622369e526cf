import assert from "node:assert/strict";
import {
  backoffDelay,
  checkBackoff,
  type CloseInfo,
  ConnectError,
  ConnectionClosedError,
  defaultShouldRetry,
  type Message,
  MIN_RETRY_DELAY,
  ReconnectError,
  reconnecting,
  type RetryEvent,
  TooSlowError,
  type WebSocketClient,
} from "../mod.ts";
import { serve } from "../serve.ts";
import { closedPort, silentServer, statusServer } from "./_servers.ts";

const fast = { initialDelay: 10, maxDelay: 40, jitter: 0 } as const;

Deno.test("backoffDelay() grows by the factor up to the cap, less a random share", () => {
  const opts = { initialDelay: 100, factor: 2, maxDelay: 1_000, jitter: 0.5 };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, opts, 0)), [
    100,
    200,
    400,
    800,
    1000,
    1000,
  ]);
  assert.equal(backoffDelay(1, opts, 0.999999), 50); // whole milliseconds
  assert.equal(backoffDelay(2, opts, 0.3), 170);
  assert.equal(backoffDelay(3, { ...opts, jitter: 0 }, 0.7), 400);
  // Full jitter never goes below the floor.
  assert.equal(backoffDelay(1, { initialDelay: 10, jitter: 1 }, 0.999), MIN_RETRY_DELAY);
  // The defaults: 1 s, 2 s, 4 s, ... up to 30 s, each drawn from [d/2, d].
  assert.equal(backoffDelay(1, {}, 0), 1_000);
  assert.equal(backoffDelay(10, {}, 0), 30_000);
  assert.equal(backoffDelay(10, {}, 1), 15_000);
});

Deno.test("defaultShouldRetry() follows the documented policy", () => {
  const url = "ws://x/";
  const status = (s: number) => new ConnectError(url, "status", "", { status: s });
  const close = (code: number, initiator: CloseInfo["initiator"] = "server"): CloseInfo => ({
    code,
    reason: "",
    wasClean: true,
    initiator,
  });
  const yes = [
    { error: new ConnectError(url, "refused", "") },
    { error: new ConnectError(url, "dns", "") },
    { error: new ConnectError(url, "timeout", "") },
    { error: new ConnectError(url, "network", "") },
    { error: status(500) },
    { error: status(503) },
    { error: status(408) },
    { error: status(429) },
    { close: close(1006, "network") },
    { close: close(1006, "heartbeat") },
    ...[1000, 1001, 1005, 1011, 1012, 1013, 4000].map((c) => ({ close: close(c) })),
  ];
  const no = [
    { error: status(400) },
    { error: status(401) },
    { error: status(403) },
    { error: status(404) },
    { error: new ConnectError(url, "tls", "") },
    { error: new SyntaxError("Invalid URL") },
    ...[1002, 1003, 1007, 1008, 1009, 1010].map((c) => ({ close: close(c) })),
  ];
  for (const c of yes) {
    assert.equal(defaultShouldRetry({ failures: 1, ...c }), true, JSON.stringify(c));
  }
  for (const c of no) {
    assert.equal(defaultShouldRetry({ failures: 1, ...c }), false, JSON.stringify(c));
  }
});

Deno.test("reconnecting() reconnects after the server restarts on the same port", async () => {
  let server = serve();
  const port = server.port;
  const retries: RetryEvent[] = [];
  const received: Message[] = [];
  let restarted = false;
  let connections = 0;
  for await (
    const ws of reconnecting(server.url, {
      ...fast,
      onRetry: (event) => {
        retries.push(event);
        // Once a connect has been refused, the server is really down: start it again.
        if (event.reason instanceof ConnectError && !restarted) {
          restarted = true;
          server = serve({ port });
        }
      },
    })
  ) {
    connections++;
    ws.send(`hello ${connections}`);
    for await (const message of ws) {
      received.push(message);
      if (connections === 1) await server.close(); // stop: the loop sees 1001
      else break;
    }
    if (connections === 2) break;
  }
  await server.close();
  assert.deepEqual(received, ["hello 1", "hello 2"]);
  assert.equal((retries[0]!.reason as CloseInfo).code, 1001);
  assert.ok(retries.some((r) => r.reason instanceof ConnectError && r.reason.kind === "refused"));
  assert.deepEqual(retries.map((r) => r.attempt), retries.map((_, i) => i + 2));
});

Deno.test("reconnecting() finds a stalled server with the heartbeat and reconnects", async () => {
  await using server = silentServer({ handshake: true }); // open, then never a byte
  const reasons: (Error | CloseInfo)[] = [];
  let connections = 0;
  for await (
    const ws of reconnecting(server.url, {
      ...fast,
      heartbeat: { interval: 10, timeout: 100 },
      onRetry: (event) => reasons.push(event.reason),
    })
  ) {
    connections++;
    for await (const _ of ws) { /* nothing arrives; ends quietly when the heartbeat fails */ }
    const info = await ws.closed;
    assert.equal(info.initiator, "heartbeat");
    assert.ok(info.error instanceof TooSlowError);
    if (connections === 2) break;
  }
  assert.equal(reasons.length, 1);
  assert.equal((reasons[0] as CloseInfo).initiator, "heartbeat");
});

Deno.test("reconnecting() ends with the ConnectError after one attempt on HTTP 403, on both transports", async (t) => {
  for (const transport of ["wsbeat", "native"] as const) {
    await t.step(transport, async () => {
      let retries = 0;
      await using server = statusServer(403);
      const loop = reconnecting(server.url, { ...fast, transport, onRetry: () => retries++ });
      const error = await (async () => {
        for await (const _ of loop) assert.fail("no connection was expected");
      })().catch((e) => e);
      assert.ok(error instanceof ConnectError);
      assert.equal(error.kind, "status");
      assert.equal(error.status, 403);
      assert.equal(retries, 0); // no retry was even scheduled
    });
  }
});

Deno.test("reconnecting() delivers every message sent before each drop, in order, once", async () => {
  await using server = serve({ dropAfter: 5 });
  const perConnection: Message[][] = [];
  for await (const ws of reconnecting(server.url, fast)) {
    const n = perConnection.length;
    const got: Message[] = [];
    perConnection.push(got);
    for (let i = 0; i < 8; i++) ws.send(`${n}:${i}`);
    for await (const message of ws) got.push(message); // ends quietly at the drop
    assert.equal((await ws.closed).code, 1006);
    if (perConnection.length === 3) break;
  }
  assert.deepEqual(perConnection, [0, 1, 2].map((n) => [0, 1, 2, 3, 4].map((i) => `${n}:${i}`)));
});

Deno.test("reconnecting() returns promptly when aborted during a backoff delay", async () => {
  const controller = new AbortController();
  let abortedAt = 0;
  const loop = reconnecting(`ws://127.0.0.1:${closedPort()}`, {
    initialDelay: 60_000,
    signal: controller.signal,
    onRetry: () => {
      queueMicrotask(() => {
        abortedAt = performance.now();
        controller.abort();
      });
    },
  });
  for await (const _ of loop) assert.fail("no connection was expected");
  const took = performance.now() - abortedAt;
  assert.ok(abortedAt > 0);
  assert.ok(took < 1_000, `returned ${took} ms after the abort, inside a 30-60 s delay`);
});

Deno.test("reconnecting() never retries faster than the backoff allows", async () => {
  const options = { initialDelay: 20, factor: 2, maxDelay: 80, jitter: 0.5 };
  const events: RetryEvent[] = [];
  const starts: number[] = [];
  const controller = new AbortController();
  for await (
    const _ of reconnecting(`ws://127.0.0.1:${closedPort()}`, {
      ...options,
      signal: controller.signal,
      onRetry: (event) => {
        starts.push(performance.now());
        events.push(event);
        if (events.length === 8) controller.abort();
      },
    })
  ) assert.fail("no connection was expected");
  // Each delay lies in [d/2, d] for its ceiling d = 20, 40, 80, 80, ...
  events.forEach((event, i) => {
    const ceiling = Math.min(80, 20 * 2 ** i);
    assert.ok(event.delay >= ceiling / 2 && event.delay <= ceiling, `delay ${i}: ${event.delay}`);
    assert.equal(event.retry, i + 1);
  });
  // ... and the loop really waited them out: consecutive retries are at least the delay apart.
  for (let i = 1; i < starts.length; i++) {
    assert.ok(starts[i]! - starts[i - 1]! >= events[i - 1]!.delay - 1, `gap ${i}`);
  }
});

Deno.test("reconnecting() gives up after maxRetries with the last error as cause", async () => {
  const port = closedPort();
  let retries = 0;
  const error = await (async () => {
    for await (
      const _ of reconnecting(`ws://127.0.0.1:${port}`, {
        ...fast,
        maxRetries: 3,
        onRetry: () => retries++,
      })
    ) {
      assert.fail("no connection was expected");
    }
  })().catch((e) => e);
  // maxRetries counts retries: the first attempt, then 3 retries, all refused.
  assert.ok(error instanceof ReconnectError);
  assert.equal(error.retries, 3);
  assert.equal(retries, 3);
  assert.ok(error.cause instanceof ConnectError);
  assert.equal(error.cause.kind, "refused");
  assert.equal(
    error.message,
    `Gave up reconnecting to ws://127.0.0.1:${port}/ after 3 retries in a row (maxRetries): ` +
      `Cannot connect to ws://127.0.0.1:${port}/: connection refused`,
  );
});

Deno.test("reconnecting() ends with ConnectionClosedError on a close it must not retry (1008)", async () => {
  await using server = serve({ closeWith: { code: 1008, reason: "policy" } });
  const error = await (async () => {
    for await (const ws of reconnecting(server.url, fast)) {
      ws.send("hi");
      for await (const _ of ws) { /* ends quietly */ }
    }
  })().catch((e) => e);
  assert.ok(error instanceof ConnectionClosedError);
  assert.equal(error.code, 1008);
  assert.equal(
    error.message,
    "Not reconnecting: the connection closed with 1008 (policy), initiator server",
  );
});

Deno.test("reconnecting() follows shouldRetry over the default policy", async () => {
  const port = closedPort();
  const seen: number[] = [];
  const error = await (async () => {
    for await (
      const _ of reconnecting(`ws://127.0.0.1:${port}`, {
        ...fast,
        shouldRetry: ({ failures }) => {
          seen.push(failures);
          return failures < 2;
        },
      })
    ) assert.fail("no connection was expected");
  })().catch((e) => e);
  assert.ok(error instanceof ConnectError);
  assert.deepEqual(seen, [1, 2]);
});

Deno.test("reconnecting() closes the connection with 1000 when the consumer breaks", async () => {
  const { promise: closed, resolve } = Promise.withResolvers<number>();
  await using server = serve({ onDisconnect: (_, code) => resolve(code) });
  let held: WebSocketClient | undefined;
  for await (const ws of reconnecting(server.url, fast)) {
    held = ws;
    break;
  }
  assert.equal(held?.state, "closed");
  assert.equal(await closed, 1000);
});

Deno.test("reconnecting() ends quietly when the signal aborts during a connection", async () => {
  await using server = serve();
  const controller = new AbortController();
  let connections = 0;
  for await (const ws of reconnecting(server.url, { ...fast, signal: controller.signal })) {
    connections++;
    controller.abort();
    for await (const _ of ws) { /* ends when the signal closes the connection */ }
  }
  assert.equal(connections, 1);
});

Deno.test("reconnecting() rejects bad backoff options", async () => {
  await assert.rejects(reconnecting("ws://x", { jitter: 2 }).next(), {
    name: "RangeError",
    message: "Cannot use jitter as it is not a number from 0 to 1: current value is 2",
  });
  await assert.rejects(reconnecting("ws://x", { factor: 0.5 }).next(), {
    name: "RangeError",
    message: /factor/,
  });
  await assert.rejects(reconnecting("ws://x", { maxRetries: -1 }).next(), {
    name: "RangeError",
    message: /maxRetries/,
  });
});

Deno.test("reconnecting() refuses delays that would retry in a busy loop", async (t) => {
  for (
    const [name, value] of [
      ["initialDelay", 0],
      ["initialDelay", 9],
      ["maxDelay", 0],
      ["maxDelay", 0.1],
    ] as const
  ) {
    await t.step(`${name}: ${value}`, async () => {
      await assert.rejects(reconnecting("ws://x", { [name]: value }).next(), {
        name: "RangeError",
        message: `Cannot use ${name} as it is below 10 ms, which would retry in a busy loop: ` +
          `current value is ${value}`,
      });
      assert.throws(() => checkBackoff({ [name]: value }), RangeError);
    });
  }
  await t.step("the floor itself is allowed, and maxDelay below initialDelay caps it", () => {
    const backoff = checkBackoff({ initialDelay: 10, maxDelay: MIN_RETRY_DELAY });
    assert.equal(backoffDelay(1, { ...backoff, jitter: 0 }), 10);
    assert.equal(backoffDelay(5, { initialDelay: 1_000, maxDelay: 50, jitter: 0 }), 50);
  });
});
