// Conformance, Autobahn categories 5, 6 and 9: fragmentation, UTF-8 handling
// and message size limits. The peer is a raw TCP server written from RFC 6455
// (tests/_raw_server.ts); each case is one line of data (tests/_conformance.ts).

import {
  b,
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
  ping,
  pong,
  send,
  sendBytewise,
  sendEach,
  sendRaw,
  text,
  textOf,
  utf8,
} from "./_conformance.ts";
import { concat, encodeFrame, type FrameSpec } from "./_raw_server.ts";

/** `data` as a text or binary message in fragments of `size` bytes (at least two). */
function fragments(kind: "text" | "binary", data: string | Uint8Array, size: number): FrameSpec[] {
  const bytes = typeof data === "string" ? utf8(data) : data;
  const frames: FrameSpec[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) {
    const payload = bytes.subarray(offset, offset + size);
    const fin = offset + size >= bytes.length;
    frames.push(
      offset === 0 ? (kind === "text" ? text : binary)(payload, { fin }) : cont(payload, { fin }),
    );
  }
  return frames;
}

/** The first `n` bytes of a frame: its header and the start of its payload. */
const partOf = (f: FrameSpec, n: number) => sendRaw(encodeFrame(f).subarray(0, n));

// --- 5. Fragmentation --------------------------------------------------------

const between = [text("frag", { fin: false }), ping("between"), cont("ment")];
const pingEvery = [
  text("0", { fin: false }),
  ...Array.from({ length: 9 }, (_, i) => [ping(`p${i}`), cont(`${i + 1}`, { fin: i === 8 })])
    .flat(),
];

// deno-fmt-ignore
const fragmentation: Case[] = [
  { id: "5.1", title: "a text in 2 fragments is echoed whole", steps: [send(text("Hello, ", { fin: false }), cont("world")), expectText("Hello, world")] },
  { id: "5.2", title: "a binary in 2 fragments is echoed whole", steps: [send(binary(bytesOf(3), { fin: false }), cont(bytesOf(200).subarray(3))), expectBinary(bytesOf(200))] },
  { id: "5.3", title: "a text in 100 fragments, each its own write, is echoed whole", steps: [sendEach(...fragments("text", textOf(1000), 10)), expectText(textOf(1000))] },
  { id: "5.4", title: "a 1000-byte text in 1-byte fragments is echoed whole", steps: [send(...fragments("text", textOf(1000), 1)), expectText(textOf(1000))] },
  { id: "5.5", title: "a 1000-byte binary in 1-byte fragments, in 1-byte writes, is echoed whole", steps: [sendBytewise(...fragments("binary", bytesOf(1000), 1)), expectBinary(bytesOf(1000))] },
  { id: "5.6", title: "a ping between fragments gets its pong, then the message is echoed", steps: [send(...between), expectPong("between"), expectText("fragment")] },
  { id: "5.7", title: "a ping between fragments, each frame its own write, gets its pong first", steps: [sendEach(...between), expectPong("between"), expectText("fragment")] },
  { id: "5.8", title: "a ping between fragments, in 1-byte writes, gets its pong first", steps: [sendBytewise(...between), expectPong("between"), expectText("fragment")] },
  { id: "5.9", title: "a ping between every two of 10 fragments: 9 pongs, then the message", steps: [send(...pingEvery), ...Array.from({ length: 9 }, (_, i) => expectPong(`p${i}`)), expectText("0123456789")] },
  { id: "5.10", title: "an unsolicited pong between fragments is ignored", steps: [send(text("frag", { fin: false }), pong("stray"), cont("ment")), expectText("fragment")] },
  { id: "5.11", title: "a text of three empty fragments is echoed as an empty text", steps: [send(text("", { fin: false }), cont("", { fin: false }), cont("")), expectText("")] },
  { id: "5.12", title: "an empty first fragment and a final one with data are echoed whole", steps: [send(binary("", { fin: false }), cont(bytesOf(5))), expectBinary(bytesOf(5))] },
  { id: "5.13", title: "a final continuation frame with no message started", steps: [send(cont("orphan"))], fails: 1002 },
  { id: "5.14", title: "a non-final continuation frame with no message started", steps: [send(cont("orphan", { fin: false }), cont("end"))], fails: 1002 },
  { id: "5.15", title: "a continuation frame after a whole text that was echoed", steps: [...exchange(text("done")), send(cont("again"))], fails: 1002 },
  { id: "5.16", title: "a new text inside a fragmented text", steps: [send(text("a", { fin: false }), text("b"), cont("c"))], fails: 1002 },
  { id: "5.17", title: "a new binary inside a fragmented text", steps: [send(text("a", { fin: false }), binary(bytesOf(1)))], fails: 1002 },
  { id: "5.18", title: "a new non-final text inside a fragmented binary", steps: [send(binary(bytesOf(1), { fin: false }), text("b", { fin: false }))], fails: 1002 },
  { id: "5.19", title: "a fragmented close", steps: [send(close(1000, "frag", { fin: false }), cont("ment"))], fails: 1002 },
  { id: "5.20", title: "a fragmented ping between the fragments of a text", steps: [send(text("a", { fin: false }), ping("p", { fin: false }), cont("b"))], fails: 1002 },
  { id: "5.21", title: "a fragmented pong", steps: [send(pong("p", { fin: false }), cont("q"))], fails: 1002 },
  { id: "5.22", title: "a close between fragments is answered and the unfinished message dropped", steps: [send(text("never", { fin: false }), close(1000, "mid-message"))], closedBy: { code: 1000, reason: "mid-message" } },
];

