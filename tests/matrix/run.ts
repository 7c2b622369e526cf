// Runs the matrix's checks (checks.ts) on the runtimes named on the command
// line, against servers that the caller started, and prints one JSON line
// per runtime: `{ variant, version, results }`, or `{ variant, error }` when
// the runtime could not be installed or run.
//
//   deno run -A tests/matrix/run.ts '<urls as JSON>' deno deno-native deno25 node22 node24 node24-ts bun bun-ts chromium
//
// Installs what is missing first (see runtimes.ts). Variants: mod.ts as
// TypeScript on Deno (deno: wsbeat's transport, deno-native: the native
// one, deno25: wsbeat's transport on Deno 2.5, Deploy's runtime), the core
// bundled with `deno bundle` (node22, node24, bun, chromium), or run as
// TypeScript (node24-ts: Node's type stripping; bun-ts). Each result line
// also says whether the process ended by itself (`exits`).

import { openBrowser } from "./browser_client.ts";
import {
  BUN,
  DENO25,
  ensureNpm,
  NODE22,
  NODE24,
  type NpmRuntime,
  root,
  run,
  versionOf,
} from "./runtimes.ts";

const ROOT = root();
/** The most one runtime may take for every check (each check is bounded at 15 s). */
const RUN_TIMEOUT = 120_000;

interface Variant {
  runtime?: NpmRuntime;
  typescript?: boolean;
  browser?: boolean;
  /** Deno (mod.ts as TypeScript), on this transport; `runtime` names another Deno than this one. */
  deno?: "wsbeat" | "native";
}

const VARIANTS: Record<string, Variant> = {
  deno: { deno: "wsbeat" },
  "deno-native": { deno: "native" },
  deno25: { deno: "wsbeat", runtime: DENO25 },
  node22: { runtime: NODE22 },
  node24: { runtime: NODE24 },
  "node24-ts": { runtime: NODE24, typescript: true },
  bun: { runtime: BUN },
  "bun-ts": { runtime: BUN, typescript: true },
  chromium: { browser: true },
};

// Bundles go to a temporary folder, outside the repository: `deno check --doc .`
// would check the examples in their JSDoc.
let out: string | undefined;

/** `deno bundle` of a file of the repository, written to the temporary folder as `name`. */
async function bundle(entry: string, name: string): Promise<string> {
  const result = await run("deno", ["bundle", "--quiet", `${ROOT}${entry}`]);
  if (result.code !== 0) throw new Error(`deno bundle ${entry} failed:\n${result.stderr}`);
  out ??= await Deno.makeTempDir({ prefix: "wsbeat-matrix-" });
  const path = `${out}/${name}`;
  await Deno.writeTextFile(path, result.stdout);
  return path;
}

let bundles: Promise<{ lib: string; driver: string; checks: string }> | undefined;
function bundled() {
  return bundles ??= (async () => ({
    lib: await bundle("mod.ts", "wsbeat.js"),
    driver: await bundle("tests/matrix/driver.ts", "driver.js"),
    checks: await bundle("tests/matrix/checks.ts", "checks.js"),
  }))();
}

/** The driver's lines: the results, then `{ held: true }` if the process did not end by itself. */
function driverOutput(stdout: string): unknown {
  const lines = stdout.trim().split("\n").filter((line) => line.startsWith("{"));
  const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  const results = parsed.find((line) => "results" in line);
  if (!results) throw new Error(`no results in the output:\n${stdout}`);
  return { ...results, exits: !parsed.some((line) => line.held) };
}

async function onRuntime(variant: Variant, urls: string): Promise<unknown> {
  const driverTs = `${ROOT}tests/matrix/driver.ts`;
  let bin: string;
  let args: string[];
  if (variant.deno) {
    bin = variant.runtime ? await ensureNpm(variant.runtime) : "deno";
    args = [
      "run",
      "--allow-net=127.0.0.1",
      `--allow-read=${ROOT}`,
      driverTs,
      `${ROOT}mod.ts`,
      urls,
    ];
    if (variant.deno === "native") args.push("native");
  } else {
    const runtime = variant.runtime!;
    bin = await ensureNpm(runtime);
    await versionOf(bin, runtime.name);
    args = variant.typescript
      ? [driverTs, `${ROOT}mod.ts`, urls]
      : [(await bundled()).driver, (await bundled()).lib, urls];
    if (runtime === BUN) args.unshift("run");
  }
  const child = new Deno.Command(bin, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(RUN_TIMEOUT),
  }).spawn();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) {
    throw new Error(`${bin} exited with ${code}:\n${new TextDecoder().decode(stderr)}`);
  }
  return driverOutput(new TextDecoder().decode(stdout));
}

async function inChromium(urls: string): Promise<unknown> {
  const { lib, checks } = await bundled();
  const files: Record<string, string> = {
    "/wsbeat.js": await Deno.readTextFile(lib),
    "/checks.js": await Deno.readTextFile(checks),
  };
  const page = `<!doctype html>
<meta charset="utf-8">
<title>wsbeat matrix</title>
<script type="module">
  import * as lib from "/wsbeat.js";
  import { runChecks } from "/checks.js";
  window.matrix = runChecks(lib, ${urls});
</script>`;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/") return new Response(page, { headers: { "content-type": "text/html" } });
      const file = files[path];
      if (file === undefined) return new Response("not found", { status: 404 });
      return new Response(file, { headers: { "content-type": "text/javascript" } });
    },
  );
  await using browser = await openBrowser();
  await browser.goto(`http://127.0.0.1:${server.addr.port}/`);
  const results = await browser.evaluate("window.matrix");
  return { version: `Chromium ${browser.version}`, results };
}

const [urls, ...names] = Deno.args;
if (urls === undefined || names.length === 0) {
  console.error(`usage: run.ts '<urls as JSON>' ${Object.keys(VARIANTS).join(" ")}`);
  Deno.exit(2);
}
for (const name of names) {
  const variant = VARIANTS[name];
  const started = performance.now();
  try {
    if (!variant) throw new Error(`unknown runtime ${name}`);
    const out = variant.browser ? await inChromium(urls) : await onRuntime(variant, urls);
    const ms = Math.round(performance.now() - started);
    console.log(JSON.stringify({ variant: name, ms, ...(out as object) }));
  } catch (error) {
    console.log(JSON.stringify({ variant: name, error: (error as Error).message }));
  }
}
if (out) await Deno.remove(out, { recursive: true });
