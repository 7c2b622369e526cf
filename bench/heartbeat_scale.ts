/**
 * Heartbeat at scale: K idle connections from one process to one server,
 * first raw native WebSockets, then wsbeat clients beating every second.
 * Reports memory per connection for both, the client's CPU time per beat,
 * and whether every connection kept beating (no false TooSlowError).
 *
 * Run with `--v8-flags=--expose-gc` so memory is measured after a full GC.
 *
 * @module
 */

import process from "node:process";
import { connect, type WebSocketClient } from "../mod.ts";
import { startServer, table } from "./_server.ts";

/** Options for {@linkcode heartbeatScale}. */
export interface ScaleOptions {
  /** The echo server's URL; it must answer "ping" with "pong". */
  url: string;
  /** How many connections. */
  connections: number;
  /** Milliseconds of steady beating to measure CPU over. */
  window?: number;
  /** Heartbeat interval in ms. */
  interval?: number;
}

/** The result for one K. */
export interface ScaleResult {
  connections: number;
  nativeRssPerConn: number; // bytes
  wsbeatRssPerConn: number;
  nativeHeapPerConn: number;
  wsbeatHeapPerConn: number;
  beats: number;
  cpuPerBeatUs: number; // client CPU per beat, idle native CPU subtracted
  corePer1000: number; // % of one core per 1000 connections
  allBeating: boolean;
  falseTimeouts: number;
}

const memory = () => {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed } = Deno.memoryUsage();
  return { rss, heap: heapUsed };
};
const cpuMs = (since?: { user: number; system: number }) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

/** Opens `n` things `batch` at a time. */
async function inBatches<T>(n: number, batch: number, open: () => Promise<T>): Promise<T[]> {
  const all: T[] = [];
  for (let i = 0; i < n; i += batch) {
    all.push(...await Promise.all(Array.from({ length: Math.min(batch, n - i) }, open)));
  }
  return all;
}

/** Runs the scale benchmark for one K. */
export async function heartbeatScale(options: ScaleOptions): Promise<ScaleResult> {
  const { url, connections: k, window = 5_000, interval = 1_000 } = options;

  // Native, idle: the baseline for memory and for CPU.
  const before = memory();
  const natives = await inBatches(k, 200, async () => {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    return ws;
  });
  const afterNative = memory();
  let cpu0 = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, Math.min(window, 2_000)));
  const idleCpuPerMs = cpuMs(cpu0) / Math.min(window, 2_000);
  await Promise.all(natives.map((ws) => {
    const closed = new Promise((resolve) => (ws.onclose = resolve));
    ws.close();
    return closed;
  }));

  // wsbeat, beating every `interval` ms.
  const middle = memory();
  let beats = 0;
  const clients: WebSocketClient[] = await inBatches(k, 200, () =>
    connect(url, {
      heartbeat: { interval, timeout: 5_000, reply: "pong", onBeat: () => beats++ },
    }));
  const afterWsbeat = memory();
  await new Promise((resolve) => setTimeout(resolve, interval * 1.5)); // settle into the rhythm
  beats = 0;
  cpu0 = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, window));
  const cpu = cpuMs(cpu0) - idleCpuPerMs * window;
  const measuredBeats = beats;
  const open = clients.filter((c) => c.state === "open").length;
  const infos = await Promise.all(clients.map((c) => c.close()));
  const falseTimeouts = infos.filter((i) => i.initiator === "heartbeat").length;

  return {
    connections: k,
    nativeRssPerConn: (afterNative.rss - before.rss) / k,
    wsbeatRssPerConn: (afterWsbeat.rss - middle.rss) / k,
    nativeHeapPerConn: (afterNative.heap - before.heap) / k,
    wsbeatHeapPerConn: (afterWsbeat.heap - middle.heap) / k,
    beats: measuredBeats,
    cpuPerBeatUs: measuredBeats ? (cpu * 1000) / measuredBeats : NaN,
    corePer1000: (cpu / window) * 100 * (1000 / k),
    allBeating: open === k && measuredBeats >= k * Math.floor(window / (interval + 50)),
    falseTimeouts,
  };
}

const kib = (bytes: number) => (bytes / 1024).toFixed(2);

/** Renders the results as a Markdown table. */
export function scaleTable(results: ScaleResult[]): string {
  return table(
    [
      "connections",
      "native RSS KiB/conn",
      "wsbeat RSS KiB/conn",
      "native heap KiB/conn",
      "wsbeat heap KiB/conn",
      "wsbeat - native heap KiB/conn",
      "beats measured",
      "CPU µs/beat",
      "% of one core per 1000 conns",
      "all beating",
      "false TooSlowError",
    ],
    results.map((r) => [
      r.connections,
      kib(r.nativeRssPerConn),
      kib(r.wsbeatRssPerConn),
      kib(r.nativeHeapPerConn),
      kib(r.wsbeatHeapPerConn),
      `**${kib(r.wsbeatHeapPerConn - r.nativeHeapPerConn)}**`,
      r.beats,
      r.cpuPerBeatUs.toFixed(1),
      `**${r.corePer1000.toFixed(2)} %**`,
      r.allBeating ? "yes" : "**no**",
      r.falseTimeouts,
    ]),
  );
}

if (import.meta.main) {
  const k = Number(Deno.args[0] ?? 1000);
  await using server = await startServer(["--pong", "ping:pong"]);
  console.log(scaleTable([await heartbeatScale({ url: server.url, connections: k })]));
}
