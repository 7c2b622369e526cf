/**
 * Connections at scale: K connections from one process to one server, each
 * side of the comparison in a fresh process of its own.
 *
 * - Idle memory per connection: raw native `WebSocket`s against idle wsbeat
 *   clients on the wsbeat transport.
 * - The heartbeat: wsbeat clients on the wsbeat transport beating with ping
 *   frames (`heartbeat: { interval }`), against the idle ones: CPU per beat
 *   and memory per connection over an idle one. Beside it, for comparison,
 *   the application probe on the native transport (`reply: "pong"`, the
 *   only heartbeat that transport can send) against raw native sockets.
 *
 * Run with `--v8-flags=--expose-gc` so memory is measured after a full GC.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { connect } from "../mod.ts";
import { startServer, table, upgradeByHand, withFileLimit } from "./_server.ts";

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

/**
 * What each side is: `raw`, native WebSockets, idle; `idle`, wsbeat clients
 * on the wsbeat transport, idle; `ping`, the same beating with ping frames;
 * `probe`, wsbeat clients on the native transport beating with an
 * application probe; `floor`, no wsbeat code at all: WebSocket connections
 * opened by hand on `Deno.connect`, each writing a masked ping frame, reading
 * its pong and sleeping with a `setTimeout` (what the runtime itself costs a
 * beat, the least any heartbeat in JavaScript can cost).
 */
export type SideName = "raw" | "idle" | "ping" | "probe" | "floor";
const SIDES: readonly SideName[] = ["raw", "idle", "ping", "probe", "floor"];

/** What one side measured, in a process of its own. */
export interface Side {
  /** RSS growth per connection, bytes, after a full GC. */
  rssPerConn: number;
  /** JS heap (used) growth per connection, bytes. */
  heapPerConn: number;
  /** Growth of memory outside the heap that V8 tracks (ArrayBuffers), per connection, bytes. */
  externalPerConn: number;
  /** Client CPU time over the window, ms. */
  cpuMs: number;
  /** The system (kernel) part of `cpuMs`. */
  sysMs: number;
  /** Beats during the window. */
  beats: number;
  /** Connections still open at the end of the window. */
  open: number;
  /** Whether every connection beat at least once during the window. */
  everyOneBeat: boolean;
  /** Heartbeat failures (the server never stopped answering). */
  falseTimeouts: number;
}

/** The result for one K: every side. */
export interface ScaleResult {
  connections: number;
  interval: number;
  window: number;
  sides: Record<SideName, Side>;
}

/** Memory after a full GC, twice with a pause between: ArrayBuffers are freed a little later. */
const memory = async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((resolve) => setTimeout(resolve, 100));
  gc?.();
  const { rss, heapUsed, external } = Deno.memoryUsage();
  return { rss, heap: heapUsed, external };
};

/** Opens `n` things `batch` at a time. */
async function inBatches<T>(n: number, batch: number, open: () => Promise<T>): Promise<T[]> {
  const all: T[] = [];
  for (let i = 0; i < n; i += batch) {
    all.push(...await Promise.all(Array.from({ length: Math.min(batch, n - i) }, open)));
  }
  return all;
}

/** A connection of any side: is it open, its beats, and close it (resolving who closed it). */
interface Conn {
  isOpen(): boolean;
  beats(): number;
  close(): Promise<string | undefined>;
}

