/**
 * Layer 2: the socket side of opening wsbeat's own transport. Feature
 * detection of `Deno.connect` (the only way this module touches `Deno.*`),
 * the TCP connection (to the server, or to an HTTP proxy), writing a buffer
 * whole, and naming a failure: every error of the socket, TLS or the
 * handshake becomes a {@linkcode ConnectError} whose `kind` says why.
 *
 * @module
 */

import { ConnectError } from "./errors.ts";
import { HandshakeError } from "./handshake.ts";
import { proxyAddress } from "./proxy.ts";
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

export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.byteLength;) {
    offset += await conn.write(offset === 0 ? data : data.subarray(offset));
  }
}
