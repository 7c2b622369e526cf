/**
 * The transport layer: the write side of a connection on a `Deno.Conn`, shared by the
 * client's transport (`transport/socket.ts`) and the echo server's connections
 * (`serve/connection.ts`).
 *
 * One pump (an async loop) does every write but one kind, under one
 * batching policy ({@linkcode BATCH_POLICY}); a lone frame on an idle writer
 * takes a measured fast path (`#writeLone`):
 *
 * - A lone frame on an idle writer is written at once, in one `write()`.
 * - Frames queued while a write is under way go out together in the next
 *   write (joined into one buffer up to 64 KiB, larger ones written as they
 *   are): one syscall and one loopback segment for a burst instead of one
 *   per frame.
 * - With `gather` (the client), frames queued during a write, and the
 *   answers to a read that delivered several messages, also wait for the
 *   next task, so that everything the application sends in one turn of the
 *   event loop shares a write; they go out early once 16 frames or 16 KiB
 *   are waiting when a frame is flushed, so that the peer starts on them
 *   while the rest are made.
 * - {@linkcode FrameWriter.unsent} counts the bytes not yet taken by the
 *   socket: a client's `bufferedAmount`, what the server's `maxUnsentBytes`
 *   bounds.
 *
 * Small frames are often views of slabs shared with other connections
 * (`protocol/frames.ts`, `protocol/frame_reader.ts`), which a held view keeps alive. So a
 * small frame that has to wait for a write in flight (one that may never
 * complete), or the part of one that a write left, is copied into a buffer
 * of the connection's own: however slowly the peer reads, what is held is
 * what `unsent` counts, not the slabs around it. The copy replaces the join
 * a batch needs anyway, so each frame is copied once at most. Once a frame's
 * bytes are written (or copied), the writer says so with `release`
 * (`protocol/buffers.ts`), which alone knows whether they can be reused.
 *
 * @module
 */

import { release, takeBuffer } from "../protocol/buffers.ts";

/** What the writer tells its connection. */
export interface WriterHooks {
  /** A write completed: `unsent` went down. */
  onWritten(): void;
  /** Everything queued was written. */
  onIdle(): void;
  /** A write failed (the peer reset the connection); nothing more is written. */
  onError(error: unknown): void;
}

/** How a {@linkcode FrameWriter} batches. */
export interface FrameWriterOptions {
  /**
   * Whether frames that queue while a write is under way wait for the next
   * task before they are written, and whether `flush(true)` defers the first
   * write so (see the module doc). The client gathers: its application
   * answers a burst of messages over several microtasks. The echo server
   * does not: it answers a read's messages in one go.
   *
   * @default {false}
   */
  gather?: boolean;
}

/**
 * The batching policy, in one place. Batches up to `joinUpTo` bytes are
 * joined into one write; frames up to `copyUpTo` that have to wait are
 * copied (see the module doc); with `gather`, a gathered write goes early
 * once `gatherBytes` or `gatherFrames` wait.
 */
export const BATCH_POLICY: Readonly<{
  joinUpTo: number;
  copyUpTo: number;
  gatherBytes: number;
  gatherFrames: number;
}> = Object.freeze({
  joinUpTo: 64 * 1024,
  copyUpTo: 16 * 1024,
  gatherBytes: 16 * 1024,
  gatherFrames: 16,
});
const { joinUpTo: JOIN_UP_TO, copyUpTo: COPY_UP_TO } = BATCH_POLICY;

/**
 * One connection's write pump; see the module doc. One loop (`#run`)
 * writes everything, except a lone frame on an idle writer (`#writeLone`).
 */
export class FrameWriter {
  readonly #conn: Deno.Conn;
  readonly #hooks: WriterHooks;
  readonly #gather: boolean;
  #outbox: Uint8Array[] = [];
  /** Small frames queued while a write is under way, copied (see the module doc). */
  #tail: Uint8Array | undefined;
  #tailUsed = 0;
  /** Bytes, and frames, queued since the pump last took the queue. */
  #queued = 0;
  #waiting = 0;
  #inFlight = 0;
  #pump: Promise<void> | undefined;
  /** The lone frame being written by `#writeLone`. */
  #lone: Uint8Array | undefined;
  /** Ends the pump's wait for the next task early (see `#nextTask`). */
  #gathered: (() => void) | undefined;
  #stopped = false;

  /**
   * Constructs a new instance.
   *
   * @param conn The socket to write to.
   * @param hooks What to call as writes complete or fail.
   * @param options Whether to gather (see {@linkcode FrameWriterOptions}).
   */
  constructor(conn: Deno.Conn, hooks: WriterHooks, options: FrameWriterOptions = {}) {
    this.#conn = conn;
    this.#hooks = hooks;
    this.#gather = options.gather ?? false;
  }

