// The capabilities of the runtime matrix, written once for every runtime:
// plain TypeScript with no Deno or Node API (only fetch, timers and the
// library), so that the same file runs in Deno, bundled on Node, Bun and in
// Chromium, and as .ts on Bun and Node 24. The library comes in as a
// parameter: the bundle of mod.ts, or mod.ts itself.
//
// Each check throws on a failure; runChecks() turns each into a row cell.
// Where runtimes legitimately differ (the kind of a connect error, whether
// `headers` can be sent), the check reports what it saw in `data` and the
// test compares it with what that runtime is expected to give.

import type * as Wsbeat from "../../mod.ts";

/** The library under test: the namespace of mod.ts, bundled or not. */
export type Library = typeof Wsbeat;

/** The servers the test started for the matrix, on 127.0.0.1. */
export interface MatrixUrls {
  /** `serve()` echoing, answering "ping" with "pong", choosing subprotocol `wsbeat.matrix`. */
  echo: string;
  /** `serve()` answering one message (a "ping"), then silent with TCP open. */
  stall: string;
  /** `serve()` echoing the first message, then closing with 4001 "bye". */
  closing: string;
  /** `serve()` echoing the first message, then cutting TCP (no close frame). */
  dropping: string;
  /** `serve()` that the control server restarts on the same port. */
  restartable: string;
  /** A port nothing listens on. */
  refused: string;
  /** An HTTP server answering 403 to everything. */
  forbidden: string;
  /**
   * The test's control server (CORS open): `POST /restart` closes the
   * restartable server and starts it again 300 ms later; `GET
   * /headers/<token>` tells which `x-wsbeat-matrix` header the echo server
   * saw on path `/headers/<token>`.
   */
  control: string;
}

/** One cell of the matrix. */
export interface CheckResult {
  ok: boolean;
  /** A few words for the table: a figure, a kind, or why it failed. */
  detail: string;
  /** What was seen, for the test's per-runtime expectations. */
  data?: Record<string, unknown>;
}

/** The capabilities, in the table's order. */
export const CAPABILITIES = [
  "connect",
  "text",
  "binary",
  "heartbeat",
  "stall",
  "refused",
  "403",
  "reconnect",
  "close codes",
  "headers",
] as const;

/** A capability of {@linkcode CAPABILITIES}. */
export type Capability = typeof CAPABILITIES[number];

/** The heartbeat bound the stall check uses: a reply, `interval`, then `timeout`. */
export const STALL = { interval: 200, timeout: 400, slack: 100 } as const;
/** How long the restartable server stays down. */
export const OUTAGE_MS = 300;
/** The most any one check may take. */
const CHECK_TIMEOUT = 15_000;

class CheckFailed extends Error {}

function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new CheckFailed(message);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function ms(value: number): string {
  return `${Math.round(value)} ms`;
}

type Client = Wsbeat.WebSocketClient;

/** What a refused connect looked like. */
function connectFailure(lib: Library, error: unknown, elapsed: number): CheckResult {
  expect(error !== undefined, "connect() opened a connection that should have failed");
  expect(
    error instanceof lib.ConnectError,
    `expected a ConnectError, got ${describe(error)}`,
  );
  const status = error.status === undefined ? "" : ` ${error.status}`;
  return {
    ok: true,
    detail: `${error.kind}${status}`,
    data: { kind: error.kind, status: error.status ?? null, message: error.message, ms: elapsed },
  };
}

/**
 * Runs every capability against `urls` and returns one result per
 * capability; never throws. Leaves nothing open.
 */
