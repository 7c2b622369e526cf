// The compressed feed for bench/deflate_feed.ts, in a process of its own: a server that answers
// the upgrade by hand and pushes JSON messages compressed with permessage-deflate (RFC 7692) as
// fast as the socket takes them, doing almost no work per message: the frames are compressed
// once per row (node:zlib, level 6, as `ws` and `websockets` servers do) and written block by
// block. The request's query says what to send:
//
// - `size` (bytes of each JSON text message: 200, 1024, 16384, ...) and `count` (messages);
// - `hold=1`: after the messages, send nothing more and keep the connection until the client
//   closes it (the idle-memory runs), instead of a close frame (1000).
//
// permessage-deflate is answered when the client offers it: with context takeover (the server
// default of `ws` and `websockets`), or `server_no_context_takeover` when the client asks for
// it. A client that offers nothing gets the same messages uncompressed. With takeover, a row's
// K distinct messages are compressed twice in one stream: the first pass is sent once, as a
// prelude, and the second pass, whose back-references reach into the window the pass before
// left (the same bytes every time), is the block repeated after it.
//
// Prints `listening URL` on stdout; stops on SIGTERM. Each connection's first line on stderr
// is nothing: the orchestrator reads the wire sizes from its own copy of the frames.
//
// Usage: deno run --allow-net=127.0.0.1 bench/_deflate_feed_server.ts

import * as zlib from "node:zlib";
import { encodeFrame, OP_TEXT } from "../protocol/frames.ts";
import { acceptUpgrade, awaitClose, closeAndAwait, serveUntilTerm, writeAll } from "./_raw_io.ts";
/**
 * Distinct messages a row cycles through: at least 64, and twice the 32 KiB window's worth, so
 * that with takeover no message finds an exact copy of itself in the window (a real feed's
 * messages differ; repeats would compress to a few bytes).
 */
function distinct(size: number): number {
  return Math.max(64, Math.ceil(2 * 32768 / size));
}

/** The row's `k`-th message: a feed-like JSON array of exactly `size` bytes (at least 4). */
export function feedMessage(size: number, k: number): string {
  let base = "";
  for (let i = 0;; i++) {
    const price = (100 + ((k * 31 + i * 7) % 97) / 8).toFixed(3);
    const row = `{"seq":${k * 1000 + i},"symbol":"${["BTC-USD", "ETH-USD", "SOL-USD"][i % 3]}",` +
      `"price":"${price}","size":"${((k + i) % 13) / 4}","side":"${i % 2 ? "buy" : "sell"}"}`;
    const next = base === "" ? row : `${base},${row}`;
    if (next.length + 5 > size) break;
    base = next;
  }
  // A last string pads the array to the size: `[rows,"xx…"]`, or `["xx…"]` when no row fits.
  const pad = "x".repeat(size - base.length - (base === "" ? 4 : 5));
  return base === "" ? `["${pad}"]` : `[${base},"${pad}"]`;
}

/** One frame's header and payload: unmasked, final, text, RSV1 when compressed. */
function frameOf(payload: Uint8Array, compressed: boolean): Uint8Array {
  return encodeFrame(OP_TEXT, payload, { rsv: compressed ? 4 : 0 });
}

/** A run of frames and where each ends, to send a prefix of it. */
export interface Frames {
  bytes: Uint8Array;
  /** `ends[i]`: the byte where frame i ends. */
  ends: number[];
}

function join(frames: Uint8Array[]): Frames {
  const bytes = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  const ends: number[] = [];
  let at = 0;
  for (const frame of frames) {
    bytes.set(frame, at);
    at += frame.length;
    ends.push(at);
  }
  return { bytes, ends };
}

/** Messages deflated one after the other in one stream (context takeover), each sync-flushed. */
async function deflateStream(messages: Uint8Array[]): Promise<Uint8Array[]> {
  const stream = zlib.createDeflateRaw({ level: 6 });
  const out: Uint8Array[] = [];
  for (const message of messages) {
    const chunks: Uint8Array[] = [];
    const onData = (chunk: Uint8Array) => chunks.push(chunk);
    stream.on("data", onData);
    stream.write(message);
    await new Promise<void>((resolve) => stream.flush(zlib.constants.Z_SYNC_FLUSH, resolve));
    stream.off("data", onData);
    const all = join(chunks).bytes;
    out.push(all.subarray(0, all.length - 4)); // without the 00 00 ff ff tail (RFC 7692 7.2.1)
  }
  stream.close();
  return out;
}

/** What a row sends: a prelude once, then the block again and again. */
export interface Feed {
  prelude: Frames;
  block: Frames;
}

const feeds = new Map<string, Promise<Feed>>();
/** The row's frames, built once: `mode` is "plain", "takeover" or "none" (no takeover). */
export function feedOf(size: number, mode: "plain" | "takeover" | "none"): Promise<Feed> {
  const key = `${size} ${mode}`;
  let feed = feeds.get(key);
  if (!feed) {
    feed = (async () => {
      const encoder = new TextEncoder();
      const messages = Array.from(
        { length: distinct(size) },
        (_, k) => encoder.encode(feedMessage(size, k)),
      );
      if (mode === "plain") {
        const block = join(messages.map((m) => frameOf(m, false)));
        return { prelude: join([]), block };
      }
      if (mode === "none") {
        const block = join(messages.map((m) => {
          const out = zlib.deflateRawSync(m, {
            level: 6,
            finishFlush: zlib.constants.Z_SYNC_FLUSH,
          });
          return frameOf(new Uint8Array(out.subarray(0, out.length - 4)), true);
        }));
        return { prelude: join([]), block };
      }
      const both = await deflateStream([...messages, ...messages]);
      return {
        prelude: join(both.slice(0, messages.length).map((p) => frameOf(p, true))),
        block: join(both.slice(messages.length).map((p) => frameOf(p, true))),
      };
    })();
    feeds.set(key, feed);
  }
  return feed;
}

/** Writes the first `count` frames of `frames`; returns how many it wrote. */
async function writeFrames(conn: Deno.Conn, frames: Frames, count: number): Promise<number> {
  const k = Math.min(count, frames.ends.length);
  if (k > 0) await writeAll(conn, frames.bytes.subarray(0, frames.ends[k - 1]));
  return k;
}

async function handle(conn: Deno.TcpConn): Promise<void> {
  try {
    conn.setNoDelay(true);
    let mode: "plain" | "takeover" | "none" = "plain";
    const head = await acceptUpgrade(conn, ({ header }) => {
      const offer = header("sec-websocket-extensions") ?? "";
      if (/(^|,)\s*permessage-deflate/i.test(offer)) {
        mode = /server_no_context_takeover/i.test(offer) ? "none" : "takeover";
      }
      return mode === "plain"
        ? ""
        : `Sec-WebSocket-Extensions: permessage-deflate${
          mode === "none" ? "; server_no_context_takeover" : ""
        }\r\n`;
    });
    if (!head) return;
    const { query } = head;
    const size = Number(query.get("size") ?? 200);
    const { prelude, block } = await feedOf(size, mode);
    let left = Number(query.get("count") ?? 0);
    left -= await writeFrames(conn, prelude, left);
    while (left > 0) left -= await writeFrames(conn, block, left);
    if (query.get("hold") !== "1") await closeAndAwait(conn);
    else await awaitClose(conn);
  } catch {
    /* the client went away, or the timer closed the connection */
  } finally {
    try {
      conn.close();
    } catch { /* closed already */ }
  }
}

if (import.meta.main) await serveUntilTerm(handle);
