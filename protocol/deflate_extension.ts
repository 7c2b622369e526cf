/**
 * The protocol layer (sans-I/O): permessage-deflate (RFC 7692) on one
 * connection, as the `Protocol` of `protocol/protocol.ts` uses it once the
 * opening handshake agreed on it. It joins the negotiation
 * (`protocol/permessage_deflate.ts`) and the codecs
 * (`protocol/deflate_codec.ts`) to the frames:
 *
 * - receiving, {@linkcode PerMessageDeflate.takes} says which frames belong
 *   to a compressed message (a text or binary frame with RSV1, and the
 *   continuations that follow it), {@linkcode PerMessageDeflate.receive}
 *   inflates the message at its last frame and decodes its text. Control
 *   frames between the fragments, and every other frame, stay the
 *   `Protocol`'s: RSV1 on a control frame or a continuation, RSV2, RSV3 and
 *   RSV1 without an agreement still fail the connection with 1002;
 * - sending, {@linkcode PerMessageDeflate.encode} and
 *   {@linkcode PerMessageDeflate.encodeText} build a compressed frame (RSV1
 *   set) for a message at least `threshold` bytes long, or return
 *   `undefined` and the `Protocol` sends it as is. Control frames are never
 *   compressed.
 *
 * It is synchronous: `node:zlib`'s sync calls, no async seam between a frame
 * and its events. The module imports no `node:` module itself:
 * {@linkcode sharedZlib} loads it dynamically, so browsers can load the graph.
 *
 * @example Compress a message and read it back
 * ```ts
 * import * as zlib from "node:zlib";
 * import { PerMessageDeflate } from "./deflate_extension.ts";
 * import { FrameReader } from "./frame_reader.ts";
 * import assert from "node:assert/strict";
 *
 * const params = {
 *   serverNoContextTakeover: true,
 *   clientNoContextTakeover: true,
 *   serverMaxWindowBits: 15,
 *   clientMaxWindowBits: 15,
 * };
 * const server = new PerMessageDeflate({ zlib, params, threshold: 0 }, "server", 1024);
 * const client = new PerMessageDeflate({ zlib, params }, "client", 1024);
 * const frame = server.encodeText("hello hello hello", false)!;
 * assert.equal(frame[0], 0xc1); // FIN, RSV1, text
 * const reader = new FrameReader({ expectMasked: false, maxFrameSize: 1024 });
 * reader.push(frame);
 * const received = reader.next()!;
 * assert.ok(client.takes(received, false));
 * assert.deepEqual(client.receive(received), { type: "text", data: "hello hello hello" });
 * ```
 *
 * @module
 */

import { ProtocolError } from "../util/errors.ts";
import { CloseCode } from "./close_code.ts";
import { Deflater, Inflater, loadZlib, type ZlibLike } from "./deflate_codec.ts";
import {
  acceptDeflateOffer,
  type DeflateAcceptOptions,
  deflateDirections,
  deflateOffer,
  type DeflateOfferOptions,
  type DeflateParams,
} from "./permessage_deflate.ts";
import type { Frame } from "./frame_reader.ts";
import { encodeFrame, OP_BINARY, OP_CONTINUATION, OP_TEXT } from "./frames.ts";
import type { DataMessage } from "./message_assembly.ts";

/** RSV1 in {@linkcode Frame.rsv} (RSV1 is 4, RSV2 2, RSV3 1). */
const RSV1 = 4;

/** What both roles tune of their own compression. */
export interface CompressionTuning {
  /**
   * Messages shorter than this many bytes are sent uncompressed.
   *
   * @default {1024} Node `ws`'s value: below 1 KiB, one deflate costs 10-25 µs to save a few hundred bytes (bench/deflate_codecs.ts).
   */
  threshold?: number;
  /**
   * zlib's compression level, 1 (fastest) to 9 (smallest).
   *
   * @default {6} zlib's and Node `ws`'s default.
   */
  level?: number;
}

/**
 * The client's `compression` option in object form: what to offer
 * (RFC 7692 section 7.1) and how to compress. See docs/compression.md.
 */
export interface ClientCompressionOptions extends DeflateOfferOptions, CompressionTuning {}

/**
 * The server's `compression` option in object form: what to accept
 * (RFC 7692 section 7.1) and how to compress. See docs/compression.md.
 */
export interface ServerCompressionOptions extends DeflateAcceptOptions, CompressionTuning {}

/** What a `Protocol` needs to run permessage-deflate: see `ProtocolOptions.deflate`. */
export interface DeflateSettings extends CompressionTuning {
  /** `node:zlib`, from {@linkcode sharedZlib}. */
  zlib: ZlibLike;
  /** The parameters the opening handshake agreed on. */
  params: DeflateParams;
}

let zlibPromise: Promise<ZlibLike | undefined> | undefined;

/**
 * `node:zlib`, imported once per process (see `loadZlib` in
 * `protocol/deflate_codec.ts`).
 *
 * @returns The module, or `undefined` in a runtime without it (then compression is not offered nor accepted).
 *
 * @example
 * ```ts
 * import { sharedZlib } from "./deflate_extension.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await sharedZlib(), await sharedZlib());
 * ```
 */
