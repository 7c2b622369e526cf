/**
 * The protocol layer (sans-I/O): one RFC 6455 connection after the opening
 * handshake, for either role. Feed it received bytes
 * ({@linkcode Protocol.receiveData}), take the events it parsed
 * ({@linkcode Protocol.events}) and the bytes it wants written
 * ({@linkcode Protocol.dataToSend}); queue frames with `send*()`. It enforces
 * the rules between frames (reserved bits, opcodes, fragmentation, message
 * size, UTF-8, the closing handshake) on top of `protocol/frames.ts`, and fails the
 * connection with 1002, 1007 or 1009 (see {@linkcode CloseCode}) when the
 * peer breaks one.
 *
 * It has no sockets, no timers and no `Deno.*`: the transports (`transport/`) do
 * the reading, the writing and the timeouts around it.
 *
 * @example A server receives a client's text message and closes
 * ```ts
 * import { encodeTextFrame } from "./frames.ts";
 * import { Protocol } from "./protocol.ts";
 * import assert from "node:assert/strict";
 *
 * const server = new Protocol({ role: "server" });
 * server.receiveData(encodeTextFrame("hello", { mask: true }));
 * assert.deepEqual(server.events(), [{ type: "text", data: "hello" }]);
 * server.sendClose(1000);
 * assert.deepEqual(server.dataToSend(), [new Uint8Array([0x88, 0x02, 0x03, 0xe8])]);
 * assert.equal(server.state, "closing");
 * ```
 *
 * @module
 */

import { ProtocolError } from "../util/errors.ts";
export { ProtocolError } from "../util/errors.ts";
import { CloseCode } from "./close_code.ts";
export { CloseCode } from "./close_code.ts";
import { cutUtf8, decodeClosePayload, encodeClosePayload } from "./close_payload.ts";
import {
  encodeFrame,
  encodeFrameInPlace,
  encodeTextFrame,
  HEADER_ROOM,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  statedPayloadLength,
} from "./frames.ts";
import { Fifo } from "../util/fifo.ts";
import { type Frame, FrameReader } from "./frame_reader.ts";
import { MessageAssembler } from "./message_assembly.ts";
import { PerMessageDeflate } from "./deflate_extension.ts";
import { type CloseRecord, ignoresInput, openRecord, phaseOf } from "./close_record.ts";

export * from "./events.ts";
import {
  DEFAULT_MAX_MESSAGE_SIZE,
  EventQueue,
  type ProtocolEvent,
  type ProtocolOptions,
  type ProtocolState,
  type Role,
} from "./events.ts";

/**
 * The sans-I/O WebSocket connection, for either role, from the end of the
 * opening handshake on. It never reads, writes or waits: the I/O layer feeds
 * it bytes and EOF, acts on its events, writes what {@linkcode dataToSend}
 * returns, and closes TCP when {@linkcode closeExpected} says so.
 *
 * @example A client answers a ping and echoes the server's close
 * ```ts
 * import { Protocol } from "./protocol.ts";
 * import assert from "node:assert/strict";
 *
 * const client = new Protocol({ role: "client" });
 * client.receiveData(new Uint8Array([0x89, 0x01, 0x2a, 0x88, 0x02, 0x03, 0xe8]));
 * assert.deepEqual(client.events(), [
 *   { type: "ping", data: new Uint8Array([0x2a]) },
 *   { type: "close", code: 1000, reason: "" },
 * ]);
 * assert.equal(client.dataToSend().length, 2); // the pong and the close reply
 * assert.equal(client.state, "closed");
 * assert.equal(client.closeExpected(), false); // the server closes TCP first
 * ```
 */
export class Protocol {
  readonly #role: Role;
  readonly #mask: boolean;
  readonly #reader: FrameReader;
  readonly #events = new EventQueue();
  readonly #deferFailure: boolean;
  readonly #output = new Fifo<Uint8Array>();
  readonly #autoReply: boolean;
  readonly #echo: boolean;
  #pendingBytes = 0;
  #dataSent = 0;
  #dataReceived = 0;
  readonly #close: CloseRecord = openRecord();
  readonly #messages: MessageAssembler;
  /** permessage-deflate, when the handshake agreed on it (`protocol/deflate_extension.ts`). */
  readonly #deflate: PerMessageDeflate | undefined;

