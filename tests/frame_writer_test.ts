import assert from "node:assert/strict";
import { DelayedReplies, type Reply } from "../serve/replies.ts";
import { FrameWriter } from "../transport/frame_writer.ts";

/** A socket whose writes complete when the test says, taking `accept` bytes of each at most. */
class ManualConn {
  writes: { data: Uint8Array; copy: Uint8Array }[] = [];
  accept = Infinity;
  #pending: (() => void)[] = [];
  write(data: Uint8Array): Promise<number> {
    const n = Math.min(data.byteLength, this.accept);
    this.writes.push({ data, copy: data.slice(0, n) });
    return new Promise((resolve) => this.#pending.push(() => resolve(n)));
  }
  /** Completes the oldest write and lets the writer go on. */
  async complete(): Promise<void> {
    this.#pending.shift()!();
    for (let i = 0; i < 50; i++) await Promise.resolve(); // the writer's awaits run on
  }
  get waiting(): number {
    return this.#pending.length;
  }
}

function writerOn(
  conn: ManualConn,
  gather = false,
): { writer: FrameWriter; idle: () => boolean } {
  let idle = false;
  const writer = new FrameWriter(conn as unknown as Deno.Conn, {
    onWritten: () => {},
    onIdle: () => (idle = true),
    onError: (error) => {
      throw error;
    },
  }, { gather });
  return { writer, idle: () => idle };
}

/** Resolves after the tasks queued before it (setImmediate is the writer's next task too). */
function nextTask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const frame = (byte: number, length = 8) => new Uint8Array(length).fill(byte);

Deno.test("FrameWriter copies small frames that wait for a write, instead of holding their buffers", async () => {
  const conn = new ManualConn();
  const { writer, idle } = writerOn(conn);
  const slab = new Uint8Array(64 * 1024).map((_, i) => i % 251); // stands for a shared slab
  writer.queue(slab.subarray(0, 10));
  writer.flush();
  assert.equal(conn.writes[0]!.data.buffer, slab.buffer, "a lone frame is written as it is");
  // While that write is under way: two small frames and one over 16 KiB, in this order.
  writer.queue(slab.subarray(100, 110));
  writer.queue(slab.subarray(200, 200 + 20_000));
  writer.queue(slab.subarray(300, 305));
  assert.equal(writer.unsent, 10 + 10 + 20_000 + 5);
  const small = [slab.slice(100, 110), slab.slice(300, 305)];
  slab.fill(0); // a frame held as a view would now be written as zeros
  for (let i = 0; i < 10 && conn.waiting > 0; i++) await conn.complete();
  assert.equal(conn.writes.length, 2, "what waited goes out in one write");
  const joined = new Uint8Array(20_015);
  joined.set(small[0]!, 0); // copied when queued
  joined.set(small[1]!, 20_010); // copied when queued; the large frame in between was not
  assert.deepEqual(conn.writes[1]!.copy, joined);
  assert.equal(writer.unsent, 0);
  assert.ok(idle());
});

Deno.test("FrameWriter writes the rest of a frame a write left: a small frame's copied, a large one's from the frame", async () => {
  const slab = new Uint8Array(64 * 1024).map((_, i) => i % 251); // stands for a shared slab
  for (
    const { frame, accept, copied } of [
      { frame: slab.subarray(10, 30), accept: 3, copied: true }, // may be a view of a slab
      { frame: slab.subarray(0, 20_000), accept: 1000, copied: false }, // has a buffer of its own
    ]
  ) {
    const conn = new ManualConn();
    const { writer, idle } = writerOn(conn);
    conn.accept = accept;
    writer.queue(frame);
    writer.flush();
    conn.accept = Infinity;
    for (let i = 0; i < 10 && conn.waiting > 0; i++) await conn.complete();
    assert.equal(conn.writes.length, 2);
    const rest = conn.writes[1]!;
    assert.deepEqual(rest.copy, frame.slice(accept));
    if (copied) assert.notEqual(rest.data.buffer, slab.buffer, "the rest is a copy, not a view");
    else assert.equal(rest.data.byteOffset, frame.byteOffset + accept, "a view of the frame");
    assert.equal(rest.data.buffer === slab.buffer, !copied);
    assert.equal(writer.unsent, 0);
    assert.ok(idle());
  }
});

Deno.test("FrameWriter with gather: a deferred flush waits for the next task, so a burst's answers share one write", async () => {
  const conn = new ManualConn();
  const { writer, idle } = writerOn(conn, true);
  writer.queue(frame(1));
  writer.flush(true); // a read delivered several messages
  assert.equal(conn.writes.length, 0, "deferred");
  assert.ok(writer.busy);
  assert.equal(writer.writing, false, "waiting is not writing");
  for (let i = 2; i <= 4; i++) {
    await Promise.resolve(); // the application answers over several microtasks
    writer.queue(frame(i));
    writer.flush(true);
  }
  await nextTask();
  assert.equal(conn.writes.length, 1, "one write for the four answers");
  assert.deepEqual(
    conn.writes[0]!.copy,
    new Uint8Array([1, 2, 3, 4].flatMap((b) => [...frame(b)])),
  );
  assert.equal(writer.writing, true);
  await conn.complete();
  assert.equal(writer.unsent, 0);
  assert.ok(idle());
  // Deferred again, and 16 frames queue before the next task: they go without waiting for it.
  for (let i = 0; i < 16; i++) {
    writer.queue(frame(i));
    writer.flush(true);
    await Promise.resolve();
  }
  for (let i = 0; i < 10; i++) await Promise.resolve(); // no task boundary in this loop
  assert.equal(conn.writes.length, 2, "written before the next task");
  assert.equal(conn.writes[1]!.copy.byteLength, 16 * 8);
  await conn.complete();
});

Deno.test("FrameWriter with gather: frames queued during a write wait for the next task", async () => {
  const conn = new ManualConn();
  const { writer, idle } = writerOn(conn, true);
  writer.queue(frame(0));
  writer.flush();
  assert.equal(conn.writes.length, 1, "a lone frame on an idle writer goes at once, gather or not");
  for (let i = 1; i <= 3; i++) writer.queue(frame(i));
  writer.flush();
  await conn.complete();
  assert.equal(conn.writes.length, 1, "what queued during the write waits for the next task");
  await nextTask();
  assert.equal(conn.writes.length, 2);
  assert.equal(conn.writes[1]!.copy.byteLength, 3 * 8);
  // Queued during that write: 20 frames; they wait for the next task all the same.
  for (let i = 0; i < 20; i++) {
    writer.queue(frame(i + 10));
    writer.flush();
  }
  await conn.complete();
  assert.equal(conn.writes.length, 2);
  await nextTask();
  assert.equal(conn.writes.length, 3);
  assert.equal(conn.writes[2]!.copy.byteLength, 20 * 8);
  await conn.complete();
  assert.ok(idle());
});

Deno.test("FrameWriter.abandon writes the queue and the last frames in one write, and only when no write is in flight", async () => {
  const idleConn = new ManualConn();
  const { writer: a } = writerOn(idleConn, true);
  a.queue(frame(1));
  a.flush(true); // deferred, not yet writing
  assert.equal(a.abandon([frame(9, 4)]), true);
  assert.equal(idleConn.writes.length, 1);
  assert.deepEqual(idleConn.writes[0]!.copy, new Uint8Array([...frame(1), ...frame(9, 4)]));
  await nextTask();
  assert.equal(idleConn.writes.length, 1, "nothing more after abandon");
  assert.equal(a.unsent, 0);

  const busyConn = new ManualConn();
  const { writer: b } = writerOn(busyConn);
  b.queue(frame(1));
  b.flush();
  assert.equal(b.writing, true);
  assert.equal(b.abandon([frame(9, 4)]), false, "behind a write in flight, nothing is written");
  await busyConn.complete();
  assert.equal(busyConn.writes.length, 1);
});

Deno.test("DelayedReplies keeps a copy of a held reply, not a view of the slab it came in", async () => {
  const slab = new Uint8Array(1000).map((_, i) => i % 251); // stands for a shared slab
  const sent: Reply[] = [];
  const { promise: due, resolve } = Promise.withResolvers<void>();
  const replies = new DelayedReplies((reply) => {
    sent.push(reply);
    resolve();
  }, () => false);
  const view = slab.subarray(40, 48);
  replies.push({ due: performance.now(), data: view, echo: view, cut: false, close: false });
  replies.push({ due: performance.now(), data: "text", cut: false, close: false });
  assert.equal(replies.bytes, 8 + 4);
  await due;
  const [binary] = sent;
  assert.equal(binary!.echo, undefined, "sent from its copy, not echoed in place");
  assert.deepEqual(binary!.data, slab.slice(40, 48));
  assert.notEqual((binary!.data as Uint8Array).buffer, slab.buffer);
  assert.equal(sent[1]!.data, "text");
  replies.clear();
});