/** A bare beating connection for the `floor` side: see {@linkcode SideName}. */
async function openFloor(url: string, interval: number, onBeat: () => void): Promise<Conn> {
  const conn = await upgradeByHand(url);
  const buffer = new Uint8Array(1024);
  // A masked ping with a 1-byte payload; the server's pong is 3 bytes. Keys come in batches, as
  // in protocol/frames.ts.
  const ping = new Uint8Array([0x89, 0x81, 0, 0, 0, 0, 0x31]);
  const keys = new Uint8Array(1024);
  let open = true;
  let beats = 0;
  const loop = (async () => {
    try {
      while (open) {
        const key = (beats * 4) % keys.length;
        if (key === 0) crypto.getRandomValues(keys);
        ping.set(keys.subarray(key, key + 4), 2);
        ping[6] = 0x31 ^ ping[2]!;
        await conn.write(ping);
        for (let got = 0; got < 3;) {
          const n = await conn.read(buffer);
          if (n === null) return;
          got += n;
        }
        beats++;
        onBeat();
        await new Promise((resolve) => setTimeout(resolve, interval));
      }
    } catch {
      open = false; // closed under the loop
    }
  })();
  return {
    isOpen: () => open,
    beats: () => beats,
    close: async () => {
      open = false;
      conn.close();
      await loop;
      return undefined;
    },
  };
}

/** How one side opens a connection; `onBeat` counts beats. */
function opener(side: SideName, url: string, interval: number, onBeat: () => void) {
  if (side === "floor") return () => openFloor(url, interval, onBeat);
  if (side === "raw") {
    return async (): Promise<Conn> => {
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
    };
  }
  return async (): Promise<Conn> => {
    let mine = 0;
    const beat = () => {
      onBeat();
      mine++;
    };
    const ws = await connect(
      url,
      side === "idle"
        ? { transport: "wsbeat" }
        : side === "ping"
        ? { transport: "wsbeat", heartbeat: { interval, timeout: 5_000, onBeat: beat } }
        : {
          transport: "native",
          heartbeat: { interval, timeout: 5_000, reply: "pong", onBeat: beat },
        },
    );
    return {
      isOpen: () => ws.state === "open",
      beats: () => mine,
      close: async () => (await ws.close()).initiator,
    };
  };
}

/**
 * Measures one side in this process: warm up, open `k` connections, read
 * memory once they have settled, then CPU over `window` ms.
 */
async function measureSide(side: SideName, options: ScaleOptions): Promise<Side> {
  const { url, connections: k, window = 5_000, interval = 1_000 } = options;
  let beats = 0;
  const open = opener(side, url, interval, () => beats++);
  // Warm-up, so that the measured connections do not pay for compiling the code paths.
  const warm = await inBatches(Math.min(k, 100), 200, open);
  await new Promise((resolve) => setTimeout(resolve, interval * 1.5));
  await Promise.all(warm.map((c) => c.close()));
  const before = await memory();
  const conns = await inBatches(k, 200, open);
  await new Promise((resolve) => setTimeout(resolve, interval * 1.5)); // steady state, between beats
  const after = await memory();
  beats = 0;
  const beatsBefore = conns.map((c) => c.beats());
  const cpu0 = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, window));
  const used = process.cpuUsage(cpu0);
  const measuredBeats = beats;
  const stillOpen = conns.filter((c) => c.isOpen()).length;
  const everyOneBeat = conns.every((c, i) => c.beats() > beatsBefore[i]!);
  const initiators = await Promise.all(conns.map((c) => c.close()));
  return {
    rssPerConn: (after.rss - before.rss) / k,
    heapPerConn: (after.heap - before.heap) / k,
    externalPerConn: (after.external - before.external) / k,
    cpuMs: (used.user + used.system) / 1000,
    sysMs: used.system / 1000,
    beats: measuredBeats,
    open: stillOpen,
    everyOneBeat,
    falseTimeouts: initiators.filter((i) => i === "heartbeat").length,
  };
}

/** Runs one side in a fresh process, so that neither side's garbage is counted against another. */
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
export async function heartbeatScale(
  options: ScaleOptions & {
    /** The sides to run; all by default. */
    sides?: readonly SideName[];
    /** Run the sides at once (for smoke tests: the figures then mean little). */
    parallel?: boolean;
  },
): Promise<ScaleResult> {
  const { connections, window = 5_000, interval = 1_000, sides = SIDES, parallel } = options;
  const result: Partial<Record<SideName, Side>> = {};
  if (parallel) {
    const all = await Promise.all(sides.map((side) => sideProcess(side, options)));
    sides.forEach((side, i) => (result[side] = all[i]));
  } else {
    for (const side of sides) result[side] = await sideProcess(side, options);
  }
  return { connections, interval, window, sides: result as Record<SideName, Side> };
}

