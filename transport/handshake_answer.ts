/**
 * The transport layer: reading the server's answer to the wsbeat
 * transport's opening handshake, on the connection `transport/tcp_connect.ts`
 * opened: a 101 checked (RFC 6455 section 4.2.2), a redirect handed back
 * with its target, any other status turned into a {@linkcode ConnectError}
 * (see `transport/redirect.ts`).
 *
 * @module
 */

import { ConnectError, ProtocolError } from "../util/errors.ts";
import { checkResponse } from "../protocol/handshake.ts";
import { readHttpHead } from "../protocol/http.ts";
import { REDIRECT_STATUSES, refusal } from "./redirect.ts";
import type { HandshakeResponse } from "./transport.ts";
import type { DeflateOfferOptions, DeflateParams } from "../protocol/permessage_deflate.ts";

/** What the server's handshake answer said, and the bytes that came after it. */
export interface HandshakeAnswer {
  /** The subprotocol it chose, or "". */
  protocol: string;
  /** The extensions it named, or "". */
  extensions: string;
  /** The permessage-deflate parameters agreed, when offered and accepted. */
  deflate?: DeflateParams;
  /** Bytes read past the answer's head: the first frames. */
  rest: Uint8Array;
  /** The status line and headers. */
  response: HandshakeResponse;
  /** The answer's head as text, for a trace. */
  head: string;
  /** For a redirect (301, 302, 303, 307, 308 with a `Location`): where to. */
  location?: string;
}

/**
 * Reads the server's answer to the opening handshake and checks it. A
 * redirect is returned with its `location`; any other status but 101
 * throws a {@linkcode ConnectError} of kind `"status"` with the answer's
 * headers and the start of its body (`transport/redirect.ts`).
 */
export async function readHandshakeAnswer(
  conn: Deno.Conn,
  options: {
    accept: string;
    tls: boolean;
    displayUrl: string;
    protocols: string[];
    /** The permessage-deflate offer made, if any: its answer is checked against it. */
    deflate?: DeflateOfferOptions | undefined;
  },
): Promise<HandshakeAnswer> {
  const { accept, tls, displayUrl, protocols, deflate } = options;
  let answer;
  try {
    answer = await readHttpHead(conn, {
      ended: (received) =>
        new ConnectError(
          displayUrl,
          "network",
          received === 0
            ? "the server closed the connection without answering the handshake" +
              // Some servers that want a client certificate end the connection after TLS.
              (tls ? "; over TLS, it may require a client certificate (cert and key)" : "")
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
      error.rule,
      { cause: error },
    );
  }
  const { startLine, headers } = answer.head;
  const head = [startLine, ...[...headers].map(([name, value]) => `${name}: ${value}`)]
    .join("\r\n");
  const match = /^HTTP\/1\.1 (\d{3})(?: (.*))?$/.exec(startLine);
  const status = Number(match?.[1]);
  const response = { status, statusText: match?.[2] ?? "", headers };
  const location = headers.get("location");
  if (match && REDIRECT_STATUSES.includes(status) && location !== null) {
    return { protocol: "", extensions: "", rest: answer.rest, response, head, location };
  }
  if (match && status !== 101) {
    throw await refusal(conn, { ...response, rest: answer.rest }, displayUrl);
  }
  return {
    ...checkResponse(answer.head, { accept, protocols, deflate }),
    rest: answer.rest,
    response,
    head,
  };
}
