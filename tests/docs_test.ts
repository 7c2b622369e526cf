// Every quoted output in README.md and docs/*.md is what the code prints.
//
// A block of output (```text or ```console) follows a marker line
// `<!-- output: NAME -->`, and CHECKS below has a check of that name:
// - a `console` block is run as it reads: `$ wsbeat ...` as `deno run -A
//   cli.ts ...`, stdout and stderr in one stream as on a terminal; a command
//   ending in `&` is a server left running (on a free port, which replaces
//   the quoted one everywhere); `sleep N | wsbeat ...` keeps stdin open;
// - a `text` block is the output of the TypeScript block just before it,
//   run against a local server, its URL replaced by the server's.
// Lines must match exactly, except durations (`5.28 ms`, `2.0 s`). A block
// of output without a marker, or a marker without a check, fails the test.
import assert from "node:assert/strict";
import { serve } from "../serve.ts";
import { closedPort } from "./_servers.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const CLI = `${ROOT}cli.ts`;
/** The most one example may run. */
const EXAMPLE_TIMEOUT = 30_000;

interface Block {
  file: string;
  /** The line of the opening fence, from 1. */
  line: number;
  lang: string;
  text: string;
  /** The name of the output marker before it, if any. */
  output?: string;
  /** The last TypeScript block before this one in the same file. */
  code?: string;
}

