/**
 * `deno task bench`: every benchmark, in one run, written to bench/RESULTS.md
 * (formatted with `deno fmt`).
 *
 * Usage: `deno task bench`, or for a quicker run (fewer chunks, 1 000
 * connections only) `deno run --allow-net=127.0.0.1 --allow-run=deno,sh
 * --allow-read --allow-write=bench/RESULTS.md --allow-sys
 * --v8-flags=--expose-gc bench/run.ts --quick`. Profile a figure with
 * `--cpu-prof` and `bench/profile_top.ts`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { echoBench, type EchoRow, echoTable, verdict, WS_CASES, wsPeerTable } from "./echo.ts";
import {
  beatCost,
  floorCost,
  heartbeatScale,
  heartbeatTable,
  idleMet,
  idleTable,
  pingMet,
  type ScaleResult,
  stateOverIdle,
} from "./heartbeat_scale.ts";
import { detectBench, detectTable } from "./detect.ts";
import { burstBench, burstTable, congestionControl } from "./burst.ts";
import { floorBench, type FloorRow, floorTable } from "./floor.ts";
import { warmupLabel, warmupProcess, warmupTable } from "./warmup.ts";
import { cliStartup, startupTable } from "./cli_startup.ts";
import { defaultCount, FIREHOSE_CASES, firehoseBench, firehoseTable } from "./firehose.ts";
import {
  deflateFeedBench,
  deflateFeedTable,
  deflateMemoryBench,
  deflateMemoryTable,
  FEED_CASES,
} from "./deflate_feed.ts";
import { startServer, startWsServer, table } from "./_server.ts";
import {
  idleServer,
  idleServerTable,
  serverEcho,
  serverEchoTable,
  type ServerRow,
  serverTargets,
  startNamed,
} from "./server.ts";

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

const ECHO_REPS = quick ? 4 : 10;
const WS_REPS = quick ? 4 : 10;
const PONG = { pong: { ping: "ping", pong: "pong" } };

log("echo against wsbeat serve: raw native, native transport, wsbeat transport");
let echo: EchoRow[];
{
  await using server = await startServer();
  echo = await echoBench({ url: server.url, reps: ECHO_REPS });
}
console.log(echoTable(echo));

log("where a sequential round trip's CPU goes: socket, protocol core, client, raw native");
let floor: FloorRow[];
{
  await using server = await startServer();
  floor = await floorBench({ url: server.url, reps: ECHO_REPS });
}
console.log(floorTable(floor));
/** The lowest and highest CPU a round trip of any client in the floor rows, µs. */
const floorSpan = (rows: FloorRow[]) => {
  const all = rows.flatMap((row) => Object.values(row.cpu));
  return `${Math.min(...all).toFixed(0)}-${Math.max(...all).toFixed(0)}`;
};

log("a burst after a pause: the first echo of 64 KiB messages");
const congestion = await congestionControl();
let burst: Awaited<ReturnType<typeof burstBench>>;
{
  await using server = await startServer();
  burst = await burstBench({ url: server.url, rounds: quick ? 10 : 30 });
}
console.log(burstTable(burst));

log("the JIT's warm-up: 1 KiB text pipelined, batch after batch");
const WARMUP = quick ? { batches: 2, chunks: 4 } : { batches: 6, chunks: 32 };
let warmup: Awaited<ReturnType<typeof warmupProcess>>;
{
  await using server = await startServer();
  warmup = await warmupProcess({ url: server.url, ...WARMUP });
}
console.log(warmupTable(warmup));

log("echo against Node's ws: sequential 1 to 64 KiB");
let wsPeer: EchoRow[];
{
  await using server = await startWsServer();
  wsPeer = await echoBench({
    url: server.url,
    cases: WS_CASES,
    reps: WS_REPS,
    roundTrips: () => 500,
  });
}
console.log(wsPeerTable(wsPeer));

const scale: ScaleResult[] = [];
for (const k of quick ? [1000] : [1000, 10000]) {
  log(`connections at scale: ${k}`);
  await using server = await startServer(PONG);
  scale.push(await heartbeatScale({ url: server.url, connections: k }));
}
console.log(idleTable(scale));
console.log(heartbeatTable(scale));

