import assert from "node:assert/strict";
import {
  encodeFrame,
  encodeTextFrame,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_PONG,
  OP_TEXT,
} from "../protocol/frames.ts";
import { DEFAULT_MAX_MESSAGE_SIZE, Protocol } from "../protocol/protocol.ts";
import {
  assertFailed,
  concat,
  encoder,
  peerFrame,
  ROLES,
  sentFrames,
} from "./_protocol_helpers.ts";

Deno.test("Protocol() checks its options", () => {
  assert.equal(new Protocol({ role: "client" }).role, "client");
  assert.equal(new Protocol({ role: "server" }).state, "open");
  assert.equal(DEFAULT_MAX_MESSAGE_SIZE, 16 * 1024 * 1024);
  // @ts-expect-error: a role that does not exist
  assert.throws(() => new Protocol({ role: "peer" }), TypeError);
  assert.throws(() => new Protocol({ role: "client", maxMessageSize: -1 }), RangeError);
  assert.throws(() => new Protocol({ role: "client", maxMessageSize: 1.5 }), RangeError);
  new Protocol({ role: "client", maxMessageSize: Infinity });
});

Deno.test("Protocol.sendText() and sendBinary() mask as a client and not as a server", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.sendText("héllo");
    protocol.sendBinary(new Uint8Array([1, 2, 3]));
    const bytes = protocol.dataToSend();
    assert.equal(bytes.length, 2, "one buffer per frame");
    assert.equal((bytes[0]![1]! & 0x80) !== 0, role === "client");
    assert.equal((bytes[1]![1]! & 0x80) !== 0, role === "client");
    protocol.sendText("again");
    const frames = sentFrames(protocol);
    assert.deepEqual(frames.map((frame) => [frame.opcode, frame.fin]), [[OP_TEXT, true]]);
    assert.equal(protocol.pendingBytes, 0);
  }
  const client = new Protocol({ role: "client" });
  client.sendText("same");
  client.sendText("same");
  const [first, second] = client.dataToSend();
  assert.notDeepEqual(first!.subarray(2, 6), second!.subarray(2, 6), "a fresh key per frame");
});

Deno.test("Protocol.pendingBytes counts the bytes dataToSend() will return", () => {
  const server = new Protocol({ role: "server" });
  server.sendBinary(new Uint8Array(200));
  server.sendPing(new Uint8Array(5));
  assert.equal(server.pendingBytes, 204 + 7);
  assert.equal(server.dataToSend().reduce((sum, bytes) => sum + bytes.length, 0), 211);
  assert.equal(server.pendingBytes, 0);
  assert.deepEqual(server.dataToSend(), []);
});

Deno.test("Protocol.receiveData() delivers whole text and binary messages, both roles", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.receiveData(
      concat(
        peerFrame(role, OP_TEXT, "héllo"),
        peerFrame(role, OP_BINARY, new Uint8Array([0, 255])),
        peerFrame(role, OP_TEXT, ""),
      ),
    );
    assert.deepEqual(protocol.events(), [
      { type: "text", data: "héllo" },
      { type: "binary", data: new Uint8Array([0, 255]) },
      { type: "text", data: "" },
    ]);
    assert.deepEqual(protocol.events(), [], "events() clears what it returned");
  }
});

Deno.test("Protocol.receiveData() hands out binary data whose bytes never change", () => {
  const client = new Protocol({ role: "client" });
  // 300 small messages fill several shared slabs; each chunk is zeroed once read, as the
  // transport reuses its read buffer.
  const sent = Array.from({ length: 300 }, (_, i) => new Uint8Array(100).fill(i % 256));
  sent.push(new Uint8Array(5000).fill(9));
  const received: Uint8Array[] = [];
  for (const data of sent) {
    const chunk = encodeFrame(OP_BINARY, data);
    client.receiveData(chunk);
    chunk.fill(0);
    for (const event of client.events()) {
      assert.equal(event.type, "binary");
      if (event.type === "binary") received.push(event.data);
    }
  }
  assert.deepEqual(received, sent);
});

Deno.test("Protocol.receiveData() handles a frame split at every byte offset", () => {
  for (const role of ROLES) {
    const bytes = concat(peerFrame(role, OP_TEXT, "x".repeat(200)), peerFrame(role, OP_PING, "p"));
    for (let split = 0; split <= bytes.length; split++) {
      const protocol = new Protocol({ role });
      const chunk = bytes.slice(0, split);
      protocol.receiveData(chunk);
      chunk.fill(0); // the transport reuses its buffer
      protocol.receiveData(bytes.slice(split));
      assert.deepEqual(protocol.events().map((event) => event.type), ["text", "ping"]);
    }
  }
});

