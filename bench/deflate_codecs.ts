// deno-lint-ignore-file no-import-prefix -- fflate is a measurement-only stand-in for "an inflater written in TypeScript"
// CPU per message of the permessage-deflate candidates, for 200 B, 1 KiB and
// 16 KiB of compressible JSON, deflate and inflate, with context takeover
// where the candidate can do it:
//   zlib-sync   node:zlib deflateRawSync / inflateRawSync, one call per message
//               (inflate with takeover: the window prepended as a stored block)
//   zlib-stream node:zlib createDeflateRaw / createInflateRaw, flush(Z_SYNC_FLUSH), async
//   web-stream  CompressionStream / DecompressionStream("deflate-raw"), persistent, async
//   wsbeat      protocol/deflate_codec.ts: zlib-sync, tuned (window and chunk sized to the message)
//   fflate      a deflate/inflate written in JS/TS (npm:fflate, measurement only)
// Run: deno run --allow-read=. --allow-env bench/deflate_codecs.ts [iterations]
import * as zlib from "node:zlib";
import { Deflater, Inflater } from "../protocol/deflate_codec.ts";
import { deflateSync as fDeflate, inflateSync as fInflate } from "npm:fflate@0.8.2";

const SYNC = zlib.constants.Z_SYNC_FLUSH;
const TAIL = new Uint8Array([0, 0, 0xff, 0xff]);
// fflate wants a final block: an empty fixed block with BFINAL set.
const FINAL = new Uint8Array([3, 0]);
const N = Number(Deno.args[0] ?? 2000);

function json(size: number, seed: number): Uint8Array {
  const items = [];
  let text = "";
  for (let i = 0; text.length < size; i++) {
    items.push({
      id: seed * 1000 + i,
      user: `user-${(seed + i) % 97}`,
      price: 10 + i * 0.25,
      ok: true,
    });
    text = JSON.stringify({ type: "update", seq: seed, items });
  }
  return new TextEncoder().encode(text.slice(0, size));
}
const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};
const strip = (p: Uint8Array) => p.subarray(0, p.length - 4);

function storedPrefix(window: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + window.length);
  out[1] = window.length & 0xff, out[2] = window.length >> 8;
  out[3] = ~window.length & 0xff, out[4] = (~window.length >> 8) & 0xff;
  out.set(window, 5);
  return out;
}

async function time(label: string, messages: Uint8Array[], run: (m: Uint8Array) => unknown) {
  for (let i = 0; i < 200; i++) await run(messages[i % messages.length]!);
  // The best of 5 rounds: the cores are shared, the minimum is the least disturbed.
  let best = Infinity;
  for (let round = 0, i = 0; round < 5; round++) {
    const start = performance.now();
    for (let n = 0; n < N / 5; n++, i++) await run(messages[i % messages.length]!);
    best = Math.min(best, ((performance.now() - start) * 1000) / (N / 5));
  }
  console.log(`${label.padEnd(44)} ${best.toFixed(1).padStart(7)} µs/msg`);
}

