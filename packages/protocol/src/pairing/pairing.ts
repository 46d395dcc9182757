/**
 * Pairing state machines, sans I/O (magic-wormhole style): each call takes one input message and
 * returns the messages to send and, at the end, the result. No timers, no I/O; time and randomness
 * come from the injected {@link CryptoEnv}. Any error is terminal for the session and is thrown as a
 * typed {@link HearthError}; the caller sends {@link pairingErrorMessage}(e) to the peer and closes.
 *
 * ```
 *  ViewerPairing (prover, holds the setup secret)     DevicePairing (verifier, holds only (w0, L))
 *  start()  ── pair/start {v, method, shareP} ───────▶  guard.charge(method)      [window, budget]
 *           ◀── pair/challenge {shareV, confirmV} ────
 *  check confirmV
 *           ── pair/confirm {confirmP, box_V} ───────▶  check confirmP, open box_V, verify viewer sig,
 *                                                       guard.complete() → role   [window closes]
 *           ◀── pair/done {box_D} ────────────────────
 *  open box_D, deviceIdMatches(deviceKey), verify device sig → pin deviceKey
 * ```
 *
 * SPAKE2+ runs with Context = "hearth/v1/pair", idProver = "" and idVerifier = UTF-8 of the device ID
 * text. w0 and w1 come from PBKDF2-HMAC-SHA-256 over the setup secret (16 bytes from the QR code or
 * the 5-byte secret of the manual code) with salt "hearth/v1/pair/pbkdf/<method>".
 *
 * th = SHA-256("hearth/v1/pair/transcript" ‖ lp(method) ‖ lp(TT) ‖ lp(confirmP) ‖ lp(confirmV)).
 * box_V = AES-256-GCM(HKDF(K_shared, "hearth/v1/pair/viewer-box"), {viewerKey, sig}),
 *   sig = Ed25519_viewer("hearth/v1/pair/viewer-identity" ‖ th ‖ viewerKey).
 * box_D = AES-256-GCM(HKDF(K_shared, "hearth/v1/pair/device-box"), {deviceKey, sig, role}),
 *   sig = Ed25519_device("hearth/v1/pair/device-identity" ‖ th ‖ deviceKey ‖ viewerKey).
 * Each box key is used for exactly one message; the 12-byte IV is random anyway and is sent in front of
 * the ciphertext; the AAD is the purpose label.
 */
import { b32, b64u, concat, lp, utf8, wipe } from '../bytes.js';
import type { CryptoEnv } from '../crypto/env.js';
import {
  aesGcmDecrypt,
  aesGcmEncrypt,
  ed25519Verify,
  hkdfSha256,
  label,
  type Signer,
  sha256,
} from '../crypto/primitives.js';
import {
  type ErrorCode,
  errorFromCode,
  HearthError,
  InternalError,
  LimitError,
  ProtocolError,
  VerificationError,
} from '../errors.js';
import type { PairingGuard } from './guard.js';
import {
  decodeBoxPayload,
  decodePairingMessage,
  deviceIdentitySchema,
  fieldBytes,
  type PairError,
  type PairingMessage,
  type PairingMethod,
  type PairingRole,
  validatePairingMessage,
  viewerIdentitySchema,
} from './messages.js';
import { MANUAL_SECRET_BYTES, QR_SECRET_BYTES } from './setup-code.js';
import {
  checkConfirmation,
  computeVerifierRecord,
  deriveProverSecrets,
  type PbkdfParams,
  type ProverSecrets,
  proverFinish,
  proverShare,
  type Spake2PlusContext,
  type Spake2PlusKeys,
  type VerifierRecord,
  verifierRespond,
  wipeKeys,
} from './spake2plus.js';

/** SPAKE2+ Context string of Hearth pairing. */
export const PAIRING_CONTEXT = 'hearth/v1/pair';
/**
 * PBKDF2 iterations for w0/w1 in protocol version 1. The QR secret needs none; for the 40-bit manual
 * code it makes a stolen (w0, L) record (which exists only while the window is open) expensive to
 * brute-force offline: 2^40 guesses × 300k HMAC blocks.
 */
export const PAIRING_PBKDF_ITERATIONS = 100_000;
/** Ed25519 public key length. */
export const IDENTITY_KEY_BYTES = 32;

