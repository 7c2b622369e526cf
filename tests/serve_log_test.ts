// What the echo server logs of what a client sent: control bytes refused
// where HTTP forbids them (400), every client-controlled text shown escaped,
// and no credential (query token, Authorization, Cookie, bearer subprotocol).

import assert from "node:assert/strict";
import { connect } from "../mod.ts";
import { serve } from "../serve.ts";
import { logLines, OP, RawClient, upgradeRequest } from "./_serve_clients.ts";
import { MAX_SHOWN, quoted, shown, shownProtocol, shownTarget } from "../serve/log.ts";

/** A raw control byte a terminal could act on (C0 but tab, DEL, C1). */
// deno-lint-ignore no-control-regex -- finding control characters is the point
const RAW_CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;

function assertNoRawControl(lines: string[]): void {
  for (const line of lines) assert.doesNotMatch(line, RAW_CONTROL);
}

/** An upgrade request with this request target and these extra header lines. */
function request(port: number, target: string, extra = ""): string {
  return upgradeRequest(port).replace("GET / ", `GET ${target} `).replace(
    "\r\n\r\n",
    `\r\n${extra}\r\n`,
  );
}

Deno.test("serve() answers 400 to a control byte in the request target, and logs it escaped", async (t) => {
  const cases: [string, string, RegExp][] = [
    ["ESC", "/\x1b[31mred\x1b[0m", /"\/\\x1b\[31mred\\x1b\[0m" holds the control byte 0x1b/],
    ["NUL", "/a\x00b", /"\/a\\x00b" holds the control byte 0x00/],
    ["BEL", "/title\x07", /holds the control byte 0x07/],
    ["DEL", "/a\x7fb", /"\/a\\x7fb" holds the control byte 0x7f/],
    ["TAB", "/a\tb", /"\/a\\x09b" holds the control byte 0x09/],
    ["with a token", "/x?token=s3cret&\x1b", /"\/x\?token=\*\*\*&\\x1b" holds/],
  ];
  for (const [name, target, pattern] of cases) {
    await t.step(name, async () => {
      const logs = logLines();
      await using server = serve({ log: logs.log });
      await using raw = await RawClient.open(server.port, {
        request: request(server.port, target),
      });
      const head = await raw.head();
      assert.equal(typeof head === "string" ? head : head.status, 400);
      const line = await logs.next(/handshake rejected/);
      assert.match(line, /^#1 handshake rejected from 127\.0\.0\.1:\d+: 400 the request target /);
      assert.match(line, pattern);
      assert.match(line, /; a client must percent-encode it$/);
      assertNoRawControl(logs.lines);
      assert.doesNotMatch(logs.lines.join("\n"), /s3cret/);
      assert.equal(server.connections, 0);
    });
  }
});

Deno.test("serve() answers 400 to a control byte in a header value, without logging the value", async (t) => {
  const cases: [string, string][] = [
    ["User-Agent", "evil\x1b]0;pwned\x07"],
    ["Origin", "https://a.example\x1b[2J"],
    ["Authorization", "Bearer s3cret\x1b"],
    ["X-Thing", "a\x7f"],
  ];
  for (const [name, value] of cases) {
    await t.step(name, async () => {
      const logs = logLines();
      await using server = serve({ log: logs.log });
      await using raw = await RawClient.open(server.port, {
        request: request(server.port, "/", `${name}: ${value}\r\n`),
      });
      const head = await raw.head();
      assert.equal(typeof head === "string" ? head : head.status, 400);
      const line = await logs.next(/handshake rejected/);
      const byte = [...value].find((c) => c < " " || c === "\x7f")!.charCodeAt(0).toString(16)
        .padStart(2, "0");
      assert.equal(
        line.replace(/:\d+:/, ":PORT:"),
        `#1 handshake rejected from 127.0.0.1:PORT: 400 the request's ${name.toLowerCase()} header holds the control byte 0x${byte}, which RFC 9110 forbids in a field value`,
      );
      assertNoRawControl(logs.lines);
    });
  }
  await t.step("a tab in a header value is allowed", async () => {
    await using server = serve();
    await using raw = await RawClient.open(server.port, {
      request: request(server.port, "/", "X-Thing: a\tb\r\n"),
    });
    const head = await raw.head();
    assert.equal(typeof head === "string" ? head : head.status, 101);
  });
});

Deno.test("serve() logs a path and a close reason escaped", async () => {
  const logs = logLines();
  await using server = serve({ log: logs.log });
  // Bytes past ASCII are allowed in a target, read one character per byte: U+009B (the C1
  // control CSI), sent as the UTF-8 bytes c2 9b, is read as "\xc2\x9b"; the C1 byte is escaped.
  const target = "/caf\u009b\\x1b";
  await using raw = await RawClient.open(server.port, { request: request(server.port, target) });
  const head = await raw.head();
  assert.equal(typeof head === "string" ? head : head.status, 101);
  const reason = new TextEncoder().encode('bye\x1b[2J\u202e\u0085"\\');
  await raw.send({ opcode: OP.CLOSE, payload: new Uint8Array([0x0f, 0xa0, ...reason]) });
  await raw.rest();
  const closed = await logs.next(/^#1 closed/);
  assert.match(logs.lines[0]!, /^#1 connected from 127\.0\.0\.1:\d+ \/caf\xc2\\x9b\\\\x1b$/);
  assert.match(
    closed,
    /^#1 closed \(4000 "bye\\x1b\[2J\\u202e\\x85\\"\\\\", by the client\) after /,
  );
  assertNoRawControl(logs.lines);
});

Deno.test("serve() never logs a credential: query tokens, Authorization, Cookie, bearer subprotocols", async () => {
  const logs = logLines();
  await using server = serve({ log: logs.log });
  const protocol = "base64url.bearer.authorization.k8s.io.czNjcmV0";
  await using ws = await connect(`${server.url}/feed?access_token=s3cret&room=1&api%5Fkey=s3cret`, {
    headers: { Authorization: "Bearer s3cret", Cookie: "session=s3cret" },
    protocols: [protocol],
  });
  ws.send("hi");
  assert.equal(await ws.receive(), "hi");
  await ws.close(4000, "bye");
  await logs.next(/^#1 closed/);
  assert.match(
    logs.lines[0]!,
    /^#1 connected from 127\.0\.0\.1:\d+ \/feed\?access_token=\*\*\*&room=1&api%5Fkey=\*\*\* \(subprotocol \*\*\*\)$/,
  );
  assert.doesNotMatch(logs.lines[0]!, /s3cret|czNjcmV0/);
});

Deno.test("shown() and friends escape, cut and mask what a client sent", () => {
  assert.equal(shown("a\x1bb\x00c\\d\u2028e"), "a\\x1bb\\x00c\\\\d\\u2028e");
  assert.equal(shown("café ☕"), "café ☕");
  assert.equal(shown("x".repeat(MAX_SHOWN + 10)), `${"x".repeat(MAX_SHOWN)}... (266 characters)`);
  assert.equal(quoted('say "hi"\n'), '"say \\"hi\\"\\x0a"');
  assert.equal(shownTarget("/a?b=1&Token=x&c=2;secret=y#z"), "/a?b=1&Token=***&c=2;secret=***#z");
  assert.equal(shownTarget("/a?%74oken=x"), "/a?%74oken=***");
  assert.equal(shownProtocol("chat.v2"), "chat.v2");
  assert.equal(shownProtocol("eyJhbGciOiJIUzI1NiJ9.e30.sig"), "***");
});
