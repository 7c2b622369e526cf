// `deno bench` microbenchmarks: what the timing primitives and the backoff cost over the platform.
import { backoffDelay, failAfter, sleep } from "../mod.ts";

Deno.bench("Promise.resolve (baseline)", { group: "failAfter", baseline: true }, async () => {
  await Promise.resolve(1);
});
Deno.bench("failAfter(1000, resolved)", { group: "failAfter" }, async () => {
  await failAfter(1000, () => Promise.resolve(1));
});

Deno.bench("setTimeout 0 (baseline)", { group: "sleep", baseline: true }, async () => {
  await new Promise((resolve) => setTimeout(resolve, 0));
});
Deno.bench("sleep(0)", { group: "sleep" }, async () => {
  await sleep(0);
});
const controller = new AbortController();
Deno.bench("sleep(0, { signal })", { group: "sleep" }, async () => {
  await sleep(0, { signal: controller.signal });
});

Deno.bench("backoffDelay(5)", () => {
  backoffDelay(5);
});
