// The echo server's faults, each exact at the protocol level (checked with a
// raw client reading the wire) and each tried with wsbeat's client, the
// native WebSocket and Node's ws.

import assert from "node:assert/strict";
import { connect, TooSlowError } from "../mod.ts";
import { serve } from "../serve.ts";
import {
  closeOf,
  KINDS,
  logLines,
  OP,
  openPeer,
  type Peer,
  RawClient,
  refusedStatus,
  type ServerFrame,
  within,
} from "./_serve_clients.ts";
import { concat, encodeFrame } from "./_raw_frames.ts";

const text = (frame: ServerFrame | string) =>
  typeof frame === "string" ? frame : `${frame.opcode}:${new TextDecoder().decode(frame.payload)}`;

/** Client frames written in one write, so that they reach the server in one read. */
function burst(...frames: [number, string][]): Uint8Array {
  return concat(frames.map(([opcode, payload]) => encodeFrame({ opcode, payload, mask: true })));
}

/** Resolves with "silent" if no message arrives within `ms`. */
function silence(peer: Peer, ms: number): Promise<unknown> {
  return within(peer.next(), ms, "silent").catch((e) => (e as Error).message);
}

Deno.test("serve() with stallAfter answers n messages, then nothing at all, with TCP open", async (t) => {
  await t.step("on the wire: no echo, no pong, no close reply after the n-th message", async () => {
    const logs = logLines();
    const server = serve({ stallAfter: 2, log: logs.log });
    await using raw = await RawClient.open(server.port);
    assert.equal(((await raw.head()) as { status: number }).status, 101);
    await raw.write(
      burst([OP.PING, "p1"], [OP.TEXT, "a"], [OP.TEXT, "b"], [OP.PING, "p2"], [OP.TEXT, "c"]),
    );
    await raw.write(burst([OP.CLOSE, ""]));
    assert.deepEqual(
      [await raw.frame(), await raw.frame(), await raw.frame()].map(text),
      [`${OP.PONG}:p1`, `${OP.TEXT}:a`, `${OP.TEXT}:b`],
    );
    assert.equal(await raw.frame(300), "timeout"); // and the socket is still open
    assert.equal(raw.eof, false);
    await server.close();
    assert.deepEqual(await raw.rest(), new Uint8Array(0)); // closed at shutdown, no close frame
    await logs.next(/^#1 closed \(1006; stalled \(stallAfter\), TCP closed at shutdown\)/);
  });
  await t.step("stallAfter 0: nothing after the opening handshake", async () => {
    await using server = serve({ stallAfter: 0 });
    await using raw = await RawClient.open(server.port);
    assert.equal(((await raw.head()) as { status: number }).status, 101);
    await raw.send({ opcode: OP.PING, payload: "anyone?" });
    assert.equal(await raw.frame(200), "timeout");
  });
  await t.step("wsbeat: its heartbeat of ping frames finds the stall", async () => {
    await using server = serve({ stallAfter: 2 });
    const ws = await connect(server.url, { heartbeat: { interval: 20, timeout: 150 } });
    ws.send("a");
    ws.send("b");
    assert.equal(await ws.receive(), "a");
    assert.equal(await ws.receive(), "b");
    const info = await ws.closed;
    assert.equal(info.initiator, "heartbeat");
    assert.ok(info.error instanceof TooSlowError);
  });
  for (const kind of ["native", "ws"] as const) {
    await t.step(`${kind}: two echoes, then silence until the server closes`, async () => {
      const server = serve({ stallAfter: 2 });
      const peer = await openPeer(kind, server.url);
      for (const m of ["a", "b", "c"]) peer.send(m);
      assert.equal(await peer.next(), "a");
      assert.equal(await peer.next(), "b");
      assert.equal(await silence(peer, 300), "silent");
      await server.close();
      assert.equal((await peer.closed).code, 1006);
    });
  }
});

Deno.test("serve() with dropAfter cuts TCP right after the n-th reply, with no close frame", async (t) => {
  await t.step("on the wire: what came after the n-th message gets nothing", async () => {
    await using server = serve({ dropAfter: 2 });
    await using raw = await RawClient.open(server.port);
    await raw.head();
    await raw.write(burst([OP.TEXT, "a"], [OP.TEXT, "b"], [OP.PING, "p"], [OP.TEXT, "c"]));
    assert.deepEqual([await raw.frame(), await raw.frame()].map(text), ["1:a", "1:b"]);
    assert.deepEqual(await raw.rest(), new Uint8Array(0));
  });
  await t.step("dropAfter 0: right after the opening handshake", async () => {
    await using server = serve({ dropAfter: 0 });
    await using raw = await RawClient.open(server.port);
    assert.equal(((await raw.head()) as { status: number }).status, 101);
    assert.deepEqual(await raw.rest(), new Uint8Array(0));
  });
  await t.step("a function gives each connection its own count", async () => {
    const counts = [1, 3];
    await using server = serve({ dropAfter: () => counts.shift()! });
    for (const expected of [["a"], ["a", "b", "c"]]) {
      await using raw = await RawClient.open(server.port);
      await raw.head();
      await raw.write(burst([OP.TEXT, "a"], [OP.TEXT, "b"], [OP.TEXT, "c"], [OP.TEXT, "d"]));
      const got: string[] = [];
      for (let f = await raw.frame(); typeof f !== "string"; f = await raw.frame()) {
        got.push(new TextDecoder().decode(f.payload));
      }
      assert.deepEqual(got, expected);
    }
  });
  for (const kind of KINDS) {
    await t.step(
      `${kind}: exactly n echoes, then an abnormal close, on every connection`,
      async () => {
        await using server = serve({ dropAfter: 3 });
        for (let round = 0; round < 2; round++) {
          const peer = await openPeer(kind, server.url);
          for (let i = 0; i < 5; i++) peer.send(`${round}:${i}`);
          const received: unknown[] = [];
          await (async () => {
            while (true) received.push(await peer.next());
          })().catch(() => {});
          assert.deepEqual(received, [`${round}:0`, `${round}:1`, `${round}:2`]);
          assert.equal((await peer.closed).code, 1006);
        }
      },
    );
  }
});

Deno.test("serve() with closeWith echoes the first message, then closes with its code and reason", async (t) => {
  await t.step("on the wire", async () => {
    await using server = serve({ closeWith: { code: 4001, reason: "go away" } });
    await using raw = await RawClient.open(server.port);
    await raw.head();
    await raw.send({ opcode: OP.TEXT, payload: "x" });
    assert.equal(text((await raw.frame()) as ServerFrame), "1:x");
    assert.deepEqual(closeOf((await raw.frame()) as ServerFrame), {
      code: 4001,
      reason: "go away",
    });
    await raw.send({ opcode: OP.CLOSE, payload: new Uint8Array([0x0f, 0xa1]) });
    assert.deepEqual(await raw.rest(), new Uint8Array(0)); // the server then closes TCP
  });
  for (const kind of KINDS) {
    await t.step(kind, async () => {
      await using server = serve({ closeWith: { code: 4001, reason: "go away" } });
      const peer = await openPeer(kind, server.url);
      peer.send("x");
      assert.equal(await peer.next(), "x");
      assert.deepEqual(await peer.closed, { code: 4001, reason: "go away" });
    });
  }
});

Deno.test("serve() with idleTimeout closes a client that sends no message; pings do not count", async (t) => {
  await t.step("on the wire", async () => {
    await using server = serve({ idleTimeout: 200 });
    await using raw = await RawClient.open(server.port);
    await raw.head();
    const started = performance.now();
    let frame: ServerFrame | string = "none";
    let pongs = 0;
    for (let i = 0; i < 100_000; i++) {
      await raw.send({ opcode: OP.PING, payload: "still here" }); // answered, yet idle
      frame = await raw.frame();
      if (typeof frame === "string" || frame.opcode === OP.CLOSE) break;
      pongs++;
    }
    assert.ok(pongs > 0);
    assert.equal(typeof frame, "object");
    assert.deepEqual(closeOf(frame as ServerFrame), { code: 1001, reason: "idle timeout" });
    assert.ok(performance.now() - started >= 190);
  });
  for (const kind of KINDS) {
    await t.step(kind, async () => {
      await using server = serve({ idleTimeout: 150 });
      const peer = await openPeer(kind, server.url);
      assert.deepEqual(await peer.closed, { code: 1001, reason: "idle timeout" });
    });
  }
});

Deno.test("serve() with echoDelay answers each message that much later, in order", async (t) => {
  for (const kind of KINDS) {
    await t.step(kind, async () => {
      await using server = serve({ echoDelay: 120 });
      const peer = await openPeer(kind, server.url);
      const sent = performance.now();
      peer.send("a");
      peer.send("b");
      assert.equal(await peer.next(), "a");
      assert.ok(performance.now() - sent >= 115, `${performance.now() - sent} ms`);
      assert.equal(await peer.next(), "b");
      await peer.close();
    });
  }
});

Deno.test("serve() with fragment sends n frames with a ping between each two", async (t) => {
  const message = "héllo wörld, ça va? ✓";
  await t.step("on the wire", async () => {
    await using server = serve({ fragment: 3 });
    await using raw = await RawClient.open(server.port);
    await raw.head();
    await raw.send({ opcode: OP.TEXT, payload: message });
    const frames: ServerFrame[] = [];
    for (let i = 0; i < 5; i++) frames.push((await raw.frame()) as ServerFrame);
    assert.deepEqual(frames.map((f) => [f.opcode, f.fin]), [
      [OP.TEXT, false],
      [OP.PING, true],
      [OP.CONTINUATION, false],
      [OP.PING, true],
      [OP.CONTINUATION, true],
    ]);
    const data = concat([frames[0]!.payload, frames[2]!.payload, frames[4]!.payload]);
    assert.equal(new TextDecoder().decode(data), message);
    await raw.send({ opcode: OP.BINARY, payload: new Uint8Array([1, 2]) }); // fewer bytes than frames
    const parts: ServerFrame[] = [];
    for (let i = 0; i < 5; i++) parts.push((await raw.frame()) as ServerFrame);
    assert.deepEqual(parts.map((f) => [f.opcode, f.payload.length]), [
      [OP.BINARY, 0],
      [OP.PING, 0],
      [OP.CONTINUATION, 1],
      [OP.PING, 0],
      [OP.CONTINUATION, 1],
    ]);
  });
  for (const kind of KINDS) {
    await t.step(`${kind} reassembles the message and answers the pings`, async () => {
      await using server = serve({ fragment: 4 });
      const peer = await openPeer(kind, server.url);
      peer.send(message);
      peer.send(new Uint8Array([9, 8, 7, 6, 5]));
      assert.equal(await peer.next(), message);
      assert.deepEqual(await peer.next(), new Uint8Array([9, 8, 7, 6, 5]));
      if (peer.pings !== undefined) assert.equal(peer.pings, 6);
      await peer.close();
    });
  }
});

Deno.test("serve() with pingInterval pings every client, and logs the pongs", async (t) => {
  await t.step("on the wire", async () => {
    await using server = serve({ pingInterval: 30 });
    await using raw = await RawClient.open(server.port);
    await raw.head();
    for (let i = 0; i < 3; i++) {
      assert.deepEqual((await raw.frame()) as ServerFrame, {
        fin: true,
        opcode: OP.PING,
        masked: false,
        payload: new Uint8Array(0),
      });
    }
  });
  for (const kind of KINDS) {
    await t.step(`${kind} answers every ping`, async () => {
      const logs = logLines();
      await using server = serve({ pingInterval: 25, log: logs.log });
      const peer = await openPeer(kind, server.url);
      // The pings are the server's own, on a clock: give it a few intervals.
      await new Promise((resolve) => setTimeout(resolve, 200));
      peer.send("sync"); // every pong sent before this echo has reached the server
      await peer.next();
      await peer.close();
      const line = await logs.next(/^#1 closed/);
      const [, pings, pongs] = /(\d+) pings sent, (\d+) pongs received/.exec(line)!;
      assert.ok(Number(pings) >= 3, line);
      assert.ok(Number(pongs) >= Number(pings) - 1, line);
      if (peer.pings !== undefined) assert.ok(peer.pings >= 3);
    });
  }
});

Deno.test("serve() with rejectStatus answers every upgrade with that status", async (t) => {
  const logs = logLines();
  await using server = serve({ rejectStatus: 403, log: logs.log });
  for (const kind of KINDS) {
    await t.step(kind, async () => {
      assert.equal(await refusedStatus(kind, server.url), 403);
    });
  }
  await logs.next(/^#3 handshake rejected from 127\.0\.0\.1:\d+: 403 \(rejectStatus\)$/);
  assert.equal(server.connections, 0);
});
