/**
 * The error registry of Hearth: every error code that any package raises, sends on the wire or
 * prints, with its class and what a viewer does when it meets it. `docs/protocol.md` ("Errors")
 * documents the same table; a test keeps the two in sync, and another checks that every `E_…`
 * literal in the product sources is registered here.
 *
 * One base class, {@link HearthError}, with a stable machine-readable `code`, and one subclass per
 * class of error (what a caller must do differently):
 *
 * | class          | subclass          | meaning                                                  | what a caller does                         |
 * |----------------|-------------------|----------------------------------------------------------|--------------------------------------------|
 * | `protocol`     | ProtocolError     | the peer sent bad data (parse, schema, state)            | drop the message, close with a clean code  |
 * | `verification` | VerificationError | a signature, MAC, key or freshness check failed          | treat as a possible attack, show it        |
 * | `access`       | AccessError       | well formed and authentic, but not allowed               | refuse, tell the peer                      |
 * | `limit`        | LimitError        | a rate, attempt or size budget is spent                  | back off / lock, tell the peer             |
 * | `timeout`      | TimeoutError      | something took too long                                  | retry later                                |
 * | `unavailable`  | UnavailableError  | a peer or resource is not there now (offline, stopping)  | wait for it, retry later                   |
 * | `config`       | ConfigError       | the operator's configuration or installation is wrong    | print and exit; the operator fixes it      |
 * | `internal`     | InternalError     | our own bug                                              | log, report                                |
 *
 * The viewer's reaction is the entry's `action` ({@link ViewerAction}), never a pattern on the
 * code's text. Messages name the field and the rule that failed and never repeat the code (it is
 * in `code`; whoever prints the error prints both). They never contain secret material.
 *
 * Codes are stable: never rename or remove one, only add.
 */

/** The class of an error: what kind of failure it is (see the table above). */
export type ErrorClass =
  | 'protocol'
  | 'verification'
  | 'access'
  | 'limit'
  | 'timeout'
  | 'unavailable'
  | 'config'
  | 'internal';

/**
 * What a viewer does when it meets a code (in `session/refused`, `session/closed`, `pair/error`,
 * `acl/error`, a rendezvous `error` frame, or its own failure):
 *
 * - `attack`: show "possible attack"; close, never retry by itself, until the user starts again;
 * - `access`: show "access refused" (or the pairing window is closed); stop until the user acts;
 * - `retry`: transient; try again (with backoff);
 * - `offline`: the device is not connected; wait for its presence, then try again;
 * - `camera-offline`: the device is up but the camera's source does not deliver; retry with backoff;
 * - `camera-unavailable`: the camera cannot be set up for this view; stop until the user tries again;
 * - `fatal`: nothing the viewer can do by retrying (bad data, a bug, a wrong configuration): show
 *   the code and stop.
 */
export type ViewerAction =
  | 'attack'
  | 'access'
  | 'retry'
  | 'offline'
  | 'camera-offline'
  | 'camera-unavailable'
  | 'fatal';

/** One registry entry. */
export interface ErrorInfo {
  readonly class: ErrorClass;
  readonly action: ViewerAction;
  /** One line: what it means. The default message of a {@link HearthError} with this code. */
  readonly meaning: string;
}

/** The entries of one class: code → [action, meaning]. */
function ofClass<K extends string>(
  c: ErrorClass,
  entries: { readonly [C in K]: readonly [ViewerAction, string] },
): { readonly [C in K]: ErrorInfo } {
  const out = {} as { [C in K]: ErrorInfo };
  for (const k of Object.keys(entries) as K[]) {
    const [action, meaning] = entries[k];
    out[k] = { class: c, action, meaning };
  }
  return out;
}

/**
 * The registry. Codes are stable: never rename or remove one, only add. (Who raises each code is
 * in docs/protocol.md, "Errors".)
 */
