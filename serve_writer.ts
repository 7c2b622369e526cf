/**
 * Layer 2, server side: the write side of one echo server connection.
 * Frames queued while a write is under way go out together in the next
 * write (joined into one buffer up to 64 KiB, larger ones written as they
 * are), and {@linkcode FrameWriter.unsent} counts the bytes not yet taken by
 * the socket, which `maxUnsentBytes` bounds (`serve_connection.ts` stops
 * reading past it). A frame that is a received message's echo written in
 * place gives its buffer back to `buffer_pool.ts` once written.
 *
 * Small frames are often views of slabs shared with other connections
 * (`frames.ts`, `frame_reader.ts`), which a held view keeps alive. So a
 * frame that has to wait (queued while a write is under way, or the part a
 * write left) is copied into a buffer of the connection's own: however
 * slowly a client reads, what it holds is what `unsent` counts, not the
 * slabs around it.
 *
 * @module
 */

import { giveBack, takeBuffer } from "./buffer_pool.ts";

/** What the writer tells its connection. */
export interface WriterHooks {
  /** A write completed: `unsent` went down. */
  onWritten(): void;
  /** Everything queued was written. */
  onIdle(): void;
  /** A write failed (the client reset the connection); nothing more is written. */
  onError(error: unknown): void;
}

/** Batches of frames up to this size are joined into one write. */
const JOIN_UP_TO = 64 * 1024;
/** Frames up to this size that have to wait are copied into the connection's own buffer. */
const COPY_UP_TO = 16 * 1024;

/** One connection's write pump; see the module doc. */
export class FrameWriter {
  readonly #conn: Deno.Conn;
  readonly #hooks: WriterHooks;
  #outbox: Uint8Array[] = [];
  /** Small frames queued while a write is under way, copied (see the module doc). */
  #tail: Uint8Array | undefined;
  #tailUsed = 0;
  #queued = 0;
  #inFlight = 0;
  #pump: Promise<void> | undefined;
  #single: Uint8Array | undefined; // the lone frame being written without the pump
  #stopped = false;

  /**
   * Constructs a new instance.
   *
   * @param conn The socket to write to.
   * @param hooks What to call as writes complete or fail.
   */
  constructor(conn: Deno.Conn, hooks: WriterHooks) {
    this.#conn = conn;
    this.#hooks = hooks;
  }

  /** Bytes queued or being written. */
  get unsent(): number {
    return this.#queued + this.#inFlight;
  }

  /** Whether a write is under way. */
  get busy(): boolean {
    return this.#pump !== undefined;
  }

  /** The write under way, if any: it settles once the pump stops. */
  get pump(): Promise<void> | undefined {
    return this.#pump;
  }

  /** Queues a frame; {@linkcode flush} starts writing. */
  queue(frame: Uint8Array): void {
    this.#queued += frame.byteLength;
    if (this.#pump === undefined || frame.byteLength > COPY_UP_TO) {
      this.#closeTail(); // what was copied so far goes first
      this.#outbox.push(frame);
      return;
    }
    let tail = this.#tail;
    if (tail === undefined || this.#tailUsed + frame.byteLength > tail.byteLength) {
      this.#closeTail();
      tail = this.#tail = takeBuffer(JOIN_UP_TO); // given back once written
    }
    tail.set(frame, this.#tailUsed);
    this.#tailUsed += frame.byteLength;
    giveBack(frame.buffer); // copied: an echo's pooled buffer can go back now
  }

  /** Moves the copied frames into the outbox, as one. */
  #closeTail(): void {
    if (this.#tail === undefined) return;
    if (this.#tailUsed > 0) this.#outbox.push(this.#tail.subarray(0, this.#tailUsed));
    this.#tail = undefined;
    this.#tailUsed = 0;
  }

  /** Starts writing what is queued, unless a write is under way (it will take it). */
  flush(): void {
    if (this.#pump !== undefined || this.#stopped || this.#outbox.length === 0) return;
    if (this.#outbox.length === 1) {
      // One frame (a lone echo): written without an async function, the common case.
      const frame = this.#outbox.pop()!;
      this.#queued = 0;
      this.#inFlight = frame.byteLength;
      this.#single = frame;
      this.#pump = this.#conn.write(frame).then(this.#wroteSingle, this.#failed);
    } else this.#pump = this.#write();
  }

  #wroteSingle = (written: number): void => {
    const frame = this.#single!;
    this.#single = undefined;
    if (written < frame.byteLength) { // rare: the rest, and what queued meanwhile, by the pump
      this.#outbox.unshift(frame.slice(written)); // a copy: the frame may be a view of a slab
      giveBack(frame.buffer);
      this.#queued += frame.byteLength - written;
      this.#inFlight = 0;
      this.#pump = this.#write();
      return;
    }
    this.#inFlight = 0;
    giveBack(frame.buffer);
    this.#hooks.onWritten();
    if ((this.#outbox.length > 0 || this.#tailUsed > 0) && !this.#stopped) {
      this.#pump = this.#write();
      return;
    }
    this.#pump = undefined;
    if (!this.#stopped) this.#hooks.onIdle();
  };

  #failed = (error: unknown): void => {
    this.#single = undefined;
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
  }

  async #write(): Promise<void> {
    try {
      while ((this.#outbox.length > 0 || this.#tailUsed > 0) && !this.#stopped) {
        this.#closeTail();
        const frames = this.#outbox;
        const total = this.#queued;
        this.#outbox = [];
        this.#queued = 0;
        this.#inFlight = total;
        if (frames.length === 1 || total > JOIN_UP_TO) {
          for (const frame of frames) {
            await writeAll(this.#conn, frame);
            this.#inFlight -= frame.byteLength;
            giveBack(frame.buffer); // an echo's buffer (buffer_pool.ts); others are ignored
          }
        } else {
          const joined = join(frames, total);
          for (const frame of frames) giveBack(frame.buffer);
          await writeAll(this.#conn, joined);
          giveBack(joined.buffer);
        }
        this.#inFlight = 0;
        this.#hooks.onWritten();
      }
    } catch (error) {
      this.#pump = undefined;
      if (!this.#stopped) this.#hooks.onError(error);
      return;
    }
    this.#pump = undefined;
    if (!this.#stopped) this.#hooks.onIdle();
  }
}

/** Writes all of `data`. */
export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.byteLength;) {
    offset += await conn.write(offset === 0 ? data : data.subarray(offset));
  }
}

function join(frames: Uint8Array[], total: number): Uint8Array {
  const out = takeBuffer(total).subarray(0, total);
  let offset = 0;
  for (const frame of frames) {
    out.set(frame, offset);
    offset += frame.byteLength;
  }
  return out;
}
