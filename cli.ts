/**
 * `wsbeat`: a wscat/websocat-style WebSocket client with a heartbeat and
 * timing, an echo server, and a demo.
 *
 * ```sh
 * deno run -A cli.ts demo                          # see what wsbeat is for, offline, in ~15 s
 * deno run -A cli.ts serve --port 9000             # an echo server
 * deno run -A cli.ts ws://127.0.0.1:9000           # type lines, see the echoes
 * deno run -A cli.ts --heartbeat wss://example.com/feed -x '{"op":"subscribe"}'
 * ```
 *
 * Install it as a command with `deno install -g -A -n wsbeat jsr:@wsbeat/wsbeat/cli`
 * (from a checkout: `deno install -g -A -n wsbeat ./cli.ts`). Run `wsbeat --help`
 * for every option and the exit codes.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import denoJson from "./deno.json" with { type: "json" };
import {
  type ClientHeartbeatOptions,
  type CloseInfo,
  connect,
  ConnectError,
  ConnectionClosedError,
  type ConnectOptions,
  type Message,
  MIN_RETRY_DELAY,
  ReconnectError,
  reconnecting,
  type ReconnectOptions,
  sleep,
  StaleFeedError,
  TooSlowError,
  type WebSocketClient,
} from "./mod.ts";
import {
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_HEADER_SIZE,
  DEFAULT_MAX_UNSENT_BYTES,
  DEFAULT_SERVE_CLOSE_TIMEOUT,
  DEFAULT_SERVE_MAX_MESSAGE_SIZE,
  serve,
  type ServeOptions,
} from "./serve.ts";
import { checkCloseWith } from "./serve_options.ts";
import { demo } from "./demo.ts";

/** The exit codes of `wsbeat`, as `--help` lists them. */
export const ExitCode = {
  /** A clean end: EOF and `--wait`, `--count` reached, or a normal close by the server. */
  Ok: 0,
  /** The connection failed or closed abnormally. */
  Failed: 1,
  /** A usage error: unknown option, bad value, missing URL. */
  Usage: 2,
  /** The heartbeat found the server unresponsive. */
  Heartbeat: 3,
  /** Interrupted by Ctrl-C (after closing cleanly with 1000). */
  Interrupted: 130,
} as const;

const VERSION: string = denoJson.version;

/** Lines of stdin waiting to be sent: at most INPUT_QUEUE_LIMIT, across reconnects. */
export const INPUT_QUEUE_LIMIT = 1000;

