// The proxy from the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY), read only with
// --allow-env for the variable and never with a prompt; proxy: null turns it off. Each case runs
// tests/fixtures/proxy_env_client.ts in a process of its own, with the variables set.

import assert from "node:assert/strict";
import { connectProxy, feedServer, socksProxy } from "./_connect_proxy.ts";
import { noProxyMatches } from "../transport/proxy_env.ts";

const hosts = { "feed.invalid": "127.0.0.1" };
const VARS = "HTTP_PROXY,http_proxy,HTTPS_PROXY,https_proxy,ALL_PROXY,all_proxy,NO_PROXY,no_proxy";

async function run(
  url: string,
  env: Record<string, string>,
  options: { allowEnv?: boolean; mode?: string } = {},
): Promise<{ state?: string; kind?: string; message?: string }> {
  const args = ["run", "--quiet", "--allow-net=127.0.0.1,localhost,feed.invalid", "--allow-read=."];
  if (options.allowEnv !== false) args.push(`--allow-env=${VARS}`);
  args.push("tests/fixtures/proxy_env_client.ts", url, options.mode ?? "");
  // Every proxy variable set, empty unless given (empty counts as unset): none leaks in.
  const blank = Object.fromEntries(VARS.split(",").map((name) => [name, ""]));
  const output = await new Deno.Command("deno", {
    args,
    env: { ...blank, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout).trim();
  assert.ok(text, new TextDecoder().decode(output.stderr));
  return JSON.parse(text);
}

Deno.test("connect() goes through HTTP_PROXY for ws: when the variable may be read", async () => {
  await using server = feedServer();
  await using proxy = connectProxy(undefined, { hosts });
  const result = await run(`ws://feed.invalid:${server.port}/env`, { HTTP_PROXY: proxy.url });
  assert.equal(result.state, "open");
  assert.deepEqual(proxy.targets, [`feed.invalid:${server.port}`]);
  assert.equal(server.seen[0]!.path, "/env");
});

Deno.test("connect() takes ALL_PROXY (socks5h) when no scheme-specific variable is set", async () => {
  await using server = feedServer();
  await using proxy = socksProxy({ hosts });
  const result = await run(`ws://feed.invalid:${server.port}/`, {
    all_proxy: `socks5h://127.0.0.1:${proxy.port}`,
  });
  assert.equal(result.state, "open");
  assert.deepEqual(proxy.targets, [`feed.invalid:${server.port}`]);
});

Deno.test("connect() ignores the proxy variables without --allow-env, and does not prompt", async () => {
  await using proxy = connectProxy(undefined, { hosts });
  const result = await run("ws://feed.invalid:9/", { HTTP_PROXY: proxy.url }, { allowEnv: false });
  assert.equal(result.kind, "dns");
  assert.deepEqual(proxy.targets, []);
});

Deno.test("connect() with proxy: null ignores HTTP_PROXY", async () => {
  await using server = feedServer();
  await using proxy = connectProxy(undefined, { hosts });
  const result = await run(`ws://127.0.0.1:${server.port}/`, { HTTP_PROXY: proxy.url }, {
    mode: "off",
  });
  assert.equal(result.state, "open");
  assert.deepEqual(proxy.targets, []);
});

Deno.test("connect() skips the proxy for a host NO_PROXY names", async () => {
  await using server = feedServer();
  await using proxy = connectProxy(undefined, { hosts });
  const result = await run(`ws://127.0.0.1:${server.port}/`, {
    HTTP_PROXY: proxy.url,
    NO_PROXY: "example.com,127.0.0.1",
  });
  assert.equal(result.state, "open");
  assert.deepEqual(proxy.targets, []);
});

Deno.test("connect() masks the password of a proxy from the environment in its errors", async () => {
  await using proxy = connectProxy({ user: "me", password: "right" }, { hosts });
  const url = proxy.url.replace("//", "//me:env-secret@");
  const result = await run("ws://feed.invalid:9/", { HTTP_PROXY: url });
  assert.equal(result.kind, "status");
  assert.match(result.message!, /the proxy http:\/\/me:\*\*\*@127\.0\.0\.1/);
  assert.doesNotMatch(result.message!, /env-secret/);
});

Deno.test("noProxyMatches() takes names, suffixes, host:port and *", () => {
  const url = new URL("wss://api.feed.example:8443/");
  assert.equal(noProxyMatches("feed.example", url), true);
  assert.equal(noProxyMatches(".feed.example", url), true);
  assert.equal(noProxyMatches("api.feed.example:443", url), false);
  assert.equal(noProxyMatches("api.feed.example:8443", url), true);
  assert.equal(noProxyMatches("other.example", url), false);
  assert.equal(noProxyMatches("*", url), true);
});
