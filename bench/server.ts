/**
 * The server side: `wsbeat serve` (`serve()` on wsbeat's protocol core,
 * bench/_serve.ts) against `Deno.serve` + `Deno.upgradeWebSocket`
 * (bench/_deno_serve.ts), each in a process of its own pinned to the last
 * core, echoing the same load from the same client.
 *
 * - Throughput: the raw native `WebSocket` (this process) echoes 32 B,
 *   1 KiB and 64 KiB text and binary, sequential and pipelined, against
 *   both servers in turn, chunk by chunk (the order alternates), so that a
 *   change in the machine's load touches both alike. Beside msg/s, the
 *   server process's CPU time per message (`/proc/PID/stat`).
 * - Idle memory per connection: for each server a fresh process; a client
 *   process opens K idle raw native WebSockets (after a warm-up of 100,
 *   closed again); the server's RSS (`/proc/PID/status`) after a settle,
 *   less the RSS before, divided by K.
 *
 * Usage: deno run --allow-net=127.0.0.1 --allow-run=deno,sh --allow-read bench/server.ts
 * [--reps N] [--connections K] [--size 32 ...] [--mode sequential|pipelined] [--no-memory]
 * [--prof DIR] (each server's CPU profile into DIR; list it with bench/profile_top.ts)
 * [--serve JSON] (serve() options for the throughput run, say '{"maxUnsentBytes":16777216}')
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type Chunk,
  type ChunkOptions,
  chunkSpec,
  type Client,
  type EchoCase,
  openRaw,
  rowLabel,
  type Sample,
  total,
} from "./echo.ts";
import {
  type BenchServeOptions,
  type ServerProcess,
  startDenoServer,
  startServer,
  table,
  withFileLimit,
} from "./_server.ts";

/** The two servers compared. */
export type ServerName = "deno" | "wsbeat";
/** The servers in their column order: the baseline first. */
export const SERVERS: readonly ServerName[] = ["deno", "wsbeat"];

/** Starts one of the servers (in a fresh process); `flags` go to `deno run`. */
export function startNamed(
  name: ServerName,
  flags: string[] = [],
  options: BenchServeOptions = {},
): Promise<ServerProcess> {
  return name === "wsbeat" ? startServer(options, flags) : startDenoServer(flags);
}

/** The rows: 32 B, 1 KiB and 64 KiB, text and binary, sequential and pipelined. */
export const SERVER_CASES: EchoCase[] = [32, 1024, 65536].flatMap((size) =>
  [false, true].flatMap((binary) =>
    (["sequential", "pipelined"] as const).map((mode) => ({ size, binary, mode }))
  )
);

// --- the server process, from the outside ---------------------------------------------

/**
 * A file of `/proc/PID/`, or undefined where there is none. Without read
 * permission for /proc (the test task allows only `.`) it is read with `sh -c cat`.
 */
async function readProc(pid: number, file: string): Promise<string | undefined> {
  const path = `/proc/${pid}/${file}`;
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) return undefined;
  }
  try {
    const { code, stdout } = await new Deno.Command("sh", {
      args: ["-c", `cat ${path}`],
      stderr: "null",
    }).output();
    return code === 0 ? new TextDecoder().decode(stdout) : undefined;
  } catch {
    return undefined;
  }
}

