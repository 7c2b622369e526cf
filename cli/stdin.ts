/**
 * Stdin for the client: lines split in linear time with a length cap
 * ({@linkcode readLineBytes}), checked without altering anything (invalid
 * UTF-8, `--json`, `--binary`: refused and counted, never replaced), and
 * held in a bounded queue ({@linkcode InputFeed}) that keeps lines typed
 * while disconnected and stops reading when full.
 *
 * @module
 */

/** Lines of stdin waiting to be sent: at most this many, across reconnects. */
export const INPUT_QUEUE_LIMIT = 1000;
/** And at most this many bytes. */
export const INPUT_QUEUE_BYTES = 16 * 1024 * 1024;

/** A line longer than the cap: its bytes were skipped, not kept. */
export interface LineTooLong {
  tooLong: number;
}

function join(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Splits a byte stream into lines (without `\n` or a `\r` before it) in
 * linear time: each chunk is searched once, and a line's pieces are joined
 * once. A line of more than `maxLine` bytes is skipped as it streams (never
 * held whole) and reported as {@linkcode LineTooLong}. A last line without
 * `\n` counts too.
 */
export async function* readLineBytes(
  readable: AsyncIterable<Uint8Array>,
  maxLine: number,
): AsyncGenerator<Uint8Array | LineTooLong> {
  let parts: Uint8Array[] = [];
  let length = 0;
  let skipped = -1; // bytes of a line too long, or -1
  const end = (piece: Uint8Array): Uint8Array | LineTooLong => {
    const total = (skipped >= 0 ? skipped : length) + piece.length;
    let line: Uint8Array | LineTooLong;
    if (skipped >= 0 || total > maxLine) line = { tooLong: total };
    else {
      if (piece.length > 0 || parts.length === 0) parts.push(piece);
      line = join(parts, total);
      if (line.at(-1) === 13) line = line.subarray(0, -1);
    }
    parts = [];
    length = 0;
    skipped = -1;
    return line;
  };
  for await (const chunk of readable) {
    let pos = 0;
    while (pos < chunk.length) {
      const newline = chunk.indexOf(10, pos);
      if (newline === -1) {
        const piece = chunk.subarray(pos);
        if (skipped >= 0) skipped += piece.length;
        else if (length + piece.length > maxLine) {
          skipped = length + piece.length;
          parts = [];
          length = 0;
        } else {
          parts.push(piece.slice());
          length += piece.length;
        }
        break;
      }
      yield end(chunk.subarray(pos, newline));
      pos = newline + 1;
    }
  }
  if (length > 0 || skipped >= 0) yield end(new Uint8Array(0));
}

/**
 * Reads text lines from a byte stream (for tests and for reading a child's
 * output): no length cap, invalid UTF-8 replaced.
 */
export async function* readLines(readable: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  for await (const line of readLineBytes(readable, Infinity)) {
    if (line instanceof Uint8Array) yield decoder.decode(line);
  }
}

/** One item of input: a message, or a slash command typed on a terminal. */
export type InputItem = string | Uint8Array | { command: string; args: string[] };

/** Options for {@linkcode InputFeed}. */
export interface InputFeedOptions {
  /**
   * Turns a line (numbered from 1) into the item to send, or `undefined` to
   * skip it (after reporting why).
   */
  prepare: (line: Uint8Array | LineTooLong, n: number) => InputItem | undefined;
  /** Called each time the queue fills up and reading pauses. */
  onFull: () => void;
  /**
   * The most lines kept.
   *
   * @default {INPUT_QUEUE_LIMIT}
   */
  limit?: number;
  /**
   * The most bytes kept (a single larger line is still kept, alone).
   *
   * @default {INPUT_QUEUE_BYTES}
   */
  limitBytes?: number;
}

const sizeOf = (item: InputItem) =>
  typeof item === "string" ? item.length : item instanceof Uint8Array ? item.length : 0;

/**
 * Stdin, read once for the whole run into a bounded queue. A line leaves the
 * queue only once sent, so lines read while disconnected wait for the next
 * connection; when the queue is full, reading stops until it drains.
 */
export class InputFeed {
  #queue: InputItem[] = [];
  #bytes = 0;
  #ended = false;
  #wake: (() => void) | undefined;
  #space: (() => void) | undefined;

  /**
   * Starts reading `lines`.
   *
   * @param lines The input, one message a line.
   * @param options How to prepare each line, what to do when the queue fills, and its size.
   */
  constructor(lines: AsyncIterable<Uint8Array | LineTooLong>, options: InputFeedOptions) {
    const { prepare, onFull, limit = INPUT_QUEUE_LIMIT, limitBytes = INPUT_QUEUE_BYTES } = options;
    (async () => {
      let n = 0;
      for await (const line of lines) {
        const item = prepare(line, ++n);
        if (item === undefined) continue;
        const size = sizeOf(item);
        while (
          this.#queue.length >= limit ||
          (this.#queue.length > 0 && this.#bytes + size > limitBytes)
        ) {
          onFull();
          await new Promise<void>((resolve) => (this.#space = resolve));
        }
        this.#queue.push(item);
        this.#bytes += size;
        this.#wake?.();
      }
    })().catch(() => {/* stdin closed */}).finally(() => {
      this.#ended = true;
      this.#wake?.();
    });
  }

  /** How many lines wait to be sent. */
  get size(): number {
    return this.#queue.length;
  }

  /**
   * The next item to send, without taking it; `undefined` once input is over.
   *
   * @param signal Stops waiting (rejects with its reason).
   * @returns The next item, or `undefined` at the end.
   */
  async peek(signal: AbortSignal): Promise<InputItem | undefined> {
    while (this.#queue.length === 0 && !this.#ended) {
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        this.#wake = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
        signal.addEventListener("abort", onAbort, { once: true });
      });
    }
    signal.throwIfAborted();
    return this.#queue[0];
  }

  /** Takes the item `peek` gave, once it was sent. */
  shift(): void {
    const item = this.#queue.shift();
    if (item !== undefined) this.#bytes -= sizeOf(item);
    const space = this.#space;
    this.#space = undefined;
    space?.();
  }
}

/** How {@linkcode prepareLine} checks lines. */
export interface LineRules {
  /** Lines are base64 and sent as binary. */
  binary: boolean;
  /** Lines must be JSON. */
  json: boolean;
  /** Lines starting with `/` are commands (stdin is a terminal). */
  slash: boolean;
  /** The largest line, in bytes (to say so when one is longer). */
  maxLine: number;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function fromBase64(text: string): Uint8Array | undefined {
  try {
    return Uint8Array.from(atob(text.trim()), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/**
 * Checks one input line: length, UTF-8, `--binary` base64, `--json` JSON,
 * slash commands. Returns the item, or the reason it is refused.
 */
export function prepareLine(
  rules: LineRules,
  line: Uint8Array | LineTooLong,
  n: number,
): InputItem | { refused: string } {
  if (!(line instanceof Uint8Array)) {
    return {
      refused: `input line ${n} is ${line.tooLong} bytes, over the ${rules.maxLine}-byte limit ` +
        "of a message; it was not sent",
    };
  }
  let text: string;
  try {
    text = utf8.decode(line);
  } catch {
    return {
      refused: `input line ${n} is not valid UTF-8; it was not sent (for bytes, use --binary ` +
        "with base64 lines)",
    };
  }
  if (rules.slash && text.startsWith("/")) {
    if (text.startsWith("//")) text = text.slice(1);
    else {
      const [command, ...args] = text.slice(1).trim().split(/\s+/);
      return { command: command ?? "", args };
    }
  }
  if (rules.binary) {
    const bytes = fromBase64(text);
    return bytes ?? { refused: `input line ${n} is not valid base64 (--binary); it was not sent` };
  }
  if (rules.json) {
    try {
      JSON.parse(text);
    } catch (error) {
      return {
        refused: `input line ${n} is not JSON (${(error as Error).message}); it was not sent`,
      };
    }
  }
  return text;
}
