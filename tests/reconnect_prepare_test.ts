// reconnecting()'s prepare: fresh URL, headers and subprotocols per attempt.
import assert from "node:assert/strict";
import {
  type AttemptContext,
  type CloseInfo,
  ConnectError,
  reconnecting,
  ReconnectingClient,
} from "../mod.ts";
import { closedPort, silentServer } from "./_servers.ts";
import { closePayload, OP, type RawRequest, rawServer } from "./_raw_server.ts";

const fast = { initialDelay: 10, maxDelay: 20, jitter: 0 } as const;

/** Copies what prepare is told, minus the signal. */
function seen(context: AttemptContext): Omit<AttemptContext, "signal"> {
  const { signal: _, ...rest } = context;
  return rest;
}

Deno.test("reconnecting() calls prepare before each attempt with why the last one ended, and its settings reach the server", async () => {
  const requests: RawRequest[] = [];
  await using server = rawServer(async (peer) => {
    requests.push(peer.request);
    await peer.sendFrame({ opcode: OP.CLOSE, payload: closePayload(4000, "token rotated") });
    await peer.expectClose();
  }, { connections: 3, handshake: { protocol: "v1" } });
  const refused = `ws://127.0.0.1:${closedPort()}/`;
  const contexts: Omit<AttemptContext, "signal">[] = [];
  const signals: AbortSignal[] = [];
  let opened = 0;
  for await (
    const ws of reconnecting(server.url, {
      ...fast,
      prepare: async (context) => {
        contexts.push(seen(context));
        signals.push(context.signal);
        await Promise.resolve(); // a token request would go here
        const n = context.attempt;
        // Attempt 3 goes to a port with nothing behind it.
        const url = n === 3 ? refused : `${server.url}feed?token=t${n}`;
        return { url, headers: { authorization: `Bearer t${n}` }, protocols: ["v1", `v1.t${n}`] };
      },
    })
  ) {
    opened++;
    assert.equal(ws.protocol, "v1");
    for await (const _ of ws) { /* ends when the server closes with 4000 */ }
    if (opened === 3) break;
  }
  assert.equal(contexts.length, 4);
  assert.deepEqual(contexts[0], { attempt: 1, retry: 0 });
  const close = (code: number, reason: string): CloseInfo => ({
    code,
    reason,
    wasClean: true,
    initiator: "server",
  });
  assert.deepEqual(contexts[1], { attempt: 2, retry: 1, close: close(4000, "token rotated") });
  assert.deepEqual(contexts[2], { attempt: 3, retry: 2, close: close(4000, "token rotated") });
  const { error, ...third } = contexts[3]!;
  assert.deepEqual(third, { attempt: 4, retry: 3 });
  assert.ok(error instanceof ConnectError);
  assert.equal(error.kind, "refused");
  assert.equal(error.url, refused);
  assert.ok(signals.every((signal) => signal === signals[0] && !signal.aborted));
  // Each attempt's settings reached the server: attempts 1, 2 and 4 connected.
  assert.deepEqual(
    requests.map((
      r,
    ) => [r.target, r.headers.get("authorization"), r.headers.get("sec-websocket-protocol")]),
    [
      ["/feed?token=t1", "Bearer t1", "v1, v1.t1"],
      ["/feed?token=t2", "Bearer t2", "v1, v1.t2"],
      ["/feed?token=t4", "Bearer t4", "v1, v1.t4"],
    ],
  );
});

Deno.test("reconnecting() ends with what prepare threw, without retrying it", async () => {
  let calls = 0;
  const loop = reconnecting("ws://127.0.0.1:9/", {
    ...fast,
    prepare: () => {
      calls++;
      throw new Error("token service down");
    },
  });
  await assert.rejects(loop.next(), { message: "token service down" });
  assert.equal(calls, 1);
});

Deno.test("reconnecting() checks what prepare returns", async () => {
  const loop = reconnecting("ws://127.0.0.1:9/", {
    prepare: () => "ws://elsewhere" as unknown as undefined,
  });
  await assert.rejects(loop.next(), {
    name: "TypeError",
    message:
      "Cannot use what prepare returned as it is not an object or undefined: current value is ws://elsewhere",
  });
  await assert.rejects(reconnecting("ws://x", { prepare: 1 as unknown as undefined }).next(), {
    name: "TypeError",
    message: "Cannot use prepare as it is not a function: current value is 1",
  });
});

Deno.test("reconnecting() ends quietly when the signal aborts while prepare is pending", async () => {
  const controller = new AbortController();
  let given: AbortSignal | undefined;
  const loop = reconnecting("ws://127.0.0.1:9/", {
    signal: controller.signal,
    prepare: ({ signal }) => {
      given = signal;
      setTimeout(() => controller.abort(), 10);
      return new Promise(() => {}); // a token request that never answers
    },
  });
  const start = performance.now();
  assert.deepEqual(await loop.next(), { value: undefined, done: true });
  assert.ok(performance.now() - start < 500);
  assert.equal(given, controller.signal);
  assert.ok(given.aborted);
});

Deno.test("ReconnectingClient passes prepare's headers on every connection", async () => {
  const tokens: (string | null)[] = [];
  await using server = rawServer(async (peer) => {
    tokens.push(peer.request.headers.get("authorization"));
    // Drop the first connection at once; hold the second until the client closes.
    if (tokens.length === 1) return;
    await peer.expectClose();
    await peer.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1000) });
  }, { connections: 2 });
  let issued = 0;
  const { promise: openedAgain, resolve } = Promise.withResolvers<void>();
  await using client = new ReconnectingClient(server.url, {
    ...fast,
    prepare: () => ({ headers: { authorization: `Bearer ${++issued}` } }),
    onStatus: (status) => status === "open" && tokens.length === 2 && resolve(),
  });
  await openedAgain;
  await client.close();
  assert.deepEqual(tokens, ["Bearer 1", "Bearer 2"]);
});

Deno.test("reconnecting() prepare may leave settings unchanged by returning nothing", async () => {
  await using server = silentServer({ handshake: true });
  let calls = 0;
  const options = { closeTimeout: 50, prepare: () => void calls++ };
  for await (const ws of reconnecting(server.url, options)) {
    assert.equal(ws.state, "open");
    break;
  }
  assert.equal(calls, 1);
  await server.close();
});