// --- 6. UTF-8 ----------------------------------------------------------------

// deno-fmt-ignore
const VALID: [string, string][] = [
  ["2-byte code points (U+0080, U+00E9, U+07FF)", "\u0080\u00e9\u07ff"],
  ["3-byte code points (U+0800, U+20AC, U+D7FF, U+E000, U+FFFD)", "\u0800\u20ac\ud7ff\ue000\ufffd"],
  ["4-byte code points (U+10000, U+1D11E, U+1F600, U+10FFFF)", "\u{10000}\u{1d11e}\u{1f600}\u{10ffff}"],
  ["mixed widths (Hello-µ@ßöäüàá-UTF-8!!)", "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!"],
  ["the Greek word κόσμε", "\u03ba\u1f79\u03c3\u03bc\u03b5"],
  ["noncharacters (U+FDD0, U+FFFE, U+FFFF)", "\ufdd0\ufffe\uffff"],
  ["a NUL character", "a\u0000b"],
  ["a leading U+FEFF (a BOM, which must be kept)", "\ufeffbom"],
];

// deno-fmt-ignore
const INVALID: [string, Uint8Array][] = [
  ["a lone continuation byte (80)", b(0x80)],
  ["a stray continuation byte after ASCII (61 BF)", b(0x61, 0xbf)],
  ["an overlong '/' in 2 bytes (C0 AF)", b(0xc0, 0xaf)],
  ["an overlong '/' in 3 bytes (E0 80 AF)", b(0xe0, 0x80, 0xaf)],
  ["an overlong '/' in 4 bytes (F0 80 80 AF)", b(0xf0, 0x80, 0x80, 0xaf)],
  ["an overlong NUL (C0 80)", b(0xc0, 0x80)],
  ["an overlong U+07FF in 3 bytes (E0 9F BF)", b(0xe0, 0x9f, 0xbf)],
  ["an overlong U+FFFF in 4 bytes (F0 8F BF BF)", b(0xf0, 0x8f, 0xbf, 0xbf)],
  ["U+D800 encoded (ED A0 80)", b(0xed, 0xa0, 0x80)],
  ["U+DFFF encoded (ED BF BF)", b(0xed, 0xbf, 0xbf)],
  ["a surrogate pair encoded (ED A0 80 ED B0 80)", b(0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80)],
  ["a code point past U+10FFFF (F4 90 80 80)", b(0xf4, 0x90, 0x80, 0x80)],
  ["a lead byte F5 (F5 80 80 80)", b(0xf5, 0x80, 0x80, 0x80)],
  ["a 5-byte sequence (F8 88 80 80 80)", b(0xf8, 0x88, 0x80, 0x80, 0x80)],
  ["a 6-byte sequence (FC 84 80 80 80 80)", b(0xfc, 0x84, 0x80, 0x80, 0x80, 0x80)],
  ["the byte FE", b(0xfe)],
  ["the byte FF", b(0xff)],
  ["a text ending in a truncated 2-byte sequence (61 C3)", b(0x61, 0xc3)],
  ["a text ending in a truncated 3-byte sequence (E2 82)", b(0xe2, 0x82)],
  ["a text ending in a truncated 4-byte sequence (F0 9F 98)", b(0xf0, 0x9f, 0x98)],
  ["a 2-byte lead followed by ASCII (C3 41)", b(0xc3, 0x41)],
  ["κόσμε with U+D800 encoded inside", concat([utf8("\u03ba\u1f79\u03c3\u03bc\u03b5"), b(0xed, 0xa0, 0x80), utf8("edited")])],
];

