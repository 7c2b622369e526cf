/**
 * Where a sequential round trip's CPU goes (for the record). The echo rows
 * compare the wsbeat client with the raw native `WebSocket`, whose framing
 * runs in Rust; this splits the wsbeat transport's figure into what the
 * runtime's sockets cost with no wsbeat code at all, what wsbeat's protocol
 * core adds, and what its client adds. Four clients take turns chunk by
 * chunk (a rotating order) on the sequential 32 B and 1 KiB rows:
 *
 * - `socket`: `Deno.connect` with `TCP_NODELAY` (the upgrade written by
 *   hand), each round trip writing a frame made once beforehand and waiting
 *   for its echo from a read loop that is always pending, as a client's must
 *   be to see pings and closes while its application is not reading. No
 *   wsbeat code runs; no JavaScript client on `Deno.connect` can cost less.
 * - `protocol`: the same socket and read loop, with wsbeat's protocol core
 *   (`protocol/protocol.ts`) making each frame (masking key, mask, header, UTF-8) and
 *   parsing each echo (header, unmasking nothing, UTF-8 check and decode).
 * - `wsbeat`: the client on the wsbeat transport, `for await` and `send()`,
 *   as in the echo rows.
 * - `raw`: the raw native `WebSocket`, as in the echo rows.
 *
 * CPU is the process's user + system time per round trip (`process.cpuUsage`).
 *
 * Usage: deno run --allow-net=127.0.0.1 --allow-run=sh,deno bench/floor.ts [--reps N] [--round-trips N]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Protocol } from "../protocol/protocol.ts";
import {
  type Chunk,
  type ChunkSpec,
  type Client,
  type EchoCase,
  OPEN,
  openRaw,
  payloadOf,
  rowLabel,
  timed,
  total,
} from "./echo.ts";
import { startServer, table, upgradeByHand } from "./_server.ts";

/** The four clients, in their column order. */
export const FLOOR_CLIENTS = ["socket", "protocol", "wsbeat", "raw"] as const;
/** One of {@linkcode FLOOR_CLIENTS}. */
export type FloorClient = typeof FLOOR_CLIENTS[number];

/** The rows: 32 B and 1 KiB, text and binary, sequential. */
export const FLOOR_CASES: EchoCase[] = [32, 1024].flatMap((size) =>
  [false, true].map((binary) => ({ size, binary, mode: "sequential" as const }))
);

/** One row: CPU µs and wall-clock µs per round trip, per client. */
export interface FloorRow extends EchoCase {
  payload: string;
  cpu: Record<FloorClient, number>;
  roundTrip: Record<FloorClient, number>;
}

/** Options for {@linkcode floorBench}. */
export interface FloorOptions {
  /** The echo server (wsbeat serve). */
  url: string;
  /** @default {FLOOR_CASES} */
  cases?: EchoCase[];
  /** Counted chunks a client, after two warm-up chunks each. @default {10} */
  reps?: number;
  /** Round trips a chunk. @default {1000} */
  roundTrips?: number;
}

/** The round trip waiting for its echo, if any. */
interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

/**
 * A socket upgraded by hand (`upgradeByHand`), with a read loop that hands
 * each read to `onBytes`; when the loop ends (the peer closed, or a
 * read failed), the waiting round trip fails.
 */
async function openSocket<T>(
  url: string,
  onBytes: (bytes: Uint8Array, n: number, waiter: Waiter<T> | undefined) => boolean,
) {
  const conn = await upgradeByHand(url);
  const buffer = new Uint8Array(64 * 1024);
  let waiter: Waiter<T> | undefined;
  const loop = (async () => {
    try {
      for (let n; (n = await conn.read(buffer)) !== null;) {
        if (onBytes(buffer, n, waiter)) waiter = undefined;
      }
    } catch { /* closed here, or reset */ }
    waiter?.reject(new Error("the connection closed during a round trip"));
    waiter = undefined;
  })();
  return {
    /** Writes `frame`, then waits for the echo that `onBytes` reports. */
    async roundTrip(frame: Uint8Array): Promise<T> {
      const echo = new Promise<T>((resolve, reject) => (waiter = { resolve, reject }));
      await conn.write(frame);
      return await echo;
    },
    close: async () => {
      try {
        conn.close();
      } catch { /* already closed */ }
      await loop;
    },
  };
}

/**
 * Sequential round trips of `n` messages; `roundTrip` sends one and waits for
 * its echo. Each is timed as the echo rows' clients time theirs (two clock
 * reads and a slot in an array, the percentiles at the end), so that every
 * column pays the same harness (about 0.5 µs a round trip here).
 */
function sequentialChunk(n: number, roundTrip: () => Promise<void>): Promise<Chunk> {
  return timed(async () => {
    const rtts = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const start = performance.now();
      await roundTrip();
      rtts[i] = (performance.now() - start) * 1000;
    }
    return rtts;
  });
}

const unsupported = () => Promise.reject(new Error("sequential only"));

