// Errors in the CLI's own words (flags, scheme mix-ups, usage errors naming the value) and
// credentials never printed, whatever the run does.

import assert from "node:assert/strict";
import { serve } from "../serve.ts";
import { closedPort } from "./_servers.ts";
import { assertError, cli, FIXTURES } from "./_cli.ts";
import { connectProxy } from "./_connect_proxy.ts";

Deno.test("cli names the scheme mix-ups and does not retry them under --reconnect", async (t) => {
  const cert = await Deno.readTextFile(FIXTURES + "localhost.pem");
  const key = await Deno.readTextFile(FIXTURES + "localhost.key");
  await using tlsServer = serve({ cert, key });
  await using plainServer = serve();
  const tlsPort = new URL(tlsServer.url).port;
  for (const reconnect of [[], ["--reconnect", "--backoff-initial", "0.01"]]) {
    await t.step(`ws:// to a TLS port ${reconnect.join(" ")}`, async () => {
      const result = await cli([...reconnect, `ws://127.0.0.1:${tlsPort}/`]);
      assertError(result, 1, /: the server answered with TLS: use wss:\/\/$/);
      assert.doesNotMatch(result.stderr, /reconnecting in/);
    });
    await t.step(`wss:// to a plain port ${reconnect.join(" ")}`, async () => {
      const result = await cli([...reconnect, plainServer.url.replace("ws:", "wss:")]);
      assertError(result, 1, /: the server does not speak TLS: use ws:\/\/$/);
      assert.doesNotMatch(result.stderr, /reconnecting in/);
    });
  }
});

Deno.test("cli usage errors name the value, exit 2, and mask secrets", async (t) => {
  const cases: [string, string[], RegExp][] = [
    [
      "-s with a space",
      ["-s", "chat v2", "ws://x"],
      /^error: --protocol expects a token .*, got "chat v2"$/,
    ],
    [
      "-s twice",
      ["-s", "chat", "-s", "chat", "ws://x"],
      /^error: --protocol 'chat' is given twice$/,
    ],
    [
      "CR in a header",
      ["-H", "X-Team: blue\r\nX-Evil: 1", "ws://x"],
      /^error: --header "X-Team" has a control character \(\\x0d\) in its value, which a header cannot carry: got 'X-Team: \*\*\*'$/,
    ],
    [
      "CR in a secret header",
      ["-H", "Authorization: Bearer s3cr3t\r\nX: 1", "ws://x"],
      /^error: --header "Authorization" has a control character \(\\x0d\) in its value, which a header cannot carry: got 'Authorization: \*\*\*'$/,
    ],
    [
      "a header without its colon",
      ["-H", "Authorization Bearer s3cr3t", "ws://x"],
      /^error: --header expects "Name: value", got no colon in 'Authorization \*\*\*'$/,
    ],
    [
      "--cacert that is not PEM",
      ["--cacert", FIXTURES + "localhost.key", "wss://x"],
      /^error: --cacert file '.*localhost\.key' is not PEM: it holds no CA certificate$/,
    ],
    ["--cert without --key", ["--cert", FIXTURES + "client.pem", "wss://x"], /go together/],
    [
      "--cert on ws://",
      ["--cert", FIXTURES + "client.pem", "--key", FIXTURES + "client.key", "ws://x"],
      /^error: --cert and --key present a TLS client certificate: use a wss:\/\/ URL$/,
    ],
    [
      "--cert through --proxy",
      [
        "--cert",
        FIXTURES + "client.pem",
        "--key",
        FIXTURES + "client.key",
        "--proxy",
        "http://127.0.0.1:3128",
        "wss://x",
      ],
      /^error: --cert cannot go through a proxy \(--proxy\): Deno can present a client certificate only on a direct connection$/,
    ],
    [
      "--proxy of a scheme no proxy speaks here",
      ["--proxy", "socks4://u:pw-s3cr3t@127.0.0.1:1080", "ws://x"],
      /^error: --proxy expects a proxy URL .*, got 'socks4:\/\/u:\*\*\*@127\.0\.0\.1:1080'$/,
    ],
    [
      "serve --host",
      ["serve", "--host", "no such host"],
      /^error: --host expects .*, got "no such host"$/,
    ],
    [
      "two URLs, one with a password",
      ["ws://u:pw-s3cr3t@a/", "ws://b"],
      /^error: expected one URL, got 2: 'ws:\/\/u:\*\*\*@a\/' 'ws:\/\/b'$/,
    ],
    [
      "invalid URL with a password",
      ["ws://u:pw-s3cr3t@exa mple/"],
      /^error: invalid URL 'ws:\/\/u:\*\*\*@exa mple\/'/,
    ],
  ];
  for (const [name, args, pattern] of cases) {
    await t.step(name, async () => {
      const result = await cli(args);
      assertError(result, 2, pattern);
      assert.doesNotMatch(result.stderr, /s3cr3t/);
    });
  }
});

