// Strict in every case (issue 24, point 4; Autobahn's non-strict cases 3.2, 4.1.3, 5.15, 6.4.3):
// - the application gets every message that arrived before a protocol fault, and can answer
//   it, before the connection is failed with the fault's code;
// - UTF-8 is checked as the bytes of a text frame arrive: an invalid sequence fails the
//   connection (1007) on the read that holds it, not when the frame is complete.
// Byte-level (Protocol, Utf8Stream) first, then end to end against the raw test server.
import assert from "node:assert/strict";
import { connect, ProtocolError } from "../mod.ts";
import { encodeFrame, OP_BINARY, OP_CONTINUATION, OP_PING, OP_TEXT } from "../protocol/frames.ts";
import { Protocol } from "../protocol/protocol.ts";
import { decodeUtf8, Utf8Stream } from "../protocol/utf8.ts";
import { concat, encoder, ROLES, sentFrames } from "./_protocol_helpers.ts";
import { OP, rawServer } from "./_raw_server.ts";

const decoder = new TextDecoder();
/** Autobahn 6.4.3's message: valid, then F4 90 80 80 (past U+10FFFF), then more. */
const PARTS = [
  new Uint8Array([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5]),
  new Uint8Array([0xf4, 0x90, 0x80, 0x80]),
  encoder.encode("edited"),
];

function isInvalidUtf8(error: unknown): boolean {
  return error instanceof ProtocolError && error.closeCode === 1007 &&
    error.rule === "invalid UTF-8 in text message";
}

Deno.test("Protocol with deferFailure reports the messages before a fault and fails only when told", () => {
  const client = new Protocol({ role: "client", deferFailure: true });
  client.receiveData(
    concat(encodeFrame(OP_TEXT, encoder.encode("order")), new Uint8Array([0x83, 0x00])),
  );
  assert.deepEqual(client.events(), [{ type: "text", data: "order" }]);
  assert.equal(client.failure?.rule, "unknown opcode 3");
  assert.equal(client.failurePending, true);
  assert.equal(client.state, "open");
  assert.deepEqual(client.dataToSend(), [], "no close frame yet");
  client.receiveData(encodeFrame(OP_PING, new Uint8Array()));
  assert.deepEqual(client.events(), [], "input after the fault is ignored");
  client.sendText("ack"); // the answer still goes out
  client.fail(client.failure!.closeCode, client.failure!.rule);
  assert.equal(client.failurePending, false);
  assert.equal(client.closeExpected(), true);
  const frames = sentFrames(client);
  assert.deepEqual(frames.map((frame) => frame.opcode), [OP_TEXT, 0x8]);
  assert.equal(decoder.decode(frames[0]!.payload), "ack");
  assert.deepEqual(client.closeSent, { code: 1002, reason: "unknown opcode 3" });
});

Deno.test("Protocol without deferFailure still fails within receiveData", () => {
  const client = new Protocol({ role: "client" });
  client.receiveData(concat(encodeFrame(OP_TEXT, encoder.encode("a")), new Uint8Array([0xc1, 0])));
  assert.deepEqual(client.events(), [{ type: "text", data: "a" }]);
  assert.equal(client.failurePending, false);
  assert.equal(client.state, "closing");
  assert.throws(() => client.sendText("late"), /closing handshake has started/);
});

Deno.test("Protocol.receiveData() fails 1007 on the read that holds invalid UTF-8 inside one frame", async (t) => {
  for (const role of ROLES) {
    await t.step(role, () => {
      const protocol = new Protocol({ role });
      const frame = encodeFrame(OP_TEXT, concat(...PARTS), { mask: role === "server" });
      const header = frame.length - concat(...PARTS).length;
      protocol.receiveData(frame.subarray(0, header + PARTS[0]!.length));
      assert.equal(protocol.failure, undefined, "the first part is valid");
      protocol.receiveData(frame.subarray(header + PARTS[0]!.length, header + 12));
      assert.equal(protocol.failure, undefined, "F4 can start a code point");
      protocol.receiveData(frame.subarray(header + 12, header + 13));
      assert.ok(isInvalidUtf8(protocol.failure), "F4 90 cannot: failed before the rest came");
      assert.equal(protocol.closeSent?.code, 1007);
    });
  }
});