const kib = (bytes: number) => (bytes / 1024).toFixed(2);
const x = (n: number) => `${n.toFixed(2)}x`;

/** Idle memory per connection, wsbeat transport vs raw native: whether it is at most native's. */
export function idleMet(r: ScaleResult): boolean {
  return r.sides.idle.rssPerConn <= r.sides.raw.rssPerConn;
}

/** Renders idle memory per connection, wsbeat transport against the raw native socket. */
export function idleTable(results: ScaleResult[]): string {
  return table(
    [
      "connections",
      "RSS KiB/conn raw native",
      "RSS KiB/conn wsbeat transport",
      "wsbeat / raw",
      "JS heap KiB/conn raw / wsbeat",
      "ArrayBuffers KiB/conn raw / wsbeat",
      "target",
      "met",
    ],
    results.filter((r) => r.sides.raw && r.sides.idle).map((r) => {
      const { raw, idle } = r.sides;
      return [
        r.connections,
        kib(raw.rssPerConn),
        `**${kib(idle.rssPerConn)}**`,
        x(idle.rssPerConn / raw.rssPerConn),
        `${kib(raw.heapPerConn)} / ${kib(idle.heapPerConn)}`,
        `${kib(raw.externalPerConn)} / ${kib(idle.externalPerConn)}`,
        r.connections === 10000 ? "RSS ≤ raw native" : "for the record",
        r.connections === 10000 ? (idleMet(r) ? "met" : "**missed**") : "-",
      ];
    }),
  );
}

/** What a heartbeat costs, against its idle baseline. */
export interface BeatCost {
  /** Client CPU per beat, µs, the idle baseline's CPU subtracted. */
  cpuPerBeatUs: number;
  /** % of one core for 1 000 connections beating every `interval`... scaled to 1 s. */
  corePer1000: number;
  /** Memory per connection over the idle baseline, bytes. */
  rssOverIdle: number;
  heapOverIdle: number;
  externalOverIdle: number;
}

/** The cost of side `beating` over side `baseline`. */
export function beatCost(r: ScaleResult, beating: SideName, baseline: SideName): BeatCost {
  const b = r.sides[beating];
  const base = r.sides[baseline];
  const cpu = b.cpuMs - base.cpuMs;
  return {
    cpuPerBeatUs: b.beats ? (cpu * 1000) / b.beats : NaN,
    // CPU over the window as a share of one core, for 1 000 connections at this interval.
    corePer1000: (cpu / r.window) * 100 * (1000 / r.connections) * (r.interval / 1000),
    rssOverIdle: b.rssPerConn - base.rssPerConn,
    heapOverIdle: b.heapPerConn - base.heapPerConn,
    externalOverIdle: b.externalPerConn - base.externalPerConn,
  };
}

/**
 * The floor side's cost: its CPU per beat as it is (its idle sockets cost no
 * CPU, so there is no baseline to take off).
 */
export function floorCost(r: ScaleResult): Pick<BeatCost, "cpuPerBeatUs" | "corePer1000"> {
  const { cpuMs, beats } = r.sides.floor;
  return {
    cpuPerBeatUs: beats ? (cpuMs * 1000) / beats : NaN,
    corePer1000: (cpuMs / r.window) * 100 * (1000 / r.connections) * (r.interval / 1000),
  };
}

/**
 * What a beating connection keeps over an idle one: JS heap and ArrayBuffers
 * (a negative ArrayBuffer figure is noise, counted as 0). RSS is not used:
 * it also grows with V8's young generation, sized by the allocation rate.
 */
export function stateOverIdle(cost: BeatCost): number {
  return cost.heapOverIdle + Math.max(0, cost.externalOverIdle);
}

