/**
 * Negotiation of permessage-deflate (RFC 7692 section 7.1), both roles, as
 * pure functions: the client builds its offer with {@linkcode deflateOffer}
 * and checks the server's answer with {@linkcode checkDeflateResponse}; the
 * server picks an offer with {@linkcode acceptDeflateOffer}. Each gives the
 * agreed {@linkcode DeflateParams}, which {@linkcode deflateDirections} turns
 * into the settings of the two codecs in `deflate_codec.ts`.
 *
 * wsbeat's deflater never uses context takeover (see `deflate_codec.ts`), so
 * by default the client offers `client_no_context_takeover` and the server
 * answers `server_no_context_takeover`: the peer may then drop the window it
 * would keep for us. Both are permitted by RFC 7692 whatever the other side
 * offered (sections 7.1.1.1 and 7.1.1.2).
 *
 * @module
 */

/** The extension's name in `Sec-WebSocket-Extensions`. */
export const PERMESSAGE_DEFLATE = "permessage-deflate";

/**
 * A `Sec-WebSocket-Extensions` header or a permessage-deflate answer broke
 * RFC 7230 or RFC 7692. A client fails the connection with it (the handshake
 * turns it into a failed opening); a server answers HTTP 400.
 *
 * @example Catch an invalid answer
 * ```ts
 * import { checkDeflateResponse, ExtensionNegotiationError } from "./permessage_deflate.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => checkDeflateResponse("permessage-deflate; server_max_window_bits=7", {}),
 *   ExtensionNegotiationError,
 * );
 * ```
 */
export class ExtensionNegotiationError extends Error {
  /**
   * Constructs a new instance.
   *
   * @param message What was wrong, in the "Cannot X as Y: current value is Z" style.
   */
  constructor(message: string) {
    super(message);
    this.name = "ExtensionNegotiationError";
  }
}

/** One element of a `Sec-WebSocket-Extensions` list: a name and its parameters in order. */
export interface ExtensionElement {
  /** The extension's token, lower-cased (`permessage-deflate`). */
  name: string;
  /** Its parameters as `[name, value]`, names lower-cased; `true` for a parameter without a value. */
  params: [string, string | true][];
}

/** The parameters both sides agreed on, for each direction. */
export interface DeflateParams {
  /** The server deflates each message on its own (`server_no_context_takeover`). */
  serverNoContextTakeover: boolean;
  /** The client deflates each message on its own (`client_no_context_takeover`). */
  clientNoContextTakeover: boolean;
  /** The largest LZ77 window the server's deflater may use, 8 to 15 (15 when not named). */
  serverMaxWindowBits: number;
  /** The largest LZ77 window the client's deflater may use, 8 to 15 (15 when not named). */
  clientMaxWindowBits: number;
}

/** Options for {@linkcode deflateOffer} and {@linkcode checkDeflateResponse}. */
export interface DeflateOfferOptions {
  /**
   * Offer `client_no_context_takeover`.
   *
   * @default {true} wsbeat's deflater deflates each message on its own, and saying so lets the server drop its window for us.
   */
  clientNoContextTakeover?: boolean;
  /**
   * Ask for `server_no_context_takeover`: the server deflates each message on its own.
   *
   * @default {false} context takeover compresses small similar messages far better, and our inflater keeps only the window (2^bits bytes) for it.
   */
  serverNoContextTakeover?: boolean;
  /**
   * Ask the server to use at most this window (`server_max_window_bits`, 8 to 15), or `undefined` not to ask.
   *
   * @default {undefined} no limit: the window our inflater keeps is 32 KiB at most.
   */
  serverMaxWindowBits?: number;
  /**
   * Offer `client_max_window_bits`: `true` without a value (the server may pick any), a number to cap it, `false` not to offer.
   *
   * @default {true} our deflater honours any window the server picks.
   */
  clientMaxWindowBits?: number | boolean;
}

