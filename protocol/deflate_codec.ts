/**
 * The per-connection codecs of permessage-deflate (RFC 7692 section 7.2),
 * synchronous, so the protocol core stays "bytes in, events out":
 * {@linkcode Inflater} for the peer's messages and {@linkcode Deflater} for
 * ours. Both call `node:zlib`'s one-shot `inflateRawSync`/`deflateRawSync`,
 * which Deno, Node and Bun provide; {@linkcode loadZlib} imports it
 * dynamically, once, so that browsers can still load the module graph (they
 * compress on their own native WebSocket).
 *
 * What a codec keeps between messages: the inflater with context takeover
 * keeps the peer's last 2^bits bytes (32 KiB at most, allocated on the first
 * compressed message) and replays them ahead of each message as one stored
 * block, because Deno's `node:zlib` ignores the `dictionary` option of raw
 * streams and closes a stream after a sync call. Without takeover it keeps
 * nothing. The deflater keeps nothing: it deflates each message on its own,
 * which RFC 7692 permits whatever was agreed, and negotiation says so
 * (`*_no_context_takeover`). zlib's state (about 40 KiB to inflate and
 * 64-260 KiB to deflate) lives only during a call.
 *
 * Measured on Deno 2.9.6 (bench/deflate_codecs.ts, bench/deflate_memory.ts,
 * 2 shared cores, best of 5): per message of 200 B / 1 KiB / 16 KiB JSON,
 * `deflate()` 10 / 13 / 83 µs, `inflate()` 7 / 7 / 20 µs without takeover
 * and 12 / 22 / 34 µs with it (the window's replay). Idle, one connection's
 * pair keeps 32.5 KiB with takeover and 0.3 KiB without, against about
 * 330 KiB (RSS) for a persistent `node:zlib` stream pair and 420 KiB for a
 * `CompressionStream`/`DecompressionStream` pair. A 1 GB bomb (1 MB
 * compressed) stops at a 1 MiB limit in 3.5 ms with 3.5 MiB of RSS growth.
 *
 * @module
 */

import { ProtocolError } from "../util/errors.ts";

/** The part of `node:zlib` the codecs use; pass `await loadZlib()` or `import * as zlib from "node:zlib"`. */
export interface ZlibLike {
  /** `zlib.inflateRawSync`. */
  inflateRawSync(buffer: Uint8Array, options?: Record<string, unknown>): Uint8Array;
  /** `zlib.deflateRawSync`. */
  deflateRawSync(buffer: Uint8Array, options?: Record<string, unknown>): Uint8Array;
}

/**
 * Imports `node:zlib` when the runtime has it (Deno, Node, Bun), without a
 * static `node:` import that would break browsers.
 *
 * @returns The module, or `undefined` in a runtime without it (then do not offer permessage-deflate).
 *
 * @example Load it once per process
 * ```ts
 * import { loadZlib } from "./deflate_codec.ts";
 * import assert from "node:assert/strict";
 *
 * const zlib = await loadZlib();
 * assert.equal(typeof zlib?.inflateRawSync, "function");
 * ```
 */
export async function loadZlib(): Promise<ZlibLike | undefined> {
  const g = globalThis as { Deno?: unknown; process?: { versions?: { node?: string } } };
  if (g.Deno === undefined && g.process?.versions?.node === undefined) return undefined;
  try {
    return await import("node:zlib") as unknown as ZlibLike;
  } catch {
    return undefined;
  }
}

/** `Z_SYNC_FLUSH`, the same in every zlib. */
const Z_SYNC_FLUSH = 2;
/** The empty stored block a sync flush ends with, stripped by the sender (RFC 7692 7.2.1). */
const TAIL = [0x00, 0x00, 0xff, 0xff] as const;
/**
 * The largest output chunk of a zlib call. zlib allocates a whole chunk per
 * call, so a chunk near the expected output is fastest (measured: a 200 B
 * message inflates in 6 µs with 1 KiB chunks and 20 µs with 64 KiB ones).
 */
const CHUNK = 64 * 1024;

