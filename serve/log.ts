/**
 * The echo server: what the echo server's log lines show of what a
 * client sent. A client controls its request target, its headers, its
 * subprotocols and its close reason, and a log is read on a terminal, so:
 *
 * - control characters (C0, DEL, C1, line separators and bidi overrides)
 *   are shown escaped, `\x1b` as the four characters `\x1b`, and a
 *   backslash as `\\`: a client cannot move the cursor, recolour the
 *   terminal or forge a log line;
 * - each such text is cut at {@linkcode MAX_SHOWN} characters;
 * - credentials are masked: the values of query parameters named like a
 *   credential (`token`, `key`, `auth`, `session`...) and a subprotocol that
 *   carries a bearer token (a common way to pass one from a browser).
 *
 * The server itself also refuses control bytes where HTTP forbids them
 * ({@linkcode controlByte}), so these are the second line of defence.
 *
 * @module
 */

import { isSecretName } from "../util/url.ts";

/** The most characters of one client-controlled text a log line shows. */
export const MAX_SHOWN = 256;

/** Characters a terminal may act on, or that make a line read other than it is. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
// deno-lint-ignore no-control-regex -- as above
const CONTROL_OR_BACKSLASH = /[\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

function escapeOne(char: string): string {
  if (char === "\\") return "\\\\";
  const code = char.charCodeAt(0);
  return code < 0x100
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}

function cut(text: string): string {
  return text.length <= MAX_SHOWN
    ? text
    : `${text.slice(0, MAX_SHOWN)}... (${text.length} characters)`;
}

/**
 * A client's text as a log line shows it: control characters and
 * backslashes escaped, cut at {@linkcode MAX_SHOWN} characters.
 *
 * @param text What the client sent.
 * @returns The text, safe to print.
 */
export function shown(text: string): string {
  return cut(text).replace(CONTROL_OR_BACKSLASH, escapeOne);
}

/**
 * A client's text in double quotes, as a log line shows it: as
 * {@linkcode shown}, with a double quote escaped too.
 *
 * @param text What the client sent.
 * @returns The quoted text, safe to print.
 */
export function quoted(text: string): string {
  return `"${shown(text).replaceAll('"', '\\"')}"`;
}

/**
 * A message that quotes a client's text (an error's message, in which
 * values are already quoted with their backslashes escaped): only its
 * control characters escaped, and query credentials masked.
 *
 * @param text The message.
 * @returns The message, safe to print.
 */
export function shownMessage(text: string): string {
  return maskQuery(text).replace(CONTROL, escapeOne);
}

/**
 * A request target (path and query) as a log line shows it: the values of
 * credential query parameters as `***`, then {@linkcode shown}.
 *
 * @param target The request target.
 * @returns The target, safe to print.
 */
export function shownTarget(target: string): string {
  return shown(maskQuery(target));
}

/**
 * A subprotocol as a log line shows it: `***` for one that carries a
 * credential (named like one, with `bearer`, or a JSON Web Token).
 *
 * @param protocol The subprotocol.
 * @returns The subprotocol, safe to print.
 */
export function shownProtocol(protocol: string): string {
  return isSecretName(protocol) || /bearer|(^|\.)eyJ/i.test(protocol) ? "***" : shown(protocol);
}

/**
 * Where `text` holds a control byte that HTTP forbids: any C0 byte or DEL,
 * or (for a header value, where RFC 9110 allows it) any but the tab.
 *
 * @param text A request target or a header value, one character per byte.
 * @param allowTab Whether a tab is allowed (in a header value).
 * @returns The byte and its offset, or undefined when there is none.
 */
export function controlByte(
  text: string,
  allowTab: boolean,
): { byte: number; at: number } | undefined {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if ((code < 0x20 && !(allowTab && code === 9)) || code === 0x7f) return { byte: code, at: i };
  }
  return undefined;
}

/**
 * The message of what was thrown.
 *
 * @param error What was thrown.
 * @returns Its message, or it as a string.
 */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Masks the values of credential query parameters in `text` (a target, or a message quoting one). */
function maskQuery(text: string): string {
  return text.replace(/([?&;])([^=&;#\s"]*)=([^&;#\s"]*)/g, (all, sep: string, name: string) => {
    let decoded = name;
    try {
      decoded = decodeURIComponent(name);
    } catch { /* not percent-encoded as it should be: test it as it is */ }
    return isSecretName(decoded) ? `${sep}${name}=***` : all;
  });
}
