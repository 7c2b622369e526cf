// The servers for benchmarks, each in a process of its own so that the client's CPU time is its
// own: wsbeat's echo server (`serve()`, as `wsbeat serve` runs it), Node's `ws` (npm:ws), and
// `Deno.serve` + `Deno.upgradeWebSocket` (the server benchmark's baseline).

import type { ServeOptions } from "../serve.ts";

const SERVE = new URL("./_serve.ts", import.meta.url).pathname;
const WS_SERVER = new URL("./_ws_server.ts", import.meta.url).pathname;
const DENO_SERVE = new URL("./_deno_serve.ts", import.meta.url).pathname;

/** A server child process. */
export interface ServerProcess extends AsyncDisposable {
  url: string;
  /** The server's process id (`sh` and `taskset` exec it, so it is the runtime's own). */
  pid: number;
  close(): Promise<void>;
}

/** What a bench may set on the echo server: the fault options that take plain data. */
export type BenchServeOptions = Pick<ServeOptions, "pong" | "stallAfter" | "maxUnsentBytes">;

/**
 * Starts wsbeat's echo server (`serve()` from serve.ts, with the connection
 * limit raised for 10 000 clients) and resolves once it listens. `flags` go
 * to `deno run` (say `--cpu-prof`).
 */
export function startServer(
  options: BenchServeOptions = {},
  flags: string[] = [],
): Promise<ServerProcess> {
  return startListening([
    "deno",
    "run",
    "--allow-net=127.0.0.1",
    ...flags,
    SERVE,
    JSON.stringify(options),
  ]);
}

/** Starts a Node `ws` echo server (npm:ws, run by Deno) and resolves once it listens. */
export function startWsServer(): Promise<ServerProcess> {
  return startListening([
    "deno",
    "run",
    "--no-lock",
    "--allow-net=127.0.0.1",
    "--allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE",
    WS_SERVER,
  ]);
}

/** Starts the `Deno.serve` + `Deno.upgradeWebSocket` echo server and resolves once it listens. */
export function startDenoServer(flags: string[] = []): Promise<ServerProcess> {
  return startListening(["deno", "run", "--allow-net=127.0.0.1", ...flags, DENO_SERVE]);
}

/** Runs `argv` pinned, and resolves with the URL once it prints `listening URL`. */
async function startListening(argv: string[]): Promise<ServerProcess> {
  const child = withFileLimit(argv, { stdin: "null", stdout: "piped", stderr: "inherit" }, true)
    .spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the server exited before listening: ${text}`);
    text += value;
  }
  const url = /^listening (\S+)/.exec(text)?.[1];
  if (!url) throw new Error(`unexpected server output: ${text}`);
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      child.kill("SIGTERM");
      await child.status;
      await reader.cancel();
    })();
  return { url, pid: child.pid, close, [Symbol.asyncDispose]: close };
}

/**
 * A command run with the open-file limit raised to the hard limit (10 000
 * connections need 10 000 descriptors; the soft limit is often 1 024), and
 * with `pin`, on the last core.
 */
export function withFileLimit(
  argv: string[],
  options: Omit<Deno.CommandOptions, "args">,
  pin = false,
): Deno.Command {
  if (Deno.build.os === "windows") {
    return new Deno.Command(argv[0]!, { ...options, args: argv.slice(1) });
  }
  const quoted = argv.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  // With `pin`, the process keeps to the last core where taskset exists, so that the echo server
  // and the measured client do not take turns on the same cores (the figures are steadier).
  const cpu = navigator.hardwareConcurrency - 1;
  const run = pin && cpu >= 1
    ? `if command -v taskset >/dev/null 2>&1; then exec taskset -c ${cpu} ${quoted}; else exec ${quoted}; fi`
    : `exec ${quoted}`;
  return new Deno.Command("sh", {
    ...options,
    args: ["-c", `ulimit -n "$(ulimit -Hn)" 2>/dev/null; ${run}`],
  });
}

/** The median of `values`. */
export function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The q-quantile (0..1) of `values`. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const sorted = Array.from(values).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * q) - 1))]!;
}

/** Renders a Markdown table. */
export function table(head: string[], rows: (string | number)[][]): string {
  const lines = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const row of rows) lines.push(`| ${row.join(" | ")} |`);
  return lines.join("\n");
}

/**
 * A TCP connection to a WebSocket server upgraded by hand, with `TCP_NODELAY`
 * on: the floors of bench/floor.ts and bench/heartbeat_scale.ts, where no
 * wsbeat code may run. The key is fixed and the answer's accept key is not
 * checked (this is not a client); the servers send nothing before the
 * client's first frame, so nothing is read past the answer's header.
 *
 * @throws {Error} When the server refuses the upgrade (naming its status line)
 *   or closes without answering; the connection is closed then.
 */
export async function upgradeByHand(url: string): Promise<Deno.TcpConn> {
  const { hostname, port, pathname } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  conn.setNoDelay(true);
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
          `Sec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    const buffer = new Uint8Array(1024);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buffer);
      if (n === null || head.length > 8192) throw new Error("the server sent no upgrade answer");
      head += new TextDecoder().decode(buffer.subarray(0, n));
    }
    const status = head.slice(0, head.indexOf("\r\n"));
    if (!status.startsWith("HTTP/1.1 101 ")) throw new Error(`the upgrade was refused: ${status}`);
    return conn;
  } catch (error) {
    conn.close();
    throw error;
  }
}
