// The table-driven runner of the conformance tests (tests/conformance_*_test.ts):
// each case is a list of steps for the raw server (send these frames, expect
// this echo) and the outcome the client must reach. Modelled on the Autobahn
// TestSuite's case categories; the peer is tests/_raw_server.ts, which shares
// no code with wsbeat's framing.

import assert from "node:assert/strict";
import {
  type CloseInfo,
  connect,
  ConnectionClosedError,
  type ConnectOptions,
  ProtocolError,
  type WebSocketClient,
} from "../mod.ts";
import {
  closePayload,
  concat,
  describeFrame,
  encodeFrame,
  type FrameSpec,
  type HandshakeOptions,
  OP,
  type RawPeer,
  rawServer,
} from "./_raw_server.ts";

/** Every conformance connection uses wsbeat's own RFC 6455 transport. */
export const CLIENT: ConnectOptions = { transport: "wsbeat" };

const encoder = new TextEncoder();

/** What the raw server does, one step at a time. */
export type Step = (peer: RawPeer) => Promise<void>;

/** One conformance case: one line of data where possible. */
export interface Case {
  /** Autobahn-style number, e.g. "3.1"; the category is the part before the first dot. */
  id: string;
  /** What happens, in plain words. For `fails`, " fails the connection with N" is appended. */
  title: string;
  /** The raw server's steps after the opening handshake. */
  steps: Step[];
  /**
   * The close code the client must fail the connection with (1002, 1007,
   * 1009): its close frame carries it and `closed` reports it, unclean, with
   * initiator "client". Without `fails` or `closedBy`, the steps must all pass
   * and the server then closes with 1000 "done".
   */
  fails?: number;
  /**
   * The steps end with the server's close frame: the client must answer it
   * (same code, or an empty payload for 1005) and `closed` must report this
   * code and reason, clean, with initiator "server".
   */
  closedBy?: { code: number; reason: string };
  /** Connect options beyond {@linkcode CLIENT}. */
  options?: ConnectOptions;
  /** How the raw server answers the opening handshake. */
  handshake?: HandshakeOptions;
  /** The raw server's deadline in ms (default 5000). */
  timeout?: number;
}

// --- Frames ------------------------------------------------------------------

type More = Omit<FrameSpec, "opcode" | "payload">;
type Payload = string | Uint8Array;

/** A text frame. */
export const text = (payload: Payload, more: More = {}): FrameSpec => ({
  opcode: OP.TEXT,
  payload,
  ...more,
});
/** A binary frame. */
export const binary = (payload: Payload, more: More = {}): FrameSpec => ({
  opcode: OP.BINARY,
  payload,
  ...more,
});
/** A continuation frame. */
export const cont = (payload: Payload, more: More = {}): FrameSpec => ({
  opcode: OP.CONTINUATION,
  payload,
  ...more,
});
/** A ping frame. */
export const ping = (payload: Payload = "", more: More = {}): FrameSpec => ({
  opcode: OP.PING,
  payload,
  ...more,
});
/** A pong frame. */
export const pong = (payload: Payload = "", more: More = {}): FrameSpec => ({
  opcode: OP.PONG,
  payload,
  ...more,
});
/** A close frame: with a code (and reason), or empty. */
export const close = (code?: number, reason: Payload = "", more: More = {}): FrameSpec => ({
  opcode: OP.CLOSE,
  payload: code === undefined ? new Uint8Array(0) : closePayload(code, reason),
  ...more,
});
/** Any frame. */
export const frame = (opcode: number, payload: Payload = "", more: More = {}): FrameSpec => ({
  opcode,
  payload,
  ...more,
});

// --- Payloads ----------------------------------------------------------------

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** ASCII text of `n` bytes, in a pattern that shows a shifted or lost byte. */
export function textOf(n: number): string {
  return ALPHABET.repeat(Math.ceil(n / ALPHABET.length)).slice(0, n);
}

/** `n` bytes that use every byte value, in a pattern that shows a shifted or lost byte. */
export function bytesOf(n: number): Uint8Array {
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = (i * 31 + 7) & 0xff;
  return data;
}

