/**
 * The size of a message in bytes, text counted as UTF-8: one helper every
 * layer that counts bytes shares (the inbox's bounds, the statistics, the
 * send queue, close reasons).
 *
 * @module
 */

const encoder = new TextEncoder();
// deno-lint-ignore no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;
const SCRATCH_CHARS = 64 * 1024;
let scratch: Uint8Array | undefined;

/**
 * Payload size in bytes, text as UTF-8, on the hot path of every send and
 * receive. Measured (deno bench): for short strings a regex test is fastest
 * (28 ns for 32 chars); for longer ones `encodeInto` a reused buffer is
 * (1.3 us for 64 Ki chars, where the regex takes 35 us). Past 64 Ki chars
 * `encode()` avoids keeping a buffer sized for the largest message.
 *
 * @param data Text or bytes.
 * @returns The size in bytes.
 */
export function byteLength(data: string | ArrayBuffer | ArrayBufferView): number {
  if (typeof data !== "string") return data.byteLength;
  if (data.length < 64) return NON_ASCII.test(data) ? encoder.encode(data).byteLength : data.length;
  if (data.length > SCRATCH_CHARS) return encoder.encode(data).byteLength;
  scratch ??= new Uint8Array(SCRATCH_CHARS * 3);
  return encoder.encodeInto(data, scratch).written;
}
