/**
 * The transport layer: the `User-Agent` the wsbeat transport sends by
 * default, naming wsbeat, its version and the runtime, e.g.
 * `wsbeat/0.1.0 Deno/2.9.6` (as Python `websockets` sends
 * `Python/3.12 websockets/14.1`). A `User-Agent` in `headers` replaces it.
 *
 * The version is a constant here, not read from `deno.json` at run time, so
 * that it works from JSR and in bundles alike; tests/handshake_response_test.ts
 * checks that it matches `deno.json`.
 *
 * @module
 */

/** wsbeat's version, as `deno.json` says it. */
export const VERSION = "0.1.0";

interface Host {
  Deno?: { version?: { deno?: string } };
  Bun?: { version?: string };
  process?: { versions?: { node?: string } };
}

/**
 * The default `User-Agent`: `wsbeat/<version> <Runtime>/<version>`.
 *
 * @returns The header value.
 *
 * @example
 * ```ts
 * import { defaultUserAgent } from "./user_agent.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(defaultUserAgent(), /^wsbeat\/\d+\.\d+\.\d+ Deno\/\d+/);
 * ```
 */
export function defaultUserAgent(): string {
  const host = globalThis as Host;
  const deno = host.Deno?.version?.deno; // feature detection: the runtime's object, if any
  const runtime = host.Bun?.version !== undefined
    ? `Bun/${host.Bun.version}`
    : deno !== undefined
    ? `Deno/${deno}`
    : host.process?.versions?.node !== undefined
    ? `Node/${host.process.versions.node}`
    : undefined;
  return runtime ? `wsbeat/${VERSION} ${runtime}` : `wsbeat/${VERSION}`;
}