export function sharedZlib(): Promise<ZlibLike | undefined> {
  return zlibPromise ??= loadZlib();
}

/**
 * Checks a client's or a server's `compression` option and fills in nothing:
 * `false` (or `undefined` when `fallback` is `false`) turns compression off,
 * `true` asks for the defaults, an object for its settings.
 *
 * @param value The option as given.
 * @param role Whose option it is: a client's offers, a server's accepts.
 * @param fallback What `undefined` means.
 * @returns The settings, frozen (`{}` for the defaults), or `undefined` for off.
 * @throws {TypeError} When `value` is not a boolean or an object.
 * @throws {RangeError} When a window bits value, `threshold` or `level` is out of range.
 *
 * @example
 * ```ts
 * import { checkCompression } from "./deflate_extension.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(checkCompression(true, "client", false), {});
 * assert.equal(checkCompression(undefined, "server", false), undefined);
 * assert.throws(() => checkCompression({ level: 0 }, "server", true), RangeError);
 * ```
 */
export function checkCompression(
  value: unknown,
  role: "client",
  fallback: boolean,
): Readonly<ClientCompressionOptions> | undefined;
export function checkCompression(
  value: unknown,
  role: "server",
  fallback: boolean,
): Readonly<ServerCompressionOptions> | undefined;
export function checkCompression(
  value: unknown,
  role: "client" | "server",
  fallback: boolean,
): Readonly<ClientCompressionOptions | ServerCompressionOptions> | undefined {
  if (value === undefined) value = fallback;
  if (value === false) return undefined;
  if (value === true) return Object.freeze({});
  if (typeof value !== "object" || value === null) {
    throw new TypeError(
      `Cannot use compression as it is not a boolean or an object: current value is ${
        String(value)
      }`,
    );
  }
  const options = { ...value } as ClientCompressionOptions & ServerCompressionOptions;
  const { threshold = 1024, level = 6 } = options;
  if (!Number.isSafeInteger(threshold) || threshold < 0) {
    throw new RangeError(
      `Cannot use compression.threshold as it is not a non-negative integer: current value is ${threshold}`,
    );
  }
  if (!Number.isInteger(level) || level < 1 || level > 9) {
    throw new RangeError(
      `Cannot use compression.level as it is not an integer from 1 to 9: current value is ${level}`,
    );
  }
  // The negotiation functions check the window bits (RangeError naming the option).
  if (role === "client") deflateOffer(options);
  else acceptDeflateOffer(null, options);
  return Object.freeze(options);
}

/**
 * The `Sec-WebSocket-Extensions` offer of a client with compression on.
 *
 * @param options The checked option ({@linkcode checkCompression}).
 * @returns The header value.
 *
 * @example
 * ```ts
 * import { compressionOffer } from "./deflate_extension.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   compressionOffer({}),
 *   "permessage-deflate; client_no_context_takeover; client_max_window_bits",
 * );
 * ```
 */
export function compressionOffer(options: ClientCompressionOptions): string {
  return deflateOffer(options);
}

/**
 * The `Protocol`'s `deflate` option for an agreement.
 *
 * @param zlib `node:zlib`, from {@linkcode sharedZlib}.
 * @param params The parameters the handshake agreed on.
 * @param options The checked `compression` option ({@linkcode checkCompression}): its tuning.
 * @returns The settings.
 */
export function deflateSettings(
  zlib: ZlibLike,
  params: DeflateParams,
  options: CompressionTuning,
): DeflateSettings {
  const { threshold, level } = options;
  return { zlib, params, threshold, level };
}

/**
 * The `Protocol`'s `deflate` option once a server agreed: imports
 * `node:zlib` if this is the first agreement of the process. The import is
 * left until then because it is not free (on Deno 2.9.6 it blocks the event
 * loop for about 40 ms when nothing loaded Node's compatibility layer
 * before), and a server that declines should cost nothing.
 *
 * @param params The parameters the handshake agreed on.
 * @param options The checked `compression` option: its tuning.
 * @param signal Aborts the wait (connecting was aborted meanwhile).
 * @returns The settings.
 * @throws {TypeError} In a runtime without `node:zlib` (the wsbeat transport runs on Deno only).
 * @throws The signal's reason, when it aborted.
 */
export async function loadDeflate(
  params: DeflateParams,
  options: CompressionTuning,
  signal?: AbortSignal,
): Promise<DeflateSettings> {
  const zlib = await sharedZlib();
  signal?.throwIfAborted();
  if (zlib === undefined) {
    throw new TypeError("Cannot use permessage-deflate as this runtime has no node:zlib");
  }
  return deflateSettings(zlib, params, options);
}

/**
 * Decompresses and compresses the messages of one connection: see the
 * module doc. Created by the `Protocol` from its `deflate` option.
 */
export class PerMessageDeflate {
  readonly #inflater: Inflater;
  readonly #deflater: Deflater;
  readonly #maxMessageSize: number;
  /** OP_TEXT or OP_BINARY while a compressed message is being received, else 0. */
  #opcode = 0;

