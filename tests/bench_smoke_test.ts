// Runs every benchmark script with tiny counts, so that they cannot rot. Speed is not asserted here.
import assert from "node:assert/strict";
import { startServer, startWsServer, upgradeByHand } from "../bench/_server.ts";
import { ConnectionClosedError } from "../mod.ts";
import { serve } from "../serve.ts";
import { echoBench, echoTable, IMPLS, wsPeerTable } from "../bench/echo.ts";
import { heartbeatScale, heartbeatTable, idleTable } from "../bench/heartbeat_scale.ts";
import { detectBench, detectTable } from "../bench/detect.ts";
import { burstBench, burstTable, congestionControl } from "../bench/burst.ts";
import { FLOOR_CLIENTS, floorBench, floorTable } from "../bench/floor.ts";
import { warmupBench, warmupProcess, warmupTable } from "../bench/warmup.ts";
import { cliStartup, startupTable } from "../bench/cli_startup.ts";
import {
  idleServer,
  idleServerTable,
  serverEcho,
  serverEchoTable,
  serverTargets,
  startNamed,
} from "../bench/server.ts";

const tiny = { reps: 1, roundTrips: () => 20, pipelined: () => 100, window: 8, budget: 100 };

Deno.test("bench/echo.ts runs the three clients in both modes and checks every echo", async () => {
  await using server = await startServer();
  const rows = await echoBench({
    url: server.url,
    cases: [
      { size: 32, binary: false, mode: "sequential" },
      { size: 32, binary: true, mode: "pipelined" },
      { size: 4096, binary: false, mode: "sequential" },
    ],
    ...tiny,
  });
  assert.deepEqual(rows.map((r) => `${r.payload} ${r.mode}`), [
    "32 B text sequential",
    "32 B binary pipelined",
    "4 KiB text sequential",
  ]);
  for (const r of rows) for (const impl of IMPLS) assert.ok(r.results[impl].rate > 0, impl);
  assert.match(echoTable(rows), /\| 32 B text \| sequential \|/);
});

Deno.test("bench/echo.ts runs against a Node ws server", async () => {
  await using server = await startWsServer();
  const rows = await echoBench({
    url: server.url,
    cases: [{ size: 16384, binary: true, mode: "sequential" }],
    ...tiny,
    roundTrips: () => 3,
  });
  for (const impl of IMPLS) assert.ok(rows[0]!.results[impl].n > 0, impl);
  assert.match(wsPeerTable(rows), /\| 16 KiB binary \|/);
});

Deno.test("bench/heartbeat_scale.ts measures every side and keeps every connection beating", async () => {
  await using server = await startServer({ pong: { ping: "ping", pong: "pong" } });
  const result = await heartbeatScale({
    url: server.url,
    connections: 20,
    window: 300,
    interval: 100,
    parallel: true,
  });
  for (const side of ["ping", "probe", "floor"] as const) {
    assert.equal(result.sides[side].falseTimeouts, 0, side);
    assert.equal(result.sides[side].open, 20, side);
    assert.equal(result.sides[side].everyOneBeat, true, side);
  }
  assert.equal(result.sides.idle.open, 20);
  assert.match(idleTable([result]), /\| 20 \|/);
  assert.match(heartbeatTable([result]), /\| 20 \| ping frames/);
  assert.match(heartbeatTable([result]), /\| 20 \| runtime floor: no wsbeat code/);
});

Deno.test("bench/detect.ts finds every stall with a TooSlowError, for both probes", async () => {
  await using server = await startServer({ stallAfter: 3, pong: { ping: "ping", pong: "pong" } });
  const results = [];
  for (const probe of ["ping frames", "application"] as const) {
    const result = await detectBench({
      url: server.url,
      trials: 2,
      concurrency: 2,
      interval: 30,
      timeout: 60,
      probe,
    });
    assert.equal(result.allTooSlow, true, probe);
    assert.equal(result.bound, 90);
    assert.ok(result.p50 > -30, `${probe}: detected ${result.p50} ms before the bound`);
    results.push(result);
  }
  assert.match(detectTable(results), /\| ping frames \| 2 \| 90 ms \|/);
});

Deno.test("bench/burst.ts times the first echo of bursts for both clients", async () => {
  await using server = await startServer();
  const results = await burstBench({
    url: server.url,
    rounds: 2,
    pause: 5,
    window: 4,
    perRound: 8,
  });
  for (const name of ["raw", "wsbeat"] as const) {
    assert.equal(results[name].firstEcho.length, 2, name);
    for (const ms of results[name].firstEcho) assert.ok(ms > 0 && ms < 10_000, `${name}: ${ms}`);
  }
  assert.match(burstTable(results), /\| wsbeat transport \| 2 \|/);
  assert.ok((await congestionControl()).length > 0);
});

