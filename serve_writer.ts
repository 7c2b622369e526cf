/**
 * Layer 2, server side: the write side of one echo server connection.
 * Frames queued while a write is under way go out together in the next
 * write (joined into one buffer up to 64 KiB, larger ones written as they
 * are), and {@linkcode FrameWriter.unsent} counts the bytes not yet taken by
 * the socket, which `maxUnsentBytes` bounds (`serve_connection.ts` stops
 * reading past it). A frame that is a received message's echo written in
 * place gives its buffer back to `buffer_pool.ts` once written.
 *
 * @module
 */

import { giveBack } from "./buffer_pool.ts";

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

/** One connection's write pump; see the module doc. */
export class FrameWriter {
  readonly #conn: Deno.Conn;
  readonly #hooks: WriterHooks;
  #outbox: Uint8Array[] = [];
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
    this.#outbox.push(frame);
    this.#queued += frame.byteLength;
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
      this.#outbox.unshift(frame.subarray(written));
      this.#queued += frame.byteLength - written;
      this.#inFlight = 0;
      this.#pump = this.#write();
      return;
    }
    this.#inFlight = 0;
    giveBack(frame.buffer);
    this.#hooks.onWritten();
    if (this.#outbox.length > 0 && !this.#stopped) {
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
    this.#queued = 0;
  }

  async #write(): Promise<void> {
    try {
      while (this.#outbox.length > 0 && !this.#stopped) {
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
  const out = new Uint8Array(total);
  let offset = 0;
  for (const frame of frames) {
    out.set(frame, offset);
    offset += frame.byteLength;
  }
  return out;
}
