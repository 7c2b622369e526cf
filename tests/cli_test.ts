import assert from "node:assert/strict";
import { connect } from "../mod.ts";
import { serve } from "../serve.ts";
import { InputFeed, type InputItem, readLines } from "../cli/stdin.ts";
import denoJson from "../deno.json" with { type: "json" };
import { closedPort, silentServer, statusServer } from "./_servers.ts";
import { type CommandOutput as Run, runCommand } from "./_command.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
/** A host name no resolver can look up: its 64-character label is over the DNS limit. */
const UNRESOLVABLE = `${"a".repeat(64)}.invalid`;
const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

/** The `deno run` arguments for the CLI with `args`. */
function cliArgs(args: string[]): string[] {
  return [
    "run",
    `--allow-net=127.0.0.1,localhost,${UNRESOLVABLE}`,
    `--allow-read=${FIXTURES}`,
    CLI,
    ...args,
  ];
}

/** The CLI as a command to spawn, for the tests that talk to it while it runs. */
function command(args: string[], stdin: "piped" | "null" = "null"): Deno.Command {
  return new Deno.Command("deno", {
    args: cliArgs(args),
    stdin,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

/** Runs the CLI to the end, with `input` on stdin (or none). */
function run(args: string[], input?: string): Promise<Run> {
  return runCommand("deno", cliArgs(args), { input, env: { NO_COLOR: "1" } });
}

/** Asserts a usage or connection error: exit code, one `error:` line, no stack trace. */
function assertError(result: Run, code: number, pattern: RegExp): void {
  assert.equal(result.code, code, result.stderr);
  const lines = result.stderr.trimEnd().split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(result.stderr, /^\s+at /m);
}

Deno.test("cli echoes piped lines and exits 0 after stdin ends", async () => {
  const closes: number[] = [];
  await using server = serve({ onDisconnect: (_, code) => closes.push(code) });
  const result = await run([server.url, "--wait", "0.5"], "hello\nwörld\n");
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "hello\nwörld\n");
  assert.match(result.stderr, /^connected to ws:\/\/127\.0\.0\.1:\d+\/ in [\d.]+ ms$/m);
  assert.match(result.stderr, /^closed by wsbeat \(1000\); the connection stayed open for /m);
  assert.deepEqual(closes, [1000]);
});

Deno.test("cli -x sends messages and -n exits after that many replies", async () => {
  await using server = serve();
  const result = await run(["-x", "one", "-x", "two", "-n", "2", server.url]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "one\ntwo\n");
});

Deno.test("cli --every repeats the -x messages", async () => {
  await using server = serve(); // four echoes need four sends: -x alone sends once
  const result = await run(["-x", "tick", "--every", "0.02", "-n", "4", "-q", server.url]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "tick\ntick\ntick\ntick\n");
  assert.equal(result.stderr, ""); // -q: no status lines
});

Deno.test("cli exits 0 when the server closes normally and 1 when it closes otherwise", async (t) => {
  await t.step("1001 idle timeout: 0", async () => {
    await using server = serve({ idleTimeout: 100 });
    const result = await run([server.url, "--wait", "5"], undefined);
    // stdin is /dev/null, so input ends at once; the server's idle close comes first.
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /closed by the server \(1001\) "idle timeout"; the connection stayed open for/,
    );
  });
  await t.step("4001: 1", async () => {
    await using server = serve({ closeWith: { code: 4001, reason: "go away" } });
    const result = await run(["-x", "hi", "--wait", "5", server.url]);
    assert.equal(result.stdout, "hi\n");
    assertError(
      result,
      1,
      /^error: closed by the server \(4001\) "go away" \(ws:\/\/127\.0\.0\.1:\d+\/\); the connection stayed open for \d+(\.\d+)? ms$/,
    );
    // The cause is said once, in the error line.
    assert.equal(result.stderr.split("go away").length, 2, result.stderr);
  });
  await t.step("abrupt drop: 1", async () => {
    await using server = serve({ dropAfter: 1 });
    const result = await run(["-x", "a", "-x", "b", "--wait", "5", server.url]);
    assert.equal(result.stdout, "a\n");
    assertError(result, 1, /^error: connection lost \(1006, no close frame\) \(ws:/);
    assert.doesNotMatch(result.stderr, /without a closing handshake/);
    assert.equal(result.stderr.split("connection lost").length, 2, result.stderr);
  });
});

Deno.test("cli reports connection failures on one line with exit code 1", async (t) => {
  await t.step("refused", async () => {
    const port = closedPort();
    assertError(
      await run([`ws://127.0.0.1:${port}`]),
      1,
      new RegExp(`^error: cannot connect to ws://127\\.0\\.0\\.1:${port}/: connection refused$`),
    );
  });
  await t.step("HTTP 403", async () => {
    await using server = statusServer(403);
    assertError(
      await run([server.url]),
      1,
      /: the server answered HTTP 403( Forbidden)? instead of switching protocols$/,
    );
  });
  await t.step("connect timeout", async () => {
    await using server = silentServer();
    assertError(
      await run(["--connect-timeout", "0.2", server.url]),
      1,
      /: no handshake within 200 ms \(--connect-timeout\)/,
    );
  });
  await t.step("DNS", async () => {
    assertError(
      await run([`ws://${UNRESOLVABLE}/`]),
      1,
      new RegExp(
        `^error: cannot connect to ws://${UNRESOLVABLE}/: host name not found \\(DNS error\\)$`,
      ),
    );
  });
  await t.step("no permission for the host", async () => {
    assertError(
      await run(["ws://127.0.0.2:9/"]),
      1,
      /^error: no permission to connect to ws:\/\/127\.0\.0\.2:9\/; run deno with --allow-net=127\.0\.0\.2:9 \(or -A\)$/,
    );
  });
  await t.step("untrusted certificate, then trusted with --cacert", async () => {
    const cert = await Deno.readTextFile(FIXTURES + "localhost.pem");
    const key = await Deno.readTextFile(FIXTURES + "localhost.key");
    await using server = serve({ cert, key });
    const url = server.url.replace("127.0.0.1", "localhost");
    assertError(
      await run([url]),
      1,
      /TLS failed .*UnknownIssuer.*; to trust a private CA pass --cacert ca\.pem$/,
    );
    const trusted = await run([
      "-x",
      "secure",
      "-n",
      "1",
      "--cacert",
      FIXTURES + "localhost.pem",
      url,
    ]);
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.equal(trusted.stdout, "secure\n");
  });
});

Deno.test("cli rejects bad usage with exit code 2 and one line", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["missing URL", [], /^error: missing URL; usage: wsbeat \[options\] <url>/],
    ["two URLs", ["ws://a", "ws://b"], /^error: expected one URL, got 2: 'ws:\/\/a' 'ws:\/\/b'$/],
    ["bad URL", ["ws://exa mple"], /^error: invalid URL 'ws:\/\/exa mple'/],
    ["wrong scheme", ["ftp://x"], /^error: invalid URL 'ftp:\/\/x': the scheme must be/],
    [
      "unknown flag",
      ["--frobnicate", "ws://x"],
      /^error: unknown option '--frobnicate'; see --help/,
    ],
    [
      "bad number",
      ["--interval", "soon", "ws://x"],
      /^error: --interval expects a number of seconds in decimal, such as 5 or 0\.5, got 'soon'$/,
    ],
    [
      "bad count",
      ["-n", "0", "ws://x"],
      /^error: --count expects a whole number of at least 1, got '0'$/,
    ],
    [
      "missing value",
      ["ws://x", "--timeout"],
      /^error: option '--timeout <value>' argument missing/,
    ],
    [
      "bad header",
      ["-H", "NoColon", "ws://x"],
      /^error: --header expects "Name: value", got no colon in '\*\*\*'$/,
    ],
    [
      "missing cert file",
      ["--cacert", FIXTURES + "nope.pem", "ws://x"],
      /^error: cannot read --cacert file '.*nope\.pem'/,
    ],
    [
      "--every without -x",
      ["--every", "1", "ws://x"],
      /^error: --every repeats the -x\/--send messages/,
    ],
    [
      "bad binary format",
      ["--binary-format", "octal", "ws://x"],
      /^error: --binary-format expects base64, hex or raw, got 'octal'$/,
    ],
    [
      "verbose and quiet",
      ["-v", "-q", "ws://x"],
      /^error: --verbose and --quiet contradict each other/,
    ],
    [
      "serve: bad port",
      ["serve", "--port", "70000"],
      /^error: --port expects 0 to 65535, got '70000'$/,
    ],
    [
      "serve: bad pong",
      ["serve", "--pong", "ping"],
      /^error: --pong expects PING:PONG, got 'ping'$/,
    ],
  ];
  for (const [name, args, pattern] of cases) {
    await t.step(name, async () => assertError(await run(args), 2, pattern));
  }
});

