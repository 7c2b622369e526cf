import assert from "node:assert/strict";
import { OP_CLOSE, OP_PING, OP_PONG, OP_TEXT } from "../protocol/frames.ts";
import { encodeClosePayload } from "../protocol/close_payload.ts";
import { CloseCode, Protocol, type Role } from "../protocol/protocol.ts";
import {
  assertFailed,
  concat,
  encoder,
  peerFrame,
  ROLES,
  sentFrames,
} from "./_protocol_helpers.ts";

function closeFrame(role: Role, code?: number, reason?: string): Uint8Array {
  return peerFrame(role, OP_CLOSE, encodeClosePayload(code, reason));
}

Deno.test("Protocol.receiveData() echoes the peer's close code and emits the close", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.receiveData(closeFrame(role, 4001, "bye ☃"));
    assert.deepEqual(protocol.events(), [{ type: "close", code: 4001, reason: "bye ☃" }]);
    assert.deepEqual(sentFrames(protocol), [
      { fin: true, rsv: 0, opcode: OP_CLOSE, payload: new Uint8Array([0x0f, 0xa1]) },
    ]);
    assert.deepEqual(protocol.closeReceived, { code: 4001, reason: "bye ☃" });
    assert.deepEqual(protocol.closeSent, { code: 4001, reason: "" });
    assert.equal(protocol.state, "closed");
    assert.equal(protocol.failure, undefined);
    // A server closes TCP now; a client waits for the server to do it.
    assert.equal(protocol.closeExpected(), role === "server");
  }
});

Deno.test("Protocol.receiveData() answers an empty close with an empty close", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.receiveData(closeFrame(role));
    assert.deepEqual(protocol.events(), [{ type: "close", code: 1005, reason: "" }]);
    assert.deepEqual(sentFrames(protocol).map((frame) => frame.payload), [new Uint8Array()]);
    assert.deepEqual(protocol.closeSent, { code: 1005, reason: "" });
  }
});

Deno.test("Protocol.receiveData() fails 1002 on a close payload of 1 byte", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.receiveData(peerFrame(role, OP_CLOSE, new Uint8Array([0x03])));
    assertFailed(protocol, 1002, "close frame payload of 1 byte");
    assert.deepEqual(protocol.events(), []);
    assert.equal(protocol.closeReceived, undefined);
  }
});

Deno.test("Protocol.receiveData() fails 1002 on close codes not valid on the wire", () => {
  for (const role of ROLES) {
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) {
      const protocol = new Protocol({ role });
      protocol.receiveData(peerFrame(role, OP_CLOSE, new Uint8Array([code >> 8, code & 0xff])));
      assertFailed(protocol, 1002, `invalid close code ${code}`);
    }
  }
});

Deno.test("Protocol.receiveData() fails 1007 on a close reason that is not UTF-8", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.receiveData(peerFrame(role, OP_CLOSE, new Uint8Array([0x03, 0xe8, 0xff])));
    assertFailed(protocol, 1007, "invalid UTF-8 in close reason");
  }
});

Deno.test("Protocol.receiveData() ignores everything after the peer's close", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.receiveData(
      concat(closeFrame(role, 1000), peerFrame(role, OP_TEXT, "late"), peerFrame(role, OP_PING)),
    );
    protocol.receiveData(peerFrame(role, OP_TEXT, "later"));
    protocol.receiveData(new Uint8Array([0xff, 0xff])); // not even parsed
    assert.deepEqual(protocol.events(), [{ type: "close", code: 1000, reason: "" }]);
    assert.deepEqual(sentFrames(protocol).map((frame) => frame.opcode), [OP_CLOSE]);
    assert.equal(protocol.failure, undefined);
  }
});

Deno.test("Protocol.receiveData() ignores everything after a failure", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.receiveData(concat(peerFrame(role, 3), peerFrame(role, OP_TEXT, "ignored")));
    protocol.receiveData(concat(peerFrame(role, OP_PING), closeFrame(role, 1000)));
    assert.deepEqual(protocol.events(), []);
    assertFailed(protocol, 1002, "unknown opcode 3");
    assert.deepEqual(protocol.dataToSend(), [], "no pong, no second close");
  }
});

