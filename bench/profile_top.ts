/**
 * The functions with the most self time in a V8 CPU profile, as written by
 * `deno run --cpu-prof --cpu-prof-dir=DIR script.ts`.
 *
 * Usage: deno run --allow-read bench/profile_top.ts DIR/*.cpuprofile [N]
 *
 * `(idle)` is time the main thread waited (or spent in the runtime outside
 * JavaScript); ops such as `op_write` include their system calls.
 *
 * @module
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (name, file and line), in µs, most first. */
export function topSelfTime(profile: Profile): [string, number][] {
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const self = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const frame = frames.get(id)!;
    const key = `${frame.functionName || "(anonymous)"} ${frame.url.split("/").pop()}:${
      frame.lineNumber + 1
    }`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  return [...self].sort((a, b) => b[1] - a[1]);
}

if (import.meta.main) {
  const [path, n = "30"] = Deno.args;
  if (!path) throw new TypeError("usage: profile_top.ts FILE.cpuprofile [N]");
  const rows = topSelfTime(JSON.parse(await Deno.readTextFile(path)));
  const total = rows.reduce((sum, [, us]) => sum + us, 0);
  for (const [name, us] of rows.slice(0, Number(n))) {
    console.log(
      `${(us / total * 100).toFixed(1).padStart(5)} %  ${
        (us / 1000).toFixed(0).padStart(6)
      } ms  ${name}`,
    );
  }
  console.log(`total ${(total / 1000).toFixed(0)} ms`);
}
