// Node's `ws` client for bench/firehose.ts, run by `node` in a process of its own, with the same
// protocol as bench/_firehose_client.ts: one JSON request a line on stdin (`{"url", "size",
// "binary", "count"}`), one JSON answer a line on stdout (`{"n", "ms", "cpuUs"}` or `{"error"}`).
// A `message` handler counts the messages and checks each one's type, length and last byte or
// character; text is turned into a string (`toString()`), as the other clients hand out strings.
//
// Usage: node bench/_firehose_ws_client.mjs WS_PACKAGE_DIR (the folder of npm's `ws` package;
// bench/firehose.ts finds it in Deno's npm cache with `deno info --json npm:ws@8`).

import process from "node:process";
import { answerLines, loadWs } from "./_node_ws_lines.mjs";

const WebSocket = await loadWs("_firehose_ws_client.mjs");

/** Runs one request; resolves with `{ n, ms, cpuUs }`, rejects naming the count reached. */
function run({ url, size, binary, count }) {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const target = new URL(url);
  target.searchParams.set("size", String(size));
  target.searchParams.set("binary", binary ? "1" : "0");
  target.searchParams.set("count", String(count));
  const ws = new WebSocket(target.href);
  const last = binary ? (size - 1) & 0xff : 97 + (size - 1) % 26; // as lastUnit() in _firehose_client.ts
  let n = 0;
  let result;
  let failure;
  const stopped = (why) => new Error(`stopped after ${n} of ${count} messages: ${why}`);
  return new Promise((resolve, reject) => {
    ws.on("message", (data, isBinary) => {
      if (failure) return;
      const text = isBinary ? undefined : data.toString();
      const length = isBinary ? data.length : text.length;
      const unit = isBinary ? data[size - 1] : text.charCodeAt(size - 1);
      if (isBinary !== binary || length !== size || unit !== last) {
        failure = stopped(
          `message ${n + 1} was ${isBinary ? "binary" : "text"} of ${length} ending in ${unit}, ` +
            `expected ${binary ? "binary" : "text"} of ${size} ending in ${last}`,
        );
        ws.terminate();
        return;
      }
      if (++n === count) {
        const cpu = process.cpuUsage(cpu0);
        result = { n, ms: performance.now() - t0, cpuUs: cpu.user + cpu.system };
      } else if (n > count) failure = stopped("more messages than asked for");
    });
    ws.on("error", (error) => failure ??= stopped(error.message));
    ws.on("close", (code) => {
      if (failure) reject(failure);
      else if (result) resolve(result);
      else reject(stopped(`the connection closed (code ${code})`));
    });
  });
}

await answerLines(run);