Deno.test("cli --heartbeat exits 3 with one line when the server stalls", async () => {
  await using server = serve({ stallAfter: 2, pong: { ping: "ping", pong: "pong" } });
  const result = await run([
    "--heartbeat",
    "--interval",
    "0.05",
    "--timeout",
    "0.2",
    "--pong",
    "pong",
    "-w",
    "30",
    server.url,
  ]);
  assertError(
    result,
    3,
    /^error: heartbeat timeout: no reply to "ping" within 200 ms \(--timeout\); the server at ws:\/\/127\.0\.0\.1:\d+\/ stopped answering; the connection stayed open for \d+ ms$/,
  );
  assert.equal(result.stdout, ""); // the pongs are heartbeat traffic, not output
  assert.doesNotMatch(result.stderr, /closed by the heartbeat/); // the error line says it, once
});

Deno.test("cli --heartbeat keeps an --idle-timeout server's connection open", async () => {
  const closes: [number, string][] = [];
  await using server = serve({
    idleTimeout: 200,
    pong: { ping: "ping", pong: "pong" },
    onDisconnect: (_, c, r) => closes.push([c, r]),
  });
  const result = await run([
    "--heartbeat",
    "--interval",
    "0.05",
    "--pong",
    "pong",
    "--show-rtt",
    "-w",
    "1",
    server.url,
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /closed by wsbeat \(1000\); the connection stayed open for 1\.\d s/);
  assert.ok(
    result.stderr.split("\n").filter((l) => l.startsWith("rtt ")).length >= 5,
    result.stderr,
  );
  assert.deepEqual(closes, [[1000, ""]]); // never the idle close
});

Deno.test("cli sends -H headers and shows them only with --verbose, masking secrets", async () => {
  const seen: Headers[] = [];
  await using server = serve({ onConnect: (c) => seen.push(c.headers) });
  const headers = [
    "-H",
    "Authorization: Bearer top-secret",
    "-H",
    "Cookie: id=42",
    "-H",
    "X-Team: blue",
  ];
  const plain = await run([...headers, "-x", "a", "-n", "1", server.url]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.doesNotMatch(plain.stderr, /X-Team|Authorization|top-secret/);
  const verbose = await run([...headers, "-v", "-x", "a", "-n", "1", server.url]);
  assert.equal(verbose.code, 0, verbose.stderr);
  assert.match(verbose.stderr, /^ {2}Authorization: \*\*\*$/m);
  assert.match(verbose.stderr, /^ {2}Cookie: \*\*\*$/m);
  assert.match(verbose.stderr, /^ {2}X-Team: blue$/m);
  assert.doesNotMatch(verbose.stderr, /top-secret|id=42/);
  assert.match(verbose.stderr, /^ {2}sent 1 message \(1 B\), received 1 message \(1 B\)$/m);
  assert.equal(seen.length, 2);
  for (const h of seen) {
    assert.equal(h.get("authorization"), "Bearer top-secret");
    assert.equal(h.get("x-team"), "blue");
  }
});

Deno.test("cli --binary sends base64 lines as binary and prints binary as base64 or hex", async () => {
  await using server = serve();
  const result = await run(["--binary", "-w", "0.5", server.url], "AAEC/w==\nnot base64!\n");
  assert.equal(result.code, 1, result.stderr); // a refused line shows in the exit code
  assert.equal(result.stdout, "AAEC/w==\n");
  assert.match(
    result.stderr,
    /^error: input line 2 is not valid base64 \(--binary\); it was not sent$/m,
  );
  const hex = await run(
    ["--binary", "--binary-format", "hex", "-w", "0.5", server.url],
    "AAEC/w==\n",
  );
  assert.equal(hex.stdout, "000102ff\n");
});

Deno.test("cli --json refuses input lines that are not JSON", async () => {
  await using server = serve();
  const result = await run(
    ["--json", "-w", "0.5", server.url],
    '{"op":"subscribe"}\n{oops\n[1,2]\n',
  );
  assert.equal(result.code, 1, result.stderr); // a refused line shows in the exit code
  assert.equal(result.stdout, '{"op":"subscribe"}\n[1,2]\n'); // not a terminal: printed as received
  assert.match(result.stderr, /^error: input line 2 is not JSON \(.+\); it was not sent$/m);
});

Deno.test("cli closes with 1000 and exits 130 on Ctrl-C", async () => {
  const { promise: closed, resolve } = Promise.withResolvers<number>();
  await using server = serve({ onDisconnect: (_, code) => resolve(code) });
  const child = command([server.url], "piped").spawn();
  const lines = readLines(child.stderr);
  // next(), not for-await + break: breaking would cancel the child's stderr.
  for (let line = await lines.next(); !line.done; line = await lines.next()) {
    if (line.value.startsWith("connected to")) break;
  }
  child.kill("SIGINT");
  assert.equal((await child.status).code, 130);
  const rest: string[] = [];
  for await (const line of lines) rest.push(line);
  assert.match(rest.join("\n"), /^closed by wsbeat \(1000\); the connection stayed open for/m);
  await child.stdout.cancel();
  await child.stdin.close();
  assert.equal(await closed, 1000);
});

Deno.test("cli serve prints its URL, echoes, and stops on SIGTERM", async () => {
  const child = command(["serve", "--port", "0"]).spawn();
  const out = readLines(child.stdout);
  const first = await out.next();
  const url = /^listening (ws:\/\/127\.0\.0\.1:(\d+))$/.exec(first.value as string);
  assert.ok(url, `first line: ${first.value}`);
  assert.notEqual(Number(url[2]), 0);
  const ws = await connect(url[1]!);
  ws.send("are you there?");
  assert.equal(await ws.receive(), "are you there?");
  child.kill("SIGTERM");
  const info = await ws.closed;
  assert.equal(info.code, 1001);
  assert.equal(info.reason, "server shutting down");
  const status = await child.status;
  assert.equal(status.code, 0);
  for await (const _ of out) { /* drain */ }
  const stderr = await new Response(child.stderr).text();
  assert.match(stderr, /^#1 connected from 127\.0\.0\.1:\d+ \/$/m);
  assert.match(stderr, /^#1 closed \(1001 "server shutting down", by the server\) after \d+ ms$/m);
});

Deno.test("cli --help and --version print on stdout and exit 0", async () => {
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Exit codes:$/m);
  assert.match(help.stdout, /--cacert FILE/);
  assert.equal(help.stderr, "");
  const version = await run(["-V"]);
  assert.equal(version.stdout, `wsbeat ${denoJson.version}\n`);
  const serveHelp = await run(["serve", "--help"]);
  assert.match(serveHelp.stdout, /--stall-after N/);
});

Deno.test("cli demo runs the whole experiment and exits 0", async () => {
  const result = await run(["demo"]);
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.match(
    result.stdout,
    /the server closed the connection \(1001 "idle timeout"\) after 3\.\d s open/,
  );
  assert.match(result.stdout, /still open after 7\.\d s/);
  // Step 3 beats with ping frames against a server that stalls at the TCP level.
  assert.match(result.stdout, /beat 3: pong frame after [\d.]+ ms; sending message 3/);
  assert.doesNotMatch(result.stdout, /beat 4: pong frame/);
  assert.match(result.stdout, /TooSlowError: Heartbeat reply not received within 1000 ms/);
  assert.match(result.stdout, /the bound is interval \+ timeout = 2\.0 s/);
});

Deno.test("cli --reconnect reconnects after drops and sends -x again on each connection", async () => {
  let connections = 0;
  await using server = serve({ dropAfter: 3, onConnect: () => connections++ });
  const result = await run([
    "--reconnect",
    "--backoff-initial",
    "0.02",
    "-x",
    "sub",
    "-n",
    "7",
    "--every",
    "0.01",
    server.url,
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "sub\n".repeat(7));
  assert.ok(connections >= 3, `${connections} connections`);
  assert.match(
    result.stderr,
    /^connection lost \(1006, no close frame\).*; reconnecting in \d+(\.\d+)? ms \(attempt 2\)$/m,
  );
  assert.match(result.stderr, /^reconnected after \d+(\.\d+)? ms$/m);
});

Deno.test("cli --reconnect keeps stdin lines typed while disconnected for the next connection", async () => {
  await using server = serve({ dropAfter: 1 });
  const child = command(
    ["--reconnect", "--backoff-initial", "0.3", "-w", "0.3", server.url],
    "piped",
  ).spawn();
  const writer = child.stdin.getWriter();
  const out = readLines(child.stdout);
  const err = readLines(child.stderr);
  const nextMatching = async (lines: AsyncGenerator<string>, pattern: RegExp) => {
    for (let line = await lines.next(); !line.done; line = await lines.next()) {
      if (pattern.test(line.value)) return line.value;
    }
    throw new Error(`stream ended before ${pattern}`);
  };
  await writer.write(new TextEncoder().encode("one\n"));
  assert.equal((await out.next()).value, "one");
  await nextMatching(err, /reconnecting in/); // disconnected now, for about 0.15-0.3 s
  await writer.write(new TextEncoder().encode("two\n"));
  await nextMatching(err, /^reconnected after/);
  assert.equal((await out.next()).value, "two");
  await writer.close();
  assert.equal((await child.status).code, 0);
  for await (const _ of out) { /* drain */ }
  for await (const _ of err) { /* drain */ }
});

Deno.test("cli --reconnect stops with exit 1 on a failure it must not retry, and after --max-retries", async (t) => {
  await t.step("HTTP 403", async () => {
    await using server = statusServer(403);
    assertError(await run(["--reconnect", server.url]), 1, /the server answered HTTP 403/);
  });
  await t.step("--max-retries 2", async () => {
    const port = closedPort();
    const result = await run([
      "--max-retries",
      "2",
      "--backoff-initial",
      "0.01",
      `ws://127.0.0.1:${port}`,
    ]);
    assertError(
      result,
      1,
      new RegExp(
        `^error: gave up reconnecting to ws://127\\.0\\.0\\.1:${port}/ after 2 retries in a row \\(--max-retries\\): .*connection refused$`,
      ),
    );
    assert.equal(result.stderr.split("\n").filter((l) => l.includes("reconnecting in")).length, 2);
  });
});

Deno.test("InputFeed stops reading when its queue is full and resumes as it drains", async () => {
  let pulled = 0;
  let fullCount = 0;
  async function* lines() {
    for (let i = 0; i < 10; i++) {
      pulled++;
      yield new TextEncoder().encode(`line ${i}`);
      await Promise.resolve();
    }
  }
  const { promise: full, resolve } = Promise.withResolvers<void>();
  const feed = new InputFeed(lines(), {
    prepare: (line) => new TextDecoder().decode(line as Uint8Array),
    onFull: () => {
      fullCount++;
      resolve();
    },
    limit: 3,
  });
  await full;
  assert.equal(feed.size, 3);
  assert.equal(pulled, 4); // the fourth line waits for room; nothing is dropped
  const stop = new AbortController();
  const sent: InputItem[] = [];
  for (
    let item = await feed.peek(stop.signal);
    item !== undefined;
    item = await feed.peek(stop.signal)
  ) {
    sent.push(item);
    feed.shift();
  }
  assert.deepEqual(sent, Array.from({ length: 10 }, (_, i) => `line ${i}`));
  assert.ok(fullCount >= 1);
});
