/**
 * The JIT's warm-up: the client CPU per message of one pipelined echo row,
 * batch after batch in one process, for the raw native `WebSocket` and the
 * wsbeat client on the wsbeat transport (with the native-transport client
 * taking its turns too, as in the echo benchmark, since it runs the same
 * client code with another transport under it).
 *
 * Why it is measured: the echo benchmark counts 10 chunks a client after two
 * warm-up chunks, some 50 000 messages a row. The raw client's JavaScript is
 * one `onmessage` handler; wsbeat's is the protocol, transport and client,
 * which V8 keeps compiling (in the background, on threads of this process,
 * so it counts as client CPU) for a few hundred thousand messages. This
 * shows how the ratio moves as the process warms up.
 *
 * {@linkcode warmupProcess} runs it in a fresh process, so that what ran
 * before in the caller's (the JIT's state, the heap's sizing) does not count.
 *
 * Usage: deno run --allow-net=127.0.0.1 --allow-run=sh,deno bench/warmup.ts
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { type Client, type Impl, IMPLS, OPEN, payloadOf, rowLabel } from "./echo.ts";
import { startServer, table, withFileLimit } from "./_server.ts";

/** Options for {@linkcode warmupBench}. */
export interface WarmupOptions {
  /** The echo server's URL. */
  url: string;
  /** Payload size in bytes. */
  size?: number;
  /** Binary messages instead of text. */
  binary?: boolean;
  /** How many batches. */
  batches?: number;
  /** Chunks a client per batch. */
  chunks?: number;
  /** Messages a chunk (the echo benchmark's chunk: 4 000). */
  chunkSize?: number;
  /** Messages in flight. */
  window?: number;
}

/** One batch: CPU µs per message, per client. */
export interface WarmupBatch {
  /** Messages each client had echoed before this batch (warm-up included). */
  before: number;
  /** Client CPU µs per message. */
  cpu: Record<Impl, number>;
}

/**
 * Runs the batches; the clients take turns chunk by chunk, in a rotating
 * order. One uncounted chunk each comes first.
 */
export async function warmupBench(options: WarmupOptions): Promise<WarmupBatch[]> {
  const {
    url,
    size = 1024,
    binary = false,
    batches = 6,
    chunks = 32,
    chunkSize = 4000,
    window = 64,
  } = options;
  const payload = payloadOf(size, binary);
  const clients = {} as Record<Impl, Client>;
  for (const impl of IMPLS) clients[impl] = await OPEN[impl](url);
  const spec = { payload, size, n: chunkSize, window, budget: Infinity };
  try {
    for (const impl of IMPLS) await clients[impl].pipelined(spec);
    let before = chunkSize;
    const result: WarmupBatch[] = [];
    for (let batch = 0; batch < batches; batch++) {
      const cpu: Record<Impl, number> = { raw: 0, native: 0, wsbeat: 0 };
      for (let chunk = 0; chunk < chunks; chunk++) {
        const turn = chunk % IMPLS.length;
        for (const impl of [...IMPLS.slice(turn), ...IMPLS.slice(0, turn)]) {
          const done = await clients[impl].pipelined(spec);
          cpu[impl] += done.cpuUs;
        }
      }
      const n = chunks * chunkSize;
      for (const impl of IMPLS) cpu[impl] /= n;
      result.push({ before, cpu });
      before += n;
    }
    return result;
  } finally {
    for (const impl of IMPLS) await clients[impl].close();
  }
}

/** Runs {@linkcode warmupBench} in a fresh process (this script) against `url`. */
export async function warmupProcess(
  options: Pick<WarmupOptions, "url" | "batches" | "chunks">,
): Promise<WarmupBatch[]> {
  const { url, batches = 6, chunks = 32 } = options;
  const argv = [
    "deno",
    "run",
    "--allow-net=127.0.0.1",
    new URL(import.meta.url).pathname,
    `--url=${url}`,
    `--batches=${batches}`,
    `--chunks=${chunks}`,
  ];
  const { code, stdout, stderr } = await withFileLimit(argv, { stdout: "piped", stderr: "piped" })
    .output();
  if (code !== 0) throw new Error(`bench/warmup.ts failed: ${new TextDecoder().decode(stderr)}`);
  return JSON.parse(new TextDecoder().decode(stdout));
}

/** The batches as a Markdown table. */
export function warmupTable(batches: WarmupBatch[]): string {
  const us = (n: number) => n.toFixed(2);
  return table(
    [
      "batch",
      "messages a client echoed before",
      "CPU µs/msg raw native",
      "CPU µs/msg wsbeat transport",
      "wsbeat / raw",
    ],
    batches.map(({ before, cpu }, i) => [
      i + 1,
      before.toLocaleString("en-US"),
      us(cpu.raw),
      us(cpu.wsbeat),
      `${(cpu.wsbeat / cpu.raw).toFixed(2)}x`,
    ]),
  );
}

/** The row a {@linkcode warmupBench} with these options measures, as the echo table names it. */
export function warmupLabel(size = 1024, binary = false): string {
  return rowLabel({ size, binary, mode: "pipelined" });
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { url: { type: "string" }, batches: { type: "string" }, chunks: { type: "string" } },
  });
  const counts = {
    ...(values.batches ? { batches: Number(values.batches) } : {}),
    ...(values.chunks ? { chunks: Number(values.chunks) } : {}),
  };
  if (values.url) {
    console.log(JSON.stringify(await warmupBench({ url: values.url, ...counts })));
  } else {
    await using server = await startServer();
    const started = process.cpuUsage();
    console.log(`${warmupLabel()} pipelined, batch after batch:`);
    console.log(warmupTable(await warmupBench({ url: server.url, ...counts })));
    const cpu = process.cpuUsage(started);
    console.log(`(client CPU in all: ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s)`);
  }
}
