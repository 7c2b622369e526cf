/**
 * Echo throughput, latency and CPU: the raw native `WebSocket` (the
 * baseline) against the wsbeat client on each transport, `"native"` (the
 * runtime's WebSocket under wsbeat) and `"wsbeat"` (its own RFC 6455 over
 * `Deno.connect`). 32 B, 1 KiB and 64 KiB text and binary, sequential round
 * trips and pipelined (64 in flight); 4 KiB and 16 KiB sequential, where a
 * client that writes a frame's header and payload apart waits for the peer's
 * delayed ACK. Every echo's length is checked; the three alternate in a
 * rotating order.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { connect } from "../mod.ts";
import { quantile, startServer, startWsServer, table } from "./_server.ts";

/** One row to measure: a payload size, text or binary, one at a time or pipelined. */
export interface EchoCase {
  /** Payload size in bytes. */
  size: number;
  /** Binary (a `Uint8Array`) or text (ASCII). */
  binary: boolean;
  /** One message in flight, or `window` in flight. */
  mode: "sequential" | "pipelined";
}

/** How many messages a row sends and how: shared by {@linkcode echoBench} and `server.ts`. */
export interface ChunkOptions {
  /** The rows. */
  cases?: EchoCase[];
  /** Measured chunks per client (or server) in each row, after warm-up chunks. */
  reps?: number;
  /** Sequential round trips per client and row (split into the chunks), per size. */
  roundTrips?: (size: number) => number;
  /** Pipelined messages per client and row (split into the chunks), per size. */
  pipelined?: (size: number) => number;
  /** Messages in flight when pipelined. */
  window?: number;
  /**
   * A sequential chunk stops after this many ms even if it made fewer round
   * trips: a client stalled by delayed ACKs (44 ms a round trip) would
   * otherwise take minutes.
   */
  budget?: number;
}

/** Options for {@linkcode echoBench}; `cases` by default {@linkcode DEFAULT_CASES}. */
export interface EchoBenchOptions extends ChunkOptions {
  /** The echo server's URL. */
  url: string;
}

/** One chunk of a row: `total` messages split into `reps` chunks. */
export function chunkSpec(
  { size, binary }: EchoCase,
  total: number,
  reps: number,
  window: number,
  budget: number,
): ChunkSpec {
  return {
    payload: payloadOf(size, binary),
    size,
    n: Math.max(1, Math.ceil(total / reps)),
    window,
    budget,
  };
}

/** "32 B text", "64 KiB binary". */
export function rowLabel({ size, binary }: EchoCase): string {
  return `${sizeLabel(size)} ${binary ? "binary" : "text"}`;
}

/** The three clients compared: the raw native WebSocket, and wsbeat on each transport. */
export type Impl = "raw" | "native" | "wsbeat";
/** The clients in their column order. */
export const IMPLS: readonly Impl[] = ["raw", "native", "wsbeat"];

/** A message to echo: text or binary. */
export type Payload = string | Uint8Array;

/** One measured chunk: what, how many, and (pipelined) how many in flight. */
export interface ChunkSpec {
  payload: Payload;
  size: number;
  n: number;
  window: number;
  budget: number;
}

/** What one chunk measured. */
export interface Chunk {
  n: number;
  elapsedMs: number;
  cpuUs: number;
  rtts?: Float64Array;
}

/** What the chunks of one client in one row add up to. */
export interface Sample {
  /** Messages per second. */
  rate: number;
  /** Round-trip time, µs (sequential only; NaN pipelined). */
  p50: number;
  /** Round-trip time, µs (sequential only; NaN pipelined). */
  p99: number;
  /** Client CPU time (user + system) per message, µs. */
  cpu: number;
  /** Messages echoed. */
  n: number;
}

/** The rows measured by default: 32 B, 1 KiB, 64 KiB both ways; 4 KiB and 16 KiB sequential. */
export const DEFAULT_CASES: EchoCase[] = [32, 1024, 4096, 16384, 65536].flatMap((size) =>
  [false, true].flatMap((binary) =>
    (size === 4096 || size === 16384
      ? ["sequential"] as const
      : ["sequential", "pipelined"] as const)
      .map((mode) => ({ size, binary, mode }))
  )
);

/** The rows run against Node's `ws`: sequential, where the native client stalls. */
export const WS_CASES: EchoCase[] = [1024, 4096, 16384, 65536].flatMap((size) =>
  [false, true].map((binary) => ({ size, binary, mode: "sequential" as const }))
);