class StreamPair {
  #w: WritableStreamDefaultWriter<Uint8Array>;
  #r: ReadableStreamDefaultReader<Uint8Array>;
  constructor(s: CompressionStream | DecompressionStream) {
    this.#w = s.writable.getWriter() as WritableStreamDefaultWriter<Uint8Array>;
    this.#r = s.readable.getReader() as ReadableStreamDefaultReader<Uint8Array>;
  }
  async run(input: Uint8Array): Promise<Uint8Array> {
    const read = this.#r.read();
    await this.#w.write(input);
    return (await read).value!;
  }
  async close() {
    await this.#w.close().catch(() => {});
    while (!(await this.#r.read()).done);
  }
}

function zlibStream(stream: zlib.DeflateRaw | zlib.InflateRaw) {
  return (input: Uint8Array) =>
    new Promise<Uint8Array>((resolve) => {
      const chunks: Uint8Array[] = [];
      const onData = (c: Uint8Array) => chunks.push(c);
      stream.on("data", onData);
      stream.write(input);
      stream.flush(SYNC, () => {
        stream.off("data", onData);
        resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      });
    });
}

for (const size of [200, 1024, 16 * 1024]) {
  const messages = Array.from({ length: 256 }, (_, i) => json(size, i));
  // Compressed forms, without and with context takeover (from a persistent deflater).
  const independent = messages.map((m) => strip(zlib.deflateRawSync(m, { finishFlush: SYNC })));
  const takeoverStream = new StreamPair(new CompressionStream("deflate-raw"));
  const takeover: Uint8Array[] = [];
  for (let i = 0; i < N + 200; i++) {
    takeover.push(strip(await takeoverStream.run(messages[i % 256]!)));
  }
  await takeoverStream.close();
  const ratio = independent.reduce((s, p) => s + p.length, 0) /
    messages.reduce((s, m) => s + m.length, 0);
  const takeoverRatio = takeover.slice(0, 256).reduce((s, p) => s + p.length, 0) /
    messages.reduce((s, m) => s + m.length, 0);
  console.log(
    `\n# ${size} B JSON (compressed/original: each message alone ${
      ratio.toFixed(2)
    }, with context takeover ${takeoverRatio.toFixed(2)})`,
  );

  await time(
    "zlib-sync deflate (no takeover)",
    messages,
    (m) => zlib.deflateRawSync(m, { finishFlush: SYNC }),
  );
  await time(
    "zlib-sync inflate (no takeover)",
    independent,
    (p) => zlib.inflateRawSync(concat(p, TAIL), { finishFlush: SYNC, maxOutputLength: 1 << 24 }),
  );
  {
    let window = new Uint8Array(0);
    let i = 0;
    await time("zlib-sync inflate (takeover, stored window)", messages, () => {
      const p = takeover[i++]!;
      const prefix = storedPrefix(window);
      const input = new Uint8Array(prefix.length + p.length + 4);
      input.set(prefix), input.set(p, prefix.length), input.set(TAIL, prefix.length + p.length);
      const out = zlib.inflateRawSync(input, { finishFlush: SYNC }).subarray(window.length);
      const joined = concat(window, out);
      window = joined.slice(Math.max(0, joined.length - 32768));
      return out;
    });
  }
  {
    const d = zlib.createDeflateRaw();
    await time("zlib-stream deflate (takeover, async)", messages, zlibStream(d));
    d.close();
    const inf = zlib.createInflateRaw();
    const run = zlibStream(inf);
    let i = 0;
    await time(
      "zlib-stream inflate (takeover, async)",
      messages,
      () => run(concat(takeover[i++]!, TAIL)),
    );
    inf.close();
  }
  {
    const c = new StreamPair(new CompressionStream("deflate-raw"));
    await time("web-stream deflate (takeover, async)", messages, (m) => c.run(m));
    await c.close();
    const d = new StreamPair(new DecompressionStream("deflate-raw"));
    let i = 0;
    await time(
      "web-stream inflate (takeover, async)",
      messages,
      () => d.run(concat(takeover[i++]!, TAIL)),
    );
    await d.close();
  }
  {
    const deflater = new Deflater({ zlib, threshold: 0 });
    await time("wsbeat Deflater (sync, no takeover)", messages, (m) => deflater.deflate(m));
    const plain = new Inflater({ zlib, noContextTakeover: true });
    await time(
      "wsbeat Inflater (sync, no takeover)",
      independent,
      (p) => plain.inflate([p], 1 << 24),
    );
    const inflater = new Inflater({ zlib });
    let i = 0;
    await time(
      "wsbeat Inflater (sync, takeover)",
      messages,
      () => inflater.inflate([takeover[i++]!], 1 << 24),
    );
  }
  await time("fflate deflate (no takeover)", messages, (m) => fDeflate(m));
  await time(
    "fflate inflate (no takeover)",
    independent,
    (p) => fInflate(concat(concat(p, TAIL), FINAL)),
  );
}
