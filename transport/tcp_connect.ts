/**
 * The transport layer: the socket side of opening wsbeat's own transport. Feature
 * detection of `Deno.connect` (the only way this module touches `Deno.*`),
 * the connection (TCP to the server or through an HTTP proxy, then TLS),
 * reading the server's handshake answer, and naming a failure: every error
 * of the socket, TLS or the handshake becomes a {@linkcode ConnectError}
 * whose `kind` comes from the error's class and the step that failed
 * ({@linkcode classify}), and a connect timeout is named for the step it
 * stopped. No socket outlives a failed or aborted opening (see
 * {@linkcode openConnection} for the one gap, Deno's).
 *
 * @module
 */

import { ConnectError } from "../util/errors.ts";
import { HandshakeError } from "../protocol/handshake.ts";
import { openTunnel, proxyAddress } from "./proxy.ts";
import { openSocksTunnel, resolveForSocks } from "./socks.ts";
import { emit, type TraceListener } from "./trace.ts";

// Reading the server's answer lives in its own module; re-exported for the callers of old.
export { type HandshakeAnswer, readHandshakeAnswer } from "./handshake_answer.ts";
import { maskUrl } from "../util/url.ts";

export interface DenoNet {
  connect(options: { hostname: string; port: number; signal?: AbortSignal }): Promise<Deno.TcpConn>;
  /** A Unix socket connection (`ws+unix:`). */
  connect(options: { transport: "unix"; path: string }): Promise<Deno.UnixConn>;
  /** The resolver `socks5:` proxies use (the client resolves the server's name). */
  resolveDns?(name: string, type: "A" | "AAAA"): Promise<string[]>;
  startTls(conn: Deno.Conn, options: Deno.StartTlsOptions): Promise<Deno.TlsConn>;
  connectTls(options: Deno.ConnectTlsOptions & Partial<Deno.TlsCertifiedKeyPem>): Promise<
    Deno.TlsConn
  >;
  /** The runtime's error classes (`Deno.errors`), to tell its errors apart by type. */
  errors?: Partial<Record<string, abstract new (...args: never[]) => Error>>;
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

/**
 * The step of opening a connection that was under way when it failed:
 * `"connect"` (DNS and TCP to the server), `"proxy"` (DNS and TCP to the
 * proxy), `"tunnel"` (the proxy's answer to CONNECT), `"tls"` (the TLS
 * handshake) or `"upgrade"` (the WebSocket opening handshake, over TLS for
 * `wss:`).
 */
export type OpenPhase = "connect" | "proxy" | "tunnel" | "tls" | "upgrade";

/** Whether `error` is an instance of the runtime's error class `name` (`Deno.errors[name]`). */
function isDenoError(error: unknown, name: string): boolean {
  const type = denoNet()?.errors?.[name];
  return type !== undefined && error instanceof type;
}

/** Whether `error` is of one of the runtime's own error classes (`Deno.errors.*`). */
function isAnyDenoError(error: unknown): boolean {
  const errors = denoNet()?.errors ?? {};
  return Object.values(errors).some((type) => type !== undefined && error instanceof type);
}

/**
 * What to add to a TLS failure so that the reader knows what to do. Only the
 * advice comes from the runtime's words (rustls names the alert or the
 * certificate problem in its message and nowhere else); the kind never does.
 */
function tlsHint(text: string): string {
  if (/CertificateRequired/i.test(text)) {
    return "; the server requires a client certificate (cert and key)";
  }
  if (/alert/i.test(text)) {
    // The server ended the handshake (TLS 1.2 says only HandshakeFailure when it wanted a
    // client certificate and got none).
    return "; the server refused the TLS handshake: it may require a client certificate (cert and key)";
  }
  if (/UnknownIssuer|CaUsedAsEndEntity/i.test(text)) {
    return "; to trust a private CA pass caCerts: [pem]";
  }
  if (/not valid for name/i.test(text)) {
    return "; connect with a host name the certificate lists";
  }
  return "";
}

/**
 * Turns a failure of `Deno.connect`, TLS or the handshake into a
 * {@linkcode ConnectError}. The kind comes from the error's class or code
 * and from the step that failed, never from the words of its message:
 *
 * - `Deno.errors.ConnectionRefused` (code `ECONNREFUSED`): `"refused"`;
 * - a failure of `Deno.connect` that is none of the runtime's error classes
 *   (a failed name lookup is a plain `Error`), or `Deno.errors.NotFound`:
 *   `"dns"`;
 * - any failure of the TLS handshake (a certificate not trusted or not
 *   valid for the host, an alert, the server closing the connection), and a
 *   `Deno.errors.InvalidData` read or written over TLS after it (an alert,
 *   such as a client certificate the server wanted): `"tls"`;
 * - anything else: `"network"`.
 *
 * @param url The URL as errors show it.
 * @param error What was thrown.
 * @param tls Whether the connection is (or was to be) TLS.
 * @param phase The step that failed; the handshake's by default.
 */
export function classify(
  url: string,
  error: unknown,
  tls: boolean,
  phase: OpenPhase = "upgrade",
): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof HandshakeError) {
    return new ConnectError(url, error.kind, error.message, {
      cause: error,
      ...(error.status === undefined ? {} : { status: error.status }),
    });
  }
  const e = error instanceof Error ? error : new Error(String(error));
  const text = e.message;
  const code = (e as { code?: unknown }).code;
  if (isDenoError(e, "ConnectionRefused") || code === "ECONNREFUSED") {
    return new ConnectError(url, "refused", "connection refused", { cause: e });
  }
  const connecting = phase === "connect" || phase === "proxy";
  if (connecting && (isDenoError(e, "NotFound") || !isAnyDenoError(e))) {
    return new ConnectError(url, "dns", "host name not found (DNS error)", { cause: e });
  }
  if (phase === "tls" || (tls && isDenoError(e, "InvalidData"))) {
    if (/corrupt message|InvalidContentType/i.test(text)) {
      return new ConnectError(url, "tls", "the server does not speak TLS: use ws://", { cause: e });
    }
    if (closedByPeer(e)) {
      return new ConnectError(
        url,
        "tls",
        "the server closed the connection during the TLS handshake; it may require a client " +
          "certificate (cert and key), or not speak TLS on that port",
        { cause: e },
      );
    }
    return new ConnectError(url, "tls", `TLS failed (${text})${tlsHint(text)}`, { cause: e });
  }
  if (tls && closedByPeer(e)) {
    return new ConnectError(
      url,
      "network",
      "the server closed the connection without answering the handshake; over TLS, it may " +
        "require a client certificate (cert and key)",
      { cause: e },
    );
  }
  return new ConnectError(url, "network", text || "the connection failed before opening", {
    cause: e,
  });
}

