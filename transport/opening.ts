/**
 * The transport layer: the opening of wsbeat's own transport, apart from the
 * connection's I/O (`transport/socket.ts`). {@linkcode Opening} builds the
 * upgrade request (so that a bad header is a `TypeError` before any socket
 * exists), then opens the socket (`transport/tcp_connect.ts`: TCP, a proxy,
 * TLS), writes the request, reads the server's answer
 * (`transport/handshake_answer.ts`) and follows redirects
 * (`transport/redirect.ts`), until a 101 comes.
 *
 * @module
 */

import { writeAll } from "./frame_writer.ts";
import { acceptKey, buildClientRequest, generateKey, headerPairs } from "../protocol/handshake.ts";
import { compressionOffer } from "../protocol/deflate_extension.ts";
import { type DenoNet, openConnection } from "./tcp_connect.ts";
import { type HandshakeAnswer, readHandshakeAnswer } from "./handshake_answer.ts";
import { followRedirect } from "./redirect.ts";
import { emit, maskHead, type TraceListener } from "./trace.ts";
import { maskUrl } from "../util/url.ts";
import type { ClientCompressionOptions } from "../protocol/deflate_extension.ts";

/** What {@linkcode Opening} needs: where to connect, through what, and what to offer. */
export interface OpeningOptions {
  /** The `ws:` or `wss:` URL, already checked. */
  url: URL;
  /** The URL as errors show it, credentials masked. */
  displayUrl: string;
  /** Subprotocols to offer. */
  protocols: string[];
  /** Extra handshake headers, as the caller gave them (checked by `buildClientRequest`). */
  headers: HeadersInit | undefined;
  /** Extra CA certificates (PEM) for `wss:`. */
  caCerts: string[] | undefined;
  /** An HTTP proxy to tunnel through with CONNECT (see `transport/proxy.ts`). */
  proxy?: URL | undefined;
  /** A client certificate and key (PEM) for `wss:`, presented with `Deno.connectTls`. */
  clientCert?: { cert: string; key: string } | undefined;
  /** The proxy for a URL a redirect leads to (the environment's may differ per host). */
  proxyFor?: ((url: URL) => URL | undefined) | undefined;
  /** The `Origin` header to send. */
  origin?: string | undefined;
  /** The `User-Agent` to send unless `headers` has one. */
  userAgent?: string | undefined;
  /** How many redirects to follow (see `transport/redirect.ts`); 0 follows none. */
  maxRedirects?: number | undefined;
  /** A Unix socket to connect to instead of TCP (`ws+unix:`). */
  socketPath?: string | undefined;
  /** Told of each step of the opening (proxy, heads, redirects) and of received pings. */
  trace?: TraceListener | undefined;
  /** permessage-deflate to offer (`protocol/deflate_extension.ts`), or `undefined` for none. */
  compression?: Readonly<ClientCompressionOptions> | undefined;
}

/** The socket `Deno.connect` and its kin gave, and the server's 101 on it. */
export interface Opened {
  conn: Deno.Conn;
  answer: HandshakeAnswer;
}

/**
 * One connection's opening handshake, redirects included: see the module doc.
 *
 * @example
 * ```ts
 * import { Opening } from "./opening.ts";
 * import assert from "node:assert/strict";
 *
 * const url = new URL("ws://user:secret@127.0.0.1:9/feed");
 * assert.throws(
 *   () =>
 *     new Opening({
 *       url,
 *       displayUrl: "ws://user:***@127.0.0.1:9/feed",
 *       protocols: [],
 *       headers: { "Bad Name": "x" },
 *       caCerts: undefined,
 *     }),
 *   TypeError,
 * );
 * ```
 */
export class Opening {
  readonly #options: OpeningOptions;
  #key = generateKey();
  /** Sec-WebSocket-Extensions (permessage-deflate), when compression is on. */
  readonly #offer: string | undefined;
  /** The first request, built at once so that a bad header throws; dropped once written. */
  #request: Uint8Array | undefined;
  /** The URL as messages show it (credentials masked): a redirect's, once followed. */
  displayUrl: string;
  /** Whether the URL being opened is `wss:`. */
  tls: boolean;

  /**
   * Builds the request.
   *
   * @param options Where to connect and what to offer.
   * @throws {TypeError} If a header is invalid or one the handshake sets itself.
   */
  constructor(options: OpeningOptions) {
    this.#options = options;
    this.displayUrl = options.displayUrl;
    this.tls = options.url.protocol === "wss:";
    if (options.compression) this.#offer = compressionOffer(options.compression);
    this.#request = this.#buildRequest(options.url, options.headers);
  }

  /**
   * Opens the socket and runs the handshake, following redirects, until a 101.
   *
   * @param net `Deno.connect` and its kin.
   * @param signal Aborts the opening.
   * @param onConn Told of each socket as soon as it exists, so that an abort can close it.
   * @returns The socket and the server's 101.
   * @throws What a step failed with (`transport/tcp_connect.ts`'s `connectFailure` names it).
   */
  async run(
    net: DenoNet,
    signal: AbortSignal,
    onConn: (conn: Deno.Conn | undefined) => void,
  ): Promise<Opened> {
    const options = this.#options;
    const trace = options.trace;
    let url = options.url;
    let headers = headerPairs(options.headers);
    let proxy = options.proxy;
    let socketPath = options.socketPath;
    const visited = [url.href];
    while (true) {
      const displayUrl = this.displayUrl;
      const opening = { ...options, url, displayUrl, proxy, socketPath, signal };
      const conn = await openConnection(net, opening, onConn);
      const accept = await acceptKey(this.#key);
      if (signal.aborted) throw signal.reason;
      const request = this.#request ?? this.#buildRequest(url, headers);
      emit(trace, { step: "request", detail: maskHead(new TextDecoder().decode(request)) });
      await writeAll(conn, request);
      this.#request = undefined;
      const answer = await readHandshakeAnswer(conn, {
        accept,
        tls: this.tls,
        displayUrl,
        protocols: options.protocols,
        deflate: options.compression,
      });
      const { status } = answer.response;
      emit(trace, { step: "response", status, detail: maskHead(answer.head) });
      if (answer.location === undefined) return { conn, answer };
      const next = followRedirect(url, answer, visited, options.maxRedirects ?? 0, displayUrl);
      try {
        conn.close();
      } catch { /* closed by the server */ }
      onConn(undefined);
      emit(trace, { step: "redirect", status, detail: `${status} to ${maskUrl(next.url)}` });
      if (next.crossOrigin) socketPath = undefined;
      headers = next.headers(headers);
      proxy = options.proxyFor ? options.proxyFor(next.url) : proxy;
      url = next.url;
      this.tls = url.protocol === "wss:";
      this.displayUrl = maskUrl(url);
      this.#key = generateKey();
    }
  }

  #buildRequest(url: URL, headers: HeadersInit | undefined): Uint8Array {
    const { protocols, origin, userAgent } = this.#options;
    return buildClientRequest({
      url,
      key: this.#key,
      protocols,
      headers,
      ...(origin === undefined ? {} : { origin }),
      ...(userAgent === undefined ? {} : { userAgent }),
      ...(this.#offer === undefined ? {} : { extensions: this.#offer }),
    });
  }
}
