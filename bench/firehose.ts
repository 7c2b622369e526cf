/**
 * The firehose: a server pushing messages as fast as the socket takes them,
 * and a client reading them, the job wsbeat exists for (a market-data feed).
 * The echo rows measure round trips, where the kernel dominates; here the
 * client's own work per message is what is measured.
 *
 * The server (bench/_firehose_server.ts, a process of its own kept to the
 * last core with `taskset`, as the echo server) answers the upgrade by hand
 * and writes about 1 MiB of frames built once per row at a time, then a
 * close frame: almost no work per message. Each client runs in a process of
 * its own (bench/_firehose_client.ts, Node's `ws` in
 * bench/_firehose_ws_client.mjs), which measures its own CPU time (user +
 * system, all its threads) from the connect to the last message; the
 * processes take turns, one at a time:
 *
 * - `floor`: a bare `Deno.connect` read loop that walks the frame headers
 *   and touches each payload without making messages: the least any
 *   JavaScript client on this runtime can spend.
 * - `raw`: the runtime's `WebSocket`, `onmessage` (the baseline).
 * - `wsbeat`: the wsbeat client on its own transport, `for await`.
 * - `native`: the wsbeat client on the native transport, `for await`.
 * - `ws`: Node's `ws` (npm:ws, found in Deno's npm cache), run by `node`,
 *   a `message` handler turning text into strings.
 *
 * Every client counts the messages and checks each one's type, length and
 * last byte or character (see `lastUnit` in bench/_firehose_client.ts);
 * a run that ends early fails naming the client, the row and the count
 * reached. Per row: a warm-up run of each client, then `reps` runs each in a
 * rotating order; the figures are the medians.
 *
 * Usage: deno run --allow-run=deno,sh bench/firehose.ts [--reps N] [--size BYTES]... [--json FILE]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { median, table, withFileLimit } from "./_server.ts";
import type { FirehoseRequest, FirehoseRun } from "./_firehose_client.ts";

const SERVER = new URL("./_firehose_server.ts", import.meta.url).pathname;
const CLIENT = new URL("./_firehose_client.ts", import.meta.url).pathname;
const WS_CLIENT = new URL("./_firehose_ws_client.mjs", import.meta.url).pathname;

/** The clients, in their column order. */
export const FIREHOSE_CLIENTS = ["floor", "raw", "wsbeat", "native", "ws"] as const;
/** One of {@linkcode FIREHOSE_CLIENTS}. */
export type FirehoseClient = typeof FIREHOSE_CLIENTS[number];

/** What each client is called in the tables and in errors. */
export const CLIENT_LABELS: Record<FirehoseClient, string> = {
  floor: "floor (Deno.connect, headers only)",
  raw: "raw native WebSocket",
  wsbeat: "wsbeat client (wsbeat transport)",
  native: "wsbeat client (native transport)",
  ws: "Node ws client",
};

/** One row: a payload size, text or binary, and how many messages a run reads. */
export interface FirehoseCase {
  size: number;
  binary: boolean;
  count: number;
}

/** Messages a run by default: about 0.3 to 1 s for the raw native client here. */
export function defaultCount(size: number): number {
  return size <= 1024 ? 400_000 : size <= 16384 ? 50_000 : 4_000;
}

/** The rows by default: 32 B, 200 B, 1 KiB, 16 KiB and 256 KiB, text and binary. */
export const FIREHOSE_CASES: FirehoseCase[] = [32, 200, 1024, 16384, 262144].flatMap((size) =>
  [false, true].map((binary) => ({ size, binary, count: defaultCount(size) }))
);

/** Options for {@linkcode firehoseBench}. */
export interface FirehoseOptions {
  /** @default {FIREHOSE_CASES} */
  cases?: FirehoseCase[];
  /** Counted runs of each client a row, after `warmup` runs each. @default {5} */
  reps?: number;
  /** Uncounted runs of each client a row, first. @default {1} */
  warmup?: number;
  /** The clients. @default {FIREHOSE_CLIENTS} */
  clients?: readonly FirehoseClient[];
  /** A run fails after this many ms. @default {60000} */
  timeout?: number;
  /**
   * For the tests: the server sends only `after` messages, then a close
   * frame (`"close"`) or nothing, closing TCP (`"drop"`).
   */
  fault?: { after: number; how: "close" | "drop" };
}

