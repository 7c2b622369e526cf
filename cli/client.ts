/**
 * The client command: connect (once, or again and again with
 * `--reconnect`), print what arrives, send what the user gives, and turn how
 * it ended into one status line and an exit code.
 *
 * @module
 */

import {
  type CloseInfo,
  connect,
  ConnectError,
  ConnectionClosedError,
  type ConnectOptions,
  type Message,
  ProtocolError,
  ReconnectError,
  reconnecting,
  sleep,
  StaleFeedError,
  TooSlowError,
  type WebSocketClient,
} from "../mod.ts";
import { DEFAULT_CLOSE_TIMEOUT } from "../client/options.ts";
import type { ClientConfig } from "./args.ts";
import {
  cliWords,
  describeClose,
  errorLine,
  ExitCode,
  formatDuration,
  formatTrace,
  type Io,
  maskHeader,
  maskUrl,
  OutputError,
  paint,
  plural,
  printMessage,
  statusLine,
} from "./output.ts";
import { runSlash, SLASH_HELP } from "./slash.ts";
import { INPUT_QUEUE_LIMIT, InputFeed, prepareLine, readLineBytes } from "./stdin.ts";

/** How a session ended. */
type Ending =
  | "done" // input over and --wait passed, or --count reached
  | "closed" // the connection closed (by the server, the heartbeat, or the network)
  | "quit" // /quit or /close typed
  | "output" // stdout failed
  | "interrupted"; // Ctrl-C or SIGTERM

/** What every connection of a run shares. */
interface Run {
  io: Io;
  config: ClientConfig;
  feed: InputFeed | undefined;
  received: number;
  refused: number;
  status: (text: string) => void;
  /** The latest message that arrived and was not a heartbeat reply, for a wrong --pong. */
  lastArrived: { message: Message; at: number } | undefined;
  /** The latest echo of an application probe. */
  lastEcho: { message: Message; at: number } | undefined;
  outputError: OutputError | undefined;
  interruptCode: () => number;
  /** The user typed /quit or /close: the run ends, whatever else happens. */
  quit: boolean;
  /** Told when the run starts and stops waiting for the server's close (for Ctrl-C). */
  onCloseWait: (waiting: boolean) => void;
}

/** How one connection ended: why the session stopped, and the close as the library saw it. */
interface Closed {
  ending: Ending;
  info: CloseInfo;
  /** Its URL, credentials masked. */
  url: string;
  /** How long it stayed open, in milliseconds. */
  uptime: number;
}

/** A close that is still being waited for after this long is said on stderr. */
const CLOSE_WAIT_NOTE_AFTER = 250;

/**
 * Runs the client and returns the exit code.
 *
 * @param interruptCode The exit code for an interruption (130 Ctrl-C, 143 SIGTERM).
 * @param onCloseWait Told when a close starts and stops waiting for the
 *   server's answer, so that a Ctrl-C then quits at once.
 */
