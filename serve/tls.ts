/**
 * The echo server: the echo server's listening socket, plain or TLS,
 * and a bad certificate or key told apart from the rest. Deno reports a
 * file that is not PEM as `No certificates found in certificate data` and a
 * key of another certificate as `KeyMismatch`; here each becomes a
 * {@linkcode TlsOptionError} that names the option and says what is wrong,
 * which `wsbeat serve` turns into a usage error naming the flag and file.
 *
 * @module
 */

/** What is wrong with `cert` or `key`. */
export type TlsProblem =
  /** It holds no PEM block of the kind expected. */
  | "missing"
  /** `cert` holds a private key and no certificate: cert and key swapped. */
  | "swapped"
  /** Its PEM block does not decode. */
  | "undecodable"
  /** The key is not the certificate's (`key` only). */
  | "mismatch"
  /** The key is of a kind Deno does not support (`key` only). */
  | "unsupported";

/** `serve()`'s `cert` or `key` cannot be used; a `TypeError`, as for any bad argument. */
export class TlsOptionError extends TypeError {
  /** The option at fault. */
  readonly option: "cert" | "key";
  /** What is wrong with it. */
  readonly problem: TlsProblem;

  /**
   * Constructs a new instance.
   *
   * @param option The option at fault.
   * @param problem What is wrong with it.
   * @param message The whole message.
   * @param options The error from Deno, as `cause`.
   */
  constructor(
    option: "cert" | "key",
    problem: TlsProblem,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "TlsOptionError";
    this.option = option;
    this.problem = problem;
  }
}

const CERT_BEGIN = "-----BEGIN CERTIFICATE-----";
const KEY_BEGIN = /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/;

/**
 * Listens on `hostname:port`, with TLS when `cert` and `key` are given.
 *
 * @param options Where to listen, and the PEM certificate chain and key.
 * @returns The listener.
 * @throws {TlsOptionError} When `cert` or `key` cannot be used.
 * @throws What `Deno.listen` throws otherwise (`AddrInUse`...).
 */
export function listen(
  options: { port: number; hostname: string; cert?: string; key?: string },
): Deno.Listener {
  const { port, hostname, cert, key } = options;
  if (cert === undefined || key === undefined) return Deno.listen({ port, hostname });
  if (!cert.includes(CERT_BEGIN)) {
    if (KEY_BEGIN.test(cert)) {
      throw new TlsOptionError(
        "cert",
        "swapped",
        `Cannot use cert as it holds a private key and no PEM certificate (${CERT_BEGIN}): cert and key swapped?`,
      );
    }
    throw new TlsOptionError(
      "cert",
      "missing",
      `Cannot use cert as it holds no PEM certificate (${CERT_BEGIN})`,
    );
  }
  if (!KEY_BEGIN.test(key)) {
    throw new TlsOptionError(
      "key",
      "missing",
      "Cannot use key as it holds no PEM private key (-----BEGIN PRIVATE KEY-----)",
    );
  }
  try {
    return Deno.listenTls({ port, hostname, cert, key });
  } catch (error) {
    throw tlsError(error) ?? error;
  }
}

/** The {@linkcode TlsOptionError} for what `Deno.listenTls` threw, if it is about cert or key. */
function tlsError(error: unknown): TlsOptionError | undefined {
  const message = error instanceof Error ? error.message : String(error);
  const cause = { cause: error };
  if (/KeyMismatch/.test(message)) {
    return new TlsOptionError(
      "key",
      "mismatch",
      "Cannot use key as it does not match the certificate in cert",
      cause,
    );
  }
  if (/decode certificate|No certificates found/i.test(message)) {
    return new TlsOptionError(
      "cert",
      "undecodable",
      `Cannot use cert as its PEM certificate does not decode: current error is ${message}`,
      cause,
    );
  }
  if (/decode key|No keys found/i.test(message)) {
    return new TlsOptionError(
      "key",
      "undecodable",
      `Cannot use key as its PEM private key does not decode: current error is ${message}`,
      cause,
    );
  }
  if (/parse private key/i.test(message)) {
    return new TlsOptionError(
      "key",
      "unsupported",
      "Cannot use key as it is not an RSA, ECDSA or EdDSA private key",
      cause,
    );
  }
  return undefined;
}