Deno.test("Protocol.sendClose() starts the closing handshake, then the peer's reply closes", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.sendClose(1000, "done");
    assert.equal(protocol.state, "closing");
    assert.deepEqual(protocol.closeSent, { code: 1000, reason: "done" });
    assert.equal(protocol.closeExpected(), false);
    assert.deepEqual(sentFrames(protocol).map((frame) => frame.payload), [
      encodeClosePayload(1000, "done"),
    ]);
    protocol.sendClose(1001); // no-op once a close was sent
    assert.deepEqual(protocol.dataToSend(), []);
    protocol.receiveData(closeFrame(role, 1000));
    assert.deepEqual(protocol.events(), [{ type: "close", code: 1000, reason: "" }]);
    assert.deepEqual(protocol.dataToSend(), [], "no second close frame");
    assert.equal(protocol.state, "closed");
    assert.equal(protocol.closeExpected(), role === "server");
  }
});

Deno.test("Protocol.sendClose() without a code sends an empty payload", () => {
  const client = new Protocol({ role: "client" });
  client.sendClose();
  assert.deepEqual(sentFrames(client).map((frame) => frame.payload), [new Uint8Array()]);
  assert.deepEqual(client.closeSent, { code: 1005, reason: "" });
});

Deno.test("Protocol.sendClose() refuses codes not valid on the wire and long reasons", () => {
  const client = new Protocol({ role: "client" });
  for (const code of [999, 1004, 1005, 1006, 1015, 2999, 5000]) {
    assert.throws(() => client.sendClose(code), RangeError);
  }
  assert.throws(() => client.sendClose(1000, "x".repeat(124)), RangeError);
  assert.throws(() => client.sendClose(undefined, "reason"), RangeError);
  assert.equal(client.state, "open");
  assert.deepEqual(client.dataToSend(), []);
});

Deno.test("Protocol.receiveData() still delivers data after our close, but answers no ping", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.sendClose(1000);
    protocol.dataToSend();
    protocol.receiveData(
      concat(peerFrame(role, OP_TEXT, "in flight"), peerFrame(role, OP_PING, "p")),
    );
    assert.deepEqual(protocol.events(), [
      { type: "text", data: "in flight" },
      { type: "ping", data: encoder.encode("p") },
    ]);
    assert.deepEqual(protocol.dataToSend(), [], "no pong after our close");
  }
});

Deno.test("Protocol send methods throw once the closing handshake has started", () => {
  const sends: [string, (protocol: Protocol) => void][] = [
    ["text", (protocol) => protocol.sendText("x")],
    ["binary", (protocol) => protocol.sendBinary(new Uint8Array(1))],
    ["ping", (protocol) => protocol.sendPing()],
    ["pong", (protocol) => protocol.sendPong()],
  ];
  const starts: [string, (protocol: Protocol) => void][] = [
    ["sendClose()", (protocol) => protocol.sendClose(1000)],
    ["fail()", (protocol) => protocol.fail(1011)],
    ["a close received", (protocol) => protocol.receiveData(closeFrame("client", 1000))],
  ];
  for (const [how, start] of starts) {
    for (const [kind, send] of sends) {
      const protocol = new Protocol({ role: "client" });
      start(protocol);
      assert.throws(() => send(protocol), {
        name: "Error",
        message: `Cannot send a ${kind} frame as the closing handshake has started`,
      }, how);
    }
  }
  const ended = new Protocol({ role: "client" });
  ended.receiveEof();
  assert.throws(() => ended.sendText("x"), {
    message: "Cannot send a text frame as the connection is closed",
  });
});