  /**
   * Constructs a new instance.
   *
   * @param options The role, the message size limit, the echo mode and
   *   whether to answer pings and close frames.
   * @throws {TypeError} When the role is not "client" or "server".
   * @throws {RangeError} When `maxMessageSize` is not a non-negative integer or Infinity.
   */
  constructor(options: ProtocolOptions) {
    const { role, maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE, echo = false } = options;
    this.#autoReply = options.autoReply ?? true;
    this.#echo = echo;
    this.#deferFailure = options.deferFailure ?? false;
    if (role !== "client" && role !== "server") {
      throw new TypeError(
        `Cannot use the role as it is not "client" or "server": current value is ${role}`,
      );
    }
    if (!(Number.isInteger(maxMessageSize) && maxMessageSize >= 0) && maxMessageSize !== Infinity) {
      throw new RangeError(
        `Cannot use maxMessageSize as it is not a non-negative integer: current value is ${maxMessageSize}`,
      );
    }
    this.#role = role;
    this.#messages = new MessageAssembler(maxMessageSize);
    this.#deflate = options.deflate && new PerMessageDeflate(options.deflate, role, maxMessageSize);
    this.#mask = role === "client";
    this.#reader = new FrameReader({
      expectMasked: role === "server",
      maxFrameSize: Math.max(maxMessageSize, 125), // control frames are not messages
      maxMessageSize,
      headerRoom: echo ? HEADER_ROOM : 0,
      streamText: true, // decoded in #handle before receiveData returns
    });
  }

  /** Which end this is. */
  get role(): Role {
    return this.#role;
  }

  /** The connection's state, see {@linkcode ProtocolState}. */
  get state(): ProtocolState {
    return this.#close.phase;
  }

  /** Why the protocol failed (or, pending, is to fail) the connection: the rule the peer broke. */
  get failure(): ProtocolError | undefined {
    return this.#close.failure;
  }

  /** Whether the I/O layer has yet to `fail()` for {@linkcode failure} (`deferFailure`). */
  get failurePending(): boolean {
    return this.#close.failure !== undefined && !this.#close.failed;
  }

  /** The close frame sent (code 1005 when it had no payload), or undefined. */
  get closeSent(): { code: number; reason: string } | undefined {
    return this.#close.sent;
  }

  /** The close frame received (code 1005 when it had no payload), or undefined. */
  get closeReceived(): { code: number; reason: string } | undefined {
    return this.#close.received;
  }

  /** Payload bytes of the data frames queued so far (text as UTF-8), for statistics. */
  get bytesSent(): number {
    return this.#dataSent;
  }

  /** Payload bytes of the data frames received so far (text as UTF-8), for statistics. */
  get bytesReceived(): number {
    return this.#dataReceived;
  }

  /** Bytes waiting in {@linkcode dataToSend}, for write batching. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Feeds bytes received from the peer. It never throws on bad input: a
   * violation fails the connection (see {@linkcode fail}, then
   * {@linkcode failure}; with {@linkcode ProtocolOptions.deferFailure}, only
   * once the I/O layer calls `fail`) and later input is ignored, as is input
   * after the peer's close frame or EOF. The events before a violation are
   * reported as usual.
   *
   * @param chunk The bytes; not kept after the call, so it may be a view of
   * a buffer the caller reuses.
   * @param length How many bytes of `chunk` to take.
   *
   * @example Reserved bits fail the connection with 1002
   * ```ts
   * import { Protocol } from "./protocol.ts";
   * import assert from "node:assert/strict";
   *
   * const client = new Protocol({ role: "client" });
   * client.receiveData(new Uint8Array([0xc1, 0x00]));
   * assert.equal(client.failure?.closeCode, 1002);
   * assert.deepEqual(client.closeSent, { code: 1002, reason: "reserved bits set" });
   * ```
   */
  receiveData(chunk: Uint8Array, length: number = chunk.length): void {
    const close = this.#close;
    if (close.failure !== undefined || (close.phase !== "open" && ignoresInput(close))) return;
    this.#reader.push(chunk, length);
    while (close.failure === undefined && (close.phase === "open" || !ignoresInput(close))) {
      try {
        const frame = this.#reader.next();
        if (frame === undefined) return;
        this.#handle(frame);
      } catch (error) {
        // A RangeError here is a buffer that could not be allocated (no size limit).
        const failure = error instanceof RangeError
          ? new ProtocolError(CloseCode.TOO_BIG, "message too large to buffer", { cause: error })
          : error;
        if (!(failure instanceof ProtocolError)) throw error;
        close.failure = failure;
        this.#messages.reset();
        if (!this.#deferFailure) this.fail(failure.closeCode, failure.rule);
      }
    }
  }

  /** Tells that the peer closed TCP: the state becomes `"closed"` and later input is ignored. */
  receiveEof(): void {
    this.#close.eof = true;
    this.#close.phase = phaseOf(this.#close);
    this.#messages.reset();
  }

  /**
   * Returns the events received since the last call, and forgets them.
   *
   * @returns The events, in order.
   */
  events(): ProtocolEvent[] {
    return this.#events.takeAll();
  }

  /**
   * Takes the next event received, as {@linkcode Protocol.events} would
   * return it, without an array: for an I/O loop that runs per packet.
   *
   * @returns The oldest event not yet taken, or `undefined`.
   */
  nextEvent(): ProtocolEvent | undefined {
    return this.#events.shift();
  }

  /**
   * The payload bytes of the event {@linkcode Protocol.nextEvent} returned last (text as UTF-8),
   * so that no one encodes a text message again to count it; undefined for a compressed one.
   */
  get eventBytes(): number | undefined {
    return this.#events.taken;
  }

  /** How many received events wait to be taken. */
  get pendingEvents(): number {
    return this.#events.size;
  }

  /**
   * Returns the bytes to write since the last call, one buffer per frame,
   * and forgets them; the transport may write them together.
   *
   * @returns The frames' bytes, in order.
   */
  dataToSend(): Uint8Array[] {
    this.#pendingBytes = 0;
    return this.#output.takeAll();
  }

  /**
   * Takes the next frame to write, as {@linkcode Protocol.dataToSend} would
   * return it, without an array.
   *
   * @returns The oldest frame not yet taken, or `undefined`.
   */
  nextData(): Uint8Array | undefined {
    const frame = this.#output.shift();
    if (frame !== undefined) this.#pendingBytes -= frame.byteLength;
    return frame;
  }

  /**
   * Queues a text message as one frame.
   *
   * @param text The message.
   * @throws {Error} When a close frame was sent, the connection failed, or the
   * peer closed TCP.
   */
  sendText(text: string): void {
    this.#checkCanSend("text");
    const frame = this.#deflate?.encodeText(text, this.#mask) ??
      encodeTextFrame(text, { mask: this.#mask, slab: true });
    this.#dataSent += statedPayloadLength(frame);
    this.#queue(frame);
  }

  /**
   * Queues a binary message as one frame.
   *
   * @param data The message.
   * @throws {Error} When a close frame was sent, the connection failed, or the
   * peer closed TCP.
   */
  sendBinary(data: Uint8Array): void {
    this.#checkCanSend("binary");
    const frame = this.#deflate?.encode(OP_BINARY, data, this.#mask) ??
      encodeFrame(OP_BINARY, data, { mask: this.#mask, slab: true });
    this.#dataSent += statedPayloadLength(frame);
    this.#queue(frame);
  }

  /**
   * Queues a received message's `echo` (see {@linkcode ProtocolOptions.echo})
   * as one frame: on a server its header goes into the room before it, no copy.
   *
   * @param type Whether the message is text or binary.
   * @param echo The `echo` of a message this protocol reported.
   * @throws {Error} When a close frame was sent, the connection failed, or the
   * peer closed TCP.
   */
  sendEcho(type: "text" | "binary", echo: Uint8Array): void {
    this.#checkCanSend(type);
    const opcode = type === "text" ? OP_TEXT : OP_BINARY;
    const frame = this.#deflate?.encode(opcode, echo, this.#mask) ??
      (this.#mask ? encodeFrame(opcode, echo, { mask: true }) : encodeFrameInPlace(opcode, echo));
    this.#dataSent += statedPayloadLength(frame);
    this.#queue(frame);
  }

  /**
   * Queues a ping frame.
   *
   * @param data The payload, at most 125 bytes.
   * @throws {RangeError} When the payload is over 125 bytes.
   * @throws {Error} When a close frame was sent, the connection failed, or the
   * peer closed TCP.
   */
  sendPing(data: Uint8Array = new Uint8Array(0)): void {
    this.#sendControl("ping", OP_PING, data);
  }

  /**
   * Queues a pong frame: unsolicited, or the answer to a ping when
   * {@linkcode ProtocolOptions.autoReply} is off.
   *
   * @param data The payload, at most 125 bytes.
   * @throws {RangeError} When the payload is over 125 bytes.
   * @throws {Error} When a close frame was sent, the connection failed, or the
   * peer closed TCP.
   */
  sendPong(data: Uint8Array = new Uint8Array(0)): void {
    this.#sendControl("pong", OP_PONG, data);
  }

  /**
   * Starts the closing handshake by queuing a close frame. Does nothing once a
   * close frame was sent or the peer closed TCP.
   *
   * @param code The close code, valid on the wire; undefined sends an empty payload.
   * @param reason The reason, at most 123 bytes of UTF-8; only with a code.
   * @throws {RangeError} When the code is not valid on the wire, the reason is
   * over 123 bytes, or a reason comes without a code.
   */
  sendClose(code?: number, reason: string = ""): void {
    const payload = encodeClosePayload(code, reason);
    this.#sendCloseFrame(payload, code ?? CloseCode.NO_STATUS, reason);
  }

  /**
   * Fails the connection (RFC 6455 section 7.1.7): queues a close frame with
   * `code` and `reason` unless one was already sent, ignores all later input,
   * and makes {@linkcode closeExpected} true.
   *
   * @param code The close code, valid on the wire (1002, 1007, 1009, 1011, ...).
   * @param reason The reason; cut to 123 bytes of UTF-8 (at a character) if longer.
   * @throws {RangeError} When the code is not valid on the wire.
   *
   * @example
   * ```ts
   * import { Protocol } from "./protocol.ts";
   * import assert from "node:assert/strict";
   *
   * const server = new Protocol({ role: "server" });
   * server.fail(1011, "internal error");
   * assert.equal(server.state, "closing");
   * assert.equal(server.closeExpected(), true);
   * assert.equal(server.failure, undefined); // only the protocol's own failures
   * ```
   */
  fail(code: number, reason: string = ""): void {
    reason = cutUtf8(reason, 123);
    const payload = encodeClosePayload(code, reason);
    this.#close.failed = true;
    this.#sendCloseFrame(payload, code, reason);
    this.#close.phase = phaseOf(this.#close);
  }

  /**
   * Tells whether the I/O layer should close TCP once {@linkcode dataToSend}
   * is written: after {@linkcode fail}, after EOF, or on a server once close
   * frames went both ways. A client waits for the server to close TCP after
   * the closing handshake (RFC 6455 section 7.1.1), within a bound of its
   * own.
   *
   * @returns Whether to close TCP.
   */
  closeExpected(): boolean {
    const close = this.#close;
    return close.failed || close.eof ||
      (this.#role === "server" && close.phase === "closed");
  }

  /** Queues a close frame unless one was sent or TCP is gone, and records it. */
  #sendCloseFrame(payload: Uint8Array, code: number, reason: string): void {
    const close = this.#close;
    if (close.sent !== undefined || close.eof) return;
    this.#queue(encodeFrame(OP_CLOSE, payload, { mask: this.#mask, slab: true }));
    close.sent = { code, reason };
    close.phase = phaseOf(close);
  }

  #checkCanSend(kind: string): void {
    const close = this.#close;
    if (close.phase === "open") return;
    if (close.sent !== undefined || close.failed) {
      throw new Error(`Cannot send a ${kind} frame as the closing handshake has started`);
    }
    if (close.eof) throw new Error(`Cannot send a ${kind} frame as the connection is closed`);
  }

  #sendControl(kind: string, opcode: number, data: Uint8Array): void {
    if (data.length > 125) {
      throw new RangeError(
        `Cannot send a ${kind} frame as its payload is over 125 bytes: current value is ${data.length} bytes`,
      );
    }
    this.#checkCanSend(kind);
    this.#queue(encodeFrame(opcode, data, { mask: this.#mask, slab: true }));
  }

  #queue(bytes: Uint8Array): void {
    this.#output.push(bytes);
    this.#pendingBytes += bytes.length;
  }

  #handle(frame: Frame): void {
    if (this.#deflate?.takes(frame, this.#messages.open)) {
      // A frame of a compressed message (RSV1 on its first): inflated at its last.
      this.#dataReceived += frame.payload.length;
      const message = this.#deflate.receive(frame);
      if (message) this.#events.push(message, undefined);
      return;
    }
    if (frame.rsv !== 0) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, "reserved bits set");
    if (frame.opcode < 8) this.#dataReceived += frame.payload.length;
    switch (frame.opcode) {
      case OP_TEXT:
      case OP_BINARY:
      case OP_CONTINUATION: {
        const message = this.#messages.receive(frame, this.#echo);
        if (message) this.#events.push(message, this.#messages.bytes);
        return;
      }
      case OP_CLOSE:
        this.#receiveClose(frame.payload);
        frame.release?.(); // decoded (a close frame that trickled in)
        return;
      case OP_PING:
        this.#events.push({ type: "ping", data: frame.payload }, frame.payload.length);
        if (this.#autoReply && this.#close.sent === undefined) {
          this.#queue(encodeFrame(OP_PONG, frame.payload, { mask: this.#mask, slab: true }));
        }
        return;
      case OP_PONG:
        this.#events.push({ type: "pong", data: frame.payload }, frame.payload.length);
        return;
      default:
        throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `unknown opcode ${frame.opcode}`);
    }
  }

  #receiveClose(payload: Uint8Array): void {
    const received = decodeClosePayload(payload);
    const close = this.#close;
    close.received = received;
    this.#events.push(
      { type: "close", code: received.code, reason: received.reason },
      payload.length,
    );
    if (this.#autoReply && close.sent === undefined) {
      // The reply echoes the code (RFC 6455 section 5.5.1), without the reason.
      const code = received.code === CloseCode.NO_STATUS ? undefined : received.code;
      this.#sendCloseFrame(encodeClosePayload(code), received.code, "");
    }
    close.phase = phaseOf(close);
  }
}