/** Options for {@linkcode Inflater}. */
export interface InflaterOptions {
  /** `node:zlib`, from {@linkcode loadZlib}. */
  zlib: ZlibLike;
  /**
   * The peer deflates each message on its own (its `*_no_context_takeover` was agreed).
   *
   * @default {false} RFC 7692's default is context takeover.
   */
  noContextTakeover?: boolean;
  /**
   * The peer's agreed `*_max_window_bits`, 8 to 15: with takeover, the inflater keeps 2^bits bytes.
   *
   * @default {15} RFC 7692's default.
   */
  maxWindowBits?: number;
}

/**
 * Inflates the peer's compressed messages, one connection and direction,
 * with or without context takeover.
 *
 * @example The RFC 7692 section 7.2.3.2 example: "Hello" twice with context takeover
 * ```ts
 * import * as zlib from "node:zlib";
 * import { Inflater } from "./deflate_codec.ts";
 * import assert from "node:assert/strict";
 *
 * const inflater = new Inflater({ zlib });
 * const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
 * assert.equal(text(inflater.inflate([new Uint8Array([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])], 1024)), "Hello");
 * assert.equal(text(inflater.inflate([new Uint8Array([0xf2, 0x00, 0x11, 0x00, 0x00])], 1024)), "Hello");
 * ```
 */
export class Inflater {
  #zlib: ZlibLike;
  #takeover: boolean;
  #windowSize: number;
  #window: Uint8Array | undefined;
  #windowLength = 0;
  #failed = false;
  #pending: Uint8Array[] = [];

  /**
   * Constructs a new instance.
   *
   * @param options The zlib module and the agreed parameters of the peer's direction.
   * @throws {TypeError} When `options.zlib` has no `inflateRawSync`.
   * @throws {RangeError} When `options.maxWindowBits` is not an integer from 8 to 15.
   */
  constructor(options: InflaterOptions) {
    if (typeof options?.zlib?.inflateRawSync !== "function") {
      throw new TypeError(
        `Cannot create an Inflater as zlib has no inflateRawSync: current value is ${typeof options
          ?.zlib}`,
      );
    }
    this.#zlib = options.zlib;
    this.#takeover = !options.noContextTakeover;
    this.#windowSize = 1 << checkBits(options.maxWindowBits ?? 15);
  }

  /** The bytes kept between messages: the window's buffer, 0 without takeover or before the first message. */
  get retainedBytes(): number {
    return this.#window?.byteLength ?? 0;
  }

  /**
   * Copies one frame's payload of the message being received, so that the
   * frame's buffer can go back to a pool at once; {@linkcode Inflater.end}
   * inflates what was pushed. The compressed bytes held are bounded by the
   * frame reader's limit on the message's wire size.
   *
   * @param payload A frame's payload (the first frame had RSV1 set).
   *
   * @example Fragments pushed as they arrive
   * ```ts
   * import * as zlib from "node:zlib";
   * import { Inflater } from "./deflate_codec.ts";
   * import assert from "node:assert/strict";
   *
   * const inflater = new Inflater({ zlib });
   * const frame = new Uint8Array([0xf2, 0x48, 0xcd]);
   * inflater.push(frame);
   * frame.fill(0); // the buffer is free again
   * inflater.push(new Uint8Array([0xc9, 0xc9, 0x07, 0x00]));
   * assert.equal(new TextDecoder().decode(inflater.end(1024)), "Hello");
   * ```
   */
  push(payload: Uint8Array): void {
    if (payload.length > 0) this.#pending.push(payload.slice());
  }

  /**
   * Inflates the payloads given to {@linkcode Inflater.push} since the last
   * message, as {@linkcode Inflater.inflate} does.
   *
   * @param maxSize The largest inflated size allowed, in bytes.
   * @returns The inflated message.
   * @throws {ProtocolError} As {@linkcode Inflater.inflate}.
   * @throws {RangeError} When `maxSize` is not a non-negative safe integer.
   */
  end(maxSize: number): Uint8Array {
    const pending = this.#pending;
    this.#pending = [];
    return this.inflate(pending, maxSize);
  }

