/**
 * Echo throughput and latency: the raw native WebSocket against a wsbeat
 * client (`for await` iteration + `send`), alternating A B A B, for 32 B,
 * 1 KiB and 64 KiB text and binary, sequential round trips and pipelined
 * (64 in flight). Every echo's length is checked.
 *
 * @module
 */

import process from "node:process";
import { connect } from "../mod.ts";
import { median, quantile, startServer, table } from "./_server.ts";

/** Options for {@linkcode echoBench}. */
export interface EchoBenchOptions {
  /** The echo server's URL. */
  url: string;
  /** Payload sizes in bytes. */
  sizes?: number[];
  /** Repetitions of each A B pair; the order flips every other repetition. */
  reps?: number;
  /** Sequential round trips per run, per size. */
  roundTrips?: (size: number) => number;
  /** Pipelined messages per run, per size. */
  pipelined?: (size: number) => number;
  /** Messages in flight when pipelined. */
  window?: number;
}

type Payload = string | Uint8Array;

/** One measured run: where, what, how many, and (pipelined) how many in flight. */
interface RunSpec {
  url: string;
  payload: Payload;
  size: number;
  n: number;
  window: number;
}
type Impl = "native" | "wsbeat";
interface Sample {
  rate: number; // messages per second
  p50: number; // µs, sequential only
  p99: number;
  cpu: number; // client CPU µs per message
}

function payloadOf(size: number, binary: boolean): Payload {
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

async function openNative(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  return ws;
}

async function closeNative(ws: WebSocket): Promise<void> {
  const closed = new Promise((resolve) => (ws.onclose = resolve));
  ws.close();
  await closed;
}

async function nativeSequential({ url, payload, size, n }: RunSpec): Promise<Sample> {
  const ws = await openNative(url);
  let next: (data: unknown) => void = () => {};
  ws.onmessage = (e) => next(e.data);
  const rtts = new Float64Array(n);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    const echoed = new Promise((resolve) => (next = resolve));
    ws.send(payload);
    check(await echoed, size);
    rtts[i] = (performance.now() - start) * 1000;
  }
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await closeNative(ws);
  return sample(n, elapsed, cpu, rtts);
}

async function wsbeatSequential({ url, payload, size, n }: RunSpec): Promise<Sample> {
  const ws = await connect(url);
  const rtts = new Float64Array(n);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let i = 0;
  let start = performance.now();
  ws.send(payload);
  for await (const message of ws) {
    check(message, size);
    rtts[i] = (performance.now() - start) * 1000;
    if (++i === n) break;
    start = performance.now();
    ws.send(payload);
  }
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await ws.close();
  return sample(n, elapsed, cpu, rtts);
}

async function nativePipelined({ url, payload, size, n, window }: RunSpec): Promise<Sample> {
  const ws = await openNative(url);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    let sent = 0;
    let received = 0;
    ws.onmessage = (e) => {
      try {
        check(e.data, size);
      } catch (error) {
        reject(error);
      }
      if (++received === n) resolve();
      else if (sent < n) {
        ws.send(payload);
        sent++;
      }
    };
    for (; sent < Math.min(window, n); sent++) ws.send(payload);
  });
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await closeNative(ws);
  return sample(n, elapsed, cpu);
}

async function wsbeatPipelined({ url, payload, size, n, window }: RunSpec): Promise<Sample> {
  const ws = await connect(url);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
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
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await ws.close();
  return sample(n, elapsed, cpu);
}

function sample(
  n: number,
  elapsedMs: number,
  cpu: { user: number; system: number },
  rtts?: Float64Array,
): Sample {
  return {
    rate: n / (elapsedMs / 1000),
    p50: rtts ? quantile(rtts, 0.5) : NaN,
    p99: rtts ? quantile(rtts, 0.99) : NaN,
    cpu: (cpu.user + cpu.system) / n,
  };
}

/** One row of the result: medians over the repetitions. */
export interface EchoRow {
  payload: string;
  mode: "sequential" | "pipelined";
  native: Sample;
  wsbeat: Sample;
}

/** Runs the echo benchmark against the server at `url`. */
export async function echoBench(options: EchoBenchOptions): Promise<EchoRow[]> {
  const {
    url,
    sizes = [32, 1024, 65536],
    reps = 5,
    roundTrips = (size) => size >= 65536 ? 1000 : 2000,
    pipelined = (size) => size >= 65536 ? 2000 : 20000,
    window = 64,
  } = options;
  const rows: EchoRow[] = [];
  for (const size of sizes) {
    for (const binary of [false, true]) {
      const payload = payloadOf(size, binary);
      const label = `${size >= 1024 ? `${size / 1024} KiB` : `${size} B`} ${
        binary ? "binary" : "text"
      }`;
      for (const mode of ["sequential", "pipelined"] as const) {
        const runs: Record<Impl, Sample[]> = { native: [], wsbeat: [] };
        const spec: RunSpec = {
          url,
          payload,
          size,
          n: mode === "sequential" ? roundTrips(size) : pipelined(size),
          window,
        };
        const runners = mode === "sequential"
          ? { native: nativeSequential, wsbeat: wsbeatSequential }
          : { native: nativePipelined, wsbeat: wsbeatPipelined };
        const once = (impl: Impl) => runners[impl](spec);
        await once("native"); // warm-up, discarded
        await once("wsbeat");
        for (let rep = 0; rep < reps; rep++) {
          const order: Impl[] = rep % 2 === 0 ? ["native", "wsbeat"] : ["wsbeat", "native"];
          for (const impl of order) runs[impl].push(await once(impl));
        }
        const med = (s: Sample[]): Sample => ({
          rate: median(s.map((x) => x.rate)),
          p50: median(s.map((x) => x.p50)),
          p99: median(s.map((x) => x.p99)),
          cpu: median(s.map((x) => x.cpu)),
        });
        rows.push({ payload: label, mode, native: med(runs.native), wsbeat: med(runs.wsbeat) });
      }
    }
  }
  return rows;
}

const f0 = (n: number) => Number.isNaN(n) ? "-" : Math.round(n).toLocaleString("en-US");
const f1 = (n: number) => Number.isNaN(n) ? "-" : n.toFixed(1);
const ratio = (a: number, b: number) => Number.isNaN(a) ? "-" : `**${(a / b).toFixed(3)}**`;

/** Renders the echo rows as a Markdown table. */
export function echoTable(rows: EchoRow[]): string {
  return table(
    [
      "payload",
      "mode",
      "native msg/s",
      "wsbeat msg/s",
      "wsbeat/native msg/s",
      "native p50 µs",
      "wsbeat p50 µs",
      "wsbeat/native p50",
      "native p99 µs",
      "wsbeat p99 µs",
      "CPU µs/msg native",
      "CPU µs/msg wsbeat",
    ],
    rows.map((r) => [
      r.payload,
      r.mode,
      f0(r.native.rate),
      f0(r.wsbeat.rate),
      ratio(r.wsbeat.rate, r.native.rate),
      f1(r.native.p50),
      f1(r.wsbeat.p50),
      ratio(r.wsbeat.p50, r.native.p50),
      f1(r.native.p99),
      f1(r.wsbeat.p99),
      f1(r.native.cpu),
      f1(r.wsbeat.cpu),
    ]),
  );
}

if (import.meta.main) {
  await using server = await startServer();
  console.log(echoTable(await echoBench({ url: server.url })));
}