const ID_PROVER = new Uint8Array(0);
const NO_SALT = new Uint8Array(0);

/** PBKDF2 parameters for a method. `iterations` may be lowered in tests only (both sides must agree). */
export function pairingPbkdf(method: PairingMethod, iterations = PAIRING_PBKDF_ITERATIONS): PbkdfParams {
  return { salt: utf8(label(`pair/pbkdf/${method}`)), iterations };
}

/** The SPAKE2+ context of a pairing with `deviceId`. */
export function pairingContext(deviceId: string): Spake2PlusContext {
  if (typeof deviceId !== 'string' || deviceId.length === 0 || deviceId.length > 80)
    throw new RangeError('malformed device ID');
  return { context: utf8(PAIRING_CONTEXT), idProver: ID_PROVER, idVerifier: utf8(deviceId) };
}

function checkSecret(method: PairingMethod, secret: Uint8Array): void {
  const want = method === 'qr' ? QR_SECRET_BYTES : MANUAL_SECRET_BYTES;
  if (!(secret instanceof Uint8Array) || secret.length !== want)
    throw new RangeError(`${method} secret must be ${want} bytes`);
}

/** Derive the prover's (w0, w1) for a setup secret. */
export async function pairingProverSecrets(
  deviceId: string,
  method: PairingMethod,
  secret: Uint8Array,
  iterations?: number,
): Promise<ProverSecrets> {
  checkSecret(method, secret);
  return deriveProverSecrets(secret, pairingContext(deviceId), pairingPbkdf(method, iterations));
}

/**
 * Compute the verifier record (w0, L) the device keeps for one setup secret. The agent calls it when it
 * generates a secret, shows the secret, and then forgets the secret; drop the record when the window
 * closes.
 */
export async function createPairingRecord(
  deviceId: string,
  method: PairingMethod,
  secret: Uint8Array,
  iterations?: number,
): Promise<VerifierRecord> {
  const s = await pairingProverSecrets(deviceId, method, secret, iterations);
  const rec = computeVerifierRecord(s);
  wipe(s.w0);
  wipe(s.w1);
  return rec;
}

// ------------------------------------------------------------------ shared helpers

/** The hash both identity signatures cover. */
export async function pairingTranscriptHash(
  method: PairingMethod,
  keys: Spake2PlusKeys,
): Promise<Uint8Array> {
  return sha256(
    concat(
      utf8(label('pair/transcript')),
      lp(utf8(method)),
      lp(keys.TT),
      lp(keys.confirmP),
      lp(keys.confirmV),
    ),
  );
}

async function boxKey(kShared: Uint8Array, purpose: string): Promise<Uint8Array> {
  return hkdfSha256(kShared, NO_SALT, utf8(label(purpose)), 32);
}

async function seal(kShared: Uint8Array, purpose: string, payload: object, env: CryptoEnv): Promise<string> {
  const key = await boxKey(kShared, purpose);
  const iv = env.random(12);
  const ct = await aesGcmEncrypt(key, iv, utf8(JSON.stringify(payload)), utf8(label(purpose)));
  wipe(key);
  return b64u(concat(iv, ct));
}

async function unseal(kShared: Uint8Array, purpose: string, box: string): Promise<Uint8Array> {
  const raw = fieldBytes(box, 'box');
  const key = await boxKey(kShared, purpose);
  try {
    return await aesGcmDecrypt(key, raw.subarray(0, 12), raw.subarray(12), utf8(label(purpose)));
  } finally {
    wipe(key);
  }
}

async function sessionId(kShared: Uint8Array): Promise<string> {
  return b32(await hkdfSha256(kShared, NO_SALT, utf8(label('pair/session-id')), 10));
}

function viewerSigMessage(th: Uint8Array, viewerKey: Uint8Array): Uint8Array {
  return concat(utf8(label('pair/viewer-identity')), th, viewerKey);
}

function deviceSigMessage(th: Uint8Array, deviceKey: Uint8Array, viewerKey: Uint8Array): Uint8Array {
  return concat(utf8(label('pair/device-identity')), th, deviceKey, viewerKey);
}

function toMessage(input: PairingMessage | Uint8Array | string): PairingMessage {
  if (typeof input === 'string' || input instanceof Uint8Array) return decodePairingMessage(input);
  return validatePairingMessage(input);
}