  /**
   * Inflates one message: the payloads of its frames (the first had RSV1
   * set), in order. With takeover, the message's output then becomes part of
   * the window for the next one. zlib stops as soon as the output passes
   * `maxSize`, so a decompression bomb costs at most `maxSize` plus one
   * 64 KiB chunk (and the window).
   *
   * @param payloads The frames' payloads, as received (unmasked).
   * @param maxSize The largest inflated size allowed, in bytes (the connection's `maxMessageSize`).
   * @returns The inflated message.
   * @throws {ProtocolError} 1009 "message too big after inflating" past `maxSize`; 1007 "invalid compressed data" when zlib rejects the data. The inflater then refuses further use: fail the connection.
   * @throws {RangeError} When `maxSize` is not a non-negative safe integer.
   */
  inflate(payloads: readonly Uint8Array[], maxSize: number): Uint8Array {
    if (!Number.isSafeInteger(maxSize) || maxSize < 0) {
      throw new RangeError(
        `Cannot inflate as maxSize is not a non-negative integer: current value is ${maxSize}`,
      );
    }
    if (this.#failed) throw new ProtocolError(1002, "inflating after a failed message");
    const windowLength = this.#takeover ? this.#windowLength : 0;
    const prefix = windowLength === 0 ? 0 : 5 + windowLength;
    let size = prefix + TAIL.length;
    for (const payload of payloads) size += payload.length;
    const input = new Uint8Array(size);
    if (prefix > 0) {
      // A non-final stored block holding the window: zlib then resolves the
      // peer's back-references into it, as a preset dictionary would.
      input[1] = windowLength & 0xff;
      input[2] = windowLength >>> 8;
      input[3] = ~windowLength & 0xff;
      input[4] = (~windowLength >>> 8) & 0xff;
      input.set(this.#window!.subarray(0, windowLength), 5);
    }
    let offset = prefix;
    for (const payload of payloads) {
      input.set(payload, offset);
      offset += payload.length;
    }
    input.set(TAIL, offset);
    let output: Uint8Array;
    try {
      output = this.#zlib.inflateRawSync(input, {
        finishFlush: Z_SYNC_FLUSH,
        // The window, plus a guess of 4x the compressed size for the message.
        chunkSize: Math.min(CHUNK, Math.max(1024, windowLength + 4 * (size - prefix) + 256)),
        maxOutputLength: Math.max(1, maxSize + windowLength),
      });
    } catch (error) {
      this.#failed = true;
      if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
        throw new ProtocolError(1009, "message too big after inflating", { cause: error });
      }
      throw new ProtocolError(1007, "invalid compressed data", { cause: error });
    }
    const length = output.length - windowLength;
    if (length > maxSize) {
      this.#failed = true;
      throw new ProtocolError(1009, "message too big after inflating");
    }
    if (this.#takeover) this.#keep(output);
    // A plain Uint8Array, not zlib's Buffer: a copy past the window, else a view.
    return windowLength === 0
      ? new Uint8Array(output.buffer, output.byteOffset, output.length)
      : new Uint8Array(output.subarray(windowLength));
  }

  /** Keeps the last window-size bytes of `output` (the old window followed by the message). */
  #keep(output: Uint8Array): void {
    const keep = Math.min(output.length, this.#windowSize);
    if (keep === 0) return;
    this.#window ??= new Uint8Array(this.#windowSize);
    this.#window.set(output.subarray(output.length - keep));
    this.#windowLength = keep;
  }
}

/** Options for {@linkcode Deflater}. */
export interface DeflaterOptions {
  /** `node:zlib`, from {@linkcode loadZlib}. */
  zlib: ZlibLike;
  /**
   * Our agreed `*_max_window_bits`, 8 to 15. With 8, which zlib cannot
   * produce for raw deflate, {@linkcode Deflater.shouldCompress} says no and
   * `deflate()` writes stored blocks only.
   *
   * @default {15} RFC 7692's default.
   */
  maxWindowBits?: number;
  /**
   * zlib's compression level, 1 (fastest) to 9.
   *
   * @default {6} zlib's and Node `ws`'s default.
   */
  level?: number;
  /**
   * Messages shorter than this many bytes should go out uncompressed ({@linkcode Deflater.shouldCompress}).
   *
   * @default {1024} Node `ws`'s value, confirmed by bench/deflate_codecs.ts: below 1 KiB one deflate costs 10-25 µs to save a few hundred bytes.
   */
  threshold?: number;
}

