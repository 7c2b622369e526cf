// Preloaded into a server's process by a memory test (`deno run
// --v8-flags=--expose-gc --preload tests/_gc_often.ts ...`): a full garbage
// collection every 100 ms, so that the heap the server reports is close to
// what is live rather than what awaits collection.
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("tests/_gc_often.ts needs --v8-flags=--expose-gc");
Deno.unrefTimer(setInterval(gc, 100));