Deno.test("Protocol.receiveData() decodes a text frame split at every byte, code points included", async (t) => {
  const text = "aé€😀z".repeat(3);
  for (const role of ROLES) {
    await t.step(role, () => {
      const frame = encodeFrame(OP_TEXT, encoder.encode(text), { mask: role === "server" });
      for (let split = 1; split < frame.length; split++) {
        for (const step of [1, 2, 3, 5]) {
          const protocol = new Protocol({ role });
          protocol.receiveData(frame.subarray(0, split));
          for (let at = split; at < frame.length; at += step) {
            protocol.receiveData(frame.subarray(at, at + step));
          }
          assert.deepEqual(protocol.events(), [{ type: "text", data: text }], `${split}/${step}`);
        }
      }
    });
  }
});

Deno.test("Protocol.receiveData() checks a fragmented message's text frames spanning reads too", () => {
  const client = new Protocol({ role: "client" });
  const first = encodeFrame(OP_TEXT, encoder.encode("ok "), { fin: false });
  const second = encodeFrame(
    OP_CONTINUATION,
    concat(encoder.encode("fine "), PARTS[1]!, PARTS[2]!),
  );
  client.receiveData(concat(first, second.subarray(0, 2 + 5 + 1)));
  assert.equal(client.failure, undefined);
  client.receiveData(second.subarray(8, 9));
  assert.ok(isInvalidUtf8(client.failure));
  // Binary frames spanning reads are not text: any byte is fine.
  const binary = new Protocol({ role: "client" });
  const frame = encodeFrame(OP_BINARY, PARTS[1]!);
  binary.receiveData(frame.subarray(0, 3));
  binary.receiveData(frame.subarray(3));
  assert.deepEqual(binary.events(), [{ type: "binary", data: PARTS[1]! }]);
});

Deno.test("Utf8Stream fails on the first piece that cannot be UTF-8, and on a cut end", () => {
  const cases: [string, number[][]][] = [
    ["F4 then 90 (Autobahn 6.4.4)", [[0x61, 0xf4], [0x90]]],
    ["an overlong lead", [[0x61], [0xc0, 0x80]]],
    ["a surrogate, split", [[0xed], [0xa0]]],
    ["a stray continuation", [[0x80]]],
    ["a lead then ASCII", [[0xe2, 0x82], [0x61]]],
  ];
  for (const [name, pieces] of cases) {
    const stream = new Utf8Stream();
    const last = pieces.length - 1;
    pieces.slice(0, last).forEach((piece) => stream.decode(new Uint8Array(piece), false));
    assert.throws(() => stream.decode(new Uint8Array(pieces[last]!), false), isInvalidUtf8, name);
  }
  const cut = new Utf8Stream();
  assert.equal(cut.decode(new Uint8Array([0x61, 0xe2, 0x82]), false), "a");
  assert.throws(() => cut.decode(new Uint8Array(), true), isInvalidUtf8, "cut at the end");
  const check = new Utf8Stream();
  check.check(new Uint8Array(100).fill(0x61), false); // ASCII: nothing held
  check.check(new Uint8Array([0xe2]), false);
  assert.throws(() => check.check(new Uint8Array(100).fill(0x61), false), isInvalidUtf8);
});

