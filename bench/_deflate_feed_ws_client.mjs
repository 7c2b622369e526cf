// Node's `ws` client for bench/deflate_feed.ts, run by `node` in a process of its own, with the
// same protocol as bench/_deflate_feed_client.ts: one JSON request a line on stdin (`{"url",
// "size", "count"}`), one JSON answer a line on stdout (`{"n", "ms", "cpuUs"}` or `{"error"}`).
// permessage-deflate is on (`perMessageDeflate: true`, ws's client default: it offers
// `client_max_window_bits`; the server keeps its context). A `message` handler counts the
// messages and checks each one's length, text turned into a string as the other clients hand
// out. The CPU time counts all the process's threads: ws inflates on libuv's thread pool.
//
// Usage: node bench/_deflate_feed_ws_client.mjs WS_PACKAGE_DIR (the folder of npm's `ws`
// package; bench/deflate_feed.ts finds it as bench/firehose.ts does).

import process from "node:process";
import { answerLines, loadWs } from "./_node_ws_lines.mjs";

const WebSocket = await loadWs("_deflate_feed_ws_client.mjs");

/** Runs one request; resolves with `{ n, ms, cpuUs }`, rejects naming the count reached. */
function run({ url, size, count }) {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const target = new URL(url);
  target.searchParams.set("size", String(size));
  target.searchParams.set("count", String(count));
  const ws = new WebSocket(target.href, { perMessageDeflate: true });
  let n = 0;
  let result;
  let failure;
  const stopped = (why) => new Error(`stopped after ${n} of ${count} messages: ${why}`);
  return new Promise((resolve, reject) => {
    ws.on("open", () => {
      if (!ws.extensions.startsWith("permessage-deflate")) {
        failure = stopped(`the server answered extensions ${JSON.stringify(ws.extensions)}`);
        ws.terminate();
      }
    });
    ws.on("message", (data, isBinary) => {
      if (failure) return;
      const length = isBinary ? -1 : data.toString().length;
      if (length !== size) {
        failure = stopped(`message ${n + 1} was not text of ${size}`);
        ws.terminate();
        return;
      }
      if (++n === count) {
        const cpu = process.cpuUsage(cpu0);
        result = { n, ms: performance.now() - t0, cpuUs: cpu.user + cpu.system };
      }
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
