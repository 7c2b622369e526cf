/**
 * The client's command line: the option table, value checks that name the
 * value (credentials masked) and exit 2, the hints for wscat and websocat
 * habits, and {@linkcode clientConfig}, which turns it all into settings,
 * files and proxy included.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import { type ClientHeartbeatOptions, MIN_RETRY_DELAY, type ReconnectOptions } from "../mod.ts";
import { DEFAULT_MAX_MESSAGE_SIZE } from "../client/options.ts";
import { maskUrl } from "../util/url.ts";
import { escapeControl, secretsIn, UsageError } from "./output.ts";
import { proxyFromEnv } from "../transport/proxy_env.ts";
import { checkProxyUrl } from "../transport/proxy.ts";
import { count, DECIMAL, type parse, seconds } from "./values.ts";

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * A `-H` value as an error may show it: the name, and `***` for whatever
 * follows the colon (a value is never shown, credential or not).
 */
function shownHeader(value: string): string {
  const i = value.indexOf(":");
  if (i > 0) return `${value.slice(0, i)}: ***`;
  const first = /^\S+(?=\s)/.exec(value.trim())?.[0];
  return first ? `${first} ***` : "***";
}

/** The first control character in a header value (a tab is allowed), or undefined. */
function headerControl(value: string): string | undefined {
  for (const c of value) {
    const code = c.charCodeAt(0);
    if ((code < 0x20 && c !== "\t") || code === 0x7f) return c;
  }
  return undefined;
}

/**
 * Parses `-H "Name: value"`: a token name, a value of one line without
 * control characters. Errors show the name, never the value.
 *
 * @throws {UsageError} Naming the header, its value masked.
 */
export function parseHeader(value: string): [string, string] {
  const i = value.indexOf(":");
  if (i <= 0) {
    throw new UsageError(
      `--header expects "Name: value", got no colon in '${shownHeader(value)}'`,
    );
  }
  const name = value.slice(0, i).trim();
  if (!TOKEN.test(name)) {
    throw new UsageError(
      `--header expects "Name: value" with a name of letters, digits and !#$%&'*+.^_\`|~- only, got '${
        shownHeader(value)
      }'`,
    );
  }
  const content = value.slice(i + 1).trim();
  const control = headerControl(content);
  if (control !== undefined) {
    throw new UsageError(
      `--header "${name}" has a control character (${
        escapeControl(control)
      }) in its value, which a header cannot carry: got '${name}: ***'`,
    );
  }
  if (/[\u0100-\uffff]/.test(content)) {
    throw new UsageError(
      `--header "${name}" has a character beyond Latin-1 in its value, which a header cannot carry; percent-encode it: got '${name}: ***'`,
    );
  }
  return [name, content];
}

/** Checks `-s` values: tokens, each once. */
function parseProtocols(values: string[]): string[] {
  const seen = new Set<string>();
  for (const value of values) {
    if (!TOKEN.test(value)) {
      throw new UsageError(
        `--protocol expects a token (letters, digits and !#$%&'*+.^_\`|~-, no spaces or commas), got ${
          JSON.stringify(value)
        }`,
      );
    }
    if (seen.has(value)) throw new UsageError(`--protocol '${value}' is given twice`);
    seen.add(value);
  }
  return values;
}

/** Checks the URL; a missing scheme means ws://. */
export function parseUrl(value: string): string {
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `ws://${value}`;
  const shown = secretsIn([value]).length > 0 ? maskUrl(value) : value;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`invalid URL '${shown}'; expected e.g. ws://127.0.0.1:9000/path`);
  }
  if (!["ws:", "wss:", "http:", "https:"].includes(parsed.protocol)) {
    throw new UsageError(
      `invalid URL '${shown}': the scheme must be ws://, wss://, http:// or https://`,
    );
  }
  if (parsed.hash) {
    throw new UsageError(`invalid URL '${shown}': a WebSocket URL cannot have a #fragment`);
  }
  return parsed.href;
}