log("dead-peer detection: 50 trials of each probe");
const detect = [];
{
  await using server = await startServer({ stallAfter: 3, ...PONG });
  detect.push(await detectBench({ url: server.url, trials: 50 }));
  detect.push(await detectBench({ url: server.url, trials: 50, probe: "application" }));
}
console.log(detectTable(detect));

log("server: wsbeat serve against Deno.serve + upgradeWebSocket, echo");
let serverRows: ServerRow[];
{
  await using deno = await startNamed("deno");
  await using wsbeat = await startNamed("wsbeat");
  serverRows = await serverEcho({ servers: { deno, wsbeat }, reps: ECHO_REPS });
}
console.log(serverEchoTable(serverRows));
const SERVER_IDLE = quick ? 1000 : 10000;
log(`server: idle memory at ${SERVER_IDLE} connections`);
const serverIdle = {
  deno: await idleServer("deno", { connections: SERVER_IDLE }),
  wsbeat: await idleServer("wsbeat", { connections: SERVER_IDLE }),
};
console.log(idleServerTable(serverIdle));

const FIREHOSE_REPS = quick ? 2 : 5;
log("firehose: a feed pushed as fast as the socket takes it, each client in its own process");
const firehose = await firehoseBench({
  reps: FIREHOSE_REPS,
  cases: quick ? FIREHOSE_CASES.map((c) => ({ ...c, count: c.count / 4 })) : FIREHOSE_CASES,
});
console.log(firehoseTable(firehose));

const FEED_REPS = quick ? 2 : 5;
const feedCases = quick ? FEED_CASES.map((c) => ({ ...c, count: c.count / 5 })) : FEED_CASES;
log("permessage-deflate: a compressed feed, each client in its own process");
const feed = await deflateFeedBench({ reps: FEED_REPS, cases: feedCases });
console.log(deflateFeedTable(feed));
log("permessage-deflate: idle memory per compressed connection");
const feedMemory = await deflateMemoryBench(quick ? [1000] : [1000, 10000]);
console.log(deflateMemoryTable(feedMemory));

log("CLI startup");
const startup = await cliStartup(10);
console.log(startupTable(startup));

// --- the summary --------------------------------------------------------------

const yes = (met: boolean) => met ? "met" : "**missed**";
const x = (n: number) => `${n.toFixed(2)}x`;
const ratios = (rows: EchoRow[], f: (r: EchoRow) => number) => {
  const values = rows.map(f);
  return { min: Math.min(...values), max: Math.max(...values) };
};
const pipelined = echo.filter((r) => r.mode === "pipelined");
const rate = (r: EchoRow) => r.results.wsbeat.rate / r.results.raw.rate;
const pipelinedRate = ratios(pipelined, rate);
const overSocket = floor.map((r) => r.cpu.wsbeat / r.cpu.socket);
const span = (values: number[]) => `${x(Math.min(...values))} to ${x(Math.max(...values))}`;
const feedCpu = firehose.rows.map((r) => r.cpu.wsbeat / r.cpu.raw);
const feedCpuWs = firehose.rows.map((r) => r.cpu.wsbeat / r.cpu.ws);
const feedRate = firehose.rows.map((r) => r.rate.wsbeat / r.rate.raw);
const stall = echo.filter((r) => r.size === 4096 || r.size === 16384);
const wsStall = wsPeer.filter((r) => r.size === 4096 || r.size === 16384);
const maxMs = (rows: EchoRow[], key: "p50" | "p99") =>
  (Math.max(...rows.map((r) => r.results.wsbeat[key])) / 1000).toFixed(3);
const rawP50 = (rows: EchoRow[]) =>
  `${(Math.min(...rows.map((r) => r.results.raw.p50)) / 1000).toFixed(1)} to ${
    (Math.max(...rows.map((r) => r.results.raw.p50)) / 1000).toFixed(1)
  } ms`;
