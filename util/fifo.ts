/**
 * A helper every layer may use: {@linkcode Fifo}, a first-in
 * first-out queue for the protocol's queues (frames read, events, frames to
 * send), which fill and empty once per read or write, mostly with a single
 * item. A new array for each batch was a fifth of what a heartbeat's beat
 * allocated, for thousands of connections a second; an array kept between
 * batches would stay with every connection.
 *
 * @module
 */

/**
 * A first-in first-out queue that makes no array for a single item: the
 * oldest item is held in a field of its own, and only the ones after it go
 * to an array, dropped whenever it empties. A heartbeat's ping, pong and
 * event then pass through without an allocation and leave nothing behind,
 * while a burst is queued as usual.
 *
 * @example
 * ```ts
 * import { Fifo } from "./fifo.ts";
 * import assert from "node:assert/strict";
 *
 * const queue = new Fifo<string>();
 * queue.push("a");
 * queue.push("b");
 * assert.equal(queue.size, 2);
 * assert.equal(queue.shift(), "a");
 * assert.deepEqual(queue.takeAll(), ["b"]);
 * assert.equal(queue.shift(), undefined);
 * ```
 */
export class Fifo<T> {
  #size = 0;
  #front: T | undefined; // the oldest item, when there is one
  #rest: (T | undefined)[] = []; // the items after it, from #restHead
  #restHead = 0;

  /** How many items wait. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds an item at the back.
   *
   * @param item The item.
   */
  push(item: T): void {
    if (this.#size++ === 0) this.#front = item;
    else this.#rest.push(item);
  }

  /**
   * Takes the item at the front.
   *
   * @returns The item, or `undefined` when the queue is empty.
   */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#front;
    if (--this.#size === 0) {
      this.#front = undefined;
      return item;
    }
    const rest = this.#rest;
    this.#front = rest[this.#restHead];
    rest[this.#restHead++] = undefined; // not kept alive by the queue
    if (this.#restHead === rest.length) {
      this.#rest = []; // a burst's array is not kept
      this.#restHead = 0;
    } else if (this.#restHead > 1024 && this.#restHead * 2 > rest.length) {
      // Never empty for long (a steady producer): drop the taken slots in front.
      this.#rest = rest.slice(this.#restHead);
      this.#restHead = 0;
    }
    return item;
  }

  /**
   * Takes every item, in order, as an array of their own.
   *
   * @returns The items, oldest first.
   */
  takeAll(): T[] {
    const items: T[] = [];
    while (this.#size > 0) items.push(this.shift()!);
    return items;
  }
}
