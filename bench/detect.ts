/**
 * Dead-peer detection: heartbeating clients (wsbeat transport) against a
 * server that stops reading after 3 messages and keeps TCP open (with ping
 * frames, the client sends the 3 messages itself). The time
 * from the last reply to the TooSlowError, against the bound interval +
 * timeout, for each kind of probe: ping frames (the default) and an
 * application probe (`reply: "pong"`).
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
  /** The probe: ping frames, or the application message "ping" answered by "pong". */
  probe?: "ping frames" | "application";
}

/** The overshoot over the bound, ms. */
export interface DetectResult {
  probe: "ping frames" | "application";
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
  application: boolean,
): Promise<{ overshoot: number; tooSlow: boolean }> {
  let lastReply = NaN;
  const onBeat = () => (lastReply = performance.now());
  const ws = await connect(url, {
    transport: "wsbeat",
    heartbeat: application
      ? { interval, timeout, reply: "pong", onBeat }
      : { interval, timeout, onBeat },
  });
  // The server stalls after 3 messages; ping frames are not messages.
  if (!application) { for (let i = 0; i < 3; i++) ws.send("x"); }
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
  const {
    url,
    trials = 50,
    concurrency = 10,
    interval = 200,
    timeout = 300,
    probe = "ping frames",
  } = options;
  const overshoots: number[] = [];
  let allTooSlow = true;
  for (let done = 0; done < trials; done += concurrency) {
    const wave = await Promise.all(
      Array.from(
        { length: Math.min(concurrency, trials - done) },
        () => trial(url, interval, timeout, probe === "application"),
      ),
    );
    for (const r of wave) {
      overshoots.push(r.overshoot);
      allTooSlow &&= r.tooSlow;
    }
  }
  return {
    probe,
    trials,
    bound: interval + timeout,
    p50: quantile(overshoots, 0.5),
    p99: quantile(overshoots, 0.99),
    max: Math.max(...overshoots),
    allTooSlow,
  };
}

/** Renders the results as a Markdown table. */
export function detectTable(results: DetectResult[]): string {
  return table(
    [
      "heartbeat probe",
      "trials",
      "bound (interval + timeout)",
      "overshoot p50",
      "overshoot p99",
      "overshoot max",
      "every trial a TooSlowError",
    ],
    results.map((r) => [
      r.probe,
      r.trials,
      `${r.bound} ms`,
      `${r.p50.toFixed(2)} ms`,
      `**${r.p99.toFixed(2)} ms**`,
      `${r.max.toFixed(2)} ms`,
      r.allTooSlow ? "yes" : "**no**",
    ]),
  );
}

if (import.meta.main) {
  await using server = await startServer({ stallAfter: 3, pong: { ping: "ping", pong: "pong" } });
  console.log(detectTable([
    await detectBench({ url: server.url }),
    await detectBench({ url: server.url, probe: "application" }),
  ]));
}