const idle = scale.find((r) => r.connections === 10000) ?? scale[0]!;
const beat = scale.find((r) => r.connections === 1000)!;
const pingCost = beatCost(beat, "ping", "idle");
const probeCost = beatCost(beat, "probe", "raw");
const pingTargets = pingMet(beat);
const kib = (bytes: number) => (bytes / 1024).toFixed(2);

const summary = table([
  "target (wsbeat transport against the raw native WebSocket)",
  "measured",
  "met",
], [
  [
    "firehose: client CPU per message ≤ 1.0x on every row (section 8)",
    span(feedCpu),
    yes(Math.max(...feedCpu) <= 1),
  ],
  [
    "firehose: client CPU per message below Node ws's on every row",
    `${span(feedCpuWs)} of Node ws's`,
    yes(Math.max(...feedCpuWs) < 1),
  ],
  [
    "firehose: msg/s ≥ 1.0x on every row",
    span(feedRate),
    yes(Math.min(...feedRate) >= 1),
  ],
  [
    "sequential echo: CPU a round trip ≤ 1.05x the bare socket's (section 1, bench/floor.ts)",
    `${span(overSocket)} of the bare socket's`,
    yes(Math.max(...overSocket) <= 1.05),
  ],
  [
    "pipelined echo: msg/s ≥ 1.0x on every row",
    `${x(pipelinedRate.min)} to ${x(pipelinedRate.max)}`,
    yes(pipelinedRate.min >= 1),
  ],
  [
    "4 KiB and 16 KiB round trip well under 1 ms (p50 and p99 < 1 ms), wsbeat serve",
    `p50 ≤ ${maxMs(stall, "p50")} ms, p99 ≤ ${maxMs(stall, "p99")} ms (raw native p50: ${
      rawP50(stall)
    })`,
    yes(stall.every((r) => verdict(r).met)),
  ],
  [
    "4 KiB and 16 KiB round trip well under 1 ms, Node ws server",
    `p50 ≤ ${maxMs(wsStall, "p50")} ms, p99 ≤ ${maxMs(wsStall, "p99")} ms (raw native p50: ${
      rawP50(wsStall)
    })`,
    yes(wsStall.every((r) => verdict(r).met)),
  ],
  [
    `idle memory per connection at ${idle.connections} connections ≤ raw native (RSS)`,
    `${kib(idle.sides.idle.rssPerConn)} KiB against ${kib(idle.sides.raw.rssPerConn)} KiB (${
      x(idle.sides.idle.rssPerConn / idle.sides.raw.rssPerConn)
    })`,
    yes(idleMet(idle)),
  ],
  [
    "ping-frame heartbeat, 1 000 connections at 1 s: ≤ 2.5 % of one core",
    `${pingCost.corePer1000.toFixed(2)} % (${
      pingCost.cpuPerBeatUs.toFixed(1)
    } µs a beat); application probe on the native transport: ${
      probeCost.corePer1000.toFixed(2)
    } %; runtime floor (no wsbeat code): ${floorCost(beat).corePer1000.toFixed(2)} % (${
      floorCost(beat).cpuPerBeatUs.toFixed(1)
    } µs a beat)`,
    yes(pingTargets.cpu),
  ],
  [
    "ping-frame heartbeat: ≤ 2 KiB per connection over an idle one (JS heap + ArrayBuffers)",
    `+${kib(stateOverIdle(pingCost))} KiB (RSS +${
      kib(pingCost.rssOverIdle)
    } KiB, mostly V8's young generation)`,
    yes(pingTargets.memory),
  ],
  [
    "dead-peer detection: overshoot p99 ≤ 50 ms",
    detect.map((d) => `${d.probe} ${d.p99.toFixed(1)} ms`).join(", "),
    yes(detect.every((d) => d.p99 <= 50 && d.allTooSlow)),
  ],
]);