export const ERRORS = {
  ...ofClass('protocol', {
    // the peer sent bad data
    E_TOO_LARGE: ['fatal', 'input exceeds the size limit for this message type'],
    E_DECODE: ['fatal', 'input is not valid for its encoding (JSON, base64url, base32, SDP, point)'],
    E_SCHEMA: ['fatal', 'input does not match the message schema'],
    E_BAD_ID: ['fatal', 'identifier or key text is malformed, has the wrong prefix or a bad checksum'],
    E_BAD_STATE: ['fatal', 'message is not valid in the current state of the state machine'],
    E_UNSUPPORTED: ['fatal', 'version or algorithm not supported'],
    E_NO_H264: [
      'camera-unavailable',
      'the offer has no H.264 with packetization-mode=1 (the browser cannot play this camera)',
    ],
    E_BAD_SDP: ['camera-unavailable', 'the media layer cannot use the offer SDP or an ICE candidate'],
    E_BAD_FRAMES: ['fatal', 'too many malformed or out-of-place rendezvous frames'],
    E_NOT_FOUND: [
      'fatal',
      'nothing is found under this name (an HTTP path; a manual code no device is waiting with)',
    ],
    E_BAD_METHOD: ['fatal', 'HTTP method not allowed here'],
    E_STUN_DECODE: ['fatal', 'bytes are not a valid STUN message or attribute value'],
    E_STUN_FINGERPRINT: ['fatal', 'STUN FINGERPRINT present but wrong'],
    E_STUN_TOO_LARGE: ['fatal', "STUN message above the decoder's size limit"],
    E_CHANNEL_DECODE: ['fatal', 'invalid TURN ChannelData frame'],
    E_CLIP_HEADER: [
      'fatal',
      'a sealed blob (clip, snapshot, event record) has a malformed header, metadata box or framing, or is another format version',
    ],
    E_LOG_NOTE: ['fatal', 'a signed note is malformed (format, line rules, signature line)'],
    E_LOG_CHECKPOINT: ['fatal', 'a log checkpoint body is malformed (origin, tree size or root hash line)'],
    E_LOG_ENTRY: ['fatal', 'an access-log entry is outside its schema or not in canonical encoding'],
  }),
  ...ofClass('verification', {
    // possible attack
    E_BAD_SIGNATURE: ['attack', 'signature does not verify under the expected key'],
    E_WRONG_SIGNER: ['attack', 'message is signed by a key other than the one expected'],
    E_STALE: ['attack', 'timestamp outside the accepted window'],
    E_CLOCK_SKEW: [
      'fatal',
      "a validly signed message is stamped outside the window: one side's clock is off (its message says by how much)",
    ],
    E_REPLAY: ['attack', 'nonce already seen'],
    E_FINGERPRINT_MISMATCH: ['attack', 'DTLS fingerprint differs from the signed one'],
    E_BAD_CONFIRMATION: [
      'retry',
      'PAKE key confirmation failed (wrong setup secret or tampered message); the device counts the attempt',
    ],
    E_BAD_BINDING: ['attack', 'message is not bound to the expected device, session or transcript'],
    E_DECRYPT: ['attack', 'authenticated decryption failed'],
    E_DTLS_FAILED: [
      'attack',
      'the media peer completed ICE but not the DTLS handshake: it could not prove the key of the signed fingerprint',
    ],
    E_AUTH: ['fatal', 'the rendezvous authentication proof did not verify'],
    E_IMPOSTOR: ['attack', "someone failed to prove this device's key while claiming its ID"],
    E_SERVER_KEY_CHANGED: [
      'attack',
      'the server is not the one pinned at first contact (another key, or no proof of it): reinstalled, or an impostor',
    ],
    E_CLIP_CHUNK: [
      'attack',
      'a sealed-blob chunk does not authenticate at its position (tampered, reordered, duplicated, from another blob, or after the last)',
    ],
    E_CLIP_TRUNCATED: ['attack', 'a sealed blob ends before its last chunk'],
    E_CLIP_DIGEST: ['attack', "a sealed blob's chunks are not the ones the device signed"],
    E_LOG_PROOF: [
      'attack',
      'an access-log inclusion proof fails, or the entries do not cover their range (dropped, reordered or altered)',
    ],
    E_LOG_FORK: [
      'attack',
      'two checkpoints of the access log cannot be one history (same size and another root, or no valid consistency proof)',
    ],
    E_LOG_ROLLBACK: ['attack', 'the access-log checkpoint is older than the one already verified'],
    E_BLOB_DIGEST: ['attack', "an uploaded blob's size or SHA-256 differs from its ticket"],
  }),
  ...ofClass('access', {
    // authentic but not allowed
    E_NO_GRANT: ['access', 'no grant for this key'],
    E_GRANT_EXPIRED: ['access', 'grant expired'],
    E_GRANT_NOT_YET_VALID: ['access', 'grant not yet valid'],
    E_GRANT_REVOKED: ['access', 'grant revoked'],
    E_SCOPE: ['access', 'grant does not cover this action'],
    E_STALE_ACL: ['fatal', 'ACL version is not newer than the current one'],
    E_OUTSIDE_SCHEDULE: ['access', "outside the grant's hours (its schedule, in the device's time zone)"],
    E_HISTORY_FLOOR: [
      'access',
      "made before the grant's history floor (a guest sees nothing from before its grant)",
    ],
    E_RECOVERY_SCOPE: ['access', 'the recovery key may only replace owners and set a new recovery key'],
    E_LAST_OWNER: ['fatal', 'the ACL must keep at least one owner'],
    E_PAIRING_CLOSED: ['access', 'the pairing window is closed'],
    E_NO_CAMERA: ['access', 'the device has no camera of this name'],
    E_TAG_TAKEN: ['retry', 'another device holds this lookup tag'],
    E_NO_SESSION: ['retry', 'relay credentials only for a viewer the device answers now'],
    E_REPLACED: ['fatal', 'another connection authenticated with the same ID'],
    E_NOT_RECIPIENT: ['access', 'the sealed blob is not wrapped to this reader key'],
    E_STALE_TICKET: ['fatal', "a blob ticket's seq is not above the one the store holds (a rollback)"],
    E_PUSH_ENDPOINT: [
      'fatal',
      'the server does not send to this push endpoint (not an https URL, or a local or private address)',
    ],
    E_INVITE_UNKNOWN: ['access', 'no invite matches this ID and proof (a wrong or cancelled link)'],
    E_INVITE_EXPIRED: ['access', 'the invite link has expired: ask the owner for a new one'],
    E_INVITE_USED: ['access', 'the invite link was already used: ask the owner for a new one'],
  }),
  ...ofClass('limit', {
    // a budget is spent
    E_RATE_LIMITED: ['retry', 'too many attempts or messages; retry later'],
    E_LOCKED: ['fatal', 'too many failed attempts; locked until re-opened on the device'],
    E_REPLAY_CACHE_FULL: ['retry', 'replay cache full'],
    E_CONGESTED: ['retry', 'the target is not reading its messages'],
    E_SERVER_FULL: ['retry', 'the server-wide connection limit is reached'],
    E_TOO_MANY_CONNECTIONS: ['retry', 'too many connections from this address'],
    E_QUOTA: ['fatal', "the device's blob storage quota (bytes or count) is spent"],
  }),
  ...ofClass('timeout', {
    // something took too long
    E_TIMEOUT: ['retry', 'operation timed out'],
  }),
  ...ofClass('unavailable', {
    // a peer or resource is not there now
    E_OFFLINE: ['offline', 'the target is not connected'],
    E_NO_SERVER: ['retry', 'the rendezvous server cannot be reached'],
    E_SHUTDOWN: ['retry', 'the device or the server is shutting down'],
    E_RESTARTED: ['retry', 'the offer was made before the device last started; make a new one'],
    E_CAMERA_OFFLINE: [
      'camera-offline',
      "the camera's source does not deliver (unreachable, ffmpeg exits, probe fails, no keyframe)",
    ],
    E_ICE_FAILED: ['retry', 'no network path to the device (ICE failed)'],
    E_DISCONNECTED: ['retry', 'the media connection was lost'],
    E_CANCELLED: ['fatal', 'the user cancelled'],
    E_PUSH_GONE: ['fatal', 'the push service no longer knows this subscription (it expired or was removed)'],
    E_PUSH_FAILED: [
      'retry',
      'the push service did not take the notification (refused, unreachable, too slow)',
    ],
  }),
  ...ofClass('config', {
    // the operator's configuration or installation is wrong
    E_CONFIG: ['fatal', 'invalid configuration'],
    E_CAMERA_UNAVAILABLE: [
      'camera-unavailable',
      "the device cannot run the camera's pipeline (ffmpeg cannot be started)",
    ],
    E_FFMPEG: ['fatal', 'ffmpeg is missing or lacks what a camera needs'],
    E_USAGE: ['fatal', 'bad command-line arguments'],
    E_CREDENTIALS: ['fatal', 'TURN REST credentials are malformed or the secret is unusable'],
  }),
  ...ofClass('internal', {
    // our own bug
    E_INTERNAL: ['fatal', 'internal error'],
    E_STUN_ENCODE: ['fatal', 'the STUN encoder was asked for something it cannot represent'],
    E_WEBRTC: ['retry', "the browser's WebRTC stack failed"],
    E_MEDIA: [
      'camera-unavailable',
      'the media layer failed with an error it did not classify (a bug there: every known cause has its own code)',
    ],
  }),
};

