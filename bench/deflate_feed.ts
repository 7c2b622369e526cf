/**
 * permessage-deflate end to end (issue 24): a server pushing compressible
 * JSON messages (200 B, 1 KiB, 16 KiB) with permessage-deflate, read by
 * clients that each run in a process of their own and measure their own CPU
 * time (user + system, all threads) from the connect to the last message,
 * as bench/firehose.ts does for the uncompressed feed:
 *
 * - `deflate`: the wsbeat client, compression on (the default offer); the
 *   server keeps its context (as `ws` and `websockets` servers do);
 * - `deflate-nct`: the same, asking for `server_no_context_takeover`;
 * - `ws`: Node's `ws` client with `perMessageDeflate`, run by `node`;
 * - `plain`: the wsbeat client with `compression: false`: the same
 *   messages uncompressed.
 *
 * The server (bench/_deflate_feed_server.ts) compresses each row's frames
 * once and writes them block by block, so that its own work does not slow
 * the clients. Bytes on the wire per message are the frames' (header
 * included), from the same frames. Per row a warm-up run of each client,
 * then `reps` runs each in a rotating order; the figures are medians.
 *
 * The idle memory rows open 1 000 and 10 000 wsbeat connections in one
 * process, each receiving one compressed 1 KiB message (so that an inflater
 * with takeover holds the server's window), and report the growth per
 * connection after a GC, compressed and not.
 *
 * Usage: deno run --allow-run=deno,node,sh --allow-net=127.0.0.1 --allow-read bench/deflate_feed.ts [--quick]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { median, table, withFileLimit } from "./_server.ts";
import { wsPackageDir } from "./firehose.ts";
import { feedOf } from "./_deflate_feed_server.ts";
import type { FeedMemory, FeedRun } from "./_deflate_feed_client.ts";

const SERVER = new URL("./_deflate_feed_server.ts", import.meta.url).pathname;
const CLIENT = new URL("./_deflate_feed_client.ts", import.meta.url).pathname;
const WS_CLIENT = new URL("./_deflate_feed_ws_client.mjs", import.meta.url).pathname;

/** The clients, in their column order. */
export const FEED_CLIENTS = ["deflate", "deflate-nct", "ws", "plain"] as const;
/** One of {@linkcode FEED_CLIENTS}. */
export type FeedClient = typeof FEED_CLIENTS[number];

/** What each client is called in the tables. */
export const FEED_LABELS: Record<FeedClient, string> = {
  deflate: "wsbeat, deflate (server takeover)",
  "deflate-nct": "wsbeat, deflate (no takeover)",
  ws: "Node ws, deflate (server takeover)",
  plain: "wsbeat, uncompressed",
};

/** One row: a message size and how many messages a run reads. */
export interface FeedCase {
  size: number;
  count: number;
}

/** The rows by default. */
export const FEED_CASES: FeedCase[] = [
  { size: 200, count: 100_000 },
  { size: 1024, count: 50_000 },
  { size: 16384, count: 5_000 },
];

/** One row's results. */
export interface FeedRow extends FeedCase {
  /** The median client CPU µs a message, per client. */
  cpu: Record<FeedClient, number>;
  /** The median messages a second, per client. */
  rate: Record<FeedClient, number>;
  /** Bytes on the wire a message (frame header included): with takeover, without, uncompressed. */
  wire: { takeover: number; none: number; plain: number };
}

/** A process that answers one JSON line for each line written to it. */
class LineProcess {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #reader: ReadableStreamDefaultReader<string>;
  #text = "";
  constructor(argv: string[]) {
    this.#child = withFileLimit(argv, { stdin: "piped", stdout: "piped", stderr: "inherit" })
      .spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#reader = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }
  async ask<T>(request: unknown): Promise<T> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(request) + "\n"));
    while (!this.#text.includes("\n")) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`the client exited: ${JSON.stringify(request)}`);
      this.#text += value;
    }
    const at = this.#text.indexOf("\n");
    const answer = JSON.parse(this.#text.slice(0, at));
    this.#text = this.#text.slice(at + 1);
    if ("error" in answer) throw new Error(`${JSON.stringify(request)}: ${answer.error}`);
    return answer as T;
  }
  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.#child.status;
    await this.#reader.cancel().catch(() => {});
  }
}

async function startServer() {
  const child = withFileLimit(
    ["deno", "run", "--allow-net=127.0.0.1", SERVER],
    { stdin: "null", stdout: "piped", stderr: "inherit" },
    true,
  ).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value = "" } = await reader.read();
  const url = /^listening (\S+)/.exec(value)?.[1];
  const close = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* exited */ }
    await child.status;
    await reader.cancel().catch(() => {});
  };
  if (!url) {
    await close();
    throw new Error(`the feed server did not start: ${value}`);
  }
  return { url, close };
}

function clientArgv(client: FeedClient | "memory", wsDir: string | undefined): string[] {
  if (client === "ws") return ["node", WS_CLIENT, wsDir!];
  const mode = client === "memory" ? "deflate" : client;
  return ["deno", "run", "--allow-net=127.0.0.1", "--v8-flags=--expose-gc", CLIENT, mode];
}

