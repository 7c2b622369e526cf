// The Deploy relay (examples/relay.ts), run as a Deploy script would be: its
// own process, configured by environment variables, against `serve()` as
// the upstream; its page opened in headless Chromium (the matrix's
// browser, installed on first use), and /events and /health read from here.
import assert from "node:assert/strict";
import { serve } from "../serve.ts";
import { Relay } from "../examples/relay.ts";
import type { Health } from "../examples/relay.ts";
import { openBrowser } from "./matrix/browser_client.ts";
import { assertCleanStop, stopRelayWithSigint } from "./_relay_stop.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const RELAY = `${ROOT}examples/relay.ts`;
/** The relay sends a tick every this many ms; the echo server answers each. */
const TICK_MS = 20;
/** Replies on a connection before the upstream drops it (first) or stalls (second). */
const FAULT_AFTER = 100;
/** Rounds of 200 SSE clients that connect, read a message and leave. */
const ROUNDS = 6;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `read` until `done` holds, or fails after `ms`. */
async function until<T>(
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  ms = 10_000,
): Promise<T> {
  const deadline = performance.now() + ms;
  while (true) {
    const value = await read();
    if (done(value)) return value;
    if (performance.now() > deadline) {
      throw new Error(`${what}: not within ${ms} ms; last ${JSON.stringify(value)}`);
    }
    await sleep(25);
  }
}

/**
 * The relay as its own process; resolves once it listens. With `gcOften`,
 * its heap is collected every 100 ms (tests/_gc_often.ts), so that /health
 * reports about what is live.
 */
