/**
 * Where the CLI writes and how: stdout for messages (a write error ends the
 * run, a reader that went away ends it quietly), stderr for status and
 * errors, with every credential masked, colour only on a terminal; the exit
 * codes; the wording of errors in the CLI's own terms (flags, not library
 * option names, lower case); and {@linkcode escapeControl}, through which
 * every text a peer controls passes before it reaches a terminal.
 *
 * @module
 */

import {
  type CloseInfo,
  type Message,
  ProtocolError,
  StaleFeedError,
  type TraceEvent,
} from "../mod.ts";
import { isSecretName, maskUrl } from "../util/url.ts";

/** The exit codes of `wsbeat`, as `--help` lists them. */
export const ExitCode = {
  /** A clean end: EOF and `--wait`, `--count` reached, or a normal close by the server. */
  Ok: 0,
  /** The connection failed or closed abnormally, stdout failed, or input was refused. */
  Failed: 1,
  /** A usage error: unknown option, bad value, missing URL. */
  Usage: 2,
  /** The heartbeat found the server unresponsive. */
  Heartbeat: 3,
  /** Interrupted by Ctrl-C (after closing cleanly with 1000). */
  Interrupted: 130,
  /** Stopped by SIGTERM (after closing cleanly with 1000). */
  Terminated: 143,
} as const;

/** A bad command line: reported as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Writing to stdout failed; `broken` when the reader went away (EPIPE). */
export class OutputError extends Error {
  override name = "OutputError";
  /** The reader closed the pipe (`| head -1`): end quietly. */
  readonly broken: boolean;

  constructor(cause: unknown) {
    const message = cause instanceof Error ? cause.message : String(cause);
    super(`cannot write to stdout: ${message}`, { cause });
    this.broken = cause instanceof Deno.errors.BrokenPipe || /broken pipe|EPIPE/i.test(message);
  }
}

/** Where the CLI writes, and whether it may colour. */
export interface Io {
  /** Writes to stdout; throws {@linkcode OutputError}. */
  stdout(text: string): void;
  /** Writes bytes to stdout; throws {@linkcode OutputError}. */
  stdoutBytes(bytes: Uint8Array): void;
  /** Writes to stderr, credentials masked; errors are ignored (nowhere to report them). */
  stderr(text: string): void;
  /** Colour on stderr. */
  color: boolean;
  /** Whether stdout is a terminal. */
  stdoutTerminal: boolean;
  /** Colour on stdout (a terminal, no `NO_COLOR`, no `--no-color`). */
  stdoutColor: boolean;
  /** Adds values never to be shown on stderr. */
  addSecrets(values: Iterable<string>): void;
}

/** Secrets shorter than this are masked at their source only, not searched for in text. */
const MIN_SCRUBBED = 4;

/** The real streams. */
export function realIo(noColor: boolean): Io {
  const encoder = new TextEncoder();
  const secrets = new Set<string>();
  const scrub = (text: string) => {
    for (const secret of secrets) text = text.replaceAll(secret, "***");
    return text;
  };
  const out = (bytes: Uint8Array) => {
    try {
      writeAll(Deno.stdout, bytes);
    } catch (error) {
      throw new OutputError(error);
    }
  };
  return {
    stdout: (text) => out(encoder.encode(text)),
    stdoutBytes: out,
    stderr: (text) => {
      try {
        writeAll(Deno.stderr, encoder.encode(scrub(text)));
      } catch { /* stderr is gone: nothing left to tell */ }
    },
    color: !noColor && !Deno.noColor && Deno.stderr.isTerminal(),
    stdoutTerminal: Deno.stdout.isTerminal(),
    stdoutColor: !noColor && !Deno.noColor && Deno.stdout.isTerminal(),
    addSecrets(values) {
      for (const value of values) {
        if (value.length >= MIN_SCRUBBED) secrets.add(value);
      }
    },
  };
}

function writeAll(stream: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length;) off += stream.writeSync(bytes.subarray(off));
}

/** Text in an ANSI colour when the Io may colour. */
export function paint(io: Io, code: number, text: string): string {
  return io.color ? `\x1b[${code}m${text}\x1b[0m` : text;
}

/**
 * Characters a terminal may act on rather than show: C0 and C1 controls
 * (ESC, BEL, CR, backspace...), DEL, the line and paragraph separators and
 * the bidirectional overrides that reorder what is shown.
 */
