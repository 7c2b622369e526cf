// Runs every benchmark script with tiny counts, so that they cannot rot. Speed is not asserted here.
import assert from "node:assert/strict";
import { startServer } from "../bench/_server.ts";
import { echoBench, echoTable } from "../bench/echo.ts";
import { heartbeatScale, scaleTable } from "../bench/heartbeat_scale.ts";
import { detectBench, detectTable } from "../bench/detect.ts";
import { cliStartup, startupTable } from "../bench/cli_startup.ts";

Deno.test("bench/echo.ts runs both clients in both modes and checks every echo", async () => {
  await using server = await startServer();
  const rows = await echoBench({
    url: server.url,
    sizes: [32],
    reps: 1,
    roundTrips: () => 20,
    pipelined: () => 100,
    window: 8,
  });
  assert.deepEqual(rows.map((r) => `${r.payload} ${r.mode}`), [
    "32 B text sequential",
    "32 B text pipelined",
    "32 B binary sequential",
    "32 B binary pipelined",
  ]);
  for (const r of rows) assert.ok(r.native.rate > 0 && r.wsbeat.rate > 0);
  assert.match(echoTable(rows), /\| 32 B text \| sequential \|/);
});

Deno.test("bench/heartbeat_scale.ts keeps every connection beating", async () => {
  await using server = await startServer(["--pong", "ping:pong"]);
  const result = await heartbeatScale({
    url: server.url,
    connections: 20,
    window: 1_000,
    interval: 200,
  });
  assert.equal(result.falseTimeouts, 0);
  assert.equal(result.allBeating, true);
  assert.ok(result.beats >= 20);
  assert.match(scaleTable([result]), /\| 20 \|/);
});

Deno.test("bench/detect.ts finds every stall with a TooSlowError", async () => {
  await using server = await startServer(["--stall-after", "3", "--pong", "ping:pong"]);
  const result = await detectBench({
    url: server.url,
    trials: 3,
    concurrency: 3,
    interval: 30,
    timeout: 60,
  });
  assert.equal(result.allTooSlow, true);
  assert.equal(result.bound, 90);
  assert.ok(result.p50 > -30, `detected ${result.p50} ms before the bound`);
  assert.match(detectTable(result), /\| 3 \| 90 ms \|/);
});

Deno.test("bench/cli_startup.ts times the CLI", async () => {
  const result = await cliStartup(1);
  assert.ok(result.median > 0);
  assert.match(startupTable(result), /\| 1 \|/);
});