/** A payload of `size` bytes: ASCII text, or bytes counting up. */
export function payloadOf(size: number, binary: boolean): Payload {
  if (!binary) return "x".repeat(size);
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = i & 0xff;
  return bytes;
}

const lengthOf = (data: unknown) =>
  typeof data === "string" ? data.length : (data as ArrayBuffer | Uint8Array).byteLength;

function check(data: unknown, size: number): void {
  if (lengthOf(data) !== size) throw new Error(`echo of ${lengthOf(data)} bytes, expected ${size}`);
}

/** An open connection of one of the three clients, that runs chunks. */
export interface Client {
  sequential(spec: ChunkSpec): Promise<Chunk>;
  pipelined(spec: ChunkSpec): Promise<Chunk>;
  close(): Promise<void>;
}

/** Times `run`, which returns how many messages it echoed (and, sequential, the round trips). */
export async function timed(run: () => Promise<number | Float64Array>): Promise<Chunk> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const done = await run();
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuUs = cpu.user + cpu.system;
  return typeof done === "number"
    ? { n: done, elapsedMs, cpuUs }
    : { n: done.length, elapsedMs, cpuUs, rtts: done };
}

/** The raw native WebSocket, with an `onmessage` handler. */
export async function openRaw(url: string): Promise<Client> {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  return {
    sequential: ({ payload, size, n, budget }) =>
      timed(async () => {
        let next: (data: unknown) => void = () => {};
        ws.onmessage = (e) => next(e.data);
        const rtts = new Float64Array(n);
        const t0 = performance.now();
        let i = 0;
        while (i < n) {
          const start = performance.now();
          const echoed = new Promise((resolve) => (next = resolve));
          ws.send(payload);
          check(await echoed, size);
          const end = performance.now();
          rtts[i++] = (end - start) * 1000;
          if (end - t0 > budget) break;
        }
        return rtts.subarray(0, i);
      }),
    pipelined: ({ payload, size, n, window }) =>
      timed(() =>
        new Promise<number>((resolve, reject) => {
          let sent = 0;
          let received = 0;
          ws.onmessage = (e) => {
            try {
              check(e.data, size);
            } catch (error) {
              reject(error);
            }
            if (++received === n) resolve(n);
            else if (sent < n) {
              ws.send(payload);
              sent++;
            }
          };
          for (; sent < Math.min(window, n); sent++) ws.send(payload);
        })
      ),
    close: async () => {
      if (ws.readyState === WebSocket.CLOSED) return; // dropped: onclose has fired
      const closed = new Promise((resolve) => (ws.onclose = resolve));
      ws.close();
      await closed;
    },
  };
}

/** A wsbeat client on `transport`, with `for await` and `send()`. */
async function openClient(url: string, transport: "native" | "wsbeat"): Promise<Client> {
  const ws = await connect(url, { transport });
  return {
    sequential: ({ payload, size, n, budget }) =>
      timed(async () => {
        const rtts = new Float64Array(n);
        const t0 = performance.now();
        let i = 0;
        let start = performance.now();
        ws.send(payload);
        for await (const message of ws) {
          check(message, size);
          const end = performance.now();
          rtts[i++] = (end - start) * 1000;
          if (i === n || end - t0 > budget) break;
          start = performance.now();
          ws.send(payload);
        }
        return rtts.subarray(0, i);
      }),
    pipelined: ({ payload, size, n, window }) =>
      timed(async () => {
        let sent = 0;
        let received = 0;
        for (; sent < Math.min(window, n); sent++) ws.send(payload);
        for await (const message of ws) {
          check(message, size);
          if (++received === n) break;
          if (sent < n) {
            ws.send(payload);
            sent++;
          }
        }
        return n;
      }),
    close: async () => void await ws.close(),
  };
}

/** Opens a connection of each client, by name. */
export const OPEN: Record<Impl, (url: string) => Promise<Client>> = {
  raw: openRaw,
  native: (url) => openClient(url, "native"),
  wsbeat: (url) => openClient(url, "wsbeat"),
};

