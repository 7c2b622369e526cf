// Conformance, Autobahn categories 1 to 4: framing, pings and pongs, reserved
// bits, reserved opcodes. The peer is a raw TCP server written from RFC 6455
// (tests/_raw_server.ts); each case is one line of data (tests/_conformance.ts).

import assert from "node:assert/strict";
import {
  binary,
  bytesOf,
  type Case,
  close,
  conformance,
  cont,
  exchange,
  expectBinary,
  expectPong,
  expectText,
  frame,
  ping,
  pong,
  send,
  sendBytewise,
  sendEach,
  text,
  textOf,
} from "./_conformance.ts";
import { encodeFrame, type RawPeer } from "./_raw_server.ts";

// --- 1. Framing --------------------------------------------------------------

const SIZES = [0, 125, 126, 127, 128, 65535, 65536, 1024 * 1024];
const BIG = { timeout: 30_000 }; // 65 000 awaited 1-byte writes take a few seconds

/** The client masks every frame, each with a fresh key (RFC 6455 section 5.3). */
async function freshMasks(peer: RawPeer): Promise<void> {
  await peer.sendFrames(Array.from({ length: 8 }, (_, i) => text(`message ${i}`)));
  const keys = new Set<string>();
  for (let i = 0; i < 8; i++) {
    const f = await peer.readFrame(); // throws if the client did not mask it
    assert.ok(f, "the client closed TCP instead of echoing");
    keys.add(f.mask.join(","));
  }
  assert.ok(keys.size > 1, "8 frames, all with the same masking key");
}

// deno-fmt-ignore
const framing: Case[] = [
  ...SIZES.flatMap((n, i): Case[] => [
    { id: `1.1.${i + 1}`, title: `text of ${n} bytes in one write is echoed`, steps: exchange(text(textOf(n))) },
    { id: `1.2.${i + 1}`, title: `binary of ${n} bytes in one write is echoed`, steps: exchange(binary(bytesOf(n))) },
    { id: `1.3.${i + 1}`, title: `text of ${n} bytes in 1-byte writes is echoed`, steps: [sendBytewise(text(textOf(n))), expectText(textOf(n))], ...(n > 1000 ? BIG : {}) },
    { id: `1.4.${i + 1}`, title: `binary of ${n} bytes in 1-byte writes is echoed`, steps: [sendBytewise(binary(bytesOf(n))), expectBinary(bytesOf(n))], ...(n > 1000 ? BIG : {}) },
  ]),
  { id: "1.5.1", title: "text, binary and text in one write are echoed in order", steps: exchange(text("one"), binary(bytesOf(2)), text("three")) },
  { id: "1.5.2", title: "a text frame in the same write as the 101 response is delivered", handshake: { trailing: encodeFrame(text("early")) }, steps: [expectText("early")] },
  { id: "1.5.3", title: "the client masks every frame with a fresh key", steps: [freshMasks] },
  { id: "1.5.4", title: "a masked text frame from the server", steps: [send(text("masked", { mask: true }))], fails: 1002 },
  { id: "1.5.5", title: "a masked ping from the server", steps: [send(ping("masked", { mask: true }))], fails: 1002 },
  { id: "1.5.6", title: "a 64-bit length with the most significant bit set", steps: [send(binary("", { length: 2n ** 63n }))], fails: 1002 },
];

// --- 2. Pings and pongs ------------------------------------------------------

const tenPings = Array.from({ length: 10 }, (_, i) => ping(`ping ${i}`));