/** Options for {@linkcode acceptDeflateOffer}. */
export interface DeflateAcceptOptions {
  /**
   * Answer `server_no_context_takeover` even when the client did not ask.
   *
   * @default {true} wsbeat's deflater never uses context takeover; saying so lets the client drop its window.
   */
  serverNoContextTakeover?: boolean;
  /**
   * Answer `client_no_context_takeover`: the client must deflate each message on its own.
   *
   * @default {false} with takeover the server keeps 2^bits bytes per connection for the client's window; set it to keep none.
   */
  clientNoContextTakeover?: boolean;
  /**
   * The largest client window to accept (8 to 15), answered as `client_max_window_bits` when the client offered that parameter.
   *
   * @default {15} any window; lower it to keep a smaller window per connection.
   */
  clientMaxWindowBits?: number;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/**
 * Parses a `Sec-WebSocket-Extensions` header value (RFC 6455 section 9.1 on
 * RFC 7230 syntax): a comma-separated list of extensions, each with
 * `;`-separated parameters whose values are tokens or quoted strings.
 * Several header lines joined with `,` parse as one list; empty list
 * elements are skipped.
 *
 * @param header The header value.
 * @returns The elements in order, names lower-cased, quoted values unquoted.
 * @throws {ExtensionNegotiationError} When the value breaks the syntax.
 *
 * @example Two offers, the first with parameters
 * ```ts
 * import { parseExtensions } from "./permessage_deflate.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   parseExtensions('permessage-deflate; client_max_window_bits; server_max_window_bits="10", x-foo'),
 *   [
 *     { name: "permessage-deflate", params: [["client_max_window_bits", true], ["server_max_window_bits", "10"]] },
 *     { name: "x-foo", params: [] },
 *   ],
 * );
 * ```
 */
export function parseExtensions(header: string): ExtensionElement[] {
  const elements: ExtensionElement[] = [];
  let i = 0;
  const n = header.length;
  const fail = (what: string): never => {
    throw new ExtensionNegotiationError(
      `Cannot parse Sec-WebSocket-Extensions as ${what} at offset ${i}: current value is ${
        JSON.stringify(header)
      }`,
    );
  };
  const skipSpace = () => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  };
  const token = (what: string): string => {
    const start = i;
    while (i < n && TOKEN_CHAR.test(header[i]!)) i++;
    if (i === start) fail(`a ${what} is expected`);
    return header.slice(start, i);
  };
  const quoted = (): string => {
    let value = "";
    i++; // opening quote
    while (i < n && header[i] !== '"') {
      if (header[i] === "\\") i++;
      if (i >= n) break;
      value += header[i++];
    }
    if (i >= n) fail("a quoted string is not closed");
    i++; // closing quote
    return value;
  };
  while (i < n) {
    skipSpace();
    if (header[i] === ",") {
      i++;
      continue;
    }
    if (i >= n) break;
    const element: ExtensionElement = { name: token("extension name").toLowerCase(), params: [] };
    skipSpace();
    while (header[i] === ";") {
      i++;
      skipSpace();
      const name = token("parameter name").toLowerCase();
      skipSpace();
      let value: string | true = true;
      if (header[i] === "=") {
        i++;
        skipSpace();
        if (header[i] === '"') {
          value = quoted();
          // RFC 6455 9.1: a quoted value must still be a token.
          if (!TOKEN.test(value)) fail("a quoted value is not a token");
        } else value = token("parameter value");
        skipSpace();
      }
      element.params.push([name, value]);
    }
    elements.push(element);
    if (i < n && header[i] !== ",") fail("a comma or semicolon is expected");
  }
  return elements;
}

/**
 * Builds the client's `Sec-WebSocket-Extensions` offer for permessage-deflate.
 *
 * @param options What to offer.
 * @returns The header value.
 * @throws {RangeError} When a window bits value is not an integer from 8 to 15.
 *
 * @example The default offer
 * ```ts
 * import { deflateOffer } from "./permessage_deflate.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(deflateOffer(), "permessage-deflate; client_no_context_takeover; client_max_window_bits");
 * ```
 */
