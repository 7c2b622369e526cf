/**
 * The echo server's options resolver: {@linkcode resolveServeOptions} checks
 * `serve()`'s options once, with the checkers of `util/checks.ts`, into the
 * frozen `ServeSettings` (`serve/options.ts`) the server and its connections
 * read. Internal: `serve.ts` calls it.
 *
 * @module
 */

import { checkCompression } from "../protocol/deflate_extension.ts";
import {
  checkCount,
  checkDelay,
  checkFunction,
  checkOptions,
  checkSignal,
  checkTokens,
} from "../util/checks.ts";
import {
  checkCloseWith,
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_HEADER_SIZE,
  DEFAULT_MAX_UNSENT_BYTES,
  DEFAULT_SERVE_CLOSE_TIMEOUT,
  DEFAULT_SERVE_COMPRESSION,
  DEFAULT_SERVE_MAX_MESSAGE_SIZE,
  DEFAULT_STALL_FOR,
  type ServeOptions,
  type ServeSettings,
} from "./options.ts";

/** A fault count: a whole number, `Infinity`, or a function giving one per connection. */
function checkPerConnection(
  name: string,
  value: number | (() => number) | undefined,
): number | (() => number) | undefined {
  return value === undefined || typeof value === "function" ? value : checkCount(name, value);
}

function checkPong(value: unknown): { ping: string; pong: string } | undefined {
  if (value === undefined) return undefined;
  const { ping, pong } = (typeof value === "object" && value !== null ? value : {}) as {
    ping?: unknown;
    pong?: unknown;
  };
  if (typeof ping !== "string" || typeof pong !== "string") {
    throw new TypeError(
      `Cannot use pong as it is not { ping: string, pong: string }: current value is ${
        JSON.stringify(value)
      }`,
    );
  }
  return Object.freeze({ ping, pong });
}

/**
 * Resolves `serve()`'s options, once: checks each and fills in the defaults.
 *
 * @param options What the caller passed.
 * @returns The settings the server and its connections read, frozen.
 * @throws {RangeError} When a number is out of range, or `closeWith` is not sendable.
 * @throws {TypeError} When an option has the wrong type, a subprotocol is not
 * a token or is repeated, or only one of `cert` and `key` is given.
 */
export function resolveServeOptions(options: ServeOptions): ServeSettings {
  const {
    port,
    hostname,
    signal,
    protocols,
    cert,
    key,
    maxMessageSize,
    maxConnections,
    handshakeTimeout,
    maxHeaderSize,
    maxUnsentBytes,
    closeTimeout,
    idleTimeout,
    pong,
    stallAfter,
    stallFor,
    dropAfter,
    closeWith,
    echoDelay,
    fragment,
    pingInterval,
    rejectStatus,
    onConnect,
    onDisconnect,
    log,
    compression,
  } = checkOptions(options);
  if ((cert === undefined) !== (key === undefined)) {
    throw new TypeError("Cannot serve wss: as cert and key must be given together");
  }
  if (hostname !== undefined && typeof hostname !== "string") {
    throw new TypeError(
      `Cannot use hostname as it is not a string: current value is ${String(hostname)}`,
    );
  }
  const optional = <T>(value: T | undefined, check: (value: T) => T) =>
    value === undefined ? undefined : check(value);
  return Object.freeze({
    port: checkCount("port", port ?? 0, { max: 65535, infinite: false }),
    hostname: hostname ?? "127.0.0.1",
    signal: checkSignal("signal", signal),
    cert,
    key,
    maxConnections: checkCount("maxConnections", maxConnections ?? DEFAULT_MAX_CONNECTIONS, {
      min: 1,
    }),
    maxMessageSize: checkCount("maxMessageSize", maxMessageSize ?? DEFAULT_SERVE_MAX_MESSAGE_SIZE, {
      min: 1,
    }),
    compression: checkCompression(compression, "server", DEFAULT_SERVE_COMPRESSION),
    handshakeTimeout: checkDelay(
      "handshakeTimeout",
      handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
      {
        positive: true,
      },
    ),
    maxHeaderSize: checkCount("maxHeaderSize", maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE, {
      min: 64,
      max: 64 * 1024 * 1024,
      infinite: false,
    }),
    maxUnsentBytes: checkCount("maxUnsentBytes", maxUnsentBytes ?? DEFAULT_MAX_UNSENT_BYTES, {
      min: 1,
    }),
    closeTimeout: checkDelay("closeTimeout", closeTimeout ?? DEFAULT_SERVE_CLOSE_TIMEOUT, {
      infinite: false,
    }),
    idleTimeout: optional(
      idleTimeout,
      (v) => checkDelay("idleTimeout", v, { positive: true, infinite: false }),
    ),
    pong: checkPong(pong),
    stallAfter: checkPerConnection("stallAfter", stallAfter),
    stallFor: checkDelay("stallFor", stallFor ?? DEFAULT_STALL_FOR, {
      positive: true,
      infinite: false,
    }),
    dropAfter: checkPerConnection("dropAfter", dropAfter),
    closeWith: closeWith === undefined ? undefined : Object.freeze(checkCloseWith(closeWith)),
    echoDelay: checkDelay("echoDelay", echoDelay ?? 0, { infinite: false }),
    fragment: checkCount("fragment", fragment ?? 1, { min: 1, max: 1000, infinite: false }),
    pingInterval: optional(
      pingInterval,
      (v) => checkDelay("pingInterval", v, { positive: true, infinite: false }),
    ),
    rejectStatus: optional(
      rejectStatus,
      (v) => checkCount("rejectStatus", v, { min: 400, max: 599, infinite: false }),
    ),
    protocols: protocols === undefined
      ? undefined
      : Object.freeze(checkTokens("protocols", protocols)) as string[],
    onConnect: checkFunction("onConnect", onConnect),
    onDisconnect: checkFunction("onDisconnect", onDisconnect),
    log: checkFunction("log", log) ?? (() => {}),
  });
}
