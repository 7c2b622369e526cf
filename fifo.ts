/**
 * Layer 1 (protocol, sans-I/O), a helper: {@linkcode Fifo}, a first-in
 * first-out queue that keeps its array between batches. The protocol's
 * queues (frames read, events, frames to send) fill and empty once per read
 * or write; a new array for each batch was a fifth of what a heartbeat's beat
 * allocated, for thousands of connections a second.
 *
 * @module
 */

/** Slots kept when the queue empties; an array grown past this by a burst is let go. */
const KEEP_SLOTS = 16;

/**
 * A first-in first-out queue whose array is reused: emptied, it starts again
 * at the front of the same array (unless a burst grew it past 16 slots).
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
  #items: (T | undefined)[] = [];
  #head = 0;
  #tail = 0;

  /** How many items wait. */
  get size(): number {
    return this.#tail - this.#head;
  }

  /**
   * Adds an item at the back.
   *
   * @param item The item.
   */
  push(item: T): void {
    this.#items[this.#tail++] = item;
  }

  /**
   * Takes the item at the front.
   *
   * @returns The item, or `undefined` when the queue is empty.
   */
  shift(): T | undefined {
    if (this.#head === this.#tail) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined; // not kept alive by the queue
    if (this.#head === this.#tail) this.#reset();
    else if (this.#head > KEEP_SLOTS && this.#head * 2 > this.#tail) {
      // Never empty for long (a steady producer): drop the taken slots in front.
      this.#items = this.#items.slice(this.#head, this.#tail);
      this.#tail -= this.#head;
      this.#head = 0;
    }
    return item;
  }

  /**
   * Takes every item, in order, as an array of their own.
   *
   * @returns The items, oldest first.
   */
  takeAll(): T[] {
    const items = this.#items.slice(this.#head, this.#tail) as T[];
    this.#items.fill(undefined, this.#head, this.#tail);
    this.#reset();
    return items;
  }

  #reset(): void {
    this.#head = this.#tail = 0;
    if (this.#items.length > KEEP_SLOTS) this.#items = [];
  }
}
