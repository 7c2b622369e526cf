// Helpers shared by protocol_test.ts and protocol_close_test.ts.
import assert from "node:assert/strict";
import { encodeFrame, type EncodeFrameOptions } from "../protocol/frames.ts";
import { type Frame, FrameReader } from "../protocol/frame_reader.ts";
import type { Protocol, Role } from "../protocol/protocol.ts";

export const ROLES: Role[] = ["client", "server"];
export const encoder = new TextEncoder();

/** A frame as the peer of `role` sends it: masked when it goes to a server. */
export function peerFrame(
  role: Role,
  opcode: number,
  payload: Uint8Array | string = new Uint8Array(),
  options: Omit<EncodeFrameOptions, "mask"> = {},
): Uint8Array {
  const bytes = typeof payload === "string" ? encoder.encode(payload) : payload;
  return encodeFrame(opcode, bytes, { ...options, mask: role === "server" });
}

/** The frames a protocol queued, parsed as its peer would (which checks their masking). */
export function sentFrames(protocol: Protocol): Frame[] {
  const reader = new FrameReader({
    expectMasked: protocol.role === "client",
    maxFrameSize: 1 << 30,
  });
  for (const bytes of protocol.dataToSend()) reader.push(bytes);
  const frames: Frame[] = [];
  for (let frame = reader.next(); frame !== undefined; frame = reader.next()) frames.push(frame);
  assert.equal(reader.bufferedBytes, 0);
  return frames;
}

/** Asserts that the protocol failed with `code` and `reason`, and sent that close frame. */
export function assertFailed(protocol: Protocol, code: number, reason: string): void {
  assert.equal(protocol.failure?.closeCode, code);
  assert.equal(protocol.failure?.rule, reason);
  assert.equal(protocol.failure?.message, `Protocol error: ${reason}`);
  assert.deepEqual(protocol.closeSent, { code, reason });
  assert.equal(protocol.state, "closing");
  assert.equal(protocol.closeExpected(), true);
  const frames = sentFrames(protocol);
  const close = frames.at(-1)!;
  assert.equal(close.opcode, 0x8);
  assert.deepEqual(
    close.payload,
    new Uint8Array([code >> 8, code & 0xff, ...encoder.encode(reason)]),
  );
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Compressible JSON of about `size` bytes, different for each `seed`, as UTF-8. */
export function json(size: number, seed: number): Uint8Array {
  const items = [];
  let out = "";
  for (let i = 0; out.length < size; i++) {
    items.push({ id: seed * 1000 + i, user: `user-${(seed + i) % 97}`, ok: i % 3 === 0 });
    out = JSON.stringify({ type: "update", seq: seed, items });
  }
  return encoder.encode(out.slice(0, size));
}