/**
 * Whether the ping-frame heartbeat meets its targets: ≤ 2.5 % of a core, and
 * ≤ 2 KiB a connection of state ({@linkcode stateOverIdle}).
 */
export function pingMet(r: ScaleResult): { cpu: boolean; memory: boolean } {
  const cost = beatCost(r, "ping", "idle");
  return {
    cpu: cost.corePer1000 <= 2.5,
    memory: stateOverIdle(cost) <= 2048,
  };
}

/** Renders the heartbeat rows: ping frames (wsbeat transport), then the application probe (native). */
export function heartbeatTable(results: ScaleResult[]): string {
  const rows: (string | number)[][] = [];
  for (const r of results) {
    for (
      const [beating, baseline, label] of [
        ["ping", "idle", "ping frames, wsbeat transport (over idle wsbeat)"],
        ["probe", "raw", 'application probe `reply: "pong"`, native transport (over raw native)'],
      ] as const
    ) {
      const side = r.sides[beating];
      if (!side || !r.sides[baseline]) continue;
      const cost = beatCost(r, beating, baseline);
      const met = beating === "ping" ? pingMet(r) : undefined;
      rows.push([
        r.connections,
        label,
        side.beats,
        cost.cpuPerBeatUs.toFixed(1),
        beating === "ping"
          ? `**${cost.corePer1000.toFixed(2)} %**`
          : `${cost.corePer1000.toFixed(2)} %`,
        kib(cost.rssOverIdle),
        `${kib(cost.heapOverIdle)} + ${kib(cost.externalOverIdle)}`,
        side.open === r.connections && side.everyOneBeat ? "yes" : "**no**",
        side.falseTimeouts,
        met
          ? `CPU ${met.cpu ? "met" : "**missed**"}, memory ${met.memory ? "met" : "**missed**"}`
          : "for comparison",
      ]);
    }
  }
  for (const r of results) {
    const floor = r.sides.floor;
    if (!floor) continue;
    rows.push([
      r.connections,
      "runtime floor: no wsbeat code (a masked ping written on `Deno.connect`, its pong read, a `setTimeout` a beat)",
      floor.beats,
      floorCost(r).cpuPerBeatUs.toFixed(1),
      `${floorCost(r).corePer1000.toFixed(2)} %`,
      "-",
      "-",
      floor.open === r.connections && floor.everyOneBeat ? "yes" : "**no**",
      "-",
      "what the runtime costs",
    ]);
  }
  return table(
    [
      "connections",
      "heartbeat",
      "beats measured",
      "CPU µs/beat",
      "% of one core per 1000 conns at 1 s",
      "RSS KiB/conn over idle",
      "JS heap + ArrayBuffers KiB/conn over idle",
      "all beating",
      "false TooSlowError",
      "targets: ≤ 2.5 % of a core, ≤ 2 KiB/conn",
    ],
    rows,
  );
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      side: { type: "string" },
      sides: { type: "string" },
      url: { type: "string" },
      connections: { type: "string", default: "1000" },
      window: { type: "string", default: "5000" },
      interval: { type: "string", default: "1000" },
    },
  });
  const options = {
    connections: Number(values.connections),
    window: Number(values.window),
    interval: Number(values.interval),
  };
  const side = values.side as SideName | undefined;
  if (side !== undefined) {
    if (!SIDES.includes(side)) throw new TypeError(`unknown side ${side}`);
    console.log(JSON.stringify(await measureSide(side, { url: values.url!, ...options })));
  } else {
    await using server = await startServer({ pong: { ping: "ping", pong: "pong" } });
    const sides = values.sides ? values.sides.split(",") as SideName[] : SIDES;
    const result = await heartbeatScale({ url: server.url, ...options, sides });
    console.log(JSON.stringify(result.sides));
    if (result.sides.raw && result.sides.idle) console.log(idleTable([result]));
    console.log(heartbeatTable([result]));
  }
}
