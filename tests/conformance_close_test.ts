// Conformance, Autobahn category 7 (the closing handshake) and the opening
// handshake ("H"). The peer is a raw TCP server written from RFC 6455
// (tests/_raw_server.ts); each case is one line of data (tests/_conformance.ts).

import assert from "node:assert/strict";
import { type CloseInfo, connect, ConnectError, type ConnectErrorKind } from "../mod.ts";
import {
  b,
  binary,
  type Case,
  CLIENT,
  close,
  conformance,
  exchange,
  frame,
  ping,
  send,
  sendBytewise,
  text,
  textOf,
} from "./_conformance.ts";
import { describeFrame, type HandshakeOptions, OP, rawServer } from "./_raw_server.ts";

// --- 7. Close ----------------------------------------------------------------

const INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
const VALID_CODES = [
  1000,
  1001,
  1002,
  1003,
  1007,
  1008,
  1009,
  1010,
  1011,
  1012,
  1013,
  1014,
  3000,
  3999,
  4000,
  4999,
];
const reason123 = "\u00e9".repeat(61) + "x"; // 123 UTF-8 bytes, the most a close frame holds

// deno-fmt-ignore
const closing: Case[] = [
  { id: "7.1.1", title: "a server close 1000 with a reason is answered with 1000", steps: [send(close(1000, "normal"))], closedBy: { code: 1000, reason: "normal" } },
  { id: "7.1.2", title: "a server close 1001 with a reason is answered with 1001", steps: [send(close(1001, "going away"))], closedBy: { code: 1001, reason: "going away" } },
  { id: "7.1.3", title: "a server close 3000 with a reason is answered with 3000", steps: [send(close(3000, "application"))], closedBy: { code: 3000, reason: "application" } },
  { id: "7.1.4", title: "a server close 4999 with a reason is answered with 4999", steps: [send(close(4999, "last private code"))], closedBy: { code: 4999, reason: "last private code" } },
  { id: "7.1.5", title: "a server close with no payload is answered with an empty close (1005)", steps: [send(close())], closedBy: { code: 1005, reason: "" } },
  { id: "7.1.6", title: "a server close after an echoed text is answered", steps: [...exchange(text("first")), send(close(1000, "after"))], closedBy: { code: 1000, reason: "after" } },
  { id: "7.1.7", title: "a server close in 1-byte writes is answered", steps: [sendBytewise(close(1000, "bytewise"))], closedBy: { code: 1000, reason: "bytewise" } },
  { id: "7.2.1", title: "a text after the close frame is ignored", steps: [send(close(1000, "bye"), text("late"))], closedBy: { code: 1000, reason: "bye" } },
  { id: "7.2.2", title: "a ping after the close frame is not answered", steps: [send(close(1000, "bye"), ping("late"))], closedBy: { code: 1000, reason: "bye" } },
  { id: "7.2.3", title: "a second close frame is ignored", steps: [send(close(1000, "bye"), close(1001, "again"))], closedBy: { code: 1000, reason: "bye" } },
  { id: "7.3.1", title: "a close with a 1-byte payload", steps: [send(frame(OP.CLOSE, b(0x03)))], fails: 1002 },
  { id: "7.3.2", title: "a close reason of 123 bytes is received whole", steps: [send(close(1000, reason123))], closedBy: { code: 1000, reason: reason123 } },
  { id: "7.3.3", title: "a close with a 124-byte reason (126-byte payload)", steps: [send(close(1000, textOf(124)))], fails: 1002 },
  { id: "7.3.4", title: "a close reason that is not UTF-8", steps: [send(close(1000, b(0x61, 0xff, 0x62)))], fails: 1007 },
  { id: "7.3.5", title: "a close reason with U+D800 encoded", steps: [send(close(1000, b(0xed, 0xa0, 0x80)))], fails: 1007 },
  { id: "7.3.6", title: "a close reason starting with U+FEFF (BOM) keeps it", steps: [send(close(1000, "\ufeffbom"))], closedBy: { code: 1000, reason: "\ufeffbom" } },
  ...VALID_CODES.map((code, i): Case => ({ id: `7.7.${i + 1}`, title: `a server close with valid code ${code} is answered with ${code}`, steps: [send(close(code, `code ${code}`))], closedBy: { code, reason: `code ${code}` } })),
  ...INVALID_CODES.map((code, i): Case => ({ id: `7.9.${i + 1}`, title: `a server close with invalid code ${code}`, steps: [send(close(code, "invalid"))], fails: 1002 })),
];

conformance(closing);

/** The fields of a CloseInfo that tests compare. */
const summary = ({ code, reason, wasClean, initiator }: CloseInfo) => ({
  code,
  reason,
  wasClean,
  initiator,
});

