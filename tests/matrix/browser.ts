// Starts headless Chromium as the JSON-lines service of browser.mjs, after
// installing what is missing (Chromium with apt-get, Node 22 and
// playwright-core from npm into .cache/runtimes/). Its stdin and stdout are
// the service's; install messages go to stderr.
//
//   deno run -A tests/matrix/browser.ts
//
// Tests start it through browser_client.ts.

import { CHROMIUM_FLAGS, ensureChromium, ensureNpm, NODE22, PLAYWRIGHT, root } from "./runtimes.ts";

try {
  const chromium = await ensureChromium();
  const node = await ensureNpm(NODE22);
  const playwright = (await ensureNpm(PLAYWRIGHT)).replace(/\/package\.json$/, "");
  const child = new Deno.Command(node, {
    args: [
      `${root()}tests/matrix/browser.mjs`,
      playwright,
      chromium,
      JSON.stringify(CHROMIUM_FLAGS),
    ],
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  Deno.exit((await child.status).code);
} catch (error) {
  console.error(`error: ${(error as Error).message}`);
  Deno.exit(1);
}
