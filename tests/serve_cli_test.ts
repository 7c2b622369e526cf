// `wsbeat serve` as a process: its flags, its log lines on stderr, and what
// no in-process test can show: running out of file descriptors, and a
// SIGTERM with a client that never answers.

import assert from "node:assert/strict";
import { readLines } from "../cli/stdin.ts";
import { OP, RawClient, type ServerFrame, upgradeRequest, within } from "./_serve_clients.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** `wsbeat serve` with `args`, its stdout and stderr as lines. */
function start(args: string[], fileLimit?: number) {
  const deno = ["deno", "run", "--allow-net=127.0.0.1", CLI, "serve", "--port", "0", ...args];
  const quoted = deno.map((a) => `'${a}'`).join(" ");
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      fileLimit === undefined ? `exec ${quoted}` : `ulimit -n ${fileLimit}; exec ${quoted}`,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const out = readLines(child.stdout);
  const err = readLines(child.stderr);
  const stderr: string[] = [];
  /** The next stderr line matching `pattern` (every line is kept in `stderr`). */
  const line = (pattern: RegExp, ms = 5_000) =>
    within(
      (async () => {
        for (let next = await err.next(); !next.done; next = await err.next()) {
          stderr.push(next.value);
          if (pattern.test(next.value)) return next.value;
        }
        throw new Error(`stderr ended before ${pattern}:\n${stderr.join("\n")}`);
      })(),
      ms,
      `no stderr line matching ${pattern} within ${ms} ms:\n${stderr.join("\n")}`,
    );
  return {
    child,
    stderr,
    line,
    async port(): Promise<number> {
      const first = await out.next();
      const match = /^listening ws:\/\/127\.0\.0\.1:(\d+)$/.exec(String(first.value));
      assert.ok(match, `first line: ${first.value}`);
      return Number(match[1]);
    },
    /** Sends SIGTERM; resolves with the exit code and every stderr line. */
    async stop(): Promise<number> {
      child.kill("SIGTERM");
      const { code } = await child.status;
      for await (const rest of err) stderr.push(rest);
      for await (const _ of out) { /* drain */ }
      return code;
    },
  };
}