/** The fenced blocks of a Markdown file (fences may be indented, as in a list). */
function parseBlocks(file: string, markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  let lastTs: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !/^\s*```\s*$/.test(lines[j]!)) body.push(lines[j++]!.slice(indent));
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === "") k--;
    const marker = /^<!-- output: ([\w-]+) -->$/.exec(lines[k]?.trim() ?? "");
    const block: Block = { file, line: i + 1, lang: open[2]!, text: body.join("\n") };
    if (marker) block.output = marker[1]!;
    if (lastTs !== undefined) block.code = lastTs;
    if (block.lang === "ts") lastTs = block.text;
    blocks.push(block);
    i = j;
  }
  return blocks;
}

async function docFiles(): Promise<string[]> {
  const docs: string[] = [];
  for await (const entry of Deno.readDir(`${ROOT}docs`)) {
    if (entry.isFile && entry.name.endsWith(".md")) docs.push(`docs/${entry.name}`);
  }
  return ["README.md", ...docs.sort()];
}

const FILES = await docFiles();
const BLOCKS: Block[] = [];
for (const file of FILES) BLOCKS.push(...parseBlocks(file, await Deno.readTextFile(ROOT + file)));

/**
 * Checks whose figures are a run's own (a record, not an example): every
 * number may differ, not only durations.
 */
const LOOSE: ReadonlySet<string> = new Set(["soak"]);

/** A quoted line as a pattern: durations (or, when `loose`, all numbers) may differ. */
function linePattern(text: string, loose: boolean): RegExp {
  const figure = loose ? /[+-]?\d+(?:\.\d+)?/ : /\d+(?:\.\d+)? (?:ms|s)\b/;
  const any = loose ? "[+-]?\\d+(?:\\.\\d+)?" : "\\d+(?:\\.\\d+)? (?:ms|s)";
  const parts = text.split(new RegExp(figure.source, "g"));
  return new RegExp(`^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(any)}$`);
}

/** Asserts that `actual` is `expected`, line by line, durations aside. */
function assertSameOutput(actual: string, expected: string, where: string, loose = false): void {
  const got = actual.replace(/\n+$/, "").split("\n");
  const want = expected.replace(/\n+$/, "").split("\n");
  const differs = got.length !== want.length ||
    want.some((line, i) => !linePattern(line, loose).test(got[i]!));
  if (differs) {
    assert.fail(
      `${where}: the quoted output is not what the code prints.\n--- quoted\n${
        want.join("\n")
      }\n--- printed\n${got.join("\n")}\n---`,
    );
  }
}

/** A child whose stdout and stderr come as one stream of lines. */
class Transcript {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  readonly #done: Promise<void>;
  #ended = false;
  #waiters: (() => void)[] = [];

  /** Runs `command` (a shell command line) with stderr joined to stdout. */
  constructor(command: string, options: { stdin?: string; keepStdinOpen?: boolean } = {}) {
    const piped = options.stdin !== undefined || options.keepStdinOpen;
    this.child = new Deno.Command("sh", {
      args: ["-c", `exec ${command} 2>&1`],
      cwd: ROOT,
      stdin: piped ? "piped" : "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    if (options.stdin !== undefined) {
      const writer = this.child.stdin.getWriter();
      writer.write(new TextEncoder().encode(options.stdin))
        .then(() => writer.close())
        .catch(() => {});
    }
    this.#done = this.#read();
  }

  async #read(): Promise<void> {
    let buffered = "";
    for await (const chunk of this.child.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        this.lines.push(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
      }
      for (const wake of this.#waiters.splice(0)) wake();
    }
    if (buffered !== "") this.lines.push(buffered);
    this.#ended = true;
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Resolves once `count` lines came, or the output ended; false if it ended first. */
  async waitForLines(count: number): Promise<boolean> {
    while (this.lines.length < count && !this.#ended) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return this.lines.length >= count;
  }

  /** Waits for the end, killing the child if it runs longer than `ms`. */
  async finish(ms = EXAMPLE_TIMEOUT): Promise<Deno.CommandStatus> {
    const timer = setTimeout(() => this.stop("SIGKILL"), ms);
    try {
      await this.#done;
      return await this.child.status;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends `signal` if the child still runs. */
  stop(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.child.kill(signal);
    } catch { /* it has exited */ }
  }

  /** Closes stdin, if it was kept open. */
  async closeStdin(): Promise<void> {
    await this.child.stdin.close().catch(() => {});
  }
}

/** `wsbeat ARGS` as this checkout runs it. */
function wsbeat(command: string): string {
  return command.replace(/^wsbeat\b/, `deno run -A ${CLI}`);
}

/** Runs a `console` block and returns its transcript, with the quoted ports put back. */
async function runConsole(block: Block): Promise<string> {
  const steps: { command: string; output: string[] }[] = [];
  for (const line of block.text.split("\n")) {
    if (line.startsWith("$ ")) steps.push({ command: line.slice(2), output: [] });
    else steps.at(-1)?.output.push(line);
  }
  const ports = new Map<string, string>(); // quoted -> real
  const background: Transcript[] = [];
  const transcript: string[] = [];
  const toReal = (text: string) => {
    for (const [quoted, real] of ports) {
      text = text.replaceAll(`127.0.0.1:${quoted}`, `127.0.0.1:${real}`);
    }
    return text;
  };
  const toQuoted = (text: string) => {
    for (const [quoted, real] of ports) {
      text = text.replaceAll(`127.0.0.1:${real}`, `127.0.0.1:${quoted}`);
    }
    return text;
  };
  try {
    for (const step of steps) {
      transcript.push(`$ ${step.command}`);
      if (step.command.endsWith(" &")) {
        // A server: on a free port, quoted as the port the block names.
        const command = step.command.slice(0, -2);
        const quoted = /--port (\d+)/.exec(command)?.[1];
        assert.ok(quoted, `${block.file}:${block.line}: a server without --port: ${command}`);
        const server = new Transcript(wsbeat(command.replace(`--port ${quoted}`, "--port 0")));
        background.push(server);
        await server.waitForLines(step.output.length);
        const real = /listening ws:\/\/127\.0\.0\.1:(\d+)/.exec(server.lines[0] ?? "")?.[1];
        assert.ok(real, `${block.file}:${block.line}: ${command} said ${server.lines[0]}`);
        ports.set(quoted, real);
        transcript.push(...server.lines.slice(0, step.output.length).map(toQuoted));
        continue;
      }
      const piped = /^sleep \d+ \| (.*)$/.exec(step.command);
      const command = piped ? piped[1]! : step.command;
      const client = new Transcript(toReal(wsbeat(command)), { keepStdinOpen: Boolean(piped) });
      await client.finish();
      if (piped) await client.closeStdin();
      transcript.push(...client.lines.map(toQuoted));
    }
  } finally {
    for (const server of background) {
      server.stop();
      await server.finish();
    }
  }
  return transcript.join("\n");
}

/** The TypeScript `code` with the package imported from this checkout and URLs replaced. */
function runnable(code: string, urls: Record<string, string>): string {
  let text = code
    .replaceAll('"jsr:@wsbeat/wsbeat/serve"', JSON.stringify(`file://${ROOT}serve.ts`))
    .replaceAll('"jsr:@wsbeat/wsbeat"', JSON.stringify(`file://${ROOT}mod.ts`));
  for (const [quoted, real] of Object.entries(urls)) {
    assert.ok(text.includes(quoted), `the example has no ${quoted}`);
    text = text.replaceAll(quoted, real);
  }
  return text;
}

