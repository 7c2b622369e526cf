/**
 * The transport layer: the runtime's Web `WebSocket` as a transport, for browsers, Node
 * 22+, Bun, or Deno with `transport: "native"`. What it cannot do, and so what
 * the client cannot do on it (measured on Deno 2.9.6):
 *
 * - send a ping frame: the heartbeat sends an application message instead;
 * - stop reading: a consumer that falls behind gets the connection closed
 *   (see `maxQueuedMessages`) rather than TCP flow control;
 * - release a dead connection: after `abort()` the client reports the close
 *   at once, but the runtime may hold the socket until TCP gives up;
 * - limit a message's size, or refuse an invalid handshake.
 *
 * Some runtimes also hide why a connection failed. Deno and Bun name the
 * HTTP status of a refused upgrade in the error's message, and Bun puts the
 * socket error's code (`ECONNREFUSED`, `ENOTFOUND`) on the error; Node 22 and
 * 24 say only "Received network error or non-101 status code.", and browsers
 * nothing at all. Then, so that an authentication failure is not retried
 * forever as a network error, the transport asks the server directly: a
 * plain `GET` of the same URL with the same headers ({@linkcode StatusProbe}).
 * Its answer gives the kind: no TCP peer (`refused`, `dns`), an HTTP status
 * that the upgrade would have had too (401, 403, 404, 5xx: kind `status`),
 * or a live server whose answer says nothing about the upgrade (200, 400,
 * 426, or an opaque answer in a browser page of another origin: kind
 * `rejected`, which `reconnecting()` retries only a few times).
 *
 * @module
 */

import { ConnectError } from "../util/errors.ts";
import type { Transport, TransportEnd, TransportHandler } from "./transport.ts";

const CONNECTING = 0;
const OPEN = 1;
/**
 * Milliseconds to wait for the `close` event that the WebSocket standard
 * queues after a failed connection. Node 22 never fires it (undici,
 * nodejs/undici#3546: still so on Node 22.23.3; Node 24.21.0 and Bun fire
 * 1006 right after the error), and `connect()` must settle anyway.
 */
const CLOSE_GRACE = 100;
/** Milliseconds a status probe may take; a connect timeout also ends it. */
const PROBE_TIMEOUT = 2_000;

/**
 * Where to send the status probe after a connect failure whose cause the
 * runtime hid (see the module doc).
 */
export interface StatusProbe {
  /** The URL the socket was opened with (`ws:` or `wss:`). */
  url: URL;
  /** The handshake's extra headers, sent with the probe too. */
  headers?: HeadersInit;
}

const DNS_CODES: ReadonlySet<string> = new Set([
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_NONAME",
  "EAI_FAIL",
]);
const TLS_CODE = /^(CERT_|ERR_TLS|ERR_SSL|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/;

/** The socket error's code: on the error itself (Bun), or on its cause (Node's fetch). */
function errorCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = e?.code ?? e?.cause?.code;
  return typeof code === "string" ? code : undefined;
}

/** The kind an error code names, if it names one. */
function kindOfCode(
  url: string,
  code: string | undefined,
  cause: unknown,
): ConnectError | undefined {
  if (code === "ECONNREFUSED") {
    return new ConnectError(url, "refused", "connection refused", { cause });
  }
  if (code !== undefined && DNS_CODES.has(code)) {
    return new ConnectError(url, "dns", "host name not found (DNS error)", { cause });
  }
  if (code !== undefined && TLS_CODE.test(code)) {
    return new ConnectError(
      url,
      "tls",
      `TLS failed (${code}): the runtime does not trust the server`,
      {
        cause,
      },
    );
  }
  return undefined;
}

/** Whether the runtime's error says nothing of the cause (Node's undici, browsers). */
function hidesCause(event: Event | undefined): boolean {
  const text = (event as ErrorEvent | undefined)?.message ?? "";
  return text === "" || /non-101 status code/i.test(text);
}

