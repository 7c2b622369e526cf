// The WebSocket wire format of RFC 6455 section 5, written by hand for the
// raw test server (tests/_raw_server.ts): it encodes any frame, however wrong,
// and decodes the client's masked frames. It shares no code with wsbeat's
// protocol/frames.ts, so a bug there cannot hide itself here.

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Opcodes of RFC 6455 section 5.2. */
export const OP = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

/** A frame for the server to send: every bit is the caller's to choose. */
export interface FrameSpec {
  /** The opcode, 0 to 15. */
  opcode: number;
  /** The payload; a string is sent as UTF-8. Default: empty. */
  payload?: Uint8Array | string;
  /** The FIN bit. Default: true. */
  fin?: boolean;
  /** RSV1..RSV3 as a 3-bit number (RSV1 = 4, RSV2 = 2, RSV3 = 1). Default: 0. */
  rsv?: number;
  /** Mask the frame (servers must not): `true` for a random key, or the key. */
  mask?: boolean | Uint8Array;
  /** The payload length to declare in the header, if not the payload's own. */
  length?: number | bigint;
}

/** A frame the server read from the client, unmasked. */
export interface ClientFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  /** The masking key the client used. */
  mask: Uint8Array;
  payload: Uint8Array;
}

/** Encodes one frame exactly as `spec` says (RFC 6455 section 5.2). */
export function encodeFrame(spec: FrameSpec): Uint8Array {
  const payload = typeof spec.payload === "string"
    ? encoder.encode(spec.payload)
    : spec.payload ?? new Uint8Array(0);
  const length = BigInt(spec.length ?? payload.length);
  const key = spec.mask === true
    ? crypto.getRandomValues(new Uint8Array(4))
    : spec.mask instanceof Uint8Array
    ? spec.mask
    : undefined;
  const extended = length < 126n ? 0 : length < 65536n ? 2 : 8;
  const headerLength = 2 + extended + (key ? 4 : 0);
  const out = new Uint8Array(headerLength + payload.length);
  out[0] = (spec.fin === false ? 0 : 0x80) | ((spec.rsv ?? 0) & 7) << 4 | (spec.opcode & 0xf);
  const view = new DataView(out.buffer);
  if (extended === 0) out[1] = Number(length);
  else if (extended === 2) {
    out[1] = 126;
    view.setUint16(2, Number(length));
  } else {
    out[1] = 127;
    view.setBigUint64(2, length);
  }
  out.set(payload, headerLength);
  if (key) {
    out[1]! |= 0x80;
    out.set(key, 2 + extended);
    for (let i = 0; i < payload.length; i++) out[headerLength + i]! ^= key[i & 3]!;
  }
  return out;
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A close frame payload: a 2-byte code, then the reason (RFC 6455 section 5.5.1). */
export function closePayload(code: number, reason: string | Uint8Array = ""): Uint8Array {
  const text = typeof reason === "string" ? encoder.encode(reason) : reason;
  const out = new Uint8Array(2 + text.length);
  new DataView(out.buffer).setUint16(0, code);
  out.set(text, 2);
  return out;
}

const MAX_FRAME = 64 * 1024 * 1024;

/** Parses one client frame from the front of `bytes`: the frame and its size, or undefined. */
export function parseFrame(bytes: Uint8Array): { frame: ClientFrame; size: number } | undefined {
  if (bytes.length < 2) return undefined;
  const b0 = bytes[0]!, b1 = bytes[1]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let length = b1 & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (bytes.length < 4) return undefined;
    length = view.getUint16(2);
    offset = 4;
  } else if (length === 127) {
    if (bytes.length < 10) return undefined;
    const big = view.getBigUint64(2);
    if (big > BigInt(MAX_FRAME)) throw new Error(`Client frame declares ${big} bytes`);
    length = Number(big);
    offset = 10;
  }
  if (!(b1 & 0x80)) {
    throw new Error(`Client frame not masked (opcode 0x${(b0 & 0xf).toString(16)})`);
  }
  if (bytes.length < offset + 4 + length) return undefined;
  const mask = bytes.slice(offset, offset + 4);
  const payload = bytes.slice(offset + 4, offset + 4 + length);
  for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
  return {
    frame: { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0xf, mask, payload },
    size: offset + 4 + length,
  };
}

/** A frame in a few words, for error messages. */
export function describeFrame(frame: ClientFrame): string {
  const shown = frame.opcode === OP.TEXT || frame.opcode === OP.CLOSE
    ? ` ${JSON.stringify(decoder.decode(frame.payload.subarray(0, 40)))}`
    : "";
  return `opcode 0x${frame.opcode.toString(16)}, fin ${frame.fin}, rsv ${frame.rsv}, ` +
    `${frame.payload.length} bytes${shown}`;
}
