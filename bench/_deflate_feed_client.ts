/**
 * One wsbeat client of bench/deflate_feed.ts, in a process of its own so
 * that its CPU time and memory are its own, reading the compressed feed of
 * bench/_deflate_feed_server.ts:
 *
 * - `deflate`: the wsbeat client with `compression` on (the default offer;
 *   the server keeps its context);
 * - `deflate-nct`: the same, asking for `server_no_context_takeover`;
 * - `plain`: `compression: false`, so the feed comes uncompressed.
 *
 * One JSON request a line on stdin, one JSON answer a line on stdout:
 * `{"url", "size", "count"}` reads `count` messages of `size` bytes and
 * answers `{"n", "ms", "cpuUs"}`; `{"url", "size", "connections"}` opens
 * that many connections, each receiving one compressed message and then
 * idle, and answers the memory growth per connection
 * `{"rss", "heap", "external"}` (after a GC; needs `--v8-flags=--expose-gc`).
 * `{"error"}` when a run fails.
 *
 * @module
 */

import process from "node:process";
import { connect, type ConnectOptions, type WebSocketClient } from "../mod.ts";

/** The clients this script runs. */
export type DeflateFeedMode = "deflate" | "deflate-nct" | "plain";

/** What each mode passes to `connect()`. */
export const MODE_OPTIONS: Record<DeflateFeedMode, ConnectOptions> = {
  deflate: { compression: true },
  "deflate-nct": { compression: { serverNoContextTakeover: true } },
  plain: { compression: false },
};

/** One run: messages, ms and client CPU µs (user + system) until the last one. */
export interface FeedRun {
  n: number;
  ms: number;
  cpuUs: number;
}

/** Idle memory growth per connection, in bytes. */
export interface FeedMemory {
  rss: number;
  heap: number;
  external: number;
}

function urlOf(url: string, size: number, count: number, hold = false): string {
  const u = new URL(url);
  u.searchParams.set("size", String(size));
  u.searchParams.set("count", String(count));
  if (hold) u.searchParams.set("hold", "1");
  return u.href;
}

/** Reads `count` messages of `size` bytes, checking each. */
export async function runFeed(
  mode: DeflateFeedMode,
  request: { url: string; size: number; count: number },
): Promise<FeedRun> {
  const { size, count } = request;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let n = 0;
  let result: FeedRun | undefined;
  const ws = await connect(urlOf(request.url, size, count), MODE_OPTIONS[mode]);
  const agreed = ws.extensions.startsWith("permessage-deflate");
  if (agreed === (mode === "plain")) {
    await ws.close();
    throw new Error(`${mode}: the server answered extensions ${JSON.stringify(ws.extensions)}`);
  }
  for await (const message of ws) {
    if (typeof message !== "string" || message.length !== size) {
      await ws.close();
      throw new Error(`message ${n + 1} was not text of ${size}`);
    }
    if (++n === count) {
      const cpu = process.cpuUsage(cpu0);
      result = { n, ms: performance.now() - t0, cpuUs: cpu.user + cpu.system };
    }
  }
  if (!result) throw new Error(`stopped after ${n} of ${count} messages`);
  return result;
}

/** Opens `connections` idle connections that each received one message; memory per connection. */
export async function idleMemory(
  mode: DeflateFeedMode,
  request: { url: string; size: number; connections: number },
): Promise<FeedMemory> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("Cannot measure memory as gc is not exposed: --v8-flags=--expose-gc");
  const measure = () => {
    gc();
    gc();
    return Deno.memoryUsage();
  };
  const before = measure();
  const clients: WebSocketClient[] = [];
  try {
    const url = urlOf(request.url, request.size, 1, true);
    for (let i = 0; i < request.connections; i += 100) {
      const batch = Math.min(100, request.connections - i);
      const opened = await Promise.all(
        Array.from({ length: batch }, () => connect(url, MODE_OPTIONS[mode])),
      );
      clients.push(...opened);
      await Promise.all(opened.map((ws) => ws.receive()));
    }
    const after = measure();
    const per = (key: "rss" | "heapUsed" | "external") =>
      Math.round((after[key] - before[key]) / request.connections);
    return { rss: per("rss"), heap: per("heapUsed"), external: per("external") };
  } finally {
    await Promise.all(clients.map((ws) => ws.close()));
  }
}

if (import.meta.main) {
  const mode = Deno.args[0] as DeflateFeedMode;
  if (!(mode in MODE_OPTIONS)) {
    throw new TypeError("usage: _deflate_feed_client.ts deflate|deflate-nct|plain");
  }
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  const encoder = new TextEncoder();
  let text = "";
  for await (const chunk of lines) {
    text += chunk;
    for (let at; (at = text.indexOf("\n")) >= 0;) {
      const request = JSON.parse(text.slice(0, at));
      text = text.slice(at + 1);
      let answer: FeedRun | FeedMemory | { error: string };
      try {
        answer = "connections" in request
          ? await idleMemory(mode, request)
          : await runFeed(mode, request);
      } catch (error) {
        answer = { error: (error as Error).message };
      }
      await Deno.stdout.write(encoder.encode(JSON.stringify(answer) + "\n"));
    }
  }
}