Deno.test("Protocol.fail() queues a close frame once and expects TCP to close", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.fail(1011, "internal error");
    assert.equal(protocol.state, "closing");
    assert.equal(protocol.closeExpected(), true);
    assert.equal(protocol.failure, undefined, "failure is only for the peer's violations");
    assert.deepEqual(protocol.closeSent, { code: 1011, reason: "internal error" });
    protocol.fail(1002);
    assert.deepEqual(sentFrames(protocol).map((frame) => frame.payload), [
      encodeClosePayload(1011, "internal error"),
    ]);
    protocol.receiveData(closeFrame(role, 1000));
    assert.deepEqual(protocol.events(), [], "input after fail() is ignored");
  }
  const closing = new Protocol({ role: "client" });
  closing.sendClose(1000);
  closing.dataToSend();
  closing.fail(1002, "late");
  assert.deepEqual(closing.dataToSend(), [], "a close frame was already sent");
  assert.equal(closing.closeExpected(), true);
  assert.throws(() => new Protocol({ role: "client" }).fail(1006), RangeError);
  const long = new Protocol({ role: "server" });
  long.fail(1011, "é".repeat(100)); // 200 bytes: cut to 122, not inside a character
  assert.deepEqual(long.closeSent, { code: 1011, reason: "é".repeat(61) });
});

Deno.test("Protocol.receiveEof() closes the connection and ignores later input", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.receiveData(peerFrame(role, OP_TEXT, "half", { fin: false }));
    protocol.receiveEof();
    assert.equal(protocol.state, "closed");
    assert.equal(protocol.closeExpected(), true);
    protocol.receiveData(peerFrame(role, OP_PING));
    assert.deepEqual(protocol.events(), []);
    protocol.sendClose(1000);
    protocol.fail(1002);
    assert.deepEqual(protocol.dataToSend(), [], "nothing to write to a closed connection");
    assert.equal(protocol.closeSent, undefined);
  }
});

Deno.test("Protocol.receiveData() fails with a close frame masked for the role", () => {
  const client = new Protocol({ role: "client" });
  client.receiveData(new Uint8Array([0xc1, 0x00]));
  const [bytes] = client.dataToSend();
  assert.equal(bytes![0], 0x88);
  assert.equal(bytes![1], 0x80 | 19, "a client's close frame is masked");
  const server = new Protocol({ role: "server" });
  server.receiveData(peerFrame("server", OP_PONG, "x", { rsv: 2 }));
  assert.deepEqual([...server.dataToSend()[0]!.subarray(0, 2)], [0x88, 19]);
});

Deno.test("Protocol({ autoReply: false }) answers no ping and no close frame by itself", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role, autoReply: false });
    protocol.receiveData(concat(peerFrame(role, OP_PING, "p"), closeFrame(role, 4001, "bye")));
    assert.deepEqual(protocol.events(), [
      { type: "ping", data: encoder.encode("p") },
      { type: "close", code: 4001, reason: "bye" },
    ]);
    assert.deepEqual(protocol.dataToSend(), [], role);
    assert.equal(protocol.state, "closing", "a close frame went one way");
    assert.deepEqual(protocol.closeReceived, { code: 4001, reason: "bye" });
    assert.equal(protocol.closeExpected(), false);
    protocol.sendPong(encoder.encode("p"));
    protocol.sendClose(4001);
    const [pong, close] = sentFrames(protocol);
    assert.equal(pong?.opcode, OP_PONG);
    assert.deepEqual(close?.payload, encodeClosePayload(4001));
    assert.equal(protocol.state, "closed");
    assert.equal(protocol.closeExpected(), role === "server");
  }
});

Deno.test("Protocol({ autoReply: false }) still sends the close frame of a failure", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role, autoReply: false });
    protocol.receiveData(concat(peerFrame(role, OP_PING), peerFrame(role, 0x3)));
    assert.deepEqual(protocol.events(), [{ type: "ping", data: new Uint8Array() }]);
    assertFailed(protocol, CloseCode.PROTOCOL_ERROR, "unknown opcode 3");
  }
});
