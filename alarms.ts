/**
 * Layer 4 (heartbeat): one timer for the deadlines of every heartbeat in the
 * process.
 *
 * A heartbeat waits on two deadlines a beat (the reply's timeout, then the
 * interval). With a runtime timer for each, a thousand connections beating
 * every second create and cancel two thousand timers a second, and each
 * waiting one costs about 740 bytes (Deno 2.9's timer objects). Here the
 * deadlines are plain objects in one binary heap, ordered by time, and one
 * runtime timer is armed for the earliest. Deadlines are rounded up to a
 * {@linkcode ALARM_GRID}-millisecond grid, so the beats of many connections
 * that fall due together are handled in one timer callback.
 *
 * An alarm never fires early; it may fire up to {@linkcode ALARM_GRID} ms
 * late (plus the runtime's own timer lateness). When no alarm is pending, no
 * runtime timer is either, so a process whose connections have all closed can
 * exit, and `deno test`'s op sanitizer sees nothing left behind.
 *
 * This module does not touch `Deno.*`: it runs on any runtime with
 * `setTimeout` and `performance.now()`.
 *
 * @module
 */

/**
 * Milliseconds of the grid deadlines are rounded up to: small beside any
 * useful heartbeat interval or timeout, large enough that connections
 * beating at the same rate share timer callbacks.
 */
export const ALARM_GRID = 4;

/**
 * A deadline on the shared clock, made by {@linkcode setAlarm}.
 *
 * @example
 * ```ts
 * import { setAlarm } from "./alarms.ts";
 * import assert from "node:assert/strict";
 *
 * const fired = await new Promise<boolean>((resolve) => {
 *   const never = setAlarm(5, () => resolve(false));
 *   never.cancel();
 *   setAlarm(10, () => resolve(true));
 * });
 * assert.ok(fired);
 * ```
 */
export class Alarm {
  /** When it fires, in `performance.now()` milliseconds, on the grid. */
  readonly at: number;
  /** Its position in the heap, or -1 once fired or cancelled. */
  index = -1;
  #fire: () => void;

  /**
   * Use {@linkcode setAlarm}.
   *
   * @param at When it fires, on the grid.
   * @param fire What it calls.
   */
  constructor(at: number, fire: () => void) {
    this.at = at;
    this.#fire = fire;
  }

  /** Whether it is still waiting: not fired and not cancelled. */
  get pending(): boolean {
    return this.index >= 0;
  }

  /** Cancels it, if it is still waiting. */
  cancel(): void {
    if (this.index < 0) return;
    remove(this.index);
    if (heap.length === 0) disarm();
  }

  /** Calls the callback; called by the clock once, when it is due. */
  fire(): void {
    this.#fire();
  }
}

/** The pending alarms, a binary min-heap on `at`. */
const heap: Alarm[] = [];
let timer: ReturnType<typeof setTimeout> | undefined;
let timerAt = Infinity;

/**
 * Calls `fire` once, `ms` milliseconds from now (rounded up to the grid),
 * unless the returned alarm is cancelled first. `fire` should not throw: an
 * exception is reported as uncaught, after the other due alarms have fired.
 *
 * @param ms Milliseconds from now, at least 0 (finite).
 * @param fire What to call when it is due.
 * @returns The alarm, to cancel it.
 */
export function setAlarm(ms: number, fire: () => void): Alarm {
  const at = Math.ceil((performance.now() + ms) / ALARM_GRID) * ALARM_GRID;
  const alarm = new Alarm(at, fire);
  alarm.index = heap.length;
  heap.push(alarm);
  up(alarm.index);
  if (at < timerAt) arm(at);
  return alarm;
}

/** How many alarms are pending, for tests. */
export function pendingAlarms(): number {
  return heap.length;
}

function arm(at: number): void {
  clearTimeout(timer);
  timerAt = at;
  timer = setTimeout(ring, Math.max(0, Math.ceil(at - performance.now())));
}

function disarm(): void {
  clearTimeout(timer);
  timer = undefined;
  timerAt = Infinity;
}

/** The timer callback: fires every due alarm, then arms for the next. */
function ring(): void {
  timer = undefined;
  timerAt = Infinity;
  const now = performance.now();
  let thrown: { error: unknown } | undefined;
  while (heap.length > 0 && heap[0]!.at <= now) {
    const alarm = heap[0]!;
    remove(0);
    try {
      alarm.fire();
    } catch (error) {
      thrown ??= { error };
    }
  }
  if (heap.length > 0) arm(heap[0]!.at);
  if (thrown) throw thrown.error;
}

/** Removes the alarm at heap position `i`. */
function remove(i: number): void {
  const alarm = heap[i]!;
  alarm.index = -1;
  const last = heap.pop()!;
  if (last === alarm) return;
  heap[i] = last;
  last.index = i;
  up(i);
  down(last.index);
}

function up(i: number): void {
  const alarm = heap[i]!;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]!.at <= alarm.at) break;
    heap[i] = heap[parent]!;
    heap[i]!.index = i;
    i = parent;
  }
  heap[i] = alarm;
  alarm.index = i;
}

function down(i: number): void {
  const alarm = heap[i]!;
  const n = heap.length;
  while (true) {
    const left = 2 * i + 1;
    if (left >= n) break;
    const right = left + 1;
    const child = right < n && heap[right]!.at < heap[left]!.at ? right : left;
    if (heap[child]!.at >= alarm.at) break;
    heap[i] = heap[child]!;
    heap[i]!.index = i;
    i = child;
  }
  heap[i] = alarm;
  alarm.index = i;
}
