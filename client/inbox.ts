/**
 * The client layer: the queue of received messages waiting for the
 * application, bounded in messages and in bytes. When it reaches either
 * bound it calls `onFull` (the client stops reading, or on the native
 * transport gives up); when the consumer has read it down to half of both
 * bounds it calls `onRoom` (the client reads again). It also serves the
 * client's reading: {@linkcode Inbox.receive} and {@linkcode Inbox.next}
 * give the queued messages first, then wait, and once the connection ended
 * reject with its error (iteration ends quietly after a normal close). The
 * messages wait in two `Fifo`s (`util/fifo.ts`): the messages and their sizes.
 *
 * @module
 */

import { byteLength } from "../util/bytes.ts";
import { Fifo } from "../util/fifo.ts";
import type { Message } from "./options.ts";

/** A waiting reader: `receive()`, or an iterator's `next()` (done after a quiet end). */
type Waiter =
  | { iterating: false; resolve(message: Message): void; reject(error: unknown): void }
  | {
    iterating: true;
    resolve(result: IteratorResult<Message>): void;
    reject(error: unknown): void;
  };

const DONE: IteratorResult<Message> = { value: undefined, done: true };
/** The bounds and callbacks of an {@linkcode Inbox}. */
export interface InboxOptions {
  /** The most messages queued before `onFull`. */
  maxMessages: number;
  /** The most bytes queued before `onFull`. */
  maxBytes: number;
  /** The queue reached a bound. */
  onFull(): void;
  /** The queue is down to half of both bounds after `onFull`. */
  onRoom(): void;
}

/** A FIFO of received messages with waiting readers: see the module doc. */
export class Inbox {
  #options: InboxOptions;
  #queue = new Fifo<Message>();
  #sizes = new Fifo<number>(); // each queued message's size in bytes, in the same order
  #bytes = 0;
  #full = false;
  #waiters: Waiter[] = [];
  #end: unknown; // the error readers get once the connection ended and the queue is empty
  #ended = false;
  /** Whether iteration ends quietly (done) rather than rejecting, once ended. */
  #quiet = false;
  /** The pending {@linkcode Inbox.settled} wait, if any (one field: every connection has one). */
  #settling: { resolve(): void; timer: ReturnType<typeof setTimeout> } | undefined;

  /**
   * Creates an empty inbox.
   *
   * @param options Bounds and callbacks.
   */
  constructor(options: InboxOptions) {
    this.#options = options;
  }

  /** How many messages wait. */
  get length(): number {
    return this.#queue.size;
  }

  /**
   * Hands `message` to the oldest waiting reader, or queues it.
   *
   * @param message The message.
   * @param size Its size in bytes (text as UTF-8), when the caller knows it;
   *   else it is counted here if the message has to wait.
   */
  push(message: Message, size?: number): void {
    const waiter = this.#waiters.shift();
    if (waiter) {
      if (waiter.iterating) waiter.resolve({ value: message, done: false });
      else waiter.resolve(message);
      return;
    }
    const bytes = size ?? byteLength(message); // only what waits counts towards maxBytes
    this.#queue.push(message);
    this.#sizes.push(bytes);
    this.#bytes += bytes;
    const { maxMessages, maxBytes } = this.#options;
    if (!this.#full && (this.length >= maxMessages || this.#bytes >= maxBytes)) {
      this.#full = true;
      this.#options.onFull();
    }
  }

  /** Takes the oldest queued message, or `undefined`. */
  shift(): Message | undefined {
    const message = this.#queue.shift();
    if (message === undefined) return undefined;
    this.#bytes -= this.#sizes.shift()!;
    if (this.#queue.size === 0 && this.#settling) this.#settleNow();
    const { maxMessages, maxBytes } = this.#options;
    if (this.#full && this.length <= maxMessages / 2 && this.#bytes <= maxBytes / 2) {
      this.#full = false;
      this.#options.onRoom();
    }
    return message;
  }

  /**
   * For the transport's read loop, after it handed on a read's messages: a
   * promise while some of them wait, resolved as soon as the application
   * has taken them all or the event loop has turned once (a 0 ms timer),
   * whichever comes first; else undefined. A read whose data is ready
   * resolves within the same turn (Deno polls it at once), so without this
   * wait a consumer taking messages in microtasks (`for await`) falls behind
   * by whole reads until the queue reaches its bound: a queue of megabytes
   * that every minor garbage collection copies. The turn bounds the wait
   * for a consumer that is busy elsewhere, so that pongs and close frames
   * are still read.
   *
   * @returns The wait, or undefined when no message waits.
   */
  settled(): Promise<void> | undefined {
    if (this.#queue.size === 0 || this.#ended) return undefined;
    this.#settleNow(); // at most one wait: the read loop's
    return new Promise((resolve) => {
      this.#settling = { resolve, timer: setTimeout(Inbox.#turned, 0, this) };
    });
  }

  /** The timer of {@linkcode Inbox.settled}: static, so that no inbox holds a closure for it. */
  static #turned(inbox: Inbox): void {
    inbox.#settleNow();
  }

  #settleNow(): void {
    const settling = this.#settling;
    if (settling === undefined) return;
    this.#settling = undefined;
    clearTimeout(settling.timer);
    settling.resolve();
  }

  /**
   * Waits for the next message pushed (call only when the queue is empty).
   *
   * @param signal Abandons the wait, rejecting with its reason.
   * @returns The next message.
   */
  wait(signal?: AbortSignal): Promise<Message> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      if (!signal) {
        this.#waiters.push({ iterating: false, resolve, reject });
        return;
      }
      const waiter: Waiter = {
        iterating: false,
        resolve: (message) => {
          signal.removeEventListener("abort", onAbort);
          resolve(message);
        },
        reject: (error) => {
          signal.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /**
   * The next message, queued or yet to come, for `receive()`.
   *
   * @param signal Abandons the wait.
   * @returns The message; rejects with the end's error once the connection
   * ended and the queue is empty.
   */
  receive(signal?: AbortSignal): Promise<Message> {
    const message = this.shift();
    if (message !== undefined) return Promise.resolve(message);
    if (this.#ended) return Promise.reject(this.#end);
    return this.wait(signal);
  }

  /**
   * The next step of message iteration: a message, or done after a quiet
   * end; rejects with the end's error after any other. A reader that has to
   * wait gets one promise, resolved by {@linkcode Inbox.push} directly.
   *
   * @returns The iterator result.
   */
  next(): Promise<IteratorResult<Message>> {
    const message = this.shift();
    if (message !== undefined) return Promise.resolve({ value: message, done: false });
    if (this.#ended) return this.#quiet ? Promise.resolve(DONE) : Promise.reject(this.#end);
    return new Promise(this.#waitIterating);
  }

  /** The executor of {@linkcode Inbox.next}'s promise, made once rather than for each call. */
  #waitIterating = (
    resolve: (result: IteratorResult<Message>) => void,
    reject: (error: unknown) => void,
  ): void => {
    this.#waiters.push({ resolve, reject, iterating: true });
  };

  /**
   * Ends reading, when the connection has ended: waiting readers reject with
   * `error` (or, iterating after a quiet end, are done), and so do later
   * ones once the queue is empty.
   *
   * @param error What readers reject with.
   * @param quiet Whether iteration ends quietly.
   */
  end(error: unknown, quiet: boolean): void {
    this.#end = error;
    this.#ended = true;
    this.#quiet = quiet;
    this.#settleNow();
    for (const waiter of this.#waiters.splice(0)) {
      if (waiter.iterating && quiet) waiter.resolve(DONE);
      else waiter.reject(error);
    }
  }
}
