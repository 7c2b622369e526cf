// The firehose section of `deno task bench` (bench/firehose.ts) with tiny counts, so that it
// cannot rot: every client reads every message, and a feed that ends early fails naming the
// client and the count it reached. Speed is not asserted here.
import assert from "node:assert/strict";
import {
  CLIENT_LABELS,
  FIREHOSE_CLIENTS,
  firehoseBench,
  type FirehoseClient,
  firehoseTable,
} from "../bench/firehose.ts";

Deno.test("bench/firehose.ts runs every client on text and binary rows and counts every message", async () => {
  const result = await firehoseBench({
    cases: [
      { size: 32, binary: false, count: 3000 },
      { size: 1024, binary: true, count: 500 },
      { size: 262144, binary: false, count: 4 },
    ],
    reps: 2,
    warmup: 0,
  });
  assert.match(result.node ?? "", /^v\d+\./);
  assert.deepEqual(result.rows.map((r) => r.payload), [
    "32 B text",
    "1 KiB binary",
    "256 KiB text",
  ]);
  for (const row of result.rows) {
    for (const name of FIREHOSE_CLIENTS) {
      assert.equal(row.runs[name].length, 2, name);
      for (const run of row.runs[name]) assert.equal(run.n, row.count, `${row.payload} ${name}`);
      assert.ok(row.rate[name] > 0 && row.cpu[name] > 0, `${row.payload} ${name}`);
    }
  }
  const text = firehoseTable(result);
  const tables = text.split("\n\n").filter((part) => part.startsWith("|"));
  assert.equal(tables.length, 2); // CPU a message, then messages a second
  for (const t of tables) {
    const lines = t.split("\n");
    assert.equal(lines.length, 2 + 3); // head, rule, one line a row
    for (const line of lines) assert.equal(line.split(" | ").length, 2 + FIREHOSE_CLIENTS.length);
  }
  assert.match(
    text,
    /\| 32 B text \| 3,000 \| [\d.]+ \(0\.\d\dx native\) \| [\d.]+ \([\d.]+x floor\) \| [\d.]+ \(\*\*[\d.]+x native, [\d.]+x floor\*\*\) \|/,
  );
  assert.match(text, /Node ws client \(v\d+/);
});

Deno.test("bench/firehose.ts fails naming the client and the count when the feed ends early", async () => {
  const cases = [{ size: 200, binary: true, count: 100 }];
  const expected: Record<"close" | "drop", Record<FirehoseClient, RegExp>> = {
    close: {
      floor: /the server sent a close frame$/,
      raw: /the connection closed \(code 1000, wasClean true\)$/,
      wsbeat: /the connection closed \(code 1000, server\)$/,
      native: /the connection closed \(code 1000, server\)$/,
      ws: /the connection closed \(code 1000\)$/,
    },
    drop: {
      floor: /the connection closed with no close frame$/,
      raw: /the connection closed \(code 0, wasClean false\)$/,
      wsbeat: /\(1006\)/,
      native: /\(1006\)/,
      ws: /the connection closed \(code 1006\)$/,
    },
  };
  for (const how of ["close", "drop"] as const) {
    for (const name of FIREHOSE_CLIENTS) {
      const error = await firehoseBench({
        cases,
        reps: 1,
        warmup: 0,
        clients: [name],
        fault: { after: 7, how },
      }).then(() => undefined, (error: Error) => error);
      assert.ok(error, `${how} ${name}: no error`);
      const prefix = `firehose, 200 B binary: the ${
        CLIENT_LABELS[name]
      } stopped after 7 of 100 messages: `;
      assert.ok(error.message.startsWith(prefix), `${how} ${name}: ${error.message}`);
      assert.match(error.message, expected[how][name], `${how} ${name}`);
    }
  }
});
