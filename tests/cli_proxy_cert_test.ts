// --proxy (and HTTP_PROXY/HTTPS_PROXY/NO_PROXY) through a CONNECT proxy written for the
// test; --cert/--key against a server that requires a client certificate; slash commands
// through a pseudo-terminal.

import assert from "node:assert/strict";
import { serve } from "../serve.ts";
import { readLines } from "../cli/stdin.ts";
import { assertError, cli, denoArgs, FIXTURES } from "./_cli.ts";
import { connectProxy } from "./_connect_proxy.ts";

Deno.test("cli --proxy tunnels ws:// and wss:// through HTTP CONNECT with the proxy's credentials", async (t) => {
  await using proxy = connectProxy({ user: "me", password: "right" });
  await t.step("ws://", async () => {
    await using server = serve();
    const result = await cli([
      "--proxy",
      `http://me:right@127.0.0.1:${proxy.port}`,
      "-x",
      "through",
      "-n",
      "1",
      server.url,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "through\n");
    assert.equal(proxy.targets.at(-1), new URL(server.url).host);
  });
  await t.step("wss:// (TLS inside the tunnel)", async () => {
    const cert = await Deno.readTextFile(FIXTURES + "localhost.pem");
    const key = await Deno.readTextFile(FIXTURES + "localhost.key");
    await using server = serve({ cert, key });
    const url = server.url.replace("127.0.0.1", "localhost");
    const result = await cli([
      "--proxy",
      `http://me:right@127.0.0.1:${proxy.port}`,
      "--cacert",
      FIXTURES + "localhost.pem",
      "-x",
      "secure",
      "-n",
      "1",
      url,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "secure\n");
    assert.equal(proxy.targets.at(-1), new URL(url).host);
  });
  await t.step(
    "a wrong password is a clear error, not retried, the password never shown",
    async () => {
      await using server = serve();
      const result = await cli([
        "--reconnect",
        "--proxy",
        `http://me:wrong-pass@127.0.0.1:${proxy.port}`,
        server.url,
      ]);
      assertError(
        result,
        1,
        new RegExp(
          `^error: cannot connect to ${server.url}/: the proxy http://me:\\*\\*\\*@127\\.0\\.0\\.1:${proxy.port}/ refused the tunnel with HTTP 407 Proxy Authentication Required: the proxy refused its user name or password$`,
        ),
      );
      assert.doesNotMatch(result.stderr, /wrong-pass|reconnecting in/);
    },
  );
});

Deno.test("cli takes the proxy from HTTP_PROXY, unless NO_PROXY names the host", async () => {
  await using proxy = connectProxy();
  await using server = serve();
  const permissions = [
    "--allow-env=HTTP_PROXY,HTTPS_PROXY,NO_PROXY,http_proxy,https_proxy,no_proxy",
  ];
  const args = ["-x", "hi", "-n", "1", server.url];
  const via = await cli(args, { env: { HTTP_PROXY: proxy.url }, permissions });
  assert.equal(via.stdout, "hi\n", via.stderr);
  assert.equal(proxy.targets.length, 1);
  const direct = await cli(args, {
    env: { HTTP_PROXY: proxy.url, NO_PROXY: "example.com,127.0.0.1" },
    permissions,
  });
  assert.equal(direct.stdout, "hi\n", direct.stderr);
  assert.equal(proxy.targets.length, 1); // not through the proxy this time
});

Deno.test("cli --cert/--key presents a client certificate to a server that requires one", async () => {
  const server = new Deno.Command("node", {
    args: [FIXTURES + "mtls_server.mjs"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = readLines(server.stdout);
  const port = Number((await out.next()).value);
  try {
    const url = `wss://localhost:${port}/`;
    const base = ["--cacert", FIXTURES + "localhost.pem", "-x", "mtls", "-n", "1"];
    const withCert = await cli([
      ...base,
      "--cert",
      FIXTURES + "client.pem",
      "--key",
      FIXTURES + "client.key",
      url,
    ]);
    assert.equal(withCert.code, 0, withCert.stderr);
    assert.equal(withCert.stdout, "mtls\n");
    assertError(
      await cli([...base, url]),
      1,
      /TLS failed .*CertificateRequired.*; the server requires a client certificate \(--cert and --key\)$/,
    );
  } finally {
    await server.stdin.close();
    await server.status;
    for await (const _ of out) { /* drain */ }
  }
});

/** Runs the CLI with a pseudo-terminal as stdin and stdout (`script` from util-linux). */
async function onTerminal(
  args: string[],
  input: string[],
): Promise<{ code: number; output: string }> {
  const command = ["deno", ...denoArgs(args)].map((a) => `'${a}'`).join(" ");
  // Through sh, so that the test needs no permission to run `script` itself.
  const child = new Deno.Command("sh", {
    args: ["-c", `exec script -qec "$0" /dev/null`, command],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  const out = readLines(child.stdout);
  const lines: string[] = [];
  const waitFor = async (pattern: RegExp) => {
    for (let line = await out.next(); !line.done; line = await out.next()) {
      lines.push(line.value);
      if (pattern.test(line.value)) return;
    }
    throw new Error(`no line matching ${pattern}:\n${lines.join("\n")}`);
  };
  await waitFor(/^connected to/);
  for (const line of input) {
    await writer.write(new TextEncoder().encode(line + "\n"));
    await new Promise((r) => setTimeout(r, 100));
  }
  const { code } = await child.status;
  for await (const line of out) lines.push(line);
  await writer.close().catch(() => {});
  await child.stderr.cancel();
  return { code, output: lines.join("\n") };
}

Deno.test("cli slash commands on a terminal: /ping, //text, /close CODE REASON", async () => {
  const closes: [number, string][] = [];
  await using server = serve({ onDisconnect: (_, code, reason) => closes.push([code, reason]) });
  const { code, output } = await onTerminal([server.url], [
    "/ping",
    "//not a command",
    "/nope",
    "/close 4000 done here",
  ]);
  assert.equal(code, 0, output);
  assert.match(output, /^pong after \d+(\.\d+)? ms\r?$/m);
  assert.match(output, /^\/not a command\r?$/m); // the echo of the line sent
  assert.match(output, /^error: unknown command '\/nope'/m);
  assert.match(output, /closed by wsbeat \(4000\)/);
  assert.deepEqual(closes, [[4000, "done here"]]);
});

Deno.test("cli marks binary messages on a terminal; /quit exits 0", async () => {
  await using server = serve();
  const { code, output } = await onTerminal(["--binary", server.url], ["AAEC/w==", "/quit"]);
  assert.equal(code, 0, output);
  assert.match(output, /^\[binary 4 B\] AAEC\/w==\r?$/m);
});