Deno.test("Protocol.receiveData() reassembles fragments with control frames between them", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.receiveData(
      concat(
        peerFrame(role, OP_TEXT, "frag", { fin: false }),
        peerFrame(role, OP_PING, "p1"),
        peerFrame(role, OP_CONTINUATION, "men", { fin: false }),
        peerFrame(role, OP_PONG, "p2"),
        peerFrame(role, OP_CONTINUATION, "ted"),
        peerFrame(role, OP_BINARY, new Uint8Array([1, 2]), { fin: false }),
        peerFrame(role, OP_CONTINUATION, new Uint8Array(), { fin: false }),
        peerFrame(role, OP_CONTINUATION, new Uint8Array([3])),
      ),
    );
    assert.deepEqual(protocol.events(), [
      { type: "ping", data: encoder.encode("p1") },
      { type: "pong", data: encoder.encode("p2") },
      { type: "text", data: "fragmented" },
      { type: "binary", data: new Uint8Array([1, 2, 3]) },
    ]);
    const frames = sentFrames(protocol);
    assert.deepEqual(frames, [{
      fin: true,
      rsv: 0,
      opcode: OP_PONG,
      payload: encoder.encode("p1"),
    }]);
  }
});

Deno.test("Protocol.receiveData() joins a message of many small or empty fragments", () => {
  const client = new Protocol({ role: "client" });
  const text = "é".repeat(300) + "end";
  const bytes = encoder.encode(text);
  client.receiveData(encodeFrame(OP_TEXT, bytes.subarray(0, 1), { fin: false }));
  for (let i = 1; i < bytes.length; i++) {
    client.receiveData(encodeFrame(OP_CONTINUATION, new Uint8Array(), { fin: false }));
    client.receiveData(
      encodeFrame(OP_CONTINUATION, bytes.subarray(i, i + 1), { fin: i === bytes.length - 1 }),
    );
  }
  assert.deepEqual(client.events(), [{ type: "text", data: text }]);
  const binary = new Uint8Array(5000).map((_, i) => i % 251);
  client.receiveData(encodeFrame(OP_BINARY, binary.subarray(0, 1000), { fin: false }));
  client.receiveData(encodeFrame(OP_CONTINUATION, binary.subarray(1000, 3000), { fin: false }));
  client.receiveData(encodeFrame(OP_CONTINUATION, binary.subarray(3000)));
  assert.deepEqual(client.events(), [{ type: "binary", data: binary }]);
});

Deno.test("Protocol.receiveData() fails 1002 on reserved bits", () => {
  for (const role of ROLES) {
    for (const rsv of [1, 2, 4]) {
      const protocol = new Protocol({ role });
      protocol.receiveData(peerFrame(role, OP_TEXT, "x", { rsv }));
      assert.deepEqual(protocol.events(), []);
      assertFailed(protocol, 1002, "reserved bits set");
    }
  }
});

Deno.test("Protocol.receiveData() fails 1002 on unknown opcodes", () => {
  for (const role of ROLES) {
    for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      const protocol = new Protocol({ role });
      protocol.receiveData(peerFrame(role, opcode));
      assertFailed(protocol, 1002, `unknown opcode ${opcode}`);
    }
  }
});

Deno.test("Protocol.receiveData() fails 1002 on a frame masked the wrong way", () => {
  const client = new Protocol({ role: "client" });
  client.receiveData(encodeFrame(OP_TEXT, encoder.encode("x"), { mask: true }));
  assertFailed(client, 1002, "masked frame from a server");
  const server = new Protocol({ role: "server" });
  server.receiveData(encodeFrame(OP_TEXT, encoder.encode("x")));
  assertFailed(server, 1002, "unmasked frame from a client");
});

Deno.test("Protocol.receiveData() fails 1002 on control frames over 125 bytes or fragmented", () => {
  for (const role of ROLES) {
    const long = new Protocol({ role });
    long.receiveData(peerFrame(role, OP_PING, new Uint8Array(126)));
    assertFailed(long, 1002, "control frame payload over 125 bytes");
    const fragmented = new Protocol({ role });
    fragmented.receiveData(peerFrame(role, OP_PING, "p", { fin: false }));
    assertFailed(fragmented, 1002, "fragmented control frame");
    const close = new Protocol({ role });
    close.receiveData(peerFrame(role, OP_CLOSE, new Uint8Array([3, 232]), { fin: false }));
    assertFailed(close, 1002, "fragmented control frame");
  }
});