export async function runChecks(
  lib: Library,
  urls: MatrixUrls,
): Promise<Record<Capability, CheckResult>> {
  const results = {} as Record<Capability, CheckResult>;
  const check = async (name: Capability, body: () => Promise<CheckResult>) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new CheckFailed(`no result within ${CHECK_TIMEOUT} ms`)),
        CHECK_TIMEOUT,
      );
    });
    try {
      results[name] = await Promise.race([body(), deadline]);
    } catch (error) {
      results[name] = {
        ok: false,
        detail: error instanceof CheckFailed ? error.message : describe(error),
      };
    } finally {
      clearTimeout(timer);
    }
  };

  // connect, text and binary share one connection.
  let ws: Client | undefined;
  await check("connect", async () => {
    const started = performance.now();
    ws = await lib.connect(urls.echo, { protocols: ["wsbeat.matrix"] });
    const elapsed = performance.now() - started;
    expect(ws.state === "open", `state is ${ws.state}`);
    expect(ws.protocol === "wsbeat.matrix", `subprotocol is "${ws.protocol}"`);
    return { ok: true, detail: `open in ${ms(elapsed)}`, data: { ms: elapsed } };
  });

  await check("text", async () => {
    expect(ws, "no connection");
    const long = "wsbeat ✓ ".repeat(12_000); // 132 000 bytes: a 64-bit length
    ws.send("héllo ✓");
    ws.send(long);
    const first = await ws.receive();
    const second = await ws.receive();
    expect(first === "héllo ✓", `echoed ${JSON.stringify(first)}`);
    expect(second === long, `the long message came back with ${String(second).length} chars`);
    return { ok: true, detail: "7 B and 132 kB" };
  });

  let closedNormally: Wsbeat.CloseInfo | undefined;
  await check("binary", async () => {
    expect(ws, "no connection");
    const small = new Uint8Array([0, 1, 2, 127, 128, 255]);
    const large = new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff);
    ws.send(small);
    ws.send(large);
    const first = await ws.receive();
    const second = await ws.receive();
    expect(first instanceof Uint8Array && same(first, small), "the 6 bytes came back changed");
    expect(
      second instanceof Uint8Array && same(second, large),
      "the 70 000 bytes came back changed",
    );
    return { ok: true, detail: "6 B and 70 kB" };
  });
  if (ws) closedNormally = await ws.close();

  await check("heartbeat", async () => {
    const rtts: number[] = [];
    const beating = await lib.connect(urls.echo, {
      heartbeat: {
        interval: 20,
        timeout: 2_000,
        message: "ping",
        reply: "pong",
        onBeat: (rtt) => rtts.push(rtt),
      },
    });
    try {
      while (rtts.length < 3) await sleep(10);
      beating.send("after the beats");
      const message = await beating.receive();
      expect(message === "after the beats", `received ${JSON.stringify(message)}, not the echo`);
      const latency = beating.stats.latency;
      expect(latency && latency.samples >= 3, "stats.latency has no samples");
      const avg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
      return {
        ok: true,
        detail: `${rtts.length} probes, rtt ${avg.toFixed(1)} ms`,
        data: { beats: rtts.length, avg },
      };
    } finally {
      await beating.close();
    }
  });

  await check("stall", async () => {
    let lastReply = Number.NaN;
    const stalled = await lib.connect(urls.stall, {
      heartbeat: {
        interval: STALL.interval,
        timeout: STALL.timeout,
        message: "ping",
        reply: "pong",
        onBeat: () => (lastReply = performance.now()),
      },
    });
    const info = await stalled.closed;
    const found = performance.now() - lastReply;
    expect(info.initiator === "heartbeat", `closed by ${info.initiator}, not the heartbeat`);
    expect(info.code === 1006, `close code ${info.code}, expected 1006`);
    expect(info.error?.name === "TooSlowError", `error ${describe(info.error)}`);
    const bound = STALL.interval + STALL.timeout;
    expect(
      found >= bound - 5 && found <= bound + STALL.slack,
      `found ${ms(found)} after the last reply, outside ${bound}-${bound + STALL.slack} ms`,
    );
    return { ok: true, detail: `found in ${ms(found)} (bound ${bound})`, data: { ms: found } };
  });

  await check("refused", async () => {
    const started = performance.now();
    const error = await lib.connect(urls.refused).then(
      async (opened) => void (await opened.close()),
      (e: unknown) => e,
    );
    return connectFailure(lib, error, performance.now() - started);
  });

  await check("403", async () => {
    const started = performance.now();
    const error = await lib.connect(urls.forbidden).then(
      async (opened) => void (await opened.close()),
      (e: unknown) => e,
    );
    const result = connectFailure(lib, error, performance.now() - started);
    // What reconnecting() makes of it: given up at once, after a few tries, or never.
    let retries = 0;
    const loop = lib.reconnecting(urls.forbidden, {
      initialDelay: 10,
      maxDelay: 20,
      maxRetries: 10,
      onRetry: () => retries++,
    });
    const ended = await (async () => {
      for await (const opened of loop) {
        await opened.close();
        return "opened";
      }
      return "ended";
    })().catch((e: unknown) => (e as Error).name);
    result.data = { ...result.data, retries, ended };
    result.detail += `, ${retries} retries`;
    return result;
  });

  await check("reconnect", async () => {
    let opens = 0;
    let retries = 0;
    let lostAt = 0;
    let back = 0;
    let lost: Wsbeat.CloseInfo | undefined;
    for await (
      const opened of lib.reconnecting(urls.restartable, {
        initialDelay: 20,
        maxDelay: 100,
        maxRetries: 100,
        onRetry: () => retries++,
      })
    ) {
      opens++;
      opened.send(`hello ${opens}`);
      const echo = await opened.receive();
      expect(echo === `hello ${opens}`, `echoed ${JSON.stringify(echo)} on connection ${opens}`);
      if (opens === 1) {
        const restart = await fetch(`${urls.control}/restart`, { method: "POST" });
        await restart.body?.cancel();
        expect(restart.ok, `the control server answered ${restart.status}`);
        lost = await opened.closed;
        lostAt = performance.now();
        continue;
      }
      back = performance.now() - lostAt;
      break;
    }
    expect(opens === 2, `${opens} connections`);
    expect(back >= OUTAGE_MS - 50, `back after ${ms(back)}, during a ${OUTAGE_MS} ms outage`);
    return {
      ok: true,
      detail: `back ${ms(back)} after the drop (${lost?.code}), ${retries} retries`,
      data: { ms: back, retries, code: lost?.code },
    };
  });

  await check("close codes", async () => {
    expect(closedNormally, "no connection to close");
    const seen: number[] = [];
    const normal = closedNormally;
    expect(
      normal.code === 1000 && normal.wasClean && normal.initiator === "client",
      `close(): ${JSON.stringify(normal)}`,
    );
    seen.push(normal.code);

    const custom = await lib.connect(urls.echo);
    // The server echoes the code; the reason reported is the server's (none).
    const own = await custom.close(4000, "done here");
    expect(
      own.code === 4000 && own.wasClean && own.initiator === "client",
      `close(4000): ${JSON.stringify({ ...own, error: undefined })}`,
    );
    seen.push(own.code);

    const closing = await lib.connect(urls.closing);
    closing.send("last");
    expect((await closing.receive()) === "last", "no echo before the server's close");
    const rejected = await closing.receive().then(() => undefined, (e: unknown) => e);
    expect(
      rejected instanceof lib.ConnectionClosedError && rejected.code === 4001,
      `receive() after 4001: ${describe(rejected)}`,
    );
    const byServer = await closing.closed;
    expect(
      byServer.code === 4001 && byServer.reason === "bye" && byServer.wasClean &&
        byServer.initiator === "server",
      `server close: ${JSON.stringify({ ...byServer, error: undefined })}`,
    );
    seen.push(byServer.code);

    const dropping = await lib.connect(urls.dropping);
    dropping.send("last");
    expect((await dropping.receive()) === "last", "no echo before the drop");
    const dropped = await dropping.closed;
    expect(
      dropped.code === 1006 && !dropped.wasClean && dropped.initiator === "network",
      `drop: ${JSON.stringify({ ...dropped, error: undefined })}`,
    );
    seen.push(dropped.code);
    return { ok: true, detail: seen.join(" "), data: { codes: seen } };
  });

  await check("headers", async () => {
    const token = Math.random().toString(36).slice(2);
    let opened: Client;
    try {
      opened = await lib.connect(`${urls.echo}/headers/${token}`, {
        headers: { "x-wsbeat-matrix": token },
      });
    } catch (error) {
      // A runtime that cannot send them must say so, naming the option.
      expect(error instanceof TypeError, `connect() threw ${describe(error)}`);
      expect(
        /headers/.test(error.message),
        `the TypeError does not name headers: ${error.message}`,
      );
      return { ok: true, detail: "TypeError", data: { sent: false, message: error.message } };
    }
    await opened.close();
    const answer = await fetch(`${urls.control}/headers/${token}`);
    const seen = await answer.json();
    expect(seen === token, `the server saw x-wsbeat-matrix: ${JSON.stringify(seen)}`);
    return { ok: true, detail: "sent", data: { sent: true } };
  });

  return results;
}
