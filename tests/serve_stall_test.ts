// A stalled connection (stallAfter) is held at most stallFor, and released at
// once when its client closes TCP: stalls never use up maxConnections.

import assert from "node:assert/strict";
import { connect, TooSlowError } from "../mod.ts";
import { serve } from "../serve.ts";
import {
  logLines,
  OP,
  RawClient,
  refusedStatus,
  type ServerFrame,
  upgradeRequest,
} from "./_serve_clients.ts";
import { concat, encodeFrame } from "./_raw_frames.ts";

const status = (head: Awaited<ReturnType<RawClient["head"]>>) =>
  typeof head === "string" ? head : head.status;

Deno.test("serve() with stallAfter 0 and maxConnections 3 serves four heartbeat clients in turn", async () => {
  // The user's report: with `--stall-after 0 --max-connections 3` the 4th client got 503, the
  // stalled connections held after their clients left. stallFor stays at its default (60 s):
  // what frees each place is the client closing TCP.
  const logs = logLines();
  await using server = serve({ stallAfter: 0, maxConnections: 3, log: logs.log });
  for (let i = 1; i <= 4; i++) {
    const ws = await connect(server.url, {
      heartbeat: { interval: 20, timeout: 100 },
      closeTimeout: 100,
    });
    const info = await ws.closed;
    assert.equal(info.initiator, "heartbeat", `client ${i}`);
    assert.ok(info.error instanceof TooSlowError, `client ${i}: ${info.error}`);
    await logs.next(
      new RegExp(
        `^#${i} closed \\(1006; stalled \\(stallAfter\\), released when the client closed TCP\\) after `,
      ),
    );
    assert.equal(server.connections, 0);
  }
  assert.ok(!logs.lines.some((line) => / refused /.test(line)), logs.lines.join("\n"));
});

Deno.test("serve() releases a stalled connection as soon as its client closes TCP", async (t) => {
  await t.step("stalled after the handshake: the one place is free again", async () => {
    const logs = logLines();
    await using server = serve({ stallAfter: 0, maxConnections: 1, log: logs.log });
    const first = await RawClient.open(server.port);
    assert.equal(status(await first.head()), 101);
    await logs.next(/^#1 connected/);
    assert.equal(server.connections, 1);
    assert.equal(await refusedStatus("wsbeat", server.url), 503); // the place is taken
    await first.close();
    await logs.next(
      /^#1 closed \(1006; stalled \(stallAfter\), released when the client closed TCP\)/,
    );
    assert.equal(server.connections, 0);
    await using second = await RawClient.open(server.port);
    assert.equal(status(await second.head()), 101);
  });
  await t.step("stalled after two echoes, with a close frame the server ignores", async () => {
    const logs = logLines();
    await using server = serve({ stallAfter: 2, log: logs.log });
    const raw = await RawClient.open(server.port);
    assert.equal(status(await raw.head()), 101);
    for (const payload of ["a", "b", "c"]) await raw.send({ opcode: OP.TEXT, payload });
    const echoes = [await raw.frame(), await raw.frame()] as ServerFrame[];
    assert.deepEqual(echoes.map((f) => new TextDecoder().decode(f.payload)), ["a", "b"]);
    await raw.send({ opcode: OP.CLOSE, payload: new Uint8Array([0x03, 0xe8]) });
    assert.equal(await raw.frame(200), "timeout"); // stalled: no echo of "c", no close reply
    await raw.close();
    await logs.next(
      /^#1 closed \(1006; stalled \(stallAfter\), released when the client closed TCP\)/,
    );
    assert.equal(server.connections, 0);
  });
  await t.step("stalled by frames sent with the upgrade request", async () => {
    const logs = logLines();
    await using server = serve({ stallAfter: 1, log: logs.log });
    const frame = encodeFrame({ opcode: OP.TEXT, payload: "early", mask: true });
    const request = new TextEncoder().encode(upgradeRequest(server.port));
    const raw = await RawClient.open(server.port, { request: "" });
    await raw.write(concat([request, frame, frame]));
    assert.equal(status(await raw.head()), 101);
    const echo = (await raw.frame()) as ServerFrame;
    assert.equal(new TextDecoder().decode(echo.payload), "early");
    assert.equal(await raw.frame(200), "timeout");
    await raw.close();
    await logs.next(
      /^#1 closed \(1006; stalled \(stallAfter\), released when the client closed TCP\)/,
    );
    assert.equal(server.connections, 0);
  });
});

Deno.test("serve() closes a stalled connection after stallFor, whatever the client does", async (t) => {
  await t.step("a client that stays", async () => {
    const logs = logLines();
    await using server = serve({ stallAfter: 0, stallFor: 200, maxConnections: 1, log: logs.log });
    await using raw = await RawClient.open(server.port);
    assert.equal(status(await raw.head()), 101);
    const started = performance.now();
    assert.deepEqual(await raw.rest(3_000), new Uint8Array(0)); // TCP closed, no close frame
    const waited = performance.now() - started;
    assert.ok(waited >= 150 && waited < 2_000, `closed after ${waited} ms`);
    await logs.next(
      /^#1 closed \(1006; stalled \(stallAfter\), TCP closed after 200 ms \(stallFor\)\)/,
    );
    assert.equal(server.connections, 0);
    await using next = await RawClient.open(server.port); // its place is free
    assert.equal(status(await next.head()), 101);
  });
  await t.step("a client that floods the stalled connection", async () => {
    const logs = logLines();
    await using server = serve({ stallAfter: 0, stallFor: 300, log: logs.log });
    await using raw = await RawClient.open(server.port);
    assert.equal(status(await raw.head()), 101);
    const chunk = new Uint8Array(64 * 1024);
    const flood = (async () => {
      try {
        // 8 MiB at most: past 1 MiB the server reads no more, so this may block on TCP.
        for (let i = 0; i < 128; i++) await raw.send({ opcode: OP.BINARY, payload: chunk });
      } catch { /* closed by the server at stallFor */ }
    })();
    assert.deepEqual(await raw.rest(3_000), new Uint8Array(0));
    await raw.close(); // ends a write blocked on a full socket
    await flood;
    await logs.next(
      /^#1 closed \(1006; stalled \(stallAfter\), TCP closed after 300 ms \(stallFor\)\)/,
    );
  });
});
