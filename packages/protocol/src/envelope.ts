/**
 * Signed envelopes: the one wire shape for every signed message in Hearth.
 *
 * ```
 * { "v": 1,                 version
 *   "p": "session/offer",   purpose (domain separation)
 *   "k": "huk_…" | "hdk_…", signer's public key, typed text (ids.ts)
 *   "n": "<b64u 16 bytes>", random nonce
 *   "t": 1700000000000,     signer's clock, ms since epoch
 *   "b": { … },             body, schema per purpose
 *   "s": "<b64u 64 bytes>"  Ed25519 signature }
 * ```
 *
 * The signature covers `"hearth/v1/" + p + "\n"` followed by the canonical JSON (canonical.ts) of
 * `{v, p, k, n, t, b}`. The purpose label is inside the signed bytes, so a signature made for one
 * purpose can never be replayed as another; the signer's key is inside too, so a signature cannot
 * be re-attributed.
 */
import { z } from 'zod';
import { b64u, concat, fromB64u, utf8 } from './bytes.js';
import { canonicalBytes, canonicalize, parseJson } from './canonical.js';
import type { CryptoEnv } from './crypto/env.js';
import { ed25519Verify, label, type Signer } from './crypto/primitives.js';
import { type ErrorCode, ProtocolError, VerificationError } from './errors.js';
import { type DeviceKeyText, decodeId, encodeId, type UserKeyText } from './ids.js';
import type { ReplayCache } from './replay.js';

/** Every purpose a signed envelope can have. */
export const PURPOSES = [
  'session/offer',
  'session/answer',
  'grant',
  'acl/update',
  'acl/invite',
  'acl/recover',
  'device/erase',
  'auth/device',
  'auth/user',
  'chan/hello',
  'chan/accept',
  'test',
] as const;
export type Purpose = (typeof PURPOSES)[number];

/** Default largest encoded envelope accepted (SDPs with many candidates fit easily). */
export const MAX_ENVELOPE_BYTES = 64 * 1024;

/** Who may sign: device keys (`hdk_`) or user keys (`huk_`). */
export type SignerKind = 'device' | 'user';

const b64uField = (maxChars: number) =>
  z
    .string()
    .max(maxChars)
    .regex(/^[A-Za-z0-9_-]*$/);

const envelopeSchema = z
  .object({
    v: z.literal(1),
    p: z.enum(PURPOSES),
    k: z.string().min(4).max(80),
    n: b64uField(43).min(22),
    t: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    b: z.record(z.string(), z.unknown()),
    s: b64uField(86).length(86),
  })
  .strict();

/** A decoded, not yet verified envelope. */
export interface Envelope {
  v: 1;
  p: Purpose;
  k: string;
  n: string;
  t: number;
  b: Record<string, unknown>;
  s: string;
}

function signedBytes(e: Omit<Envelope, 's'>): Uint8Array {
  return concat(utf8(`${label(e.p)}\n`), canonicalBytes({ v: e.v, p: e.p, k: e.k, n: e.n, t: e.t, b: e.b }));
}

/** Text form of a signer's key. */
export function signerKeyText(kind: SignerKind, publicKey: Uint8Array): DeviceKeyText | UserKeyText {
  return kind === 'device' ? encodeId('deviceKey', publicKey) : encodeId('userKey', publicKey);
}

/** Sign `body` for `purpose`. */
export async function seal(
  signer: Signer,
  kind: SignerKind,
  purpose: Purpose,
  body: Record<string, unknown>,
  env: CryptoEnv,
): Promise<Envelope> {
  const unsigned = {
    v: 1 as const,
    p: purpose,
    k: signerKeyText(kind, signer.publicKey),
    n: b64u(env.random(16)),
    t: env.now(),
    b: body,
  };
  // Canonicalize early: a body outside the canonical subset is our bug, not the peer's.
  canonicalize(body);
  const s = b64u(await signer.sign(signedBytes(unsigned)));
  return { ...unsigned, s };
}

/** Encode an envelope for the wire (canonical JSON text). */
export function encodeEnvelope(e: Envelope): string {
  return canonicalize(e);
}

/**
 * Decode (size limit + schema + canonical body, no signature check). Raises ProtocolError only:
 * E_TOO_LARGE, E_DECODE (not JSON / not UTF-8) or E_SCHEMA (including a body with floats or unsafe
 * integers, which have no canonical encoding).
 */
export function decodeEnvelope(
  input: string | Uint8Array | unknown,
  maxBytes = MAX_ENVELOPE_BYTES,
): Envelope {
  const raw = typeof input === 'string' || input instanceof Uint8Array ? parseJson(input, maxBytes) : input;
  const r = envelopeSchema.safeParse(raw);
  if (!r.success) throw new ProtocolError('E_SCHEMA', `envelope: ${describeZod(r.error)}`);
  // Every decoded envelope must have a canonical encoding (no floats or unsafe integers in the body):
  // otherwise encoding it (for a digest, a signature check or storage) would throw an untyped error.
  let size: number;
  try {
    size = canonicalize(r.data).length;
  } catch {
    throw new ProtocolError(
      'E_SCHEMA',
      'envelope: body is outside canonical JSON (floats or unsafe integers)',
    );
  }
  if (typeof input === 'object' && !(input instanceof Uint8Array) && size > maxBytes) {
    throw new ProtocolError('E_TOO_LARGE', `message larger than ${maxBytes} bytes`);
  }
  return r.data as Envelope;
}

