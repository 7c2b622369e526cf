/**
 * One client of bench/firehose.ts, in a process of its own so that its CPU
 * time is its own: it reads a firehose (bench/_firehose_server.ts) to its
 * close frame, counting the messages and checking each one's type, length and last
 * byte or character.
 *
 * - `floor`: `Deno.connect` with the upgrade written by hand, and a read loop
 *   that walks the frame headers and touches each payload's first and last
 *   byte, making no messages: the least a JavaScript client on this runtime
 *   can spend.
 * - `raw`: the runtime's `WebSocket` with an `onmessage` handler
 *   (`binaryType` `"arraybuffer"`).
 * - `wsbeat`: the wsbeat client on its own transport, `for await`.
 * - `native`: the wsbeat client on the native transport, `for await`.
 *
 * Without options it serves bench/firehose.ts: one JSON request a line on
 * stdin (`{"url", "size", "binary", "count"}`), one JSON answer a line on
 * stdout (`{"n", "ms", "cpuUs"}` or `{"error"}`). With `--url` it runs
 * `--runs` times and prints each run, for profiling:
 *
 *     deno run --allow-net=127.0.0.1 bench/_firehose_server.ts &   # prints its URL
 *     deno run --allow-net=127.0.0.1 --cpu-prof --cpu-prof-dir=prof \
 *       bench/_firehose_client.ts wsbeat --url URL --size 1024 --count 400000 --runs 5
 *     deno run --allow-read bench/profile_top.ts prof/*.cpuprofile
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { connect, ConnectionClosedError } from "../mod.ts";

/** What bench/firehose.ts asks for: a row's messages from the server at `url`. */
export interface FirehoseRequest {
  url: string;
  size: number;
  binary: boolean;
  count: number;
}

/** One run: messages received, ms and client CPU µs (user + system) until the last one. */
export interface FirehoseRun {
  n: number;
  ms: number;
  cpuUs: number;
}

/** The clients this script runs. */
export type DenoFirehoseClient = "floor" | "raw" | "wsbeat" | "native";

/** A run cut short: the messages it counted, and why it stopped. */
class Stopped extends Error {
  constructor(n: number, count: number, why: string) {
    super(`stopped after ${n} of ${count} messages: ${why}`);
  }
}

/** The request's URL: the server reads the row from its query. */
function urlOf({ url, size, binary, count }: FirehoseRequest): string {
  const u = new URL(url);
  u.searchParams.set("size", String(size));
  u.searchParams.set("binary", binary ? "1" : "0");
  u.searchParams.set("count", String(count));
  return u.href;
}

