/**
 * The text of `wsbeat --help`: every client option with a one-line meaning,
 * the exit codes, and examples that run as written from a script.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { INPUT_QUEUE_LIMIT } from "./stdin.ts";

/** The version, from deno.json. */
export const VERSION: string = denoJson.version;

/** `wsbeat --help`. */
export const HELP = `wsbeat ${VERSION}: keep a WebSocket connection alive, and know when it is dead

Usage:
  wsbeat [options] <url>      connect; send stdin lines, print messages on stdout
  wsbeat serve [options]      run an echo server (see wsbeat serve --help)
  wsbeat demo                 the idle-timeout and dead-peer experiment, offline, ~15 s

The URL may be ws://, wss://, http:// or https://; without a scheme ws:// is assumed.
  -c, --connect URL       the URL, as an option (as wscat takes it)

Sending:
  -x, --send MSG          send MSG after connecting instead of reading stdin (repeatable)
      --every SECONDS     with -x, send the messages again every SECONDS
  -n, --count N           exit after N messages received (heartbeat replies not counted)
  -w, --wait SECONDS      after stdin ends (or -x is sent), wait this long for replies,
                          then close with 1000 (default 1)
      --keep-open         stay connected after the input ends, until the server closes
                          or Ctrl-C (a subscription sent with -x, a heartbeat from a script)
      --binary            stdin lines are base64 and are sent as binary messages
      --json              refuse input lines and -x messages that are not JSON, and
                          pretty-print received JSON on a terminal
  On a terminal, /ping prints the round-trip time, /close [CODE [REASON]] closes with
  CODE and exits, /quit closes with 1000 and exits (with --reconnect too: no reconnect);
  start a line with // to send one beginning with /.

Connection:
  -H, --header "Name: value"   add a handshake header (repeatable)
  -s, --protocol NAME          offer a subprotocol (repeatable)
      --cacert FILE            trust the PEM CA certificate(s) in FILE for wss://
      --cert FILE --key FILE   present this PEM client certificate and key (wss://)
      --proxy URL              go through this proxy: http://, https:// (CONNECT),
                               socks5:// or socks5h:// (the proxy resolves the name);
                               default from HTTPS_PROXY (wss://) or HTTP_PROXY (ws://),
                               then ALL_PROXY, minus NO_PROXY
      --max-redirects N        follow at most N redirects (default 10; 0: none)
      --origin ORIGIN          send this Origin header
      --trace                  print every step on stderr: proxy, request and response
                               heads, redirects, frames sent (>) and received (<)
      --no-compression         do not offer permessage-deflate (offered by default; the
                               server decides; see docs/compression.md)
      --connect-timeout SECS   give up opening after SECS (default 10)
      --stale-after SECS       close the connection when no message arrived for SECS,
                               even while pings are answered (the feed went quiet);
                               with --reconnect, connect again (default: off)

Heartbeat (any of these turns it on):
      --heartbeat         send a probe, fail after --timeout without a reply, sleep --interval;
                          the probe is a ping frame unless --ping or --pong is given
      --interval SECS     sleep between a reply and the next probe (default 10)
      --timeout SECS      wait this long for each reply (default 5)
      --ping TEXT         send TEXT as the probe, a text message (default with --pong: "ping")
      --pong TEXT         the reply to expect to an application probe (default: the --ping
                          text, echoed); replies and echoed probes are never printed
      --show-rtt          print each beat's round-trip time on stderr

Reconnect (any of these turns it on):
      --reconnect         after a close or failure, connect again with backoff; -x
                          messages are sent again on each connection, and stdin lines
                          typed while disconnected wait (up to ${INPUT_QUEUE_LIMIT} lines)
      --max-retries N     give up when N retries in a row have failed, a retry being
                          an attempt after a failure (default: never)
      --backoff-initial S first delay (default 1, at least 0.01); doubles per failure,
                          with jitter
      --backoff-max S     longest delay (default 30, at least 0.01)
      --backoff-factor F  growth per failure (default 2)
      Not retried: HTTP 4xx other than 408/429, TLS errors (ws:// and wss:// mixed up
      included), closes with a code other than 1000, 1001, 1005, 1006, 1011-1014 and
      3000-4999 (such as 1008, policy violation), /quit and /close.

Output:
      --binary-format F   print binary messages as base64 (default), hex, or raw bytes;
                          on a terminal they are marked [binary N B]
      --timestamps        prefix each message with its arrival time since the open, [+1.234s]
  -v, --verbose           more status: headers (secrets masked), traffic counters, latency
  -q, --quiet             no status lines, only messages and errors
      --no-color          no colour (also NO_COLOR=1; colour is used only on a terminal)
  -h, --help              show this help
  -V, --version           show the version

Durations (SECS, SECONDS, S) are seconds written in decimal, such as 5 or 0.5, from
0.001 (1 ms) to 2000000; --wait also takes 0. Counts are whole numbers in decimal.

Messages go to stdout, one per line; status and errors go to stderr, so
'wsbeat URL | jq' works. Credentials (URL user info, values of query parameters
and headers named like token, key, secret, signature, password, auth, cookie)
are shown as ***. Text from the server reaches a terminal with its control characters
escaped (ESC shown as \\x1b): reasons, errors, and messages when stdout is a terminal;
to a pipe or a file, messages are written exactly as received.

Exit codes:
  0    clean end: stdin ended and --wait passed, --count reached, the server closed
       normally (1000, 1001, 1005), /quit or /close, or the reader of stdout went away
  1    the connection failed, or closed abnormally (with --reconnect: a failure that is
       not retried, or --max-retries reached); stdout could not be written; an input
       line was refused (--json, --binary, invalid UTF-8, too long)
  2    usage error
  3    heartbeat timeout: the server stopped answering (with --reconnect it reconnects)
  130  interrupted (Ctrl-C), after closing cleanly with 1000; while the close waits for
       the server's answer (up to 5 s, said on stderr), Ctrl-C again quits at once
  143  terminated (SIGTERM), after closing cleanly with 1000

TLS: there is no switch to skip certificate checks (wscat's -n, websocat's -k).
To trust a private CA, pass --cacert ca.pem (or run deno with --cert ca.pem).

Examples:
  wsbeat serve --port 9000 --idle-timeout 30 &
  wsbeat ws://127.0.0.1:9000                            # interactive
  echo hello | wsbeat ws://127.0.0.1:9000               # prints hello, exits 0
  wsbeat -x '{"op":"subscribe"}' -n 5 wss://example.com/feed
  wsbeat --ping ping --interval 10 --timeout 5 --show-rtt --keep-open ws://127.0.0.1:9000
                    # stays open: --idle-timeout counts messages only, so the probe must be
                    # a message (--ping); ping frames (--heartbeat alone) would be dropped
`;