/** Bytes from numbers, for invalid UTF-8. */
export const b = (...values: number[]): Uint8Array => new Uint8Array(values);

/** UTF-8 bytes of a string. */
export const utf8 = (s: string): Uint8Array => encoder.encode(s);

// --- Steps -------------------------------------------------------------------

/** Sends the frames in one write. */
export const send = (...frames: FrameSpec[]): Step => (peer) => peer.sendFrames(frames);

/** Sends each frame in its own write. */
export const sendEach = (...frames: FrameSpec[]): Step => async (peer) => {
  for (const f of frames) await peer.sendFrame(f);
};

/** The largest frame bytes that are written one byte at a time in full. */
const BYTEWISE_LIMIT = 70_000;

/**
 * Sends the frames in 1-byte writes. Past 70 000 bytes only the first 64 go
 * byte by byte, the rest in 4093-byte writes (a million awaited writes would
 * take minutes); the split still lands at unaligned offsets.
 */
export const sendBytewise = (...frames: FrameSpec[]): Step => async (peer) => {
  const bytes = concat(frames.map(encodeFrame));
  if (bytes.length <= BYTEWISE_LIMIT) return await peer.sendRaw(bytes, { chunk: 1 });
  await peer.sendRaw(bytes.subarray(0, 64), { chunk: 1 });
  await peer.sendRaw(bytes.subarray(64), { chunk: 4093 });
};

/** Sends raw bytes. */
export const sendRaw = (bytes: Uint8Array): Step => (peer) => peer.sendRaw(bytes);

/** Index of the first difference, or -1. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Asserts two byte arrays are equal, naming the first difference. */
export function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  const at = firstDifference(actual, expected);
  assert.ok(
    at === -1,
    `${what}: ${actual.length} bytes where ${expected.length} were expected, ` +
      `first difference at byte ${at}`,
  );
}

const expectMessage = (opcode: number, payload: Payload): Step => async (peer) => {
  const message = await peer.readMessage();
  assert.ok(message, "the client closed TCP instead of echoing");
  assert.equal(message.opcode, opcode, "the echo's opcode");
  assertSameBytes(message.payload, typeof payload === "string" ? utf8(payload) : payload, "echo");
};

/** Expects the client to echo a text message with these UTF-8 bytes. */
export const expectText = (payload: Payload): Step => expectMessage(OP.TEXT, payload);

/** Expects the client to echo a binary message. */
export const expectBinary = (payload: Payload): Step => expectMessage(OP.BINARY, payload);

/** Expects a pong with this payload as the client's next frame. */
export const expectPong = (payload: Payload = ""): Step => async (peer) => {
  const f = await peer.readFrame();
  assert.ok(f, "the client closed TCP instead of sending a pong");
  assert.equal(f.opcode, OP.PONG, `expected a pong, got ${describeFrame(f)}`);
  assert.ok(f.fin, "the pong is one frame");
  assertSameBytes(f.payload, typeof payload === "string" ? utf8(payload) : payload, "pong");
};

/** Sends `frames` in one write, then expects each data frame echoed and each ping ponged. */
export const exchange = (...frames: FrameSpec[]): Step[] => [
  send(...frames),
  ...frames.map((f) =>
    f.opcode === OP.PING ? expectPong(f.payload) : expectMessage(f.opcode, f.payload ?? "")
  ),
];

// --- The runner --------------------------------------------------------------

/** The test name of a case. */
export function caseName(c: Case): string {
  const outcome = c.fails === undefined ? "" : ` fails the connection with ${c.fails}`;
  return `conformance ${c.id}: ${c.title}${outcome}`;
}

/** The client side of every case: echo each message until the connection ends. */
export async function echo(ws: WebSocketClient): Promise<unknown> {
  try {
    for await (const message of ws) ws.send(message);
    return undefined;
  } catch (error) {
    return error;
  }
}