Deno.test("bench/burst.ts fails a round whose connection is dropped, for either client", async () => {
  const options = { rounds: 2, pause: 1, window: 2, perRound: 2 };
  {
    await using server = serve({ dropAfter: 1 }); // the raw client goes first
    await assert.rejects(burstBench({ url: server.url, ...options }), {
      message: /^the raw client closed during a round \(0\)$/, // Deno reports an abrupt close as 0,
    });
  }
  {
    await using server = serve({ dropAfter: 3 }); // round 1: the wsbeat client goes first
    await assert.rejects(burstBench({ url: server.url, ...options }), ConnectionClosedError);
  }
});

Deno.test("bench/floor.ts times a round trip on the bare socket, the protocol core and both clients", async () => {
  await using server = await startServer();
  const rows = await floorBench({
    url: server.url,
    cases: [{ size: 32, binary: true, mode: "sequential" }, {
      size: 1024,
      binary: false,
      mode: "sequential",
    }],
    reps: 1,
    roundTrips: 20,
  });
  assert.deepEqual(rows.map((r) => r.payload), ["32 B binary", "1 KiB text"]);
  for (const row of rows) {
    for (const name of FLOOR_CLIENTS) {
      assert.ok(row.cpu[name] > 0, `${name} CPU`);
      assert.ok(row.roundTrip[name] > 0, `${name} round trip`);
    }
  }
  assert.match(
    floorTable(rows),
    /\| 1 KiB text \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+x \|/,
  );
});

Deno.test("bench/floor.ts fails with the cause when the upgrade is refused or the connection drops", async () => {
  {
    await using server = serve({ rejectStatus: 503 });
    await assert.rejects(floorBench({ url: server.url, reps: 1, roundTrips: 2 }), {
      message: /^the upgrade was refused: HTTP\/1\.1 503 /,
    });
  }
  {
    await using server = serve({ dropAfter: 1 }); // the bare socket goes first
    await assert.rejects(floorBench({ url: server.url, reps: 1, roundTrips: 2 }), {
      message: "the connection closed during a round trip",
    });
  }
});

Deno.test("bench/_server.ts upgradeByHand fails when the server closes without answering", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(1024)); // the request, then nothing
    conn.close();
  })();
  await assert.rejects(upgradeByHand(`ws://127.0.0.1:${listener.addr.port}/`), {
    message: "the server sent no upgrade answer",
  });
  await serving;
});

Deno.test("bench/warmup.ts measures each client's CPU a message, batch after batch", async () => {
  await using server = await startServer();
  const batches = await warmupBench({ url: server.url, batches: 2, chunks: 2, chunkSize: 50 });
  assert.deepEqual(batches.map((b) => b.before), [50, 150]);
  for (const { cpu } of batches) {
    for (const impl of IMPLS) {
      assert.ok(cpu[impl] > 0 && cpu[impl] < 100_000, `${impl}: ${cpu[impl]}`);
    }
  }
  assert.match(warmupTable(batches), /^\| 2 \| 150 \| /m);
});

Deno.test("bench/warmup.ts runs in a fresh process and reports its batches", async () => {
  await using server = await startServer();
  const batches = await warmupProcess({ url: server.url, batches: 1, chunks: 1 });
  assert.equal(batches.length, 1);
  assert.equal(batches[0]!.before, 4000);
  assert.ok(batches[0]!.cpu.wsbeat > 0);
});

Deno.test("bench/cli_startup.ts times the CLI", async () => {
  const result = await cliStartup(1);
  assert.ok(result.median > 0);
  assert.match(startupTable(result), /\| 1 \|/);
});

Deno.test("bench/server.ts runs the same load against wsbeat serve and Deno.serve", async () => {
  let rows;
  {
    await using deno = await startNamed("deno");
    await using wsbeat = await startNamed("wsbeat");
    rows = await serverEcho({
      servers: { deno, wsbeat },
      cases: [
        { size: 32, binary: false, mode: "sequential" },
        { size: 1024, binary: true, mode: "pipelined" },
      ],
      ...tiny,
    });
  }
  for (const r of rows) {
    for (const name of ["deno", "wsbeat"] as const) assert.ok(r.results[name].rate > 0, name);
  }
  const idle = {
    deno: await idleServer("deno", { connections: 20, settle: 100 }),
    wsbeat: await idleServer("wsbeat", { connections: 20, settle: 100 }),
  };
  for (const side of Object.values(idle)) assert.ok(side.after > 0, "the server's RSS is read");
  assert.match(serverEchoTable(rows), /\| 32 B text \| sequential \|/);
  assert.match(idleServerTable(idle), /\| 20 \|/);
  assert.match(serverTargets(rows, idle), /echo msg\/s ≥ 0.9x/);
});