const HELP = `wsbeat ${VERSION}: keep a WebSocket connection alive, and know when it is dead

Usage:
  wsbeat [options] <url>      connect; send stdin lines, print messages on stdout
  wsbeat serve [options]      run an echo server (see wsbeat serve --help)
  wsbeat demo                 the idle-timeout and dead-peer experiment, offline, ~15 s

The URL may be ws://, wss://, http:// or https://; without a scheme ws:// is assumed.

Sending:
  -x, --send MSG          send MSG after connecting instead of reading stdin (repeatable)
      --every SECONDS     with -x, send the messages again every SECONDS
  -n, --count N           exit after N messages received
  -w, --wait SECONDS      after stdin ends (or -x is sent), wait this long for replies,
                          then close with 1000 (default 1)
      --keep-open         stay connected after the input ends, until the server closes
                          or Ctrl-C (for a subscription sent with -x)
      --binary            stdin lines are base64 and are sent as binary messages
      --json              check each input line is JSON before sending it, and
                          pretty-print received JSON on a terminal

Connection:
  -H, --header "Name: value"   add a handshake header (repeatable)
  -s, --protocol NAME          offer a subprotocol (repeatable)
      --cacert FILE            trust the PEM CA certificate(s) in FILE for wss://
      --connect-timeout SECS   give up opening after SECS (default 10)
      --stale-after SECS       close the connection when no message arrived for SECS,
                               even while pings are answered (the feed went quiet);
                               with --reconnect, connect again (default: off)

Heartbeat (any of these turns it on):
      --heartbeat         send a probe, fail after --timeout without a reply, sleep --interval
      --interval SECS     sleep between a reply and the next probe (default 10)
      --timeout SECS      wait this long for each reply (default 5)
      --ping TEXT         the probe message (default "ping")
      --pong TEXT         the reply to expect; replies are not printed. Without it any
                          message counts as a reply
      --show-rtt          print each beat's round-trip time on stderr

Reconnect (any of these turns it on):
      --reconnect         after a close or failure, connect again with backoff; -x
                          messages are sent again on each connection, and stdin lines
                          typed while disconnected wait (up to ${INPUT_QUEUE_LIMIT} lines)
      --max-retries N     give up when N retries in a row have failed, a retry being
                          an attempt after a failure (default: never)
      --backoff-initial S first delay (default 1, at least 0.01); doubles per failure,
                          with jitter
      --backoff-max S     longest delay (default 30, at least 0.01)
      --backoff-factor F  growth per failure (default 2)
      Not retried: HTTP 4xx other than 408/429, TLS errors, close 1008.

Output:
      --binary-format F   print binary messages as base64 (default), hex, or raw bytes
  -v, --verbose           more status: headers (secrets masked), traffic counters, latency
  -q, --quiet             no status lines, only messages and errors
      --no-color          no colour (also NO_COLOR=1; colour is used only on a terminal)
  -h, --help              show this help
  -V, --version           show the version

Messages go to stdout, one per line; status and errors go to stderr, so
'wsbeat URL | jq' works.

Exit codes:
  0    clean end: stdin ended and --wait passed, --count reached, or the server closed
       normally (1000, 1001, 1005)
  1    the connection failed, or closed abnormally (with --reconnect: a failure that is
       not retried, or --max-retries reached)
  2    usage error
  3    heartbeat timeout: the server stopped answering (with --reconnect it reconnects)
  130  interrupted (Ctrl-C), after closing cleanly with 1000

TLS: there is no switch to skip certificate checks. To trust a private CA, pass
--cacert ca.pem (or run deno with --cert ca.pem).

Examples:
  wsbeat serve --port 9000 --idle-timeout 30 &
  wsbeat ws://127.0.0.1:9000                            # interactive
  echo hello | wsbeat ws://127.0.0.1:9000               # prints hello, exits 0
  wsbeat -x '{"op":"subscribe"}' -n 5 wss://example.com/feed
  wsbeat --heartbeat --interval 10 --timeout 5 --show-rtt ws://127.0.0.1:9000
`;

const SERVE_HELP = `Usage: wsbeat serve [options]

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
                               it (default ${DEFAULT_SERVE_MAX_MESSAGE_SIZE}, the wsbeat client's own limit)
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
      --drop-after N           cut TCP, with no close frame, right after the N-th reply
      --close-with CODE[:REASON]  echo the first message, then close with CODE (1000-1003,
                               1007-1014 or 3000-4999) and REASON (at most 123 bytes of UTF-8)
      --echo-delay SECS        wait SECS before each reply
      --fragment N             send each reply as N frames, with a ping between each two
      --ping-interval SECS     send every client a ping frame every SECS
      --reject-status STATUS   answer every opening handshake with this HTTP status (400-599)
`;

/** A bad command line: reported as one line, exit code 2. */
class UsageError extends Error {
  override name = "UsageError";
}

/** Where the CLI writes, and whether it may colour. */
interface Io {
  stdout(text: string): void;
  stdoutBytes(bytes: Uint8Array): void;
  stderr(text: string): void;
  color: boolean;
}

function realIo(noColor: boolean): Io {
  const encoder = new TextEncoder();
  return {
    stdout: (text) => writeAll(Deno.stdout, encoder.encode(text)),
    stdoutBytes: (bytes) => writeAll(Deno.stdout, bytes),
    stderr: (text) => writeAll(Deno.stderr, encoder.encode(text)),
    color: !noColor && !Deno.noColor && Deno.stderr.isTerminal(),
  };
}

function writeAll(stream: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length;) off += stream.writeSync(bytes.subarray(off));
}

const paint = (io: Io, code: number, text: string) =>
  io.color ? `\x1b[${code}m${text}\x1b[0m` : text;

