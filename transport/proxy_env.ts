/**
 * The transport layer: which proxy a connection goes through when the
 * caller named none, read from the environment as curl and Python
 * `websockets` read it: `HTTPS_PROXY` for `wss:`, `HTTP_PROXY` for `ws:`,
 * then `ALL_PROXY` (lower-case names too, the lower-case first), unless the
 * host matches `NO_PROXY`. A variable counts as unset unless the runtime
 * lets this module read it without asking: on Deno, only when
 * `Deno.permissions.querySync({ name: "env", variable })` is `"granted"`
 * (never a prompt); on other runtimes and in browsers, never.
 *
 * @module
 */

interface EnvHost {
  Deno?: {
    permissions?: { querySync?(descriptor: { name: "env"; variable: string }): { state: string } };
    env?: { get(name: string): string | undefined };
  };
}

/** A variable of the environment, if this module may read it without a prompt. */
function env(name: string): string | undefined {
  const deno = (globalThis as EnvHost).Deno;
  if (typeof deno?.permissions?.querySync !== "function" || deno.env === undefined) {
    return undefined;
  }
  for (const variable of [name.toLowerCase(), name]) {
    try {
      if (deno.permissions.querySync({ name: "env", variable }).state !== "granted") continue;
      const value = deno.env.get(variable);
      if (value) return value;
    } catch { /* not readable: unset */ }
  }
  return undefined;
}

/**
 * Whether a `NO_PROXY` list exempts the URL: comma-separated host names,
 * domain suffixes (`.example.com` or `example.com` both match its
 * subdomains), `host:port`, IP addresses, or `*` for every host.
 *
 * @param noProxy The list.
 * @param url The server's URL.
 * @returns Whether to connect directly.
 *
 * @example
 * ```ts
 * import { noProxyMatches } from "./proxy_env.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(noProxyMatches("localhost,.internal", new URL("ws://api.internal/")), true);
 * assert.equal(noProxyMatches("localhost:8080", new URL("ws://localhost:9000/")), false);
 * ```
 */
export function noProxyMatches(noProxy: string, url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const port = url.port || (/^(wss|https):$/.test(url.protocol) ? "443" : "80");
  for (let entry of noProxy.split(",").map((e) => e.trim().toLowerCase())) {
    if (!entry) continue;
    if (entry === "*") return true;
    let entryPort: string | undefined;
    const m = /^(.*?):(\d+)$/.exec(entry);
    if (m && !m[1]!.includes(":")) [, entry, entryPort] = m as unknown as [string, string, string];
    if (entryPort !== undefined && entryPort !== port) continue;
    entry = entry.replace(/^\*?\./, "").replace(/^\[|\]$/g, "");
    if (host === entry || host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

/**
 * The proxy the environment asks for to reach `url`, or `undefined`. A value
 * without a scheme (`proxy:3128`) is taken as `http://`.
 *
 * @param url The server's URL (`ws:` or `wss:`).
 * @returns The proxy URL as written in the environment, or `undefined`.
 *
 * @example
 * ```ts
 * import { proxyFromEnv } from "./proxy_env.ts";
 * import assert from "node:assert/strict";
 *
 * // Without --allow-env, the environment is not read (and nothing prompts).
 * assert.equal(typeof (proxyFromEnv(new URL("wss://example.com/")) ?? ""), "string");
 * ```
 */
export function proxyFromEnv(url: URL): string | undefined {
  const tls = /^(wss|https):$/.test(url.protocol);
  const proxy = env(tls ? "HTTPS_PROXY" : "HTTP_PROXY") ?? env("ALL_PROXY");
  if (!proxy) return undefined;
  const noProxy = env("NO_PROXY");
  if (noProxy && noProxyMatches(noProxy, url)) return undefined;
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`;
}
