/**
 * `wsbeat`: a wscat/websocat-style WebSocket client with a heartbeat and
 * timing, an echo server, and a demo.
 *
 * ```sh
 * deno run -A cli.ts demo                          # see what wsbeat is for, offline, in ~15 s
 * deno run -A cli.ts serve --port 9000             # an echo server
 * deno run -A cli.ts ws://127.0.0.1:9000           # type lines, see the echoes
 * deno run -A cli.ts --heartbeat --keep-open -x '{"op":"subscribe"}' wss://example.com/feed
 * ```
 *
 * Install it as a command with `deno install -g -A -n wsbeat jsr:@wsbeat/wsbeat/cli`
 * (from a checkout: `deno install -g -A -n wsbeat ./cli.ts`). Run `wsbeat --help`
 * for every option and the exit codes.
 *
 * The rest of the CLI lives in `cli/`: `args.ts` (the command line),
 * `client/websocket_client.ts` (the client command), `serve.ts` (the serve command),
 * `output.ts` (stdout, stderr, masking, exit codes), `stdin.ts` (input
 * lines), `slash.ts` (commands typed on a terminal) and `help.ts`. The
 * proxy variables are read by the library (`transport/proxy_env.ts`).
 *
 * @module
 */

import { demo } from "./demo.ts";
import { checkHabits, CLIENT_OPTIONS, clientConfig } from "./cli/args.ts";
import { parse } from "./cli/values.ts";
import { runClient } from "./cli/client.ts";
import { HELP, VERSION } from "./cli/help.ts";
import { errorLine, ExitCode, maskUrl, realIo, secretsIn, UsageError } from "./cli/output.ts";
import { runServe } from "./cli/serve.ts";

/**
 * Runs the CLI with `args` and returns the exit code. Ctrl-C and SIGTERM
 * close the connection cleanly (exit 130 and 143); a second one, or the
 * first while a close waits for the server's answer (said on stderr), exits
 * at once, saying so.
 *
 * @param args The command-line arguments, without the program name.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  const interrupt = new AbortController();
  const io = realIo(args.includes("--no-color"));
  io.addSecrets(secretsIn(args));
  let interruptCode: number = ExitCode.Interrupted;
  // While a close waits for the server's answer (said on stderr), a signal quits at once.
  let waitingForClose = false;
  const handlers = new Map<Deno.Signal, () => void>();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const name of signals) {
    const code = name === "SIGTERM" ? ExitCode.Terminated : ExitCode.Interrupted;
    const handler = () => {
      if (interrupt.signal.aborted || waitingForClose) {
        io.stderr(
          `${name}${
            interrupt.signal.aborted ? " again" : ""
          }: exiting without waiting for the server's close\n`,
        );
        Deno.exit(interrupt.signal.aborted ? interruptCode : code);
      }
      interruptCode = code;
      interrupt.abort();
    };
    handlers.set(name, handler);
    Deno.addSignalListener(name, handler);
  }
  try {
    const [command, ...rest] = args;
    // The server's job is to run until stopped: stopping it is a clean end (exit 0).
    if (command === "serve") return await runServe(io, rest, interrupt.signal);
    if (command === "demo") {
      if (rest.some((a) => a === "-h" || a === "--help")) {
        io.stdout(
          "Usage: wsbeat demo\n\nShows, offline in ~15 s, a server dropping an idle client, a heartbeat\nkeeping the connection open, and the heartbeat finding a dead server.\n",
        );
        return ExitCode.Ok;
      }
      if (rest.length > 0) throw new UsageError(`demo takes no arguments, got '${rest[0]}'`);
      const code = await demo({ write: io.stdout, signal: interrupt.signal });
      return code === ExitCode.Interrupted ? interruptCode : code;
    }
    const { values, positionals } = parse(args, CLIENT_OPTIONS);
    if (values.help) {
      io.stdout(HELP);
      return ExitCode.Ok;
    }
    if (values.version) {
      io.stdout(`wsbeat ${VERSION}\n`);
      return ExitCode.Ok;
    }
    checkHabits(values, positionals);
    const urls = values.connect !== undefined ? [values.connect] : positionals;
    if (urls.length === 0) {
      throw new UsageError("missing URL; usage: wsbeat [options] <url> (see --help)");
    }
    if (urls.length > 1) {
      throw new UsageError(
        `expected one URL, got ${urls.length}: ${
          urls.map((p) => `'${secretsIn([p]).length > 0 ? maskUrl(p) : p}'`).join(" ")
        }`,
      );
    }
    if (values.verbose && values.quiet) {
      throw new UsageError("--verbose and --quiet contradict each other; pick one");
    }
    const config = await clientConfig(values, urls[0]!);
    if (config.proxy) io.addSecrets(secretsIn([config.proxy]));
    return await runClient(
      io,
      config,
      interrupt.signal,
      () => interruptCode,
      (waiting) => (waitingForClose = waiting),
    );
  } catch (error) {
    if (error instanceof UsageError) {
      errorLine(io, error.message);
      return ExitCode.Usage;
    }
    errorLine(io, `unexpected failure: ${(error as Error)?.message ?? String(error)}`);
    return ExitCode.Failed;
  } finally {
    for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