Deno.test("connect(): a message and a bad frame in one burst: the answer goes out, then the close", async (t) => {
  const faults = [
    { name: "reserved bits (3.2)", frame: { opcode: OP.TEXT, payload: "x", rsv: 2 }, code: 1002 },
    { name: "opcode 5 (4.1.3)", frame: { opcode: 5 }, code: 1002 },
    { name: "an orphan continuation (5.15)", frame: { opcode: OP.CONTINUATION }, code: 1002 },
    {
      name: "invalid UTF-8",
      frame: { opcode: OP.TEXT, payload: new Uint8Array([0xce, 0xff]) },
      code: 1007,
    },
  ];
  for (const fault of faults) {
    await t.step(fault.name, async () => {
      await using server = rawServer(async (peer) => {
        await peer.sendFrames([
          { opcode: OP.TEXT, payload: "one" },
          { opcode: OP.TEXT, payload: "two" },
          fault.frame,
          { opcode: OP.PING },
        ]);
        for (const expected of ["one", "two"]) {
          assert.equal(decoder.decode((await peer.readMessage())?.payload), expected);
        }
        assert.equal((await peer.expectClose())?.code, fault.code);
        assert.equal(await peer.readFrame(), null);
      });
      const ws = await connect(server.url);
      const ended = await (async () => {
        for await (const message of ws) ws.send(message as string); // Autobahn's echo client
      })().catch((error) => error);
      const info = await ws.closed;
      assert.equal(ended?.cause, info.error, "iteration ends with the fault");
      assert.deepEqual([info.code, info.initiator], [fault.code, "client"]);
      assert.ok(info.error instanceof ProtocolError);
      await server.done;
    });
  }
});

Deno.test("connect(): a text frame whose second piece is invalid UTF-8 closes 1007 before the rest", async () => {
  await using server = rawServer(async (peer) => {
    const frame = concat(
      new Uint8Array([0x81, 21]), // FIN text, 21 bytes
      ...PARTS,
    );
    await peer.sendRaw(frame.subarray(0, 2 + 11));
    await peer.sendRaw(frame.subarray(2 + 11, 2 + 15));
    // The rest is never sent: the client must fail on what it has (bounded, so that a client
    // that waits for the whole frame fails the test instead of hanging it).
    let timer: ReturnType<typeof setTimeout> | undefined;
    const close = await Promise.race([
      peer.expectClose(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no close frame within 5 s")), 5_000);
      }),
    ]).finally(() => clearTimeout(timer));
    assert.equal(close?.code, 1007);
    peer.close();
  });
  const ws = await connect(server.url);
  const info = await ws.closed;
  assert.deepEqual([info.code, info.initiator], [1007, "client"]);
  assert.ok(isInvalidUtf8(info.error));
  await server.done;
});

Deno.test("connect(): close() while a fault waits for the answers fails with the fault's code", async () => {
  await using server = rawServer(async (peer) => {
    await peer.sendFrames([{ opcode: OP.TEXT, payload: "last" }, { opcode: 3 }]);
    assert.equal((await peer.expectClose())?.code, 1002, "the fault came first");
    assert.equal(await peer.readFrame(), null);
  });
  const ws = await connect(server.url);
  assert.equal(await ws.receive(), "last");
  const closed = ws.close(); // the application's close, in the same turn
  const info = await closed;
  assert.equal(info.code, 1002);
  assert.ok(info.error instanceof ProtocolError);
  assert.equal(info.error.rule, "unknown opcode 3");
  await server.done;
});

Deno.test("decodeUtf8() gives the same text and the same 1007 for a large payload at any offset in its buffer", () => {
  // From 64 KiB up an unaligned payload is decoded from an aligned copy (protocol/utf8.ts).
  const text = "é€𝄞a".repeat(20_000); // 200 000 bytes, every sequence length
  const bytes = encoder.encode(text);
  for (const offset of [0, 1, 4, 10, 16]) {
    const buffer = new Uint8Array(bytes.length + offset);
    buffer.set(bytes, offset);
    const view = buffer.subarray(offset);
    assert.equal(decodeUtf8(view), text, `offset ${offset}`);
    view[150_001] = 0xff; // inside the payload: not UTF-8
    assert.throws(
      () => decodeUtf8(view),
      (e) => e instanceof ProtocolError && e.closeCode === 1007,
    );
    view.set(encoder.encode("\uFFFDab"), 0); // "é€" (5 bytes) becomes a real U+FFFD and "ab"
    view[150_001] = bytes[150_001]!;
    assert.equal(decodeUtf8(view), "\uFFFDab" + text.slice(2), `offset ${offset}, U+FFFD kept`);
  }
});
