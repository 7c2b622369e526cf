// deno-lint-ignore-file no-import-prefix -- npm:ws is a bench-only peer; the library has no dependencies
// Node's `ws` echo server for the benchmarks, run by Deno in a process of its own: text is echoed
// as text, binary as binary. The issue measured the native client's 44 ms round trips against it.
// Prints `listening URL` on stdout; stops on SIGTERM.
//
// Usage: deno run --no-lock --allow-net=127.0.0.1 --allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE bench/_ws_server.ts

import type { AddressInfo } from "node:net";
// @ts-types="npm:@types/ws@8"
import { WebSocketServer } from "npm:ws@8";

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
await new Promise<void>((resolve, reject) => {
  wss.once("listening", resolve);
  wss.once("error", reject);
});
wss.on("connection", (socket) => {
  socket.on("error", () => {});
  socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary }));
});
const onTerm = () => {
  Deno.removeSignalListener("SIGTERM", onTerm);
  for (const socket of wss.clients) socket.terminate();
  wss.close();
};
Deno.addSignalListener("SIGTERM", onTerm);
console.log(`listening ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