const results = `# Benchmark results

Date: ${new Date().toISOString().slice(0, 10)}. Machine: ${machine}.
Command: \`deno task bench\` (took ${((performance.now() - started) / 1000).toFixed(0)} s${
  quick ? ", --quick" : ""
}).

Three clients are compared: the **raw native** \`WebSocket\` (the baseline), the wsbeat client on the
**native transport** (\`transport: "native"\`, the runtime's WebSocket underneath), and the wsbeat
client on the **wsbeat transport** (the default on Deno: wsbeat's own RFC 6455 over
\`Deno.connect\`, \`TCP_NODELAY\` on, one write per batch of frames). Ratios are to the raw native
client in the same run.

## Targets

${summary}

## 1. Echo throughput, latency and CPU

The echo server (\`serve()\`, as \`wsbeat serve\` runs it) runs in a process of its own, kept to the
last core with \`taskset\` where it exists. In the client process the raw native \`WebSocket\` (an
\`onmessage\` handler) and the wsbeat client on each transport (\`for await\` + \`send\`) take turns in
chunks, on connections opened once per row, in a rotating order (each goes first, second and last
equally often), ${ECHO_REPS} chunks each after two warm-up chunks each; the figures add up the
chunks, so that a change in the machine's load touches the three alike. Sequential: one message in
flight (4 000 round trips a client, 2 000 for 64 KiB; a chunk stops after 100 ms). Pipelined: a
window of 64 in flight (40 000 messages a client, 4 000 for 64 KiB). Every echo's length is
checked. CPU is the client process's user + system time per message. In brackets, the ratio to the
raw native client.

${echoTable(echo)}

The 4 KiB and 16 KiB rows show the delayed-ACK stall of the runtime's client: it turns
\`TCP_NODELAY\` off and writes a frame's header and payload apart, so the payload waits for the
server's delayed ACK (about 40 ms). A stalled chunk stops after 100 ms, so its round-trip count is
low.

### Where a sequential round trip's CPU goes, and the bare-socket floor

A sequential round trip costs the client ${
  floorSpan(floor)
} µs of CPU here, nearly all of it the runtime and
the kernel: a write, a read, and going to sleep and waking up in between. Four clients take turns on the
sequential rows, ${ECHO_REPS} chunks of 1 000 round trips each after two warm-up chunks each
(bench/floor.ts). **socket** writes a frame made once beforehand on \`Deno.connect\` with
\`TCP_NODELAY\` and waits for its echo from a read loop that is always pending (as a client's must
be, to see pings and closes while its application is not reading): no wsbeat code runs. **protocol
core** is the same socket with wsbeat's protocol core making each frame (masking key, mask, header,
UTF-8) and parsing each echo (header, UTF-8). Then the wsbeat client (wsbeat transport) and the raw
native \`WebSocket\`, as above. The bare socket costs about what the raw native client does, whose
framing runs in Rust on the same runtime's I/O: on these rows a JavaScript client on
\`Deno.connect\` starts at about 1.0x before it does any work of its own. Every client times each
round trip alike (two clock reads). The target: the wsbeat client within 1.05x of the bare socket's
CPU a round trip.

${floorTable(floor)}

### A burst after a pause (for the record)

The 64 KiB pipelined rows swing from run to run where the kernel's TCP congestion control is BBR
(here: ${congestion}). A loopback capture (tcpdump) showed why: the last segment of a burst's last
echo is small (the loopback MSS is 65 483 bytes, a 64 KiB echo 65 546), the client's kernel ACKs it
only when its delayed-ACK timer fires, and at the next burst the server's kernel sends one segment
and then holds the rest of its echoes for about 40 ms, although the server's writes completed at
once. It touches both clients, and with CUBIC it did not occur (README, Performance). Here each
client waited 50 ms, then sent 64 messages of 64 KiB at once and kept 64 in flight until 400 echoes
were back, 30 rounds each after a warm-up round, taking turns (bench/burst.ts); the figure is the
time to the first echo.

${burstTable(burst)}

### The JIT's warm-up (for the record)

The echo rows above count about 50 000 messages a client after two warm-up chunks. The raw client's
JavaScript is one \`onmessage\` handler; wsbeat's is its protocol, transport and client, which V8
goes on compiling (on background threads of the same process, so it counts as client CPU) for a few
hundred thousand messages. Here the ${warmupLabel()} pipelined row runs on in a fresh process, in
batches of ${WARMUP.chunks} chunks of 4 000 messages a client (the three clients taking turns, as
above), after one uncounted chunk each (bench/warmup.ts). Run once in this process instead, after
the sections above, the ratio went 1.59x, 1.09x, 1.21x, 1.39x, 1.05x, 1.31x: what ran before moves
it (there, V8's young generation had shrunk during the 50 ms pauses of the burst section, and the
same work took twice the scavenges).

${warmupTable(warmup)}

## 2. Sequential round trips against Node's \`ws\` server

The same clients against a Node \`ws\` echo server (npm:ws, run by Deno in a process of its own,
pinned like the other), where the issue measured the 44 ms round trips: 500 round trips a client in
${WS_REPS} chunks (a chunk stops after 100 ms), after two warm-up chunks each.

${wsPeerTable(wsPeer)}

## 3. Idle memory per connection

K idle connections from one process to one server (another process): raw native \`WebSocket\`s, and
wsbeat clients on the wsbeat transport, each in a fresh process, after a warm-up round of 100.
Memory per connection is the growth after a full GC divided by K, read 1.5 s after the connections
opened. RSS is what the target is about (the native socket's state is in Rust, outside the JS heap);
the JS heap and the ArrayBuffers (memory V8 tracks outside its heap) show where wsbeat's goes.

${idleTable(scale)}

## 4. Heartbeat at scale

The same K connections, now beating every second, each kind in a fresh process: wsbeat clients on
the wsbeat transport with \`heartbeat: { interval: 1000 }\` (protocol ping frames), measured against
the idle wsbeat clients; beside them, for comparison, the application probe on the native transport
(\`heartbeat: { interval: 1000, reply: "pong" }\`, the only heartbeat that transport can send),
measured against the raw native sockets; and the runtime floor, a beat with no wsbeat code at all
(hand-opened connections on \`Deno.connect\`, each writing a masked ping, reading its pong and
sleeping with a \`setTimeout\`): no heartbeat written in JavaScript on this runtime can cost less,
so it shows how much of a beat is wsbeat's. CPU per beat is the client's CPU time over 5 s of beating,
less the baseline's over the same time, divided by the beats; the core share is for 1 000
connections at a 1 s interval. Memory over idle: the JS heap and ArrayBuffers a beating connection
keeps (the heartbeat's state: the target is about this), and the RSS difference, which also counts
V8's young generation, grown with the allocation rate rather than with the connections (compare
1 000 and 10 000). "All
beating": every connection beat at least once during the window and was still open at its end;
"false TooSlowError": heartbeat failures against a server that never stopped answering.

${heartbeatTable(scale)}

## 5. Dead-peer detection

50 trials of each probe (10 at a time), wsbeat transport, interval 200 ms and timeout 300 ms,
against a server that stops reading after 3 messages and keeps TCP open (with ping frames the
client sends the 3 messages itself). Overshoot = (time from the last reply to the TooSlowError) -
(interval + timeout). Target: p99 at most 50 ms.

${detectTable(detect)}

## 6. CLI startup

Wall time of \`deno run cli.ts --help\`, warm.

${startupTable(startup)}

## 7. Server: wsbeat serve against Deno.serve + upgradeWebSocket

\`wsbeat serve\` (\`serve()\` on wsbeat's protocol core over \`Deno.listen\`, bench/_serve.ts) against
the same echo written with \`Deno.serve\` + \`Deno.upgradeWebSocket\` (bench/_deno_serve.ts), each in
a process of its own kept to the last core with \`taskset\`, with the same client: the raw native
\`WebSocket\`. Each server first echoes one uncounted chunk of every row (so that no row measures
V8 still compiling wsbeat serve's JavaScript). The client takes turns between the two servers chunk
by chunk (the order alternates), ${ECHO_REPS} chunks each after two warm-up chunks each; sequential:
16 000 round trips a server (8 000 for 64 KiB), pipelined: a window of 64, 160 000 messages a server
(40 000 for 64 KiB). The chunks are four times as long as the client rows' (a sequential one takes
about 0.15 s): with chunks of 40 ms, single rows swung by a fifth or more when the shared machine took the
core for a few milliseconds. Server CPU is the server process's user + system time (\`/proc/PID/stat\`, all its threads,
10 ms ticks) per message. Idle memory: each server in a fresh process; a client process opens 100
connections and closes them (warm-up), then opens ${SERVER_IDLE} idle connections; the server's RSS
(\`/proc/PID/status\`) 2 s after, less its RSS before, divided by ${SERVER_IDLE} (no forced GC on
either side).

${serverTargets(serverRows, serverIdle)}

${serverEchoTable(serverRows)}

${idleServerTable(serverIdle)}

## 8. Firehose: reading a feed as fast as the socket takes it

The job wsbeat exists for: a server (a market-data feed) pushing messages as fast as the socket
takes them, a client reading them (bench/firehose.ts). The server (bench/_firehose_server.ts, a
process of its own kept to the last core with \`taskset\`) answers the upgrade by hand and writes
about 1 MiB of frames built once per row at a time, then a close frame: almost no work per message,
so that the client is what is measured. Each client runs in a process of its own and measures its
own CPU time (user + system, all its threads, \`process.cpuUsage()\`) from the connect to the last
message; the processes take turns. The **floor** is a bare \`Deno.connect\` read loop that walks the
frame headers and touches each payload's first and last byte without making messages: the least any
JavaScript client on this runtime can spend. Then the raw native \`WebSocket\` (\`onmessage\`,
\`binaryType\` \`"arraybuffer"\`), the wsbeat client (\`for await\`) on the wsbeat transport and on
the native transport, and Node's \`ws\` run by \`node\` (a \`message\` handler; text turned into
strings, as the other clients hand out). Every client counts the messages and checks each one's type,
length and last byte or character (as an application uses what it receives: a text message gathered
in pieces is made flat). Per row: a warm-up run of each client, then ${FIREHOSE_REPS} runs each in a rotating
order; the figures are the medians, in brackets the ratio to the raw native client and to the
floor. Messages a run: ${defaultCount(32).toLocaleString("en-US")} up to 1 KiB, ${
  defaultCount(16384).toLocaleString("en-US")
} at 16 KiB, ${defaultCount(262144).toLocaleString("en-US")} at 256 KiB${
  quick ? " (a quarter of that with --quick)" : ""
}. A floor run is short (it reads the feed as fast as the server writes it), so its
figures are the noisiest.

${firehoseTable(firehose)}

## 9. permessage-deflate: a compressed feed

A server pushing compressible JSON (feed-like rows of symbols, prices and sizes) with
permessage-deflate (RFC 7692, level 6), read by each client in a process of its own that measures
its own CPU time from the connect to the last message (bench/deflate_feed.ts; the server,
bench/_deflate_feed_server.ts, compresses each row's frames once, keeping its context as the
servers of \`ws\` and \`websockets\` do, and writes them block by block). The wsbeat client with
compression on (its default offer), the same asking for \`server_no_context_takeover\`, Node's
\`ws\` with \`perMessageDeflate\` (all its threads counted: it inflates on libuv's pool), and the
wsbeat client with \`compression: false\`, which gets the same messages uncompressed. Per row: a
warm-up run of each client, then ${FEED_REPS} runs each in a rotating order; medians. Messages a
run: ${feedCases.map((c) => c.count.toLocaleString("en-US")).join(", ")}. Bytes on the wire are
the frames' (header included), in brackets the share of the uncompressed frame.

${deflateFeedTable(feed)}

Idle memory per connection: ${
  quick ? "1 000" : "1 000 and 10 000"
} wsbeat connections in one process, each having received one compressed 1 KiB message (so that
the inflater holds the server's 32 KiB window), the growth after a GC, against the same connections
uncompressed (see docs/compression.md).

${deflateMemoryTable(feedMemory)}
`;
const path = new URL("./RESULTS.md", import.meta.url).pathname;
await Deno.writeTextFile(path, results);
await new Deno.Command("deno", { args: ["fmt", "-q", path] }).output();
log("wrote bench/RESULTS.md");
