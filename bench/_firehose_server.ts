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

import { awaitClose, readHead, serveUntilTerm, writeAll } from "./_raw_io.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const BLOCK = 1 << 20;

/** One frame's bytes: an unmasked, final frame with `size` payload bytes. */
function frameOf(size: number, binary: boolean): Uint8Array {
  const head = size < 126 ? 2 : size < 65536 ? 4 : 10;
  const frame = new Uint8Array(head + size);
  frame[0] = 0x80 | (binary ? 2 : 1);
  if (head === 2) frame[1] = size;
  else if (head === 4) {
    frame[1] = 126;
    new DataView(frame.buffer).setUint16(2, size);
  } else {
    frame[1] = 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(size));
  }
  for (let i = 0; i < size; i++) frame[head + i] = binary ? i & 0xff : 97 + i % 26; // a to z
  return frame;
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
    const head = await readHead(conn);
    const target = head.slice(0, head.indexOf("\r\n")).split(" ")[1] ?? "/";
    const query = new URL(target, "http://localhost").searchParams;
    const key = /^sec-websocket-key:\s*(\S+)\s*$/im.exec(head)?.[1];
    if (!key) {
      await writeAll(conn, new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"));
      return;
    }
    const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(key + GUID));
    const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
    await writeAll(
      conn,
      new TextEncoder().encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
      ),
    );
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
    await writeAll(conn, new Uint8Array([0x88, 2, 0x03, 0xe8])); // close 1000
    const timer = setTimeout(() => conn.close(), 5000);
    try {
      await awaitClose(conn);
    } finally {
      clearTimeout(timer);
    }
  } catch {
    /* the client went away, or the timer closed the connection */
  } finally {
    try {
      conn.close();
    } catch { /* closed already */ }
  }
}

await serveUntilTerm(handle);
