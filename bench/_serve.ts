// wsbeat's echo server for the benchmarks: `serve()` in a process of its own, as `wsbeat serve`
// runs it, with the connection limit raised (the scale bench holds 10 000 clients). Prints
// `listening URL` on stdout; stops on SIGTERM.
//
// Usage: deno run --allow-net=127.0.0.1 bench/_serve.ts ['{"pong":{"ping":"ping","pong":"pong"}}']

import { serve, type ServeOptions } from "../serve.ts";

const options: ServeOptions = JSON.parse(Deno.args[0] ?? "{}");
const stop = new AbortController();
const onTerm = () => stop.abort();
Deno.addSignalListener("SIGTERM", onTerm);
stop.signal.addEventListener("abort", () => Deno.removeSignalListener("SIGTERM", onTerm));
const server = serve({ ...options, port: 0, maxConnections: 100_000, signal: stop.signal });
console.log(`listening ${server.url}`);
