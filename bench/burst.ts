/**
 * A burst after a pause: how long the first echo of a pipelined burst of
 * 64 KiB messages takes when the connection was quiet for a while before it,
 * for the raw native `WebSocket` and the wsbeat client on the wsbeat
 * transport, against wsbeat's echo server.
 *
 * Why it is measured: the 64 KiB pipelined echo rows swing from run to run on
 * machines whose kernel uses BBR congestion control (`sysctl
 * net.ipv4.tcp_congestion_control`). A capture of loopback (tcpdump) showed
 * the mechanism: the last segment of a burst's last echo is small (the
 * loopback MSS is 65 483 bytes, an echo 65 546), the client's kernel ACKs it
 * only when its delayed-ACK timer fires (about 40 ms later), and at the next
 * burst the server's kernel sends one segment and holds the rest of its
 * echoes for about 40 ms. The server's writes complete at once; the data
 * waits in the kernel. With CUBIC, or with a small exchange after each burst
 * (which carries the ACK at once), the wait does not occur.
 *
 * Each round waits `pause` ms, sends `window` messages at once and keeps
 * `window` in flight until `perRound` echoes are back; the figure is the time
 * to the first echo. The clients take turns, each going first equally often.
 *
 * Usage: deno run --allow-net=127.0.0.1 --allow-run=sh,deno bench/burst.ts
 *
 * @module
 */

import { connect, type WebSocketClient } from "../mod.ts";
import { quantile, startServer, table } from "./_server.ts";

/** Options for {@linkcode burstBench}. */
export interface BurstOptions {
  /** The echo server's URL. */
  url: string;
  /** Rounds per client. */
  rounds?: number;
  /** Quiet ms before each round's burst. */
  pause?: number;
  /** Messages in flight. */
  window?: number;
  /** Echoes per round. */
  perRound?: number;
  /** First echoes slower than this many ms count as held. */
  heldAfter?: number;
}

/** What one client measured. */
export interface BurstResult {
  /** Time to each round's first echo, ms. */
  firstEcho: number[];
  /** Rounds whose first echo took longer than `heldAfter`. */
  held: number;
}

const SIZE = 64 * 1024;

type Round = () => Promise<number>;

function rawRound(ws: WebSocket, payload: string, window: number, n: number): Round {
  return () =>
    new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      let first = NaN;
      let sent = 0;
      let received = 0;
      ws.onclose = (e) => reject(new Error(`the raw client closed during a round (${e.code})`));
      ws.onmessage = () => {
        if (received++ === 0) first = performance.now() - t0;
        if (received === n) resolve(first);
        else if (sent < n) {
          ws.send(payload);
          sent++;
        }
      };
      for (; sent < window; sent++) ws.send(payload);
    });
}

function wsbeatRound(ws: WebSocketClient, payload: string, window: number, n: number): Round {
  return async () => {
    const t0 = performance.now();
    let first = NaN;
    let sent = 0;
    let received = 0;
    for (; sent < window; sent++) ws.send(payload);
    for await (const _ of ws) {
      if (received++ === 0) first = performance.now() - t0;
      if (received === n) break;
      if (sent < n) {
        ws.send(payload);
        sent++;
      }
    }
    if (received < n) throw new Error(`the wsbeat client ended after ${received} of ${n} echoes`);
    return first;
  };
}

/**
 * Measures the first echo of bursts after a pause, for both clients.
 *
 * @param options The server and the shape of the rounds.
 * @returns The results per client.
 */
export async function burstBench(
  options: BurstOptions,
): Promise<Record<"raw" | "wsbeat", BurstResult>> {
  const { url, rounds = 30, pause = 50, window = 64, perRound = 400, heldAfter = 20 } = options;
  const payload = "x".repeat(SIZE);
  const raw = new WebSocket(url);
  await new Promise((resolve, reject) => {
    raw.onopen = resolve;
    raw.onerror = reject;
  });
  const results: Record<"raw" | "wsbeat", BurstResult> = {
    raw: { firstEcho: [], held: 0 },
    wsbeat: { firstEcho: [], held: 0 },
  };
  try {
    await using ws = await connect(url, { transport: "wsbeat" });
    const runs: Record<"raw" | "wsbeat", Round> = {
      raw: rawRound(raw, payload, window, perRound),
      wsbeat: wsbeatRound(ws, payload, window, perRound),
    };
    for (let round = 0; round < rounds + 1; round++) {
      const order = round % 2 === 0 ? ["raw", "wsbeat"] as const : ["wsbeat", "raw"] as const;
      for (const name of order) {
        await new Promise((resolve) => setTimeout(resolve, pause));
        const first = await runs[name]();
        if (round === 0) continue; // warm-up
        results[name].firstEcho.push(first);
        if (first > heldAfter) results[name].held++;
      }
    }
  } finally {
    if (raw.readyState !== WebSocket.CLOSED) {
      const closed = new Promise((resolve) => (raw.onclose = resolve));
      raw.close();
      await closed;
    }
  }
  return results;
}

/**
 * The kernel's TCP congestion control, where Linux tells it (through `sh`:
 * Deno reads `/proc/sys` only with every permission).
 */
export async function congestionControl(): Promise<string> {
  try {
    const { stdout } = await new Deno.Command("sh", {
      args: ["-c", "cat /proc/sys/net/ipv4/tcp_congestion_control 2>/dev/null"],
      stderr: "null",
    }).output();
    return new TextDecoder().decode(stdout).trim() || "unknown";
  } catch {
    return "unknown";
  }
}

/** The results as a Markdown table. */
export function burstTable(results: Record<"raw" | "wsbeat", BurstResult>, heldAfter = 20): string {
  return table(
    ["client", "rounds", "first echo p50 ms", "first echo max ms", `held (> ${heldAfter} ms)`],
    (["raw", "wsbeat"] as const).map((name) => {
      const r = results[name];
      return [
        name === "raw" ? "raw native" : "wsbeat transport",
        String(r.firstEcho.length),
        quantile(r.firstEcho, 0.5).toFixed(1),
        Math.max(...r.firstEcho).toFixed(1),
        String(r.held),
      ];
    }),
  );
}

if (import.meta.main) {
  await using server = await startServer();
  const results = await burstBench({ url: server.url });
  console.log(`TCP congestion control: ${await congestionControl()}\n`);
  console.log(burstTable(results));
}