function errorLine(io: Io, message: string): void {
  io.stderr(`${paint(io, 31, "error")}: ${message}\n`);
}

/** Formats milliseconds for people: "12 ms", "3.0 s". */
export function formatDuration(ms: number): string {
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

// --- argument parsing ------------------------------------------------------

function parse<T extends ParseArgsOptionsConfig>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message = (error as Error).message;
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      const option = /'([^']+)'/.exec(message)?.[1] ?? message;
      throw new UsageError(`unknown option '${option}'; see --help for the options`);
    }
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      throw new UsageError(`${message.replace(/^Option/, "option")}; see --help`);
    }
    throw error;
  }
}

function seconds(name: string, value: string | undefined, allowZero = false): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (
    value.trim() === "" || !Number.isFinite(n) || n < 0 || (!allowZero && n === 0) || n > 2_000_000
  ) {
    throw new UsageError(
      `${name} expects a number of seconds${allowZero ? "" : " above 0"}, got '${value}'`,
    );
  }
  return n * 1000;
}

function count(name: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min) {
    throw new UsageError(`${name} expects a whole number of at least ${min}, got '${value}'`);
  }
  return n;
}

function parseHeader(value: string): [string, string] {
  const i = value.indexOf(":");
  const name = i > 0 ? value.slice(0, i).trim() : "";
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
    throw new UsageError(`--header expects "Name: value", got '${value}'`);
  }
  return [name, value.slice(i + 1).trim()];
}

/** Shows a header for `--verbose`, masking credentials. */
export function maskHeader(name: string, value: string): string {
  return /^(authorization|proxy-authorization|cookie)$/i.test(name)
    ? `${name}: ***`
    : `${name}: ${value}`;
}

function parseUrl(value: string): string {
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `ws://${value}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`invalid URL '${value}'; expected e.g. ws://127.0.0.1:9000/path`);
  }
  if (!["ws:", "wss:", "http:", "https:"].includes(parsed.protocol)) {
    throw new UsageError(
      `invalid URL '${value}': the scheme must be ws://, wss://, http:// or https://`,
    );
  }
  if (parsed.hash) {
    throw new UsageError(`invalid URL '${value}': a WebSocket URL cannot have a #fragment`);
  }
  return parsed.href;
}

// --- the client ------------------------------------------------------------

/** Client settings, from the command line. */
interface ClientConfig {
  url: string;
  headers: [string, string][];
  protocols: string[];
  cacert: string | undefined;
  connectTimeout: number | undefined;
  send: string[];
  every: number | undefined;
  count: number | undefined;
  wait: number;
  keepOpen: boolean;
  reconnect: boolean;
  backoff: Pick<ReconnectOptions, "initialDelay" | "maxDelay" | "factor" | "maxRetries">;
  staleAfter: number | undefined;
  heartbeat: ClientHeartbeatOptions | undefined;
  showRtt: boolean;
  binary: boolean;
  json: boolean;
  binaryFormat: "base64" | "hex" | "raw";
  verbose: boolean;
  quiet: boolean;
}