export function deflateOffer(options: DeflateOfferOptions = {}): string {
  const {
    clientNoContextTakeover = true,
    serverNoContextTakeover = false,
    serverMaxWindowBits,
    clientMaxWindowBits = true,
  } = options;
  const parts = [PERMESSAGE_DEFLATE];
  if (clientNoContextTakeover) parts.push("client_no_context_takeover");
  if (serverNoContextTakeover) parts.push("server_no_context_takeover");
  if (serverMaxWindowBits !== undefined) {
    parts.push(`server_max_window_bits=${checkBits("serverMaxWindowBits", serverMaxWindowBits)}`);
  }
  if (clientMaxWindowBits === true) parts.push("client_max_window_bits");
  else if (clientMaxWindowBits !== false) {
    parts.push(`client_max_window_bits=${checkBits("clientMaxWindowBits", clientMaxWindowBits)}`);
  }
  return parts.join("; ");
}

/**
 * Picks the first acceptable permessage-deflate offer of a client's
 * `Sec-WebSocket-Extensions` header, as a server. An offer with an unknown,
 * duplicated or invalid parameter is declined (RFC 7692 section 7.1) and the
 * next one is tried; other extensions are ignored.
 *
 * @param header The client's header value, or `null` when absent.
 * @param options What the server accepts.
 * @returns The response header value and the agreed parameters, or `undefined` when no offer is acceptable (answer without the extension).
 * @throws {ExtensionNegotiationError} When the header breaks RFC 7230 syntax (answer HTTP 400).
 * @throws {RangeError} When `options.clientMaxWindowBits` is not an integer from 8 to 15.
 *
 * @example Accept a client's offer
 * ```ts
 * import { acceptDeflateOffer } from "./permessage_deflate.ts";
 * import assert from "node:assert/strict";
 *
 * const accepted = acceptDeflateOffer("permessage-deflate; client_max_window_bits", {
 *   clientMaxWindowBits: 12,
 * });
 * assert.equal(
 *   accepted?.response,
 *   "permessage-deflate; server_no_context_takeover; client_max_window_bits=12",
 * );
 * assert.equal(accepted?.params.clientMaxWindowBits, 12);
 * ```
 */
export function acceptDeflateOffer(
  header: string | null,
  options: DeflateAcceptOptions = {},
): { response: string; params: DeflateParams } | undefined {
  const { serverNoContextTakeover = true, clientNoContextTakeover = false } = options;
  const clientLimit = checkBits("clientMaxWindowBits", options.clientMaxWindowBits ?? 15);
  if (header === null) return undefined;
  for (const element of parseExtensions(header)) {
    if (element.name !== PERMESSAGE_DEFLATE) continue;
    let offer: Map<string, string | true>;
    try {
      offer = deflateParamMap(element, "offer");
    } catch (error) {
      if (error instanceof ExtensionNegotiationError) continue; // decline this offer
      throw error;
    }
    const params: DeflateParams = {
      serverNoContextTakeover: serverNoContextTakeover || offer.has("server_no_context_takeover"),
      clientNoContextTakeover: clientNoContextTakeover || offer.has("client_no_context_takeover"),
      serverMaxWindowBits: 15,
      clientMaxWindowBits: 15,
    };
    const parts = [PERMESSAGE_DEFLATE];
    if (params.serverNoContextTakeover) parts.push("server_no_context_takeover");
    // Answer client_no_context_takeover only when we demand it: echoing the client's would be noise.
    if (clientNoContextTakeover) parts.push("client_no_context_takeover");
    const serverBits = offer.get("server_max_window_bits");
    if (typeof serverBits === "string") {
      // Our deflater honours any window (8 sends stored blocks), so we accept the client's limit.
      params.serverMaxWindowBits = Number(serverBits);
      parts.push(`server_max_window_bits=${serverBits}`);
    }
    const clientBits = offer.get("client_max_window_bits");
    if (clientBits !== undefined) {
      const bits = Math.min(clientLimit, clientBits === true ? 15 : Number(clientBits));
      params.clientMaxWindowBits = bits;
      if (bits < 15 || clientBits !== true) parts.push(`client_max_window_bits=${bits}`);
    }
    return { response: parts.join("; "), params };
  }
  return undefined;
}