export async function runClient(
  io: Io,
  config: ClientConfig,
  signal: AbortSignal,
  interruptCode: () => number,
  onCloseWait: (waiting: boolean) => void = () => {},
): Promise<number> {
  const status = (text: string) => config.quiet || statusLine(io, text);
  if (config.verbose) {
    status(
      `connecting to ${maskUrl(config.url)}` +
        (config.proxy ? ` through the proxy ${maskUrl(config.proxy)}` : ""),
    );
    for (const [name, value] of config.headers) status(`  ${maskHeader(name, value)}`);
    if (config.protocols.length) status(`  subprotocols: ${config.protocols.join(", ")}`);
  }
  const beat = config.heartbeat;
  const options: ConnectOptions = {
    signal,
    ...(config.headers.length ? { headers: config.headers } : {}),
    ...(config.protocols.length ? { protocols: config.protocols } : {}),
    ...(config.caCerts ? { caCerts: config.caCerts } : {}),
    ...(config.clientCert ?? {}),
    proxy: config.proxy ?? null, // args.ts read the environment: connect() need not again
    ...config.handshake, // maxRedirects, origin
    trace: config.trace ? (event) => io.stderr(formatTrace(io, event)) : undefined,
    ...(config.compression ? {} : { compression: false }),
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
  const run: Run = {
    io,
    config,
    feed: undefined,
    received: 0,
    refused: 0,
    status,
    lastArrived: undefined,
    lastEcho: undefined,
    outputError: undefined,
    interruptCode,
    quit: false,
    onCloseWait,
  };
  if (config.send.length === 0) {
    const rules = { ...config, slash: Deno.stdin.isTerminal() };
    run.feed = new InputFeed(readLineBytes(Deno.stdin.readable, config.maxLine), {
      prepare: (line, n) => {
        const item = prepareLine(rules, line, n);
        if (typeof item === "object" && "refused" in item) {
          errorLine(io, item.refused);
          run.refused++;
          return undefined;
        }
        return item;
      },
      onFull: () =>
        status(
          `input queue full (${INPUT_QUEUE_LIMIT} lines) while disconnected; not reading stdin until it drains`,
        ),
    });
    if (rules.slash) status(`type a line to send it; ${SLASH_HELP}; Ctrl-D closes, Ctrl-C quits`);
  }
  return finish(run, await (config.reconnect ? reconnectLoop : once)(run, options, signal));
}

/** The exit code, once refused input and stdout failures are accounted for. */
function finish(run: Run, code: number): number {
  const failure = run.outputError;
  if (failure && !failure.broken) {
    errorLine(run.io, failure.message);
    return ExitCode.Failed;
  }
  return code === ExitCode.Ok && run.refused > 0 ? ExitCode.Failed : code;
}

async function once(run: Run, options: ConnectOptions, signal: AbortSignal): Promise<number> {
  const { io, config } = run;
  let ws: WebSocketClient;
  try {
    ws = await connect(config.url, options);
  } catch (error) {
    if (signal.aborted) return run.interruptCode();
    return connectFailure(io, config, error);
  }
  return report(run, await connection(run, ws, signal));
}

/**
 * The exit code of a connection's end, from its {@linkcode CloseInfo}: who
 * closed first, with which code and error. The session's ending only tells
 * whether a close wsbeat made was the user's (Ctrl-C: 130 or 143).
 */
function exitCodeOf(run: Run, { ending, info }: Closed): number {
  switch (info.initiator) {
    case "heartbeat":
      return ExitCode.Heartbeat;
    case "network":
      return ExitCode.Failed;
    case "server":
      if (![1000, 1001, 1005].includes(info.code) || info.error) return ExitCode.Failed;
      break;
    case "client":
      // wsbeat failed the connection: the server broke the protocol, or the feed went quiet.
      if (info.error instanceof ProtocolError || info.error instanceof StaleFeedError) {
        return ExitCode.Failed;
      }
      // The user's own close (/quit, /close, Ctrl-C) is not a failure even if the server never answered it.
      if (info.error && ending !== "quit" && ending !== "interrupted" && ending !== "output") {
        return ExitCode.Failed;
      }
  }
  return ending === "interrupted" ? run.interruptCode() : ExitCode.Ok;
}

/** Reports how a connection ended, each cause once (a status line, or an error line), and returns the exit code. */
function report(run: Run, closed: Closed): number {
  const code = exitCodeOf(run, closed);
  const stayed = `the connection stayed open for ${formatDuration(closed.uptime)}`;
  if (code === ExitCode.Heartbeat) {
    errorLine(run.io, `${heartbeatFailure(run, closed)}; ${stayed}`);
  } else if (code === ExitCode.Failed) {
    errorLine(run.io, `${describeClose(closed.info)} (${closed.url}); ${stayed}`);
  } else run.status(`${describeClose(closed.info)}; ${stayed}`);
  return code;
}

async function reconnectLoop(
  run: Run,
  options: ConnectOptions,
  signal: AbortSignal,
): Promise<number> {
  const { io, config, status } = run;
  // When the connection was lost: its close, or the first failed attempt.
  // "reconnected after" counts from there, detection to the new connection.
  let lostAt: number | undefined;
  // The last connection's end, reported once: in the retry line, or in the error that ends the loop.
  let last: Closed | undefined;
  const maxRetries = config.backoff.maxRetries;
  try {
    for await (
      const ws of reconnecting(config.url, {
        ...options,
        ...config.backoff,
        onRetry: ({ attempt, retry, delay, reason }) => {
          lostAt ??= performance.now();
          const why = "code" in reason ? describeClose(reason) : cliWords(reason.message);
          last = undefined;
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
      const closed = await connection(run, ws, signal);
      // The user's decision (/quit, /close, Ctrl-C, --count reached, stdin over): the run ends here.
      if (closed.ending !== "closed") return report(run, closed);
      last = closed;
    }
    return signal.aborted ? run.interruptCode() : ExitCode.Ok;
  } catch (error) {
    if (error instanceof ConnectionClosedError && last) {
      errorLine(
        io,
        `${describeClose(last.info)} (${last.url}); the connection stayed open for ${
          formatDuration(last.uptime)
        }; not reconnecting: --reconnect does not retry this close (see --help)`,
      );
      return ExitCode.Failed;
    }
    if (error instanceof ReconnectError && last) {
      errorLine(
        io,
        `gave up reconnecting to ${error.url} after ${
          plural(error.retries, "retry", "retries")
        } in a row (--max-retries): ${describeClose(last.info)}`,
      );
      return ExitCode.Failed;
    }
    if (error instanceof ReconnectError || error instanceof ConnectionClosedError) {
      errorLine(io, cliWords(error.message));
      return ExitCode.Failed;
    }
    return connectFailure(io, config, error);
  }
}

function connectFailure(io: Io, config: ClientConfig, error: unknown): number {
  const denied = (e: unknown) =>
    e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied;
  if (error instanceof ConnectError && !denied(error.cause)) {
    errorLine(io, cliWords(error.message));
    return ExitCode.Failed;
  }
  if (denied(error) || (error instanceof ConnectError && denied(error.cause))) {
    const { host } = new URL(config.proxy ?? config.url);
    errorLine(
      io,
      `no permission to connect to ${
        maskUrl(config.proxy ?? config.url)
      }; run deno with --allow-net=${host} (or -A)`,
    );
    return ExitCode.Failed;
  }
  if (
    error instanceof TypeError || error instanceof RangeError ||
    (error instanceof DOMException && error.name === "SyntaxError")
  ) {
    // An option the checks of the command line let through, refused by the library.
    errorLine(io, cliWords(error.message));
    return ExitCode.Usage;
  }
  throw error;
}

function preview(message: Message): string {
  if (typeof message !== "string") return `a binary message of ${message.length} B`;
  const text = message.length > 60 ? `${message.slice(0, 60)}...` : message;
  return JSON.stringify(text);
}

/** The error line of a heartbeat failure: what was expected, and what arrived instead. */
function heartbeatFailure(run: Run, { info, url }: Closed): string {
  const beat = run.config.heartbeat;
  const timeout = info.error instanceof TooSlowError ? info.error.timeout : beat?.timeout ?? 5_000;
  const within = `within ${formatDuration(timeout)} (--timeout)`;
  if (beat?.message === undefined) {
    return `heartbeat timeout: no reply to a ping frame ${within}; the server at ${url} stopped answering`;
  }
  const probe = JSON.stringify(beat.message);
  const recent = (arrival: Run["lastArrived"]) =>
    arrival !== undefined && performance.now() - arrival.at <= 2 * timeout + 100;
  const expected = `heartbeat timeout: no reply ${
    JSON.stringify(beat.reply)
  } (--pong) to ${probe} ${within}`;
  if (recent(run.lastEcho)) {
    return `${expected}; the server sent the probe back instead (an echo server?): check --pong`;
  }
  if (recent(run.lastArrived)) {
    return `${expected}; the server did send messages (the latest: ${
      preview(run.lastArrived!.message)
    }): check --pong`;
  }
  return `heartbeat timeout: no reply to ${probe} ${within}; the server at ${url} stopped answering`;
}

/**
 * One connection: report it, run its session, close it. How it ended is
 * reported by the caller, once.
 */
async function connection(run: Run, ws: WebSocketClient, signal: AbortSignal): Promise<Closed> {
  const { config, status } = run;
  const beat = config.heartbeat;
  const url = maskUrl(ws.url);
  status(
    `connected to ${url} in ${formatDuration(ws.stats.openMs ?? 0)}` +
      (ws.protocol ? ` (subprotocol ${ws.protocol})` : "") +
      (beat
        ? `; heartbeat every ${formatDuration(beat.interval ?? 10_000)}, timeout ${
          formatDuration(beat.timeout ?? 5_000)
        }`
        : ""),
  );
  let ending = await session(run, ws, signal);
  if (run.quit) ending = "quit";
  const info = await closeSaying(run, ws, signal);
  const after = ws.stats;
  if (config.verbose) {
    status(
      `  sent ${plural(after.messagesSent, "message")} (${after.bytesSent} B), received ${
        plural(after.messagesReceived, "message")
      } (${after.bytesReceived} B)`,
    );
    const l = after.latency;
    if (l) {
      status(
        `  rtt last ${formatDuration(l.last)}, min ${formatDuration(l.min)}, avg ${
          formatDuration(l.avg)
        }, p99 ${formatDuration(l.p99)} over ${plural(l.samples, "beat")}`,
      );
    }
  }
  return { ending, info, url, uptime: after.uptimeMs };
}

/**
 * Closes `ws` (at once if it is closed already). A close still unanswered
 * after {@linkcode CLOSE_WAIT_NOTE_AFTER} ms is said on stderr, with how
 * long it may last and that Ctrl-C quits: from then on the first Ctrl-C, or
 * the second one after an interruption, exits at once.
 */
async function closeSaying(run: Run, ws: WebSocketClient, signal: AbortSignal): Promise<CloseInfo> {
  const closing = ws.close().catch(() => ws.closed);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), CLOSE_WAIT_NOTE_AFTER);
  });
  const first = await Promise.race([closing, late]);
  clearTimeout(timer);
  if (first !== "late") return first;
  run.onCloseWait(true);
  try {
    run.status(
      `waiting up to ${DEFAULT_CLOSE_TIMEOUT / 1000} s for the server's close; Ctrl-C ${
        signal.aborted ? "again " : ""
      }to quit`,
    );
    return await closing;
  } finally {
    run.onCloseWait(false);
  }
}

