// The CLI's output and exit codes, and stdin: heartbeat traffic kept off stdout, refused
// input in the exit code, stdout write errors, signals, long lines, send backpressure.

import assert from "node:assert/strict";
import { serve } from "../serve.ts";
import { readLines } from "../cli/stdin.ts";
import { assertError, cli, denoArgs, liveCli, shell } from "./_cli.ts";
import { rawServer } from "./_raw_server.ts";

Deno.test("cli --heartbeat: ping frames by default, so -n counts only data", async () => {
  await using server = serve();
  const result = await cli([
    "--heartbeat",
    "--interval",
    "0.01",
    "-x",
    "hello",
    "-n",
    "1",
    server.url,
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "hello\n");
});

Deno.test("cli --ping: the probe's echo is neither printed nor counted by -n", async () => {
  await using server = serve();
  const result = await cli([
    "--ping",
    "ping",
    "--interval",
    "0.01",
    "-x",
    "hello",
    "--every",
    "0.05",
    "-n",
    "3",
    "-q",
    server.url,
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "hello\nhello\nhello\n");
  assert.equal(result.stderr, "");
});

Deno.test("cli --pong that never matches says what arrived instead", async () => {
  await using server = serve(); // an echo server: the probe comes back as it was sent
  const result = await cli([
    "--pong",
    "pong",
    "--interval",
    "0.05",
    "--timeout",
    "0.2",
    "-w",
    "5",
    server.url,
  ]);
  assertError(
    result,
    3,
    /^error: heartbeat timeout: no reply "pong" \(--pong\) to "ping" within 200 ms \(--timeout\); the server sent the probe back instead \(an echo server\?\): check --pong; the connection stayed open for \d+ ms$/,
  );
  assert.equal(result.stdout, "");
});

Deno.test("cli refuses input it cannot send as given, and says so in the exit code", async (t) => {
  await using server = serve();
  await t.step("invalid UTF-8 is refused, not replaced", async () => {
    const input = new Uint8Array([0x61, 0xff, 0x62, 0x0a, ...new TextEncoder().encode("ok\n")]);
    const result = await cli(["-w", "0.3", server.url], { input });
    assert.equal(result.stdout, "ok\n");
    assertError(result, 1, /^error: input line 1 is not valid UTF-8; it was not sent/);
  });
  await t.step("--json checks -x messages before connecting", async () => {
    const result = await cli(["--json", "-x", '{"ok":1}', "-x", "{nope", server.url]);
    assertError(result, 2, /^error: -x message 2 is not JSON \(.+\) and --json is on$/);
  });
});

Deno.test("cli stdout errors: /dev/full is one error line and exit 1; a closed pipe ends quietly", async (t) => {
  await using server = serve();
  await t.step("/dev/full", async () => {
    const result = await shell(`wsbeat -x hi -n 1 ${server.url} > /dev/full`);
    assertError(result, 1, /^error: cannot write to stdout: No space left on device/);
  });
  await t.step("| head -1", async () => {
    const result = await shell(
      `{ wsbeat -x a -x b --every 0.01 -n 1000 ${server.url}; echo "exit $?" >&2; } | head -1`,
    );
    assert.equal(result.stdout, "a\n");
    assert.match(result.stderr, /^exit 0$/m);
    assert.doesNotMatch(result.stderr, /error/);
  });
});

Deno.test("cli exits 143 on SIGTERM after closing with 1000, and a second signal says one line", async (t) => {
  await t.step("SIGTERM", async () => {
    const { promise: closed, resolve } = Promise.withResolvers<number>();
    await using server = serve({ onDisconnect: (_, code) => resolve(code) });
    const child = new Deno.Command("deno", {
      args: denoArgs(["--keep-open", "-x", "hi", server.url]),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const out = readLines(child.stdout);
    assert.equal((await out.next()).value, "hi");
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 143);
    assert.equal(await closed, 1000);
    for await (const _ of out) { /* drain */ }
    await child.stderr.cancel();
  });
  await t.step(
    "Ctrl-C while the close waits on a dead server: one line says so, a second quits",
    async () => {
      // Reads the client's close frame and never answers it, TCP open.
      const closes: number[] = [];
      await using server = rawServer(async (peer) => {
        closes.push((await peer.expectClose())!.code);
        while (await peer.readFrame() !== null) { /* until the client goes */ }
      }, { timeout: 20_000 });
      await using run = liveCli(["--keep-open", server.url]);
      await run.waitFor(/^connected to/);
      run.child.kill("SIGINT");
      assert.equal(
        await run.waitFor(/^waiting/),
        "waiting up to 5 s for the server's close; Ctrl-C again to quit",
      );
      const started = performance.now();
      run.child.kill("SIGINT");
      const { code, rest } = await run.end();
      assert.equal(code, 130);
      assert.deepEqual(rest, ["SIGINT again: exiting without waiting for the server's close"]);
      assert.ok(performance.now() - started < 2_000, "the second Ctrl-C quits at once");
      await server.done;
      assert.deepEqual(closes, [1000]); // the first Ctrl-C did close cleanly
    },
  );
  await t.step("Ctrl-C while the close after stdin ends waits: quits at once", async () => {
    await using server = rawServer(async (peer) => {
      await peer.expectClose();
      while (await peer.readFrame() !== null) { /* until the client goes */ }
    }, { timeout: 20_000 });
    await using run = liveCli(["-w", "0", server.url]);
    await run.waitFor(/^connected to/);
    await run.closeInput(); // stdin ends, -w 0: the CLI closes, and the server never answers
    assert.equal(
      await run.waitFor(/^waiting/),
      "waiting up to 5 s for the server's close; Ctrl-C to quit",
    );
    run.child.kill("SIGINT");
    const { code, rest } = await run.end();
    assert.equal(code, 130);
    assert.deepEqual(rest, ["SIGINT: exiting without waiting for the server's close"]);
    await server.done;
  });
});

Deno.test("cli refuses a 64 MiB input line quickly, with a clear error, and sends the next", async () => {
  await using server = serve();
  const big = new Uint8Array(64 * 1024 * 1024 + 3).fill(0x61);
  big.set(new TextEncoder().encode("\nok"), big.length - 3);
  const started = performance.now();
  const result = await cli(["-w", "0.3", server.url], { input: big });
  const took = performance.now() - started;
  assert.equal(result.stdout, "ok\n");
  assertError(
    result,
    1,
    /^error: input line 1 is 67108864 bytes, over the 16777216-byte limit of a message; it was not sent$/,
  );
  assert.ok(took < 15_000, `took ${took} ms`);
});

Deno.test("cli reads a long line in linear time (8 MiB, sent and echoed)", async () => {
  await using server = serve({ maxMessageSize: 16 * 1024 * 1024 });
  const line = "b".repeat(8 * 1024 * 1024);
  const started = performance.now();
  const result = await cli(["-w", "1", "-q", server.url], { input: line + "\n" });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout.length, line.length + 1);
  assert.ok(performance.now() - started < 10_000);
});

Deno.test("cli --every to a server that stopped reading waits on send backpressure", async () => {
  await using server = serve({ stallAfter: 0 });
  const child = new Deno.Command("deno", {
    args: denoArgs(["-x", "x".repeat(64 * 1024), "--every", "0.001", "--keep-open", server.url]),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, 4_000));
  const ps = await new Deno.Command("sh", { args: ["-c", `ps -o rss= -p ${child.pid}`] }).output();
  const rss = Number(new TextDecoder().decode(ps.stdout).trim()) / 1024;
  child.kill("SIGKILL");
  await child.status;
  // Without backpressure this grew past 100 MB within 4 s; the runtime itself takes about 60.
  assert.ok(rss < 150, `RSS ${rss.toFixed(0)} MB`);
});

Deno.test("cli --timestamps prefixes each message with its time since the open", async () => {
  await using server = serve();
  const result = await cli(["--timestamps", "-x", "hi", "-n", "1", "-q", server.url]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^\[\+\d+\.\d{3}s\] hi\n$/);
});
