/**
 * Layer 2: the runtime's Web `WebSocket` as a transport, for browsers, Node
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
 * @module
 */

import { ConnectError } from "./errors.ts";
import type { Transport, TransportEnd, TransportHandler } from "./transport.ts";

const CONNECTING = 0;
const OPEN = 1;
/**
 * Milliseconds to wait for the `close` event that the WebSocket standard
 * queues after a failed connection. Some runtimes never fire it (undici in
 * Node: nodejs/undici#3546), and `connect()` must settle anyway.
 */
const CLOSE_GRACE = 100;

/** Turns the runtime's handshake error into a {@linkcode ConnectError}. */
function classify(url: string, event: Event | undefined): ConnectError {
  const cause = (event as ErrorEvent | undefined)?.error ?? event;
  const text = (event as ErrorEvent | undefined)?.message ?? "";
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

  /**
   * Wraps a native socket in the `CONNECTING` or `OPEN` state.
   *
   * @param socket The socket; its `binaryType` is set to `"arraybuffer"`.
   * @param displayUrl The URL as errors show it, credentials masked.
   */
  constructor(socket: WebSocket, displayUrl: string) {
    this.#ws = socket;
    this.#url = displayUrl;
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
      this.#rejectOpened(this.#failure ?? classify(this.#url, this.#lastError));
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