/** Turns the runtime's handshake error into a {@linkcode ConnectError}. */
function classify(url: string, event: Event | undefined): ConnectError {
  const cause = (event as ErrorEvent | undefined)?.error ?? event;
  const text = (event as ErrorEvent | undefined)?.message ?? "";
  const byCode = kindOfCode(url, errorCode(cause), cause);
  if (byCode) return byCode;
  const status = /status code:? *(\d{3})/i.exec(text);
  if (status) {
    const code = Number(status[1]);
    return new ConnectError(
      url,
      "status",
      `the server answered HTTP ${code} instead of switching protocols`,
      { cause, status: code },
    );
  }
  if (/dns error|failed to lookup|name resolution/i.test(text)) {
    return new ConnectError(url, "dns", "host name not found (DNS error)", { cause });
  }
  if (/tcp connect error|connection refused/i.test(text)) {
    return new ConnectError(url, "refused", "connection refused", { cause });
  }
  if (/certificate|tls|ssl|handshake failure/i.test(text)) {
    return new ConnectError(
      url,
      "tls",
      `TLS failed (${text.replace(/^.*?WebSocket: /, "")}); to trust a private CA pass ` +
        "caCerts: [pem], or run deno with --cert ca.pem",
      { cause },
    );
  }
  const detail = text.replace(/^.*?WebSocket: /, "") || "the connection failed before opening";
  return new ConnectError(url, "network", detail, { cause });
}

/** Statuses a plain GET may get from a live WebSocket endpoint: they say nothing of the upgrade. */
function saysNothing(status: number): boolean {
  return (status >= 200 && status < 300) || status === 400 || status === 405 || status === 426;
}

/**
 * Asks the server what the runtime would not say: a plain `GET` of the
 * handshake's URL. Resolves with a better error, or with `original` when the
 * probe learned nothing. Never rejects.
 */
async function probeStatus(
  displayUrl: string,
  probe: StatusProbe,
  original: ConnectError,
  signal: AbortSignal,
): Promise<ConnectError> {
  const url = new URL(probe.url);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.username = "";
  url.password = "";
  // In a page of another origin the answer is opaque, but it still proves a live server.
  const page = globalThis as { document?: unknown; location?: { origin?: string } };
  const crossOrigin = page.document !== undefined && page.location?.origin !== url.origin;
  const probing = new AbortController();
  const timer = setTimeout(() => probing.abort(), PROBE_TIMEOUT);
  const onAbort = () => probing.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const response = await fetch(url, {
      headers: probe.headers,
      signal: probing.signal,
      // A no-cors request must follow redirects (Chromium rejects "manual" there).
      ...(crossOrigin
        ? { mode: "no-cors" as const, redirect: "follow" as const }
        : { redirect: "manual" as const }),
    });
    await response.body?.cancel();
    const status = response.status;
    if (response.type === "opaque" || response.type === "opaqueredirect" || status === 0) {
      return new ConnectError(
        displayUrl,
        "rejected",
        "the server refused the WebSocket upgrade; this runtime hides the HTTP status " +
          "(a plain request was answered, with a status the page may not read)",
        { cause: original },
      );
    }
    if (saysNothing(status)) {
      return new ConnectError(
        displayUrl,
        "rejected",
        "the server refused the WebSocket upgrade; this runtime hides the HTTP status " +
          `(a plain GET of the same URL got HTTP ${status})`,
        { cause: original },
      );
    }
    return new ConnectError(
      displayUrl,
      "status",
      `the server answered HTTP ${status} to a plain GET of the same URL ` +
        "(this runtime hides the status of the upgrade itself)",
      { cause: original, status },
    );
  } catch (error) {
    if (signal.aborted) return original;
    const byCode = kindOfCode(displayUrl, errorCode(error), original);
    if (byCode) return byCode;
    // Deno's fetch names the cause only in its text.
    const text = `${(error as Error)?.message} ${(error as { cause?: Error })?.cause?.message}`;
    if (/connection refused/i.test(text)) return kindOfCode(displayUrl, "ECONNREFUSED", original)!;
    if (/dns error|failed to lookup/i.test(text)) {
      return kindOfCode(displayUrl, "ENOTFOUND", original)!;
    }
    return original;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}

/** The runtime's `WebSocket` behind the {@linkcode Transport} interface. */
export class NativeTransport implements Transport {
  readonly opened: Promise<void>;
  readonly canPing = false;
  readonly canPause = false;
  #ws: WebSocket;
  #url: string;
  #handler: TransportHandler | undefined;
  #resolveOpened!: () => void;
  #rejectOpened!: (error: unknown) => void;
  #isOpen = false;
  #failure: unknown;
  #lastError: Event | undefined;
  #grace: ReturnType<typeof setTimeout> | undefined;
  #ended = false;
  #firstClose: "local" | "remote" | undefined;
  #probe: StatusProbe | undefined;
  #probing: AbortController | undefined;

