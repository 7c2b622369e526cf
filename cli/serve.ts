/**
 * The serve command: `wsbeat serve`, the echo server with its limits and
 * faults, from the command line.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import {
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_HEADER_SIZE,
  DEFAULT_MAX_UNSENT_BYTES,
  DEFAULT_SERVE_CLOSE_TIMEOUT,
  DEFAULT_SERVE_MAX_MESSAGE_SIZE,
  DEFAULT_STALL_FOR,
  serve,
  type ServeOptions,
} from "../serve.ts";
import { checkCloseWith } from "../serve/options.ts";
import { TlsOptionError } from "../serve/tls.ts";
import { bounded, count, parse, seconds } from "./values.ts";
import { errorLine, ExitCode, type Io, paint, UsageError } from "./output.ts";

/** `wsbeat serve --help`. */
export const SERVE_HELP = `Usage: wsbeat serve [options]

An echo server: text is echoed as text, binary as binary. Prints
'listening ws://HOST:PORT' on stdout when ready, and one line per connection
event on stderr. On Ctrl-C or SIGTERM every client gets a 1001 close frame;
connections still open after --close-timeout are then closed.

Options:
  -p, --port N                 port to listen on; 0 picks a free one (default 9000)
      --host ADDR              address to listen on (default 127.0.0.1)
      --cert FILE --key FILE   serve wss:// with this PEM certificate and key
  -q, --quiet                  do not log connection events
  -h, --help                   show this help

Limits (what one client can cost the server):
      --max-message-size BYTES close with 1009 a message larger than BYTES, before buffering
                               it (default ${DEFAULT_SERVE_MAX_MESSAGE_SIZE}, the wsbeat client's own limit);
                               with --compression, once inflated (a bomb stops there)
      --compression            accept permessage-deflate: inflate what clients compress, compress
                               replies of 1 KiB or more (default off: a client keeping its
                               context costs 32 KiB per connection; see docs/compression.md)
      --max-connections N      answer HTTP 503 past N connections; keep it under ulimit -n
                               (default ${DEFAULT_MAX_CONNECTIONS}, under the common limit of 1024)
      --handshake-timeout SECS close a connection that has not completed its opening handshake
                               (default ${
  DEFAULT_HANDSHAKE_TIMEOUT / 1000
}; a half-sent request cannot hold it longer)
      --max-header-size BYTES  answer HTTP 431 to a larger request head (default ${DEFAULT_MAX_HEADER_SIZE})
      --max-unsent BYTES       stop reading a client that leaves more than BYTES of replies
                               unsent, until it reads again (default ${DEFAULT_MAX_UNSENT_BYTES})
      --close-timeout SECS     wait this long for a client's close frame, after sending one or
                               at shutdown, then close TCP (default ${
  DEFAULT_SERVE_CLOSE_TIMEOUT / 1000
})

Faults (to test a client against; all off by default):
      --idle-timeout SECS      close a client that sent no message for SECS (1001 "idle timeout")
      --pong PING:PONG         answer the text PING with PONG instead of echoing it
      --stall-after N          answer N messages per connection, then nothing at all, TCP open
                               (a dead peer: no echo, no pong, no close reply)
      --stall-for SECS         hold a stalled connection at most SECS, then close TCP; it is
                               released at once when the client closes TCP (default ${
  DEFAULT_STALL_FOR / 1000
},
                               longer than a heartbeat takes to find the stall)
      --drop-after N           cut TCP, with no close frame, right after the N-th reply
      --close-with CODE[:REASON]  echo the first message, then close with CODE (1000-1003,
                               1007-1014 or 3000-4999) and REASON (at most 123 bytes of UTF-8)
      --echo-delay SECS        wait SECS before each reply
      --fragment N             send each reply as N frames, with a ping between each two
      --ping-interval SECS     send every client a ping frame every SECS
      --reject-status STATUS   answer every opening handshake with this HTTP status (400-599)
`;

