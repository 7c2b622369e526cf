// Text a peer controls never reaches a terminal raw: the reason phrase of a refused
// upgrade, a close reason, a subprotocol, and received messages when stdout is a
// terminal, have their control characters escaped. To a pipe, messages stay byte-exact.
// And the exit status follows how the connection ended (CloseInfo), not what the
// session was doing.

import assert from "node:assert/strict";
import { escapeControl } from "../cli/output.ts";
import { assertError, cli, liveCli } from "./_cli.ts";
import { closePayload, OP, rawServer } from "./_raw_server.ts";

const ESC = "\x1b";
/** Turns the terminal red and sets its title, if printed raw. */
const HOSTILE = `${ESC}[31mRED${ESC}]0;pwned\x07`;

/** Asserts that no control character but a line feed (or a tab) is in `text`. */
function assertNoControl(text: string): void {
  // deno-lint-ignore no-control-regex
  const raw = /[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]/.exec(text);
  assert.equal(raw, null, `a raw control character in:\n${JSON.stringify(text)}`);
}

Deno.test("escapeControl() writes control characters as escapes and keeps printable Unicode", () => {
  assert.equal(escapeControl(HOSTILE), "\\x1b[31mRED\\x1b]0;pwned\\x07");
  assert.equal(escapeControl("a\r\nb\tc\x7f\x9b"), "a\\x0d\\x0ab\\x09c\\x7f\\x9b");
  assert.equal(escapeControl("a\nb\tc\r", true), "a\nb\tc\\x0d");
  assert.equal(escapeControl("abc\u202edef"), "abc\\u202edef"); // a bidi override
  assert.equal(escapeControl("héllo wörld 日本 🎉"), "héllo wörld 日本 🎉");
});

Deno.test("cli escapes a hostile HTTP reason phrase in the connect error", async () => {
  await using server = rawServer(() => Promise.resolve(), {
    handshake: { statusLine: `HTTP/1.1 403 ${HOSTILE}` },
  });
  const result = await cli([server.url]);
  assertError(result, 1, /HTTP 403/);
  assert.ok(!result.stderr.includes(ESC), JSON.stringify(result.stderr));
  assertNoControl(result.stderr);
  await server.done.catch(() => {});
});

Deno.test("cli escapes a hostile close reason, with and without --reconnect", async (t) => {
  for (const reconnect of [[], ["--reconnect", "--max-retries", "0"]]) {
    await t.step(reconnect.join(" ") || "once", async () => {
      await using server = rawServer(async (peer) => {
        await peer.sendFrame({ opcode: OP.CLOSE, payload: closePayload(4001, HOSTILE) });
        await peer.expectClose();
      });
      const result = await cli(["-v", "-w", "5", ...reconnect, server.url]);
      assert.equal(result.code, 1, result.stderr);
      assert.ok(!result.stderr.includes(ESC), JSON.stringify(result.stderr));
      assertNoControl(result.stderr);
      assert.match(result.stderr, /closed by the server \(4001\) "\\u001b\[31mRED/);
      await server.done;
    });
  }
});

Deno.test("cli escapes a hostile subprotocol in the connected line", async () => {
  await using server = rawServer(async (peer) => {
    await peer.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1000) });
    await peer.expectClose();
  }, { handshake: { protocol: `chat${ESC}[2J` } });
  const result = await cli(["-s", "chat", "-w", "5", server.url]);
  assert.ok(!result.stderr.includes(ESC), JSON.stringify(result.stderr));
  assertNoControl(result.stderr);
  await server.done.catch(() => {});
});

Deno.test("cli prints messages byte-exact to a pipe, and escaped on a terminal", async (t) => {
  const message = `red: ${HOSTILE}\r\nline two\tend`;
  const sending = () =>
    rawServer(async (peer) => {
      await peer.sendFrame({ opcode: OP.TEXT, payload: message });
      await peer.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1000) });
      await peer.expectClose();
    });
  await t.step("a pipe: the message as it came", async () => {
    await using server = sending();
    const result = await cli(["-w", "5", server.url]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, message + "\n");
    await server.done;
  });
  await t.step("a terminal: control characters escaped, lines and tabs kept", async () => {
    await using server = sending();
    await using run = liveCli(["-w", "5", server.url], { terminal: true });
    const { code } = await run.end();
    const output = run.lines.join("\n");
    assert.equal(code, 0, output);
    assert.ok(!output.includes(ESC), JSON.stringify(output));
    assert.ok(
      output.includes("red: \\x1b[31mRED\\x1b]0;pwned\\x07\\x0d\nline two\tend"),
      JSON.stringify(output),
    );
    await server.done;
  });
});

Deno.test("cli exits 1 on a server's close 1008 even when the server keeps TCP open after it", async (t) => {
  for (const reconnect of [[], ["--reconnect", "--backoff-initial", "0.01"]]) {
    await t.step(reconnect.join(" ") || "once", async () => {
      // Closes with 1008, reads the client's answer, and never closes TCP itself.
      await using server = rawServer(async (peer) => {
        await peer.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1008, "policy") });
        await peer.expectClose();
        while (await peer.readFrame() !== null) { /* until the client goes */ }
      }, { timeout: 20_000 });
      const result = await cli(["-w", "30", ...reconnect, server.url]);
      assertError(
        result,
        1,
        new RegExp(
          `^error: closed by the server \\(1008\\) "policy" \\(${server.url}\\); the connection stayed open for `,
        ),
      );
      assert.equal(result.stderr.split('"policy"').length, 2, result.stderr); // said once
      await server.done;
    });
  }
});