/** The process's CPU time (user + system, every thread), µs; NaN where unknown. */
export async function cpuOf(pid: number): Promise<number> {
  const stat = await readProc(pid, "stat");
  if (stat === undefined) return NaN;
  // After the command name (which may hold spaces): field 3 is the state, 14 and 15 are utime and
  // stime, in clock ticks of 10 ms (USER_HZ is 100 on Linux).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** The process's resident set size, bytes; NaN where unknown. */
export async function rssOf(pid: number): Promise<number> {
  const status = await readProc(pid, "status");
  const kb = status && /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return kb ? Number(kb) * 1024 : NaN;
}

// --- throughput ----------------------------------------------------------------------

/**
 * Options for {@linkcode serverEcho}: `cases` by default {@linkcode SERVER_CASES}; besides its
 * two warm-up chunks, each server echoes one uncounted chunk of every row before the first row.
 */
export interface ServerEchoOptions extends ChunkOptions {
  /** The running servers. */
  servers: Record<ServerName, ServerProcess>;
}

/** One server's totals in a row: the client's figures, and the server's CPU per message. */
export interface ServerSample extends Sample {
  /** Server CPU time (user + system) per message, µs; NaN where /proc cannot be read. */
  serverCpu: number;
}

/** One row: both servers' totals. */
export interface ServerRow extends EchoCase {
  /** "32 B text" and so on. */
  payload: string;
  /** Per server. */
  results: Record<ServerName, ServerSample>;
}

/** Runs the same raw native client load against both servers, alternating chunk by chunk. */
export async function serverEcho(options: ServerEchoOptions): Promise<ServerRow[]> {
  const {
    servers,
    cases = SERVER_CASES,
    reps = 10,
    // Chunks of 1 600 round trips (about 0.15 s), not 400: a 40 ms chunk swung by a fifth or more
    // when the shared machine took the core for a few milliseconds, and single rows missed.
    roundTrips = (size) => size >= 65536 ? 8000 : 16000,
    pipelined = (size) => size >= 65536 ? 40000 : 160000,
    window = 64,
    budget = 1000,
  } = options;
  const rows: ServerRow[] = [];
  const specOf = (c: EchoCase) =>
    chunkSpec(
      c,
      c.mode === "sequential" ? roundTrips(c.size) : pipelined(c.size),
      reps,
      window,
      budget,
    );
  // Warm-up: one uncounted chunk of every row on each server first, so that no row measures V8
  // still compiling wsbeat serve's JavaScript (Deno.serve's WebSocket is in Rust, with no warm-up).
  for (const c of cases) {
    for (const name of SERVERS) {
      const client = await openRaw(servers[name].url);
      await client[c.mode](specOf(c));
      await client.close();
    }
  }
  for (const { size, binary, mode } of cases) {
    const spec = specOf({ size, binary, mode });
    const clients = {} as Record<ServerName, Client>;
    for (const name of SERVERS) clients[name] = await openRaw(servers[name].url);
    const chunks: Record<ServerName, Chunk[]> = { deno: [], wsbeat: [] };
    const serverCpu: Record<ServerName, number> = { deno: 0, wsbeat: 0 };
    const once = async (name: ServerName, counted: boolean) => {
      const cpu0 = await cpuOf(servers[name].pid);
      const chunk = await clients[name][mode](spec);
      if (!counted) return;
      serverCpu[name] += (await cpuOf(servers[name].pid)) - cpu0;
      chunks[name].push(chunk);
    };
    for (let i = 0; i < 2; i++) for (const name of SERVERS) await once(name, false);
    for (let rep = 0; rep < reps; rep++) {
      for (const name of rep % 2 ? SERVERS.toReversed() : SERVERS) await once(name, true);
    }
    for (const name of SERVERS) await clients[name].close();
    const results = {} as Record<ServerName, ServerSample>;
    for (const name of SERVERS) {
      const sample = total(chunks[name]);
      results[name] = { ...sample, serverCpu: serverCpu[name] / sample.n };
    }
    rows.push({
      size,
      binary,
      mode,
      payload: rowLabel({ size, binary, mode }),
      results,
    });
  }
  return rows;
}

// --- idle memory ---------------------------------------------------------------------

/** One server's idle memory: its RSS before and after K idle connections. */
export interface IdleServer {
  connections: number;
  /** Server RSS, bytes, after the warm-up (connections closed) and a settle. */
  before: number;
  /** Server RSS, bytes, with the K connections open, after a settle. */
  after: number;
  /** (after - before) / K, bytes. */
  perConn: number;
}

/** Options for {@linkcode idleServer}. */
export interface IdleOptions {
  /** How many idle connections. */
  connections: number;
  /** Milliseconds to wait before each RSS reading. */
  settle?: number;
}

const SELF = new URL(import.meta.url).pathname;

/** Measures one server's idle memory, in a fresh server process, from a client process. */
export async function idleServer(name: ServerName, options: IdleOptions): Promise<IdleServer> {
  const { connections, settle = 2000 } = options;
  await using server = await startNamed(name);
  const child = withFileLimit(
    ["deno", "run", "--allow-net=127.0.0.1", SELF, "--idle-client", server.url],
    { stdin: "piped", stdout: "piped", stderr: "inherit" },
  ).spawn();
  const writer = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const ask = async (command: string) => {
    await writer.write(new TextEncoder().encode(`${command}\n`));
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`the idle client exited during "${command}"`);
      buffered += value;
    }
    buffered = buffered.slice(buffered.indexOf("\n") + 1);
  };
  const sleep = () => new Promise((resolve) => setTimeout(resolve, settle));
  try {
    await ask("open 100"); // warm-up: the handshake's code paths compiled, buffers grown
    await ask("close");
    await sleep();
    const before = await rssOf(server.pid);
    await ask(`open ${connections}`);
    await sleep();
    const after = await rssOf(server.pid);
    return { connections, before, after, perConn: (after - before) / connections };
  } finally {
    await writer.close().catch(() => {}); // the client exits, dropping its connections
    await child.status;
    await lines.cancel();
  }
}

