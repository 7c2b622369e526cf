// A headless Chromium for tests: spawns `deno run -A tests/matrix/browser.ts`
// (so the test itself needs only --allow-run=deno) and speaks its JSON-lines
// protocol. The first start installs Chromium and playwright-core if they
// are missing, which may take a minute or two.

const BROWSER_TS = new URL("./browser.ts", import.meta.url).pathname;

/** A page in headless Chromium. */
export interface Browser extends AsyncDisposable {
  /** Chromium's version, e.g. `156.0.8078.79`. */
  readonly version: string;
  /** Navigates the page and waits for `load`. */
  goto(url: string): Promise<void>;
  /** Evaluates a JavaScript expression in the page and resolves with its (awaited) JSON value. */
  evaluate<T = unknown>(expression: string): Promise<T>;
  /** Closes Chromium and waits for the helper processes to end. */
  close(): Promise<void>;
}

interface Answer {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** Starts Chromium; rejects with the helper's exit code and stderr if it cannot. */
export async function openBrowser(): Promise<Browser> {
  const child = new Deno.Command("deno", {
    args: ["run", "-A", BROWSER_TS],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const waiting = new Map<number, PromiseWithResolvers<unknown>>();
  let buffered = "";
  let nextId = 1;
  let ended: Error | undefined;
  const first = Promise.withResolvers<unknown>();
  waiting.set(0, first);

  const reading = (async () => {
    try {
      while (true) {
        const { value, done } = await lines.read();
        if (done) break;
        buffered += value;
        let newline;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const answer = JSON.parse(buffered.slice(0, newline)) as Answer;
          buffered = buffered.slice(newline + 1);
          const pending = waiting.get(answer.id);
          waiting.delete(answer.id);
          if (answer.ok) pending?.resolve(answer.value);
          else pending?.reject(new Error(`in Chromium: ${answer.error}`));
        }
      }
    } finally {
      const { code } = await child.status;
      ended = new Error(`the Chromium helper exited with code ${code}`);
      for (const pending of waiting.values()) pending.reject(ended);
      waiting.clear();
    }
  })();

  const send = (command: Record<string, unknown>): Promise<unknown> => {
    if (ended) return Promise.reject(ended);
    const id = nextId++;
    const pending = Promise.withResolvers<unknown>();
    waiting.set(id, pending);
    writer.write(new TextEncoder().encode(JSON.stringify({ id, ...command }) + "\n"))
      .catch(() => {});
    return pending.promise;
  };

  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      if (!ended) await send({ op: "close" }).catch(() => {});
      await writer.close().catch(() => {});
      await reading;
    })();

  let version: string;
  try {
    version = ((await first.promise) as { version: string }).version;
  } catch (error) {
    await close();
    throw error;
  }
  return {
    version,
    goto: async (url) => void (await send({ op: "goto", url })),
    evaluate: <T>(expression: string) => send({ op: "eval", expression }) as Promise<T>,
    close,
    [Symbol.asyncDispose]: close,
  };
}
