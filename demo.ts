/**
 * `wsbeat demo`: the experiment that motivates wsbeat, offline, in about 15 s.
 *
 * 1. A server drops a client that sends nothing (the seed trading API does it
 *    after 30 s; here after 3 s).
 * 2. The same server keeps a heartbeating client well past that limit.
 * 3. A server that stops answering, with its TCP connection still open, is
 *    found by the heartbeat within `interval + timeout`.
 *
 * Deno only (it starts the echo server from `serve.ts`).
 *
 * @module
 */

import { connect, sleep, type WebSocketClient } from "./mod.ts";
import { serve } from "./serve.ts";

/** Options for {@linkcode demo}. */
export interface DemoOptions {
  /** Where the narrative goes. */
  write: (text: string) => void;
  /** Stops the demo early (Ctrl-C); it then returns 130. */
  signal?: AbortSignal;
  /**
   * The server's idle limit in ms; the heartbeat interval and timeout are a
   * third of it, and the heartbeat part lasts seven intervals.
   *
   * @default {3000}
   */
  idleTimeout?: number;
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const ms = (value: number) => `${value.toFixed(2)} ms`;

/**
 * Runs the demo and returns the exit code: 0 when each part showed what it
 * should, 1 otherwise, 130 when interrupted.
 *
 * @param options Where to write, and a signal to stop early.
 * @returns The exit code.
 */
export async function demo(options: DemoOptions): Promise<number> {
  const { write, signal } = options;
  const idle = options.idleTimeout ?? 3_000;
  const interval = Math.round(idle / 3);
  const timeout = Math.round(idle / 3);
  const line = (text = "") => write(text + "\n");
  const clients: WebSocketClient[] = [];
  const interrupted = new Promise<"interrupted">((resolve) => {
    if (signal?.aborted) resolve("interrupted");
    signal?.addEventListener("abort", () => resolve("interrupted"), { once: true });
  });
  const orStop = <T>(promise: Promise<T>) => Promise.race([promise, interrupted]);
  /** Connects with the demo's heartbeat: "ping", answered by "pong". */
  const beatingClient = (url: string, onBeat: (rtt: number) => void) =>
    connect(url, { signal, heartbeat: { interval, timeout, reply: "pong", onBeat } });

  line("wsbeat demo: why a WebSocket client needs a heartbeat");
  line();
  await using idleServer = serve({ idleTimeout: idle, pong: { ping: "ping", pong: "pong" } });
  await using stallServer = serve({ stallAfter: 3, closeTimeout: 100 });
  try {
    // 1. No heartbeat: the server drops the silent client.
    line(`1. A server that drops idle clients`);
    line(
      `   The echo server at ${idleServer.url} closes a client that sends nothing for ${s(idle)},`,
    );
    line(`   as real servers do (the seed trading API: 30 s). Connecting without a heartbeat...`);
    const quiet = await connect(idleServer.url, { signal });
    clients.push(quiet);
    line(`   connected in ${ms(quiet.stats.openMs ?? 0)}; sending nothing`);
    const first = await orStop(quiet.closed);
    if (first === "interrupted") return 130;
    const ok1 = first.initiator === "server" && first.reason === "idle timeout";
    line(
      `   the server closed the connection (${first.code} ${JSON.stringify(first.reason)}) after ${
        s(quiet.stats.uptimeMs)
      } open`,
    );
    line();

    // 2. With a heartbeat: the connection outlives the idle limit.
    const hold = 7 * interval;
    line(`2. The same server, with a heartbeat`);
    line(
      `   Each beat sends "ping", fails after ${s(timeout)} without a "pong", then sleeps ${
        s(interval)
      }.\n   An application message: like the seed's, this server counts only messages as activity.`,
    );
    let beats = 0;
    const beating = await beatingClient(
      idleServer.url,
      (rtt) => line(`   beat ${++beats}: pong after ${ms(rtt)}`),
    );
    clients.push(beating);
    line(`   connected in ${ms(beating.stats.openMs ?? 0)}`);
    const held = await Promise.race([
      sleep(hold, { signal }).then(() => "held" as const, () => "interrupted" as const),
      beating.closed,
    ]);
    if (held === "interrupted") return 130;
    const ok2 = held === "held" && beating.state === "open";
    const latency = beating.stats.latency;
    line(
      ok2
        ? `   still open after ${s(beating.stats.uptimeMs)}, ${
          (beating.stats.uptimeMs / idle).toFixed(1)
        }x the idle limit`
        : `   unexpectedly closed: ${JSON.stringify(held)}`,
    );
    if (latency) {
      line(
        `   round trips: min ${ms(latency.min)}, avg ${ms(latency.avg)}, p99 ${
          ms(latency.p99)
        } over ${latency.samples} beats`,
      );
    }
    await beating.close();
    line(`   closed by us with 1000`);
    line();

    // 3. A dead peer: the heartbeat's ping frames find it.
    line(`3. A server that stops answering`);
    line(
      `   This server answers 3 messages, then nothing at all (no echo, no pong, no close), while`,
    );
    line(
      `   its TCP connection stays open: to the socket it looks alive, and without a heartbeat a`,
    );
    line(
      `   client would wait forever. Now each beat is a ping frame, which every server answers;`,
    );
    line(`   after each pong the client sends one message.`);
    let lastReply = 0;
    let replies = 0;
    let doomed: WebSocketClient | undefined = undefined;
    doomed = await connect(stallServer.url, {
      signal,
      heartbeat: {
        interval,
        timeout,
        onBeat: (rtt) => {
          lastReply = performance.now();
          line(`   beat ${++replies}: pong frame after ${ms(rtt)}; sending message ${replies}`);
          doomed?.send(`message ${replies}`);
        },
      },
    });
    clients.push(doomed);
    const end = await orStop(doomed.closed);
    if (end === "interrupted") return 130;
    const found = performance.now() - lastReply;
    const bound = interval + timeout;
    const ok3 = end.initiator === "heartbeat" && end.error?.name === "TooSlowError";
    line(`   ${end.error?.name}: ${end.error?.message}`);
    line(
      `   found ${s(found)} after the last pong; the bound is interval + timeout = ${s(bound)}; ` +
        `the connection was closed at once (${end.code}, initiator ${end.initiator})`,
    );
    line();

    const ok = ok1 && ok2 && ok3;
    line(
      ok
        ? "Without a heartbeat, a silent client is dropped and a dead server goes unnoticed; with one,\n" +
          "the connection stays open and a dead server is found in seconds. Try it on your own server:\n" +
          "  deno run -A cli.ts --heartbeat --show-rtt wss://your.server/path"
        : "The demo did not go as expected: see the lines above.",
    );
    return ok ? 0 : 1;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}