  /**
   * Constructs a new instance.
   *
   * @param settings The zlib module, the agreed parameters and the tuning.
   * @param role This endpoint's role (which direction's parameters bind whom).
   * @param maxMessageSize The largest message after inflating, in bytes; past it, 1009.
   * @throws {RangeError} When `threshold` or `level` is out of range.
   */
  constructor(settings: DeflateSettings, role: "client" | "server", maxMessageSize: number) {
    const { inflate, deflate } = deflateDirections(settings.params, role);
    const { zlib, threshold, level } = settings;
    this.#inflater = new Inflater({
      zlib,
      noContextTakeover: inflate.noContextTakeover,
      maxWindowBits: inflate.maxWindowBits,
    });
    this.#deflater = new Deflater({
      zlib,
      maxWindowBits: deflate.maxWindowBits,
      ...(threshold === undefined ? {} : { threshold }),
      ...(level === undefined ? {} : { level }),
    });
    this.#maxMessageSize = Math.min(maxMessageSize, Number.MAX_SAFE_INTEGER);
  }

  /** Bytes kept between messages: the peer's window with context takeover (up to 32 KiB). */
  get retainedBytes(): number {
    return this.#inflater.retainedBytes;
  }

  /**
   * Whether a received frame belongs to a compressed message: a text or
   * binary frame with RSV1 (and no other reserved bit) when no message is
   * open, or any data frame while a compressed message is open (then
   * {@linkcode PerMessageDeflate.receive} judges it).
   *
   * @param frame The frame read.
   * @param messageOpen Whether an uncompressed fragmented message is open.
   * @returns `true` to hand it to {@linkcode PerMessageDeflate.receive}.
   */
  takes(frame: Frame, messageOpen: boolean): boolean {
    if (frame.opcode >= 8) return false; // control frames: the Protocol's, RSV1 refused there
    if (this.#opcode !== 0) return true;
    return frame.rsv === RSV1 && !messageOpen &&
      (frame.opcode === OP_TEXT || frame.opcode === OP_BINARY);
  }

  /**
   * Takes one data frame of a compressed message; at its last frame,
   * inflates the message and decodes its text.
   *
   * @param frame A frame {@linkcode PerMessageDeflate.takes} took.
   * @returns The whole message at its last frame, else `undefined`.
   * @throws {ProtocolError} 1002 for a new message inside the compressed one
   *   or reserved bits on a continuation; 1009 past `maxMessageSize` once
   *   inflated; 1007 for invalid compressed data or text that is not UTF-8.
   */
  receive(frame: Frame): DataMessage | undefined {
    if (this.#opcode === 0) this.#opcode = frame.opcode;
    else if (frame.opcode !== OP_CONTINUATION) {
      throw new ProtocolError(CloseCode.PROTOCOL_ERROR, "new message inside a fragmented message");
    } else if (frame.rsv !== 0) {
      throw new ProtocolError(CloseCode.PROTOCOL_ERROR, "reserved bits set");
    }
    this.#inflater.push(frame.payload);
    frame.release?.(); // copied
    if (!frame.fin) return undefined;
    const opcode = this.#opcode;
    this.#opcode = 0;
    const data = this.#inflater.end(this.#maxMessageSize);
    if (opcode === OP_BINARY) return { type: "binary", data };
    // As in message_assembly.ts: the lossy decoder first, the strict one only on a U+FFFD.
    let text = lossyDecoder.decode(data);
    if (text.includes("\uFFFD")) {
      try {
        text = strictDecoder.decode(data);
      } catch (cause) {
        throw new ProtocolError(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in text message", {
          cause,
        });
      }
    }
    return { type: "text", data: text };
  }

  /**
   * A compressed frame (FIN and RSV1 set) for a message at least
   * `threshold` bytes long.
   *
   * @param opcode OP_TEXT (`data` is UTF-8) or OP_BINARY.
   * @param data The message.
   * @param mask Whether to mask it (a client).
   * @returns The frame, or `undefined` to send the message as is.
   */
  encode(opcode: number, data: Uint8Array, mask: boolean): Uint8Array | undefined {
    if (!this.#deflater.shouldCompress(data.length)) return undefined;
    return encodeFrame(opcode, this.#deflater.deflate(data), { mask, rsv: RSV1, slab: true });
  }

  /**
   * A text message's frame: compressed when its UTF-8 is at least
   * `threshold` bytes long; `undefined` for a short string, which the
   * caller encodes straight into its frame.
   *
   * @param text The message.
   * @param mask Whether to mask it (a client).
   * @returns The frame, or `undefined` to send the message with `encodeTextFrame`.
   */
  encodeText(text: string, mask: boolean): Uint8Array | undefined {
    if (!this.#deflater.shouldCompress(3 * text.length)) return undefined; // cannot reach it
    const bytes = encoder.encode(text);
    return this.encode(OP_TEXT, bytes, mask) ??
      encodeFrame(OP_TEXT, bytes, { mask, slab: true });
  }
}

const encoder = new TextEncoder();
const lossyDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