/** Whether the peer closed or reset the connection under a read or a write. */
function closedByPeer(error: Error): boolean {
  return ["UnexpectedEof", "ConnectionReset", "BrokenPipe"].some((name) =>
    isDenoError(error, name)
  );
}

/**
 * What the transport rejects `opened` with when opening failed: the
 * classified error; or, when the connecting was aborted, the abort's reason,
 * except that a connect timeout is named for the step it stopped (see
 * {@linkcode openConnection}).
 *
 * @param url The URL as errors show it.
 * @param error What opening threw.
 * @param signal The connecting's signal.
 * @param tls Whether the connection is TLS.
 */
export function connectFailure(
  url: string,
  error: unknown,
  signal: AbortSignal,
  tls: boolean,
): Error {
  if (!signal.aborted) return classify(url, error, tls);
  if (error instanceof ConnectError && error.kind === "timeout" && error.cause === signal.reason) {
    return error;
  }
  // The transport aborts with an Error (the client turns any other reason into one).
  return signal.reason as Error;
}

/** A failure of TCP to the proxy, named as the proxy's. */
function proxyFailure(url: string, proxy: URL, error: unknown): ConnectError {
  const cause = classify(url, error, false, "proxy");
  const detail = cause.kind === "refused"
    ? "connection refused"
    : cause.kind === "dns"
    ? "host name not found (DNS error)"
    : (cause.cause as Error).message;
  return new ConnectError(url, cause.kind, `the proxy ${maskUrl(proxy)}: ${detail}`, {
    cause: error,
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
  if (!proxy) {
    try {
      return await net.connect({ hostname, port, signal });
    } catch (error) {
      if (signal.aborted) throw error;
      throw classify(displayUrl, error, false, "connect");
    }
  }
  try {
    return await net.connect({ ...proxyAddress(proxy), signal });
  } catch (error) {
    if (signal.aborted) throw error;
    throw proxyFailure(displayUrl, proxy, error);
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
  /** A proxy to tunnel through: `http:`, `https:` (CONNECT), `socks5:`, `socks5h:`. */
  proxy?: URL | undefined;
  /** A Unix socket to connect to instead of TCP (`ws+unix:`). */
  socketPath?: string | undefined;
  /** Told of the proxy step. */
  trace?: TraceListener | undefined;
  /** A client certificate and key (PEM) for TLS. */
  clientCert?: { cert: string; key: string } | undefined;
  /**
   * The client's `connectTimeout` in milliseconds, for the message of a
   * timeout: `connect()` passes it along with the transport's options.
   */
  connectTimeout?: number | undefined;
  /** Aborts the connecting. */
  signal: AbortSignal;
}

/** Closes a connection, if it is still open. */
function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch { /* already closed, or consumed by startTls */ }
}

/**
 * Settles as `promise` does, or rejects with the signal's reason as soon as
 * it aborts, for the steps that take no signal (`Deno.connectTls`,
 * `Deno.startTls`, the TLS handshake). A connection that arrives after the
 * abort is closed.
 */
function unlessAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  release: (value: T) => void,
): Promise<T> {
  if (signal.aborted) {
    promise.then(release, () => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.then(release, () => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The detail of a connect timeout that stopped `phase`. */
function timeoutDetail(phase: OpenPhase, proxy: URL | undefined, ms: number | undefined): string {
  const within = `within ${ms === undefined ? "the connect timeout" : `${ms} ms`} (connectTimeout)`;
  const via = proxy ? `the proxy ${maskUrl(proxy)}` : "";
  switch (phase) {
    case "connect":
      return `the TCP connection to the server did not open ${within}`;
    case "proxy":
      return `the TCP connection to ${via} did not open ${within}`;
    case "tunnel":
      return `${via} did not answer CONNECT ${within}`;
    case "tls":
      return `the server did not complete the TLS handshake ${within}; is it speaking TLS on that port?`;
    case "upgrade":
      return `no handshake ${within}; is the server up and speaking WebSocket on that port?`;
  }
}

/**
 * Opens the connection a WebSocket handshake is then written on: TCP (with
 * `TCP_NODELAY`), to the server or through the proxy, and TLS for `wss:`
 * (ALPN `http/1.1`). `onConn` is told of each socket as it opens, so that an
 * abort can close it.
 *
 * Nothing outlives a failure: when a step fails or `signal` aborts (a
 * `connectTimeout`, the caller's signal, `close()`), the socket open so far
 * is closed before the promise rejects, and a socket that a step without a
 * signal (`Deno.connectTls`) delivers later is closed when it arrives. A
 * connect timeout rejects with a {@linkcode ConnectError} of kind
 * `"timeout"` named for the step it stopped (the proxy's CONNECT, the TLS
 * handshake, ...), its `cause` the signal's reason; any other abort rejects
 * with the signal's reason.
 *
 * One gap is Deno's (2.9.6): a TLS handshake cannot be cancelled. Closing a
 * `Deno.TlsConn` whose handshake is under way rejects the handshake at once,
 * but the runtime keeps the socket until the server answers or closes it
 * (rustls-tokio-stream's `TlsStream` dropped while handshaking awaits its
 * handshake task instead of aborting it).
 *
 * `node:tls` over a stream around our own `Deno.connect` socket would close
 * it at once, but it does not trust as `Deno.connectTls` does, so it is not
 * used: on Deno 2.9.6 it accepts an X.509 v1 certificate that names a CA
 * given in `ca` (our `caCerts`) as its issuer without checking its
 * signature (a forgery), and a certificate that names the host only in its
 * subject CN; tests/connect_errors_test.ts holds both cases.
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
  // Only connectTls can present a client certificate (startTls ignores cert and key).
  const withCert = tls && clientCert !== undefined && !proxy;
  let phase: OpenPhase = proxy ? "proxy" : "connect";
  let conn: Deno.Conn | undefined;
  const hold = (opened: Deno.Conn) => {
    conn = opened;
    onConn(opened);
  };
  // Close the socket as soon as the connecting is aborted, whatever step it is in.
  const onAbort = () => closeQuietly(conn);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (withCert) {
      hold(
        await unlessAborted(
          net.connectTls({ hostname, port, caCerts, alpnProtocols: ["http/1.1"], ...clientCert }),
          signal,
          closeQuietly,
        ),
      );
      phase = "tls";
      await unlessAborted((conn as Deno.TlsConn).handshake(), signal, () => {});
      return conn!;
    }
    if (options.socketPath !== undefined) {
      const unix = await net.connect({ transport: "unix", path: options.socketPath });
      hold(unix);
      if (signal.aborted) throw signal.reason;
      return unix;
    }
    const tcp = await connectTcp(net, hostname, port, signal, proxy, displayUrl);
    hold(tcp);
    if (signal.aborted) throw signal.reason;
    tcp.setNoDelay(true);
    if (proxy) {
      const target = `${hostname}:${port}`;
      emit(options.trace, { step: "proxy", detail: `${maskUrl(proxy)} to ${target}` });
      let via: Deno.Conn = tcp;
      if (proxy.protocol === "https:") {
        phase = "tls";
        via = await unlessAborted(
          net.startTls(tcp, { hostname: proxyAddress(proxy).hostname, caCerts }),
          signal,
          closeQuietly,
        );
        hold(via);
        await unlessAborted((via as Deno.TlsConn).handshake(), signal, () => {});
      }
      phase = "tunnel";
      if (proxy.protocol === "socks5:" || proxy.protocol === "socks5h:") {
        const address = proxy.protocol === "socks5h:" ? hostname : await resolveForSocks(
          hostname,
          (name, type) => net.resolveDns!(name, type),
        ).catch((error) => {
          throw classify(displayUrl, error, false, "connect");
        });
        await openSocksTunnel(via, proxy, { hostname: address, port }, displayUrl);
      } else {
        await openTunnel(via, proxy, { hostname, port }, displayUrl);
      }
      if (via !== tcp) return via; // https: proxies carry ws: only (see checkProxyFor)
    }
    if (!tls) return tcp;
    phase = "tls";
    hold(
      await unlessAborted(
        net.startTls(tcp, { hostname, caCerts, alpnProtocols: ["http/1.1"] }),
        signal,
        closeQuietly,
      ),
    );
    await unlessAborted((conn as Deno.TlsConn).handshake(), signal, () => {});
    return conn!;
  } catch (error) {
    closeQuietly(conn);
    if (signal.aborted) {
      const reason = signal.reason;
      if (reason instanceof ConnectError && reason.kind === "timeout") {
        throw new ConnectError(
          displayUrl,
          "timeout",
          timeoutDetail(phase, proxy, options.connectTimeout),
          { cause: reason },
        );
      }
      throw reason;
    }
    if (phase === "tunnel" && !(error instanceof ConnectError)) {
      throw new ConnectError(
        displayUrl,
        "network",
        `the proxy ${maskUrl(proxy!)} failed during CONNECT: ${
          error instanceof Error ? error.message : String(error)
        }`,
        { cause: error },
      );
    }
    throw classify(displayUrl, error, tls, phase);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
