// The house rules of the layout (issue 22), checked on the source itself: the
// top level holds the entry points only, imports run downward through the
// layers (type imports included) with no cycle, no module exports a mutable
// binding, and no file grows past about 500 lines.

import assert from "node:assert/strict";

/** The layers, bottom to top; a module may import its own layer or one below. */
const LAYERS: [string, (path: string) => boolean][] = [
  ["util", (p) => p.startsWith("util/")],
  ["protocol", (p) => p.startsWith("protocol/")],
  ["transport", (p) => p.startsWith("transport/")],
  ["heartbeat", (p) => p.startsWith("heartbeat/") || p === "heartbeat.ts"],
  ["client", (p) => p.startsWith("client/") || p === "client.ts"],
  ["reconnect", (p) => p.startsWith("reconnect/")],
  ["serve", (p) => p.startsWith("serve/") || p === "serve.ts"],
  ["entry", (p) => ["mod.ts", "cli.ts", "demo.ts"].includes(p) || p.startsWith("cli/")],
];
const ENTRY_POINTS = ["cli.ts", "client.ts", "demo.ts", "heartbeat.ts", "mod.ts", "serve.ts"];
const FOLDERS = [
  "cli",
  "client",
  "heartbeat",
  "protocol",
  "reconnect",
  "serve",
  "transport",
  "util",
];

function layerOf(path: string): number {
  const i = LAYERS.findIndex(([, has]) => has(path));
  assert.ok(i >= 0, `${path} belongs to no layer`);
  return i;
}

/** Every source file of the library: the entry points and the layer folders. */
function sources(): string[] {
  const files = [...ENTRY_POINTS];
  for (const folder of FOLDERS) {
    for (const entry of Deno.readDirSync(folder)) {
      if (entry.isFile && entry.name.endsWith(".ts")) files.push(`${folder}/${entry.name}`);
    }
  }
  return files.sort();
}

/** The repository files a module imports (static, dynamic and type imports; not doc examples). */
function importsOf(path: string): string[] {
  const code = Deno.readTextFileSync(path)
    .replace(/\/\*[\s\S]*?\*\//g, "") // block comments hold the JSDoc examples
    .replace(/^\s*\/\/.*$/gm, "");
  const found: string[] = [];
  const pattern = /(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+\.ts)["']/g;
  for (const match of code.matchAll(pattern)) {
    const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
    found.push(normalize(`${dir}/${match[1]}`));
  }
  return found;
}

function normalize(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "." || part === "") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return parts.join("/");
}

Deno.test("the top level holds the entry points only", () => {
  const top = [...Deno.readDirSync(".")]
    .filter((entry) => entry.isFile && entry.name.endsWith(".ts"))
    .map((entry) => entry.name)
    .sort();
  assert.deepEqual(top, ENTRY_POINTS);
});

Deno.test("imports run downward through the layers", () => {
  const upward: string[] = [];
  for (const file of sources()) {
    for (const target of importsOf(file)) {
      if (layerOf(target) > layerOf(file)) upward.push(`${file} -> ${target}`);
    }
  }
  assert.deepEqual(upward, []);
});

Deno.test("no import cycle among the library's modules", () => {
  const graph = new Map(sources().map((file) => [file, importsOf(file)]));
  const state = new Map<string, "visiting" | "done">();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === "done") return;
    if (state.get(file) === "visiting") {
      cycles.push([...path.slice(path.indexOf(file)), file].join(" -> "));
      return;
    }
    state.set(file, "visiting");
    for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
    state.set(file, "done");
  };
  for (const file of graph.keys()) visit(file, []);
  assert.deepEqual(cycles, []);
});

Deno.test("no module exports a mutable binding", () => {
  const mutable = sources().filter((file) =>
    /^export\s+(let|var)\s/m.test(Deno.readTextFileSync(file))
  );
  assert.deepEqual(mutable, []);
});

Deno.test("no source file is over 500 lines, no test file over 600", () => {
  const long: string[] = [];
  for (const file of sources()) {
    const lines = Deno.readTextFileSync(file).split("\n").length - 1;
    if (lines > 510) long.push(`${file}: ${lines}`);
  }
  for (const entry of Deno.readDirSync("tests")) {
    if (!entry.name.endsWith("_test.ts")) continue;
    const lines = Deno.readTextFileSync(`tests/${entry.name}`).split("\n").length - 1;
    if (lines > 610) long.push(`tests/${entry.name}: ${lines}`);
  }
  assert.deepEqual(long, []);
});
