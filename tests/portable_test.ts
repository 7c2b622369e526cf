// The portable core (mod.ts) must run where there is no Deno: bundle it and run it on Node.
import assert from "node:assert/strict";
import { serve } from "../serve.ts";
import { closedPort } from "./_servers.ts";
import { type CommandOutput, runCommand } from "./_command.ts";

const MOD = new URL("../mod.ts", import.meta.url).pathname;

function output(command: string, args: string[], input?: string): Promise<CommandOutput> {
  return runCommand(command, args, { input });
}

/** What the script reports, run on Node against servers in this process. */
const CHECK = `
const [echoUrl, stallUrl, refusedUrl] = process.argv.slice(-3);
const out = {};
const ws = await connect(echoUrl, { heartbeat: { interval: 20, timeout: 2000, reply: "pong" } });
ws.send("text");
out.text = await ws.receive();
ws.send(new Uint8Array([1, 2, 3]));
out.binary = Array.from(await ws.receive());
while ((ws.stats.latency?.samples ?? 0) < 3) await new Promise((r) => setTimeout(r, 10));
out.close = await ws.close();
const dead = await connect(stallUrl, { heartbeat: { interval: 10, timeout: 100, reply: "pong" } });
const info = await dead.closed;
out.stall = [info.initiator, info.code, info.error instanceof TooSlowError];
const error = await connect(refusedUrl).catch((e) => e);
out.refused = [error instanceof ConnectError, error.message.startsWith("Cannot connect to")];
let n = 0;
for await (const c of reconnecting(echoUrl, { initialDelay: 10 })) {
  c.send("again");
  await c.receive();
  if (++n === 2) break;
}
out.reconnected = n;
// The native WebSocket cannot release the stalled socket (the peer never answers the close), so
// Node would wait for TCP to give up: exit once the output is written, as the README advises.
process.stdout.write(JSON.stringify(out) + String.fromCharCode(10), () => process.exit(0));
`;

Deno.test("the core (mod.ts) runs on Node: connect, echo, heartbeat, dead peer, connect error, reconnect", async () => {
  const bundle = await output("deno", ["bundle", MOD]);
  assert.equal(bundle.code, 0, bundle.stderr);
  // The core reaches Deno only through `globalThis.Deno` (feature detection):
  // every "Deno." left in the bundle is inside an error message's text.
  const mentions = [...new Set(bundle.stdout.match(/Deno\.\w+/g))].sort();
  assert.deepEqual(mentions, ["Deno.connect", "Deno.createHttpClient", "Deno.startTls"]);
  for (const line of bundle.stdout.split("\n").filter((l) => /Deno\.\w+/.test(l))) {
    assert.match(line, /["'`][^"'`]*Deno\.\w+/, `Deno used outside a message: ${line.trim()}`);
  }

  // Node 22+ has WebSocket; Node 20 has it behind a flag.
  const probe = await output("node", [
    "-e",
    "process.exit(typeof WebSocket === 'function' ? 0 : 1)",
  ]);
  const flags = probe.code === 0 ? [] : ["--experimental-websocket"];
  await using echo = serve({ pong: { ping: "ping", pong: "pong" } });
  await using stall = serve({ stallAfter: 2, pong: { ping: "ping", pong: "pong" } });
  const script = `const { connect, reconnecting, TooSlowError, ConnectError } = await import(${
    JSON.stringify("data:text/javascript," + encodeURIComponent(bundle.stdout))
  });\n${CHECK}`;
  const node = await output(
    "node",
    [...flags, "--input-type=module", "-", echo.url, stall.url, `ws://127.0.0.1:${closedPort()}/`],
    script,
  );
  assert.equal(node.code, 0, node.stderr);
  const out = JSON.parse(node.stdout);
  assert.equal(out.text, "text");
  assert.deepEqual(out.binary, [1, 2, 3]);
  assert.deepEqual(out.close, { code: 1000, reason: "", wasClean: true, initiator: "client" });
  assert.deepEqual(out.stall, ["heartbeat", 1006, true]);
  assert.deepEqual(out.refused, [true, true]);
  assert.equal(out.reconnected, 2);
});
