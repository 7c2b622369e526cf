// Runs the matrix's checks on Deno, Node or Bun and prints one JSON line,
// `{ version, results }`:
//
//   node driver.js <library> <urls as JSON>                 (the bundle of this file)
//   bun driver.ts <repo>/mod.ts <urls as JSON>              (as TypeScript)
//   deno run --allow-net=127.0.0.1 driver.ts <repo>/mod.ts <urls as JSON> [native]
//
// <library> is what to import as wsbeat: the bundle of mod.ts, or mod.ts.
// `native` forces the native transport (for Deno, whose default is wsbeat's).
// Then, if the process has not ended by itself within EXIT_GRACE ms (an open
// socket or timer holds it), it prints `{ "held": true }` and exits.

import { type Library, type MatrixUrls, runChecks } from "./checks.ts";

/** How long the process may take to end by itself once the checks are done. */
const EXIT_GRACE = 1_500;

interface Host {
  process: {
    argv: string[];
    version: string;
    versions: Record<string, string | undefined>;
    exit(code: number): never;
  };
  Deno?: { unrefTimer(id: number): void };
}

const host = globalThis as unknown as Host;
const { process } = host;
const args = process.argv.slice(process.argv.findIndex((a) => /driver\.[jt]s$/.test(a)) + 1);
const [library, urls, transport] = args as [string, string, string | undefined];
let lib = await import(library) as Library;
if (transport === "native") {
  const base = lib;
  lib = {
    ...base,
    connect: (url, options = {}) => base.connect(url, { ...options, transport: "native" }),
    reconnecting: (url, options = {}) =>
      base.reconnecting(url, { ...options, transport: "native" }),
  };
}
const results = await runChecks(lib, JSON.parse(urls) as MatrixUrls);
const { versions } = process;
const version = versions.deno
  ? `Deno ${versions.deno}`
  : versions.bun
  ? `Bun ${versions.bun}`
  : `Node ${process.version}`;
console.log(JSON.stringify({ version, results }));

const timer = setTimeout(() => {
  console.log(JSON.stringify({ held: true }));
  process.exit(0);
}, EXIT_GRACE);
if (typeof timer === "number") host.Deno?.unrefTimer(timer);
else (timer as { unref(): void }).unref();