/** One row's results. */
export interface FirehoseRow extends FirehoseCase {
  /** "32 B text", "16 KiB binary". */
  payload: string;
  /** Every counted run, per client. */
  runs: Record<FirehoseClient, FirehoseRun[]>;
  /** The median of the runs' messages a second, per client. */
  rate: Record<FirehoseClient, number>;
  /** The median of the runs' client CPU µs a message, per client. */
  cpu: Record<FirehoseClient, number>;
}

/** What {@linkcode firehoseBench} measured. */
export interface FirehoseResult {
  rows: FirehoseRow[];
  /** `node --version`, when Node's `ws` ran. */
  node?: string;
}

/** "32 B", "16 KiB". */
function sizeLabel(size: number): string {
  return size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
}

/** "32 B text". */
export function firehoseLabel({ size, binary }: { size: number; binary: boolean }): string {
  return `${sizeLabel(size)} ${binary ? "binary" : "text"}`;
}

/** A process that answers one JSON line for each line written to it. */
class LineProcess {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  constructor(command: Deno.Command) {
    this.#child = command.spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = lines(this.#child.stdout);
  }
  /** Writes `request` and resolves with the answer, or undefined if the process exited. */
  async ask(request: unknown, timeout: number): Promise<unknown> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(request) + "\n"));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => (timer = setTimeout(resolve, timeout, "late")));
    try {
      const next = await Promise.race([this.#lines.next(), late]);
      if (next === "late") {
        this.kill();
        return "late";
      }
      return next.done ? undefined : JSON.parse(next.value);
    } finally {
      clearTimeout(timer);
    }
  }
  kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch { /* exited already */ }
  }
  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    const exited = this.#child.status;
    const timer = setTimeout(() => this.kill(), 5000);
    await exited;
    clearTimeout(timer);
    await this.#lines.return?.();
  }
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let text = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    for (let at; (at = text.indexOf("\n")) >= 0;) {
      yield text.slice(0, at);
      text = text.slice(at + 1);
    }
  }
}