/** Freshness policy for verification. */
export interface Freshness {
  /** Receiver's clock. */
  now: number;
  /** Oldest accepted message age (ms). Default 120 s. */
  maxAgeMs?: number;
  /** Most a sender's clock may run ahead (ms). Default 30 s. */
  maxFutureMs?: number;
  /** Replay cache; when given, a nonce can be used once. */
  replay?: ReplayCache;
}

/** Successful verification. */
export interface Verified<B> {
  ok: true;
  body: B;
  /** Signer's raw 32-byte public key. */
  signer: Uint8Array;
  /** Signer's key text (`hdk_…` or `huk_…`). */
  signerText: string;
  envelope: Envelope;
}
/** Failed verification: a typed reason. */
export interface Rejected {
  ok: false;
  error: VerificationError | ProtocolError;
}
export type VerifyResult<B> = Verified<B> | Rejected;

/** What {@link verify} checks. */
export interface VerifyOptions<B> extends Freshness {
  purpose: Purpose;
  /** Which kind of key must have signed. */
  signerKind: SignerKind;
  /** When set, the signer must be exactly this key (e.g. the device key pinned at pairing). */
  expectedSigner?: Uint8Array;
  /** Schema of the body. */
  body: z.ZodType<B>;
}

function reject(code: ErrorCode, message: string, isProtocol = false): Rejected {
  return {
    ok: false,
    error: isProtocol ? new ProtocolError(code, message) : new VerificationError(code, message),
  };
}

/**
 * Verify an envelope: purpose, signer kind, pinned signer, signature, body schema, freshness and
 * (last, so that forgeries cannot fill it) the replay cache. Never throws for bad input.
 */
export async function verify<B>(e: Envelope, o: VerifyOptions<B>): Promise<VerifyResult<B>> {
  if (e.p !== o.purpose) return reject('E_BAD_BINDING', `expected purpose ${o.purpose}, got ${e.p}`);
  let signer: Uint8Array;
  try {
    signer = decodeId(o.signerKind === 'device' ? 'deviceKey' : 'userKey', e.k);
  } catch {
    return reject('E_WRONG_SIGNER', `signer is not a ${o.signerKind} key`);
  }
  if (o.expectedSigner) {
    const a = o.expectedSigner;
    let d = a.length ^ signer.length;
    for (let i = 0; i < Math.min(a.length, signer.length); i++) d |= a[i]! ^ signer[i]!;
    if (d !== 0) return reject('E_WRONG_SIGNER', 'signed by an unexpected key');
  }
  let sig: Uint8Array;
  try {
    sig = fromB64u(e.s, 64);
  } catch {
    return reject('E_DECODE', 'signature encoding', true);
  }
  let msg: Uint8Array;
  try {
    msg = signedBytes(e);
  } catch {
    return reject('E_SCHEMA', 'body is not canonical JSON', true);
  }
  if (!(await ed25519Verify(signer, msg, sig)))
    return reject('E_BAD_SIGNATURE', `${e.p} signature does not verify`);
  const body = o.body.safeParse(e.b);
  if (!body.success) return reject('E_SCHEMA', `${e.p} body: ${describeZod(body.error)}`, true);
  const maxAge = o.maxAgeMs ?? 120_000;
  const maxFuture = o.maxFutureMs ?? 30_000;
  if (e.t < o.now - maxAge || e.t > o.now + maxFuture)
    return reject('E_STALE', `${e.p} timestamp outside the accepted window`);
  if (o.replay) {
    const refused = checkReplay(e, o.replay, o.now);
    if (refused) return refused;
  }
  return { ok: true, body: body.data, signer, signerText: e.k, envelope: e };
}

/**
 * Record a verified envelope's nonce in `cache` (key `k/n`), received at `now`: undefined when
 * fresh, else E_REPLAY or E_STALE. {@link verify} calls it last when given a cache; a receiver that
 * must first know whether the signer holds a grant (the device, for offers) verifies without a
 * cache and calls this afterwards, so that strangers never reach the cache (review R2).
 */
export function checkReplay(e: Envelope, cache: ReplayCache, now: number): Rejected | undefined {
  const v = cache.check(`${e.k}/${e.n}`, e.t, now);
  if (v === 'replay') return reject('E_REPLAY', `${e.p} nonce already used`);
  if (v === 'stale') return reject('E_STALE', `${e.p} older than the replay cache's low-water mark`);
  return undefined;
}

/** Hash input that identifies one envelope exactly (used to bind an answer to its offer). */
export function envelopeDigestInput(e: Envelope): Uint8Array {
  return concat(utf8(`${label('envelope-digest')}\n`), canonicalBytes(e));
}

/** A short, secret-free description of a zod error: the paths and rule names only. */
export function describeZod(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.code}`)
    .join('; ');
}