/** Runs TypeScript on this Deno, output joined as on a terminal. */
function runTs(code: string): Transcript {
  return new Transcript("deno run --allow-net=127.0.0.1 -", { stdin: code });
}

/** A check: prints what the block's code prints, in the block's terms. */
type Check = (block: Block) => Promise<string>;

const CHECKS: Record<string, Check> = {
  "cli-measure": runConsole,
  "cli-heartbeat": runConsole,
  "cli-reconnect-heartbeat": runConsole,
  "cli-reconnect-stale": runConsole,

  /** docs/reconnecting.md: a price per subscription, two restarts (1012), 2.5 s down. */
  "reconnecting-loop": async (block) => {
    const quoted = "wss://example.com/feed";
    let connections = 0;
    const outage = Promise.withResolvers<void>();
    const handler = (request: Request) => {
      const { socket, response } = Deno.upgradeWebSocket(request);
      const n = ++connections;
      socket.onmessage = () => {
        socket.send(`price ${n}`);
        if (n <= 2) socket.close(1012, "service restart");
        if (n === 2) socket.onclose = () => outage.resolve();
      };
      return response;
    };
    const listen = (port = 0) =>
      Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, handler);
    let server = listen();
    const port = server.addr.port;
    const url = `ws://127.0.0.1:${port}/feed`;
    const example = runTs(runnable(block.code!, { [quoted]: url }));
    const restarted = outage.promise.then(async () => {
      await server.shutdown();
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      server = listen(port);
    });
    try {
      const expected = block.text.split("\n").length;
      await example.waitForLines(expected);
      example.stop();
      await example.finish();
    } finally {
      outage.resolve(); // if the example failed before the second connection
      await restarted;
      await server.shutdown();
    }
    return example.lines.join("\n").replaceAll(url, quoted);
  },

  /** docs/reconnecting.md: the handle against an echo server that starts after the first attempt. */
  "reconnecting-client": async (block) => {
    const port = closedPort();
    const url = `ws://127.0.0.1:${port}/orders`;
    const example = runTs(runnable(block.code!, { "wss://example.com/orders": url }));
    let server: AsyncDisposable | undefined;
    try {
      assert.ok(await example.waitForLines(1), "the example printed nothing");
      assert.equal(example.lines[0], "status: backing-off", "the first attempt was not refused");
      server = serve({ port });
      await example.finish();
    } finally {
      example.stop();
      await server?.[Symbol.asyncDispose]();
    }
    return example.lines.join("\n");
  },

  /** docs/performance.md: the soak's report, from a short run (its figures are its own). */
  "soak": async (block) => {
    const soak = new Transcript(
      `deno run --allow-net=127.0.0.1 --v8-flags=--expose-gc ${ROOT}tests/soak.ts --seconds 1 --clients 4`,
    );
    const status = await soak.finish();
    assert.equal(status.code, 0, soak.lines.join("\n"));
    return soak.lines.slice(-block.text.split("\n").length).join("\n"); // the report
  },
};

Deno.test("every quoted output in README.md and docs/ has a marker and a check", () => {
  const outputs = BLOCKS.filter((b) => b.lang === "text" || b.lang === "console");
  const unmarked = outputs.filter((b) => b.output === undefined).map((b) => `${b.file}:${b.line}`);
  assert.deepEqual(unmarked, [], "blocks of output without <!-- output: NAME -->");
  const unknown = outputs.filter((b) => !(b.output! in CHECKS)).map((b) => b.output);
  assert.deepEqual(unknown, [], "markers without a check in tests/docs_test.ts");
  const used = new Set(outputs.map((b) => b.output));
  assert.deepEqual(Object.keys(CHECKS).filter((name) => !used.has(name)), [], "unused checks");
  const textWithoutCode = outputs.filter((b) =>
    b.lang === "text" && b.output !== "soak" && !b.code
  );
  assert.deepEqual(textWithoutCode.map((b) => `${b.file}:${b.line}`), []);
});

for (const block of BLOCKS) {
  if (block.output === undefined || !(block.output in CHECKS)) continue;
  Deno.test(`${block.file}:${block.line} (${block.output}) prints what it quotes`, async () => {
    const printed = await CHECKS[block.output!]!(block);
    assertSameOutput(printed, block.text, `${block.file}:${block.line}`, LOOSE.has(block.output!));
  });
}