Deno.test("conformance 7.5.1: the client's close() sends 1000 and the server's reply completes it", async () => {
  await using server = rawServer(async (peer) => {
    const reply = await peer.expectClose();
    assert.deepEqual(reply && { code: reply.code, reason: reply.reason }, {
      code: 1000,
      reason: "",
    });
    await peer.sendFrame(close(1000));
  });
  const verdict = server.done;
  const ws = await connect(server.url, CLIENT);
  const expected = { code: 1000, reason: "", wasClean: true, initiator: "client" };
  assert.deepEqual(summary(await ws.close()), expected);
  assert.deepEqual(summary(await ws.closed), expected);
  await verdict;
});

Deno.test("conformance 7.5.2: the client's close(3001, reason) reports the code and reason the server answered", async () => {
  await using server = rawServer(async (peer) => {
    const reply = await peer.expectClose();
    assert.deepEqual(reply && { code: reply.code, reason: reply.reason }, {
      code: 3001,
      reason: "bye",
    });
    await peer.sendFrame(close(3001, "ack"));
  });
  const verdict = server.done;
  const ws = await connect(server.url, CLIENT);
  const info = await ws.close(3001, "bye");
  assert.deepEqual(summary(info), {
    code: 3001,
    reason: "ack",
    wasClean: true,
    initiator: "client",
  });
  await verdict;
});

Deno.test("conformance 7.5.3: the client closes TCP itself when the server answers its close but keeps TCP open", async () => {
  await using server = rawServer(async (peer) => {
    await peer.expectClose();
    await peer.sendFrame(close(1000));
    assert.equal(await peer.readFrame(), null, "nothing after the close frame");
    assert.ok(peer.eofFromClient, "the client closes TCP");
  }, { timeout: 4000 });
  const verdict = server.done;
  const ws = await connect(server.url, { ...CLIENT, closeTimeout: 500 });
  const info = await ws.close();
  assert.deepEqual(summary(info), { code: 1000, reason: "", wasClean: true, initiator: "client" });
  await verdict;
});

Deno.test("conformance 7.5.4: the client closes TCP itself when the server closes but never ends TCP", async () => {
  await using server = rawServer(async (peer) => {
    await peer.sendFrame(close(1000, "bye"));
    const reply = await peer.expectClose();
    assert.equal(reply?.code, 1000);
    assert.equal(await peer.readFrame(), null, "nothing after the close frame");
    assert.ok(peer.eofFromClient, "the client closes TCP");
  }, { timeout: 4000 });
  const verdict = server.done;
  await using ws = await connect(server.url, { ...CLIENT, closeTimeout: 500 });
  const info = await ws.closed;
  assert.deepEqual(summary(info), {
    code: 1000,
    reason: "bye",
    wasClean: true,
    initiator: "server",
  });
  await verdict;
});

// --- H. The opening handshake ------------------------------------------------

interface Rejected {
  id: string;
  title: string;
  handshake: HandshakeOptions;
  protocols?: string[];
  kind: ConnectErrorKind;
  status?: number;
}

// deno-fmt-ignore
const REJECTED: Rejected[] = [
  { id: "H.1", title: "a wrong Sec-WebSocket-Accept", handshake: { headers: { "Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" } }, kind: "handshake" },
  { id: "H.2", title: "a Sec-WebSocket-Accept in lower case", handshake: { headers: { "Sec-WebSocket-Accept": (accept) => accept.toLowerCase() } }, kind: "handshake" },
  { id: "H.3", title: "a missing Sec-WebSocket-Accept", handshake: { headers: { "Sec-WebSocket-Accept": null } }, kind: "handshake" },
  { id: "H.4", title: "a missing Upgrade header", handshake: { headers: { Upgrade: null } }, kind: "handshake" },
  { id: "H.5", title: "Upgrade: h2c", handshake: { headers: { Upgrade: "h2c" } }, kind: "handshake" },
  { id: "H.6", title: "a missing Connection header", handshake: { headers: { Connection: null } }, kind: "handshake" },
  { id: "H.7", title: "Connection: keep-alive without upgrade", handshake: { headers: { Connection: "keep-alive" } }, kind: "handshake" },
  { id: "H.8", title: "a subprotocol when none was offered", handshake: { protocol: "chat" }, kind: "handshake" },
  { id: "H.9", title: "a subprotocol that was not offered", handshake: { protocol: "c" }, protocols: ["a", "b"], kind: "handshake" },
  { id: "H.10", title: "two subprotocols in one header", handshake: { protocol: "a, b" }, protocols: ["a", "b"], kind: "handshake" },
  { id: "H.11", title: "two Sec-WebSocket-Protocol headers", handshake: { extraHeaders: [["Sec-WebSocket-Protocol", "a"], ["Sec-WebSocket-Protocol", "b"]] }, protocols: ["a", "b"], kind: "handshake" },
  { id: "H.12", title: "Sec-WebSocket-Extensions: an extension never offered", handshake: { extraHeaders: [["Sec-WebSocket-Extensions", "x-webkit-deflate-frame"]] }, kind: "handshake" },
  { id: "H.13", title: "a response head over 16 KiB", handshake: { extraHeaders: [["X-Padding", "p".repeat(20_000)]] }, kind: "handshake" },
  { id: "H.14", title: "HTTP 200", handshake: { status: 200 }, kind: "status", status: 200 },
  { id: "H.15", title: "HTTP 403", handshake: { status: 403 }, kind: "status", status: 403 },
  { id: "H.16", title: "HTTP 500", handshake: { status: 500 }, kind: "status", status: 500 },
];