const CONTROL = /[\p{Cc}\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;
const CONTROL_BUT_LINES =
  /[^\P{Cc}\n\t]|[\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

/**
 * Text from a peer (or a user) as it may be shown on a terminal: every
 * control character written out as an escape (`\x1b` as the four
 * characters `\x1b`, U+202E as `\u202e`), printable Unicode kept as is.
 * The one escaping helper of the CLI: status and error lines go through it,
 * and received messages when stdout is a terminal.
 *
 * @param text The text to show.
 * @param keepLines Keep line feeds and tabs (a received message's own lines).
 * @returns The text, safe to write to a terminal.
 */
export function escapeControl(text: string, keepLines = false): string {
  return text.replace(keepLines ? CONTROL_BUT_LINES : CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** One status line on stderr (dimmed on a terminal), control characters escaped. */
export function statusLine(io: Io, text: string): void {
  io.stderr(paint(io, 2, escapeControl(text)) + "\n");
}

/** One `error:` line on stderr, control characters escaped. */
export function errorLine(io: Io, message: string): void {
  io.stderr(`${paint(io, 31, "error")}: ${escapeControl(message)}\n`);
}

/** `1 message`, `2 messages`. */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/**
 * The credentials in a command line, found by shape: URL user info and
 * secret query values, and the values of `Name: value` (or `Name value`)
 * arguments whose name says it is a credential. The CLI masks them at their
 * source; this list is the safety net for any text that still holds one.
 */
export function secretsIn(args: string[]): string[] {
  const found: string[] = [];
  for (const arg of args) {
    const header = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*[:\s]\s*(.+)$/s.exec(arg);
    if (header && isSecretName(header[1]!)) {
      found.push(header[2]!.trim());
      // "Bearer X", "Basic X": the credential is the last word too.
      const word = /\s(\S+)$/.exec(header[2]!.trim());
      if (word) found.push(word[1]!);
    }
    const at = arg.indexOf("://");
    if (at === -1) continue;
    try {
      const url = new URL(arg);
      for (const raw of [url.password, url.password ? "" : url.username]) {
        if (raw) found.push(raw, decodeURIComponent(raw));
      }
      for (const [name, value] of url.searchParams) {
        if (isSecretName(name) && value) found.push(value, encodeURIComponent(value));
      }
    } catch {
      const info = /\/\/([^/?#@\s]*)@/.exec(arg)?.[1];
      if (info) found.push(info.includes(":") ? info.slice(info.indexOf(":") + 1) : info);
    }
  }
  return found.filter((s) => s.length > 0);
}

/** A header for `--verbose`: the value of a credential header shown as `***`. */
export function maskHeader(name: string, value: string): string {
  return `${name}: ${isSecretName(name) ? "***" : value}`;
}

export { maskUrl };

/**
 * A library message in the CLI's words: flags instead of option names, in
 * lower case like every CLI line (its first word and each one after a
 * colon; names such as TLS, HTTP, Deno or UnknownIssuer kept).
 */
export function cliWords(message: string): string {
  return message
    .replace(
      /(^|: )(?!Deno\b)([A-Z])(?=[a-z]+\b)/g,
      (_, before: string, letter: string) => before + letter.toLowerCase(),
    )
    .replace("(connectTimeout)", "(--connect-timeout)")
    .replace("(maxRetries)", "(--max-retries)")
    .replace(" (closeTimeout)", "")
    .replace(/pass caCerts: \[pem\]/, "pass --cacert ca.pem")
    .replace("(cert and key)", "(--cert and --key)")
    .replace(/pass client: Deno\.createHttpClient\([^)]*\)/, "pass --cacert ca.pem");
}

/** Formats milliseconds for people: "12 ms", "3.0 s". */
export function formatDuration(ms: number): string {
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A network error's text, unless it only says again that no close frame came. */
function lossDetail(error: Error | undefined): string {
  if (!error || /without a closing handshake/i.test(error.message)) return "";
  return `: ${cliWords(error.message)}`;
}

/**
 * How a close reads in a status or error line, from its
 * {@linkcode CloseInfo} alone: who closed first, the code, the reason.
 */
export function describeClose(info: CloseInfo): string {
  const reason = info.reason ? ` ${JSON.stringify(info.reason)}` : "";
  switch (info.initiator) {
    case "server":
      return `closed by the server (${info.code})${reason}`;
    case "client":
      if (info.error instanceof StaleFeedError) {
        return `closed by wsbeat: no message for ${
          formatDuration(info.error.staleAfter)
        } (--stale-after), the feed went quiet`;
      }
      if (info.error instanceof ProtocolError) {
        return `closed by wsbeat (${info.code}): the server broke the protocol: ${
          cliWords(info.error.message)
        }`;
      }
      return `closed by wsbeat (${info.code})${reason}${
        info.error ? `: ${cliWords(info.error.message)}` : ""
      }`;
    case "heartbeat":
      return "closed by the heartbeat (the server stopped answering)";
    case "network":
      return `connection lost (${info.code === 1006 ? "1006, no close frame" : info.code})${
        lossDetail(info.error)
      }`;
  }
}

/** How received messages are printed. */
export interface PrintOptions {
  /** Pretty-print JSON text (on a terminal). */
  json: boolean;
  /** How binary messages are shown. */
  binaryFormat: "base64" | "hex" | "raw";
  /** Prefix each message with its arrival time (`--timestamps`). */
  timestamps: boolean;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * Prints one received message on stdout: text as it came (JSON
 * pretty-printed on a terminal with `--json`); binary as base64, hex or raw
 * bytes, marked `[binary N B]` on a terminal so it cannot pass for text. On
 * a terminal, control characters are escapes ({@linkcode escapeControl});
 * to a pipe or a file, messages are written byte-exact.
 *
 * @param sinceOpen Milliseconds since the connection opened, for `--timestamps`.
 * @throws {OutputError} If stdout cannot be written.
 */
export function printMessage(
  io: Io,
  options: PrintOptions,
  message: Message,
  sinceOpen: number,
): void {
  const stamp = options.timestamps ? `[+${(sinceOpen / 1000).toFixed(3)}s] ` : "";
  if (typeof message === "string") {
    if (options.json && io.stdoutTerminal) {
      try {
        io.stdout(stamp + JSON.stringify(JSON.parse(message), null, 2) + "\n");
        return;
      } catch { /* not JSON: print as it came */ }
    }
    // On a terminal a message is shown, control characters escaped; to a pipe or a file it is data, byte-exact.
    io.stdout(stamp + (io.stdoutTerminal ? escapeControl(message, true) : message) + "\n");
    return;
  }
  if (options.binaryFormat === "raw") {
    if (stamp) io.stdout(stamp);
    if (io.stdoutTerminal) io.stdout(escapeControl(new TextDecoder().decode(message), true));
    else io.stdoutBytes(message);
    return;
  }
  const text = options.binaryFormat === "hex"
    ? Array.from(message, (b) => b.toString(16).padStart(2, "0")).join("")
    : toBase64(message);
  const label = `[binary ${message.length} B]`;
  const mark = !io.stdoutTerminal ? "" : io.stdoutColor ? `\x1b[2m${label}\x1b[0m ` : `${label} `;
  io.stdout(stamp + mark + text + "\n");
}

/**
 * One `--trace` line (with its newline): `*` for a step of the connection,
 * `>` for what was sent, `<` for what was received; a head's lines joined by
 * ` | `; the peer's text escaped. Credentials were masked when the event was
 * made (transport/trace.ts).
 *
 * @param io Where the line goes (for colour).
 * @param event The event.
 * @returns The line.
 *
 * @example
 * ```ts
 * import { formatTrace } from "./output.ts";
 * import assert from "node:assert/strict";
 *
 * const io = { stdout: () => {}, stderr: () => {}, color: false } as never;
 * const event = { step: "receive", opcode: "text", length: 6, detail: "a\nb" } as const;
 * assert.equal(formatTrace(io, event), 'trace < text 6 "a\\x0ab"\n');
 * ```
 */
export function formatTrace(io: Io, event: TraceEvent): string {
  const detail = escapeControl(event.detail.split("\r\n").join(" | "));
  let line: string;
  switch (event.step) {
    case "request":
      line = `> ${detail}`;
      break;
    case "response":
      line = `< ${detail}`;
      break;
    case "send":
    case "receive": {
      const arrow = event.step === "send" ? ">" : "<";
      const body = event.opcode === "text" ? `"${escapeControl(event.detail)}"` : detail;
      line = `${arrow} ${event.opcode} ${event.length}${event.detail === "" ? "" : ` ${body}`}`;
      break;
    }
    default:
      line = `* ${event.step} ${detail}`;
  }
  return paint(io, 2, `trace ${line}`) + "\n";
}
