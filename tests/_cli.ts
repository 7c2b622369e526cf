// Running the CLI as a subprocess, for the cli_* tests.

import assert from "node:assert/strict";
import { type CommandOutput, runCommand } from "./_command.ts";
import { readLines } from "../cli/stdin.ts";

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

/** A CLI run that a test talks to while it runs. */
export interface LiveCli extends AsyncDisposable {
  /** The process. */
  readonly child: Deno.ChildProcess;
  /** Every line read so far from stderr (on a terminal: from the terminal). */
  readonly lines: string[];
  /** Writes to its stdin. */
  write(text: string): Promise<void>;
  /** Ends its stdin. */
  closeInput(): Promise<void>;
  /** Reads lines until one matches `pattern`, and returns it; throws if the output ends first. */
  waitFor(pattern: RegExp): Promise<string>;
  /**
   * Waits for the exit (stdin stays open: end it first with `closeInput` if
   * the run waits for it): the exit code, the lines read after the last
   * `waitFor`, and stdout (on a terminal: stderr).
   */
  end(): Promise<{ code: number; rest: string[]; stdout: string }>;
}

/**
 * Starts the CLI with `args` and piped stdin. With `terminal`, stdin and
 * stdout are a pseudo-terminal (`script` from util-linux, run through sh so
 * that the test needs no permission for it), and `lines` are the
 * terminal's, stdout and stderr together.
 */
export function liveCli(args: string[], options: { terminal?: boolean } = {}): LiveCli {
  const deno = ["deno", ...denoArgs(args)];
  const child = new Deno.Command(options.terminal ? "sh" : deno[0]!, {
    args: options.terminal
      ? ["-c", `exec script -qec "$0" /dev/null`, deno.map((a) => `'${a}'`).join(" ")]
      : deno.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const [stream, other] = options.terminal
    ? [child.stdout, child.stderr]
    : [child.stderr, child.stdout];
  const otherText = new Response(other).text();
  const reader = readLines(stream);
  const writer = child.stdin.getWriter();
  const lines: string[] = [];
  let mark = 0;
  let ended: Promise<{ code: number; rest: string[]; stdout: string }> | undefined;
  const end = () =>
    ended ??= (async () => {
      const { code } = await child.status;
      await writer.close().catch(() => {});
      for await (const line of reader) lines.push(line.replace(/\r$/, ""));
      const stdout = await otherText;
      return { code, rest: lines.slice(mark), stdout };
    })();
  return {
    child,
    lines,
    write: (text) => writer.write(new TextEncoder().encode(text)),
    closeInput: () => writer.close().catch(() => {}),
    async waitFor(pattern) {
      for (let line = await reader.next(); !line.done; line = await reader.next()) {
        const text = line.value.replace(/\r$/, "");
        lines.push(text);
        if (pattern.test(text)) {
          mark = lines.length;
          return text;
        }
      }
      throw new Error(`the output ended before a line matching ${pattern}:\n${lines.join("\n")}`);
    },
    end,
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await end();
    },
  };
}