const SERVE_OPTIONS = {
  port: { type: "string", short: "p" },
  host: { type: "string" },
  "max-message-size": { type: "string" },
  compression: { type: "boolean" },
  "max-connections": { type: "string" },
  "handshake-timeout": { type: "string" },
  "max-header-size": { type: "string" },
  "max-unsent": { type: "string" },
  "close-timeout": { type: "string" },
  "idle-timeout": { type: "string" },
  pong: { type: "string" },
  "stall-after": { type: "string" },
  "stall-for": { type: "string" },
  "drop-after": { type: "string" },
  "close-with": { type: "string" },
  "echo-delay": { type: "string" },
  fragment: { type: "string" },
  "ping-interval": { type: "string" },
  "reject-status": { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  quiet: { type: "boolean", short: "q" },
  "no-color": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsOptionsConfig;

/** Parses --close-with CODE[:REASON], with the checks serve() applies. */
function parseCloseWith(value: string): { code: number; reason: string } {
  const i = value.indexOf(":");
  const code = i === -1 ? value : value.slice(0, i);
  const reason = i === -1 ? "" : value.slice(i + 1);
  try {
    if (!/^\d+$/.test(code)) throw new RangeError("not a number");
    return checkCloseWith({ code: Number(code), reason });
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    if (/reason/.test(error.message)) {
      const bytes = new TextEncoder().encode(reason).length;
      throw new UsageError(
        `--close-with expects a REASON of at most 123 bytes of UTF-8, got ${bytes} bytes in '${value}'`,
      );
    }
    throw new UsageError(
      `--close-with expects CODE[:REASON] with a CODE a server may send (1000-1003, 1007-1014, 3000-4999), got '${value}'`,
    );
  }
}

/** What to say of a certificate or key `serve()` could not use, naming the flag and file. */
function tlsProblem(error: TlsOptionError, cert: string, key: string): string {
  switch (error.problem) {
    case "swapped":
      return `--cert ${cert} holds a private key, not a PEM certificate (-----BEGIN CERTIFICATE-----): give the certificate with --cert and its key with --key`;
    case "missing":
      return error.option === "cert"
        ? `--cert ${cert} holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the certificate file`
        : `--key ${key} holds no PEM private key (-----BEGIN PRIVATE KEY-----): give the private key file`;
    case "undecodable":
      return `--${error.option} ${
        error.option === "cert" ? cert : key
      } holds a PEM block that does not decode (${
        (error.cause as Error).message
      }): give an intact file`;
    case "mismatch":
      return `--key ${key} does not match the certificate in --cert ${cert}: give the key made with that certificate`;
    case "unsupported":
      return `--key ${key} is not an RSA, ECDSA or EdDSA private key: give a key of one of these kinds`;
  }
}

/** Runs `wsbeat serve` with `args` (after the word serve); returns the exit code. */
export async function runServe(io: Io, args: string[], signal: AbortSignal): Promise<number> {
  const { values, positionals } = parse(args, SERVE_OPTIONS);
  if (values.help) {
    io.stdout(SERVE_HELP);
    return ExitCode.Ok;
  }
  if (positionals.length > 0) {
    throw new UsageError(`serve takes no arguments, got '${positionals[0]}'`);
  }
  const port = values.port === undefined ? 9000 : count("--port", values.port, 0)!;
  if (port > 65535) throw new UsageError(`--port expects 0 to 65535, got '${values.port}'`);
  const log = (text: string) => values.quiet || io.stderr(paint(io, 2, text) + "\n");
  const host = values.host ?? "127.0.0.1";
  if (!/^(\[?[0-9A-Fa-f:.]+\]?|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$/.test(host)) {
    throw new UsageError(
      `--host expects an IP address or a host name of this machine, got ${JSON.stringify(host)}`,
    );
  }
  const hostname = host.replace(/^\[(.*)\]$/, "$1");
  const options: ServeOptions = { port, hostname, signal, log };
  const set = <K extends keyof ServeOptions>(key: K, value: ServeOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  set("maxMessageSize", count("--max-message-size", values["max-message-size"]));
  set("compression", values.compression);
  set("maxConnections", count("--max-connections", values["max-connections"]));
  set("handshakeTimeout", seconds("--handshake-timeout", values["handshake-timeout"]));
  set("maxHeaderSize", bounded("--max-header-size", values["max-header-size"], 64, 64 * 2 ** 20));
  set("maxUnsentBytes", count("--max-unsent", values["max-unsent"]));
  set("closeTimeout", seconds("--close-timeout", values["close-timeout"], true));
  set("idleTimeout", seconds("--idle-timeout", values["idle-timeout"]));
  if (values.pong !== undefined) {
    const i = values.pong.indexOf(":");
    if (i <= 0) throw new UsageError(`--pong expects PING:PONG, got '${values.pong}'`);
    options.pong = { ping: values.pong.slice(0, i), pong: values.pong.slice(i + 1) };
  }
  set("stallAfter", count("--stall-after", values["stall-after"], 0));
  set("stallFor", seconds("--stall-for", values["stall-for"]));
  set("dropAfter", count("--drop-after", values["drop-after"], 0));
  if (values["close-with"] !== undefined) options.closeWith = parseCloseWith(values["close-with"]);
  set("echoDelay", seconds("--echo-delay", values["echo-delay"], true));
  set("fragment", bounded("--fragment", values.fragment, 1, 1000));
  set("pingInterval", seconds("--ping-interval", values["ping-interval"]));
  set("rejectStatus", bounded("--reject-status", values["reject-status"], 400, 599));
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError("--cert and --key go together");
  }
  if (values.cert !== undefined && values.key !== undefined) {
    const read = async (flag: string, path: string) => {
      try {
        return await Deno.readTextFile(path);
      } catch (error) {
        throw new UsageError(`cannot read ${flag} file '${path}': ${(error as Error).message}`);
      }
    };
    options.cert = await read("--cert", values.cert);
    options.key = await read("--key", values.key);
  }

  let server;
  try {
    server = serve(options);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      errorLine(
        io,
        `cannot listen on ${options.hostname}:${port}: the port is in use; pick another with --port (0 picks a free one)`,
      );
      return ExitCode.Failed;
    }
    if (error instanceof TlsOptionError) {
      throw new UsageError(tlsProblem(error, values.cert ?? "", values.key ?? ""));
    }
    if (error instanceof RangeError) throw new UsageError(error.message);
    if (
      error instanceof Deno.errors.AddrNotAvailable || error instanceof TypeError ||
      /lookup|resolve|FQDN|assign requested address/i.test((error as Error).message)
    ) {
      throw new UsageError(
        `--host '${host}' is not an address this machine can listen on (${
          (error as Error).message
        })`,
      );
    }
    throw error;
  }
  io.stdout(`listening ${server.url}\n`);
  if (!signal.aborted) {
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  }
  await server.close();
  log("stopped");
  return ExitCode.Ok;
}
