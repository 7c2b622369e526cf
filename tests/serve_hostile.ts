/**
 * `wsbeat serve` against hostile clients, measured (`ps` gives the server's RSS):
 *
 * 1. flood: clients sending continuation frames forever, reconnecting each
 *    time they are closed, for --seconds; the server's RSS is sampled.
 * 2. limit: more connections than the open-file limit (300 at `ulimit -n
 *    256`), then the same with --max-connections 200 under that limit.
 * 3. slowloris: 2 000 half-sent upgrade requests.
 * 4. shutdown: SIGTERM with a client that completed the handshake and never
 *    reads or answers.
 * 5. stall: 200 clients in turn against `--stall-after 0 --max-connections 3`,
 *    each leaving after the handshake; the server's open files are counted.
 *
 * Usage: deno run --allow-net=127.0.0.1 --allow-run=sh,ps tests/serve_hostile.ts
 *        [--seconds 5] [--flooders 4] [--max-message-size BYTES]
 */

import { parseArgs } from "node:util";
import { encodeFrame, OP } from "./_raw_frames.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const { values } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "5" },
    flooders: { type: "string", default: "4" },
    "max-message-size": { type: "string" },
  },
});
const seconds = Number(values.seconds);
const flooders = Number(values.flooders);
const MiB = 1024 * 1024;
const encoder = new TextEncoder();