/** Bytes a message on the wire for `size`: the frames the server sends, header included. */
async function wireBytes(size: number): Promise<FeedRow["wire"]> {
  const per = async (mode: "takeover" | "none" | "plain") => {
    const { block } = await feedOf(size, mode);
    return block.bytes.length / block.ends.length;
  };
  return { takeover: await per("takeover"), none: await per("none"), plain: await per("plain") };
}

/** Runs the rows: see the module doc. */
export async function deflateFeedBench(options: {
  cases?: FeedCase[];
  reps?: number;
  warmup?: number;
  clients?: readonly FeedClient[];
} = {}): Promise<FeedRow[]> {
  const { cases = FEED_CASES, reps = 5, warmup = 1, clients = FEED_CLIENTS } = options;
  const wsDir = clients.includes("ws") ? await wsPackageDir() : undefined;
  const server = await startServer();
  const processes = new Map(clients.map((c) => [c, new LineProcess(clientArgv(c, wsDir))]));
  const rows: FeedRow[] = [];
  try {
    for (const row of cases) {
      const runs = new Map<FeedClient, FeedRun[]>(clients.map((c) => [c, []]));
      const request = { url: server.url, ...row };
      for (let rep = -warmup; rep < reps; rep++) {
        for (let i = 0; i < clients.length; i++) {
          const client = clients[(i + Math.max(rep, 0)) % clients.length]!;
          const run = await processes.get(client)!.ask<FeedRun>(request);
          if (rep >= 0) runs.get(client)!.push(run);
        }
      }
      const pick = (f: (r: FeedRun) => number) =>
        Object.fromEntries(clients.map((c) => [c, median(runs.get(c)!.map(f))])) as Record<
          FeedClient,
          number
        >;
      rows.push({
        ...row,
        cpu: pick((r) => r.cpuUs / r.n),
        rate: pick((r) => r.n / r.ms * 1000),
        wire: await wireBytes(row.size),
      });
    }
  } finally {
    for (const process of processes.values()) await process.close();
    await server.close();
  }
  return rows;
}

/** Idle memory growth per connection, compressed and not. */
export interface FeedMemoryRow {
  connections: number;
  deflate: FeedMemory;
  plain: FeedMemory;
}

/** Opens `connections` idle wsbeat connections in a fresh process per figure. */
export async function deflateMemoryBench(counts: number[], size = 1024): Promise<FeedMemoryRow[]> {
  const server = await startServer();
  const rows: FeedMemoryRow[] = [];
  try {
    for (const connections of counts) {
      const row = { connections } as FeedMemoryRow;
      for (const mode of ["deflate", "plain"] as const) {
        const client = new LineProcess(clientArgv(mode, undefined));
        try {
          row[mode] = await client.ask<FeedMemory>({ url: server.url, size, connections });
        } finally {
          await client.close();
        }
      }
      rows.push(row);
    }
  } finally {
    await server.close();
  }
  return rows;
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const sizeLabel = (size: number) => size >= 1024 ? `${size / 1024} KiB` : `${size} B`;

/** The CPU and wire table, Markdown. */
export function deflateFeedTable(rows: FeedRow[], clients: readonly FeedClient[] = FEED_CLIENTS) {
  const cpu = table(
    ["message", ...clients.map((c) => `${FEED_LABELS[c]}, µs CPU / msg`)],
    rows.map((r) => [
      `${sizeLabel(r.size)} JSON`,
      ...clients.map((c) => r.cpu[c].toFixed(2)),
    ]),
  );
  const wire = table(
    ["message", "bytes on the wire, takeover", "no takeover", "uncompressed"],
    rows.map((r) => [
      `${sizeLabel(r.size)} JSON`,
      `${r.wire.takeover.toFixed(0)} (${(100 * r.wire.takeover / r.wire.plain).toFixed(1)} %)`,
      `${r.wire.none.toFixed(0)} (${(100 * r.wire.none / r.wire.plain).toFixed(1)} %)`,
      r.wire.plain.toFixed(0),
    ]),
  );
  return `${cpu}\n\n${wire}`;
}

/** The idle memory table, Markdown. */
export function deflateMemoryTable(rows: FeedMemoryRow[]): string {
  return table(
    ["connections", "deflate: RSS / conn", "heap", "external", "uncompressed: RSS / conn", "heap"],
    rows.map((r) => [
      r.connections.toLocaleString("en-US"),
      kib(r.deflate.rss),
      kib(r.deflate.heap),
      kib(r.deflate.external),
      kib(r.plain.rss),
      kib(r.plain.heap),
    ]),
  );
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { quick: { type: "boolean" }, reps: { type: "string" } },
  });
  const quick = values.quick ?? false;
  const reps = Number(values.reps ?? (quick ? 2 : 5));
  const cases = quick ? FEED_CASES.map((c) => ({ ...c, count: c.count / 5 })) : FEED_CASES;
  const rows = await deflateFeedBench({ cases, reps });
  console.log(deflateFeedTable(rows));
  console.log();
  console.log(deflateMemoryTable(await deflateMemoryBench(quick ? [1000] : [1000, 10000])));
}
