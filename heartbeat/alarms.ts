/**
 * The heartbeat layer: one timer for the deadlines of every heartbeat in the
 * process.
 *
 * A heartbeat waits on two deadlines a beat (the reply's timeout, then the
 * interval). With a runtime timer for each, a thousand connections beating
 * every second create and cancel two thousand timers a second, and each
 * waiting one costs about 740 bytes (Deno 2.9's timer objects). Here the
 * deadlines are plain objects, rounded up to a
 * {@linkcode ALARM_GRID}-millisecond grid and kept in one list per grid time,
 * and one runtime timer is armed for the earliest time: the beats of many
 * connections that fall due together are handled in one timer callback.
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
  /** Its position in its slot's list, or -1 once fired or cancelled. */
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
    const slot = slots.get(this.at);
    // Not in the map while its slot is firing: then marking it is enough.
    if (slot !== undefined && slot[this.index] === this) {
      const last = slot.pop()!;
      if (last !== this) {
        slot[this.index] = last;
        last.index = this.index;
      }
      if (slot.length === 0) slots.delete(this.at); // its time stays in `times`, skipped
    }
    this.index = -1;
    if (--pending === 0) disarm();
  }

  /** Fires it: called by the clock once, when it is due. */
  ring(): void {
    this.index = -1;
    pending--;
    this.#fire();
  }
}

// The pending alarms by grid time: a list per time (a slot), and a binary min-heap of the
// slots' times. Setting and cancelling an alarm touch its slot's list and at most one other
// alarm, never the heap: with thousands of connections beating once a second, each beat
// would otherwise walk about a dozen cold heap entries three times (a heap of alarms was half
// the clock's cost). The heap changes once per slot, not per alarm.
const slots = new Map<number, Alarm[]>();
/** Times of slots, a min-heap; a slot emptied by cancels keeps its time here until due. */
const times: number[] = [];
let pending = 0;
let timer: ReturnType<typeof setTimeout> | undefined;
let timerAt = Infinity;

/**
 * Calls `fire` once, `ms` milliseconds from now (rounded up to the grid),
 * unless the returned alarm is cancelled first. `fire` should not throw: an
 * exception is reported as uncaught, after the other due alarms have fired.
 * Alarms due at the same grid time fire in the order they were set.
 *
 * @param ms Milliseconds from now, at least 0 (finite).
 * @param fire What to call when it is due.
 * @returns The alarm, to cancel it.
 */
export function setAlarm(ms: number, fire: () => void): Alarm {
  const at = Math.ceil((performance.now() + ms) / ALARM_GRID) * ALARM_GRID;
  const alarm = new Alarm(at, fire);
  let slot = slots.get(at);
  if (slot === undefined) {
    slot = [];
    slots.set(at, slot);
    pushTime(at);
  }
  alarm.index = slot.length;
  slot.push(alarm);
  pending++;
  if (at < timerAt) arm(at);
  return alarm;
}

/** How many alarms are pending, for tests. */
export function pendingAlarms(): number {
  return pending;
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

/** The runtime timer's callback: fires every slot that is due, then re-arms. */
function ring(): void {
  timer = undefined;
  timerAt = Infinity;
  const now = performance.now();
  let thrown: { error: unknown } | undefined;
  while (times.length > 0 && times[0]! <= now) {
    const at = popTime();
    const slot = slots.get(at);
    if (slot === undefined) continue; // emptied by cancels, or a duplicate time
    slots.delete(at); // alarms set meanwhile for this time make a new slot, fired below
    for (const alarm of slot) {
      if (alarm.index < 0) continue; // cancelled by an alarm fired before it
      try {
        alarm.ring();
      } catch (error) {
        thrown ??= { error };
      }
    }
  }
  while (times.length > 0 && !slots.has(times[0]!)) popTime();
  if (pending > 0 && times.length > 0) arm(times[0]!);
  if (thrown) throw thrown.error;
}

function pushTime(at: number): void {
  let i = times.length;
  times.push(at);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (times[parent]! <= at) break;
    times[i] = times[parent]!;
    i = parent;
  }
  times[i] = at;
}

function popTime(): number {
  const top = times[0]!;
  const last = times.pop()!;
  const n = times.length;
  if (n > 0) {
    let i = 0;
    while (true) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && times[right]! < times[left]! ? right : left;
      if (times[child]! >= last) break;
      times[i] = times[child]!;
      i = child;
    }
    times[i] = last;
  }
  return top;
}
