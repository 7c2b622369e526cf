// What the Node `ws` clients of the benchmarks (bench/_firehose_ws_client.mjs,
// bench/_deflate_feed_ws_client.mjs) share: loading `ws` from the folder given on the command
// line, and answering one JSON request a line on stdin with one JSON line on stdout.

import process from "node:process";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

/** npm's `ws` from the folder in argv[2]; `script` names the caller in the usage error. */
export async function loadWs(script) {
  const dir = process.argv[2];
  if (!dir) throw new TypeError(`usage: node ${script} WS_PACKAGE_DIR`);
  return (await import(pathToFileURL(`${dir}/wrapper.mjs`).href)).WebSocket;
}

/** Runs `run` on each request line; writes its result, or `{ error }`, as a line. */
export async function answerLines(run) {
  for await (const line of createInterface({ input: process.stdin })) {
    let answer;
    try {
      answer = await run(JSON.parse(line));
    } catch (error) {
      answer = { error: error.message };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
}
