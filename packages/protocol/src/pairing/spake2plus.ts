/**
 * SPAKE2+ (RFC 9383), ciphersuite P256-SHA256-HKDF-SHA256-HMAC-SHA256.
 *
 * The prover (the viewer) knows the password and derives (w0, w1) from it. The verifier (the device)
 * keeps only the registration record (w0, L = w1·P): with it the device can run the protocol, but it
 * cannot act as a prover, and the password itself never needs to be stored.
 *
 * ```
 *   Prover                                       Verifier
 *   x <- [1, n-1]
 *   shareP = x·P + w0·M          shareP  ->
 *                                                y <- [1, n-1]
 *                                                shareV = y·P + w0·N
 *                                                Z = y·(shareP - w0·M),  V = y·L
 *                            <- shareV, confirmV
 *   Z = x·(shareV - w0·N), V = w1·(shareV - w0·N)
 *   check confirmV                  confirmP ->  check confirmP
 * ```
 *
 * TT = len(Context)||Context || len(idProver)||idProver || len(idVerifier)||idVerifier || len(M)||M
 *   || len(N)||N || len(shareP)||shareP || len(shareV)||shareV || len(Z)||Z || len(V)||V || len(w0)||w0,
 * with 8-byte little-endian lengths, uncompressed SEC1 points and w0 as a 32-byte big-endian scalar.
 * K_main = SHA-256(TT); K_confirmP || K_confirmV = HKDF(nil, K_main, "ConfirmationKeys", 64);
 * K_shared = HKDF(nil, K_main, "SharedKey", 32); confirmP = HMAC(K_confirmP, shareV);
 * confirmV = HMAC(K_confirmV, shareP).
 *
 * P-256 has cofactor h = 1, so "in the prime-order subgroup" is "on the curve and not the identity".
 * Every received share is checked for both before use (RFC 9383 §6).
 *
 * Secrets cross this API as byte arrays so that callers can {@link wipe} them; the curve arithmetic
 * necessarily holds transient bigint copies, which JavaScript cannot erase.
 */
import { p256 } from '@noble/curves/nist.js';
import { concat, constantTimeEqual, fromHex, hex, utf8, wipe } from '../bytes.js';
import type { CryptoEnv } from '../crypto/env.js';
import { hkdfSha256, hmacSha256, pbkdf2Sha256, sha256 } from '../crypto/primitives.js';
import { ProtocolError, VerificationError } from '../errors.js';

type Point = ReturnType<typeof p256.Point.fromBytes>;
const Point = p256.Point;

/** Ciphersuite name. */
export const SPAKE2PLUS_SUITE = 'P256-SHA256-HKDF-SHA256-HMAC-SHA256';
/** Order n of the P-256 group (the RFC's p). */
export const P256_ORDER: bigint = Point.Fn.ORDER;
/** Length of a scalar (w0, w1, x, y) in bytes. */
export const SCALAR_BYTES = 32;
/** Length of an uncompressed SEC1 P-256 point in bytes. */
export const POINT_BYTES = 65;
/** Length of confirmP / confirmV (HMAC-SHA-256) in bytes. */
export const CONFIRM_BYTES = 32;
/** Length of K_shared in bytes. */
export const SHARED_KEY_BYTES = 32;
/** Length of each half of the PBKDF output: ceil(log2(n)) + 64 bits = 320 bits (RFC 9383 §3.2). */
export const W_HALF_BYTES = 40;

/** M for P-256 (RFC 9383 §4), compressed SEC1. seed: "1.2.840.10045.3.1.7 point generation seed (M)". */
export const M_COMPRESSED = fromHex('02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f');
/** N for P-256 (RFC 9383 §4), compressed SEC1. seed: "1.2.840.10045.3.1.7 point generation seed (N)". */
export const N_COMPRESSED = fromHex('03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49');