/** Rebuild a typed error from a code the peer reported in `pair/error` (its registry class). */
export function errorFromPeer(m: PairError): HearthError {
  return errorFromCode(m.code, 'reported by the peer', m.retryAt);
}

/** The `pair/error` message to send for an error (stable code only; retryAt for rate limits). */
export function pairingErrorMessage(e: unknown): PairError {
  if (e instanceof LimitError && e.code === 'E_RATE_LIMITED' && e.retryAt !== undefined) {
    return { t: 'pair/error', code: e.code, retryAt: e.retryAt };
  }
  return { t: 'pair/error', code: e instanceof HearthError ? e.code : 'E_INTERNAL' };
}

function asHearthError(e: unknown): HearthError {
  return e instanceof HearthError
    ? e
    : new InternalError('E_INTERNAL', 'unexpected failure in pairing', { cause: e });
}

/** What one step of a state machine produces. */
export interface PairingStep<R> {
  /** Messages to send to the peer, in order. */
  send: PairingMessage[];
  /** Present once the pairing has completed on this side. */
  result?: R;
}

// ------------------------------------------------------------------ device

/** What the device learns from a successful pairing. */
export interface DevicePairingResult {
  /** The viewer's Ed25519 identity key, to store in the ACL. */
  viewerKey: Uint8Array;
  /** Role granted. */
  role: PairingRole;
  method: PairingMethod;
  /** Short label both sides derive from K_shared (equal on both sides; for the audit log and UI). */
  sessionId: string;
}

/** Options of {@link DevicePairing}. */
export interface DevicePairingOptions {
  /** Device ID text (`hdid_...`); its UTF-8 bytes are SPAKE2+ idVerifier. */
  deviceId: string;
  /** Verifier records per offered method. The device never holds the secrets themselves. */
  records: Partial<Record<PairingMethod, VerifierRecord>>;
  /** The device identity key; its public key must hash to the device ID. */
  signer: Signer;
  /** The device's single pairing guard, shared by all sessions. */
  guard: PairingGuard;
  env: CryptoEnv;
}

export type DevicePairingState = 'idle' | 'challenged' | 'done' | 'failed';

/** One pairing session on the device (SPAKE2+ verifier). Create one per incoming viewer. */
export class DevicePairing {
  private st: DevicePairingState = 'idle';
  private method: PairingMethod | undefined;
  private keys: Spake2PlusKeys | undefined;
  private readonly ctx: Spake2PlusContext;

  constructor(private readonly opts: DevicePairingOptions) {
    this.ctx = pairingContext(opts.deviceId);
    if (opts.signer.publicKey.length !== IDENTITY_KEY_BYTES)
      throw new RangeError('device key must be 32 bytes');
  }

  /** Current state. */
  get state(): DevicePairingState {
    return this.st;
  }

  /**
   * Feed one message from the viewer. Returns what to send (and, after `pair/confirm`, the result).
   * Throws a typed HearthError, after which the session is failed: send {@link pairingErrorMessage}.
   */
  async receive(input: PairingMessage | Uint8Array | string): Promise<PairingStep<DevicePairingResult>> {
    try {
      const m = toMessage(input);
      if (m.t === 'pair/error') throw errorFromPeer(m);
      if (this.st === 'idle' && m.t === 'pair/start') return await this.onStart(m.method, m.shareP);
      if (this.st === 'challenged' && m.t === 'pair/confirm') return await this.onConfirm(m.confirmP, m.box);
      throw new ProtocolError('E_BAD_STATE', `${m.t} not expected in state ${this.st}`);
    } catch (e) {
      this.fail(e instanceof HearthError ? e.code : 'E_INTERNAL');
      throw asHearthError(e);
    }
  }

  /** The transport closed or timed out: end the session (counted as a failed attempt if charged). */
  abort(): void {
    if (this.st === 'idle' || this.st === 'challenged') this.fail('E_TIMEOUT');
  }

  private fail(code: ErrorCode): void {
    if (this.st === 'challenged' && this.method) this.opts.guard.recordFailure(this.method, code);
    if (this.st !== 'done') this.st = 'failed';
    wipeKeys(this.keys);
    this.keys = undefined;
  }