const kosme = utf8("\u03ba\u1f79\u03c3\u03bc\u03b5");
const euro = b(0xe2, 0x82, 0xac);
const grin = b(0xf0, 0x9f, 0x98, 0x80);

// deno-fmt-ignore
const utf8Cases: Case[] = [
  ...VALID.map(([what, s], i): Case => ({ id: `6.1.${i + 1}`, title: `a text with ${what} is echoed byte for byte`, steps: exchange(text(s)) })),
  ...INVALID.map(([what, bytes], i): Case => ({ id: `6.2.${i + 1}`, title: `a text of ${what}`, steps: [send(text(bytes))], fails: 1007 })),
  { id: "6.3.1", title: "U+20AC split 1|2 across two fragments is echoed", steps: [send(text(euro.subarray(0, 1), { fin: false }), cont(euro.subarray(1))), expectText("\u20ac")] },
  { id: "6.3.2", title: "U+20AC split 2|1 across two fragments is echoed", steps: [send(text(euro.subarray(0, 2), { fin: false }), cont(euro.subarray(2))), expectText("\u20ac")] },
  { id: "6.3.3", title: "U+1F600 split 1|3 across two fragments is echoed", steps: [send(text(grin.subarray(0, 1), { fin: false }), cont(grin.subarray(1))), expectText("\u{1f600}")] },
  { id: "6.3.4", title: "U+1F600 split 3|1 across two fragments is echoed", steps: [send(text(grin.subarray(0, 3), { fin: false }), cont(grin.subarray(3))), expectText("\u{1f600}")] },
  { id: "6.3.5", title: "U+1F600 in 4 one-byte fragments, each its own write, is echoed", steps: [sendEach(...fragments("text", grin, 1)), expectText("\u{1f600}")] },
  { id: "6.3.6", title: "κόσμε in 1-byte fragments is echoed", steps: [send(...fragments("text", kosme, 1)), expectText(kosme)] },
  { id: "6.3.7", title: "a fragment boundary after a leading BOM keeps the BOM", steps: [send(text(b(0xef, 0xbb), { fin: false }), cont(b(0xbf, 0x61))), expectText("\ufeffa")] },
  { id: "6.3.8", title: "a binary message of invalid UTF-8 is echoed (binary is not validated)", steps: exchange(binary(b(0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80))) },
  { id: "6.4.1", title: "a fragmented text ending mid code point (κόσμε E2 | 82)", steps: [send(text(concat([kosme, b(0xe2)]), { fin: false }), cont(b(0x82)))], fails: 1007 },
  { id: "6.4.2", title: "a fragmented text whose empty final fragment leaves a code point open", steps: [send(text(b(0x61, 0xf0, 0x9f), { fin: false }), cont(""))], fails: 1007 },
  { id: "6.4.3", title: "invalid UTF-8 in the first fragment (the rest never sent)", steps: [send(text(concat([kosme, b(0xf4, 0x90, 0x80, 0x80), utf8("edited")]), { fin: false }))], fails: 1007 },
  { id: "6.4.4", title: "a first fragment ending in F4 90, never valid (the rest never sent)", steps: [send(text(concat([kosme, b(0xf4, 0x90)]), { fin: false }))], fails: 1007 },
  { id: "6.4.5", title: "a first fragment ending in ED A0, a surrogate (the rest never sent)", steps: [send(text(concat([kosme, b(0xed, 0xa0)]), { fin: false }))], fails: 1007 },
  { id: "6.4.6", title: "invalid UTF-8 in the middle fragment of three (the last never sent)", steps: [send(text("ok", { fin: false }), cont(b(0x61, 0xff), { fin: false }))], fails: 1007 },
  { id: "6.4.7", title: "invalid UTF-8 in a first fragment sent in 1-byte writes (the rest never sent)", steps: [sendBytewise(text(concat([kosme, b(0xc0, 0xaf)]), { fin: false }))], fails: 1007 },
];