/** A stable error code. */
export type ErrorCode = keyof typeof ERRORS;

/** Every registered code. */
export const ALL_ERROR_CODES = Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]];

/** Code → meaning (the default message of each code). */
export const ERROR_CODES: { readonly [C in ErrorCode]: string } = /* @__PURE__ */ Object.fromEntries(
  ALL_ERROR_CODES.map((c) => [c, ERRORS[c].meaning]),
) as { readonly [C in ErrorCode]: string };

/** True when `code` is a registered code. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** The registry entry of `code`, or undefined for a code not in the registry (a newer peer's). */
export function errorInfo(code: unknown): ErrorInfo | undefined {
  return isErrorCode(code) ? ERRORS[code] : undefined;
}

/**
 * What a viewer does about `code`. A code not in the registry (a newer peer's, or garbage) is
 * `fatal`: shown with its code, never silently retried.
 */
export function viewerAction(code: unknown): ViewerAction {
  return errorInfo(code)?.action ?? 'fatal';
}

/** Base class of every Hearth error. */
export class HearthError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERRORS[code].meaning, options);
    this.code = code;
    this.name = new.target.name;
  }
  /** The registry's class of this error's code. */
  get errorClass(): ErrorClass {
    return ERRORS[this.code].class;
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
/** A peer or a resource is not there now. */
export class UnavailableError extends HearthError {}
/** The operator's configuration or installation is wrong. */
export class ConfigError extends HearthError {}
/** Our own bug. */
export class InternalError extends HearthError {}

/**
 * The typed error for `code`, of the subclass its registry class names (e.g. to rebuild an error a
 * peer reported). `retryAt` only applies to limit errors.
 */
export function errorFromCode(code: ErrorCode, message?: string, retryAt?: number): HearthError {
  switch (ERRORS[code].class) {
    case 'protocol':
      return new ProtocolError(code, message);
    case 'verification':
      return new VerificationError(code, message);
    case 'access':
      return new AccessError(code, message);
    case 'limit':
      return new LimitError(code, message, retryAt);
    case 'timeout':
      return new TimeoutError(code, message);
    case 'unavailable':
      return new UnavailableError(code, message);
    case 'config':
      return new ConfigError(code, message);
    case 'internal':
      return new InternalError(code, message);
  }
}

/** True when `e` is a possible attack, which the UI must show as such. */
export function isPossibleAttack(e: unknown): e is VerificationError {
  return e instanceof VerificationError;
}

/** `CODE: message`, the one-line form in which logs and the CLI print an error with a code. */
export function describeError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const msg = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' && /^E_[A-Z0-9_]+$/.test(code) ? `${code}: ${msg}` : msg;
}