Deno.test("Protocol.receiveData() fails 1002 on a continuation with no message started", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.receiveData(
      concat(peerFrame(role, OP_TEXT, "done"), peerFrame(role, OP_CONTINUATION, "x")),
    );
    assert.deepEqual(protocol.events(), [{ type: "text", data: "done" }]);
    assertFailed(protocol, 1002, "continuation frame without a message to continue");
  }
});

Deno.test("Protocol.receiveData() fails 1002 on a new message inside a fragmented one", () => {
  for (const role of ROLES) {
    for (const opcode of [OP_TEXT, OP_BINARY]) {
      const protocol = new Protocol({ role });
      protocol.receiveData(
        concat(peerFrame(role, OP_TEXT, "a", { fin: false }), peerFrame(role, opcode, "b")),
      );
      assert.deepEqual(protocol.events(), []);
      assertFailed(protocol, 1002, "new message inside a fragmented message");
    }
  }
});

Deno.test("Protocol.receiveData() fails 1009 on a message over maxMessageSize", () => {
  for (const role of ROLES) {
    const whole = new Protocol({ role, maxMessageSize: 100 });
    whole.receiveData(peerFrame(role, OP_BINARY, new Uint8Array(100)));
    assert.equal(whole.events().length, 1, "a message of exactly the limit is fine");
    whole.receiveData(
      peerFrame(role, OP_BINARY, new Uint8Array(101)).subarray(0, 2 + (role === "server" ? 4 : 0)),
    );
    assertFailed(whole, 1009, "message over 100 bytes");
  }
  const unlimited = new Protocol({ role: "client", maxMessageSize: Infinity });
  unlimited.receiveData(new Uint8Array([0x82, 127, 0x00, 0x10, 0, 0, 0, 0, 0, 0, 1])); // 2^52 bytes
  assertFailed(unlimited, 1009, "frame of 4503599627370496 bytes too large to buffer");
  const tiny = new Protocol({ role: "client", maxMessageSize: 10 });
  tiny.receiveData(encodeFrame(OP_PING, new Uint8Array(125)));
  assert.deepEqual(
    tiny.events().map((event) => event.type),
    ["ping"],
    "control frames are not messages",
  );
});

Deno.test("Protocol.receiveData() fails 1009 on the header of the fragment that passes the limit", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role, maxMessageSize: 100 });
    protocol.receiveData(peerFrame(role, OP_TEXT, "a".repeat(60), { fin: false }));
    protocol.receiveData(peerFrame(role, OP_PING, "p".repeat(100)));
    assert.equal(protocol.failure, undefined);
    const third = peerFrame(role, OP_CONTINUATION, "b".repeat(41));
    const header = third.subarray(0, role === "server" ? 6 : 2);
    protocol.receiveData(header); // the payload has not arrived
    assertFailed(protocol, 1009, "message over 100 bytes");
    assert.deepEqual(protocol.events().map((event) => event.type), ["ping"]);
  }
  const big = new Protocol({ role: "client" });
  big.receiveData(new Uint8Array([0x02, 127, 0, 0, 0, 0, 0, 0xff, 0xff, 0xf0])); // 16 MiB - 16
  const chunk = new Uint8Array(65536);
  for (let left = 16 * 1024 * 1024 - 16; left > 0; left -= chunk.length) {
    big.receiveData(chunk.subarray(0, Math.min(left, chunk.length)));
  }
  assert.equal(big.state, "open");
  big.receiveData(new Uint8Array([0x00, 17])); // the default limit is 16 MiB
  assertFailed(big, 1009, "message over 16777216 bytes");
});

Deno.test("Protocol.receiveData() fails 1007 on invalid UTF-8 in the first fragment at once", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.receiveData(
      peerFrame(role, OP_TEXT, new Uint8Array([0x61, 0xff, 0x62]), { fin: false }),
    );
    assertFailed(protocol, 1007, "invalid UTF-8 in text message");
    const surrogate = new Protocol({ role });
    surrogate.receiveData(peerFrame(role, OP_TEXT, new Uint8Array([0xed, 0xa0]), { fin: false }));
    assertFailed(surrogate, 1007, "invalid UTF-8 in text message");
    const later = new Protocol({ role });
    later.receiveData(peerFrame(role, OP_TEXT, "ok", { fin: false }));
    later.receiveData(
      peerFrame(role, OP_CONTINUATION, new Uint8Array([0xc0, 0x80]), { fin: false }),
    );
    assertFailed(later, 1007, "invalid UTF-8 in text message");
    const whole = new Protocol({ role });
    whole.receiveData(peerFrame(role, OP_TEXT, new Uint8Array([0xce, 0xba, 0xe1, 0xbd])));
    assertFailed(whole, 1007, "invalid UTF-8 in text message");
  }
});

