// Every example in `wsbeat --help` does what it shows: each one's flags parse, and
// the examples that can run locally run against 127.0.0.1, timings scaled down 50
// times (--idle-timeout 30 becomes 0.6 s, --interval 10 becomes 0.2 s).

import assert from "node:assert/strict";
import { checkHabits, CLIENT_OPTIONS, clientConfig } from "../cli/args.ts";
import { parse } from "../cli/values.ts";
import { HELP } from "../cli/help.ts";
import { readLines } from "../cli/stdin.ts";
import { denoArgs, liveCli, shell } from "./_cli.ts";

/** One example: the words of its command line (`wsbeat` first) and what it pipes in. */
interface Example {
  line: string;
  args: string[];
  input?: string;
  comment: string;
}

/** Splits a command line as sh would for these examples: words, '...' quoting. */
function words(text: string): string[] {
  return [...text.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/** The examples of --help: each `wsbeat` line after "Examples:", with its comment. */
function examples(): Example[] {
  const section = HELP.slice(HELP.indexOf("\nExamples:\n"));
  const found: Example[] = [];
  for (const line of section.split("\n").slice(2)) {
    if (/^\s+#/.test(line)) {
      found.at(-1)!.comment += " " + line.trim().slice(1).trim();
      continue;
    }
    const m = /^ {2}(?:echo (\S+) \| )?(wsbeat .*?)\s*(?:&\s*)?(?:#\s*(.*))?$/.exec(line);
    if (!m) continue;
    found.push({
      line: line.trim(),
      args: words(m[2]!).slice(1),
      ...(m[1] ? { input: `${m[1]}\n` } : {}),
      comment: m[3] ?? "",
    });
  }
  return found;
}

/** Scales the timing flags of an example down 50 times and points its URL at `url`. */
function scaled(args: string[], url?: string): string[] {
  return args.map((arg, i) => {
    if (["--idle-timeout", "--interval", "--timeout"].includes(args[i - 1] ?? "")) {
      return String(Number(arg) / 50);
    }
    if (args[i - 1] === "--port") return "0";
    return url && arg === "ws://127.0.0.1:9000" ? url : arg;
  });
}

Deno.test("cli --help has the examples this test knows", () => {
  assert.deepEqual(examples().map((e) => e.line), [
    "wsbeat serve --port 9000 --idle-timeout 30 &",
    "wsbeat ws://127.0.0.1:9000                            # interactive",
    "echo hello | wsbeat ws://127.0.0.1:9000               # prints hello, exits 0",
    `wsbeat -x '{"op":"subscribe"}' -n 5 wss://example.com/feed`,
    "wsbeat --ping ping --interval 10 --timeout 5 --show-rtt --keep-open ws://127.0.0.1:9000",
  ]);
});

Deno.test("cli --help: every client example's flags parse into a configuration", async () => {
  for (const example of examples()) {
    if (example.args[0] === "serve") continue; // run below
    const { values, positionals } = parse(example.args, CLIENT_OPTIONS);
    checkHabits(values, positionals);
    assert.equal(positionals.length, 1, example.line);
    const config = await clientConfig(values, positionals[0]!);
    assert.ok(config.url.startsWith("ws"), example.line);
  }
});

Deno.test("cli --help: the examples run against their server, scaled down", async (t) => {
  const [serveExample, interactive, piped, , heartbeat] = examples();
  assert.match(heartbeat!.comment, /stays open: --idle-timeout counts messages only/);
  const server = new Deno.Command("deno", {
    args: denoArgs(scaled(serveExample!.args)),
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const out = readLines(server.stdout);
  try {
    const listening = (await out.next()).value ?? "";
    const url = /^listening (ws:\/\/\S+)$/.exec(listening)?.[1];
    assert.ok(url, listening);

    await t.step("interactive: a typed line comes back; /quit exits 0", async () => {
      await using run = liveCli(scaled(interactive!.args, url), { terminal: true });
      await run.waitFor(/^connected to/);
      await run.write("typed-line\n");
      await run.waitFor(/^typed-line$/); // the terminal's echo of what was typed
      await run.waitFor(/^typed-line$/); // the server's
      await run.write("/quit\n");
      assert.equal((await run.end()).code, 0, run.lines.join("\n"));
    });

    await t.step(`piped: ${piped!.comment}`, async () => {
      assert.equal(piped!.comment, "prints hello, exits 0");
      const result = await shell(
        `echo hello | wsbeat ${scaled(piped!.args, url).map((a) => `'${a}'`).join(" ")}`,
      );
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "hello\n");
    });

    await t.step("the heartbeat example stays open past the idle timeout", async () => {
      await using run = liveCli(scaled(heartbeat!.args, url));
      await run.waitFor(/^connected to .*; heartbeat every 200 ms, timeout 100 ms$/);
      const started = performance.now();
      // Three idle timeouts (0.6 s each) pass with beats answered; a close would end the output.
      while (performance.now() - started < 1_800) await run.waitFor(/^rtt /);
      run.child.kill("SIGINT");
      const { code } = await run.end();
      assert.equal(code, 130, run.lines.join("\n"));
      assert.doesNotMatch(run.lines.join("\n"), /idle timeout|closed by the server/);
    });

    await t.step("as the help says, ping frames alone (--heartbeat) are dropped", async () => {
      const args = scaled(heartbeat!.args, url);
      args.splice(args.indexOf("--ping"), 2, "--heartbeat");
      await using run = liveCli(args);
      await run.waitFor(/^closed by the server \(1001\) "idle timeout"/);
      assert.equal((await run.end()).code, 0);
    });
  } finally {
    server.kill("SIGTERM");
    await server.status;
    for await (const _ of out) { /* drain */ }
  }
});