/**
 * Checks the server's `Sec-WebSocket-Extensions` answer against the offer
 * the client made with the same options, as a client. The answer must hold
 * exactly one permessage-deflate element, with no parameter the client did
 * not allow, no duplicates, and window bits from 8 to 15 within what was
 * offered.
 *
 * @param header The server's header value, or `null` when absent.
 * @param offered The options the offer was built with ({@linkcode deflateOffer}).
 * @returns The agreed parameters, or `undefined` when the server did not accept the extension.
 * @throws {ExtensionNegotiationError} When the answer is invalid: fail the connection (RFC 6455 section 4.1).
 *
 * @example Validate an answer
 * ```ts
 * import { checkDeflateResponse } from "./permessage_deflate.ts";
 * import assert from "node:assert/strict";
 *
 * const params = checkDeflateResponse("permessage-deflate; client_max_window_bits=10", {});
 * assert.deepEqual(params, {
 *   serverNoContextTakeover: false,
 *   clientNoContextTakeover: true,
 *   serverMaxWindowBits: 15,
 *   clientMaxWindowBits: 10,
 * });
 * ```
 */
export function checkDeflateResponse(
  header: string | null,
  offered: DeflateOfferOptions,
): DeflateParams | undefined {
  if (header === null || header.trim() === "") return undefined;
  const elements = parseExtensions(header);
  if (elements.length === 0) return undefined;
  for (const element of elements) {
    if (element.name !== PERMESSAGE_DEFLATE) {
      throw new ExtensionNegotiationError(
        `Cannot accept the server's extensions as one was never offered: current value is ${element.name}`,
      );
    }
  }
  if (elements.length > 1) {
    throw new ExtensionNegotiationError(
      `Cannot accept the server's extensions as permessage-deflate is answered more than once: current value is ${elements.length} times`,
    );
  }
  const answer = deflateParamMap(elements[0]!, "response");
  const { clientNoContextTakeover = true, serverNoContextTakeover = false } = offered;
  const { serverMaxWindowBits, clientMaxWindowBits = true } = offered;
  if (serverNoContextTakeover && !answer.has("server_no_context_takeover")) {
    throw new ExtensionNegotiationError(
      "Cannot accept permessage-deflate as server_no_context_takeover was offered but not answered: current value is absent",
    );
  }
  const serverBits = answer.get("server_max_window_bits");
  if (serverMaxWindowBits !== undefined) {
    if (serverBits === undefined || Number(serverBits) > serverMaxWindowBits) {
      throw new ExtensionNegotiationError(
        `Cannot accept permessage-deflate as server_max_window_bits is not within the ${serverMaxWindowBits} offered: current value is ${
          serverBits ?? "absent"
        }`,
      );
    }
  }
  const clientBits = answer.get("client_max_window_bits");
  if (clientBits !== undefined) {
    if (clientMaxWindowBits === false) {
      throw new ExtensionNegotiationError(
        `Cannot accept permessage-deflate as client_max_window_bits was never offered: current value is ${clientBits}`,
      );
    }
    if (clientMaxWindowBits !== true && Number(clientBits) > clientMaxWindowBits) {
      throw new ExtensionNegotiationError(
        `Cannot accept permessage-deflate as client_max_window_bits is over the ${clientMaxWindowBits} offered: current value is ${clientBits}`,
      );
    }
  }
  return {
    serverNoContextTakeover: answer.has("server_no_context_takeover"),
    clientNoContextTakeover: clientNoContextTakeover || answer.has("client_no_context_takeover"),
    serverMaxWindowBits: serverBits === undefined ? 15 : Number(serverBits),
    // Not answered: we stay within what we offered (RFC 7692 7.1.2.2 calls a value a hint).
    clientMaxWindowBits: clientBits !== undefined
      ? Number(clientBits)
      : typeof clientMaxWindowBits === "number"
      ? clientMaxWindowBits
      : 15,
  };
}