/** The client's options. */
export const CLIENT_OPTIONS = {
  connect: { type: "string", short: "c" },
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
  cert: { type: "string" },
  key: { type: "string" },
  proxy: { type: "string" },
  "max-redirects": { type: "string" },
  origin: { type: "string" },
  trace: { type: "boolean" },
  "no-compression": { type: "boolean" },
  "connect-timeout": { type: "string" },
  "stale-after": { type: "string" },
  heartbeat: { type: "boolean" },
  interval: { type: "string" },
  timeout: { type: "string" },
  ping: { type: "string" },
  pong: { type: "string" },
  "show-rtt": { type: "boolean" },
  "binary-format": { type: "string" },
  timestamps: { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  quiet: { type: "boolean", short: "q" },
  "no-color": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
  // wscat and websocat habits, answered with what to use instead.
  listen: { type: "string", short: "l" },
  "no-check": { type: "boolean" },
  insecure: { type: "boolean", short: "k" },
} as const satisfies ParseArgsOptionsConfig;

/** The parsed client command line. */
export type ClientValues = ReturnType<typeof parse<typeof CLIENT_OPTIONS>>["values"];

const NO_TLS_OFF =
  "there is no switch to skip TLS certificate checks; trust the server's CA with --cacert ca.pem " +
  "(or run deno with --cert ca.pem)";

/** Refuses wscat and websocat options that mean something else, or nothing, here. */
export function checkHabits(values: ClientValues, positionals: string[]): void {
  if (values.listen !== undefined) {
    throw new UsageError(
      `wsbeat listens with its serve command: wsbeat serve --port ${
        /^\d+$/.test(values.listen) ? values.listen : "PORT"
      }`,
    );
  }
  if (values["no-check"] || values.insecure) throw new UsageError(NO_TLS_OFF);
  if (values.count !== undefined && /:\/\/|^(no-check|-)/.test(values.count)) {
    throw new UsageError(
      `-n is --count N here, not wscat's --no-check; ${NO_TLS_OFF}`,
    );
  }
  if (values.connect !== undefined && positionals.length > 0) {
    throw new UsageError(
      `give the URL once, with -c/--connect or as an argument, got ${
        [values.connect, ...positionals].map((p) => `'${maskUrl(p)}'`).join(" ")
      }`,
    );
  }
}

/** Client settings, from the command line. */
export interface ClientConfig {
  url: string;
  headers: [string, string][];
  protocols: string[];
  caCerts: string[] | undefined;
  clientCert: { cert: string; key: string } | undefined;
  proxy: string | undefined;
  /** `--max-redirects` and `--origin`, as given (undefined: connect()'s defaults). */
  handshake: { maxRedirects?: number | undefined; origin?: string | undefined };
  /** `--trace`: every step of the connection on stderr. */
  trace: boolean;
  /** Offer permessage-deflate (the default; `--no-compression` turns it off). */
  compression: boolean;
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
  timestamps: boolean;
  verbose: boolean;
  quiet: boolean;
  /** The longest input line: the largest message the client sends. */
  maxLine: number;
}

/** A backoff delay in seconds, as milliseconds; never below MIN_RETRY_DELAY (a busy loop). */
function retryDelay(name: string, value: string | undefined): number | undefined {
  const n = value !== undefined && DECIMAL.test(value) ? Number(value) : undefined;
  const ms = n !== undefined && n > 0 ? n * 1000 : seconds(name, value);
  if (ms !== undefined && ms < MIN_RETRY_DELAY) {
    throw new UsageError(
      `${name} expects at least ${
        MIN_RETRY_DELAY / 1000
      } seconds (a shorter delay would retry in a busy loop), got '${value}'`,
    );
  }
  return seconds(name, value);
}

/** Reads a PEM file for `flag`, checking it holds what the flag needs. */
async function readPem(flag: string, path: string, block: RegExp, what: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(
      `cannot read ${flag} file '${path}': ${(error as Error).message}; pass a PEM file of ${what}`,
    );
  }
  if (!block.test(text)) {
    throw new UsageError(`${flag} file '${path}' is not PEM: it holds no ${what}`);
  }
  return text;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;
const PEM_KEY =
  /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]+?-----END (?:[A-Z]+ )?PRIVATE KEY-----/;

function heartbeatConfig(values: ClientValues): ClientHeartbeatOptions | undefined {
  const wanted = values.heartbeat || values.interval !== undefined ||
    values.timeout !== undefined || values.ping !== undefined || values.pong !== undefined ||
    values["show-rtt"];
  if (!wanted) return undefined;
  const interval = seconds("--interval", values.interval);
  const timeout = seconds("--timeout", values.timeout);
  const beat: ClientHeartbeatOptions = {
    ...(interval !== undefined ? { interval } : {}),
    ...(timeout !== undefined ? { timeout } : {}),
  };
  // Ping frames unless the user asks for an application probe.
  if (values.ping !== undefined || values.pong !== undefined) {
    const message = values.ping ?? "ping";
    if (message === "") throw new UsageError("--ping expects a non-empty TEXT");
    beat.message = message;
    beat.reply = values.pong ?? message;
  }
  return beat;
}

/**
 * Turns the parsed command line into the client's settings: checks every
 * value, reads the PEM files, and picks the proxy (`--proxy`, or the
 * environment).
 */
