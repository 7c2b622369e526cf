/**
 * The echo server: one accepted TCP connection, from the opening handshake
 * to the closed socket, and the only place where the server reads, writes
 * and keeps timers. The RFC 6455 rules are the sans-I/O {@linkcode Protocol}'s,
 * the listening and the limits across connections `serve.ts`'s.
 *
 * - The handshake and refusals: `serve/handshake.ts`.
 * - One read loop feeding the protocol, stopped while more than
 *   `maxUnsentBytes` of replies wait to be written (TCP flow control then
 *   holds the client back), and for good once `stallAfter` or `dropAfter`
 *   is reached; a stalled connection is held as `serve/stall.ts` says.
 * - One write pump (`transport/frame_writer.ts`).
 * - Every fault is a step of this loop: what the client sent after the
 *   stall or drop point, even in the same read, gets no reply at all, not
 *   even a pong (the connection answers pings and close frames itself).
 *   Delayed and fragmented replies: `serve/replies.ts`.
 * - Once a close frame went out, `closeTimeout` bounds the wait for the
 *   client's; then the socket is closed whatever the client does.
 *
 * @module
 */

import { CloseCode, Protocol } from "../protocol/protocol.ts";
import { encodeFrame, OP_PONG } from "../protocol/frames.ts";
import type { DeflateSettings } from "../protocol/deflate_extension.ts";
import { handshakePhase, LINGER_BYTES } from "./handshake.ts";
import { type ConnectionInfo, faultCount, type ServeSettings } from "./options.ts";
import { DelayedReplies, fragmentFrames, type Reply } from "./replies.ts";
import { closeReport } from "./report.ts";
import { messageOf, shownProtocol, shownTarget } from "./log.ts";
import { holdStalled } from "./stall.ts";
import { FrameWriter } from "../transport/frame_writer.ts";

/** What a connection tells the server about itself. */
export interface ConnectionHooks {
  /** Writes one log line (the server adds nothing). */
  log(line: string): void;
  /** The opening handshake succeeded. */
  onOpen(info: ConnectionInfo): void;
  /** An open connection is over and released: the code and reason of its first close frame. */
  onClose(info: ConnectionInfo, code: number, reason: string): void;
}

/** Where a connection came from, and whether it is only to be refused. */
export interface ConnectionStart {
  /** The connection's number, for logs. */
  id: number;
  /** The client's `host:port`. */
  remoteAddr: string;
  /** Answer HTTP 503 and close instead of serving (the server is full). */
  refuse?: { reason: string; linger: boolean };
}

/**
 * The first read buffer of a connection, small because every idle connection
 * holds one in its pending read; a read that fills it moves to one 4 times
 * larger, up to {@linkcode READ_LARGE}.
 */
const READ_SMALL = 1024;
const READ_LARGE = 64 * 1024;

type Timer = ReturnType<typeof setTimeout>;

/** One accepted connection; see the module doc. `done` resolves once it is fully released. */
export class ServerConnection {
  /** Resolves when the socket is closed and every loop and timer of the connection has ended. */
  readonly done: Promise<void>;
  readonly #conn: Deno.Conn;
  readonly #settings: ServeSettings;
  readonly #hooks: ConnectionHooks;
  readonly #start: ConnectionStart;
  readonly #tag: string;
  #phase: "handshake" | "open" = "handshake";
  #protocol: Protocol | undefined;
  #info: ConnectionInfo | undefined;
  #openedAt = 0;

  // The end.
  #ended = false;
  #endedResolve!: () => void;
  readonly #endedPromise = new Promise<void>((resolve) => (this.#endedResolve = resolve));
  /** Why the socket was closed without a closing handshake, for the log. */
  #why: string | undefined;
  #serverClosedFirst = false;
  #closeWhenFlushed = false;
  #halfCloseWhenFlushed = false;
  #halfClosed = false;
  #drained = 0;

  readonly #writer: FrameWriter;

  // Reading.
  #readLoop: Promise<void> | undefined;
  #stopped = false;
  #resume: (() => void) | undefined;
  #pauseLogged = false;

  // Faults and timers.
  #received = 0;
  #pings = 0;
  #pongs = 0;
  #stallAt = Infinity;
  #dropAt = Infinity;
  #stalled = false;
  readonly #delayed = new DelayedReplies((reply) => this.#send(reply), () => this.#ended);
  #lastMessageAt = 0;
  #idleTimer: Timer | undefined;
  #pingTimer: Timer | undefined;
  #closeTimer: Timer | undefined;