async function startRelay(env: Record<string, string>, options: { gcOften?: boolean } = {}) {
  const gc = options.gcOften
    ? ["--v8-flags=--expose-gc", `--preload=${ROOT}tests/_gc_often.ts`]
    : [];
  const child = new Deno.Command("deno", {
    args: ["run", "--allow-net=127.0.0.1", "--allow-env", ...gc, RELAY],
    cwd: ROOT,
    env: { PORT: "0", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`the relay did not start:\n${await stderr}`);
    out += value;
  }
  const url = /listening (\S+)/.exec(out)?.[1];
  assert.ok(url, `unexpected first line: ${out}`);
  return {
    url,
    health: async (): Promise<Health> => (await fetch(`${url}health`)).json(),
    async [Symbol.asyncDispose]() {
      child.kill("SIGTERM");
      await lines.cancel();
      await child.status;
      await stderr;
    },
  };
}

interface SseEvent {
  id?: number;
  event: string;
  data: string;
  /** When it arrived, `performance.now()`. */
  at: number;
}

/** Reads an SSE stream into `events` until `signal` aborts. */
async function collect(url: string, events: SseEvent[], signal: AbortSignal): Promise<void> {
  const response = await fetch(url, { signal });
  let buffered = "";
  try {
    for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      let end;
      while ((end = buffered.indexOf("\n\n")) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const event: SseEvent = { event: "message", data: "", at: performance.now() };
        const data: string[] = [];
        for (const line of block.split("\n")) {
          const [field, value] = [
            line.slice(0, line.indexOf(":")),
            line.slice(line.indexOf(":") + 2),
          ];
          if (field === "id") event.id = Number(value);
          else if (field === "event") event.event = value;
          else if (field === "data") data.push(value);
        }
        if (data.length === 0) continue; // retry: or a keepalive comment
        event.data = data.join("\n");
        events.push(event);
      }
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  }
}

Deno.test("examples/relay.ts relays the upstream to a page in Chromium and survives a drop and a stall", async () => {
  let drops = 0;
  let stalls = 0;
  await using upstream = serve({
    dropAfter: () => (++drops === 1 ? FAULT_AFTER : Infinity), // the first connection
    stallAfter: () => (++stalls === 2 ? FAULT_AFTER : Infinity), // the second
  });
  await using relay = await startRelay({
    UPSTREAM_URL: upstream.url,
    UPSTREAM_SEND_EVERY: String(TICK_MS),
    HEARTBEAT_INTERVAL: "200",
    HEARTBEAT_TIMEOUT: "400",
    RECONNECT_INITIAL_DELAY: "50",
    RECONNECT_MAX_DELAY: "200",
  });
  await using browser = await openBrowser();
  const stop = new AbortController();
  const events: SseEvent[] = [];
  const collecting = collect(`${relay.url}events`, events, stop.signal);
  try {
    await browser.goto(relay.url);
    const shown = () =>
      browser.evaluate<number>(`Number(document.getElementById("count").textContent)`);
    await until("messages in the page", shown, (n) => n >= 20);
    const first = await browser.evaluate<string>(`document.querySelector("#log li").textContent`);
    assert.match(first, /^\{"tick":\d+\}$/);

    // The drop (after 100 replies) and the stall (100 replies later) pass; watch each outage.
    const outages: number[] = [];
    let last: Health | undefined;
    await until(
      "two reconnects, and messages again",
      async () => {
        last = await relay.health();
        const outage = last.upstream.lastOutageMs;
        if (outage !== null && outages.length < last.upstream.reconnects) outages.push(outage);
        return last;
      },
      (h) => h.upstream.reconnects >= 2 && h.ok && (h.upstream.lastMessageAgeMs ?? 1e9) < 100,
      20_000,
    );
    const before = await shown();
    await until("messages in the page after the reconnects", shown, (n) => n >= before + 20);
    const page = await browser.evaluate<{ status: string; reconnects: string }>(
      `({ status: document.getElementById("status").textContent,
          reconnects: document.getElementById("reconnects").textContent })`,
    );
    assert.deepEqual(page, { status: "open", reconnects: "2" });
    const health = await relay.health();
    assert.equal(health.upstream.status, "open");
    assert.equal(health.upstream.reconnects, 2);
    assert.ok(health.upstream.latencyMs !== null, "heartbeat latency in /health");
    assert.match(health.upstream.lastError ?? "", /TooSlowError|heartbeat|no reply|pong/i);

    // Every message the relay got reached this client, in order, ids without a gap.
    stop.abort();
    await collecting;
    const messages = events.filter((e) => e.event === "message");
    const ids = messages.map((e) => e.id!);
    assert.deepEqual(ids, ids.map((_, i) => ids[0]! + i), "event ids without a gap");
    const ticks = messages.map((e) => JSON.parse(e.data).tick as number);
    assert.ok(ticks.every((t, i) => i === 0 || t > ticks[i - 1]!), "ticks in order");
    const statuses = events.filter((e) => e.event === "status").map((e) => JSON.parse(e.data));
    assert.ok(statuses.some((s) => s.status !== "open"), "the outage was announced");
    // The two silences in the stream: the drop (reconnect only) and the stall (the
    // heartbeat's 200 + 400 ms bound, then the reconnect).
    const gaps = messages.slice(1).map((e, i) => e.at - messages[i]!.at).sort((a, b) => b - a);
    assert.ok(gaps[0]! < 200 + 400 + 500, `the longest silence lasted ${Math.round(gaps[0]!)} ms`);
    console.log(
      `relay: ${messages.length} messages delivered to an SSE client across a drop and a stall, ` +
        `ids without a gap (ticks ${ticks[0]}..${ticks.at(-1)}; ` +
        `${
          ticks.at(-1)! - ticks[0]! + 1 - ticks.length
        } ticks sent into the faults got no echo); ` +
        `longest silences in the stream ${Math.round(gaps[0]!)} ms (stall) and ` +
        `${Math.round(gaps[1]!)} ms (drop); /health outages (lost to open) ${
          outages.join(" ms and ")
        } ms; the page showed ${await shown()} messages, status ${page.status}, ` +
        `${page.reconnects} reconnects`,
    );
  } finally {
    stop.abort();
    await collecting.catch(() => {});
  }
});

Deno.test("examples/relay.ts stays flat with 200 SSE clients connecting and leaving", async () => {
  await using upstream = serve();
  await using relay = await startRelay({
    UPSTREAM_URL: upstream.url,
    UPSTREAM_SEND_EVERY: String(TICK_MS),
  }, { gcOften: true });
  await until("the upstream", relay.health, (h) => h.ok && h.upstream.messages > 0);
  const round = async () => {
    await Promise.all(Array.from({ length: 200 }, async () => {
      const response = await fetch(`${relay.url}events`);
      const reader = response.body!.getReader();
      let text = "";
      while (!text.includes('\ndata: {"tick"')) {
        const { value, done } = await reader.read();
        if (done) throw new Error("the stream ended");
        text += new TextDecoder().decode(value);
      }
      await reader.cancel();
    }));
    await until("every client gone", relay.health, (h) => h.clients.connected === 0);
    await sleep(300); // a few collections (every 100 ms) with little allocation meanwhile
    return await relay.health();
  };
  const start = await relay.health();
  const samples: Health[] = [];
  for (let i = 0; i < ROUNDS; i++) samples.push(await round());
  const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
  const warm = samples[0]!.memory!;
  const end = samples.at(-1)!.memory!;
  console.log(
    `relay memory, ${ROUNDS} rounds of 200 SSE clients: rss ${
      mib(start.memory!.rssBytes)
    } MiB at start, ` +
      `${mib(warm.rssBytes)} after the first round, ${mib(end.rssBytes)} after the last; ` +
      `heap ${mib(start.memory!.heapUsedBytes)} -> ${mib(warm.heapUsedBytes)} -> ${
        mib(end.heapUsedBytes)
      } MiB; rss by round ${
        samples.map((s) => mib(s.memory!.rssBytes)).join(", ")
      }; heap by round ${samples.map((s) => mib(s.memory!.heapUsedBytes)).join(", ")}`,
  );
  assert.equal(samples.at(-1)!.clients.served, ROUNDS * 200);
  assert.equal(samples.at(-1)!.clients.dropped, 0);
  // The heap is what the relay keeps: flat. RSS also holds what the runtime and the allocator
  // keep (a bare Deno.serve with streams grows as much here), so its bound is looser.
  assert.ok(end.heapUsedBytes - warm.heapUsedBytes < 1048576, "heap grew by 1 MiB or more");
  assert.ok(end.rssBytes - warm.rssBytes < 24 * 1048576, "rss grew by 24 MiB or more");
});

Deno.test("Relay drops a browser that does not read once its buffer is full, and keeps the others", async () => {
  await using upstream = serve();
  await using relay = new Relay({
    upstreamUrl: upstream.url,
    upstreamSend: "tick {n} ".padEnd(200, "."),
    upstreamSendEvery: 2,
    heartbeatInterval: 10_000,
    heartbeatTimeout: 5_000,
    staleAfter: Infinity,
    reconnectInitialDelay: 1_000,
    reconnectMaxDelay: 30_000,
    clientBufferBytes: 4096,
    maxClients: 10,
  });
  const slow = relay.handler(new Request("http://relay.test/events"));
  const fast = relay.handler(new Request("http://relay.test/events")).body!.getReader();
  let read = 0;
  const reading = (async () => {
    while (true) {
      const { value, done } = await fast.read();
      if (done) return;
      read += value.byteLength;
    }
  })();
  await until(
    "the slow browser dropped",
    () => Promise.resolve(relay.health()),
    (h) => h.clients.dropped === 1,
  );
  const health = relay.health();
  assert.equal(health.clients.connected, 1);
  assert.ok(read > 4096, `the reading browser got ${read} bytes`);
  // What it had waiting is bounded by the buffer; then the stream errors.
  const reader = slow.body!.getReader();
  let waiting = 0;
  const error = await (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return undefined;
      waiting += value.byteLength;
    }
  })().catch((e: unknown) => e);
  assert.ok(waiting <= 4096, `${waiting} bytes waited for the slow browser`);
  assert.match(String(error), /dropped: over 4096 bytes waiting \(CLIENT_BUFFER_BYTES\)/);
  await relay.close();
  await reading;
});

Deno.test("examples/relay.ts on SIGINT ends the browsers' streams, closes the upstream and exits 0", async () => {
  const stop = await stopRelayWithSigint("deno");
  assertCleanStop(stop);
  console.log(
    `relay: exited ${Math.round(stop.exitMs)} ms after SIGINT; upstream closed with ` +
      `${stop.upstreamClose.code} "${stop.upstreamClose.reason}"`,
  );
});
