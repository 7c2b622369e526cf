// Running a subprocess in a test: its exit code and output, with optional standard input.

/** What a finished subprocess left behind. */
export interface CommandOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Where and how {@linkcode runCommand} runs its command. */
export interface CommandOptions {
  /** Text or bytes for stdin; none: /dev/null. */
  input?: string | Uint8Array;
  /** The working directory. */
  cwd?: string;
  /** Environment variables added to the test's own. */
  env?: Record<string, string>;
}

/**
 * Runs `command` with `args` and collects its output. A child that exits
 * before reading all of `input` is not an error: its exit code tells.
 */
export async function runCommand(
  command: string,
  args: string[],
  options: CommandOptions = {},
): Promise<CommandOutput> {
  const { input, cwd, env } = options;
  const child = new Deno.Command(command, {
    args,
    ...(cwd === undefined ? {} : { cwd }),
    ...(env === undefined ? {} : { env }),
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(typeof input === "string" ? new TextEncoder().encode(input) : input)
      .catch(() => {});
    await writer.close().catch(() => {});
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}
