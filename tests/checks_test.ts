// The small checkers of util/checks.ts: a wrong type is a TypeError, a number
// out of range a RangeError, and the message names the option and ends with
// the value as given.

import assert from "node:assert/strict";
import {
  checkBoolean,
  checkCount,
  checkDelay,
  checkFunction,
  checkNumber,
  checkOptions,
  checkSignal,
  checkTokens,
  MAX_DELAY,
} from "../util/checks.ts";

Deno.test("checkDelay() takes 0 to 2^31-1 ms, and Infinity unless refused", async (t) => {
  await t.step("in range: the value back", () => {
    for (const ms of [0, 1.5, MAX_DELAY, Infinity]) assert.equal(checkDelay("d", ms), ms);
    assert.equal(checkDelay("d", 1, { positive: true, infinite: false }), 1);
  });
  await t.step("not a number, NaN included: TypeError", () => {
    for (const value of ["10", NaN, undefined, null]) {
      assert.throws(() => checkDelay("closeTimeout", value), {
        name: "TypeError",
        message: `Cannot use closeTimeout as it is not a number of milliseconds: current value is ${
          String(value)
        }`,
      });
    }
  });
  await t.step("out of range: RangeError naming the range", () => {
    assert.throws(() => checkDelay("connectTimeout", -1), {
      name: "RangeError",
      message: "Cannot use connectTimeout as it is not a number of milliseconds from 0 to " +
        "2147483647 or Infinity: current value is -1",
    });
    assert.throws(() => checkDelay("idleTimeout", MAX_DELAY + 1, { infinite: false }), {
      name: "RangeError",
      message: "Cannot use idleTimeout as it is not a number of milliseconds from 0 to " +
        "2147483647: current value is 2147483648",
    });
    assert.throws(() => checkDelay("stallFor", 0, { positive: true, infinite: false }), {
      name: "RangeError",
      message: "Cannot use stallFor as it is not a number of milliseconds above 0 to " +
        "2147483647: current value is 0",
    });
    assert.throws(() => checkDelay("x", Infinity, { infinite: false }), RangeError);
    assert.throws(() => checkDelay("x", -Infinity), RangeError);
  });
});

Deno.test("checkCount() takes whole numbers from min to max, and Infinity unless refused", async (t) => {
  await t.step("in range: the value back", () => {
    assert.equal(checkCount("n", 0), 0);
    assert.equal(checkCount("n", Infinity, { min: 1 }), Infinity);
    assert.equal(checkCount("port", 65535, { max: 65535, infinite: false }), 65535);
  });
  await t.step("not a number: TypeError", () => {
    for (const value of ["5", NaN, undefined]) {
      assert.throws(() => checkCount("maxQueuedMessages", value, { min: 1 }), {
        name: "TypeError",
        message: "Cannot use maxQueuedMessages as it is not a whole number of at least 1 " +
          `or Infinity: current value is ${String(value)}`,
      });
    }
  });
  await t.step("not whole, or out of range: RangeError", () => {
    assert.throws(() => checkCount("maxMessageSize", 0, { min: 1 }), {
      name: "RangeError",
      message: "Cannot use maxMessageSize as it is not a whole number of at least 1 " +
        "or Infinity: current value is 0",
    });
    assert.throws(() => checkCount("maxRetries", 1.5), {
      name: "RangeError",
      message: "Cannot use maxRetries as it is not a whole number of at least 0 " +
        "or Infinity: current value is 1.5",
    });
    assert.throws(() => checkCount("fragment", 1001, { min: 1, max: 1000, infinite: false }), {
      name: "RangeError",
      message: "Cannot use fragment as it is not a whole number from 1 to 1000: " +
        "current value is 1001",
    });
    assert.throws(() => checkCount("port", Infinity, { infinite: false }), RangeError);
  });
});

Deno.test("checkNumber() takes a finite number from min to max", () => {
  assert.equal(checkNumber("jitter", 0.25, { min: 0, max: 1 }), 0.25);
  assert.throws(() => checkNumber("jitter", 2, { min: 0, max: 1 }), {
    name: "RangeError",
    message: "Cannot use jitter as it is not a number from 0 to 1: current value is 2",
  });
  assert.throws(() => checkNumber("factor", Infinity, { min: 1 }), {
    name: "RangeError",
    message: "Cannot use factor as it is not a number of at least 1: current value is Infinity",
  });
  assert.throws(() => checkNumber("factor", "2", { min: 1 }), {
    name: "TypeError",
    message: "Cannot use factor as it is not a number of at least 1: current value is 2",
  });
});

Deno.test("checkBoolean(), checkFunction(), checkSignal(), checkOptions() refuse the wrong type", () => {
  assert.equal(checkBoolean("quietEnd", false), false);
  assert.throws(() => checkBoolean("quietEnd", "yes"), {
    name: "TypeError",
    message: "Cannot use quietEnd as it is not a boolean: current value is yes",
  });
  const hook = () => {};
  assert.equal(checkFunction("onOpen", hook), hook);
  assert.equal(checkFunction("onOpen", undefined), undefined);
  assert.throws(() => checkFunction("onOpen", 1 as unknown as () => void), {
    name: "TypeError",
    message: "Cannot use onOpen as it is not a function: current value is 1",
  });
  const { signal } = new AbortController();
  assert.equal(checkSignal("signal", signal), signal);
  assert.equal(checkSignal("signal", undefined), undefined);
  assert.throws(() => checkSignal("signal", {}), {
    name: "TypeError",
    message: "Cannot use signal as it is not an AbortSignal: current value is [object Object]",
  });
  assert.throws(() => checkOptions(null as unknown as object), {
    name: "TypeError",
    message: "Cannot use options as they are not an object: current value is null",
  });
});

Deno.test("checkTokens() takes a token or distinct tokens, and refuses the rest with a TypeError", () => {
  assert.deepEqual(checkTokens("protocols", undefined), []);
  assert.deepEqual(checkTokens("protocols", "chat"), ["chat"]);
  assert.deepEqual(checkTokens("protocols", ["v1.chat", "v2.chat"]), ["v1.chat", "v2.chat"]);
  const cases: [unknown, string][] = [
    [["a b"], 'Cannot use protocols as one is not a token: current value is "a b"'],
    [[""], 'Cannot use protocols as one is not a token: current value is ""'],
    [[1], "Cannot use protocols as one is not a token: current value is 1"],
    [["a", "a"], 'Cannot use protocols as one is repeated: current value is "a"'],
    [
      42,
      "Cannot use protocols as it is not a string or an array of strings: current value is 42",
    ],
  ];
  for (const [value, message] of cases) {
    assert.throws(() => checkTokens("protocols", value), { name: "TypeError", message });
  }
});