Deno.test("Protocol.receiveData() accepts a code point split across fragments", () => {
  const bytes = encoder.encode("€𝄞"); // e2 82 ac f0 9d 84 9e
  for (const role of ROLES) {
    for (let a = 1; a < bytes.length; a++) {
      for (let b = a; b < bytes.length; b++) {
        const protocol = new Protocol({ role });
        protocol.receiveData(
          concat(
            peerFrame(role, OP_TEXT, bytes.subarray(0, a), { fin: false }),
            peerFrame(role, OP_CONTINUATION, bytes.subarray(a, b), { fin: false }),
            peerFrame(role, OP_CONTINUATION, bytes.subarray(b)),
          ),
        );
        assert.deepEqual(protocol.events(), [{ type: "text", data: "€𝄞" }], `split at ${a}, ${b}`);
      }
    }
  }
});

Deno.test("Protocol.receiveData() fails 1007 on text that ends inside a code point", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.receiveData(peerFrame(role, OP_TEXT, new Uint8Array([0x61, 0xe2]), { fin: false }));
    assert.equal(protocol.failure, undefined, "the rest may still come");
    protocol.receiveData(peerFrame(role, OP_CONTINUATION, new Uint8Array([0x82])));
    assertFailed(protocol, 1007, "invalid UTF-8 in text message");
    const whole = new Protocol({ role });
    whole.receiveData(peerFrame(role, OP_TEXT, new Uint8Array([0x61, 0xf0, 0x9d])));
    assertFailed(whole, 1007, "invalid UTF-8 in text message");
  }
});

Deno.test("Protocol.receiveData() answers a ping with a pong carrying its payload", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.receiveData(concat(peerFrame(role, OP_PING, "beat"), peerFrame(role, OP_PING)));
    assert.deepEqual(protocol.events(), [
      { type: "ping", data: encoder.encode("beat") },
      { type: "ping", data: new Uint8Array() },
    ]);
    assert.deepEqual(sentFrames(protocol).map((frame) => [frame.opcode, frame.payload]), [
      [OP_PONG, encoder.encode("beat")],
      [OP_PONG, new Uint8Array()],
    ]);
  }
});

Deno.test("Protocol.receiveData() delivers pongs, solicited or not, as events", () => {
  for (const role of ROLES) {
    const protocol = new Protocol({ role });
    protocol.sendPing(encoder.encode("1"));
    protocol.receiveData(concat(peerFrame(role, OP_PONG, "1"), peerFrame(role, OP_PONG, "other")));
    assert.deepEqual(protocol.events(), [
      { type: "pong", data: encoder.encode("1") },
      { type: "pong", data: encoder.encode("other") },
    ]);
    assert.deepEqual(sentFrames(protocol).map((frame) => frame.opcode), [OP_PING]);
  }
});

Deno.test("Protocol.sendPing() and sendPong() refuse payloads over 125 bytes", () => {
  const client = new Protocol({ role: "client" });
  client.sendPing(new Uint8Array(125));
  client.sendPong(new Uint8Array(125));
  assert.throws(() => client.sendPing(new Uint8Array(126)), {
    name: "RangeError",
    message:
      "Cannot send a ping frame as its payload is over 125 bytes: current value is 126 bytes",
  });
  assert.throws(() => client.sendPong(new Uint8Array(126)), RangeError);
  assert.deepEqual(sentFrames(client).map((frame) => [frame.opcode, frame.payload.length]), [
    [OP_PING, 125],
    [OP_PONG, 125],
  ]);
});

Deno.test("Protocol.sendText() writes one frame for a large message", () => {
  const server = new Protocol({ role: "server" });
  const text = "é".repeat(40_000);
  server.sendText(text);
  const [bytes] = server.dataToSend();
  assert.deepEqual(bytes, encodeTextFrame(text));
  const client = new Protocol({ role: "client" });
  client.receiveData(bytes!);
  assert.deepEqual(client.events(), [{ type: "text", data: text }]);
});

