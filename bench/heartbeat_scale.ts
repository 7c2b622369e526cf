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
import { parseArgs } from "node:util";
import { connect } from "../mod.ts";
import { startServer, table, withFileLimit } from "./_server.ts";

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

type SideName = "native" | "wsbeat";

/** What one side measured, in a process of its own. */
interface Side {
  rssPerConn: number;
  heapPerConn: number;
  cpuMs: number; // over the window
  beats: number;
  open: number;
  everyOneBeat: boolean; // every connection beat at least once during the window
  falseTimeouts: number;
}

/**
 * Measures one side in this process: warm up, open `k` connections, read
 * memory once they have settled, then CPU over `window` ms.
 */
async function measureSide(side: SideName, options: ScaleOptions): Promise<Side> {
  const { url, connections: k, window = 5_000, interval = 1_000 } = options;
  let beats = 0;
  /** A connection of either side: is it open, and close it (resolving who had closed it first). */
  interface Conn {
    isOpen(): boolean;
    beats(): number;
    close(): Promise<string | undefined>;
  }
  const open: () => Promise<Conn> = side === "native"
    ? async () => {
      const ws = new WebSocket(url);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = reject;
      });
      return {
        isOpen: () => ws.readyState === WebSocket.OPEN,
        beats: () => 0,
        close: async () => {
          const closed = new Promise((resolve) => (ws.onclose = resolve));
          ws.close();
          await closed;
          return undefined;
        },
      };
    }
    : async () => {
      let mine = 0;
      const ws = await connect(url, {
        heartbeat: {
          interval,
          timeout: 5_000,
          reply: "pong",
          onBeat: () => {
            beats++;
            mine++;
          },
        },
      });
      return {
        isOpen: () => ws.state === "open",
        beats: () => mine,
        close: async () => (await ws.close()).initiator,
      };
    };
  // Warm-up, so that the measured connections do not pay for compiling the code paths.
  const warm = await inBatches(Math.min(k, 100), 200, open);
  await Promise.all(warm.map((c) => c.close()));
  const before = memory();
  const conns = await inBatches(k, 200, open);
  await new Promise((resolve) => setTimeout(resolve, interval * 1.5)); // steady state, between beats
  const after = memory();
  beats = 0;
  const beatsBefore = conns.map((c) => c.beats());
  const cpu0 = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, window));
  const cpu = cpuMs(cpu0);
  const measuredBeats = beats;
  const stillOpen = conns.filter((c) => c.isOpen()).length;
  const everyOneBeat = conns.every((c, i) => c.beats() > beatsBefore[i]!);
  const initiators = await Promise.all(conns.map((c) => c.close()));
  const falseTimeouts = initiators.filter((i) => i === "heartbeat").length;
  return {
    rssPerConn: (after.rss - before.rss) / k,
    heapPerConn: (after.heap - before.heap) / k,
    cpuMs: cpu,
    beats: measuredBeats,
    open: stillOpen,
    everyOneBeat,
    falseTimeouts,
  };
}

/** Runs one side in a fresh process, so that neither side's garbage is counted against the other. */
async function sideProcess(side: SideName, options: ScaleOptions): Promise<Side> {
  const { url, connections: k, window = 5_000, interval = 1_000 } = options;
  const { code, stdout, stderr } = await withFileLimit(
    [
      "deno",
      "run",
      "--allow-net=127.0.0.1",
      "--v8-flags=--expose-gc",
      new URL(import.meta.url).pathname,
      "--side",
      side,
      "--url",
      url,
      "--connections",
      String(k),
      "--window",
      String(window),
      "--interval",
      String(interval),
    ],
    { stdout: "piped", stderr: "piped" },
  ).output();
  if (code !== 0) throw new Error(`the ${side} side failed: ${new TextDecoder().decode(stderr)}`);
  return JSON.parse(new TextDecoder().decode(stdout));
}

/** Runs the scale benchmark for one K: each side in a process of its own. */
export async function heartbeatScale(options: ScaleOptions): Promise<ScaleResult> {
  const { connections: k, window = 5_000 } = options;
  const native = await sideProcess("native", options);
  const wsbeat = await sideProcess("wsbeat", options);
  const cpu = wsbeat.cpuMs - native.cpuMs; // less what idle native connections cost
  return {
    connections: k,
    nativeRssPerConn: native.rssPerConn,
    wsbeatRssPerConn: wsbeat.rssPerConn,
    nativeHeapPerConn: native.heapPerConn,
    wsbeatHeapPerConn: wsbeat.heapPerConn,
    beats: wsbeat.beats,
    cpuPerBeatUs: wsbeat.beats ? (cpu * 1000) / wsbeat.beats : NaN,
    corePer1000: (cpu / window) * 100 * (1000 / k),
    allBeating: wsbeat.open === k && wsbeat.everyOneBeat,
    falseTimeouts: wsbeat.falseTimeouts,
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
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      side: { type: "string" },
      url: { type: "string" },
      connections: { type: "string", default: "1000" },
      window: { type: "string", default: "5000" },
      interval: { type: "string", default: "1000" },
    },
  });
  const k = Number(values.connections);
  if (values.side === "native" || values.side === "wsbeat") {
    const side = await measureSide(values.side, {
      url: values.url!,
      connections: k,
      window: Number(values.window),
      interval: Number(values.interval),
    });
    console.log(JSON.stringify(side));
  } else {
    await using server = await startServer(["--pong", "ping:pong"]);
    console.log(scaleTable([await heartbeatScale({ url: server.url, connections: k })]));
  }
}