export async function clientConfig(values: ClientValues, url: string): Promise<ClientConfig> {
  const format = values["binary-format"] ?? "base64";
  if (format !== "base64" && format !== "hex" && format !== "raw") {
    throw new UsageError(`--binary-format expects base64, hex or raw, got '${format}'`);
  }
  const every = seconds("--every", values.every);
  const send = values.send ?? [];
  if (every !== undefined && send.length === 0) {
    throw new UsageError("--every repeats the -x/--send messages; give at least one with -x");
  }
  if (values.json) {
    send.forEach((message, i) => {
      try {
        JSON.parse(message);
      } catch (error) {
        throw new UsageError(
          `-x message ${i + 1} is not JSON (${(error as Error).message}) and --json is on`,
        );
      }
    });
  }
  const backoff: ClientConfig["backoff"] = {};
  const initialDelay = retryDelay("--backoff-initial", values["backoff-initial"]);
  if (initialDelay !== undefined) backoff.initialDelay = initialDelay;
  const maxDelay = retryDelay("--backoff-max", values["backoff-max"]);
  if (maxDelay !== undefined) backoff.maxDelay = maxDelay;
  if (values["backoff-factor"] !== undefined) {
    const factor = Number(values["backoff-factor"]);
    if (!DECIMAL.test(values["backoff-factor"]) || !(factor >= 1 && factor <= 100)) {
      throw new UsageError(
        `--backoff-factor expects a number from 1 to 100, got '${values["backoff-factor"]}'`,
      );
    }
    backoff.factor = factor;
  }
  const maxRetries = count("--max-retries", values["max-retries"], 0);
  if (maxRetries !== undefined) backoff.maxRetries = maxRetries;

  const href = parseUrl(url);
  const tls = /^(wss|https):/.test(href);
  const headers = (values.header ?? []).map(parseHeader);
  const protocols = parseProtocols(values.protocol ?? []);
  const count_ = count("--count", values.count);
  const heartbeat = heartbeatConfig(values);
  const connectTimeout = seconds("--connect-timeout", values["connect-timeout"]);
  const staleAfter = seconds("--stale-after", values["stale-after"]);
  const wait = seconds("--wait", values.wait, true) ?? 1000;

  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError("--cert and --key go together: the certificate and its private key");
  }
  if (values.cert !== undefined && !tls) {
    throw new UsageError("--cert and --key present a TLS client certificate: use a wss:// URL");
  }
  // The library's reading of the environment (transport/proxy_env.ts), done here so that the
  // status line can name the proxy and a bad one is a usage error; connect() then gets it.
  const proxy = values.proxy ?? proxyFromEnv(new URL(href));
  if (proxy !== undefined) {
    try {
      checkProxyUrl(proxy);
    } catch {
      throw new UsageError(
        `${
          values.proxy !== undefined
            ? "--proxy"
            : tls
            ? "HTTPS_PROXY (or ALL_PROXY)"
            : "HTTP_PROXY (or ALL_PROXY)"
        } expects a proxy URL such as http://user:password@proxy:3128 or socks5h://proxy:1080, got '${
          maskUrl(proxy)
        }'`,
      );
    }
  }
  if (values.origin !== undefined && /[\0\r\n]/.test(values.origin)) {
    throw new UsageError("--origin cannot hold CR, LF or NUL");
  }
  if (proxy !== undefined && values.cert !== undefined) {
    throw new UsageError(
      `--cert cannot go through a proxy (${
        values.proxy !== undefined ? "--proxy" : "from HTTPS_PROXY"
      }): Deno can present a client certificate only on a direct connection${
        values.proxy !== undefined ? "" : "; set NO_PROXY to the server's host name"
      }`,
    );
  }
  const caCerts = values.cacert === undefined
    ? undefined
    : [await readPem("--cacert", values.cacert, PEM_CERT, "CA certificate")];
  const clientCert = values.cert === undefined || values.key === undefined ? undefined : {
    cert: await readPem("--cert", values.cert, PEM_CERT, "certificate"),
    key: await readPem("--key", values.key, PEM_KEY, "private key"),
  };
  return {
    url: href,
    headers,
    protocols,
    caCerts,
    clientCert,
    proxy,
    handshake: {
      maxRedirects: count("--max-redirects", values["max-redirects"], 0),
      origin: values.origin,
    },
    trace: values.trace ?? false,
    compression: !values["no-compression"],
    connectTimeout,
    send,
    every,
    count: count_,
    wait,
    keepOpen: values["keep-open"] ?? false,
    reconnect: (values.reconnect ?? false) || Object.keys(backoff).length > 0,
    backoff,
    staleAfter,
    heartbeat,
    showRtt: values["show-rtt"] ?? false,
    binary: values.binary ?? false,
    json: values.json ?? false,
    binaryFormat: format,
    timestamps: values.timestamps ?? false,
    verbose: values.verbose ?? false,
    quiet: values.quiet ?? false,
    maxLine: DEFAULT_MAX_MESSAGE_SIZE,
  };
}
