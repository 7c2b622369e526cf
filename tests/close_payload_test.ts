// Close frame payloads (protocol/close_payload.ts): which codes go on the wire, code and reason.
import assert from "node:assert/strict";
import { ProtocolError } from "../util/errors.ts";
import {
  decodeClosePayload,
  encodeClosePayload,
  isValidCloseCode,
} from "../protocol/close_payload.ts";
import { CloseCode } from "../protocol/close_code.ts";

function protocolError(code: number, rule: string) {
  return (error: unknown) =>
    error instanceof ProtocolError && error.closeCode === code && error.rule === rule &&
    error.message === `Protocol error: ${rule}`;
}

Deno.test("isValidCloseCode() accepts only the codes allowed on the wire", () => {
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]) {
    assert.equal(isValidCloseCode(code), true, `${code}`);
  }
  for (const code of [3000, 3999, 4000, 4999]) assert.equal(isValidCloseCode(code), true);
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535, 1000.5, NaN]) {
    assert.equal(isValidCloseCode(code), false, `${code}`);
  }
});

Deno.test("encodeClosePayload() writes the code then the reason", () => {
  assert.deepEqual(encodeClosePayload(), new Uint8Array());
  assert.deepEqual(encodeClosePayload(1000), new Uint8Array([0x03, 0xe8]));
  assert.deepEqual(encodeClosePayload(4999, "é"), new Uint8Array([0x13, 0x87, 0xc3, 0xa9]));
  assert.equal(encodeClosePayload(1000, "a".repeat(123)).length, 125);
  assert.throws(() => encodeClosePayload(1000, "a".repeat(124)), {
    name: "RangeError",
    message: "Cannot send the close reason as it is over 123 bytes: current value is 124 bytes",
  });
  assert.throws(() => encodeClosePayload(1000, "é".repeat(62)), RangeError);
  assert.throws(() => encodeClosePayload(1005), {
    name: "RangeError",
    message: "Cannot send the close code as it is not valid on the wire: current value is 1005",
  });
  assert.throws(() => encodeClosePayload(undefined, "why"), {
    name: "RangeError",
    message: "Cannot send a close reason as no close code was given",
  });
});

Deno.test("decodeClosePayload() reads the code and reason, and rejects bad ones", () => {
  assert.deepEqual(decodeClosePayload(new Uint8Array()), { code: 1005, reason: "" });
  assert.deepEqual(decodeClosePayload(encodeClosePayload(3001, "bye ☃")), {
    code: 3001,
    reason: "bye ☃",
  });
  assert.throws(
    () => decodeClosePayload(new Uint8Array([0x03])),
    protocolError(1002, "close frame payload of 1 byte"),
  );
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) {
    const payload = new Uint8Array([code >> 8, code & 0xff]);
    assert.throws(
      () => decodeClosePayload(payload),
      protocolError(1002, `invalid close code ${code}`),
    );
  }
  assert.throws(
    () => decodeClosePayload(new Uint8Array([0x03, 0xe8, 0xce, 0xba, 0xe1, 0xbd])),
    protocolError(1007, "invalid UTF-8 in close reason"),
  );
});

Deno.test("CloseCode names the RFC 6455 codes, and cannot be changed", () => {
  assert.equal(CloseCode.NORMAL, 1000);
  assert.equal(CloseCode.PROTOCOL_ERROR, 1002);
  assert.equal(CloseCode.NO_STATUS, 1005);
  assert.equal(CloseCode.INVALID_PAYLOAD, 1007);
  assert.equal(CloseCode.POLICY, 1008);
  assert.equal(CloseCode.TOO_BIG, 1009);
  assert.equal(CloseCode.INTERNAL, 1011);
  assert.ok(Object.isFrozen(CloseCode));
  for (const [name, code] of Object.entries(CloseCode)) {
    const reportOnly = name === "NO_STATUS" || name === "ABNORMAL";
    assert.equal(isValidCloseCode(code), !reportOnly, name);
  }
});