  /**
   * Wraps a native socket in the `CONNECTING` or `OPEN` state.
   *
   * @param socket The socket; its `binaryType` is set to `"arraybuffer"`.
   * @param displayUrl The URL as errors show it, credentials masked.
   * @param probe Where to ask for the status of a failed upgrade when the
   *   runtime hides it; without it, such a failure stays kind `"network"`.
   */
  constructor(socket: WebSocket, displayUrl: string, probe?: StatusProbe) {
    this.#ws = socket;
    this.#url = displayUrl;
    this.#probe = probe;
    socket.binaryType = "arraybuffer";
    this.opened = new Promise((resolve, reject) => {
      this.#resolveOpened = resolve;
      this.#rejectOpened = reject;
    });
    this.opened.catch(() => {});
    socket.addEventListener("message", this.#onMessage);
    socket.addEventListener("error", this.#onError);
    socket.addEventListener("close", this.#onClose);
    if (socket.readyState === CONNECTING) {
      socket.addEventListener("open", this.#onOpen, { once: true });
    } else if (socket.readyState === OPEN) {
      this.#onOpen();
    } else {
      this.#failure = new ConnectError(displayUrl, "network", "the socket was already closed");
      this.#ended = true;
      this.#rejectOpened(this.#failure);
    }
  }

  get url(): string {
    return this.#url;
  }

  get protocol(): string {
    return this.#ws.protocol;
  }

  get extensions(): string {
    return this.#ws.extensions;
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  attach(handler: TransportHandler): void {
    this.#handler = handler;
  }

  send(data: string | Uint8Array): void {
    this.#ws.send(data);
  }

  ping(): void {
    throw new TypeError("Cannot send a ping frame as the native WebSocket API has no ping()");
  }

  close(code: number, reason: string): void {
    this.#firstClose ??= "local";
    // The Web API lets a client send only 1000 or 3000-4999.
    if (this.#ws.readyState === OPEN) {
      this.#ws.close(code === 1000 || code >= 3000 ? code : 1000, reason);
    }
  }

  abort(reason: Error): void {
    if (this.#probing) {
      this.#failure ??= reason;
      this.#probing.abort();
      return;
    }
    if (this.#ended) return;
    if (!this.#isOpen) {
      this.#failure ??= reason;
      this.#ws.close();
      this.#expectClose();
      return;
    }
    this.#firstClose ??= "local";
    if (this.#ws.readyState === OPEN) this.#ws.close(1000, reason.message.slice(0, 100));
    // The runtime may hold the socket for a long time: report the end now.
    this.#end({ code: 1006, reason: "", wasClean: false, firstClose: "local", error: reason });
  }

  pause(): void {}

  resume(): void {}

  #onOpen = (): void => {
    this.#isOpen = true;
    this.#resolveOpened();
  };

  #onMessage = (event: MessageEvent): void => {
    if (this.#ended) return;
    const data = event.data;
    this.#handler?.onMessage(
      typeof data === "string" ? data : new Uint8Array(data as ArrayBuffer),
    );
  };

  #onError = (event: Event): void => {
    this.#lastError = event;
    if (!this.#isOpen) this.#expectClose();
  };

  /** After a failed or aborted connect: wait for `close`, but not forever. */
  #expectClose(): void {
    this.#grace ??= setTimeout(
      () => this.#onClose({ code: 0, reason: "", wasClean: false }),
      CLOSE_GRACE,
    );
  }

  #onClose = (event: Pick<CloseEvent, "code" | "reason" | "wasClean">): void => {
    clearTimeout(this.#grace);
    this.#ws.removeEventListener("message", this.#onMessage);
    if (!this.#isOpen) {
      if (this.#ended) return;
      this.#ended = true;
      if (this.#failure) {
        this.#rejectOpened(this.#failure);
        return;
      }
      const error = classify(this.#url, this.#lastError);
      if (
        !this.#probe || error.kind !== "network" || !hidesCause(this.#lastError) ||
        typeof fetch !== "function"
      ) {
        this.#rejectOpened(error);
        return;
      }
      const probing = this.#probing = new AbortController();
      probeStatus(this.#url, this.#probe, error, probing.signal).then((better) => {
        this.#probing = undefined;
        this.#rejectOpened(this.#failure ?? better);
      });
      return;
    }
    const code = event.code === 0 ? 1006 : event.code;
    const abnormal = code === 1006 || !event.wasClean;
    const runtime = this.#lastError as ErrorEvent | undefined;
    const error = abnormal && runtime
      ? runtime.error instanceof Error ? runtime.error : new Error(runtime.message)
      : abnormal
      ? new Error("the connection closed without a closing handshake")
      : undefined;
    this.#end({
      code,
      reason: event.reason,
      wasClean: event.wasClean && code !== 1006,
      firstClose: abnormal ? this.#firstClose : this.#firstClose ?? "remote",
      ...(error ? { error } : {}),
    });
  };

  #end(end: TransportEnd): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#handler?.onClosed(end);
  }
}