  private async onStart(method: PairingMethod, shareP64: string): Promise<PairingStep<DevicePairingResult>> {
    const guard = this.opts.guard;
    guard.check(method);
    const record = this.opts.records[method];
    if (!record) throw new ProtocolError('E_UNSUPPORTED', `method ${method} is not offered`);
    const shareP = fieldBytes(shareP64, 'shareP');
    // Validates shareP (on the curve, not the identity) before anything is charged.
    const keys = await verifierRespond(this.ctx, record, shareP, this.opts.env);
    guard.charge(method);
    this.method = method;
    this.keys = keys;
    this.st = 'challenged';
    return { send: [{ t: 'pair/challenge', shareV: b64u(keys.shareV), confirmV: b64u(keys.confirmV) }] };
  }

  private async onConfirm(confirmP64: string, box: string): Promise<PairingStep<DevicePairingResult>> {
    const keys = this.keys!;
    const method = this.method!;
    checkConfirmation(keys.confirmP, fieldBytes(confirmP64, 'confirmP'));
    const th = await pairingTranscriptHash(method, keys);
    const inner = decodeBoxPayload(
      await unseal(keys.K_shared, 'pair/viewer-box', box),
      viewerIdentitySchema,
      'viewer box',
    );
    const viewerKey = fieldBytes(inner.viewerKey, 'viewerKey');
    const sig = fieldBytes(inner.sig, 'sig');
    if (!(await ed25519Verify(viewerKey, viewerSigMessage(th, viewerKey), sig))) {
      throw new VerificationError('E_BAD_SIGNATURE', 'viewer identity signature');
    }
    const deviceKey = this.opts.signer.publicKey;
    const dsig = await this.opts.signer.sign(deviceSigMessage(th, deviceKey, viewerKey));
    // Last check, then commit: the window closes and the role is granted.
    const role = this.opts.guard.complete(method);
    const out = await seal(
      keys.K_shared,
      'pair/device-box',
      { deviceKey: b64u(deviceKey), sig: b64u(dsig), role },
      this.opts.env,
    );
    const sid = await sessionId(keys.K_shared);
    wipeKeys(keys);
    this.keys = undefined;
    this.st = 'done';
    return { send: [{ t: 'pair/done', box: out }], result: { viewerKey, role, method, sessionId: sid } };
  }
}

// ------------------------------------------------------------------ viewer

/** What the viewer learns from a successful pairing: the device key to pin. */
export interface ViewerPairingResult {
  deviceId: string;
  /** The device's Ed25519 identity key (checked against the device ID): pin it. */
  deviceKey: Uint8Array;
  role: PairingRole;
  method: PairingMethod;
  /** Short label both sides derive from K_shared (equal on both sides). */
  sessionId: string;
}

/** Options of {@link ViewerPairing}. */
export interface ViewerPairingOptions {
  /** Device ID the viewer expects (from the QR payload, or from the server's lookup-tag answer). */
  deviceId: string;
  method: PairingMethod;
  /** Setup secret: 16 bytes (QR) or 5 bytes (manual code). Copied; wipe your own copy. */
  secret: Uint8Array;
  /** The viewer identity key. */
  signer: Signer;
  /** True when `deviceKey` hashes to the expected device ID (ids.ts). */
  deviceIdMatches: (deviceKey: Uint8Array) => boolean | Promise<boolean>;
  env: CryptoEnv;
  /** PBKDF2 iterations; tests only (default {@link PAIRING_PBKDF_ITERATIONS}). */
  iterations?: number;
}

export type ViewerPairingState = 'new' | 'started' | 'confirmed' | 'done' | 'failed';

/** One pairing session in the viewer (SPAKE2+ prover). */
export class ViewerPairing {
  private st: ViewerPairingState = 'new';
  private secret: Uint8Array;
  private secrets: ProverSecrets | undefined;
  private x: Uint8Array | undefined;
  private shareP: Uint8Array | undefined;
  private keys: Spake2PlusKeys | undefined;
  private th: Uint8Array | undefined;
  private readonly ctx: Spake2PlusContext;

  constructor(private readonly opts: ViewerPairingOptions) {
    checkSecret(opts.method, opts.secret);
    this.ctx = pairingContext(opts.deviceId);
    if (opts.signer.publicKey.length !== IDENTITY_KEY_BYTES)
      throw new RangeError('viewer key must be 32 bytes');
    this.secret = opts.secret.slice();
  }

  get state(): ViewerPairingState {
    return this.st;
  }