// Both sides multiply M and N by w0 in every run: keep window tables for them (lazily built).
const M = Point.fromBytes(M_COMPRESSED).precompute(8);
const N = Point.fromBytes(N_COMPRESSED).precompute(8);
const M_BYTES = M.toBytes(false);
const N_BYTES = N.toBytes(false);

/** Parameters both sides must agree on; they enter the transcript TT. */
export interface Spake2PlusContext {
  /** Application context string (RFC 9383 "Context"). */
  context: Uint8Array;
  /** Prover identity (may be empty). */
  idProver: Uint8Array;
  /** Verifier identity (may be empty). */
  idVerifier: Uint8Array;
}

/** PBKDF2-HMAC-SHA-256 parameters used to derive w0 and w1 from the password. */
export interface PbkdfParams {
  salt: Uint8Array;
  iterations: number;
}

/** The prover's secrets: w0 and w1, 32-byte big-endian scalars in [0, n-1]. */
export interface ProverSecrets {
  w0: Uint8Array;
  w1: Uint8Array;
}

/** What the verifier stores: w0 (32-byte scalar) and L = w1·P (65-byte uncompressed point). */
export interface VerifierRecord {
  w0: Uint8Array;
  L: Uint8Array;
}

/** Everything one side computes in a run. All fields except shareP/shareV are secret. */
export interface Spake2PlusKeys {
  shareP: Uint8Array;
  shareV: Uint8Array;
  Z: Uint8Array;
  V: Uint8Array;
  /** The transcript TT (contains w0: secret). */
  TT: Uint8Array;
  /** K_main = Hash(TT). */
  K_main: Uint8Array;
  K_confirmP: Uint8Array;
  K_confirmV: Uint8Array;
  K_shared: Uint8Array;
  /** MAC(K_confirmP, shareV): what the prover sends. */
  confirmP: Uint8Array;
  /** MAC(K_confirmV, shareP): what the verifier sends. */
  confirmV: Uint8Array;
}

/** Either a source of randomness or, for test vectors only, an explicit 32-byte scalar. */
export type ScalarSource = CryptoEnv | { scalar: Uint8Array };

// ------------------------------------------------------------------ scalars and points

