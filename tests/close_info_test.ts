// The specification of client/close_info.ts: how a close is reported, from
// the transport's end and the client's record of the first cause. End to end
// in tests/close_cause_test.ts and tests/client_test.ts.

import assert from "node:assert/strict";
import {
  type CloseCause,
  closeInfoOf,
  connectFailureInfo,
  describeClose,
  initiatorOf,
  isNormalClose,
  notOpenError,
} from "../client/close_info.ts";
import { ConnectError, ConnectionClosedError, ProtocolError, TooSlowError } from "../mod.ts";
import type { TransportEnd } from "../transport/transport.ts";

const clean: TransportEnd = { code: 1000, reason: "bye", wasClean: true, firstClose: "remote" };
const dropped = new Error("Unexpected EOF");
const drop: TransportEnd = {
  code: 1006,
  reason: "",
  wasClean: false,
  firstClose: undefined,
  error: dropped,
};
const protocolError = new ProtocolError(1007, "invalid UTF-8 in a text message");

Deno.test("isNormalClose() is true for 1000, 1001 and 1005 with no error behind them", () => {
  for (const code of [1000, 1001, 1005]) {
    assert.equal(isNormalClose({ code, reason: "", wasClean: true, initiator: "server" }), true);
  }
  for (const code of [1006, 1011, 4001]) {
    assert.equal(isNormalClose({ code, reason: "", wasClean: true, initiator: "server" }), false);
  }
  const error = new Error("timed out");
  assert.equal(
    isNormalClose({ code: 1000, reason: "", wasClean: false, initiator: "client", error }),
    false,
  );
});

Deno.test("initiatorOf() names who began the close from its first cause", () => {
  const causes: [CloseCause, string][] = [
    [{ by: "peer", code: 1000, reason: "" }, "server"],
    [{ by: "failure", error: protocolError }, "client"],
    [{ by: "close", code: 1000, reason: "" }, "client"],
    [{ by: "forced", initiator: "heartbeat", error: new TooSlowError(10) }, "heartbeat"],
    [{ by: "forced", initiator: "client", error: new Error("fell behind") }, "client"],
    [{ by: "abort", reason: "stop" }, "client"],
  ];
  for (const [cause, initiator] of causes) assert.equal(initiatorOf(cause), initiator, cause.by);
});

Deno.test("closeInfoOf() reports a transport's end as CloseInfo, the first cause naming the initiator", async (t) => {
  await t.step("close frames both ways, no cause recorded: from firstClose", () => {
    assert.deepEqual(closeInfoOf(clean, undefined), {
      code: 1000,
      reason: "bye",
      wasClean: true,
      initiator: "server",
    });
    assert.equal(closeInfoOf({ ...clean, firstClose: "local" }, undefined).initiator, "client");
  });
  await t.step("a drop with no cause: network, with the error", () => {
    assert.deepEqual(closeInfoOf(drop, undefined), {
      code: 1006,
      reason: "",
      wasClean: false,
      initiator: "network",
      error: dropped,
    });
  });
  await t.step(
    "a protocol failure: the code and reason sent, the client's, the ProtocolError",
    () => {
      const end: TransportEnd = {
        code: 1007,
        reason: "invalid UTF-8",
        wasClean: false,
        firstClose: "local",
        error: protocolError,
      };
      assert.deepEqual(closeInfoOf(end, { by: "failure", error: protocolError }), {
        code: 1007,
        reason: "invalid UTF-8",
        wasClean: false,
        initiator: "client",
        error: protocolError,
      });
    },
  );
  await t.step("the peer's close, then a drop: still the server's", () => {
    assert.equal(closeInfoOf(drop, { by: "peer", code: 1012, reason: "" }).initiator, "server");
  });
  await t.step("a forced end: 1006 with its error, whatever the transport saw", () => {
    const error = new TooSlowError(50);
    assert.deepEqual(
      closeInfoOf(clean, { by: "forced", initiator: "heartbeat", error }),
      { code: 1006, reason: "", wasClean: false, initiator: "heartbeat", error },
    );
  });
});

Deno.test("connectFailureInfo() reports a connection that never opened as 1006", () => {
  const refused = new ConnectError("ws://127.0.0.1:9/", "refused", "connection refused");
  assert.deepEqual(connectFailureInfo(undefined, refused), {
    code: 1006,
    reason: "",
    wasClean: false,
    initiator: "network",
    error: refused,
  });
  const aborted = new Error("stop");
  assert.equal(connectFailureInfo({ by: "abort", reason: aborted }, aborted).initiator, "client");
});

Deno.test("describeClose() says who closed and why, in one sentence", () => {
  const base = { reason: "", wasClean: false };
  assert.equal(
    describeClose({ ...base, code: 4001, reason: "kicked", initiator: "server" }),
    "Connection closed by the server with code 4001 (kicked)",
  );
  assert.equal(
    describeClose({ ...base, code: 1006, initiator: "network", error: dropped }),
    "Connection lost without a closing handshake (1006): Unexpected EOF",
  );
  assert.equal(
    describeClose({ ...base, code: 1006, initiator: "heartbeat", error: new Error("no pong") }),
    "Connection closed by the heartbeat: no pong",
  );
  assert.equal(
    describeClose({ ...base, code: 1007, initiator: "client", error: protocolError }),
    "Connection failed with code 1007: the server broke the protocol " +
      "(Protocol error: invalid UTF-8 in a text message)",
  );
  assert.equal(
    describeClose({ ...base, code: 1000, initiator: "client" }),
    "Connection closed by the client with code 1000",
  );
});

Deno.test("notOpenError() names the state and the close's first cause, once known", async (t) => {
  await t.step("nothing known yet: 1006, the state only, the given cause", () => {
    const cause = new Error("socket gone");
    const error = notOpenError("send", "connecting", undefined, cause);
    assert.ok(error instanceof ConnectionClosedError);
    assert.equal(error.code, 1006);
    assert.equal(
      error.message,
      "Cannot send as the connection is not open: current state is connecting",
    );
    assert.equal(error.cause, cause);
  });
  await t.step("closing on the peer's close: its code and reason", () => {
    const error = notOpenError("send", "closing", { by: "peer", code: 1012, reason: "restarting" });
    assert.equal(error.code, 1012);
    assert.equal(error.reason, "restarting");
    assert.equal(
      error.message,
      "Cannot send as the connection is not open: current state is closing " +
        "(Connection closed by the server with code 1012 (restarting))",
    );
  });
  await t.step("closing on a forced end: 1006 and its error", () => {
    const stale = new Error("No application message arrived for 10 ms (staleAfter)");
    const error = notOpenError("ping", "closing", {
      by: "forced",
      initiator: "client",
      error: stale,
    });
    assert.equal(error.code, 1006);
    assert.equal(error.cause, stale);
    assert.match(error.message, /current state is closing \(No application message arrived/);
  });
  await t.step("closed: how it ended", () => {
    const error = notOpenError("send", "closed", closeInfoOf(drop, undefined));
    assert.equal(error.cause, dropped);
    assert.match(error.message, /current state is closed \(Connection lost without a closing/);
  });
});