async function run(
  args: string[],
  permissions: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command("deno", {
    args: ["run", "--allow-net=127.0.0.1", ...permissions, CLI, "serve", ...args],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

Deno.test("wsbeat serve rejects bad limit and fault values with exit 2, naming the value", async (t) => {
  const cases: [string[], RegExp][] = [
    [
      ["--close-with", "1005"],
      /^error: --close-with expects CODE\[:REASON\] with a CODE a server may send \(1000-1003, 1007-1014, 3000-4999\), got '1005'$/,
    ],
    [["--close-with", "2000:nope"], /, got '2000:nope'$/],
    [["--close-with", "soon"], /, got 'soon'$/],
    [
      ["--close-with", `1000:${"r".repeat(130)}`],
      /^error: --close-with expects a REASON of at most 123 bytes of UTF-8, got 130 bytes in '1000:r{130}'$/,
    ],
    [["--fragment", "0"], /^error: --fragment expects a whole number from 1 to 1000, got '0'$/],
    [
      ["--reject-status", "200"],
      /^error: --reject-status expects a whole number from 400 to 599, got '200'$/,
    ],
    [
      ["--max-connections", "lots"],
      /^error: --max-connections expects a whole number of at least 1, got 'lots'$/,
    ],
    [
      ["--handshake-timeout", "0"],
      /^error: --handshake-timeout expects a number of seconds above 0, got '0'$/,
    ],
    [["--stall-for", "0"], /^error: --stall-for expects a number of seconds above 0, got '0'$/],
  ];
  for (const [args, pattern] of cases) {
    await t.step(args.join(" ").slice(0, 40), async () => {
      const result = await run([...args, "--port", "0"]);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stdout, "");
      assert.match(result.stderr.trimEnd(), pattern);
      assert.equal(result.stderr.trimEnd().split("\n").length, 1);
    });
  }
});

Deno.test("wsbeat serve --help gives each limit and fault with its default", async () => {
  const { code, stdout } = await run(["--help"]);
  assert.equal(code, 0);
  for (
    const flag of [
      "max-message-size",
      "max-connections",
      "handshake-timeout",
      "max-header-size",
      "max-unsent",
      "close-timeout",
    ]
  ) {
    assert.match(stdout, new RegExp(`--${flag} .*\\n?.*\\(default \\d+`), flag);
  }
  for (
    const flag of [
      "idle-timeout",
      "pong",
      "stall-after",
      "stall-for",
      "drop-after",
      "close-with",
      "echo-delay",
      "fragment",
      "ping-interval",
      "reject-status",
    ]
  ) {
    assert.match(stdout, new RegExp(`^ +--${flag} `, "m"), flag);
  }
});

Deno.test("wsbeat serve logs a bad upgrade request on one line without a stack trace, and nothing with -q", async (t) => {
  for (const quiet of [false, true]) {
    await t.step(quiet ? "-q" : "default", async () => {
      const server = start(quiet ? ["-q"] : []);
      const port = await server.port();
      await using raw = await RawClient.open(port, {
        request: upgradeRequest(port, { key: null }),
      });
      assert.equal(((await raw.head()) as { status: number }).status, 400);
      if (!quiet) {
        await server.line(/handshake rejected/);
      } else {
        // Something the server logs after it, were it not quiet: there is no such line.
        await using ok = await RawClient.open(port);
        assert.equal(((await ok.head()) as { status: number }).status, 101);
      }
      assert.equal(await server.stop(), 0);
      const lines = server.stderr;
      assert.doesNotMatch(lines.join("\n"), /^\s+at |Error:|panicked/m);
      if (quiet) assert.deepEqual(lines, []);
      else {
        assert.match(
          lines[0]!,
          /^#1 handshake rejected from 127\.0\.0\.1:\d+: 400 the request has no Sec-WebSocket-Key header$/,
        );
        assert.equal(lines.at(-1), "stopped");
      }
    });
  }
});

Deno.test("wsbeat serve exits on SIGTERM within --close-timeout, with a client that never reads", async () => {
  const server = start(["--close-timeout", "0.3"]);
  const port = await server.port();
  await using _deaf = await RawClient.open(port, { deaf: true });
  await server.line(/^#1 connected/);
  const started = performance.now();
  assert.equal(await server.stop(), 0);
  const took = performance.now() - started;
  assert.ok(took >= 290 && took < 2_000, `exited after ${took} ms`);
  assert.ok(
    server.stderr.some((l) =>
      /^#1 closed \(1001 "server shutting down", by the server; no answer within 300 ms/.test(l)
    ),
    server.stderr.join("\n"),
  );
});

Deno.test("wsbeat serve survives running out of file descriptors, and keeps echoing", async () => {
  // A limit of 64 open files, about 25 of them the runtime's own, and 60 clients: accept()
  // fails with EMFILE, and the clients past the limit wait in the listen backlog.
  const server = start(["--handshake-timeout", "30"], 64);
  const port = await server.port();
  const first = await RawClient.open(port);
  assert.equal(((await first.head()) as { status: number }).status, 101);
  const failed = server.line(/^accept failed: Too many open files/, 10_000);
  const others: RawClient[] = [];
  for (let i = 0; i < 60; i++) others.push(await RawClient.open(port));
  await failed;
  await first.send({ opcode: OP.TEXT, payload: "still here?" });
  const echo = (await first.frame()) as ServerFrame;
  assert.equal(new TextDecoder().decode(echo.payload), "still here?");
  // Free descriptors: the last client, waiting in the backlog, is accepted and answered.
  const last = others.pop()!;
  await Promise.all(others.map((c) => c.close()));
  const head = await last.head(10_000);
  assert.equal(typeof head === "string" ? head : head.status, 101, server.stderr.join("\n"));
  await Promise.all([first.close(), last.close()]);
  assert.equal(await server.stop(), 0);
  assert.ok(server.stderr.some((l) => /^accepting again after \d+ failed accepts$/.test(l)));
  assert.equal(server.stderr.filter((l) => l.startsWith("accept failed")).length, 1);
  assert.doesNotMatch(server.stderr.join("\n"), /Uncaught|panicked|^\s+at /m);
});

Deno.test("wsbeat serve --stall-after 0 frees each place when its client leaves, and after --stall-for", async () => {
  // The user's report: with --stall-after 0 --max-connections 3 the 4th client got 503.
  const server = start(["--stall-after", "0", "--max-connections", "1", "--stall-for", "0.3"]);
  const port = await server.port();
  for (let i = 1; i <= 3; i++) { // in turn, each client leaving on its own
    const raw = await RawClient.open(port);
    assert.equal(((await raw.head()) as { status: number }).status, 101, `client ${i}`);
    await server.line(new RegExp(`^#${i} connected`));
    await raw.close();
    await server.line(
      new RegExp(
        `^#${i} closed \\(1006; stalled \\(stallAfter\\), released when the client closed TCP\\)`,
      ),
    );
  }
  await using stays = await RawClient.open(port); // a client that never leaves
  assert.equal(((await stays.head()) as { status: number }).status, 101);
  assert.deepEqual(await stays.rest(5_000), new Uint8Array(0));
  await server.line(
    /^#4 closed \(1006; stalled \(stallAfter\), TCP closed after 300 ms \(stallFor\)\)/,
  );
  assert.equal(await server.stop(), 0);
  assert.ok(!server.stderr.some((l) => / refused /.test(l)), server.stderr.join("\n"));
});

Deno.test("wsbeat serve answers 400 to control bytes and logs nothing raw, and no credential", async () => {
  const server = start([]);
  const port = await server.port();
  const requests = [
    upgradeRequest(port).replace("GET / ", "GET /\x1b]0;pwned\x07\x1b[2J "),
    upgradeRequest(port).replace("\r\n\r\n", "\r\nUser-Agent: x\x1b[31m\r\n\r\n"),
  ];
  for (const [i, request] of requests.entries()) {
    await using raw = await RawClient.open(port, { request });
    assert.equal(((await raw.head()) as { status: number }).status, 400);
    await server.line(new RegExp(`^#${i + 1} handshake rejected`));
  }
  const token = upgradeRequest(port).replace("GET / ", "GET /feed?token=s3cret ")
    .replace("\r\n\r\n", "\r\nAuthorization: Bearer s3cret\r\nCookie: id=s3cret\r\n\r\n");
  await using raw = await RawClient.open(port, { request: token });
  assert.equal(((await raw.head()) as { status: number }).status, 101);
  await server.line(/^#3 connected from 127\.0\.0\.1:\d+ \/feed\?token=\*\*\*$/);
  await raw.close();
  assert.equal(await server.stop(), 0);
  const log = server.stderr.join("\n");
  assert.match(
    log,
    /^#1 handshake rejected .*: 400 the request target "\/\\x1b\]0;pwned\\x07\\x1b\[2J" holds the control byte 0x1b; a client must percent-encode it$/m,
  );
  assert.match(
    log,
    /^#2 handshake rejected .*: 400 the request's user-agent header holds the control byte 0x1b, which RFC 9110 forbids in a field value$/m,
  );
  for (const line of server.stderr) {
    // deno-lint-ignore no-control-regex -- a raw control byte (tab aside) is what must not be there
    assert.doesNotMatch(line, /[\x00-\x08\x0a-\x1f\x7f-\x9f]/);
  }
  assert.doesNotMatch(log, /s3cret/);
});

Deno.test("wsbeat serve rejects a bad --cert or --key with exit 2, naming the flag and the file", async (t) => {
  const dir = new URL("./fixtures/", import.meta.url).pathname;
  const pem = `${dir}localhost.pem`, key = `${dir}localhost.key`, notPem = `${dir}mtls_server.mjs`;
  const cases: [string, string[], string][] = [
    [
      "not PEM as --cert",
      ["--cert", notPem, "--key", key],
      `error: --cert ${notPem} holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the certificate file`,
    ],
    [
      "not PEM as --key",
      ["--cert", pem, "--key", notPem],
      `error: --key ${notPem} holds no PEM private key (-----BEGIN PRIVATE KEY-----): give the private key file`,
    ],
    [
      "a key of another certificate",
      ["--cert", pem, "--key", `${dir}client.key`],
      `error: --key ${dir}client.key does not match the certificate in --cert ${pem}: give the key made with that certificate`,
    ],
    [
      "cert and key swapped",
      ["--cert", key, "--key", pem],
      `error: --cert ${key} holds a private key, not a PEM certificate (-----BEGIN CERTIFICATE-----): give the certificate with --cert and its key with --key`,
    ],
  ];
  for (const [name, args, message] of cases) {
    await t.step(name, async () => {
      const result = await run([...args, "--port", "0"], [`--allow-read=${dir}`]);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stdout, "");
      assert.equal(result.stderr, `${message}\n`);
    });
  }
  await t.step("the right pair serves wss:", async () => {
    const child = new Deno.Command("deno", {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        `--allow-read=${dir}`,
        CLI,
        "serve",
        "--port",
        "0",
        "--cert",
        pem,
        "--key",
        key,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      env: { NO_COLOR: "1" },
    }).spawn();
    const out = readLines(child.stdout);
    assert.match(String((await out.next()).value), /^listening wss:\/\/127\.0\.0\.1:\d+$/);
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    for await (const _ of out) { /* drain */ }
  });
});
