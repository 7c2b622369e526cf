/**
 * Dead-peer detection: heartbeating clients against a server that stops
 * answering after 3 messages. The time from the last reply to the
 * TooSlowError, against the bound interval + timeout.
 *
 * @module
 */

import { connect } from "../mod.ts";
import { quantile, startServer, table } from "./_server.ts";

/** Options for {@linkcode detectBench}. */
export interface DetectOptions {
  /** A server that stalls after a few messages, answering "ping" with "pong" until then. */
  url: string;
  /** How many trials. */
  trials?: number;
  /** Trials run at once. */
  concurrency?: number;
  /** Heartbeat interval, ms. */
  interval?: number;
  /** Heartbeat timeout, ms. */
  timeout?: number;
}

/** The overshoot over the bound, ms. */
export interface DetectResult {
  trials: number;
  bound: number;
  p50: number;
  p99: number;
  max: number;
  allTooSlow: boolean;
}

async function trial(
  url: string,
  interval: number,
  timeout: number,
): Promise<{ overshoot: number; tooSlow: boolean }> {
  let lastReply = NaN;
  const ws = await connect(url, {
    heartbeat: { interval, timeout, reply: "pong", onBeat: () => (lastReply = performance.now()) },
  });
  const info = await ws.closed;
  const detected = performance.now();
  await ws.close();
  return {
    overshoot: detected - lastReply - (interval + timeout),
    tooSlow: info.error?.name === "TooSlowError",
  };
}

/** Runs the trials. */
export async function detectBench(options: DetectOptions): Promise<DetectResult> {
  const { url, trials = 50, concurrency = 10, interval = 200, timeout = 300 } = options;
  const overshoots: number[] = [];
  let allTooSlow = true;
  for (let done = 0; done < trials; done += concurrency) {
    const wave = await Promise.all(
      Array.from(
        { length: Math.min(concurrency, trials - done) },
        () => trial(url, interval, timeout),
      ),
    );
    for (const r of wave) {
      overshoots.push(r.overshoot);
      allTooSlow &&= r.tooSlow;
    }
  }
  return {
    trials,
    bound: interval + timeout,
    p50: quantile(overshoots, 0.5),
    p99: quantile(overshoots, 0.99),
    max: Math.max(...overshoots),
    allTooSlow,
  };
}

/** Renders the result as a Markdown table. */
export function detectTable(r: DetectResult): string {
  return table(
    [
      "trials",
      "bound (interval + timeout)",
      "overshoot p50",
      "overshoot p99",
      "overshoot max",
      "every trial a TooSlowError",
    ],
    [[
      r.trials,
      `${r.bound} ms`,
      `${r.p50.toFixed(2)} ms`,
      `**${r.p99.toFixed(2)} ms**`,
      `${r.max.toFixed(2)} ms`,
      r.allTooSlow ? "yes" : "**no**",
    ]],
  );
}

if (import.meta.main) {
  await using server = await startServer(["--stall-after", "3", "--pong", "ping:pong"]);
  console.log(detectTable(await detectBench({ url: server.url })));
}