/** The `socket` client: a frame made once, no wsbeat code (see the module doc). */
async function openBareSocket(url: string, { payload, size }: ChunkSpec): Promise<Client> {
  const data = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const opcode = typeof payload === "string" ? 1 : 2;
  const header = size < 126
    ? [0x80 | opcode, 0x80 | size]
    : [0x80 | opcode, 0xfe, size >> 8, size & 0xff];
  const frame = new Uint8Array(header.length + 4 + size); // masking key 0: the payload as it is
  frame.set(header);
  frame.set(data, header.length + 4);
  const echoLength = header.length + size; // the server's echo is not masked
  let got = 0;
  const socket = await openSocket<void>(url, (_, n, waiter) => {
    got += n;
    if (got < echoLength) return false;
    got -= echoLength;
    waiter?.resolve();
    return true;
  });
  return {
    sequential: ({ n }) => sequentialChunk(n, () => socket.roundTrip(frame)),
    pipelined: unsupported,
    close: socket.close,
  };
}

/** The `protocol` client: wsbeat's protocol core on the bare socket (see the module doc). */
async function openProtocol(url: string, { payload, size }: ChunkSpec): Promise<Client> {
  const protocol = new Protocol({ role: "client", maxMessageSize: 1 << 20 });
  const socket = await openSocket<number>(url, (bytes, n, waiter) => {
    protocol.receiveData(bytes, n);
    let echoed = false;
    for (let event; (event = protocol.nextEvent()) !== undefined;) {
      if (event.type !== "text" && event.type !== "binary") continue;
      waiter?.resolve(event.type === "text" ? event.data.length : event.data.byteLength);
      echoed = true;
    }
    return echoed;
  });
  return {
    sequential: ({ n }) =>
      sequentialChunk(n, async () => {
        if (typeof payload === "string") protocol.sendText(payload);
        else protocol.sendBinary(payload);
        const frame = protocol.nextData()!; // a message is one frame
        const length = await socket.roundTrip(frame);
        if (length !== size) throw new Error(`echo of ${length} bytes, expected ${size}`);
      }),
    pipelined: unsupported,
    close: socket.close,
  };
}

/** Runs the four clients on each row, in turns; see the module doc. */
export async function floorBench(options: FloorOptions): Promise<FloorRow[]> {
  const { url, cases = FLOOR_CASES, reps = 10, roundTrips = 1000 } = options;
  const rows: FloorRow[] = [];
  for (const c of cases) {
    const spec: ChunkSpec = {
      payload: payloadOf(c.size, c.binary),
      size: c.size,
      n: roundTrips,
      window: 1,
      budget: Infinity,
    };
    const opened: Client[] = [];
    const open = async (opening: Promise<Client>) => {
      const client = await opening;
      opened.push(client);
      return client;
    };
    const chunks: Record<FloorClient, Chunk[]> = { socket: [], protocol: [], wsbeat: [], raw: [] };
    try {
      const clients: Record<FloorClient, Client> = {
        socket: await open(openBareSocket(url, spec)),
        protocol: await open(openProtocol(url, spec)),
        wsbeat: await open(OPEN.wsbeat(url)),
        raw: await open(openRaw(url)),
      };
      for (let turn = 0; turn < 2 + reps; turn++) { // two warm-up chunks each, then `reps`
        const k = turn % FLOOR_CLIENTS.length;
        for (const name of [...FLOOR_CLIENTS.slice(k), ...FLOOR_CLIENTS.slice(0, k)]) {
          const chunk = await clients[name].sequential(spec);
          if (turn >= 2) chunks[name].push(chunk);
        }
      }
    } catch (error) {
      await Promise.allSettled(opened.map((client) => client.close()));
      throw error;
    }
    for (const client of opened) await client.close();
    const cpu = {} as Record<FloorClient, number>;
    const roundTrip = {} as Record<FloorClient, number>;
    for (const name of FLOOR_CLIENTS) {
      const sample = total(chunks[name]);
      cpu[name] = sample.cpu;
      roundTrip[name] = 1e6 / sample.rate;
    }
    rows.push({ ...c, payload: rowLabel(c), cpu, roundTrip });
  }
  return rows;
}

const us = (value: number) => value.toFixed(1);
const ratio = (value: number) => `${value.toFixed(2)}x`;

/** Renders the rows: CPU a round trip per client, and what wsbeat's layers add to the socket's. */
export function floorTable(rows: FloorRow[]): string {
  return table(
    [
      "payload",
      "CPU µs/rt socket (no wsbeat code)",
      "protocol core",
      "wsbeat client",
      "raw native",
      "socket / raw",
      "wsbeat / raw",
      "wsbeat / socket",
      "protocol core adds, µs",
      "client and transport add, µs",
      "round trip µs socket / wsbeat / raw",
    ],
    rows.map(({ payload, cpu, roundTrip }) => [
      payload,
      us(cpu.socket),
      us(cpu.protocol),
      us(cpu.wsbeat),
      us(cpu.raw),
      ratio(cpu.socket / cpu.raw),
      ratio(cpu.wsbeat / cpu.raw),
      ratio(cpu.wsbeat / cpu.socket),
      us(cpu.protocol - cpu.socket),
      us(cpu.wsbeat - cpu.protocol),
      `${us(roundTrip.socket)} / ${us(roundTrip.wsbeat)} / ${us(roundTrip.raw)}`,
    ]),
  );
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      reps: { type: "string", default: "10" },
      "round-trips": { type: "string", default: "1000" },
    },
  });
  await using server = await startServer();
  const rows = await floorBench({
    url: server.url,
    reps: Number(values.reps),
    roundTrips: Number(values["round-trips"]),
  });
  console.log(floorTable(rows));
}
