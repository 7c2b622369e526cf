/**
 * Layer 2: the socket side of opening wsbeat's own transport. Feature
 * detection of `Deno.connect` (the only way this module touches `Deno.*`),
 * the connection (TCP to the server or through an HTTP proxy, then TLS),
 * reading the server's handshake answer, and naming a failure: every error of the socket, TLS or the handshake becomes a
 * {@linkcode ConnectError} whose `kind` says why.
 *
 * @module
 */

import { ConnectError, ProtocolError } from "./errors.ts";
import { checkResponse, HandshakeError } from "./handshake.ts";
import { readHttpHead } from "./http.ts";
import { openTunnel, proxyAddress } from "./proxy.ts";
import { maskUrl } from "./url.ts";

export interface DenoNet {
  connect(options: { hostname: string; port: number; signal?: AbortSignal }): Promise<Deno.TcpConn>;
  startTls(conn: Deno.Conn, options: Deno.StartTlsOptions): Promise<Deno.TlsConn>;
  connectTls(options: Deno.ConnectTlsOptions & Partial<Deno.TlsCertifiedKeyPem>): Promise<
    Deno.TlsConn
  >;
}

export function denoNet(): DenoNet | undefined {
  const deno = (globalThis as { Deno?: Partial<DenoNet> }).Deno;
  return typeof deno?.connect === "function" && typeof deno.startTls === "function"
    ? deno as DenoNet
    : undefined;
}

/** Whether this runtime has what {@linkcode TcpTransport} needs (`Deno.connect`). */
export function canUseTcp(): boolean {
  return denoNet() !== undefined;
}

/** Turns a failure of `Deno.connect`, TLS or the handshake into a {@linkcode ConnectError}. */
export function classify(url: string, error: unknown, tls: boolean): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof HandshakeError) {
    return new ConnectError(url, error.kind, error.message, {
      cause: error,
      ...(error.status === undefined ? {} : { status: error.status }),
    });
  }
  const e = error instanceof Error ? error : new Error(String(error));
  const text = e.message;
  if (e.name === "ConnectionRefused" || /refused/i.test(text)) {
    return new ConnectError(url, "refused", "connection refused", { cause: e });
  }
  if (/lookup address|name or service|name resolution|dns/i.test(text)) {
    return new ConnectError(url, "dns", "host name not found (DNS error)", { cause: e });
  }
  if (tls && (e.name === "InvalidData" || /certificate|tls|alert|handshake/i.test(text))) {
    const hint = /CertificateRequired|certificate required/i.test(text)
      ? "; the server requires a client certificate (cert and key)"
      : /UnknownIssuer|CaUsedAsEndEntity|certificate/i.test(text)
      ? "; to trust a private CA pass caCerts: [pem]"
      : "";
    if (/corrupt message|InvalidContentType/i.test(text)) {
      return new ConnectError(url, "tls", "the server does not speak TLS: use ws://", { cause: e });
    }
    return new ConnectError(url, "tls", `TLS failed (${text})${hint}`, { cause: e });
  }
  return new ConnectError(url, "network", text || "the connection failed before opening", {
    cause: e,
  });
}

/** TCP to the server, or to the proxy when there is one (its failures named as the proxy's). */
export async function connectTcp(
  net: DenoNet,
  hostname: string,
  port: number,
  signal: AbortSignal,
  proxy: URL | undefined,
  displayUrl: string,
): Promise<Deno.TcpConn> {
  if (!proxy) return await net.connect({ hostname, port, signal });
  try {
    return await net.connect({ ...proxyAddress(proxy), signal });
  } catch (error) {
    if (signal.aborted) throw error;
    const cause = classify(displayUrl, error, false);
    if (cause.kind !== "refused" && cause.kind !== "dns") throw error;
    throw new ConnectError(
      displayUrl,
      cause.kind,
      `the proxy ${maskUrl(proxy)}: ${
        cause.kind === "refused" ? "connection refused" : "host name not found (DNS error)"
      }`,
      { cause: error },
    );
  }
}