Deno.test("Protocol.sendEcho() sends a message received with echo back as it came, no copy", () => {
  const server = new Protocol({ role: "server", echo: true });
  const text = "héllo wörld ".repeat(500); // over 4 KiB, not ASCII
  const binary = new Uint8Array(70000).map((_, i) => i % 251);
  // Split across pushes at odd offsets, as TCP delivers it.
  const bytes = concat(peerFrame("server", OP_TEXT, text), peerFrame("server", OP_BINARY, binary));
  for (let at = 0; at < bytes.length; at += 4099) server.receiveData(bytes.subarray(at, at + 4099));
  const [first, second] = server.events();
  assert.equal(first?.type, "text");
  assert.equal(first.data, text);
  assert.deepEqual(first.echo, encoder.encode(text));
  assert.equal(second?.type, "binary");
  assert.deepEqual(second.data, binary);
  assert.equal(second.echo, second.data, "binary data is the payload itself");
  server.sendEcho("text", first.echo!);
  server.sendEcho("binary", second.echo!);
  const sent = server.dataToSend();
  assert.equal(sent[0]!.buffer, first.echo!.buffer, "the header went into the payload's room");
  assert.deepEqual(sent, [encodeTextFrame(text), encodeFrame(OP_BINARY, binary)]);
});

Deno.test("Protocol.sendEcho() writes small echoes from the shared slab without touching each other", () => {
  const server = new Protocol({ role: "server", echo: true });
  const messages = ["a", "bé".repeat(60), "c".repeat(4096), "d".repeat(200)];
  const blob = new Uint8Array(1000).map((_, i) => i % 7);
  server.receiveData(concat(
    ...messages.map((text) => peerFrame("server", OP_TEXT, text)),
    peerFrame("server", OP_BINARY, blob),
  ));
  const events = server.events().filter((event) =>
    event.type === "text" || event.type === "binary"
  );
  assert.deepEqual(events.map((event) => event.type === "text" ? event.data : "binary"), [
    ...messages,
    "binary",
  ]);
  const last = events[4]!;
  assert.equal(last.type, "binary");
  assert.equal(last.echo, last.data, "binary data is the payload itself");
  // Each header goes into the room before its payload: none may overwrite another's bytes.
  for (const event of events) server.sendEcho(event.type, event.echo!);
  const sent = server.dataToSend();
  assert.equal(sent[1]!.buffer, events[0]!.echo!.buffer, "one slab holds them");
  assert.deepEqual(sent, [
    ...messages.map((text) => encodeTextFrame(text)),
    encodeFrame(OP_BINARY, blob),
  ]);
});

Deno.test("Protocol({ echo }) keeps every rule and gives echo only to whole messages", async (t) => {
  await t.step("invalid UTF-8 in a large text frame fails 1007", () => {
    const server = new Protocol({ role: "server", echo: true });
    const bad = encoder.encode("x".repeat(5000));
    bad[4000] = 0xff;
    server.receiveData(peerFrame("server", OP_TEXT, bad));
    assert.deepEqual(server.events(), []);
    assertFailed(server, 1007, "invalid UTF-8 in text message");
  });
  await t.step("fragmented messages come without echo", () => {
    const server = new Protocol({ role: "server", echo: true });
    const large = "é".repeat(3000); // 6000 bytes, split inside a code point
    const bytes = encoder.encode(large);
    server.receiveData(concat(
      peerFrame("server", OP_TEXT, "small"),
      peerFrame("server", OP_TEXT, bytes.subarray(0, 4999), { fin: false }),
      peerFrame("server", OP_CONTINUATION, bytes.subarray(4999)),
    ));
    assert.deepEqual(server.events(), [
      { type: "text", data: "small", echo: encoder.encode("small") },
      { type: "text", data: large },
    ]);
  });
  await t.step("a message over maxMessageSize fails 1009 before its payload", () => {
    const server = new Protocol({ role: "server", echo: true, maxMessageSize: 5000 });
    server.receiveData(peerFrame("server", OP_BINARY, new Uint8Array(5001)).subarray(0, 14));
    assertFailed(server, 1009, "message over 5000 bytes");
  });
  await t.step("a client masks an echo like any other message", () => {
    const client = new Protocol({ role: "client", echo: true });
    const payload = new Uint8Array(5000).fill(7);
    client.sendEcho("binary", payload);
    assert.deepEqual(sentFrames(client).map((frame) => frame.payload), [payload]);
    assert.ok(payload.every((b) => b === 7), "the payload is not changed");
  });
});
