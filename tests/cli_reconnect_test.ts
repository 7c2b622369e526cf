// The CLI's reconnect flags: real delays in the status lines, the backoff
// floor as a usage error, --stale-after, and --max-retries counted as retries.
import assert from "node:assert/strict";
import { readLines } from "../cli/stdin.ts";
import { closedPort, silentServer } from "./_servers.ts";
import { closePayload, OP, rawServer } from "./_raw_server.ts";
import { liveCli } from "./_cli.ts";
import { serve } from "../serve.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

function command(args: string[]): Deno.Command {
  return new Deno.Command("deno", {
    args: ["run", "--allow-net=127.0.0.1", CLI, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

async function run(args: string[]): Promise<{ code: number; stderr: string }> {
  const { code, stderr } = await command(args).output();
  return { code, stderr: new TextDecoder().decode(stderr) };
}

Deno.test("cli refuses backoff delays below 10 ms and a zero --stale-after as usage errors", async (t) => {
  const cases: [string[], RegExp][] = [
    [
      ["--backoff-max", "0.0001"],
      /^error: --backoff-max expects at least 0\.01 seconds \(a shorter delay would retry in a busy loop\), got '0\.0001'$/,
    ],
    [["--backoff-initial", "0.005"], /^error: --backoff-initial expects at least 0\.01 seconds/],
    [["--backoff-initial", "0"], /^error: --backoff-initial expects a number of seconds above 0/],
    [["--stale-after", "0"], /^error: --stale-after expects a number of seconds above 0/],
  ];
  for (const [flags, pattern] of cases) {
    await t.step(flags.join(" "), async () => {
      const result = await run([...flags, "ws://127.0.0.1:9/"]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr.trimEnd(), pattern);
      assert.equal(result.stderr.trimEnd().split("\n").length, 1);
    });
  }
});

Deno.test("cli --reconnect --heartbeat reports the real delay from detection to the new connection", async () => {
  await using server = silentServer({ handshake: true });
  const child = command([
    "--reconnect",
    "--heartbeat",
    "--interval",
    "0.1",
    "--timeout",
    "0.2",
    "--backoff-initial",
    "0.05",
    "--backoff-max",
    "0.05",
    "--keep-open",
    "-x",
    "hi",
    server.url,
  ]).spawn();
  const lines: { at: number; text: string }[] = [];
  for await (const text of readLines(child.stderr)) {
    lines.push({ at: performance.now(), text });
    if (lines.filter((l) => l.text.startsWith("reconnected after")).length === 2) break;
  }
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel();
  const detected = lines.find((l) => l.text.startsWith("closed by the heartbeat"))!;
  const retry = lines.find((l) => l.text.includes("reconnecting in"))!;
  const reconnected = lines.find((l) => l.text.startsWith("reconnected after"))!;
  assert.match(
    retry.text,
    /^closed by the heartbeat \(the server stopped answering\); reconnecting in \d+ ms \(attempt 2\)$/,
  );
  const said = Number(/reconnected after (\d+(\.\d+)?) ms/.exec(reconnected.text)?.[1]);
  const seen = reconnected.at - detected.at;
  // The line says what happened: about the backoff delay (25-50 ms with jitter), not 5 s.
  assert.ok(said >= 20 && said < 200, reconnected.text);
  assert.ok(seen < 250, `the new connection came ${seen.toFixed(0)} ms after the detection line`);
  assert.ok(Math.abs(seen - said) < 100, `said ${said} ms, saw ${seen.toFixed(0)} ms`);
});

Deno.test("cli --stale-after closes a feed gone quiet, and with --reconnect connects again", async (t) => {
  // Sends one message, then only answers pings.
  const quiet = () =>
    rawServer(async (peer) => {
      await peer.sendFrame({ opcode: OP.TEXT, payload: "tick" });
      for (let f = await peer.readFrame(); f; f = await peer.readFrame()) {
        if (f.opcode === OP.PING) await peer.sendFrame({ opcode: OP.PONG, payload: f.payload });
        if (f.opcode === OP.CLOSE) return;
      }
    }, { connections: 2 });
  await t.step("without --reconnect: exit 1 with one line", async () => {
    await using server = quiet();
    const result = await run([
      "--stale-after",
      "0.2",
      "--heartbeat",
      "--interval",
      "0.05",
      "--keep-open",
      "-x",
      "sub",
      server.url,
    ]);
    assert.equal(result.code, 1, result.stderr);
    const errors = result.stderr.split("\n").filter((l) => l.startsWith("error:"));
    assert.equal(errors.length, 1, result.stderr);
    assert.equal(
      errors[0]!.replace(/[\d.]+ ms$/, "N ms"),
      `error: closed by wsbeat: no message for 200 ms (--stale-after), the feed went quiet (${server.url}); the connection stayed open for N ms`,
    );
    assert.equal(result.stderr.split("the feed went quiet").length, 2, result.stderr); // once
  });
  await t.step("with --reconnect: reconnects", async () => {
    await using server = quiet();
    const child = command([
      "--stale-after",
      "0.2",
      "--reconnect",
      "--backoff-initial",
      "0.02",
      "--keep-open",
      "-x",
      "sub",
      server.url,
    ]).spawn();
    const lines: string[] = [];
    for await (const line of readLines(child.stderr)) {
      lines.push(line);
      if (line.startsWith("reconnected after")) break;
    }
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel();
    assert.ok(
      lines.some((l) =>
        /^closed by wsbeat: no message for 200 ms \(--stale-after\), the feed went quiet; reconnecting in \d+ ms \(attempt 2\)$/
          .test(l)
      ),
      lines.join("\n"),
    );
  });
});

Deno.test("cli --max-retries N counts retries: N status lines, then the error names the same N", async () => {
  const port = closedPort();
  const result = await run([
    "--max-retries",
    "3",
    "--backoff-initial",
    "0.01",
    `ws://127.0.0.1:${port}`,
  ]);
  assert.equal(result.code, 1, result.stderr);
  const retries = result.stderr.split("\n").filter((l) => l.includes("reconnecting in"));
  assert.deepEqual(
    retries.map((l) => /\(attempt (\d), retry (\d) of 3\)$/.exec(l)?.slice(1)),
    [["2", "1"], ["3", "2"], ["4", "3"]],
  );
  assert.match(
    result.stderr,
    new RegExp(
      `^error: gave up reconnecting to ws://127\\.0\\.0\\.1:${port}/ after 3 retries in a row \\(--max-retries\\): `,
      "m",
    ),
  );
  const help = new TextDecoder().decode((await command(["--help"]).output()).stdout);
  assert.match(help, /--max-retries N {5}give up when N retries in a row have failed/);
});

Deno.test("cli --reconnect: /quit and /close typed on a terminal end the run, not retried", async (t) => {
  const cases: [string, number, string][] = [["/quit", 1000, ""], ["/close 4000 x", 4000, "x"]];
  for (const [typed, closeCode, reason] of cases) {
    await t.step(typed, async () => {
      const closes: [number, string][] = [];
      let connections = 0;
      await using server = serve({
        onConnect: () => connections++,
        onDisconnect: (_, code, why) => closes.push([code, why]),
      });
      await using run = liveCli(
        ["--reconnect", "--backoff-initial", "0.01", server.url],
        { terminal: true },
      );
      await run.waitFor(/^connected to/);
      await run.write(`${typed}\n`);
      const { code, rest } = await run.end();
      assert.equal(code, 0, rest.join("\n")); // the user's decision, not a failure
      const output = run.lines.join("\n");
      assert.doesNotMatch(output, /reconnecting|attempt|error/, output);
      assert.match(
        output,
        new RegExp(`^closed by wsbeat \\(${closeCode}\\); the connection stayed open for `, "m"),
      );
      assert.equal(connections, 1);
      assert.deepEqual(closes, [[closeCode, reason]]);
    });
  }
});

Deno.test("cli --reconnect says each close once: in the retry line, then in the error that ends the run", async () => {
  await using server = rawServer(async (peer) => {
    await peer.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1012, "restarting") });
    await peer.expectClose();
  }, { connections: 2 });
  const result = await run(["--max-retries", "1", "--backoff-initial", "0.01", server.url]);
  assert.equal(result.code, 1, result.stderr);
  const lines = result.stderr.trimEnd().split("\n").map((l) =>
    l.replace(/\d+(\.\d+)? m?s\b/g, "T")
  );
  assert.deepEqual(lines, [
    `connected to ${server.url} in T`,
    `closed by the server (1012) "restarting"; reconnecting in T (attempt 2, retry 1 of 1)`,
    "reconnected after T",
    `connected to ${server.url} in T`,
    `error: gave up reconnecting to ${server.url} after 1 retry in a row (--max-retries): closed by the server (1012) "restarting"`,
  ]);
  await server.done;
});
