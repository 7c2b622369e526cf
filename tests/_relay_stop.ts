// What examples/relay.ts does on SIGINT (Ctrl-C, or Deno Deploy evicting the
// instance, with SIGKILL 5 s later), run on a given Deno: its own process
// against `serve()` as the upstream, a browser-like client reading
// /events, then SIGINT. Shared by tests/relay_test.ts (this Deno) and
// tests/runtimes_test.ts (Deno 2.5, Deploy's runtime).
import assert from "node:assert/strict";
import { serve } from "../serve.ts";
import { UPSTREAM_CLOSE_CODE } from "../examples/relay.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** What the relay did once it got SIGINT. */
export interface RelayStop {
  /** The relay's exit code. */
  code: number;
  /** Milliseconds from SIGINT to the process's exit. */
  exitMs: number;
  /** The close code and reason the upstream got. */
  upstreamClose: { code: number; reason: string };
  /** Whether the browser's stream ended (rather than being cut with an error). */
  streamEnded: boolean;
  /** The relay's stderr. */
  stderr: string;
}

/**
 * Runs the relay with `deno` (a path or `"deno"`), connects a stream client,
 * waits for a relayed message, sends SIGINT and reports what followed.
 */
export async function stopRelayWithSigint(deno: string): Promise<RelayStop> {
  const closed = Promise.withResolvers<{ code: number; reason: string }>();
  const opened = Promise.withResolvers<void>();
  await using upstream = serve({
    onConnect: () => opened.resolve(),
    onDisconnect: (_info, code, reason) => closed.resolve({ code, reason }),
  });
  const child = new Deno.Command(deno, {
    args: ["run", "--allow-net=127.0.0.1", "--allow-env", `${ROOT}examples/relay.ts`],
    cwd: ROOT,
    env: { PORT: "0", UPSTREAM_URL: upstream.url, UPSTREAM_SEND_EVERY: "20" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await stdout.read();
      if (done) throw new Error(`the relay did not start:\n${await stderr}`);
      out += value;
    }
    const url = /listening (\S+)/.exec(out)?.[1];
    assert.ok(url, `unexpected first line: ${out}`);
    await opened.promise;

    // A browser's EventSource, as far as the relay can tell: read until a tick arrives.
    const response = await fetch(`${url}events`);
    const events = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes('\ndata: {"tick"')) {
      const { value, done } = await events.read();
      if (done) throw new Error(`the stream ended before a tick:\n${text}`);
      text += value;
    }
    const signalled = performance.now();
    child.kill("SIGINT");
    let streamEnded = false;
    try {
      while (!(await events.read()).done) { /* what was on its way */ }
      streamEnded = true;
    } catch { /* cut: streamEnded stays false */ }
    const { code } = await child.status;
    const exitMs = performance.now() - signalled;
    return {
      code,
      exitMs,
      upstreamClose: await closed.promise,
      streamEnded,
      stderr: await stderr,
    };
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* it has exited */ }
    await stdout.cancel().catch(() => {});
    await child.status;
    await stderr;
  }
}

/** Asserts what the relay must do on SIGINT: see docs/deploy.md. */
export function assertCleanStop(stop: RelayStop): void {
  assert.deepEqual(stop.upstreamClose, { code: UPSTREAM_CLOSE_CODE, reason: "relay going away" });
  assert.equal(stop.streamEnded, true, "the browser's stream ended cleanly");
  assert.equal(stop.code, 0, `exit code; stderr:\n${stop.stderr}`);
  assert.ok(stop.exitMs < 2_500, `exited ${Math.round(stop.exitMs)} ms after SIGINT`);
  assert.match(stop.stderr, /SIGINT: ending the browsers' streams and closing the upstream/);
}
