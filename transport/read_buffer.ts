/**
 * The transport layer: the buffer a connection reads into, sized by what
 * arrives. It starts small ({@linkcode READ_SIZE_IDLE}), because a pending
 * read holds its buffer and most connections are idle most of the time. A
 * read that fills it doubles it, up to {@linkcode READ_SIZE_BULK}, for a
 * connection that receives in bulk (a feed); and on up to
 * {@linkcode READ_SIZE_MAX} while the reads that fill it hold large frames
 * (at most one event, a message or a control frame, per
 * {@linkcode LARGE_FRAME} bytes). A connection whose burst is over goes back
 * to the small buffer after {@linkcode SHRINK_AFTER} reads in a row that
 * used less than a sixteenth of it.
 *
 * Why (measured on Deno 2.9.6, a firehose, client CPU per message): with
 * reads of 256 KiB a 256 KiB frame nearly always spans two reads, so its
 * text is gathered and checked piece by piece; with reads of 1 MiB most such
 * frames are whole in one read and are decoded where they lie, in a quarter
 * as many reads (the native `WebSocket` reads up to about 1 MiB too). For
 * small messages reads over 256 KiB only made each read's burst of message
 * objects larger, and cost 5-10%.
 *
 * @module
 */

/** The size of a new connection's buffer, and of one whose burst is over. */
export const READ_SIZE_IDLE = 1024;
/** The largest buffer for reads of small messages. */
export const READ_SIZE_BULK = 256 * 1024;
/** The largest buffer, for reads of large frames. */
export const READ_SIZE_MAX = 1024 * 1024;
/** Bytes per event from which a read counts as one of large frames. */
export const LARGE_FRAME = 16 * 1024;
/** Reads in a row of less than a sixteenth of a large buffer before it goes back to the small one. */
export const SHRINK_AFTER = 64;

/**
 * The buffer of one connection's read loop: read into {@linkcode ReadBuffer.bytes},
 * then tell {@linkcode ReadBuffer.filled} how much came.
 *
 * @example
 * ```ts
 * import { READ_SIZE_IDLE, ReadBuffer } from "./read_buffer.ts";
 * import assert from "node:assert/strict";
 *
 * const reads = new ReadBuffer();
 * assert.equal(reads.bytes.length, READ_SIZE_IDLE);
 * reads.filled(READ_SIZE_IDLE, 32); // a read that filled it
 * assert.equal(reads.bytes.length, 2 * READ_SIZE_IDLE);
 * ```
 */
export class ReadBuffer {
  #bytes = new Uint8Array(READ_SIZE_IDLE);
  #smallReads = 0;

  /** Where the next read goes. A new buffer after a change: views of the old one stay valid. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /**
   * Takes note of a read, and grows or shrinks the buffer for the next one.
   *
   * @param n The bytes the read put at the start of {@linkcode ReadBuffer.bytes}.
   * @param events The protocol events they made (messages, control frames).
   */
  filled(n: number, events: number): void {
    const size = this.#bytes.length;
    if (n === size) {
      this.#smallReads = 0;
      const large = events * LARGE_FRAME <= n;
      if (size < READ_SIZE_BULK || (size < READ_SIZE_MAX && large)) {
        this.#bytes = new Uint8Array(2 * size);
      }
    } else if (n >= size >> 4) this.#smallReads = 0;
    else if (size > READ_SIZE_IDLE && ++this.#smallReads >= SHRINK_AFTER) {
      this.#smallReads = 0;
      this.#bytes = new Uint8Array(READ_SIZE_IDLE);
    }
  }
}