// ------------------------------------------------------------------ WebSocket close codes

/**
 * The WebSocket close codes of the rendezvous (server → client), each with the registry code it
 * stands for. The mapping between the two happens here and nowhere else.
 */
export const CLOSE = {
  /** Server shutting down. */
  GOING_AWAY: 1001,
  /** A frame larger than limits.maxFrameBytes (sent by the ws library). */
  TOO_BIG: 1009,
  /** Unexpected server error. */
  INTERNAL: 1011,
  /** Server-wide connection limit reached: try again later. */
  TRY_LATER: 1013,
  /** No valid `auth` within limits.authTimeoutMs. */
  AUTH_TIMEOUT: 4001,
  /** The `auth` proof was malformed or did not verify. */
  AUTH_FAILED: 4002,
  /** Another connection authenticated with the same ID; this one is replaced. */
  REPLACED: 4003,
  /** Message rate above limits.messagesPerSecond (token bucket of limits.messageBurst). */
  RATE_LIMITED: 4008,
  /** More than limits.maxConnectionsPerAddress connections from this remote address. */
  TOO_MANY_CONNECTIONS: 4009,
  /** More than limits.maxBadFrames malformed or out-of-place frames. */
  BAD_FRAMES: 4010,
} as const;

/** A rendezvous WebSocket close code. */
export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE];

/** The registry code behind each close code. */
const CLOSE_ERRORS: { readonly [K in CloseCode]: ErrorCode } = {
  1001: 'E_SHUTDOWN',
  1009: 'E_TOO_LARGE',
  1011: 'E_INTERNAL',
  1013: 'E_SERVER_FULL',
  4001: 'E_TIMEOUT',
  4002: 'E_AUTH',
  4003: 'E_REPLACED',
  4008: 'E_RATE_LIMITED',
  4009: 'E_TOO_MANY_CONNECTIONS',
  4010: 'E_BAD_FRAMES',
};

/** Codes a connection can be closed for (the error side of {@link CLOSE}). */
export type CloseErrorCode = (typeof CLOSE_ERRORS)[CloseCode];

/** The WebSocket close code that stands for `code`. */
export function closeCodeFor(code: CloseErrorCode): CloseCode {
  for (const [k, v] of Object.entries(CLOSE_ERRORS)) if (v === code) return Number(k) as CloseCode;
  /* c8 ignore next */
  throw new InternalError('E_INTERNAL', 'close code table is incomplete');
}

/** The registry code a close code stands for, or undefined (a normal close, or a code of someone else). */
export function errorForClose(closeCode: number): CloseErrorCode | undefined {
  return Object.hasOwn(CLOSE_ERRORS, closeCode) ? CLOSE_ERRORS[closeCode as CloseCode] : undefined;
}