/**
 * One connection's traffic: print what arrives, send what the user gives.
 * Ends when --count is reached, when the connection closes (and every message
 * was printed), when input is over and --wait has passed, on /quit, when
 * stdout fails, or on Ctrl-C.
 */
async function session(run: Run, ws: WebSocketClient, signal: AbortSignal): Promise<Ending> {
  const { io, config } = run;
  const done = new AbortController();
  const stop = AbortSignal.any([signal, done.signal]);
  const openedAt = ws.stats.openedAt ?? Date.now();
  // An application probe's echo (the server sent the probe back) is heartbeat traffic too.
  const probe = typeof config.heartbeat?.message === "string"
    ? config.heartbeat.message
    : undefined;

  const reading = (async (): Promise<Ending> => {
    for await (const message of ws) {
      if (probe !== undefined && message === probe) {
        run.lastEcho = { message, at: performance.now() };
        continue;
      }
      run.lastArrived = { message, at: performance.now() };
      try {
        printMessage(io, config, message, Date.now() - openedAt);
      } catch (error) {
        if (!(error instanceof OutputError)) throw error;
        run.outputError = error;
        return "output";
      }
      if (config.count !== undefined && ++run.received >= config.count) return "done";
    }
    return "closed";
  })().catch((): Ending => "closed");

  const writing = (async (): Promise<Ending> => {
    const ended = await sendInput(run, ws, stop);
    if (ended) return ended;
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

/**
 * Sends the -x messages (again every --every), or the queued stdin lines,
 * each after the previous one was written out (`drain()`), so a fast sender
 * to a slow or stalled server waits instead of filling memory.
 */
async function sendInput(
  run: Run,
  ws: WebSocketClient,
  stop: AbortSignal,
): Promise<Ending | undefined> {
  const { config, feed } = run;
  if (!feed) {
    while (!stop.aborted) {
      for (const message of config.send) {
        ws.send(message);
        await ws.drain({ signal: stop });
      }
      if (config.every === undefined) return;
      await sleep(config.every, { signal: stop });
    }
    return;
  }
  while (true) {
    const item = await feed.peek(stop);
    if (item === undefined) return;
    if (typeof item === "object" && !(item instanceof Uint8Array)) {
      feed.shift();
      const onQuit = () => (run.quit = true);
      if (await runSlash(run.io, ws, item, stop, onQuit) === "quit") return "quit";
      continue;
    }
    ws.send(item); // throws if the connection closed: the line stays queued for the next one
    feed.shift();
    await ws.drain({ signal: stop });
  }
}
