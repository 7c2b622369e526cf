// Memory kept by idle permessage-deflate codecs, both directions of one
// connection, after each has handled one 40 KiB message (so windows are full):
//   wsbeat       protocol/deflate_codec.ts: Inflater (context takeover) + Deflater
//   wsbeat-nct   the same, Inflater without context takeover
//   web-stream   a persistent DecompressionStream + CompressionStream("deflate-raw")
//   zlib-stream  a persistent node:zlib createInflateRaw + createDeflateRaw
// Reports RSS and heap growth per connection (zlib's own state is outside
// the JS heap, so RSS is the figure that counts).
// Run: deno run --allow-read=. --v8-flags=--expose-gc bench/deflate_memory.ts [counts...]
import * as zlib from "node:zlib";
import { Deflater, Inflater } from "../protocol/deflate_codec.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  throw new Error("Cannot measure memory as gc is not exposed: run with --v8-flags=--expose-gc");
}
const counts = Deno.args.length > 0 ? Deno.args.map(Number) : [1000, 10000];
const message = new TextEncoder().encode(
  JSON.stringify({ a: "x".repeat(200), b: [1, 2, 3] }).repeat(180),
);
const compressed = new Uint8Array(
  zlib.deflateRawSync(message, { finishFlush: zlib.constants.Z_SYNC_FLUSH }),
);
const payload = compressed.subarray(0, compressed.length - 4);

type Make = () => Promise<{ held?: unknown; close(): Promise<void> }>;
const kinds: Record<string, Make> = {
  wsbeat() {
    const inflater = new Inflater({ zlib });
    const deflater = new Deflater({ zlib });
    inflater.inflate([payload], 1 << 20);
    deflater.deflate(message);
    return Promise.resolve({ held: [inflater, deflater], close: () => Promise.resolve() });
  },
  "wsbeat-nct"() {
    const inflater = new Inflater({ zlib, noContextTakeover: true });
    const deflater = new Deflater({ zlib });
    inflater.inflate([payload], 1 << 20);
    deflater.deflate(message);
    return Promise.resolve({ held: [inflater, deflater], close: () => Promise.resolve() });
  },
  async "web-stream"() {
    const d = new DecompressionStream("deflate-raw");
    const c = new CompressionStream("deflate-raw");
    const dw = d.writable.getWriter(), dr = d.readable.getReader();
    const cw = c.writable.getWriter(), cr = c.readable.getReader();
    const read1 = dr.read(), read2 = cr.read();
    await dw.write(compressed);
    await cw.write(message);
    await read1, await read2;
    return {
      async close() {
        await dw.close().catch(() => {}), await cw.close().catch(() => {});
        while (!(await dr.read()).done);
        while (!(await cr.read()).done);
      },
    };
  },
  async "zlib-stream"() {
    const inf = zlib.createInflateRaw();
    const def = zlib.createDeflateRaw();
    await new Promise<void>((resolve) => {
      inf.once("data", () => resolve());
      inf.write(compressed);
    });
    await new Promise<void>((resolve) => {
      def.once("data", () => resolve());
      def.write(message);
      def.flush(zlib.constants.Z_SYNC_FLUSH);
    });
    return {
      close: () =>
        new Promise<void>((resolve) => {
          inf.close(() => def.close(() => resolve()));
        }),
    };
  },
};

function usage() {
  for (let i = 0; i < 3; i++) gc!();
  const m = Deno.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed + m.external };
}

const only = Deno.env.get("KINDS")?.split(",");
for (const [name, make] of Object.entries(kinds)) {
  if (only && !only.includes(name)) continue;
  for (const count of counts) {
    const before = usage();
    const held = [];
    for (let i = 0; i < count; i++) held.push(await make());
    const after = usage();
    const rss = (after.rss - before.rss) / count;
    const heap = (after.heap - before.heap) / count;
    console.log(
      `${name.padEnd(12)} ${String(count).padStart(6)} codec pairs: ${
        (rss / 1024).toFixed(1).padStart(7)
      } KiB RSS, ${(heap / 1024).toFixed(1).padStart(6)} KiB heap+external per connection`,
    );
    for (const h of held) await h.close();
    held.length = 0;
  }
}
