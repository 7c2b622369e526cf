// MessageAssembler (protocol/message_assembly.ts): data frames into messages, UTF-8 checked
// fragment by fragment. Its fragmentation rules (receive()) are tested through Protocol
// (tests/protocol_test.ts).
import assert from "node:assert/strict";
import { ProtocolError } from "../util/errors.ts";
import { OP_BINARY, OP_TEXT } from "../protocol/frames.ts";
import { grownCapacity, MessageAssembler } from "../protocol/message_assembly.ts";
import { POOLED_MAX } from "../protocol/buffers.ts";

const encoder = new TextEncoder();

function invalidUtf8(error: unknown): boolean {
  return error instanceof ProtocolError && error.closeCode === 1007 &&
    error.rule === "invalid UTF-8 in text message";
}

Deno.test("MessageAssembler.whole() decodes text and hands binary on as it is", () => {
  const messages = new MessageAssembler(1024);
  assert.deepEqual(messages.whole(OP_TEXT, encoder.encode("héllo \uFFFD")), {
    type: "text",
    data: "héllo \uFFFD",
  });
  const bytes = new Uint8Array([1, 2, 3]);
  const binary = messages.whole(OP_BINARY, bytes);
  assert.equal(binary.data, bytes, "not a copy");
  assert.equal(messages.open, false);
});

Deno.test("MessageAssembler.whole() with echo gives the payload as the message's echo", () => {
  const messages = new MessageAssembler(1024);
  const payload = encoder.encode("hi");
  assert.deepEqual(messages.whole(OP_TEXT, payload, true), {
    type: "text",
    data: "hi",
    echo: payload,
  });
  assert.equal(messages.whole(OP_BINARY, payload, true).echo, payload);
});

Deno.test("MessageAssembler.whole() fails 1007 on invalid UTF-8, a BOM kept", () => {
  const messages = new MessageAssembler(1024);
  assert.throws(() => messages.whole(OP_TEXT, new Uint8Array([0x68, 0xff])), invalidUtf8);
  assert.throws(() => messages.whole(OP_TEXT, new Uint8Array([0xed, 0xa0, 0x80])), invalidUtf8);
  const bom = messages.whole(OP_TEXT, new Uint8Array([0xef, 0xbb, 0xbf, 0x61]));
  assert.equal(bom.data, "\uFEFFa");
});

Deno.test("MessageAssembler joins fragments, a code point split across them included", () => {
  // The limit is the frame reader's to enforce (on headers); the assembler grows up to it.
  const messages = new MessageAssembler(4096);
  const euro = encoder.encode("€"); // 3 bytes
  messages.start(OP_TEXT, euro.subarray(0, 1));
  assert.equal(messages.open, true);
  assert.equal(messages.add(euro.subarray(1, 2), false), undefined);
  assert.equal(messages.add(new Uint8Array(), false), undefined, "an empty fragment");
  assert.deepEqual(messages.add(euro.subarray(2), true), { type: "text", data: "€" });
  assert.equal(messages.open, false);
  messages.start(OP_BINARY, new Uint8Array([1]));
  for (let i = 2; i <= 2000; i++) messages.add(new Uint8Array([i & 0xff]), false);
  const whole = messages.add(new Uint8Array([7]), true);
  assert.equal(whole?.type, "binary");
  assert.equal((whole?.data as Uint8Array).length, 2001);
  assert.equal((whole?.data as Uint8Array)[2000], 7);
});

Deno.test("MessageAssembler fails 1007 on a bad fragment before the last, and on a cut code point", () => {
  const bad = new MessageAssembler(1024);
  bad.start(OP_TEXT, encoder.encode("ok"));
  assert.throws(() => bad.add(new Uint8Array([0xc0, 0x80]), false), invalidUtf8);
  const cut = new MessageAssembler(1024);
  cut.start(OP_TEXT, encoder.encode("€").subarray(0, 2));
  assert.throws(() => cut.add(new Uint8Array(), true), invalidUtf8);
});

Deno.test("MessageAssembler.reset() drops an open message", () => {
  const messages = new MessageAssembler(1024);
  messages.start(OP_BINARY, new Uint8Array([1, 2]));
  messages.reset();
  assert.equal(messages.open, false);
  messages.start(OP_BINARY, new Uint8Array([3]));
  assert.deepEqual(messages.add(new Uint8Array([4]), true), {
    type: "binary",
    data: new Uint8Array([3, 4]),
  });
});

Deno.test("grownCapacity() doubles, so a message in many fragments is copied a bounded number of times", () => {
  let capacity = 0, growths = 0;
  for (let need = 1024; need <= 4 * 1024 * 1024; need += 1024) { // 4 MiB in 1 KiB fragments
    if (need <= capacity) continue;
    capacity = grownCapacity(capacity, need, Infinity);
    growths++;
  }
  assert.ok(growths <= 16, `${growths} growths`);
  assert.equal(grownCapacity(100_000, 150_000, Infinity), 200_000, "doubling");
  assert.equal(
    grownCapacity(200_000, 210_000, Infinity),
    POOLED_MAX,
    "within the pool while it fits",
  );
  assert.equal(grownCapacity(300_000, 310_000, Infinity), 600_000, "past the pool: doubling");
  assert.equal(grownCapacity(300_000, 310_000, 400_000), 400_000, "never past the limit");
  assert.equal(grownCapacity(0, 5000, 1000), 5000, "never below what it must hold");
});

Deno.test("MessageAssembler gathers a 4 MiB text message sent in 1 KiB fragments", () => {
  const assembler = new MessageAssembler(Infinity);
  const fragment = new TextEncoder().encode("é".repeat(512)); // 1 KiB
  assembler.start(OP_TEXT, fragment);
  let message;
  for (let i = 1; i < 4096; i++) message = assembler.add(fragment, i === 4095);
  assert.equal(message?.type, "text");
  assert.equal(message?.data.length, 4096 * 512);
});