/** `wsbeat serve -q` with `args` under `ulimit -n limit`; resolves once it listens. */
async function server(args: string[], limit = 4096) {
  const argv = ["deno", "run", "--allow-net=127.0.0.1", CLI, "serve", "--port", "0", "-q", ...args];
  const child = new Deno.Command("sh", {
    args: ["-c", `ulimit -n ${limit}; exec ${argv.map((a) => `'${a}'`).join(" ")}`],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the server exited: ${text}`);
    text += value;
  }
  const port = Number(/:(\d+)\n/.exec(text)![1]);
  const rss = async () => {
    const ps = new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(child.pid)] });
    return Number(new TextDecoder().decode((await ps.output()).stdout).trim()) / 1024;
  };
  const fds = async () => {
    const ls = new Deno.Command("sh", { args: ["-c", `ls /proc/${child.pid}/fd | wc -l`] });
    return Number(new TextDecoder().decode((await ls.output()).stdout).trim());
  };
  const stop = async () => {
    const started = performance.now();
    child.kill("SIGTERM");
    const { code } = await child.status;
    await reader.cancel();
    return { code, ms: performance.now() - started };
  };
  return { port, rss, fds, stop };
}

function request(port: number): Uint8Array {
  return encoder.encode(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Connects and sends an upgrade request; resolves with the status of the answer (0: none within `ms`). */
async function upgrade(port: number, ms = 3_000): Promise<{ conn: Deno.Conn; status: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(conn, request(port));
  const buffer = new Uint8Array(1024);
  const timer = setTimeout(() => conn.close(), ms);
  try {
    const n = await conn.read(buffer);
    clearTimeout(timer);
    const status = n === null
      ? 0
      : Number(/^HTTP\/1\.1 (\d+)/.exec(new TextDecoder().decode(buffer.subarray(0, n)))?.[1] ?? 0);
    if (status !== 101) close(conn); // as a client does with a refusal
    return { conn, status };
  } catch {
    return { conn, status: 0 };
  }
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

// --- 1. flood -------------------------------------------------------------------------------

{
  const limit = values["max-message-size"];
  const s = await server(limit === undefined ? [] : ["--max-message-size", limit]);
  const before = await s.rss();
  let peak = before;
  let closed1009 = 0;
  let bytes = 0;
  const until = performance.now() + seconds * 1000;
  const chunk = new Uint8Array(64 * 1024);
  const first = encodeFrame({ opcode: OP.BINARY, fin: false, payload: chunk, mask: true });
  const more = encodeFrame({ opcode: OP.CONTINUATION, fin: false, payload: chunk, mask: true });
  const flood = async () => {
    while (performance.now() < until) {
      const { conn } = await upgrade(s.port);
      const reading = (async () => {
        const buffer = new Uint8Array(1024);
        try {
          const n = await conn.read(buffer);
          if (n !== null && buffer[0] === 0x88 && ((buffer[2]! << 8) | buffer[3]!) === 1009) {
            closed1009++;
          }
        } catch { /* reset */ }
      })();
      try {
        await writeAll(conn, first);
        while (performance.now() < until) {
          await writeAll(conn, more);
          bytes += more.length;
        }
      } catch { /* closed by the server */ }
      close(conn);
      await reading;
    }
  };
  const perSecond: number[] = [];
  const sampler = (async () => {
    for (let now = performance.now(); now < until; now = performance.now()) {
      const rss = await s.rss();
      const second = Math.floor((now - (until - seconds * 1000)) / 1000);
      perSecond[second] = Math.max(perSecond[second] ?? 0, rss);
      peak = Math.max(peak, rss);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  await Promise.all([...Array.from({ length: flooders }, flood), sampler]);
  const after = await s.rss();
  await s.stop();
  console.log(
    `flood (max message ${limit ?? "16 MiB, the default"}): ${flooders} clients sent ${
      (bytes / MiB).toFixed(0)
    } MiB of continuation frames in ${seconds} s; ` +
      `${closed1009} connections closed with 1009; server RSS ${before.toFixed(0)} MiB before, ` +
      `peak ${peak.toFixed(0)} MiB (each second's peak: ${
        perSecond.map((m) => m.toFixed(0)).join(", ")
      } MiB), ${after.toFixed(0)} MiB after`,
  );
}

// --- 2. connections past the open-file limit --------------------------------------------------

for (const args of [[], ["--max-connections", "200"]]) {
  const s = await server(args, 256);
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: 300 }, () => upgrade(s.port, 2_000)));
  const took = performance.now() - started;
  const count = (status: number) => results.filter((r) => r.status === status).length;
  const held = results.find((r) => r.status === 101)!;
  // The first held connection still echoes.
  await writeAll(held.conn, encodeFrame({ opcode: OP.TEXT, payload: "alive?", mask: true }));
  const echo = new Uint8Array(64);
  const n = await held.conn.read(echo);
  const alive = n !== null && new TextDecoder().decode(echo.subarray(2, n)) === "alive?";
  for (const r of results) close(r.conn);
  const { code } = await s.stop();
  console.log(
    `limit (ulimit -n 256${args.length ? `, ${args.join(" ")}` : ""}): 300 connections in ${
      took.toFixed(0)
    } ms: ` +
      `${count(101)} held, ${count(503)} refused with 503, ${count(0)} got no answer within 2 s ` +
      `(waiting in the backlog); a held one still echoes: ${alive}; exit code on SIGTERM ${code}`,
  );
}

// --- 3. slowloris -------------------------------------------------------------------------------

{
  const s = await server([], 8192);
  const started = performance.now();
  const conns = await Promise.all(Array.from({ length: 2000 }, async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    await writeAll(conn, encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n"));
    return conn;
  }));
  const ends = await Promise.all(conns.map(async (conn) => {
    const buffer = new Uint8Array(1024);
    let text = "";
    try {
      for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
        text += new TextDecoder().decode(buffer.subarray(0, n));
      }
    } catch { /* reset */ }
    close(conn);
    return { at: performance.now() - started, refused: text.startsWith("HTTP/1.1 503") };
  }));
  const refused = ends.filter((e) => e.refused);
  const dropped = ends.filter((e) => !e.refused);
  const last = (list: { at: number }[]) => Math.max(0, ...list.map((e) => e.at)) / 1000;
  await s.stop();
  console.log(
    `slowloris: 2000 half-sent requests: ${refused.length} refused with 503 (all within ${
      last(refused).toFixed(1)
    } s), ${dropped.length} held then dropped by the handshake timeout (the last after ${
      last(dropped).toFixed(1)
    } s)`,
  );
}

// --- 4. shutdown with a deaf client ---------------------------------------------------------------

{
  const s = await server([]);
  const deaf = await upgrade(s.port); // answered 101, and never read from again
  const { code, ms } = await s.stop();
  close(deaf.conn);
  console.log(
    `shutdown: SIGTERM with a client that never reads or answers: exit ${code} after ${
      ms.toFixed(0)
    } ms (close timeout 2 s)`,
  );
}

// --- 5. stalled connections whose clients leave -----------------------------------------------------

{
  const s = await server(["--stall-after", "0", "--max-connections", "3"]);
  const before = await s.fds();
  const statuses = new Map<number, number>();
  for (let i = 0; i < 200; i++) {
    const { conn, status } = await upgrade(s.port);
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    close(conn); // the client leaves; the stalled connection must be released for the next one
  }
  await new Promise((resolve) => setTimeout(resolve, 200)); // let the last EOF be seen
  const after = await s.fds();
  await s.stop();
  console.log(
    `stall: 200 clients in turn at --stall-after 0 --max-connections 3: ${
      [...statuses].map(([status, n]) => `${n} answered ${status || "nothing"}`).join(", ")
    }; server open files ${before} before, ${after} after`,
  );
}