/** After the steps: reads the client's close and then EOF, with nothing in between. */
async function expectCloseThenEof(peer: RawPeer, code: number): Promise<string> {
  const reply = await peer.expectClose();
  assert.ok(reply, `the client closed TCP without a close frame (expected ${code})`);
  assert.equal(
    reply.code,
    code,
    `the client's close code (reason ${JSON.stringify(reply.reason)})`,
  );
  if (code === 1005) assert.equal(reply.payload.length, 0, "an empty close answers an empty close");
  const after = await peer.readFrame();
  assert.equal(after && describeFrame(after), null, "nothing may follow the close frame");
  assert.ok(peer.eofFromClient, "the client closes TCP");
  return reply.reason;
}

/** Runs one case: the raw server's steps against `connect()` with an echoing client. */
export async function runCase(c: Case): Promise<void> {
  let sentReason: string | undefined;
  await using server = rawServer(async (peer) => {
    for (const step of c.steps) await step(peer);
    if (c.fails !== undefined) {
      sentReason = await expectCloseThenEof(peer, c.fails);
    } else {
      // The server closes (unless a step did): the client answers, then waits for the FIN.
      if (c.closedBy === undefined) await peer.sendFrame(close(1000, "done"));
      const { code } = c.closedBy ?? { code: 1000 };
      const reply = await peer.expectClose();
      assert.ok(reply, "the client closed TCP without answering the close frame");
      assert.equal(reply.code, code, "the client's close reply echoes the code");
      if (code === 1005) {
        assert.equal(reply.payload.length, 0, "an empty close answers an empty close");
      }
      await peer.closeWrite();
      const after = await peer.readFrame();
      assert.equal(after && describeFrame(after), null, "nothing may follow the close reply");
    }
  }, { timeout: c.timeout, handshake: c.handshake });
  const verdict = server.done; // observed: a failed script rejects here, not in dispose
  await using ws = await connect(server.url, { ...CLIENT, ...c.options });
  const ended = await echo(ws);
  await verdict; // the raw server's verdict first: it says what was on the wire
  const info = await ws.closed;
  if (c.fails !== undefined) {
    assertFailed(info, ended, c.fails);
    assert.equal(info.reason, sentReason, "closed reports the reason the client sent");
  } else {
    const { code, reason } = c.closedBy ?? { code: 1000, reason: "done" };
    assertClosedByServer(info, ended, code, reason);
  }
}

/** Asserts a connection the client failed with `code`. */
export function assertFailed(info: CloseInfo, ended: unknown, code: number): void {
  assert.equal(info.code, code, `closed.code (reason ${JSON.stringify(info.reason)})`);
  assert.equal(info.wasClean, false, "closed.wasClean");
  assert.equal(info.initiator, "client", "closed.initiator");
  assert.ok(info.error instanceof ProtocolError, `closed.error is ${info.error}`);
  assert.equal(info.error.closeCode, code, "closed.error.closeCode");
  assert.ok(ended instanceof ConnectionClosedError, `iteration ended with ${ended}`);
  assert.equal(ended.code, code, "the iteration error's code");
}

/** Asserts a clean close the server started with `code` and `reason`. */
export function assertClosedByServer(
  info: CloseInfo,
  ended: unknown,
  code: number,
  reason: string,
): void {
  assert.deepEqual(
    { code: info.code, reason: info.reason, wasClean: info.wasClean, initiator: info.initiator },
    { code, reason, wasClean: true, initiator: "server" },
  );
  if (code === 1000 || code === 1001 || code === 1005) {
    assert.equal(ended, undefined, "iteration ends quietly on a normal close");
  } else {
    assert.ok(ended instanceof ConnectionClosedError, `iteration ended with ${ended}`);
    assert.equal(ended.code, code, "the iteration error's code");
    assert.equal(ended.reason, reason, "the iteration error's reason");
  }
}

/** Registers one Deno test per case. */
export function conformance(cases: Case[]): void {
  const ids = new Set<string>();
  for (const c of cases) {
    if (ids.has(c.id)) throw new Error(`Duplicate conformance case ${c.id}`);
    ids.add(c.id);
    Deno.test(caseName(c), () => runCase(c));
  }
}
