/**
 * `deno task bench`: every benchmark, in one run, written to bench/RESULTS.md.
 *
 * Usage: deno task bench [--quick]   (--quick: fewer repetitions, 1 000 connections only)
 *
 * @module
 */

import { parseArgs } from "node:util";
import { echoBench, echoTable } from "./echo.ts";
import { heartbeatScale, scaleTable } from "./heartbeat_scale.ts";
import { detectBench, detectTable } from "./detect.ts";
import { cliStartup, startupTable } from "./cli_startup.ts";
import { startServer } from "./_server.ts";

const { values } = parseArgs({ args: Deno.args, options: { quick: { type: "boolean" } } });
const quick = values.quick ?? false;
const started = performance.now();
const log = (text: string) =>
  console.error(`[${((performance.now() - started) / 1000).toFixed(0)} s] ${text}`);

const cpu =
  (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(/model name\s*:\s*(.+)/)?.[1] ??
    "unknown CPU";
const machine = `${navigator.hardwareConcurrency} cores (${cpu}), ${
  (Deno.systemMemoryInfo().total / 2 ** 30).toFixed(0)
} GiB, ${Deno.build.os} ${Deno.build.arch}, Deno ${Deno.version.deno} (V8 ${Deno.version.v8}); a shared machine, so compare the ratios, not the absolute figures`;

log("echo: native vs wsbeat");
let echo;
{
  await using server = await startServer();
  echo = await echoBench({ url: server.url, reps: quick ? 3 : 11 });
}
console.log(echoTable(echo));

const scale = [];
for (const k of quick ? [1000] : [1000, 10000]) {
  log(`heartbeat at scale: ${k} connections`);
  await using server = await startServer(["--pong", "ping:pong"]);
  scale.push(await heartbeatScale({ url: server.url, connections: k }));
}
console.log(scaleTable(scale));

log("dead-peer detection: 50 trials");
let detect;
{
  await using server = await startServer(["--stall-after", "3", "--pong", "ping:pong"]);
  detect = await detectBench({ url: server.url, trials: 50 });
}
console.log(detectTable(detect));

log("CLI startup");
const startup = await cliStartup(10);
console.log(startupTable(startup));

const minRate = Math.min(...echo.map((r) => r.wsbeat.rate / r.native.rate));
const maxP50 = Math.max(
  ...echo.filter((r) => r.mode === "sequential").map((r) => r.wsbeat.p50 / r.native.p50),
);
const results = `# Benchmark results

Date: ${new Date().toISOString().slice(0, 10)}. Machine: ${machine}.
Command: \`deno task bench\` (took ${((performance.now() - started) / 1000).toFixed(0)} s${
  quick ? ", --quick" : ""
}).

Headline: wsbeat reaches **${minRate.toFixed(3)}x** the native msg/s on its worst row, and at most
**${maxP50.toFixed(3)}x** the native p50 latency; targets: at least 0.95x and at most 1.05x.

## 1. Echo throughput and latency, wsbeat vs the raw native WebSocket

The echo server (\`wsbeat serve\`) runs in a process of its own, kept to the last core with
\`taskset\` where it exists. In the client process the raw native
\`WebSocket\` (an \`onmessage\` handler) and a wsbeat client (\`for await\` + \`send\`) alternate, A B
then B A, for ${
  quick ? 3 : 7
} repetitions after one warm-up pair; the figures are medians over the repetitions. Sequential:
one message in flight (2 000 round trips, 1 000 for 64 KiB). Pipelined: a window of 64 in flight
(20 000 messages, 2 000 for 64 KiB). Every echo's length is checked. CPU is the client process's
user + system time per message.

${echoTable(echo)}

## 2. Heartbeat at scale

K idle connections from one process to one server (another process): first raw native sockets,
then wsbeat clients with \`heartbeat: { interval: 1000, reply: "pong" }\`, after a warm-up round of
each. Memory per connection is the growth after a full GC divided by K, read 1.5 s after the
connections opened (steady state, between beats) for both; "wsbeat - native heap" is what wsbeat adds
in JS. A hand-written minimal heartbeat on raw native sockets (on each pong, \`setTimeout\` a ping)
measured about 50 µs of CPU per beat on this machine: that is the runtime's floor for a send, a
receive and a timer wake-up, 5 % of a core per 1 000 connections at 1 s before any library code. CPU per
beat is the client's CPU time over 5 s of beating, less the idle native connections' CPU, divided by
the beats; the core share is for 1 000 connections at a 1 s interval. Targets: at most 2 KiB per
connection, at most 1 % of one core per 1 000 connections. "All beating": every connection beat at
least once during the window and was still open at its end; "false TooSlowError": heartbeat closes
among connections whose server never stopped answering.

${scaleTable(scale)}

## 3. Dead-peer detection

50 trials (10 at a time): a client with \`interval: 200, timeout: 300\` against a server that stops
answering after 3 messages. Overshoot = (time from the last reply to the TooSlowError) - (interval +
timeout). Target: p99 at most 50 ms.

${detectTable(detect)}

## 4. CLI startup

Wall time of \`deno run cli.ts --help\`, warm.

${startupTable(startup)}
`;
await Deno.writeTextFile(new URL("./RESULTS.md", import.meta.url), results);
log("wrote bench/RESULTS.md");