/** Adds up the chunks of one client. */
export function total(chunks: Chunk[]): Sample {
  let n = 0;
  let elapsedMs = 0;
  let cpuUs = 0;
  const rtts: number[] = [];
  for (const chunk of chunks) {
    n += chunk.n;
    elapsedMs += chunk.elapsedMs;
    cpuUs += chunk.cpuUs;
    if (chunk.rtts) rtts.push(...chunk.rtts);
  }
  return {
    rate: n / (elapsedMs / 1000),
    p50: rtts.length ? quantile(rtts, 0.5) : NaN,
    p99: rtts.length ? quantile(rtts, 0.99) : NaN,
    cpu: cpuUs / n,
    n,
  };
}

/** One row of the result: the three clients' totals over their chunks. */
export interface EchoRow extends EchoCase {
  /** "32 B text" and so on. */
  payload: string;
  /** The totals, per client. */
  results: Record<Impl, Sample>;
}

/** "32 B", "4 KiB". */
export function sizeLabel(size: number): string {
  return size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
}

/**
 * Runs the echo benchmark against the server at `url`. For each row the
 * three clients connect once and take turns, chunk by chunk, in a rotating
 * order (each goes first, second and last equally often), so that a change
 * in the machine's load touches all three alike; two warm-up chunks each
 * come first and are not counted.
 */
export async function echoBench(options: EchoBenchOptions): Promise<EchoRow[]> {
  const {
    url,
    cases = DEFAULT_CASES,
    reps = 10,
    roundTrips = (size) => size >= 65536 ? 2000 : 4000,
    pipelined = (size) => size >= 65536 ? 4000 : 40000,
    window = 64,
    budget = 100,
  } = options;
  const rows: EchoRow[] = [];
  for (const { size, binary, mode } of cases) {
    const messages = mode === "sequential" ? roundTrips(size) : pipelined(size);
    const spec = chunkSpec({ size, binary, mode }, messages, reps, window, budget);
    const clients = {} as Record<Impl, Client>;
    for (const impl of IMPLS) clients[impl] = await OPEN[impl](url);
    const once = (impl: Impl) => clients[impl][mode](spec);
    // Warm-up, not counted: two chunks each, so that the JIT has compiled the hot paths (its
    // compiling runs on other threads, but in this process, and would count as client CPU).
    for (let i = 0; i < 2; i++) for (const impl of IMPLS) await once(impl);
    const chunks: Record<Impl, Chunk[]> = { raw: [], native: [], wsbeat: [] };
    for (let rep = 0; rep < reps; rep++) {
      const turn = Math.floor(rep / 2) % IMPLS.length;
      const order = [...IMPLS.slice(turn), ...IMPLS.slice(0, turn)];
      if (rep % 2 === 1) order.reverse();
      for (const impl of order) chunks[impl].push(await once(impl));
    }
    for (const impl of IMPLS) await clients[impl].close();
    rows.push({
      size,
      binary,
      mode,
      payload: rowLabel({ size, binary, mode }),
      results: {
        raw: total(chunks.raw),
        native: total(chunks.native),
        wsbeat: total(chunks.wsbeat),
      },
    });
  }
  return rows;
}

/** A target for the wsbeat transport on one row, and whether the row meets it. */
export interface Verdict {
  /** The target, in words. */
  target: string;
  /** Whether it is met. */
  met: boolean;
  /** The measured figures the target is about. */
  measured: string;
}

const x = (n: number) => `${n.toFixed(2)}x`;
const ms = (us: number) => `${(us / 1000).toFixed(3)} ms`;

/**
 * The issue's target for the wsbeat transport on `row`: against the raw
 * native WebSocket, msg/s at least 1.0x and CPU per message at most 1.0x on
 * 32 B and 1 KiB rows, at least 0.9x (and at most 1/0.9x) on 64 KiB rows;
 * on 4 KiB and 16 KiB a round trip well under 1 ms (p50 and p99 below it).
 */
export function verdict(row: EchoRow): Verdict {
  const { raw, wsbeat } = row.results;
  if (row.size === 4096 || row.size === 16384) {
    return {
      target: "p50, p99 < 1 ms",
      met: wsbeat.p50 < 1000 && wsbeat.p99 < 1000,
      measured: `p50 ${ms(wsbeat.p50)}, p99 ${ms(wsbeat.p99)}`,
    };
  }
  const floor = row.size >= 65536 ? 0.9 : 1;
  const rate = wsbeat.rate / raw.rate;
  const cpu = wsbeat.cpu / raw.cpu;
  return {
    target: floor === 1 ? "msg/s ≥ 1x, CPU ≤ 1x" : "msg/s ≥ 0.9x, CPU ≤ 1.11x",
    met: rate >= floor && cpu <= 1 / floor,
    measured: `msg/s ${x(rate)}, CPU ${x(cpu)}`,
  };
}