/** The folder of npm's `ws` package in Deno's npm cache (`deno info` fetches it if missing). */
export async function wsPackageDir(): Promise<string> {
  const out = await new Deno.Command("deno", {
    args: ["info", "--json", "npm:ws@8"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const packages = out.success
    ? (JSON.parse(text).npmPackages ?? {}) as Record<string, { name: string; localPath?: string }>
    : {};
  const ws = Object.values(packages).find((p) => p.name === "ws");
  if (!ws?.localPath) {
    throw new Error(
      `cannot find npm:ws@8 with deno info: ${new TextDecoder().decode(out.stderr) || text}`,
    );
  }
  return ws.localPath;
}

/** `node --version`, or throws saying that Node is needed for the `ws` column. */
async function nodeVersion(): Promise<string> {
  const out = await withFileLimit(["node", "--version"], { stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(
      `the Node ws client needs node on PATH: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/** Starts the firehose server; resolves with its URL once it listens. */
async function startFirehoseServer() {
  const child = withFileLimit(
    ["deno", "run", "--allow-net=127.0.0.1", SERVER],
    { stdin: "null", stdout: "piped", stderr: "inherit" },
    true,
  ).spawn();
  const output = lines(child.stdout);
  const first = await output.next();
  const url = first.done ? undefined : /^listening (\S+)/.exec(first.value)?.[1];
  const close = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* exited already */ }
    await child.status;
    await output.return(undefined);
  };
  if (!url) {
    await close();
    throw new Error(`the firehose server did not start: ${first.value ?? "no output"}`);
  }
  return { url, close };
}

/** Starts the client processes. */
async function startClients(
  clients: readonly FirehoseClient[],
): Promise<Map<FirehoseClient, LineProcess>> {
  const processes = new Map<FirehoseClient, LineProcess>();
  const options = { stdin: "piped", stdout: "piped", stderr: "inherit" } as const;
  for (const name of clients) {
    const argv = name === "ws"
      ? ["node", WS_CLIENT, await wsPackageDir()]
      : ["deno", "run", "--allow-net=127.0.0.1", CLIENT, name];
    processes.set(name, new LineProcess(withFileLimit(argv, options)));
  }
  return processes;
}

/**
 * Runs the firehose rows: for each row a warm-up run of each client, then
 * `reps` runs each in a rotating order (each client goes first equally
 * often). Throws naming the client, the row and the messages counted when a
 * run fails.
 */
export async function firehoseBench(options: FirehoseOptions = {}): Promise<FirehoseResult> {
  const {
    cases = FIREHOSE_CASES,
    reps = 5,
    warmup = 1,
    clients = FIREHOSE_CLIENTS,
    timeout = 60_000,
    fault,
  } = options;
  const node = clients.includes("ws") ? await nodeVersion() : undefined;
  const server = await startFirehoseServer();
  const processes = await startClients(clients).catch(async (error) => {
    await server.close();
    throw error;
  });
  const url = new URL(server.url);
  if (fault) {
    url.searchParams.set("stop", String(fault.after));
    url.searchParams.set("how", fault.how);
  }
  const rows: FirehoseRow[] = [];
  try {
    for (const c of cases) {
      const payload = firehoseLabel(c);
      const request: FirehoseRequest = { url: url.href, ...c };
      const once = async (name: FirehoseClient): Promise<FirehoseRun> => {
        const answer = await processes.get(name)!.ask(request, timeout) as
          | FirehoseRun
          | { error: string }
          | "late"
          | undefined;
        const where = `firehose, ${payload}: the ${CLIENT_LABELS[name]}`;
        if (answer === undefined) throw new Error(`${where}: its process exited`);
        if (answer === "late") throw new Error(`${where} took over ${timeout} ms (killed)`);
        if ("error" in answer) throw new Error(`${where} ${answer.error}`);
        return answer;
      };
      for (let i = 0; i < warmup; i++) for (const name of clients) await once(name);
      const runs = {} as Record<FirehoseClient, FirehoseRun[]>;
      for (const name of clients) runs[name] = [];
      for (let rep = 0; rep < reps; rep++) {
        const k = rep % clients.length;
        for (const name of [...clients.slice(k), ...clients.slice(0, k)]) {
          runs[name].push(await once(name));
        }
      }
      const rate = {} as Record<FirehoseClient, number>;
      const cpu = {} as Record<FirehoseClient, number>;
      for (const name of clients) {
        rate[name] = median(runs[name].map((r) => r.n / r.ms * 1000));
        cpu[name] = median(runs[name].map((r) => r.cpuUs / r.n));
      }
      rows.push({ ...c, payload, runs, rate, cpu });
    }
  } finally {
    await Promise.all([...processes.values()].map((p) => p.close()));
    await server.close();
  }
  return { rows, node };
}

const x = (n: number) => `${n.toFixed(2)}x`;

/**
 * Renders the rows as two Markdown tables, client CPU µs a message and
 * messages a second, each figure with its ratio to the raw native client's
 * and to the floor's.
 */
export function firehoseTable({ rows, node }: FirehoseResult): string {
  const clients = FIREHOSE_CLIENTS.filter((name) => rows.every((r) => name in r.cpu));
  const head = (unit: string) => [
    "payload",
    "messages a run",
    ...clients.map((name) =>
      `${unit} ${name === "ws" && node ? `Node ws client (${node})` : CLIENT_LABELS[name]}`
    ),
  ];
  const cell = (values: Record<FirehoseClient, number>, name: FirehoseClient, digits: number) => {
    const value = values[name];
    const text = digits ? value.toFixed(digits) : Math.round(value).toLocaleString("en-US");
    const ratios = [
      name !== "raw" && "raw" in values ? `${x(value / values.raw)} native` : "",
      name !== "floor" && "floor" in values ? `${x(value / values.floor)} floor` : "",
    ].filter(Boolean);
    const joined = ratios.join(", ");
    return ratios.length ? `${text} (${name === "wsbeat" ? `**${joined}**` : joined})` : text;
  };
  const render = (unit: string, pick: (r: FirehoseRow) => Record<FirehoseClient, number>, d = 0) =>
    table(
      head(unit),
      rows.map((r) => [
        r.payload,
        r.count.toLocaleString("en-US"),
        ...clients.map((name) => cell(pick(r), name, d)),
      ]),
    );
  return `Client CPU per message (µs, user + system, the client's process):\n\n${
    render("CPU µs/msg", (r) => r.cpu, 3)
  }\n\nMessages per second:\n\n${render("msg/s", (r) => r.rate)}`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      reps: { type: "string", default: "5" },
      size: { type: "string", multiple: true },
      json: { type: "string" },
    },
  });
  const cases = FIREHOSE_CASES.filter((c) => !values.size || values.size.includes(String(c.size)));
  const result = await firehoseBench({ cases, reps: Number(values.reps) });
  if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(result));
  console.log(firehoseTable(result));
}