/** The idle client: reads `open N` and `close` on stdin, answers a line for each when done. */
async function idleClient(url: string): Promise<void> {
  let sockets: WebSocket[] = [];
  const open = () =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.onopen = () => resolve(ws);
      ws.onerror = reject;
    });
  let text = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    for (let end; (end = text.indexOf("\n")) >= 0;) {
      const [command, count] = text.slice(0, end).split(" ");
      text = text.slice(end + 1);
      if (command === "open") {
        for (let i = 0, n = Number(count); i < n; i += 200) {
          sockets.push(...await Promise.all(Array.from({ length: Math.min(200, n - i) }, open)));
        }
      } else {
        await Promise.all(sockets.map((ws) => {
          const closed = new Promise((resolve) => (ws.onclose = resolve));
          ws.close();
          return closed;
        }));
        sockets = [];
      }
      console.log(`done ${command}`);
    }
  }
  Deno.exit(0);
}

// --- tables --------------------------------------------------------------------------

const x = (n: number) => `${n.toFixed(2)}x`;
const f0 = (n: number) => Number.isNaN(n) ? "-" : Math.round(n).toLocaleString("en-US");
const f1 = (n: number) => Number.isNaN(n) ? "-" : n.toFixed(1);
const kib = (bytes: number) => Number.isNaN(bytes) ? "-" : (bytes / 1024).toFixed(2);
const mib = (bytes: number) => Number.isNaN(bytes) ? "-" : (bytes / 2 ** 20).toFixed(1);
const yes = (met: boolean) => met ? "met" : "**missed**";

/** wsbeat serve's msg/s over Deno.serve's in a row. */
export const rateRatio = (r: ServerRow): number => r.results.wsbeat.rate / r.results.deno.rate;

/** Renders the throughput rows. */
export function serverEchoTable(rows: ServerRow[]): string {
  return table(
    [
      "payload",
      "mode",
      "msg/s Deno.serve",
      "msg/s wsbeat serve",
      "wsbeat / Deno.serve",
      "server CPU µs/msg Deno.serve",
      "server CPU µs/msg wsbeat serve",
      "client CPU µs/msg Deno.serve / wsbeat",
      "target",
      "met",
    ],
    rows.map((r) => {
      const { deno, wsbeat } = r.results;
      return [
        r.payload,
        r.mode,
        f0(deno.rate),
        f0(wsbeat.rate),
        `**${x(rateRatio(r))}**`,
        f1(deno.serverCpu),
        Number.isNaN(wsbeat.serverCpu)
          ? "-"
          : `${f1(wsbeat.serverCpu)} (${x(wsbeat.serverCpu / deno.serverCpu)})`,
        `${f1(deno.cpu)} / ${f1(wsbeat.cpu)}`,
        "msg/s ≥ 0.9x",
        yes(rateRatio(r) >= 0.9),
      ];
    }),
  );
}

