// Running the CLI as a subprocess, for the cli_* tests.

import assert from "node:assert/strict";
import { type CommandOutput, runCommand } from "./_command.ts";

export const CLI = new URL("../cli.ts", import.meta.url).pathname;
export const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

/** The result of a run: exit code, stdout, stderr. */
export type Run = CommandOutput;

/** Options for {@linkcode cli}. */
export interface CliOptions {
  /** Bytes or text for stdin; none: /dev/null. */
  input?: string | Uint8Array;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Extra deno permissions, e.g. `--allow-env=HTTP_PROXY`. */
  permissions?: string[];
}

/** The `deno run` arguments for the CLI with `args`. */
export function denoArgs(args: string[], permissions: string[] = []): string[] {
  return [
    "run",
    "--allow-net=127.0.0.1,localhost",
    `--allow-read=${FIXTURES}`,
    ...permissions,
    CLI,
    ...args,
  ];
}

/** Runs the CLI to the end. */
export function cli(args: string[], options: CliOptions = {}): Promise<Run> {
  return runCommand("deno", denoArgs(args, options.permissions), {
    input: options.input,
    env: { NO_COLOR: "1", ...options.env },
  });
}

/**
 * Runs a shell script (for redirections and pipes) in which `wsbeat` is a
 * function that runs the CLI, as in the README's examples.
 */
export async function shell(script: string, permissions: string[] = []): Promise<Run> {
  const run = ["deno", ...denoArgs([], permissions)].map((a) => `'${a}'`).join(" ");
  const { code, stdout, stderr } = await new Deno.Command("sh", {
    args: ["-c", `wsbeat() { ${run} "$@"; }\n${script}`],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Asserts an error run: exit code, exactly one `error:` line matching, no stack trace. */
export function assertError(result: Run, code: number, pattern: RegExp): void {
  assert.equal(result.code, code, result.stderr);
  const lines = result.stderr.trimEnd().split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(result.stderr, /^\s+at |Uncaught|unexpected failure/m);
}