function toBigInt(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${hex(b)}`);
}

function toBytes32(x: bigint): Uint8Array {
  return fromHex(x.toString(16).padStart(SCALAR_BYTES * 2, '0'));
}

/** Parse a 32-byte scalar in [0, n-1] (w0, w1). */
function scalarIn(b: Uint8Array, name: string): bigint {
  if (!(b instanceof Uint8Array) || b.length !== SCALAR_BYTES)
    throw new RangeError(`${name} must be ${SCALAR_BYTES} bytes`);
  const s = toBigInt(b);
  if (s >= P256_ORDER) throw new RangeError(`${name} must be below the group order`);
  return s;
}

/** Draw an ephemeral scalar in [1, n-1]: 48 random bytes reduced mod n (bias < 2^-128), zero re-drawn. */
function ephemeralScalar(src: ScalarSource): bigint {
  if ('scalar' in src) {
    const s = scalarIn(src.scalar, 'scalar');
    if (s === 0n) throw new RangeError('scalar must not be zero');
    return s;
  }
  for (;;) {
    const r = src.random(48);
    const s = toBigInt(r) % P256_ORDER;
    wipe(r);
    if (s !== 0n) return s;
  }
}

/** Multiply that accepts the scalar 0 (noble refuses it). */
function mul(p: Point, k: bigint): Point {
  return k === 0n ? Point.ZERO : p.multiply(k);
}

/**
 * Decode a share received from the peer: exactly 65 bytes, uncompressed, on the curve, not the identity.
 * Raises ProtocolError E_DECODE otherwise.
 */
export function decodeShare(b: Uint8Array): Point {
  if (!(b instanceof Uint8Array) || b.length !== POINT_BYTES || b[0] !== 0x04) {
    throw new ProtocolError('E_DECODE', 'point: expected a 65-byte uncompressed P-256 point');
  }
  let p: Point;
  try {
    p = Point.fromBytes(b);
    p.assertValidity();
  } catch {
    throw new ProtocolError('E_DECODE', 'point: not on the P-256 curve');
  }
  if (p.is0()) throw new ProtocolError('E_DECODE', 'point: identity element');
  return p;
}

function encodePoint(p: Point): Uint8Array {
  if (p.is0()) throw new ProtocolError('E_DECODE', 'point: degenerate share (identity)');
  return p.toBytes(false);
}

// ------------------------------------------------------------------ registration

/** 8-byte little-endian length prefix followed by the bytes (RFC 9383 "len(S) || S"). */
export function lenLE(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + b.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, b.length >>> 0, true);
  dv.setUint32(4, Math.floor(b.length / 2 ** 32), true);
  out.set(b, 8);
  return out;
}

/**
 * w0s || w1s = PBKDF2-HMAC-SHA-256(len(pw)||pw || len(idProver)||idProver || len(idVerifier)||idVerifier,
 * salt, iterations, 80 bytes); w0 = w0s mod n, w1 = w1s mod n (RFC 9383 §3.2, with k = 64).
 */
export async function deriveProverSecrets(
  password: Uint8Array,
  ctx: Pick<Spake2PlusContext, 'idProver' | 'idVerifier'>,
  pbkdf: PbkdfParams,
): Promise<ProverSecrets> {
  if (!Number.isSafeInteger(pbkdf.iterations) || pbkdf.iterations < 1)
    throw new RangeError('PBKDF iterations must be >= 1');
  const input = concat(lenLE(password), lenLE(ctx.idProver), lenLE(ctx.idVerifier));
  const out = await pbkdf2Sha256(input, pbkdf.salt, pbkdf.iterations, 2 * W_HALF_BYTES);
  wipe(input);
  const w0 = toBytes32(toBigInt(out.subarray(0, W_HALF_BYTES)) % P256_ORDER);
  const w1 = toBytes32(toBigInt(out.subarray(W_HALF_BYTES)) % P256_ORDER);
  wipe(out);
  return { w0, w1 };
}

/** The verifier's registration record: (w0, L = w1·P). */
export function computeVerifierRecord(secrets: ProverSecrets): VerifierRecord {
  const w1 = scalarIn(secrets.w1, 'w1');
  scalarIn(secrets.w0, 'w0');
  const L = mul(Point.BASE, w1);
  if (L.is0()) throw new RangeError('w1 must not be zero');
  return { w0: secrets.w0.slice(), L: L.toBytes(false) };
}

// ------------------------------------------------------------------ online protocol

/** Prover's first step: choose x and compute shareP = x·P + w0·M. Keep `x` secret; wipe it when done. */
export function proverShare(w0: Uint8Array, src: ScalarSource): { x: Uint8Array; shareP: Uint8Array } {
  const w0n = scalarIn(w0, 'w0');
  const x = ephemeralScalar(src);
  const X = Point.BASE.multiply(x).add(mul(M, w0n));
  return { x: toBytes32(x), shareP: encodePoint(X) };
}

/**
 * Verifier's step: validate shareP, choose y, compute shareV = y·P + w0·N, Z = y·(shareP − w0·M),
 * V = y·L and the key schedule. Send shareV and keys.confirmV; later compare the prover's confirmP with
 * {@link checkConfirmation}.
 */
export async function verifierRespond(
  ctx: Spake2PlusContext,
  record: VerifierRecord,
  shareP: Uint8Array,
  src: ScalarSource,
): Promise<Spake2PlusKeys> {
  const X = decodeShare(shareP);
  const w0n = scalarIn(record.w0, 'w0');
  const L = decodeShare(record.L);
  const y = ephemeralScalar(src);
  const Y = Point.BASE.multiply(y).add(mul(N, w0n));
  const base = X.subtract(mul(M, w0n));
  if (base.is0()) throw new ProtocolError('E_DECODE', 'point: degenerate share');
  const Z = base.multiply(y);
  const V = L.multiply(y);
  return keySchedule(ctx, shareP.slice(), encodePoint(Y), encodePoint(Z), encodePoint(V), record.w0);
}

/**
 * Prover's second step: validate shareV, compute Z = x·(shareV − w0·N), V = w1·(shareV − w0·N) and the
 * key schedule. Check the verifier's confirmV with {@link checkConfirmation} before sending keys.confirmP.
 */
export async function proverFinish(
  ctx: Spake2PlusContext,
  secrets: ProverSecrets,
  x: Uint8Array,
  shareP: Uint8Array,
  shareV: Uint8Array,
): Promise<Spake2PlusKeys> {
  const Y = decodeShare(shareV);
  const w0n = scalarIn(secrets.w0, 'w0');
  const w1n = scalarIn(secrets.w1, 'w1');
  const xn = scalarIn(x, 'x');
  const base = Y.subtract(mul(N, w0n));
  if (base.is0()) throw new ProtocolError('E_DECODE', 'point: degenerate share');
  const Z = mul(base, xn);
  const V = mul(base, w1n);
  return keySchedule(ctx, shareP.slice(), shareV.slice(), encodePoint(Z), encodePoint(V), secrets.w0);
}

/** The transcript TT of RFC 9383 §3.3. */
export function transcript(
  ctx: Spake2PlusContext,
  shareP: Uint8Array,
  shareV: Uint8Array,
  Z: Uint8Array,
  V: Uint8Array,
  w0: Uint8Array,
): Uint8Array {
  return concat(
    lenLE(ctx.context),
    lenLE(ctx.idProver),
    lenLE(ctx.idVerifier),
    lenLE(M_BYTES),
    lenLE(N_BYTES),
    lenLE(shareP),
    lenLE(shareV),
    lenLE(Z),
    lenLE(V),
    lenLE(w0),
  );
}

const NO_SALT = new Uint8Array(0);

async function keySchedule(
  ctx: Spake2PlusContext,
  shareP: Uint8Array,
  shareV: Uint8Array,
  Z: Uint8Array,
  V: Uint8Array,
  w0: Uint8Array,
): Promise<Spake2PlusKeys> {
  const TT = transcript(ctx, shareP, shareV, Z, V, w0);
  const K_main = await sha256(TT);
  const ck = await hkdfSha256(K_main, NO_SALT, utf8('ConfirmationKeys'), 64);
  const K_confirmP = ck.slice(0, 32);
  const K_confirmV = ck.slice(32, 64);
  wipe(ck);
  const K_shared = await hkdfSha256(K_main, NO_SALT, utf8('SharedKey'), SHARED_KEY_BYTES);
  const confirmP = await hmacSha256(K_confirmP, shareV);
  const confirmV = await hmacSha256(K_confirmV, shareP);
  return { shareP, shareV, Z, V, TT, K_main, K_confirmP, K_confirmV, K_shared, confirmP, confirmV };
}

/**
 * Compare a received confirmation with the expected one in constant time; raises VerificationError
 * E_BAD_CONFIRMATION on mismatch (wrong password, or a tampered share or confirmation).
 */
export function checkConfirmation(expected: Uint8Array, received: Uint8Array): void {
  if (!constantTimeEqual(expected, received)) throw new VerificationError('E_BAD_CONFIRMATION');
}

/** Overwrite every secret of a run (keeps shareP and shareV, which are public). */
export function wipeKeys(k: Spake2PlusKeys | undefined): void {
  if (!k) return;
  for (const b of [k.Z, k.V, k.TT, k.K_main, k.K_confirmP, k.K_confirmV, k.K_shared, k.confirmP, k.confirmV])
    wipe(b);
}

/** M and N as uncompressed points (they appear in TT in this form). */
export const SPAKE2PLUS_POINTS = { M: M_BYTES, N: N_BYTES } as const;
