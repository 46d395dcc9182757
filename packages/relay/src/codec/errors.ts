/**
 * Error tree for the relay. Every error the package throws is a {@link RelayError} with a stable
 * `code`; nothing untyped escapes the codec.
 */

/**
 * Stable error codes. Documented in README.md (a test keeps the two in sync); every one is a code
 * of the error registry in `@hearth/protocol` (`errors.ts`, whose test checks it). `RelayError` has
 * that registry's shape (`code`, a message that does not repeat it) without importing it.
 */
export type RelayErrorCode =
  | 'E_STUN_DECODE'
  | 'E_STUN_FINGERPRINT'
  | 'E_STUN_TOO_LARGE'
  | 'E_CHANNEL_DECODE'
  | 'E_STUN_ENCODE'
  | 'E_CREDENTIALS'
  | 'E_CONFIG'
  | 'E_INTERNAL';

/** All codes, for documentation and exhaustiveness tests. */
export const RELAY_ERROR_CODES: readonly RelayErrorCode[] = [
  'E_STUN_DECODE',
  'E_STUN_FINGERPRINT',
  'E_STUN_TOO_LARGE',
  'E_CHANNEL_DECODE',
  'E_STUN_ENCODE',
  'E_CREDENTIALS',
  'E_CONFIG',
  'E_INTERNAL',
];

/** Base class of every error thrown by `@hearth/relay`. */
export class RelayError extends Error {
  /** Stable machine-readable code. */
  readonly code: RelayErrorCode;
  constructor(code: RelayErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The peer sent bytes that are not a valid STUN message or ChannelData frame. Drop them. */
export class StunDecodeError extends RelayError {
  constructor(
    message: string,
    code: 'E_STUN_DECODE' | 'E_STUN_FINGERPRINT' | 'E_STUN_TOO_LARGE' | 'E_CHANNEL_DECODE' = 'E_STUN_DECODE',
  ) {
    super(code, message);
  }
}

/** The caller asked the encoder for something it cannot represent (our bug or bad input). */
export class StunEncodeError extends RelayError {
  constructor(message: string) {
    super('E_STUN_ENCODE', message);
  }
}

/** TURN REST credentials are malformed or the secret is unusable. */
export class CredentialError extends RelayError {
  constructor(message: string) {
    super('E_CREDENTIALS', message);
  }
}

/** The server was configured wrongly. Fix the options. */
export class RelayConfigError extends RelayError {
  constructor(message: string) {
    super('E_CONFIG', message);
  }
}

/** Wraps any unexpected (non-RelayError) throwable so callers only ever see typed errors. */
export function toRelayError(err: unknown): RelayError {
  if (err instanceof RelayError) return err;
  return new RelayError('E_INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
}
