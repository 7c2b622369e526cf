/**
 * The echo server: a connection stalled by the `stallAfter` fault, for
 * `serve/connection.ts`. Stalled, the server answers nothing at all, yet it
 * must not hold the connection forever:
 *
 * - it keeps reading and throws the bytes away unread by the protocol (no
 *   echo, no pong, no close reply), so it notices at once when the client
 *   closes TCP, and releases the connection and its `maxConnections` slot;
 * - past {@linkcode STALL_DISCARD_BYTES} thrown away it stops reading, so a
 *   client that floods a stalled connection is held back by TCP flow
 *   control, as by a peer that is really dead;
 * - after `stallFor` it closes TCP (no close frame) whatever the client does.
 *
 * @module
 */

import { duration } from "./report.ts";

/**
 * The most bytes a stalled connection reads and throws away before it stops
 * reading: about what the kernel buffers of a dead peer would take in.
 */
export const STALL_DISCARD_BYTES = 1024 * 1024;

/** What {@linkcode holdStalled} needs from its connection. */
export interface StallContext {
  conn: Deno.Conn;
  /** How long to hold the stalled connection at most, ms (`stallFor`). */
  stallFor: number;
  /** Whether the connection was released (by this or anything else). */
  ended(): boolean;
  /** Resolves once the connection is released. */
  released: Promise<void>;
  /** Closes the socket, saying why for the connection's close line. */
  release(why: string): void;
}

/**
 * Holds a stalled connection until the client closes TCP, `stallFor`
 * passes, or something else releases it; whichever comes first releases it.
 *
 * @param ctx The socket, the bound and how to release the connection.
 * @returns Resolves once the connection is released; never rejects.
 */
export async function holdStalled(ctx: StallContext): Promise<void> {
  const { conn, stallFor } = ctx;
  if (ctx.ended()) return;
  const timer = setTimeout(
    () => ctx.release(`stalled (stallAfter), TCP closed after ${duration(stallFor)} (stallFor)`),
    stallFor,
  );
  try {
    const sink = new Uint8Array(4096);
    for (let discarded = 0; discarded <= STALL_DISCARD_BYTES;) {
      const n = await conn.read(sink);
      if (ctx.ended()) return;
      if (n === null) {
        return ctx.release("stalled (stallAfter), released when the client closed TCP");
      }
      discarded += n;
    }
    await ctx.released; // flooded: read no more, and wait for stallFor
  } catch (error) {
    if (!ctx.ended()) {
      ctx.release(
        `stalled (stallAfter), network error: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
    }
  } finally {
    clearTimeout(timer);
  }
}
