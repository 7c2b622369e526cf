/**
 * WebSocket URLs: checking one as the Web `WebSocket` constructor does, and
 * showing one without its credentials. Every layer that prints a URL (errors,
 * status lines, logs) shows it through {@linkcode maskUrl}.
 *
 * @module
 */

/** Names of query parameters and headers whose values are credentials. */
const SECRET = /token|key|secret|signature|password|passwd|auth|cookie|session|credential/i;

/**
 * Whether a query parameter or header of this name carries a credential.
 *
 * @param name The parameter or header name.
 * @returns `true` for names such as `token`, `api_key`, `Authorization`, `Cookie`.
 *
 * @example
 * ```ts
 * import { isSecretName } from "./url.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isSecretName("X-Api-Key"), true);
 * assert.equal(isSecretName("channel"), false);
 * ```
 */
export function isSecretName(name: string): boolean {
  return SECRET.test(name);
}

/**
 * The URL as it may be shown: the password replaced by `***` (the user name
 * too when there is no password, as in `wss://TOKEN@host`), and the values
 * of query parameters whose names say token, key, secret, signature,
 * password, auth, cookie or session replaced by `***`. Text that does not
 * parse as a URL is masked the same way, as far as its shape allows.
 *
 * @param url The URL.
 * @returns The URL without credentials.
 *
 * @example
 * ```ts
 * import { maskUrl } from "./url.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   maskUrl("wss://me:hunter2@example.com/feed?token=abc&channel=btc"),
 *   "wss://me:***@example.com/feed?token=***&channel=btc",
 * );
 * assert.equal(maskUrl("wss://TOKEN@example.com/"), "wss://***@example.com/");
 * assert.equal(maskUrl("ws://me:pw@exa mple/?key=k"), "ws://me:***@exa mple/?key=***");
 * ```
 */
export function maskUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return maskText(String(url));
  }
  if (parsed.password) parsed.password = "***";
  else if (parsed.username) parsed.username = "***";
  if (parsed.search) {
    const params = [...parsed.searchParams.keys()];
    if (params.some(isSecretName)) {
      const masked = new URLSearchParams();
      for (const [name, value] of parsed.searchParams) {
        masked.append(name, isSecretName(name) ? "***" : value);
      }
      parsed.search = masked.toString().replaceAll("%2A%2A%2A", "***");
    }
  }
  return parsed.href;
}

/** Masks user info and secret query values in text that is not a valid URL. */
function maskText(text: string): string {
  return text
    .replace(/(\/\/[^/?#@\s:]*):[^/?#@\s]*@/g, "$1:***@")
    .replace(/(\/\/)[^/?#@\s:]+@/g, "$1***@")
    .replace(
      /([?&;]([^=&#\s]*))=([^&#\s]*)/g,
      (all, head, name) => isSecretName(name) ? `${head}=***` : all,
    );
}

/**
 * Checks a WebSocket URL as the Web `WebSocket` constructor does: `ws:` and
 * `wss:` (or `http:`/`https:`, mapped to them), no fragment.
 *
 * @param url The URL.
 * @returns The parsed URL, with a `ws:` or `wss:` scheme.
 * @throws {DOMException} A `SyntaxError` naming the value (credentials
 *   masked) if the URL is invalid, has another scheme, or has a fragment.
 *
 * @example
 * ```ts
 * import { checkUrl } from "./url.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(checkUrl("https://example.com/feed").href, "wss://example.com/feed");
 * assert.throws(() => checkUrl("ftp://example.com/"), { name: "SyntaxError" });
 * ```
 */
export function checkUrl(url: string | URL): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DOMException(`Invalid URL: '${maskUrl(String(url))}'`, "SyntaxError");
  }
  if (parsed.protocol === "http:" || parsed.protocol === "https:") {
    parsed = new URL(parsed.href.replace(/^http/, "ws"));
  }
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new DOMException(
      `Only ws & wss schemes are allowed in a WebSocket URL: received ${parsed.protocol}`,
      "SyntaxError",
    );
  }
  if (parsed.hash) {
    throw new DOMException(
      `Fragments are not allowed in a WebSocket URL: ${maskUrl(parsed)}`,
      "SyntaxError",
    );
  }
  return parsed;
}