const f0 = (n: number) => Number.isNaN(n) ? "-" : Math.round(n).toLocaleString("en-US");
const f1 = (n: number) => Number.isNaN(n) ? "-" : n.toFixed(1);
/** A figure with its ratio to the raw native one. */
const vs = (value: number, base: number, format: (n: number) => string, bold = false) =>
  Number.isNaN(value)
    ? "-"
    : `${format(value)} (${bold ? `**${x(value / base)}**` : x(value / base)})`;

/**
 * Renders the echo rows as a Markdown table: each wsbeat column with its
 * ratio to the raw native WebSocket, and with `targets`, the wsbeat
 * transport's target and whether it is met.
 */
export function echoTable(rows: EchoRow[], targets = true): string {
  return table(
    [
      "payload",
      "mode",
      "msg/s raw",
      "msg/s native transport",
      "msg/s wsbeat transport",
      "p50 µs raw",
      "p50 µs native transport",
      "p50 µs wsbeat transport",
      "p99 µs raw / native / wsbeat",
      "CPU µs/msg raw",
      "CPU µs/msg native transport",
      "CPU µs/msg wsbeat transport",
      ...(targets ? ["target (wsbeat transport)", "met"] : []),
    ],
    rows.map((r) => {
      const { raw, native, wsbeat } = r.results;
      const v = verdict(r);
      return [
        r.payload,
        r.mode,
        f0(raw.rate),
        vs(native.rate, raw.rate, f0),
        vs(wsbeat.rate, raw.rate, f0, true),
        f1(raw.p50),
        vs(native.p50, raw.p50, f1),
        vs(wsbeat.p50, raw.p50, f1, true),
        r.mode === "sequential" ? `${f0(raw.p99)} / ${f0(native.p99)} / ${f0(wsbeat.p99)}` : "-",
        f1(raw.cpu),
        vs(native.cpu, raw.cpu, f1),
        vs(wsbeat.cpu, raw.cpu, f1, true),
        ...(targets ? [v.target, v.met ? "met" : `**missed** (${v.measured})`] : []),
      ];
    }),
  );
}

/** The sequential rows against Node's `ws`: round trips per client, and the wsbeat target. */
export function wsPeerTable(rows: EchoRow[]): string {
  return table(
    [
      "payload",
      "round trips raw / native / wsbeat",
      "p50 ms raw",
      "p50 ms native transport",
      "p50 ms wsbeat transport",
      "p99 ms raw / native / wsbeat",
      "CPU µs/msg raw / native / wsbeat",
      "target (wsbeat transport)",
      "met",
    ],
    rows.map((r) => {
      const { raw, native, wsbeat } = r.results;
      const fixed = (us: number) => (us / 1000).toFixed(3);
      const v = verdict(r);
      return [
        r.payload,
        `${raw.n} / ${native.n} / ${wsbeat.n}`,
        fixed(raw.p50),
        fixed(native.p50),
        `**${fixed(wsbeat.p50)}**`,
        `${fixed(raw.p99)} / ${fixed(native.p99)} / ${fixed(wsbeat.p99)}`,
        `${f1(raw.cpu)} / ${f1(native.cpu)} / ${f1(wsbeat.cpu)}`,
        r.size === 4096 || r.size === 16384 ? v.target : "for the record",
        r.size === 4096 || r.size === 16384 ? (v.met ? "met" : `**missed** (${v.measured})`) : "-",
      ];
    }),
  );
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      reps: { type: "string", default: "10" },
      ws: { type: "boolean" },
      size: { type: "string", multiple: true },
      mode: { type: "string" },
    },
  });
  const pick = (cases: EchoCase[]) =>
    cases.filter((c) =>
      (!values.size || values.size.includes(String(c.size))) &&
      (!values.mode || c.mode === values.mode)
    );
  const reps = Number(values.reps);
  if (values.ws) {
    await using server = await startWsServer();
    const rows = await echoBench({
      url: server.url,
      cases: pick(WS_CASES),
      reps,
      roundTrips: () => 500,
    });
    console.log(wsPeerTable(rows));
  } else {
    await using server = await startServer();
    console.log(echoTable(await echoBench({ url: server.url, cases: pick(DEFAULT_CASES), reps })));
  }
}