/**
 * Deflates our messages, one connection and direction. Each message is
 * deflated on its own (no context takeover), which RFC 7692 allows whatever
 * was agreed; the peer decodes it with or without its window.
 *
 * @example The RFC 7692 section 7.2.3.1 example: "Hello"
 * ```ts
 * import * as zlib from "node:zlib";
 * import { Deflater } from "./deflate_codec.ts";
 * import assert from "node:assert/strict";
 *
 * const deflater = new Deflater({ zlib });
 * const payload = deflater.deflate(new TextEncoder().encode("Hello"));
 * assert.deepEqual([...payload], [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
 * assert.equal(deflater.shouldCompress(5), false);
 * ```
 */
export class Deflater {
  #zlib: ZlibLike;
  #bits: number;
  #level: number;
  #threshold: number;

  /**
   * Constructs a new instance.
   *
   * @param options The zlib module, the agreed window and the tuning.
   * @throws {TypeError} When `options.zlib` has no `deflateRawSync`.
   * @throws {RangeError} When `maxWindowBits` is not 8 to 15, `level` not 1 to 9, or `threshold` not a non-negative integer.
   */
  constructor(options: DeflaterOptions) {
    if (typeof options?.zlib?.deflateRawSync !== "function") {
      throw new TypeError(
        `Cannot create a Deflater as zlib has no deflateRawSync: current value is ${typeof options
          ?.zlib}`,
      );
    }
    const { level = 6, threshold = 1024 } = options;
    if (!Number.isInteger(level) || level < 1 || level > 9) {
      throw new RangeError(
        `Cannot create a Deflater as level is not an integer from 1 to 9: current value is ${level}`,
      );
    }
    if (!Number.isSafeInteger(threshold) || threshold < 0) {
      throw new RangeError(
        `Cannot create a Deflater as threshold is not a non-negative integer: current value is ${threshold}`,
      );
    }
    this.#zlib = options.zlib;
    this.#bits = checkBits(options.maxWindowBits ?? 15);
    this.#level = level;
    this.#threshold = threshold;
  }

  /**
   * Whether a message of `size` bytes is worth compressing: at least the
   * threshold, and a window over 8 bits.
   *
   * @param size The message's length in bytes.
   * @returns `true` to send it compressed (RSV1 set), `false` to send it as is.
   */
  shouldCompress(size: number): boolean {
    return size >= this.#threshold && this.#bits > 8;
  }

  /**
   * Deflates one message into the payload of a compressed message (set RSV1
   * on its first frame): raw DEFLATE ending with a sync flush whose trailing
   * `00 00 ff ff` is removed (RFC 7692 section 7.2.1).
   *
   * @param data The message.
   * @returns The payload.
   */
  deflate(data: Uint8Array): Uint8Array {
    const stored = this.#bits === 8;
    // A window over the message's length buys nothing and costs zlib's setup.
    let bits = 9;
    while (bits < this.#bits && (1 << bits) < data.length + 262) bits++;
    const output = this.#zlib.deflateRawSync(data, {
      finishFlush: Z_SYNC_FLUSH,
      level: stored ? 0 : this.#level,
      windowBits: bits,
      memLevel: Math.min(8, Math.max(1, bits - 6)),
      chunkSize: Math.max(1024, Math.min(CHUNK, data.length + 64)),
    });
    // A plain Uint8Array view of zlib's Buffer, without the trailing 00 00 ff ff.
    return new Uint8Array(output.buffer, output.byteOffset, output.length - TAIL.length);
  }
}

function checkBits(bits: number): number {
  if (!Number.isInteger(bits) || bits < 8 || bits > 15) {
    throw new RangeError(
      `Cannot use maxWindowBits as it is not an integer from 8 to 15: current value is ${bits}`,
    );
  }
  return bits;
}