// --- 9. Limits ---------------------------------------------------------------

const KiB = { maxMessageSize: 1024 };
const MiB = 1024 * 1024;
const chunks16 = Array.from(
  { length: 16 },
  (_, i) => (i === 0 ? binary : cont)(new Uint8Array(MiB), { fin: false }),
);

// deno-fmt-ignore
const limits: Case[] = [
  { id: "9.1", title: "maxMessageSize 1024: a 2 KiB text frame (only its header and 10 bytes sent)", options: KiB, steps: [partOf(text(textOf(2048)), 14)], fails: 1009 },
  { id: "9.2", title: "maxMessageSize 1024: a 2 KiB binary frame (only its header and 10 bytes sent)", options: KiB, steps: [partOf(binary(bytesOf(2048)), 14)], fails: 1009 },
  { id: "9.3", title: "maxMessageSize 1024: a 2 KiB text in 512-byte fragments (two sent, then the third one's header)", options: KiB, steps: [send(...fragments("text", textOf(2048), 512).slice(0, 2)), partOf(cont(textOf(512), { fin: false }), 12)], fails: 1009 },
  { id: "9.4", title: "maxMessageSize 1024: a 2 KiB binary frame whose header arrives byte by byte", options: KiB, steps: [sendBytewise(binary(bytesOf(4))), expectBinary(bytesOf(4)), async (peer) => await peer.sendRaw(encodeFrame(binary(bytesOf(2048))).subarray(0, 6), { chunk: 1 })], fails: 1009 },
  { id: "9.5", title: "maxMessageSize 1024: a 1025-byte frame (only its header and 1 byte sent)", options: KiB, steps: [partOf(binary(bytesOf(1025)), 5)], fails: 1009 },
  { id: "9.6", title: "maxMessageSize 1024: a text of 1200 bytes in 600 characters", options: KiB, steps: [send(text("\u00e9".repeat(600)))], fails: 1009 },
  { id: "9.7", title: "maxMessageSize 1024: fragments of 1024 and 1 bytes", options: KiB, steps: [send(binary(bytesOf(1024), { fin: false }), cont(b(1)))], fails: 1009 },
  { id: "9.8", title: "maxMessageSize 1024: a message of exactly 1024 bytes is echoed", options: KiB, steps: exchange(binary(bytesOf(1024))) },
  { id: "9.9", title: "maxMessageSize 1024: 1024 bytes in 4 fragments are echoed", options: KiB, steps: [send(...fragments("text", textOf(1024), 256)), expectText(textOf(1024))] },
  { id: "9.10", title: "maxMessageSize 1024: a 125-byte ping among fragments is still answered", options: KiB, steps: [send(text(textOf(1000), { fin: false }), ping(textOf(125)), cont(textOf(24))), expectPong(textOf(125)), expectText(textOf(1000) + textOf(24))] },
  { id: "9.11", title: "default limit 16 MiB: a frame declaring 16 MiB + 1 (only its header sent)", steps: [partOf(binary("", { length: 16 * MiB + 1 }), 10)], fails: 1009 },
  { id: "9.12", title: "default limit 16 MiB: continuation frames past 16 MiB (the last one's header only)", steps: [send(...chunks16), partOf(cont("", { length: 1024 }), 4)], fails: 1009, timeout: 20_000 },
];

conformance([...fragmentation, ...utf8Cases, ...limits]);
