// Running a subprocess in a test: its exit code and output, with optional standard input.

/** What a finished subprocess left behind. */
export interface CommandOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command` with `args` (in `cwd`, with `input` on stdin if given) and collects its output. */
export async function runCommand(
  command: string,
  args: string[],
  options: { input?: string; cwd?: string } = {},
): Promise<CommandOutput> {
  const { input, cwd } = options;
  const child = new Deno.Command(command, {
    args,
    ...(cwd === undefined ? {} : { cwd }),
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}