/** Where and how {@linkcode openConnection} connects. */
export interface OpenOptions {
  /** The server's URL (`ws:` or `wss:`). */
  url: URL;
  /** The URL as errors show it, credentials masked. */
  displayUrl: string;
  /** Extra CA certificates (PEM) for TLS. */
  caCerts: string[] | undefined;
  /** An HTTP proxy to tunnel through with CONNECT. */
  proxy?: URL | undefined;
  /** A client certificate and key (PEM) for TLS. */
  clientCert?: { cert: string; key: string } | undefined;
  /** Aborts the connecting. */
  signal: AbortSignal;
}

/**
 * Opens the connection a WebSocket handshake is then written on: TCP (with
 * `TCP_NODELAY`), to the server or through the proxy, and TLS for `wss:`
 * (ALPN `http/1.1`). `onConn` is told of each socket as it opens, so that an
 * abort can close it.
 */
export async function openConnection(
  net: DenoNet,
  options: OpenOptions,
  onConn: (conn: Deno.Conn) => void,
): Promise<Deno.Conn> {
  const { url, displayUrl, proxy, clientCert, caCerts, signal } = options;
  const tls = url.protocol === "wss:";
  const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port) || (tls ? 443 : 80);
  // Only connectTls can present a client certificate (startTls cannot).
  const withCert = tls && clientCert !== undefined && !proxy;
  let conn: Deno.Conn;
  if (withCert) {
    conn = await net.connectTls({
      hostname,
      port,
      caCerts,
      alpnProtocols: ["http/1.1"],
      ...clientCert,
    });
    onConn(conn);
    if (signal.aborted) throw signal.reason;
    await (conn as Deno.TlsConn).handshake();
    return conn;
  }
  const tcp = await connectTcp(net, hostname, port, signal, proxy, displayUrl);
  conn = tcp;
  onConn(conn);
  if (signal.aborted) throw signal.reason;
  tcp.setNoDelay(true);
  if (proxy) await openTunnel(conn, proxy, { hostname, port }, displayUrl);
  if (!tls) return conn;
  conn = await net.startTls(conn, { hostname, caCerts, alpnProtocols: ["http/1.1"] });
  onConn(conn);
  if (signal.aborted) throw signal.reason;
  await (conn as Deno.TlsConn).handshake();
  return conn;
}

/** What the server's handshake answer said, and the bytes that came after it. */
export interface HandshakeAnswer {
  /** The subprotocol it chose, or "". */
  protocol: string;
  /** The extensions it named, or "". */
  extensions: string;
  /** Bytes read past the answer's head: the first frames. */
  rest: Uint8Array;
}

/** Reads the server's answer to the opening handshake and checks it. */
export async function readHandshakeAnswer(
  conn: Deno.Conn,
  options: { accept: string; tls: boolean; displayUrl: string; protocols: string[] },
): Promise<HandshakeAnswer> {
  const { accept, tls, displayUrl, protocols } = options;
  let answer;
  try {
    answer = await readHttpHead(conn, {
      ended: (received) =>
        new ConnectError(
          displayUrl,
          "network",
          received === 0
            ? "the server closed the connection without answering the handshake"
            : "the server closed the connection in the middle of its handshake answer",
        ),
      first: (bytes) => {
        if (!tls && (bytes[0] === 0x15 || bytes[0] === 0x16)) {
          throw new ConnectError(
            displayUrl,
            "tls", // like the reverse mix-up: retrying cannot help
            "the server answered with TLS: use wss://",
          );
        }
      },
    });
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    throw new ConnectError(
      displayUrl,
      "handshake",
      error.message.replace(/^Protocol error: /, ""),
      { cause: error },
    );
  }
  return { ...checkResponse(answer.head, { accept, protocols }), rest: answer.rest };
}
