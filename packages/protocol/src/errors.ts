/**
 * Errors of the Hearth protocol core.
 *
 * One base class, {@link HearthError}, with a stable machine-readable `code`, and one subclass per
 * thing a caller must do differently:
 *
 * | class              | meaning                                   | what a caller does                      |
 * |--------------------|-------------------------------------------|-----------------------------------------|
 * | ProtocolError      | the peer sent bad data (parse, schema)    | drop the message, close with a clean code |
 * | VerificationError  | a signature, MAC, key or freshness check failed | treat as a possible attack, show it     |
 * | AccessError        | the request is well formed and authentic but not allowed | refuse, tell the peer      |
 * | LimitError         | a rate, attempt or size budget is spent   | back off / lock, tell the peer           |
 * | TimeoutError       | something took too long                   | retry later                              |
 * | ConfigError        | the operator's configuration is wrong     | print and exit                           |
 * | InternalError      | our own bug                               | log, report                              |
 *
 * Messages never contain secret material (keys, setup codes, shared secrets): they name the field
 * and the rule that failed, nothing more.
 */

/** Every error code the protocol core can raise. Codes are stable: never rename, only add. */
export const ERROR_CODES = {
  // ProtocolError: the peer sent bad data.
  E_TOO_LARGE: 'input exceeds the size limit for this message type',
  E_DECODE: 'input is not valid for its encoding (JSON, base64url, base32, SDP, point)',
  E_SCHEMA: 'input does not match the message schema',
  E_BAD_ID: 'identifier or key text is malformed, has the wrong prefix or a bad checksum',
  E_BAD_STATE: 'message is not valid in the current state of the state machine',
  E_UNSUPPORTED: 'version or algorithm not supported',
  // VerificationError: possible attack.
  E_BAD_SIGNATURE: 'signature does not verify under the expected key',
  E_WRONG_SIGNER: 'message is signed by a key other than the one expected',
  E_STALE: 'timestamp outside the accepted window',
  E_REPLAY: 'nonce already seen',
  E_FINGERPRINT_MISMATCH: 'DTLS fingerprint differs from the signed one',
  E_BAD_CONFIRMATION: 'PAKE key confirmation failed (wrong setup secret or tampered message)',
  E_BAD_BINDING: 'message is not bound to the expected device, session or transcript',
  E_DECRYPT: 'authenticated decryption failed',
  E_DTLS_FAILED:
    'the media peer completed ICE but not the DTLS handshake: it could not prove the key of the signed fingerprint',
  // AccessError
  E_NO_GRANT: 'no grant for this key',
  E_GRANT_EXPIRED: 'grant expired',
  E_GRANT_NOT_YET_VALID: 'grant not yet valid',
  E_GRANT_REVOKED: 'grant revoked',
  E_SCOPE: 'grant does not cover this action',
  E_STALE_ACL: 'ACL version is not newer than the current one',
  E_PAIRING_CLOSED: 'the pairing window is closed',
  // LimitError
  E_RATE_LIMITED: 'too many attempts; retry later',
  E_LOCKED: 'too many failed attempts; locked until re-opened on the device',
  E_REPLAY_CACHE_FULL: 'replay cache full',
  // TimeoutError
  E_TIMEOUT: 'operation timed out',
  // ConfigError
  E_CONFIG: 'invalid configuration',
  // InternalError
  E_INTERNAL: 'internal error',
} as const;

/** A stable error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class of every error the protocol core raises. */
export class HearthError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ? `${code}: ${message}` : `${code}: ${ERROR_CODES[code]}`, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The peer sent bad data. */
export class ProtocolError extends HearthError {}
/** A signature, MAC, key, freshness or binding check failed: possibly an attack. */
export class VerificationError extends HearthError {}
/** Authentic but not allowed. */
export class AccessError extends HearthError {}
/** A budget (attempts, rate, size of a cache) is spent. */
export class LimitError extends HearthError {
  /** When the caller may try again (ms since epoch), if known. */
  readonly retryAt: number | undefined;
  constructor(code: ErrorCode, message?: string, retryAt?: number) {
    super(code, message);
    this.retryAt = retryAt;
  }
}
/** Something took too long. */
export class TimeoutError extends HearthError {}
/** The operator's configuration is wrong. */
export class ConfigError extends HearthError {}
/** Our own bug. */
export class InternalError extends HearthError {}

/** True when `e` is a possible attack, which the UI must show as such. */
export function isPossibleAttack(e: unknown): e is VerificationError {
  return e instanceof VerificationError;
}