/** Whether wsbeat serve's idle memory per connection is at most Deno.serve's. */
export const idleServerMet = (idle: Record<ServerName, IdleServer>): boolean =>
  idle.wsbeat.perConn <= idle.deno.perConn;

/** Renders idle memory per connection for both servers. */
export function idleServerTable(idle: Record<ServerName, IdleServer>): string {
  const { deno, wsbeat } = idle;
  return table([
    "connections",
    "server RSS MiB before → after, Deno.serve",
    "server RSS MiB before → after, wsbeat serve",
    "KiB/conn Deno.serve",
    "KiB/conn wsbeat serve",
    "wsbeat / Deno.serve",
    "target",
    "met",
  ], [[
    wsbeat.connections,
    `${mib(deno.before)} → ${mib(deno.after)}`,
    `${mib(wsbeat.before)} → ${mib(wsbeat.after)}`,
    kib(deno.perConn),
    `**${kib(wsbeat.perConn)}**`,
    x(wsbeat.perConn / deno.perConn),
    "≤ Deno.serve",
    yes(idleServerMet(idle)),
  ]]);
}

/** The targets of the server benchmark, with what was measured. */
export function serverTargets(rows: ServerRow[], idle: Record<ServerName, IdleServer>): string {
  const ratios = rows.map(rateRatio);
  const cpu = rows.map((r) => r.results.wsbeat.serverCpu / r.results.deno.serverCpu);
  const range = (values: number[]) => `${x(Math.min(...values))} to ${x(Math.max(...values))}`;
  return table(["target (wsbeat serve against Deno.serve + upgradeWebSocket)", "measured", "met"], [
    ["echo msg/s ≥ 0.9x on every row", range(ratios), yes(Math.min(...ratios) >= 0.9)],
    ["server CPU per message (for the record)", range(cpu), "-"],
    [
      `idle memory per connection at ${idle.wsbeat.connections} connections ≤ Deno.serve (server RSS)`,
      `${kib(idle.wsbeat.perConn)} KiB against ${kib(idle.deno.perConn)} KiB (${
        x(idle.wsbeat.perConn / idle.deno.perConn)
      })`,
      yes(idleServerMet(idle)),
    ],
  ]);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "idle-client": { type: "string" },
      reps: { type: "string", default: "10" },
      connections: { type: "string", default: "10000" },
      size: { type: "string", multiple: true },
      mode: { type: "string" },
      "no-memory": { type: "boolean" },
      prof: { type: "string" },
      serve: { type: "string" },
    },
  });
  if (values["idle-client"] !== undefined) await idleClient(values["idle-client"]);
  const flags = values.prof ? ["--cpu-prof", `--cpu-prof-dir=${values.prof}`] : [];
  const cases = SERVER_CASES.filter((c) =>
    (!values.size || values.size.includes(String(c.size))) &&
    (!values.mode || c.mode === values.mode)
  );
  let rows: ServerRow[];
  {
    await using deno = await startNamed("deno", flags);
    await using wsbeat = await startNamed("wsbeat", flags, JSON.parse(values.serve ?? "{}"));
    rows = await serverEcho({ servers: { deno, wsbeat }, cases, reps: Number(values.reps) });
  }
  console.log(serverEchoTable(rows));
  if (!values["no-memory"]) {
    const connections = Number(values.connections);
    const idle = {
      deno: await idleServer("deno", { connections }),
      wsbeat: await idleServer("wsbeat", { connections }),
    };
    console.log(idleServerTable(idle));
    console.log(serverTargets(rows, idle));
  }
}