  /**
   * Starts serving (or refusing) an accepted connection.
   *
   * @param conn The accepted socket; the connection owns it from now on.
   * @param settings The server's checked options.
   * @param hooks What to tell the server.
   * @param start The connection's number and address, and whether to refuse it.
   */
  constructor(
    conn: Deno.Conn,
    settings: ServeSettings,
    hooks: ConnectionHooks,
    start: ConnectionStart,
  ) {
    this.#conn = conn;
    this.#settings = settings;
    this.#hooks = hooks;
    this.#start = start;
    this.#tag = `#${start.id}`;
    this.#writer = new FrameWriter(conn, {
      onWritten: () => {
        if (this.#backlog() > this.#settings.maxUnsentBytes) return;
        const resume = this.#resume;
        this.#resume = undefined;
        resume?.();
      },
      onIdle: () => {
        if (this.#closeWhenFlushed) this.#release();
        else if (this.#halfCloseWhenFlushed) this.#halfClose();
      },
      onError: (error) => {
        this.#release(`network error: ${messageOf(error)}`);
      },
    });
    this.done = this.#run();
  }

  /**
   * Begins the server's shutdown for this connection: a connection still in
   * its handshake, stalled, or being refused is closed at once; an open one
   * is sent 1001 `server shutting down`, and closed when the client answers
   * or `closeTimeout` passes.
   */
  shutdown(): void {
    if (this.#ended) return;
    if (this.#phase !== "open" || this.#stalled) {
      return this.#release(
        this.#stalled ? "stalled (stallAfter), TCP closed at shutdown" : undefined,
      );
    }
    if (this.#closeWhenFlushed) return; // a cut or a close is already under way, and bounded
    this.#delayed.clear();
    this.#sendClose(1001, "server shutting down");
  }

  /** Closes the socket now, whatever state the connection is in. */
  abort(): void {
    this.#release("closed at shutdown");
  }

  // --- the life of a connection ---------------------------------------------------------

  async #run(): Promise<void> {
    await this.#handshake();
    if (this.#phase !== "open") this.#release();
    await this.#endedPromise;
    await Promise.allSettled([this.#readLoop, this.#writer.pump]);
    if (this.#phase === "open") this.#report();
  }

  /** The opening handshake (or the refusal), in a frame of its own: its state is not kept. */
  async #handshake(): Promise<void> {
    const { id, remoteAddr, refuse } = this.#start;
    const opened = await handshakePhase({
      conn: this.#conn,
      settings: this.#settings,
      id,
      remoteAddr,
      log: this.#hooks.log,
      abort: () => this.#release(),
      ended: () => this.#ended,
    }, refuse);
    if (opened !== undefined && !this.#ended) this.#open(opened.info, opened.rest, opened.deflate);
  }

  #open(info: ConnectionInfo, rest: Uint8Array, deflate?: DeflateSettings): void {
    const s = this.#settings;
    this.#info = info;
    if ("setNoDelay" in this.#conn) (this.#conn as Deno.TcpConn).setNoDelay(true);
    this.#protocol = new Protocol({
      role: "server",
      maxMessageSize: s.maxMessageSize,
      echo: true,
      autoReply: false, // answered in #receive, per event
      deferFailure: true, // a broken rule fails the connection after the answers before it
      ...(deflate === undefined ? {} : { deflate }),
    });
    this.#phase = "open";
    this.#openedAt = performance.now();
    this.#hooks.log(
      `${this.#tag} connected from ${info.remoteAddr} ${shownTarget(info.path)}${
        info.protocol ? ` (subprotocol ${shownProtocol(info.protocol)})` : ""
      }${deflate ? " (permessage-deflate)" : ""}`,
    );
    this.#hooks.onOpen(info);
    this.#stallAt = faultCount(s.stallAfter);
    this.#dropAt = faultCount(s.dropAfter);
    if (this.#dropAt === 0) {
      this.#why = "TCP cut right after the handshake (dropAfter 0)";
      return this.#release();
    }
    if (this.#stallAt === 0) {
      this.#stall();
      this.#readLoop = this.#holdStalled();
      return;
    }
    this.#lastMessageAt = performance.now();
    if (s.idleTimeout !== undefined) this.#armIdle(s.idleTimeout);
    if (s.pingInterval !== undefined) {
      this.#pingTimer = setInterval(() => this.#ping(), s.pingInterval);
    }
    if (rest.length > 0) this.#receive(rest);
    if (!this.#ended) this.#readLoop = this.#read(); // stalled by `rest`: it holds the stall
  }

  // --- reading -------------------------------------------------------------------------

  async #read(): Promise<void> {
    let buffer = new Uint8Array(READ_SMALL);
    try {
      while (!this.#ended && !this.#stopped) {
        if (this.#protocol!.state === "open" && this.#backlog() > this.#settings.maxUnsentBytes) {
          this.#logPause();
          await new Promise<void>((resolve) => (this.#resume = resolve));
          continue;
        }
        const n = await this.#conn.read(buffer);
        if (this.#ended) return;
        if (n === null) {
          if (this.#protocol!.failure === undefined) {
            this.#why ??= "the client closed TCP without a close frame";
          }
          this.#protocol!.receiveEof();
          return this.#release();
        }
        if (this.#halfClosed && (this.#drained += n) > LINGER_BYTES) {
          return this.#release(); // still sending after it was failed: a flood, cut it
        }
        this.#receive(buffer, n);
        if (n === buffer.length && buffer.length < READ_LARGE) {
          buffer = new Uint8Array(Math.min(buffer.length * 4, READ_LARGE));
        }
      }
      if (this.#stalled) return this.#holdStalled();
    } catch (error) {
      if (!this.#ended) {
        this.#release(`network error: ${messageOf(error)}`);
      }
    }
  }

  /**
   * Feeds received bytes to the protocol and acts on its events in order.
   * The protocol answers nothing by itself (`autoReply: false`): each ping
   * gets its pong and the client's close frame its reply here, as the event
   * comes, so that whatever followed a stall or drop point is never
   * answered. A close frame failing the connection (a broken rule further
   * on in the read) goes after the answers to what came before it.
   */
  #receive(chunk: Uint8Array, length: number = chunk.length): void {
    const p = this.#protocol!;
    const closeSentBefore = p.closeSent !== undefined;
    p.receiveData(chunk, length);
    let answers = !closeSentBefore; // no answer once our close frame is out
    for (let event; (event = p.nextEvent()) !== undefined;) {
      if (this.#stopped) break;
      switch (event.type) {
        case "ping":
          if (answers) this.#writer.queue(encodeFrame(OP_PONG, event.data, { slab: true }));
          break;
        case "close":
          if (answers && p.closeSent === undefined) {
            p.sendClose(event.code === CloseCode.NO_STATUS ? undefined : event.code);
            for (let frame; (frame = p.nextData()) !== undefined;) this.#writer.queue(frame);
          }
          break;
        case "text":
        case "binary":
          if (this.#onMessage(event.data, event.echo)) answers = false;
          break;
        case "pong":
          this.#pongs++;
          break;
      }
    }
    while (this.#stopped && p.nextEvent() !== undefined); // past a stall or drop point: no reply
    if (p.failurePending) {
      // A rule broken further on in the read: the close frame goes after the answers above.
      const failure = p.failure!;
      p.fail(failure.closeCode, failure.rule);
      for (let frame; (frame = p.nextData()) !== undefined;) {
        if (!this.#stopped) this.#writer.queue(frame);
      }
    }
    this.#writer.flush();
    this.#afterInput();
  }

  /** Decides what a message gets; returns whether a close frame was queued after it. */
  #onMessage(data: string | Uint8Array, echo: Uint8Array | undefined): boolean {
    const n = ++this.#received;
    this.#lastMessageAt = performance.now();
    const { pong, closeWith, echoDelay } = this.#settings;
    const isPing = pong !== undefined && data === pong.ping;
    const reply: Reply = {
      due: this.#lastMessageAt + echoDelay,
      data: isPing ? pong.pong : data,
      echo: isPing ? undefined : echo,
      cut: n === this.#dropAt,
      close: closeWith !== undefined && n === 1 && n !== this.#dropAt,
    };
    if (n === this.#dropAt || n === this.#stallAt) {
      this.#stopReading();
      if (n === this.#stallAt && n !== this.#dropAt) this.#stalled = true;
    }
    if (this.#protocol!.state !== "open" && !reply.cut) return false; // closing: no reply
    if (echoDelay === 0 && this.#delayed.length === 0) return this.#send(reply);
    this.#delayed.push(reply);
    return false;
  }

  /** After input: close TCP when the protocol says so, or wait a bounded time for the client. */
  #afterInput(): void {
    const p = this.#protocol!;
    if (this.#stopped || this.#ended) return;
    if (p.closeExpected() && p.failure !== undefined && p.state !== "closed") {
      // Failed by the client's fault: after the close frame, shut down writing and read (the
      // protocol ignores it) until the client closes, so that it reads the close frame whole
      // instead of a reset, within closeTimeout.
      this.#halfCloseWhenFlushed = true;
      if (!this.#writer.busy) this.#halfClose();
    } else if (p.closeExpected()) {
      this.#closeWhenFlushed = true;
      if (!this.#writer.busy) return this.#release();
    }
    if (p.state !== "open") this.#armCloseTimer();
  }

  #stopReading(): void {
    this.#stopped = true;
    clearTimeout(this.#idleTimer);
    clearInterval(this.#pingTimer);
  }

  #stall(): void {
    this.#stopReading();
    this.#stalled = true;
  }

  /** Holds a stalled connection until the client leaves or `stallFor` passes (`serve/stall.ts`). */
  #holdStalled(): Promise<void> {
    const { stallFor } = this.#settings;
    const ended = () => this.#ended;
    const release = (why: string) => this.#release(why);
    return holdStalled({
      conn: this.#conn,
      stallFor,
      ended,
      released: this.#endedPromise,
      release,
    });
  }

  #logPause(): void {
    if (this.#pauseLogged) return;
    this.#pauseLogged = true;
    this.#hooks.log(
      `${this.#tag} stopped reading: ${this.#backlog()} bytes unsent, over ${this.#settings.maxUnsentBytes} (maxUnsentBytes); reading resumes as the client reads`,
    );
  }

  // --- replies and faults --------------------------------------------------------------

  /** Queues a reply (and what comes with it); returns whether a close frame was queued. */
  #send(reply: Reply): boolean {
    const p = this.#protocol!;
    if (this.#ended) return false;
    const { fragment, closeWith } = this.#settings;
    const open = p.state === "open";
    if (open && fragment > 1) {
      for (const frame of fragmentFrames(reply.data, fragment)) this.#writer.queue(frame);
    } else if (open) {
      if (reply.echo) p.sendEcho(typeof reply.data === "string" ? "text" : "binary", reply.echo);
      else if (typeof reply.data === "string") p.sendText(reply.data);
      else p.sendBinary(reply.data);
      for (let frame; (frame = p.nextData()) !== undefined;) this.#writer.queue(frame);
    }
    if (reply.cut) {
      // Cut even when the client closed meanwhile: what followed the n-th message is ignored.
      this.#why = `TCP cut after reply ${this.#dropAt} (dropAfter)`;
      this.#closeWhenFlushed = true;
      this.#writer.flush();
      if (!this.#writer.busy) this.#release();
      else this.#armCloseTimer();
      return false;
    }
    if (!open) return false;
    if (reply.close && closeWith) {
      this.#sendClose(closeWith.code, closeWith.reason);
      return true;
    }
    this.#writer.flush();
    return false;
  }

  #sendClose(code: number, reason: string): void {
    const p = this.#protocol!;
    if (p.state === "open") {
      p.sendClose(code, reason);
      this.#serverClosedFirst = true;
      for (const frame of p.dataToSend()) this.#writer.queue(frame);
      this.#writer.flush();
    }
    this.#resume?.(); // read the client's answer even if reading was paused
    this.#armCloseTimer();
  }

  #armIdle(idleTimeout: number): void {
    const wait = this.#lastMessageAt + idleTimeout - performance.now();
    this.#idleTimer = setTimeout(() => {
      if (performance.now() - this.#lastMessageAt < idleTimeout) return this.#armIdle(idleTimeout);
      this.#sendClose(1001, "idle timeout");
    }, Math.max(0, wait));
  }

  #ping(): void {
    const p = this.#protocol!;
    if (p.state !== "open" || this.#backlog() > this.#settings.maxUnsentBytes) return;
    p.sendPing();
    this.#pings++;
    for (const frame of p.dataToSend()) this.#writer.queue(frame);
    this.#writer.flush();
  }

  #armCloseTimer(): void {
    if (this.#closeTimer !== undefined || this.#ended) return;
    const { closeTimeout } = this.#settings;
    this.#closeTimer = setTimeout(() => {
      this.#release(`no answer within ${closeTimeout} ms (closeTimeout)`);
    }, closeTimeout);
  }

  // --- writing -------------------------------------------------------------------------

  /** Bytes of replies not yet taken by the socket: queued, being written, or delayed. */
  #backlog(): number {
    return this.#writer.unsent + this.#delayed.bytes;
  }

  #halfClose(): void {
    if (this.#halfClosed || this.#ended) return;
    this.#halfClosed = true;
    this.#conn.closeWrite().catch(() => {});
  }

  // --- the end -------------------------------------------------------------------------

  /** Closes the socket (once), stops every timer and wakes the read loop; `why` is for the log. */
  #release(why?: string): void {
    if (this.#ended) return;
    this.#why ??= why;
    this.#ended = true;
    for (const timer of [this.#idleTimer, this.#closeTimer]) clearTimeout(timer);
    clearInterval(this.#pingTimer);
    this.#delayed.clear();
    this.#writer.stop();
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    const resume = this.#resume;
    this.#resume = undefined;
    resume?.();
    this.#endedResolve();
  }

  /** Reports an open connection's end: to `onClose`, and on one log line. */
  #report(): void {
    const { code, reason, line } = closeReport({
      protocol: this.#protocol!,
      serverClosedFirst: this.#serverClosedFirst,
      why: this.#why,
      pings: this.#settings.pingInterval === undefined
        ? undefined
        : { sent: this.#pings, received: this.#pongs },
      lasted: performance.now() - this.#openedAt,
    });
    this.#hooks.log(`${this.#tag} ${line}`);
    this.#hooks.onClose(this.#info!, code, reason);
  }
}