// deno-fmt-ignore
const pings: Case[] = [
  { id: "2.1", title: "a ping with an empty payload gets an empty pong", steps: exchange(ping("")) },
  { id: "2.2", title: "a ping with 125 bytes of text gets a pong with the same payload", steps: exchange(ping(textOf(125))) },
  { id: "2.3", title: "a ping with 125 bytes of binary gets a pong with the same payload", steps: exchange(ping(bytesOf(125))) },
  { id: "2.4", title: "a ping with a 126-byte payload", steps: [send(ping(textOf(126)))], fails: 1002 },
  { id: "2.5", title: "a fragmented ping", steps: [send(ping("frag", { fin: false }), cont("ment"))], fails: 1002 },
  { id: "2.6", title: "an unsolicited pong is ignored and a following text is echoed", steps: [send(pong("unsolicited"), text("after")), expectText("after")] },
  { id: "2.7", title: "an unsolicited 125-byte pong is ignored and a following text is echoed", steps: [send(pong(bytesOf(125)), text("after")), expectText("after")] },
  { id: "2.8", title: "10 pings in one write get 10 pongs in order", steps: exchange(...tenPings) },
  { id: "2.9", title: "10 pings in 10 writes get 10 pongs in order", steps: [sendEach(...tenPings), ...tenPings.map((p) => expectPong(p.payload))] },
  { id: "2.10", title: "a ping in 1-byte writes gets its pong", steps: [sendBytewise(ping("bytewise")), expectPong("bytewise")] },
  { id: "2.11", title: "a pong with a 126-byte payload", steps: [send(pong(textOf(126)))], fails: 1002 },
];

// --- 3. Reserved bits --------------------------------------------------------

const RSV = [["RSV1", 4], ["RSV2", 2], ["RSV3", 1]] as const;
const KINDS = [
  ["a text frame", (rsv: number) => text("hello", { rsv })],
  ["a binary frame", (rsv: number) => binary(bytesOf(8), { rsv })],
  ["a ping", (rsv: number) => ping("p", { rsv })],
  ["a close frame", (rsv: number) => close(1000, "bye", { rsv })],
] as const;

// deno-fmt-ignore
const reservedBits: Case[] = [
  ...KINDS.flatMap(([kind, make], k) =>
    RSV.map(([name, rsv], r): Case => ({
      id: `3.${k * 3 + r + 1}`,
      title: `${name} on ${kind}`,
      steps: [send(make(rsv))],
      fails: 1002,
    }))
  ),
  { id: "3.13", title: "RSV2 on a text after a valid text was echoed", steps: [...exchange(text("first")), send(text("second", { rsv: 2 }))], fails: 1002 },
  { id: "3.14", title: "all three RSV bits on a binary frame", steps: [send(binary(bytesOf(4), { rsv: 7 }))], fails: 1002 },
  { id: "3.15", title: "RSV1 on a pong", steps: [send(pong("p", { rsv: 4 }))], fails: 1002 },
  { id: "3.16", title: "RSV1 on the continuation of a fragmented text", steps: [send(text("frag", { fin: false }), cont("ment", { rsv: 4 }))], fails: 1002 },
  { id: "3.17", title: "RSV1 on a text in 1-byte writes", steps: [sendBytewise(text("hello", { rsv: 4 }))], fails: 1002 },
  { id: "3.18", title: "RSV3 on a text followed by a ping: no pong", steps: [send(text("hello", { rsv: 1 }), ping("no"))], fails: 1002 },
];

// --- 4. Opcodes --------------------------------------------------------------

const RESERVED_OPCODES = [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf];
const hex = (op: number) => `0x${op.toString(16).toUpperCase()}`;

const opcodes: Case[] = [
  ...RESERVED_OPCODES.map((op, i): Case => ({
    id: `4.1.${i + 1}`,
    title: `reserved opcode ${hex(op)}`,
    steps: [send(frame(op, "reserved"))],
    fails: 1002,
  })),
  ...RESERVED_OPCODES.map((op, i): Case => ({
    id: `4.2.${i + 1}`,
    title: `a text that is echoed, then reserved opcode ${hex(op)} with a ping behind it,`,
    steps: [...exchange(text("valid")), send(frame(op), ping("no"))],
    fails: 1002,
  })),
];

conformance([...framing, ...pings, ...reservedBits, ...opcodes]);
