// Runs the conformance tests and prints how many cases pass in each category,
// then the names of those that failed:
//
//   deno run --allow-run=deno tests/conformance_report.ts
//
// Not a test file: it runs `deno test` on tests/conformance_*_test.ts and
// reads the "name ... ok" lines.

const CATEGORIES: [string, string][] = [
  ["1", "framing"],
  ["2", "pings and pongs"],
  ["3", "reserved bits"],
  ["4", "opcodes"],
  ["5", "fragmentation"],
  ["6", "UTF-8"],
  ["7", "closing handshake"],
  ["9", "limits"],
  ["H", "opening handshake"],
];

const FILES = ["framing", "messages", "close"].map((name) =>
  new URL(`conformance_${name}_test.ts`, import.meta.url).pathname
);

/** One test result line: "conformance 3.1: RSV1 on ... ... ok (1ms)". */
const RESULT = /^conformance (\w+)\.[\w.]*: .* \.\.\. (ok|FAILED)/;

/** Counts passes and failures per category in `deno test` output. */
export function tally(output: string): Map<string, { passed: number; failed: string[] }> {
  const counts = new Map(CATEGORIES.map(([id]) => [id, { passed: 0, failed: [] as string[] }]));
  for (const line of output.split("\n")) {
    const match = RESULT.exec(line);
    if (!match) continue;
    const entry = counts.get(match[1]!) ?? { passed: 0, failed: [] };
    counts.set(match[1]!, entry);
    if (match[2] === "ok") entry.passed++;
    else entry.failed.push(line.replace(/ \.\.\. FAILED.*$/, ""));
  }
  return counts;
}

if (import.meta.main) {
  const { stdout } = await new Deno.Command("deno", {
    args: ["test", "--allow-net=127.0.0.1", ...FILES],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "null",
  }).output();
  const counts = tally(new TextDecoder().decode(stdout));
  const names = new Map(CATEGORIES);
  let passed = 0, total = 0;
  for (const [id, { passed: p, failed }] of counts) {
    const label = `${id} ${names.get(id) ?? ""}`.padEnd(22);
    console.log(`${label} ${p}/${p + failed.length}`);
    passed += p;
    total += p + failed.length;
  }
  console.log(`${"all".padEnd(22)} ${passed}/${total}`);
  const failures = [...counts.values()].flatMap((c) => c.failed);
  if (failures.length > 0) console.log(`\nFailed:\n${failures.join("\n")}`);
}
