/**
 * The protocol layer (sans-I/O): the payload of close frames. Which codes may
 * appear on the wire (RFC 6455 section 7.4 and the IANA registry), how a code
 * and reason are encoded, and how a received payload is checked: a 1-byte
 * payload or an invalid code is a protocol error (1002), a reason that is not
 * UTF-8 is 1007.
 *
 * @module
 */

import { ProtocolError } from "../util/errors.ts";
import { CloseCode } from "./close_code.ts";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Tells whether a close code may appear in a close frame on the wire:
 * 1000-1003, 1007-1014 and 3000-4999. The others are reserved (1004, 1015,
 * 1016-2999), only for reports (1005 no code, 1006 abnormal close) or out of
 * range (0-999, 5000 and up).
 *
 * @param code The close code.
 * @returns Whether it is valid on the wire.
 *
 * @example
 * ```ts
 * import { isValidCloseCode } from "./close_payload.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isValidCloseCode(1000), true);
 * assert.equal(isValidCloseCode(4001), true);
 * assert.equal(isValidCloseCode(1005), false);
 * ```
 */
export function isValidCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

/**
 * Builds a close frame's payload: empty without a code, otherwise the code as
 * two bytes then the reason in UTF-8.
 *
 * @param code The close code, valid on the wire; undefined for an empty payload.
 * @param reason The reason, at most 123 bytes of UTF-8.
 * @returns The payload.
 * @throws {RangeError} When the code is not valid on the wire, the reason is
 * over 123 bytes, or a reason comes without a code.
 *
 * @example
 * ```ts
 * import { encodeClosePayload } from "./close_payload.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(encodeClosePayload(1000, "ok"), new Uint8Array([0x03, 0xe8, 0x6f, 0x6b]));
 * assert.equal(encodeClosePayload().length, 0);
 * ```
 */
export function encodeClosePayload(code?: number, reason: string = ""): Uint8Array {
  if (code === undefined && reason !== "") {
    throw new RangeError("Cannot send a close reason as no close code was given");
  }
  if (code === undefined) return new Uint8Array(0);
  if (!isValidCloseCode(code)) {
    throw new RangeError(
      `Cannot send the close code as it is not valid on the wire: current value is ${code}`,
    );
  }
  const out = new Uint8Array(2 + 3 * reason.length);
  out[0] = code >>> 8;
  out[1] = code & 0xff;
  const { written } = encoder.encodeInto(reason, out.subarray(2));
  if (written > 123) {
    throw new RangeError(
      `Cannot send the close reason as it is over 123 bytes: current value is ${written} bytes`,
    );
  }
  return out.slice(0, 2 + written);
}

/**
 * Reads a received close frame's payload.
 *
 * @param payload The close frame's payload, unmasked.
 * @returns The code and reason; code 1005 and an empty reason for an empty payload.
 * @throws {ProtocolError} 1002 for a 1-byte payload or a code not valid on the
 * wire, 1007 for a reason that is not UTF-8.
 *
 * @example
 * ```ts
 * import { decodeClosePayload } from "./close_payload.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(decodeClosePayload(new Uint8Array([0x03, 0xe9])), { code: 1001, reason: "" });
 * assert.deepEqual(decodeClosePayload(new Uint8Array()), { code: 1005, reason: "" });
 * ```
 */
export function decodeClosePayload(payload: Uint8Array): { code: number; reason: string } {
  if (payload.length === 0) return { code: CloseCode.NO_STATUS, reason: "" };
  if (payload.length === 1) {
    throw new ProtocolError(CloseCode.PROTOCOL_ERROR, "close frame payload of 1 byte");
  }
  const code = (payload[0]! << 8) | payload[1]!;
  if (!isValidCloseCode(code)) {
    throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `invalid close code ${code}`);
  }
  try {
    return { code, reason: strictDecoder.decode(payload.subarray(2)) };
  } catch (cause) {
    throw new ProtocolError(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in close reason", { cause });
  }
}

/**
 * Cuts `text` to at most `max` bytes of UTF-8, between two characters (a
 * close reason to 123 bytes).
 *
 * @param text The text.
 * @param max The most bytes of UTF-8 to keep.
 * @returns `text`, or its longest start that fits.
 */
export function cutUtf8(text: string, max: number): string {
  if (text.length * 3 <= max) return text;
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= max) return text;
  let end = max;
  while ((bytes[end]! & 0xc0) === 0x80) end--; // back to the start of a character
  return new TextDecoder().decode(bytes.subarray(0, end));
}