for (const c of REJECTED) {
  Deno.test(`conformance ${c.id}: ${c.title} makes connect() reject with ConnectError "${c.kind}"`, async () => {
    await using server = rawServer(async (peer) => {
      const after = await peer.readFrame();
      assert.equal(after && describeFrame(after), null, "no frame after a failed handshake");
      assert.ok(peer.eofFromClient, "the client closes TCP");
    }, { handshake: c.handshake });
    const verdict = server.done;
    const error = await connect(server.url, { ...CLIENT, protocols: c.protocols }).then(
      async (ws) => (await ws.close(), ws),
      (e) => e,
    );
    assert.ok(error instanceof ConnectError, `connect() gave ${error}`);
    assert.equal(error.kind, c.kind, error.message);
    if (c.status !== undefined) assert.equal(error.status, c.status);
    await verdict;
  });
}

// deno-fmt-ignore
const accepted: Case[] = [
  { id: "H.17", title: "Connection: keep-alive, Upgrade is accepted", handshake: { headers: { Connection: "keep-alive, Upgrade" } }, steps: exchange(text("hello")) },
  { id: "H.18", title: "mixed-case header names and values are accepted", handshake: { headers: { UPGRADE: "WebSocket", connection: "UPGRADE", "sec-websocket-ACCEPT": (accept) => accept } }, steps: exchange(text("hello")) },
  { id: "H.19", title: "another reason phrase and unrelated headers are accepted", handshake: { statusLine: "HTTP/1.1 101 Web Socket Protocol Handshake", extraHeaders: [["Server", "raw"], ["Set-Cookie", "a=b"]] }, steps: exchange(binary(b(1, 2, 3))) },
];

conformance(accepted);

Deno.test("conformance H.20: the opening request follows RFC 6455 section 4.1", async () => {
  await using server = rawServer(async (peer) => {
    const { method, target, version, headers } = peer.request;
    assert.deepEqual([method, target, version], ["GET", "/chat?room=1", "HTTP/1.1"]);
    assert.equal(headers.get("host"), `127.0.0.1:${server.port}`);
    assert.equal(headers.get("upgrade")?.toLowerCase(), "websocket");
    assert.ok(
      /(^|,)\s*upgrade\s*(,|$)/i.test(headers.get("connection") ?? ""),
      "Connection: Upgrade",
    );
    assert.equal(headers.get("sec-websocket-version"), "13");
    const key = headers.get("sec-websocket-key") ?? "";
    assert.equal(atob(key).length, 16, "the key is 16 random bytes in base64");
    assert.equal(headers.get("sec-websocket-protocol"), "v1.wsbeat, v2.wsbeat");
    assert.equal(
      headers.get("sec-websocket-extensions"),
      "permessage-deflate; client_no_context_takeover; client_max_window_bits",
      "permessage-deflate offered (tests/compression_test.ts)",
    );
    await peer.sendFrame(close(1000));
    await peer.expectClose();
  }, { handshake: { protocol: "v2.wsbeat" } });
  const verdict = server.done;
  await using ws = await connect(server.url + "chat?room=1", {
    ...CLIENT,
    protocols: ["v1.wsbeat", "v2.wsbeat"],
  });
  assert.equal(ws.protocol, "v2.wsbeat");
  await ws.closed;
  await verdict;
});

Deno.test("conformance H.21: each connection sends a fresh Sec-WebSocket-Key", async () => {
  const keys: string[] = [];
  await using server = rawServer(async (peer) => {
    keys.push(peer.request.headers.get("sec-websocket-key") ?? "");
    await peer.sendFrame(close(1000));
    await peer.expectClose();
  }, { connections: 2 });
  const verdict = server.done;
  for (let i = 0; i < 2; i++) {
    await using ws = await connect(server.url, CLIENT);
    await ws.closed;
  }
  await verdict;
  assert.notEqual(keys[0], keys[1]);
});
