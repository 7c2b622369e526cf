// wsbeat --trace: every step on stderr, one readable line each, credentials masked, the peer's
// text escaped; --origin and --max-redirects; --proxy socks5h://.

import assert from "node:assert/strict";
import { cli } from "./_cli.ts";
import { feedServer, socksProxy } from "./_connect_proxy.ts";

Deno.test("cli --trace prints the heads, the redirect and the frames, masked and escaped", async () => {
  await using server = feedServer({
    "/old": () => new Response(null, { status: 302, headers: { location: "/new" } }),
  });
  const result = await cli([
    "--trace",
    "--origin",
    "https://app.example",
    "-H",
    "Authorization: Bearer tok-s3cr3t",
    "-x",
    "line\u001b[2J",
    "-n",
    "1",
    `${server.url}/old?token=q-s3cr3t`,
  ]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stderr.split("\n").filter((line) => line.startsWith("trace "));
  assert.match(
    lines[0]!,
    /^trace > GET \/old\?token=\*\*\* HTTP\/1\.1 \| Host: 127\.0\.0\.1:\d+ \| /,
  );
  assert.match(
    lines[0]!,
    / \| Origin: https:\/\/app\.example \| User-Agent: wsbeat\/[\d.]+ Deno\/\S+ \| Authorization: \*\*\*$/,
  );
  assert.match(lines[1]!, /^trace < HTTP\/1\.1 302 Found \| /);
  assert.match(lines[2]!, /^trace \* redirect 302 to ws:\/\/127\.0\.0\.1:\d+\/new$/);
  assert.match(lines[4]!, /^trace < HTTP\/1\.1 101 Switching Protocols \| /);
  assert.ok(lines.includes('trace > text 8 "line\\x1b[2J"'), lines.join("\n"));
  assert.ok(lines.includes('trace < text 8 "line\\x1b[2J"'), lines.join("\n"));
  assert.ok(lines.some((line) => /^trace > close 2 1000$/.test(line)), lines.join("\n"));
  assert.ok(lines.some((line) => /^trace \* closed 1000 clean$/.test(line)), lines.join("\n"));
  assert.doesNotMatch(result.stderr, /s3cr3t/);
  assert.equal(server.seen[1]!.headers.get("origin"), "https://app.example");
});

Deno.test("cli --max-redirects 0 refuses the redirect and names the option", async () => {
  await using server = feedServer({
    "/old": () => new Response(null, { status: 301, headers: { location: "/new" } }),
  });
  const result = await cli(["--max-redirects", "0", `${server.url}/old`]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /redirects are not followed \(maxRedirects is 0\)/);
  assert.equal(server.seen.length, 1);
});

Deno.test("cli --proxy socks5h:// reaches a name only the proxy resolves, shown masked", async () => {
  await using server = feedServer();
  await using proxy = socksProxy({
    hosts: { "feed.invalid": "127.0.0.1" },
    auth: { user: "me", password: "pw-s3cr3t" },
  });
  const result = await cli([
    "--trace",
    "--proxy",
    `socks5h://me:pw-s3cr3t@127.0.0.1:${proxy.port}`,
    "-x",
    "via socks",
    "-n",
    "1",
    `ws://feed.invalid:${server.port}/`,
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "via socks\n");
  assert.match(
    result.stderr,
    /^trace \* proxy socks5h:\/\/me:\*\*\*@127\.0\.0\.1:\d+ to feed\.invalid:\d+$/m,
  );
  assert.deepEqual(proxy.targets, [`feed.invalid:${server.port}`]);
  assert.doesNotMatch(result.stderr, /s3cr3t/);
});