/** The settings of one direction's codec, from {@linkcode deflateDirections}. */
export interface DeflateDirection {
  /** Each message is deflated on its own: the inflater keeps no window. */
  noContextTakeover: boolean;
  /** The largest window the deflater of this direction may use, 8 to 15. */
  maxWindowBits: number;
}

/**
 * Splits agreed parameters into what this endpoint's inflater (the peer's
 * messages) and deflater (its own) must honour.
 *
 * @param params The agreed parameters.
 * @param role This endpoint's role.
 * @returns The settings for inflating received messages and deflating sent ones.
 *
 * @example A client's view
 * ```ts
 * import { deflateDirections } from "./permessage_deflate.ts";
 * import assert from "node:assert/strict";
 *
 * const { inflate, deflate } = deflateDirections({
 *   serverNoContextTakeover: false,
 *   clientNoContextTakeover: true,
 *   serverMaxWindowBits: 15,
 *   clientMaxWindowBits: 10,
 * }, "client");
 * assert.deepEqual(inflate, { noContextTakeover: false, maxWindowBits: 15 });
 * assert.deepEqual(deflate, { noContextTakeover: true, maxWindowBits: 10 });
 * ```
 */
export function deflateDirections(
  params: DeflateParams,
  role: "client" | "server",
): { inflate: DeflateDirection; deflate: DeflateDirection } {
  const server = {
    noContextTakeover: params.serverNoContextTakeover,
    maxWindowBits: params.serverMaxWindowBits,
  };
  const client = {
    noContextTakeover: params.clientNoContextTakeover,
    maxWindowBits: params.clientMaxWindowBits,
  };
  return role === "client"
    ? { inflate: server, deflate: client }
    : { inflate: client, deflate: server };
}

const OFFER_PARAMS = new Set([
  "server_no_context_takeover",
  "client_no_context_takeover",
  "server_max_window_bits",
  "client_max_window_bits",
]);

/** Checks one permessage-deflate element's parameters (RFC 7692 7.1.1, 7.1.2) into a map. */
function deflateParamMap(
  element: ExtensionElement,
  side: "offer" | "response",
): Map<string, string | true> {
  const map = new Map<string, string | true>();
  const fail = (what: string, value: string): never => {
    throw new ExtensionNegotiationError(
      `Cannot accept the permessage-deflate ${side} as ${what}: current value is ${value}`,
    );
  };
  for (const [name, value] of element.params) {
    if (!OFFER_PARAMS.has(name)) fail("a parameter is unknown", name);
    if (map.has(name)) fail("a parameter is repeated", name);
    if (name.endsWith("_no_context_takeover")) {
      if (value !== true) fail(`${name} takes no value`, `${name}=${value}`);
    } else if (value === true) {
      // Only an offer's client_max_window_bits may come without a value.
      if (side === "response" || name === "server_max_window_bits") {
        fail(`${name} needs a value`, name);
      }
    } else if (!/^[1-9][0-9]?$/.test(value) || Number(value) < 8 || Number(value) > 15) {
      fail(`${name} is not 8 to 15`, `${name}=${value}`);
    }
    map.set(name, value);
  }
  return map;
}

function checkBits(name: string, bits: number): number {
  if (!Number.isInteger(bits) || bits < 8 || bits > 15) {
    throw new RangeError(
      `Cannot use ${name} as it is not an integer from 8 to 15: current value is ${bits}`,
    );
  }
  return bits;
}
