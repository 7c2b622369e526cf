/**
 * The protocol layer (sans-I/O): the close codes of RFC 6455 section 7.4.1
 * by name, so that the code which fails a connection says why it does.
 * Which codes may be sent on the wire is `isValidCloseCode` in
 * `protocol/close_payload.ts`.
 *
 * @module
 */

/**
 * The close codes RFC 6455 (section 7.4.1) and the IANA registry name, by
 * name. Frozen: a value that cannot be reassigned.
 *
 * `NO_STATUS` (1005) and `ABNORMAL`
 * (1006) are never sent: they only report a close frame without a code and
 * a connection that ended without a close frame.
 *
 * @example Close with a named code
 * ```ts
 * import { CloseCode } from "@wsbeat/wsbeat";
 * import assert from "node:assert/strict";
 *
 * assert.equal(CloseCode.NORMAL, 1000);
 * assert.equal(CloseCode.TOO_BIG, 1009);
 * ```
 */
export const CloseCode: Readonly<{
  /** 1000: the purpose of the connection was fulfilled. */
  NORMAL: 1000;
  /** 1001: the endpoint is going away (a server shutting down, a page left). */
  GOING_AWAY: 1001;
  /** 1002: the peer broke the protocol. */
  PROTOCOL_ERROR: 1002;
  /** 1003: a kind of data the endpoint cannot accept (text where only binary is, say). */
  UNSUPPORTED_DATA: 1003;
  /** 1005: reported for a close frame without a code; never sent. */
  NO_STATUS: 1005;
  /** 1006: reported for a connection that ended without a close frame; never sent. */
  ABNORMAL: 1006;
  /** 1007: data that does not match its type (a text message that is not UTF-8). */
  INVALID_PAYLOAD: 1007;
  /** 1008: a message that breaks the endpoint's policy. */
  POLICY: 1008;
  /** 1009: a message too big to process. */
  TOO_BIG: 1009;
  /** 1010: the client expected an extension the server did not agree to. */
  MANDATORY_EXTENSION: 1010;
  /** 1011: the server met an unexpected condition. */
  INTERNAL: 1011;
}> = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  NO_STATUS: 1005,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL: 1011,
});

/**
 * One of the named close codes of {@linkcode CloseCode}.
 *
 * @example
 * ```ts
 * import { CloseCode, type CloseCodeName } from "@wsbeat/wsbeat";
 *
 * const name: CloseCodeName = "TOO_BIG";
 * console.log(CloseCode[name]); // 1009
 * ```
 */
export type CloseCodeName = keyof typeof CloseCode;
