/**
 * The proxy from the environment, as curl reads it: `HTTPS_PROXY` for
 * `wss://`, `HTTP_PROXY` for `ws://` (lower-case names too), unless the host
 * matches `NO_PROXY`. Variables the process may not read (no `--allow-env`)
 * count as unset, with no permission prompt.
 *
 * @module
 */

function env(name: string): string | undefined {
  for (const variable of [name, name.toLowerCase()]) {
    try {
      if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") continue;
      const value = Deno.env.get(variable);
      if (value) return value;
    } catch { /* not readable: unset */ }
  }
  return undefined;
}

/**
 * Whether `NO_PROXY` (a comma-separated list of host names, domain suffixes
 * such as `.example.com`, `host:port`, or `*`) exempts the URL.
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

/** The proxy URL the environment asks for, or `undefined`. */
export function proxyFromEnv(url: URL): string | undefined {
  const proxy = env(/^(wss|https):$/.test(url.protocol) ? "HTTPS_PROXY" : "HTTP_PROXY");
  if (!proxy) return undefined;
  const noProxy = env("NO_PROXY");
  if (noProxy && noProxyMatches(noProxy, url)) return undefined;
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`;
}
