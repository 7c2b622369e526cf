// Headless Chromium driven by playwright-core, as a JSON-lines service on
// stdin/stdout: one command per line, one answer per line, in order.
//
//   {"id":1,"op":"goto","url":"http://127.0.0.1:8000/"}  -> {"id":1,"ok":true}
//   {"id":2,"op":"eval","expression":"document.title"}   -> {"id":2,"ok":true,"value":"..."}
//   {"id":3,"op":"close"}                                -> {"id":3,"ok":true}, then exit
//
// `eval` awaits a promise and answers with its JSON value. Started by
// browser.ts (which installs what is missing) with:
//   node browser.mjs <playwright-core dir> <chromium> <flags as JSON>
// The page's uncaught errors go to stderr, prefixed `page:`, and its console
// too with WSBEAT_BROWSER_LOG=1.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

const [playwrightDir, executablePath, flags] = process.argv.slice(2);
const { chromium } = await import(pathToFileURL(join(playwrightDir, "index.mjs")).href);

// A fresh, empty profile for every launch.
const profile = await mkdtemp(join(tmpdir(), "wsbeat-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: JSON.parse(flags),
});
const page = context.pages()[0] ?? await context.newPage();
// Failed connections are the matrix's business and fill the console: its
// lines are shown only with WSBEAT_BROWSER_LOG=1. Uncaught errors always are.
if (process.env.WSBEAT_BROWSER_LOG) {
  page.on("console", (message) => console.error(`page: ${message.type()}: ${message.text()}`));
}
page.on("pageerror", (error) => console.error(`page: uncaught: ${error.message}`));
const browserVersion = context.browser()?.version() ?? "";

async function shutdown() {
  await context.close().catch(() => {});
  await rm(profile, { recursive: true, force: true });
}

function answer(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

answer({ id: 0, ok: true, value: { version: browserVersion } });
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "") continue;
  const { id, op, url, expression } = JSON.parse(line);
  try {
    if (op === "goto") {
      await page.goto(url, { waitUntil: "load" });
      answer({ id, ok: true });
    } else if (op === "eval") {
      const value = await page.evaluate(`(async () => (${expression}))()`);
      answer({ id, ok: true, value });
    } else if (op === "close") {
      await shutdown();
      answer({ id, ok: true });
      process.exit(0);
    } else {
      answer({ id, ok: false, error: `unknown op ${op}` });
    }
  } catch (error) {
    answer({ id, ok: false, error: String(error?.stack ?? error) });
  }
}
// stdin closed without "close": the parent went away.
await shutdown();
