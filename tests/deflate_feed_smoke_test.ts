// The permessage-deflate section of `deno task bench` (bench/deflate_feed.ts) with tiny counts,
// so that it cannot rot: every client negotiates what it should (a client that ends up with the
// wrong extension fails), reads every message and checks its length; the idle memory rows open
// their connections. Speed is not asserted here.
import assert from "node:assert/strict";
import {
  deflateFeedBench,
  deflateFeedTable,
  deflateMemoryBench,
  deflateMemoryTable,
  FEED_CLIENTS,
} from "../bench/deflate_feed.ts";
import { feedMessage } from "../bench/_deflate_feed_server.ts";

Deno.test("bench/deflate_feed.ts reads the compressed feed with every client and measures the wire", async () => {
  const rows = await deflateFeedBench({
    cases: [{ size: 200, count: 300 }, { size: 16384, count: 20 }],
    reps: 1,
    warmup: 0,
  });
  assert.deepEqual(rows.map((r) => r.size), [200, 16384]);
  for (const row of rows) {
    for (const client of FEED_CLIENTS) assert.ok(row.cpu[client] > 0, `${row.size} ${client}`);
    // Compressible JSON: takeover beats no takeover, which beats nothing.
    assert.ok(row.wire.takeover < row.wire.none && row.wire.none < row.wire.plain / 1.5);
    assert.equal(row.wire.plain, row.size + (row.size < 126 ? 2 : 4));
  }
  const text = deflateFeedTable(rows);
  assert.match(text, /\| 200 B JSON \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);
  assert.match(text, /\| 16 KiB JSON \| \d+ \([\d.]+ %\) \| \d+ \([\d.]+ %\) \| 16388 \|/);
});

Deno.test("bench/deflate_feed.ts measures idle connections with and without compression", async () => {
  const rows = await deflateMemoryBench([30]);
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.connections, 30);
  assert.match(deflateMemoryTable(rows), /\| 30 \| -?[\d.]+ KiB \|/);
});

Deno.test("feedMessage() builds JSON of exactly the size asked for", () => {
  for (const size of [4, 5, 90, 200, 1024, 16384]) {
    for (const k of [0, 7]) {
      const text = feedMessage(size, k);
      assert.equal(text.length, size);
      JSON.parse(text);
    }
  }
  assert.notEqual(feedMessage(1024, 1), feedMessage(1024, 2));
});