/** Counts what the runs measure: from the start to the last expected message. */
class Meter {
  #t0 = performance.now();
  #cpu0 = process.cpuUsage();
  result: FirehoseRun | undefined;
  /** Called at the `count`-th message. */
  done(n: number): void {
    const cpu = process.cpuUsage(this.#cpu0);
    this.result = { n, ms: performance.now() - this.#t0, cpuUs: cpu.user + cpu.system };
  }
}

function badMessage(n: number, count: number, what: string, size: number, binary: boolean) {
  return new Stopped(
    n,
    count,
    `message ${n + 1} was ${what}, expected ${binary ? "binary" : "text"} of ${size} ending in ${
      lastUnit(size, binary)
    }`,
  );
}

/**
 * What each message's last byte (binary) or character (text) is in the
 * server's frames: every client reads it, as an application uses what it
 * receives (a text message that arrived in pieces is made flat so).
 */
export function lastUnit(size: number, binary: boolean): number {
  return binary ? (size - 1) & 0xff : 97 + (size - 1) % 26;
}

/** The runtime's WebSocket, `onmessage`. */
function runRaw(request: FirehoseRequest): Promise<FirehoseRun> {
  const { size, binary, count } = request;
  const last = lastUnit(size, binary);
  const meter = new Meter();
  const ws = new WebSocket(urlOf(request));
  ws.binaryType = "arraybuffer";
  let n = 0;
  let failure: Error | undefined;
  return new Promise((resolve, reject) => {
    ws.onmessage = ({ data }) => {
      if (failure) return;
      const ok = binary
        ? data instanceof ArrayBuffer && data.byteLength === size &&
          new Uint8Array(data)[size - 1] === last
        : typeof data === "string" && data.length === size && data.charCodeAt(size - 1) === last;
      if (!ok) {
        const what = typeof data === "string"
          ? `text of ${data.length} ending in ${data.charCodeAt(data.length - 1)}`
          : `binary of ${data.byteLength} ending in ${new Uint8Array(data).at(-1)}`;
        failure = badMessage(n, count, what, size, binary);
        ws.close();
        return;
      }
      if (++n === count) meter.done(n);
      else if (n > count) failure = new Stopped(n, count, "more messages than asked for");
    };
    ws.onclose = ({ code, wasClean }) => {
      if (failure) reject(failure);
      else if (meter.result) resolve(meter.result);
      else {
        reject(
          new Stopped(n, count, `the connection closed (code ${code}, wasClean ${wasClean})`),
        );
      }
    };
  });
}

/** The wsbeat client on `transport`, `for await`. */
async function runWsbeat(
  request: FirehoseRequest,
  transport: "wsbeat" | "native",
): Promise<FirehoseRun> {
  const { size, binary, count } = request;
  const last = lastUnit(size, binary);
  const meter = new Meter();
  let n = 0;
  const ws = await connect(urlOf(request), { transport, maxMessageSize: Math.max(size, 1 << 20) });
  try {
    for await (const message of ws) {
      const ok = binary
        ? message instanceof Uint8Array && message.byteLength === size && message[size - 1] === last
        : typeof message === "string" && message.length === size &&
          message.charCodeAt(size - 1) === last;
      if (!ok) {
        const what = typeof message === "string"
          ? `text of ${message.length} ending in ${message.charCodeAt(message.length - 1)}`
          : `binary of ${message.byteLength} ending in ${message.at(-1)}`;
        throw badMessage(n, count, what, size, binary);
      }
      if (++n === count) meter.done(n);
      else if (n > count) throw new Stopped(n, count, "more messages than asked for");
    }
  } catch (error) {
    await ws.close();
    if (error instanceof ConnectionClosedError) throw new Stopped(n, count, error.message);
    throw error;
  }
  const info = await ws.closed;
  if (!meter.result) {
    throw new Stopped(n, count, `the connection closed (code ${info.code}, ${info.initiator})`);
  }
  return meter.result;
}

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/**
 * The floor: `Deno.connect`, the upgrade by hand (the accept key is not
 * checked), and a read loop over the frame headers; see the module doc.
 */
async function runFloor(request: FirehoseRequest): Promise<FirehoseRun> {
  const { size, binary, count } = request;
  const meter = new Meter();
  const url = new URL(urlOf(request));
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  let n = 0;
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
          `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\n` +
          `Sec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    const buffer = new Uint8Array(256 * 1024);
    let start = 0;
    let end = 0;
    // The answer's head; what follows it are frames.
    for (;;) {
      const read = await conn.read(buffer.subarray(end));
      if (read === null) throw new Stopped(0, count, "the server sent no upgrade answer");
      end += read;
      const text = new TextDecoder().decode(buffer.subarray(0, end));
      const blank = text.indexOf("\r\n\r\n");
      if (blank < 0) continue;
      if (!text.startsWith("HTTP/1.1 101 ")) {
        throw new Stopped(
          0,
          count,
          `the upgrade was refused: ${text.slice(0, text.indexOf("\r\n"))}`,
        );
      }
      start = blank + 4; // the head is ASCII: characters are bytes
      break;
    }
    const opcode = binary ? 2 : 1;
    let touched = 0; // each payload's first and last byte, added up
    let payloadLeft = -1; // bytes of the current payload still to come, -1 between frames
    for (;;) {
      while (start < end) {
        if (payloadLeft >= 0) {
          const take = Math.min(payloadLeft, end - start);
          if (take > 0) {
            touched += buffer[start]! + buffer[start + take - 1]!;
            start += take;
            payloadLeft -= take;
          }
          if (payloadLeft > 0) break;
          payloadLeft = -1;
          if (++n === count) meter.done(n);
          continue;
        }
        if (end - start < 2) break;
        const b0 = buffer[start]!;
        const b1 = buffer[start + 1]!;
        const len7 = b1 & 0x7f;
        const head = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
        if (end - start < head) break;
        const length = len7 === 126
          ? (buffer[start + 2]! << 8) | buffer[start + 3]!
          : len7 === 127
          ? buffer[start + 6]! * 2 ** 24 + ((buffer[start + 7]! << 16) |
            (buffer[start + 8]! << 8) | buffer[start + 9]!)
          : len7;
        if ((b0 & 0x0f) === 8) {
          await conn.write(new Uint8Array([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])); // close 1000
          if (!meter.result) throw new Stopped(n, count, "the server sent a close frame");
          if (touched < 0) throw new Error("unreachable"); // keeps `touched` alive
          return meter.result;
        }
        if (b0 !== (0x80 | opcode) || (b1 & 0x80) !== 0 || length !== size) {
          const what = `${b0 & 0x0f} of ${length}${b0 & 0x80 ? "" : ", not final"}`;
          throw badMessage(n, count, `opcode ${what}`, size, binary);
        }
        if (n >= count) throw new Stopped(n, count, "more messages than asked for");
        start += head;
        payloadLeft = length;
      }
      if (start === end) start = end = 0;
      else if (buffer.length - end < 16 * 1024) { // keep room to read into
        buffer.copyWithin(0, start, end);
        end -= start;
        start = 0;
      }
      const read = await conn.read(buffer.subarray(end));
      if (read === null) throw new Stopped(n, count, "the connection closed with no close frame");
      end += read;
    }
  } catch (error) {
    if (error instanceof Stopped) throw error;
    throw new Stopped(n, count, `${(error as Error).message}`);
  } finally {
    conn.close();
  }
}

/** Runs one request on `client`. */
export function runClient(
  client: DenoFirehoseClient,
  request: FirehoseRequest,
): Promise<FirehoseRun> {
  switch (client) {
    case "floor":
      return runFloor(request);
    case "raw":
      return runRaw(request);
    case "wsbeat":
    case "native":
      return runWsbeat(request, client);
  }
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      url: { type: "string" },
      size: { type: "string", default: "1024" },
      binary: { type: "boolean", default: false },
      count: { type: "string", default: "100000" },
      runs: { type: "string", default: "3" },
    },
  });
  const client = positionals[0] as DenoFirehoseClient;
  if (!["floor", "raw", "wsbeat", "native"].includes(client)) {
    throw new TypeError(`usage: _firehose_client.ts floor|raw|wsbeat|native [--url URL ...]`);
  }
  if (values.url) {
    const request = {
      url: values.url,
      size: Number(values.size),
      binary: values.binary,
      count: Number(values.count),
    };
    for (let i = 0; i < Number(values.runs); i++) {
      const { n, ms, cpuUs } = await runClient(client, request);
      console.log(
        `${client}: ${n} messages, ${Math.round(n / ms * 1000)} msg/s, ${
          (cpuUs / n).toFixed(3)
        } µs CPU a message`,
      );
    }
  } else {
    const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
    let text = "";
    const encoder = new TextEncoder();
    for await (const chunk of lines) {
      text += chunk;
      for (let at; (at = text.indexOf("\n")) >= 0;) {
        const line = text.slice(0, at);
        text = text.slice(at + 1);
        let answer: FirehoseRun | { error: string };
        try {
          answer = await runClient(client, JSON.parse(line));
        } catch (error) {
          answer = { error: (error as Error).message };
        }
        await Deno.stdout.write(encoder.encode(JSON.stringify(answer) + "\n"));
      }
    }
  }
}
