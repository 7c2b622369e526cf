// The firehose server for bench/firehose.ts, in a process of its own: it answers the upgrade by
// hand and pushes pre-built frames as fast as the socket takes them, then a close frame (1000),
// doing almost no work per message, so that the client is what is measured. The request's query
// says what to send:
//
// - `size` (payload bytes), `binary` (`1` for binary frames, else ASCII text), `count` (messages);
// - for the failure tests, `stop=K`: only K messages, then `how=close` (a close frame 1000, the
//   default) or `how=drop` (the TCP connection closed, no close frame).
//
// The frames of a row are built once (a block of about 1 MiB of them, cached) and written block
// by block. After its close frame the server reads until the client's close frame (or EOF, or
// 5 s), then closes the connection. Prints `listening URL` on stdout; stops on SIGTERM.
//
// Usage: deno run --allow-net=127.0.0.1 bench/_firehose_server.ts

import { encodeFrame, OP_BINARY, OP_TEXT } from "../protocol/frames.ts";
import { acceptUpgrade, closeAndAwait, serveUntilTerm, writeAll } from "./_raw_io.ts";

const BLOCK = 1 << 20;

/** One frame's bytes: an unmasked, final frame with `size` payload bytes (built once a row). */
function frameOf(size: number, binary: boolean): Uint8Array {
  const payload = new Uint8Array(size);
  for (let i = 0; i < size; i++) payload[i] = binary ? i & 0xff : 97 + i % 26; // a to z
  return encodeFrame(binary ? OP_BINARY : OP_TEXT, payload);
}

const blocks = new Map<string, { block: Uint8Array; frameLength: number; frames: number }>();
/** About 1 MiB of the row's frames (at least one), built once. */
function blockOf(size: number, binary: boolean) {
  const key = `${size} ${binary}`;
  let entry = blocks.get(key);
  if (!entry) {
    const frame = frameOf(size, binary);
    const frames = Math.max(1, Math.floor(BLOCK / frame.length));
    const block = new Uint8Array(frame.length * frames);
    for (let i = 0; i < frames; i++) block.set(frame, i * frame.length);
    entry = { block, frameLength: frame.length, frames };
    blocks.set(key, entry);
  }
  return entry;
}

async function handle(conn: Deno.TcpConn): Promise<void> {
  try {
    conn.setNoDelay(true);
    const head = await acceptUpgrade(conn);
    if (!head) return;
    const { query } = head;
    const size = Number(query.get("size") ?? 32);
    const binary = query.get("binary") === "1";
    const count = Number(query.get("count") ?? 0);
    const stop = query.has("stop") ? Number(query.get("stop")) : Infinity;
    const { block, frameLength, frames } = blockOf(size, binary);
    let left = Math.min(count, stop);
    while (left > 0) {
      const k = Math.min(left, frames);
      await writeAll(conn, k === frames ? block : block.subarray(0, k * frameLength));
      left -= k;
    }
    if (stop < count && query.get("how") === "drop") return;
    await closeAndAwait(conn);
  } catch {
    /* the client went away, or the timer closed the connection */
  } finally {
    try {
      conn.close();
    } catch { /* closed already */ }
  }
}

await serveUntilTerm(handle);
