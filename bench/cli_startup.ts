/**
 * CLI startup: wall time of `deno run cli.ts --help`, warm (after one
 * untimed run that fills the caches).
 *
 * @module
 */

import { median, quantile, table } from "./_server.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** The wall times, ms. */
export interface StartupResult {
  runs: number;
  median: number;
  p90: number;
}

/** Runs `deno run cli.ts --help` `runs` times after a warm-up. */
export async function cliStartup(runs = 10): Promise<StartupResult> {
  const once = async () => {
    const start = performance.now();
    const { code } = await new Deno.Command("deno", {
      args: ["run", CLI, "--help"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    if (code !== 0) throw new Error(`cli --help exited ${code}`);
    return performance.now() - start;
  };
  await once();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await once());
  return { runs, median: median(times), p90: quantile(times, 0.9) };
}

/** Renders the result as a Markdown table. */
export function startupTable(r: StartupResult): string {
  return table(["runs", "median", "p90"], [[
    r.runs,
    `${r.median.toFixed(0)} ms`,
    `${r.p90.toFixed(0)} ms`,
  ]]);
}

if (import.meta.main) console.log(startupTable(await cliStartup()));
