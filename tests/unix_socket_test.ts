// ws+unix: and wss+unix: URLs, as Node's ws writes them (ws+unix:/path/to.sock:/request/path),
// against an echo server listening on a Unix socket under .cache/ (git-ignored), in a process
// of its own: Deno 2.9 asks for --allow-net=unix:<the socket's absolute path>.

import assert from "node:assert/strict";
import { parseUnixUrl } from "../transport/wire_options.ts";

Deno.test("parseUnixUrl() splits the socket path from the request path", () => {
  const parsed = parseUnixUrl("ws+unix:/tmp/a.sock:/feed?x=1")!;
  assert.equal(parsed.socketPath, "/tmp/a.sock");
  assert.equal(parsed.url.href, "ws://localhost/feed?x=1");
  assert.equal(parseUnixUrl("wss+unix:/tmp/a.sock")!.url.href, "wss://localhost/");
  assert.throws(() => parseUnixUrl("ws+unix::/feed"), { name: "SyntaxError" });
});

Deno.test("connect() opens a ws+unix: URL on the socket and asks for the request path", async () => {
  const path = `${Deno.cwd()}/.cache/wsbeat-test-${crypto.randomUUID().slice(0, 8)}.sock`;
  const output = await new Deno.Command("deno", {
    args: [
      "run",
      "--quiet",
      `--allow-net=unix:${path}`,
      "--allow-read=.",
      "--allow-write=.cache",
      "tests/fixtures/unix_socket_client.ts",
      path,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout).trim();
  assert.ok(text, new TextDecoder().decode(output.stderr));
  assert.deepEqual(JSON.parse(text), {
    seen: ["/daemon/events"],
    echo: "over a unix socket",
    url: "ws://localhost/daemon/events",
  });
});