Deno.test("cli answers wscat and websocat habits", async (t) => {
  await using server = serve();
  await t.step("-c URL connects", async () => {
    const result = await cli(["-c", server.url, "-x", "hi", "-n", "1"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "hi\n");
  });
  const cases: [string[], RegExp][] = [
    [["-l", "8080"], /^error: wsbeat listens with its serve command: wsbeat serve --port 8080$/],
    [
      ["-n", "wss://example.com/"],
      /^error: -n is --count N here, not wscat's --no-check; there is no switch to skip TLS certificate checks; trust the server's CA with --cacert ca\.pem/,
    ],
    [
      ["--no-check", "wss://example.com/"],
      /^error: there is no switch to skip TLS .* --cacert ca\.pem/,
    ],
    [["-k", "wss://example.com/"], /^error: there is no switch to skip TLS .* --cacert ca\.pem/],
    [["--insecure", "wss://example.com/"], /--cacert ca\.pem/],
    [
      ["--ca", "x.pem", "wss://example.com/"],
      /^error: unknown option '--ca'; use --cacert FILE; see --help/,
    ],
  ];
  for (const [args, pattern] of cases) {
    await t.step(args.join(" "), async () => assertError(await cli(args), 2, pattern));
  }
});

/** Credentials planted in the runs below: none may appear in any output. */
const PLANTED = [
  "hunter2-url-pw",
  "tok3n-query-value",
  "authz-bearer-secret",
  "cookie-sid-secret",
  "apikey-header-secret",
  "proxy-pw-secret",
];

function assertNoSecret(output: string): void {
  for (const secret of PLANTED) assert.ok(!output.includes(secret), `${secret} in:\n${output}`);
  // Nor encoded, as Basic credentials.
  assert.ok(!output.includes(btoa("me:hunter2-url-pw")), output);
}

Deno.test("cli never prints a credential: failing, reconnecting, verbose, through a proxy", async (t) => {
  const headers = [
    "-H",
    "Authorization: Bearer authz-bearer-secret",
    "-H",
    "Cookie: sid=cookie-sid-secret",
    "-H",
    "X-Api-Key: apikey-header-secret",
  ];
  const path = "/feed?token=tok3n-query-value&channel=btc";
  const port = closedPort();
  await using server = serve();
  const serverPort = new URL(server.url).port;
  await using proxy = connectProxy({ user: "me", password: "right" });
  const runs: [string, string[], number][] = [
    ["refused, -v", ["-v", ...headers, `ws://me:hunter2-url-pw@127.0.0.1:${port}${path}`], 1],
    [
      "reconnecting until --max-retries, -v",
      [
        "-v",
        "--max-retries",
        "2",
        "--backoff-initial",
        "0.01",
        ...headers,
        `ws://me:hunter2-url-pw@127.0.0.1:${port}${path}`,
      ],
      1,
    ],
    [
      "connected, -v, --json",
      [
        "-v",
        "--json",
        "-x",
        '{"a":1}',
        "-n",
        "1",
        ...headers,
        `ws://me:hunter2-url-pw@127.0.0.1:${serverPort}${path}`,
      ],
      0,
    ],
    [
      "a proxy refusing the password, -v",
      [
        "-v",
        "--proxy",
        `http://me:proxy-pw-secret@127.0.0.1:${proxy.port}`,
        ...headers,
        `ws://me:hunter2-url-pw@127.0.0.1:${serverPort}${path}`,
      ],
      1,
    ],
    ["a bad header value", ["-H", "X-Api-Key: apikey-header-secret\r\nX: 1", "ws://x"], 2],
    ["a header without a colon", ["-H", "Cookie sid=cookie-sid-secret", "ws://x"], 2],
  ];
  for (const [name, args, code] of runs) {
    await t.step(name, async () => {
      const result = await cli(args);
      assert.equal(result.code, code, result.stderr);
      assertNoSecret(result.stdout + result.stderr);
      if (name.includes("-v")) assert.match(result.stderr, /\*\*\*/);
    });
  }
});

Deno.test("cli refuses numbers out of range or not in decimal: one line on stderr, exit 2", async (t) => {
  const cases: [string[], string][] = [
    [["--interval", "-1"], "--interval expects a number of seconds above 0, got '-1'"],
    [["-w", "-1"], "--wait expects a number of seconds, 0 or more, got '-1'"],
    [["--max-retries", "-1"], "--max-retries expects a whole number of at least 0, got '-1'"],
    [["--interval", "0"], "--interval expects a number of seconds above 0, got '0'"],
    [
      ["--connect-timeout", "1e-9"],
      "--connect-timeout expects a number of seconds in decimal, such as 5 or 0.5, got '1e-9'",
    ],
    [
      ["--connect-timeout", "0.0000001"],
      "--connect-timeout expects at least 0.001 seconds (1 ms), got '0.0000001'",
    ],
    [
      ["--timeout", "0x10"],
      "--timeout expects a number of seconds in decimal, such as 5 or 0.5, got '0x10'",
    ],
    [
      ["--every", "Infinity", "-x", "a"],
      "--every expects a number of seconds in decimal, such as 5 or 0.5, got 'Infinity'",
    ],
    [
      ["--stale-after", "3000000"],
      "--stale-after expects at most 2000000 seconds (about 23 days), got '3000000'",
    ],
    [["-w", "0.0001"], "--wait expects at least 0.001 seconds (1 ms) or 0, got '0.0001'"],
    [["-n", "1e3"], "--count expects a whole number of at least 1, got '1e3'"],
    [
      ["-n", "99999999999999999999"],
      "--count expects a whole number of at least 1, got '99999999999999999999'",
    ],
    [["--backoff-factor", "0x2"], "--backoff-factor expects a number from 1 to 100, got '0x2'"],
    [
      ["-H", "-x"],
      "option '-H' is missing its value: the next argument starts with '-'; for a value that begins with '-', write --header=VALUE",
    ],
    [["serve", "--port", "-1"], "--port expects a whole number of at least 0, got '-1'"],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), async () => {
      const result = await cli([...args, ...(args[0] === "serve" ? [] : ["ws://127.0.0.1:9/"])]);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stderr, `error: ${message}\n`);
      assert.equal(result.stdout, "");
    });
  }
});

Deno.test("cli header errors show the name and mask the value", async (t) => {
  const cases: [string, string][] = [
    [
      "Bad Name: s3cr3t",
      `--header expects "Name: value" with a name of letters, digits and !#$%&'*+.^_\`|~- only, got 'Bad Name: ***'`,
    ],
    [
      "X-Token: ab\x01s3cr3t",
      "--header \"X-Token\" has a control character (\\x01) in its value, which a header cannot carry: got 'X-Token: ***'",
    ],
    [
      "X-Note: s3cr3t\x1b[2J",
      "--header \"X-Note\" has a control character (\\x1b) in its value, which a header cannot carry: got 'X-Note: ***'",
    ],
    ["s3cr3t", `--header expects "Name: value", got no colon in '***'`],
  ];
  for (const [header, message] of cases) {
    await t.step(JSON.stringify(header), async () => {
      const result = await cli(["-H", header, "ws://127.0.0.1:9/"]);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stderr, `error: ${message}\n`);
      assert.doesNotMatch(result.stderr, /s3cr3t/);
    });
  }
});