  /** Produce `pair/start`. */
  async start(): Promise<PairingStep<ViewerPairingResult>> {
    return this.guarded(async () => {
      if (this.st !== 'new') throw new ProtocolError('E_BAD_STATE', 'already started');
      const o = this.opts;
      this.secrets = await pairingProverSecrets(o.deviceId, o.method, this.secret, o.iterations);
      wipe(this.secret);
      const { x, shareP } = proverShare(this.secrets.w0, o.env);
      this.x = x;
      this.shareP = shareP;
      this.st = 'started';
      return { send: [{ t: 'pair/start', v: 1, method: o.method, shareP: b64u(shareP) }] };
    });
  }

  /** Feed one message from the device. Throws a typed HearthError; the session is then failed. */
  async receive(input: PairingMessage | Uint8Array | string): Promise<PairingStep<ViewerPairingResult>> {
    return this.guarded(async () => {
      const m = toMessage(input);
      if (m.t === 'pair/error') throw errorFromPeer(m);
      if (this.st === 'started' && m.t === 'pair/challenge') return this.onChallenge(m.shareV, m.confirmV);
      if (this.st === 'confirmed' && m.t === 'pair/done') return this.onDone(m.box);
      throw new ProtocolError('E_BAD_STATE', `${m.t} not expected in state ${this.st}`);
    });
  }

  /** The transport closed: forget everything. */
  abort(): void {
    if (this.st !== 'done') this.st = 'failed';
    this.wipeAll();
  }

  private async guarded(
    f: () => Promise<PairingStep<ViewerPairingResult>>,
  ): Promise<PairingStep<ViewerPairingResult>> {
    try {
      return await f();
    } catch (e) {
      this.abort();
      throw asHearthError(e);
    }
  }

  private wipeAll(): void {
    wipe(this.secret);
    if (this.secrets) {
      wipe(this.secrets.w0);
      wipe(this.secrets.w1);
    }
    wipe(this.x);
    wipeKeys(this.keys);
    this.secrets = undefined;
    this.x = undefined;
    this.keys = undefined;
  }

  private async onChallenge(shareV64: string, confirmV64: string): Promise<PairingStep<ViewerPairingResult>> {
    const o = this.opts;
    const shareV = fieldBytes(shareV64, 'shareV');
    const confirmV = fieldBytes(confirmV64, 'confirmV');
    const keys = await proverFinish(this.ctx, this.secrets!, this.x!, this.shareP!, shareV);
    this.keys = keys;
    wipe(this.secrets!.w0);
    wipe(this.secrets!.w1);
    wipe(this.x);
    this.secrets = undefined;
    this.x = undefined;
    checkConfirmation(keys.confirmV, confirmV);
    const th = await pairingTranscriptHash(o.method, keys);
    this.th = th;
    const viewerKey = o.signer.publicKey;
    const sig = await o.signer.sign(viewerSigMessage(th, viewerKey));
    const box = await seal(
      keys.K_shared,
      'pair/viewer-box',
      { viewerKey: b64u(viewerKey), sig: b64u(sig) },
      o.env,
    );
    this.st = 'confirmed';
    return { send: [{ t: 'pair/confirm', confirmP: b64u(keys.confirmP), box }] };
  }

  private async onDone(box: string): Promise<PairingStep<ViewerPairingResult>> {
    const o = this.opts;
    const keys = this.keys!;
    const inner = decodeBoxPayload(
      await unseal(keys.K_shared, 'pair/device-box', box),
      deviceIdentitySchema,
      'device box',
    );
    const deviceKey = fieldBytes(inner.deviceKey, 'deviceKey');
    const sig = fieldBytes(inner.sig, 'sig');
    if (!(await o.deviceIdMatches(deviceKey))) {
      throw new VerificationError('E_BAD_BINDING', 'device key does not match the expected device ID');
    }
    if (!(await ed25519Verify(deviceKey, deviceSigMessage(this.th!, deviceKey, o.signer.publicKey), sig))) {
      throw new VerificationError('E_BAD_SIGNATURE', 'device identity signature');
    }
    const sid = await sessionId(keys.K_shared);
    this.wipeAll();
    this.st = 'done';
    return {
      send: [],
      result: { deviceId: o.deviceId, deviceKey, role: inner.role, method: o.method, sessionId: sid },
    };
  }
}
