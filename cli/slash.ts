/**
 * Slash commands, typed on a terminal (as wscat's `--slash`): `/ping`
 * prints the round-trip time, `/close [CODE [REASON]]` closes with that code
 * and ends the run, `/quit` closes with 1000 and ends the run (with
 * `--reconnect` too: the user's close is a decision, not a failure to
 * retry). `//text` sends `/text`.
 *
 * @module
 */

import type { WebSocketClient } from "../mod.ts";
import { checkClientClose } from "../client/close_info.ts";
import { cliWords, errorLine, formatDuration, type Io } from "./output.ts";

/** The one-line summary shown when slash commands are on. */
export const SLASH_HELP = "/ping, /close [CODE [REASON]], /quit";

/** Round trips of `/ping` that wait longer than this are reported as unanswered. */
const PING_TIMEOUT = 10_000;

/**
 * Runs one slash command on `ws`.
 *
 * @param onQuit Called as `/close` or `/quit` starts closing, before the
 *   close completes: the run ends by the user's decision, even with
 *   `--reconnect`, and however the connection then closes.
 * @returns `"quit"` when the run should end (`/close`, `/quit`).
 */
export async function runSlash(
  io: Io,
  ws: WebSocketClient,
  item: { command: string; args: string[] },
  signal: AbortSignal,
  onQuit: () => void = () => {},
): Promise<"quit" | undefined> {
  switch (item.command) {
    case "ping": {
      const timeout = AbortSignal.timeout(PING_TIMEOUT);
      // Not awaited: typing goes on while the pong is on its way.
      ws.ping({ signal: AbortSignal.any([signal, timeout]) }).then(
        (rtt) => io.stderr(`pong after ${formatDuration(rtt)}\n`),
        (error) => {
          if (timeout.aborted) {
            errorLine(io, `/ping: no pong within ${formatDuration(PING_TIMEOUT)}`);
          } else if (!signal.aborted) errorLine(io, `/ping: ${cliWords((error as Error).message)}`);
        },
      );
      return undefined;
    }
    case "close": {
      const [code = "1000", ...words] = item.args;
      if (!/^\d+$/.test(code)) {
        errorLine(io, `/close expects a code (1000 or 3000-4999), got '${code}'`);
        return undefined;
      }
      const reason = words.join(" ");
      try {
        checkClientClose(Number(code), reason);
      } catch (error) {
        errorLine(io, `/close: ${cliWords((error as Error).message)}`);
        return undefined;
      }
      onQuit();
      try {
        await ws.close(Number(code), reason);
      } catch (error) {
        errorLine(io, `/close: ${cliWords((error as Error).message)}`);
        return undefined;
      }
      return "quit";
    }
    case "quit":
    case "exit":
      onQuit();
      await ws.close(1000).catch(() => {});
      return "quit";
    default:
      errorLine(
        io,
        `unknown command '/${item.command}'; the commands are ${SLASH_HELP}; start a line with // to send one beginning with /`,
      );
      return undefined;
  }
}