const CLIENT_OPTIONS = {
  send: { type: "string", short: "x", multiple: true },
  every: { type: "string" },
  count: { type: "string", short: "n" },
  wait: { type: "string", short: "w" },
  "keep-open": { type: "boolean" },
  reconnect: { type: "boolean" },
  "max-retries": { type: "string" },
  "backoff-initial": { type: "string" },
  "backoff-max": { type: "string" },
  "backoff-factor": { type: "string" },
  binary: { type: "boolean" },
  json: { type: "boolean" },
  header: { type: "string", short: "H", multiple: true },
  protocol: { type: "string", short: "s", multiple: true },
  cacert: { type: "string" },
  "connect-timeout": { type: "string" },
  "stale-after": { type: "string" },
  heartbeat: { type: "boolean" },
  interval: { type: "string" },
  timeout: { type: "string" },
  ping: { type: "string" },
  pong: { type: "string" },
  "show-rtt": { type: "boolean" },
  "binary-format": { type: "string" },
  verbose: { type: "boolean", short: "v" },
  quiet: { type: "boolean", short: "q" },
  "no-color": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const satisfies ParseArgsOptionsConfig;

/** A backoff delay in seconds, as milliseconds; never below MIN_RETRY_DELAY (a busy loop). */
function retryDelay(name: string, value: string | undefined): number | undefined {
  const ms = seconds(name, value);
  if (ms !== undefined && ms < MIN_RETRY_DELAY) {
    throw new UsageError(
      `${name} expects at least ${
        MIN_RETRY_DELAY / 1000
      } seconds (a shorter delay would retry in a busy loop), got '${value}'`,
    );
  }
  return ms;
}

function clientConfig(
  values: ReturnType<typeof parse<typeof CLIENT_OPTIONS>>["values"],
  url: string,
): ClientConfig {
  const format = values["binary-format"] ?? "base64";
  if (format !== "base64" && format !== "hex" && format !== "raw") {
    throw new UsageError(`--binary-format expects base64, hex or raw, got '${format}'`);
  }
  const every = seconds("--every", values.every);
  const send = values.send ?? [];
  if (every !== undefined && send.length === 0) {
    throw new UsageError("--every repeats the -x/--send messages; give at least one with -x");
  }
  const wantsBeat = values.heartbeat || values.interval !== undefined ||
    values.timeout !== undefined ||
    values.ping !== undefined || values.pong !== undefined || values["show-rtt"];
  const interval = seconds("--interval", values.interval, true);
  const backoff: ClientConfig["backoff"] = {};
  const initialDelay = retryDelay("--backoff-initial", values["backoff-initial"]);
  if (initialDelay !== undefined) backoff.initialDelay = initialDelay;
  const maxDelay = retryDelay("--backoff-max", values["backoff-max"]);
  if (maxDelay !== undefined) backoff.maxDelay = maxDelay;
  if (values["backoff-factor"] !== undefined) {
    const factor = Number(values["backoff-factor"]);
    if (!(factor >= 1 && factor <= 100)) {
      throw new UsageError(
        `--backoff-factor expects a number from 1 to 100, got '${values["backoff-factor"]}'`,
      );
    }
    backoff.factor = factor;
  }
  const maxRetries = count("--max-retries", values["max-retries"], 0);
  if (maxRetries !== undefined) backoff.maxRetries = maxRetries;
  const timeout = seconds("--timeout", values.timeout);
  return {
    url: parseUrl(url),
    headers: (values.header ?? []).map(parseHeader),
    protocols: values.protocol ?? [],
    cacert: values.cacert,
    connectTimeout: seconds("--connect-timeout", values["connect-timeout"]),
    send,
    every,
    count: count("--count", values.count),
    wait: seconds("--wait", values.wait, true) ?? 1000,
    keepOpen: values["keep-open"] ?? false,
    reconnect: (values.reconnect ?? false) || Object.keys(backoff).length > 0,
    backoff,
    staleAfter: seconds("--stale-after", values["stale-after"]),
    heartbeat: wantsBeat
      ? {
        ...(interval !== undefined ? { interval } : {}),
        ...(timeout !== undefined ? { timeout } : {}),
        message: values.ping ?? "ping",
        ...(values.pong !== undefined ? { reply: values.pong } : {}),
      }
      : undefined,
    showRtt: values["show-rtt"] ?? false,
    binary: values.binary ?? false,
    json: values.json ?? false,
    binaryFormat: format,
    verbose: values.verbose ?? false,
    quiet: values.quiet ?? false,
  };
}

async function readCaCert(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(
      `cannot read --cacert file '${path}': ${(error as Error).message}; pass a PEM file of the CA`,
    );
  }
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array | undefined {
  try {
    return Uint8Array.from(atob(text.trim()), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/** Prints one received message on stdout. */
function printMessage(io: Io, config: ClientConfig, message: Message, terminal: boolean): void {
  if (typeof message === "string") {
    if (config.json && terminal) {
      try {
        io.stdout(JSON.stringify(JSON.parse(message), null, 2) + "\n");
        return;
      } catch { /* not JSON: print as it came */ }
    }
    io.stdout(message + "\n");
    return;
  }
  switch (config.binaryFormat) {
    case "raw":
      io.stdoutBytes(message);
      return;
    case "hex":
      io.stdout(Array.from(message, (b) => b.toString(16).padStart(2, "0")).join("") + "\n");
      return;
    default:
      io.stdout(toBase64(message) + "\n");
  }
}

/** Reads lines from a byte stream; a final line without "\n" counts too. */
export async function* readLines(readable: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of readable.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
    }
  }
  if (buffer) yield buffer;
}

function describeClose(info: CloseInfo): string {
  const code = info.code === 1006 ? "1006, no close frame" : String(info.code);
  const reason = info.reason ? ` ${JSON.stringify(info.reason)}` : "";
  switch (info.initiator) {
    case "server":
      return `closed by the server (${code})${reason}`;
    case "client":
      if (info.error instanceof StaleFeedError) {
        return `closed by wsbeat: no message for ${
          formatDuration(info.error.staleAfter)
        } (--stale-after), the feed went quiet`;
      }
      return `closed by wsbeat (${code})${reason}`;
    case "heartbeat":
      return "closed by the heartbeat (the server stopped answering)";
    case "network":
      return `connection lost (${code})${info.error ? `: ${info.error.message}` : ""}`;
  }
}

/** How a session ended. */
type Ending =
  | "done" // input over and --wait passed, or --count reached
  | "closed" // the connection closed (by the server, the heartbeat, or the network)
  | "interrupted"; // Ctrl-C

/** Options for {@linkcode InputFeed}. */
export interface InputFeedOptions {
  /** Turns a line (numbered from 1) into the message to send, or `undefined` to skip it. */
  prepare: (line: string, n: number) => string | Uint8Array | undefined;
  /** Called each time the queue fills up and reading pauses. */
  onFull: () => void;
  /**
   * The most lines kept.
   *
   * @default {INPUT_QUEUE_LIMIT}
   */
  limit?: number;
}

/**
 * Stdin, read once for the whole run into a bounded queue. A line leaves the
 * queue only once sent, so lines read while disconnected wait for the next
 * connection; when the queue is full, reading stops until it drains.
 * Exported for tests.
 */
export class InputFeed {
  #queue: (string | Uint8Array)[] = [];
  #ended = false;
  #wake: (() => void) | undefined;
  #space: (() => void) | undefined;

  /**
   * Starts reading `lines`.
   *
   * @param lines The input, one message a line.
   * @param options How to prepare each line, what to do when the queue fills, and its size.
   */
  constructor(lines: AsyncIterable<string>, options: InputFeedOptions) {
    const { prepare, onFull, limit = INPUT_QUEUE_LIMIT } = options;
    (async () => {
      let n = 0;
      for await (const line of lines) {
        const item = prepare(line, ++n);
        if (item === undefined) continue;
        if (this.#queue.length >= limit) {
          onFull();
          await new Promise<void>((resolve) => (this.#space = resolve));
        }
        this.#queue.push(item);
        this.#wake?.();
      }
    })().catch(() => {/* stdin closed */}).finally(() => {
      this.#ended = true;
      this.#wake?.();
    });
  }

  /** How many lines wait to be sent. */
  get size(): number {
    return this.#queue.length;
  }

  /**
   * The next item to send, without taking it; `undefined` once input is over.
   *
   * @param signal Stops waiting (rejects with its reason).
   * @returns The next item, or `undefined` at the end.
   */
  async peek(signal: AbortSignal): Promise<string | Uint8Array | undefined> {
    while (this.#queue.length === 0 && !this.#ended) {
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        this.#wake = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
        signal.addEventListener("abort", onAbort, { once: true });
      });
    }
    signal.throwIfAborted();
    return this.#queue[0];
  }

  /** Takes the item `peek` gave, once it was sent. */
  shift(): void {
    this.#queue.shift();
    const space = this.#space;
    this.#space = undefined;
    space?.();
  }
}

/** Checks one input line: `--binary` base64, `--json` JSON. `undefined` when refused. */
function prepareLine(
  io: Io,
  config: ClientConfig,
  line: string,
  n: number,
): string | Uint8Array | undefined {
  if (config.binary) {
    const bytes = fromBase64(line);
    if (!bytes) errorLine(io, `input line ${n} is not valid base64 (--binary); it was not sent`);
    return bytes;
  }
  if (config.json) {
    try {
      JSON.parse(line);
    } catch (error) {
      errorLine(io, `input line ${n} is not JSON (${(error as Error).message}); it was not sent`);
      return undefined;
    }
  }
  return line;
}

async function runClient(io: Io, config: ClientConfig, signal: AbortSignal): Promise<number> {
  const status = (text: string) => config.quiet || io.stderr(paint(io, 2, text) + "\n");
  const stdoutTerminal = Deno.stdout.isTerminal();
  const caCerts = config.cacert !== undefined ? [await readCaCert(config.cacert)] : undefined;

  if (config.verbose) {
    status(`connecting to ${config.url}`);
    for (const [name, value] of config.headers) status(`  ${maskHeader(name, value)}`);
    if (config.protocols.length) status(`  subprotocols: ${config.protocols.join(", ")}`);
  }
  const beat = config.heartbeat;
  const options: ConnectOptions = {
    signal,
    ...(config.headers.length ? { headers: config.headers } : {}),
    ...(config.protocols.length ? { protocols: config.protocols } : {}),
    ...(caCerts ? { caCerts } : {}),
    ...(config.connectTimeout !== undefined ? { connectTimeout: config.connectTimeout } : {}),
    ...(config.staleAfter !== undefined ? { staleAfter: config.staleAfter } : {}),
    ...(beat
      ? {
        heartbeat: {
          ...beat,
          onBeat: (rtt: number) =>
            config.showRtt && io.stderr(paint(io, 2, `rtt ${formatDuration(rtt)}`) + "\n"),
        },
      }
      : {}),
  };
  const feed = config.send.length > 0 ? undefined : new InputFeed(readLines(Deno.stdin.readable), {
    prepare: (line, n) => prepareLine(io, config, line, n),
    onFull: () =>
      status(
        `input queue full (${INPUT_QUEUE_LIMIT} lines) while disconnected; not reading stdin until it drains`,
      ),
  });
  if (Deno.stdin.isTerminal() && feed) {
    status("type a line to send it; Ctrl-D closes, Ctrl-C quits");
  }
  const run: Run = { io, config, feed, received: 0, status, stdoutTerminal };

  if (!config.reconnect) {
    let ws: WebSocketClient;
    try {
      ws = await connect(config.url, options);
    } catch (error) {
      if (signal.aborted) return ExitCode.Interrupted;
      return connectFailure(io, config, error);
    }
    const ending = await connection(run, ws, signal);
    if (ending === "interrupted") return ExitCode.Interrupted;
    const info = await ws.closed;
    if (info.initiator === "heartbeat") {
      const late = info.error instanceof TooSlowError ? info.error.timeout : beat?.timeout ?? 5_000;
      errorLine(
        io,
        `heartbeat timeout: no reply to ${JSON.stringify(beat?.message ?? "ping")} within ${
          formatDuration(late)
        } (--timeout); the server at ${ws.url} stopped answering`,
      );
      return ExitCode.Heartbeat;
    }
    if (info.initiator === "client" && !info.error) return ExitCode.Ok;
    if (info.initiator === "server" && [1000, 1001, 1005].includes(info.code)) return ExitCode.Ok;
    errorLine(io, `${describeClose(info)} (${ws.url})`);
    return ExitCode.Failed;
  }

  // When the connection was lost: its close, or the first failed attempt.
  // "reconnected after" counts from there, detection to the new connection.
  let lostAt: number | undefined;
  const maxRetries = config.backoff.maxRetries;
  try {
    for await (
      const ws of reconnecting(config.url, {
        ...options,
        ...config.backoff,
        onRetry: ({ attempt, retry, delay, reason }) => {
          lostAt ??= performance.now();
          const why = "code" in reason
            ? describeClose(reason)
            : reason.message.replace(/^Cannot/, "cannot");
          const of = maxRetries === undefined || retry === 0
            ? ""
            : `, retry ${retry} of ${maxRetries}`;
          status(`${why}; reconnecting in ${formatDuration(delay)} (attempt ${attempt}${of})`);
        },
      })
    ) {
      if (lostAt !== undefined) {
        status(`reconnected after ${formatDuration(performance.now() - lostAt)}`);
      }
      lostAt = undefined;
      ws.closed.then(() => (lostAt = performance.now()));
      const ending = await connection(run, ws, signal);
      if (ending === "interrupted") return ExitCode.Interrupted;
      if (ending === "done") return ExitCode.Ok;
    }
    return signal.aborted ? ExitCode.Interrupted : ExitCode.Ok;
  } catch (error) {
    if (error instanceof ReconnectError || error instanceof ConnectionClosedError) {
      const message = error.message.replace("(maxRetries)", "(--max-retries)");
      errorLine(io, message.replace(/^[A-Z]/, (c) => c.toLowerCase()));
      return ExitCode.Failed;
    }
    return connectFailure(io, config, error);
  }
}

/** What every connection of a run shares. */
interface Run {
  io: Io;
  config: ClientConfig;
  feed: InputFeed | undefined;
  received: number;
  status: (text: string) => void;
  stdoutTerminal: boolean;
}

function connectFailure(io: Io, config: ClientConfig, error: unknown): number {
  if (error instanceof ConnectError) {
    errorLine(io, error.message.replace(/^Cannot/, "cannot"));
    return ExitCode.Failed;
  }
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    const { host } = new URL(config.url);
    errorLine(
      io,
      `no permission to connect to ${config.url}; run deno with --allow-net=${host} (or -A)`,
    );
    return ExitCode.Failed;
  }
  throw error;
}

/** One connection: report it, run its session, close it, report how it ended. */
async function connection(run: Run, ws: WebSocketClient, signal: AbortSignal): Promise<Ending> {
  const { config, status } = run;
  const beat = config.heartbeat;
  status(
    `connected to ${ws.url} in ${formatDuration(ws.stats.openMs ?? 0)}` +
      (ws.protocol ? ` (subprotocol ${ws.protocol})` : "") +
      (beat
        ? `; heartbeat every ${formatDuration(beat.interval ?? 10_000)}, timeout ${
          formatDuration(beat.timeout ?? 5_000)
        }`
        : ""),
  );
  const ending = await session(run, ws, signal);
  const info = await ws.close();
  const after = ws.stats;
  status(
    `${describeClose(info)}; the connection stayed open for ${formatDuration(after.uptimeMs)}`,
  );
  if (config.verbose) {
    status(
      `  sent ${after.messagesSent} messages (${after.bytesSent} B), received ${after.messagesReceived} (${after.bytesReceived} B)`,
    );
    const l = after.latency;
    if (l) {
      status(
        `  rtt last ${formatDuration(l.last)}, min ${formatDuration(l.min)}, avg ${
          formatDuration(l.avg)
        }, p99 ${formatDuration(l.p99)} over ${l.samples} beats`,
      );
    }
  }
  return ending;
}

/**
 * One connection's traffic: print what arrives, send what the user gives.
 * Ends when --count is reached, when the connection closes (and every message
 * was printed), when input is over and --wait has passed, or on Ctrl-C.
 */
async function session(run: Run, ws: WebSocketClient, signal: AbortSignal): Promise<Ending> {
  const { io, config } = run;
  const done = new AbortController();
  const stop = AbortSignal.any([signal, done.signal]);

  const reading = (async (): Promise<Ending> => {
    for await (const message of ws) {
      printMessage(io, config, message, run.stdoutTerminal);
      if (config.count !== undefined && ++run.received >= config.count) return "done";
    }
    return "closed";
  })().catch((): Ending => "closed");

  const writing = (async (): Promise<Ending> => {
    await sendInput(run, ws, stop);
    // Input is over: give replies --wait to arrive (with --count or --keep-open, wait on).
    const forever = config.count !== undefined || config.keepOpen;
    await sleep(forever ? Infinity : config.wait, { signal: stop });
    return "done";
  })().catch((): Ending => ws.state === "open" ? "done" : "closed");

  const stopped = stop.aborted
    ? Promise.resolve<Ending>("interrupted")
    : new Promise<Ending>((resolve) =>
      stop.addEventListener("abort", () => resolve("interrupted"), { once: true })
    );
  const ending = await Promise.race([reading, writing, stopped]);
  done.abort();
  return signal.aborted ? "interrupted" : ending;
}

/** Sends the -x messages (again every --every), or the queued stdin lines. */
async function sendInput(run: Run, ws: WebSocketClient, stop: AbortSignal): Promise<void> {
  const { config, feed } = run;
  if (!feed) {
    while (!stop.aborted) {
      for (const message of config.send) ws.send(message);
      if (config.every === undefined) return;
      await sleep(config.every, { signal: stop });
    }
    return;
  }
  while (true) {
    const item = await feed.peek(stop);
    if (item === undefined) return;
    ws.send(item); // throws if the connection closed: the line stays queued for the next one
    feed.shift();
  }
}

// --- serve ------------------------------------------------------------------

const SERVE_OPTIONS = {
  port: { type: "string", short: "p" },
  host: { type: "string" },
  "max-message-size": { type: "string" },
  "max-connections": { type: "string" },
  "handshake-timeout": { type: "string" },
  "max-header-size": { type: "string" },
  "max-unsent": { type: "string" },
  "close-timeout": { type: "string" },
  "idle-timeout": { type: "string" },
  pong: { type: "string" },
  "stall-after": { type: "string" },
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

/** A whole number from `min` to `max`, for a serve flag. */
function bounded(name: string, value: string | undefined, min: number, max: number) {
  const n = value === undefined || !/^\d+$/.test(value.trim())
    ? count(name, value, min)
    : Number(value);
  if (n !== undefined && (n < min || n > max)) {
    throw new UsageError(`${name} expects a whole number from ${min} to ${max}, got '${value}'`);
  }
  return n;
}

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

async function runServe(io: Io, args: string[], signal: AbortSignal): Promise<number> {
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
  const options: ServeOptions = { port, hostname: values.host ?? "127.0.0.1", signal, log };
  const set = <K extends keyof ServeOptions>(key: K, value: ServeOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  set("maxMessageSize", count("--max-message-size", values["max-message-size"]));
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
    if (error instanceof RangeError || error instanceof TypeError) {
      throw new UsageError(error.message);
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

// --- entry point --------------------------------------------------------------

/**
 * Runs the CLI with `args` and returns the exit code. Ctrl-C and SIGTERM stop
 * it cleanly.
 *
 * @param args The command-line arguments, without the program name.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  const interrupt = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts > 1) Deno.exit(ExitCode.Interrupted); // a second Ctrl-C does not wait
    interrupt.abort();
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  const io = realIo(args.includes("--no-color"));
  try {
    const [command, ...rest] = args;
    if (command === "serve") return await runServe(io, rest, interrupt.signal);
    if (command === "demo") {
      if (rest.some((a) => a === "-h" || a === "--help")) {
        io.stdout(
          "Usage: wsbeat demo\n\nShows, offline in ~15 s, a server dropping an idle client, a heartbeat\nkeeping the connection open, and the heartbeat finding a dead server.\n",
        );
        return ExitCode.Ok;
      }
      if (rest.length > 0) throw new UsageError(`demo takes no arguments, got '${rest[0]}'`);
      return await demo({ write: io.stdout, signal: interrupt.signal });
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
    if (positionals.length === 0) {
      throw new UsageError("missing URL; usage: wsbeat [options] <url> (see --help)");
    }
    if (positionals.length > 1) {
      throw new UsageError(
        `expected one URL, got ${positionals.length}: ${
          positionals.map((p) => `'${p}'`).join(" ")
        }`,
      );
    }
    if (values.verbose && values.quiet) {
      throw new UsageError("--verbose and --quiet contradict each other; pick one");
    }
    return await runClient(io, clientConfig(values, positionals[0]!), interrupt.signal);
  } catch (error) {
    if (error instanceof UsageError) {
      errorLine(io, error.message);
      return ExitCode.Usage;
    }
    errorLine(io, `unexpected failure: ${(error as Error)?.message ?? String(error)}`);
    return ExitCode.Failed;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
