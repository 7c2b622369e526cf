/**
 * The transport layer: {@linkcode TappedTransport}, a transport wrapped to
 * answer the server's own application pings (`answer`) and to trace frames
 * (`trace`), both in the receive path, before the client's queue: an
 * answered message is replied to as soon as it is read from the socket,
 * whatever the application is doing, and never reaches the application.
 *
 * ## `answer`, in order
 *
 * Each received message goes through `answer` in the order it arrived. A
 * reply (a string or bytes) is sent at once and the message is dropped;
 * `undefined` delivers the message. An `answer` that returns a promise (say,
 * to inflate a gzip message with `DecompressionStream`) holds the messages
 * after it until it settles, so replies and deliveries keep the order of
 * arrival. A throw or a rejection delivers the message, as if unanswered:
 * nothing is lost because of a bug in `answer`.
 *
 * @module
 */

import { closeEvent, emit, frameEvent, type TraceListener } from "./trace.ts";
import type {
  ClosingStart,
  HandshakeResponse,
  Transport,
  TransportEnd,
  TransportHandler,
} from "./transport.ts";

/**
 * Answers a server's own application ping: the reply to send, or
 * `undefined` to deliver the message to the application. May be async.
 */
export type AnswerFunction = (
  message: string | Uint8Array,
) => string | Uint8Array | undefined | Promise<string | Uint8Array | undefined>;

/** What {@linkcode TappedTransport} does on the way. */
export interface TapOptions {
  /** Answers the server's application pings. */
  answer?: AnswerFunction | undefined;
  /** Told of each frame. */
  trace?: TraceListener | undefined;
}

/** A transport wrapped to answer and trace: see the module doc. */
export class TappedTransport implements Transport {
  #inner: Transport;
  #answer: AnswerFunction | undefined;
  #trace: TraceListener | undefined;
  #handler: TransportHandler | undefined;
  /** Messages waiting for an async answer ahead of them. */
  #held: (string | Uint8Array)[] = [];
  #busy = false;
  #end: TransportEnd | undefined;

  /**
   * Wraps `inner`.
   *
   * @param inner The transport.
   * @param options `answer` and `trace`.
   */
  constructor(inner: Transport, options: TapOptions) {
    this.#inner = inner;
    this.#answer = options.answer;
    this.#trace = options.trace;
  }

  get url(): string {
    return this.#inner.url;
  }
  get opened(): Promise<void> {
    return this.#inner.opened;
  }
  get protocol(): string {
    return this.#inner.protocol;
  }
  get extensions(): string {
    return this.#inner.extensions;
  }
  get bufferedAmount(): number {
    return this.#inner.bufferedAmount;
  }
  get canPing(): boolean {
    return this.#inner.canPing;
  }
  get canPause(): boolean {
    return this.#inner.canPause;
  }
  get bytesSent(): number | undefined {
    return this.#inner.bytesSent;
  }
  get bytesReceived(): number | undefined {
    return this.#inner.bytesReceived;
  }
  get reads(): number | undefined {
    return this.#inner.reads;
  }
  get response(): HandshakeResponse | undefined {
    return this.#inner.response;
  }

  attach(handler: TransportHandler): void {
    this.#handler = handler;
    const trace = this.#trace;
    this.#inner.attach({
      onMessage: (data, bytes) => {
        emit(trace, frameEvent("receive", typeof data === "string" ? "text" : "binary", data));
        if (this.#answer === undefined) handler.onMessage(data, bytes);
        else if (this.#busy) this.#held.push(data);
        else this.#take(data);
      },
      onPong: (data) => {
        emit(trace, frameEvent("receive", "pong", data));
        handler.onPong(data);
      },
      onPing: (data) => {
        emit(trace, frameEvent("receive", "ping", data));
        emit(trace, frameEvent("send", "pong", data));
        handler.onPing?.(data);
      },
      onClosing: (start: ClosingStart) => {
        if (start.by === "peer") emit(trace, closeEvent("receive", start.code, start.reason));
        handler.onClosing?.(start);
      },
      onClosed: (end: TransportEnd) => {
        if (end.wasClean && end.firstClose === "local") {
          emit(trace, closeEvent("receive", end.code, end.reason)); // the peer's answer
        }
        const why = end.error ? `: ${end.error.message}` : "";
        emit(trace, {
          step: "closed",
          detail: `${end.code}${end.reason ? ` ${end.reason}` : ""} ${
            end.wasClean ? "clean" : "not clean"
          }${why}`,
        });
        // Messages held behind an async answer are delivered first.
        if (this.#busy) this.#end = end;
        else handler.onClosed(end);
      },
      ...(handler.onDrain ? { onDrain: () => handler.onDrain!() } : {}),
    });
  }

  /** Runs `answer` on one message: replies, delivers, or waits for its promise. */
  #take(data: string | Uint8Array): void {
    let result: ReturnType<AnswerFunction>;
    try {
      result = this.#answer!(data);
    } catch {
      this.#handler!.onMessage(data);
      return;
    }
    if (result instanceof Promise) {
      this.#busy = true;
      result.then(
        (reply) => this.#settle(data, reply),
        () => this.#handler!.onMessage(data),
      ).finally(() => this.#next());
      return;
    }
    this.#settle(data, result);
  }

  #settle(data: string | Uint8Array, reply: string | Uint8Array | undefined): void {
    if (reply === undefined) {
      this.#handler!.onMessage(data);
      return;
    }
    try {
      this.send(reply);
    } catch { /* closing: the server will not need it */ }
  }

  /** After an async answer settled: the held messages, in order, then a held end. */
  #next(): void {
    this.#busy = false;
    while (this.#held.length > 0 && !this.#busy) this.#take(this.#held.shift()!);
    if (!this.#busy && this.#end !== undefined) {
      const end = this.#end;
      this.#end = undefined;
      this.#handler!.onClosed(end);
    }
  }

  send(data: string | Uint8Array): void {
    this.#inner.send(data);
    emit(this.#trace, frameEvent("send", typeof data === "string" ? "text" : "binary", data));
  }

  ping(payload: Uint8Array): void {
    this.#inner.ping(payload);
    emit(this.#trace, frameEvent("send", "ping", payload));
  }

  close(code: number, reason: string): void {
    this.#inner.close(code, reason);
    emit(this.#trace, closeEvent("send", code, reason));
  }

  abort(reason: Error, code?: number): void {
    this.#inner.abort(reason, code);
  }

  pause(): void {
    this.#inner.pause();
  }

  resume(): void {
    this.#inner.resume();
  }
}
