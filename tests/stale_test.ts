// The specification of client/stale.ts: StaleWatch, the watchdog behind
// staleAfter (end to end in tests/recovery_test.ts), and StaleFeedError.

import assert from "node:assert/strict";
import { StaleFeedError, StaleWatch } from "../client/stale.ts";

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("StaleWatch() calls onStale once after ms without a message", async () => {
  const start = performance.now();
  const stale = await new Promise<number>((resolve) => {
    new StaleWatch(30, () => false, () => resolve(performance.now()));
  });
  assert.ok(stale - start >= 30, `stale after ${(stale - start).toFixed(1)} ms`);
});

Deno.test("StaleWatch.touch() starts the silence again", async () => {
  const start = performance.now();
  let watch: StaleWatch | undefined;
  const touching = setInterval(() => watch?.touch(), 10);
  const stopTouching = setTimeout(() => clearInterval(touching), 60);
  const stale = await new Promise<number>((resolve) => {
    watch = new StaleWatch(30, () => false, () => resolve(performance.now()));
  });
  clearTimeout(stopTouching);
  clearInterval(touching);
  assert.ok(stale - start >= 60, `stale after ${(stale - start).toFixed(1)} ms, while touched`);
});

Deno.test("StaleWatch() excuses silence while reading is paused", async () => {
  let paused = true;
  let fired = false;
  const watch = new StaleWatch(20, () => paused, () => (fired = true));
  await tick(50);
  assert.equal(fired, false, "no message can arrive while paused");
  paused = false;
  for (let i = 0; i < 50 && !fired; i++) await tick(10); // it fires within 2 x 20 ms
  watch.stop();
  assert.equal(fired, true, "stale once reading could go on and nothing came");
});

Deno.test("StaleWatch.stop() keeps it from ever firing and leaves no timer", async () => {
  let fired = false;
  const watch = new StaleWatch(10, () => false, () => (fired = true));
  watch.stop();
  await tick(30);
  assert.equal(fired, false);
});

Deno.test("StaleFeedError() names the bound and keeps it as staleAfter", () => {
  const error = new StaleFeedError(150);
  assert.equal(error.name, "StaleFeedError");
  assert.equal(error.staleAfter, 150);
  assert.equal(
    error.message,
    "No application message arrived for 150 ms (staleAfter): the feed went quiet",
  );
});