  /** Bytes queued or being written. */
  get unsent(): number {
    return this.#queued + this.#inFlight;
  }

  /** Whether the writer is writing or waiting to (deferred). */
  get busy(): boolean {
    return this.#pump !== undefined;
  }

  /** Whether a write is in flight (not merely deferred to the next task). */
  get writing(): boolean {
    return this.#inFlight > 0;
  }

  /** The write under way, if any: it settles once the pump stops. */
  get pump(): Promise<void> | undefined {
    return this.#pump;
  }

  /** Queues a frame (none once stopped); {@linkcode flush} starts writing. */
  queue(frame: Uint8Array): void {
    if (this.#stopped) return;
    this.#queued += frame.byteLength;
    this.#waiting++;
    let tail = this.#tail;
    // A small frame is copied when it has to wait for a write in flight, and once copying has
    // begun (it would be copied to be joined anyway): each is copied once at most.
    if (frame.byteLength > COPY_UP_TO || (tail === undefined && this.#inFlight === 0)) {
      this.#closeTail(); // what was copied so far goes first
      this.#outbox.push(frame);
      return;
    }
    if (tail === undefined || this.#tailUsed + frame.byteLength > tail.byteLength) {
      this.#closeTail();
      tail = this.#tail = takeBuffer(JOIN_UP_TO); // released once written
    }
    tail.set(frame, this.#tailUsed);
    this.#tailUsed += frame.byteLength;
    release(frame); // copied: its bytes are done with
  }

  /** Moves the copied frames into the outbox, as one. */
  #closeTail(): void {
    if (this.#tail === undefined) return;
    if (this.#tailUsed > 0) this.#outbox.push(this.#tail.subarray(0, this.#tailUsed));
    this.#tail = undefined;
    this.#tailUsed = 0;
  }

  /**
   * Starts writing what is queued, unless a write is under way (it will
   * take it).
   *
   * @param defer With `gather`: wait for the next task before the first
   *   write, as more answers are likely to follow (a read delivered several
   *   messages).
   */
  flush(defer = false): void {
    if (this.#pump !== undefined) {
      const gathered = this.#gathered;
      if (gathered !== undefined && this.#enough()) {
        this.#gathered = undefined;
        gathered();
      }
      return;
    }
    if (this.#stopped || this.#outbox.length === 0) return;
    if (this.#outbox.length === 1 && !(defer && this.#gather)) this.#writeLone();
    else this.#pump = this.#run(defer && this.#gather);
  }

  /**
   * The one fast path: a lone frame on an idle writer (a sequential
   * message, an echo, a heartbeat's ping) is written without the async
   * pump. It pays: with the pump alone, the client's CPU per message on
   * the sequential rows of `bench/echo.ts` rose by 1 to 3 µs (32 B and
   * 1 KiB, text and binary; two runs each, Deno 2.9.6). What queues while
   * it is written, and the rest of a partial write, go to the pump.
   */
  #writeLone(): void {
    const frame = this.#outbox.pop()!;
    this.#queued = 0;
    this.#waiting = 0;
    this.#inFlight = frame.byteLength;
    this.#lone = frame;
    this.#pump = this.#conn.write(frame).then(this.#wroteLone, this.#loneFailed);
  }

  #wroteLone = (written: number): void => {
    const frame = this.#lone!;
    this.#lone = undefined;
    this.#inFlight = 0;
    if (written < frame.byteLength) { // rare: the rest first, then what queued meanwhile
      // A small frame may be a view of a shared slab: its rest is copied before it waits.
      const rest = frame.byteLength > COPY_UP_TO ? frame.subarray(written) : frame.slice(written);
      if (rest.buffer !== frame.buffer) release(frame);
      this.#outbox.unshift(rest);
      this.#queued += rest.byteLength;
      this.#pump = this.#run(false);
      return;
    }
    release(frame);
    this.#hooks.onWritten();
    if ((this.#outbox.length > 0 || this.#tailUsed > 0) && !this.#stopped) {
      this.#pump = this.#run(this.#gather); // with `gather`, in the next task
      return;
    }
    this.#pump = undefined;
    if (!this.#stopped) this.#hooks.onIdle();
  };

  #loneFailed = (error: unknown): void => {
    this.#lone = undefined;
    this.#pump = undefined;
    if (!this.#stopped) this.#hooks.onError(error);
  };

  /** Forgets what is queued and writes nothing more (the socket is being closed). */
  stop(): void {
    this.#stopped = true;
    this.#outbox = [];
    this.#tail = undefined;
    this.#tailUsed = 0;
    this.#queued = 0;
    this.#waiting = 0;
    const gathered = this.#gathered;
    this.#gathered = undefined;
    gathered?.();
  }

  /**
   * The last write of a connection being failed, best effort: when no write
   * is under way, writes what is queued and then `last` in one write, not
   * waited on; when one is, writes nothing (the frames would wait behind
   * it, perhaps for ever). Stops the writer either way.
   *
   * @param last Frames to write after the queue (a close frame).
   * @returns Whether they were written.
   */
  abandon(last: Uint8Array[]): boolean {
    const idle = this.#inFlight === 0;
    if (idle) {
      this.#closeTail();
      const frames = [...this.#outbox, ...last];
      let total = 0;
      for (const frame of frames) total += frame.byteLength;
      const batch = frames.length === 1 ? frames[0]! : join(frames, total);
      this.#conn.write(batch).catch(() => {});
    }
    this.stop();
    return idle;
  }

  /**
   * The pump: takes everything queued, writes it (joined when small enough),
   * and goes on while more was queued meanwhile; with `gather`, what was
   * queued during a write waits for the next task first.
   */
  async #run(defer: boolean): Promise<void> {
    try {
      if (defer) await this.#nextTask();
      while ((this.#outbox.length > 0 || this.#tailUsed > 0) && !this.#stopped) {
        this.#closeTail();
        const frames = this.#outbox;
        const total = this.#queued;
        this.#outbox = [];
        this.#queued = 0;
        this.#waiting = 0;
        this.#inFlight = total;
        if (frames.length === 1 || total > JOIN_UP_TO) {
          for (const frame of frames) {
            await this.#write(frame);
            this.#inFlight -= frame.byteLength;
          }
        } else {
          const joined = join(frames, total);
          for (const frame of frames) release(frame);
          await this.#write(joined);
        }
        this.#inFlight = 0;
        this.#hooks.onWritten();
        // Frames queued while that write was in flight: with `gather`, let the current task
        // queue all it will before writing them, so a burst goes out in one write.
        const more = this.#outbox.length + this.#tailUsed > 0;
        if (more && this.#gather) await this.#nextTask();
      }
    } catch (error) {
      this.#pump = undefined;
      if (!this.#stopped) this.#hooks.onError(error);
      return;
    }
    this.#pump = undefined;
    if (!this.#stopped) this.#hooks.onIdle();
  }

  /**
   * Writes one buffer whole, then releases it. One await when the socket
   * takes it all, as it nearly always does; the rest of a small one (which
   * may be a view of a shared slab) is copied before it waits.
   */
  async #write(bytes: Uint8Array): Promise<void> {
    let written = await this.#conn.write(bytes);
    if (written < bytes.byteLength && bytes.byteLength <= COPY_UP_TO) {
      const rest = bytes.slice(written);
      release(bytes);
      bytes = rest;
      written = 0;
    }
    if (written < bytes.byteLength) await writeAll(this.#conn, bytes.subarray(written));
    release(bytes);
  }

  /** Whether enough frames wait for a gathered write to go early. */
  #enough(): boolean {
    return this.#queued >= BATCH_POLICY.gatherBytes || this.#waiting >= BATCH_POLICY.gatherFrames;
  }

  /** Resolves in the next task, or once enough is gathered (see `flush`), or on `stop`. */
  #nextTask(): Promise<void> {
    return new Promise((resolve) => {
      this.#gathered = resolve;
      nextTask(() => {
        if (this.#gathered === resolve) this.#gathered = undefined;
        resolve();
      });
    });
  }
}

/**
 * Writes all of `data`, in as many writes as the socket needs.
 *
 * @param conn The socket.
 * @param data The bytes.
 */
export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.byteLength;) {
    offset += await conn.write(offset === 0 ? data : data.subarray(offset));
  }
}

/** The frames in one pooled buffer (given back once written). */
function join(frames: Uint8Array[], total: number): Uint8Array {
  const out = takeBuffer(total).subarray(0, total);
  let offset = 0;
  for (const frame of frames) {
    out.set(frame, offset);
    offset += frame.byteLength;
  }
  return out;
}

/** Calls `resolve` in a later task (after the microtasks queued now), cheaply where it can. */
function nextTask(resolve: () => void): void {
  const setImmediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
  // setTimeout(0) would wait about 2 ms here (Deno 2.9, nested timers).
  if (setImmediate) setImmediate(resolve);
  else queueMicrotask(resolve);
}
