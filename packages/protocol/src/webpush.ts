/**
 * Web Push notifications (docs/events-contract.md §6, docs/protocol.md "Notifications").
 *
 * - {@link encryptPush}: RFC 8291 message encryption with the RFC 8188 `aes128gcm` content coding:
 *   an ephemeral P-256 key, ECDH with the subscription's `p256dh`, HKDF-SHA-256 with its `auth`
 *   secret, one AES-128-GCM record. The device encrypts; neither the Hearth server nor the push
 *   service can read the result.
 * - Every Hearth notification has the same length: the plaintext is padded to
 *   {@link PUSH_PLAINTEXT_BYTES}, so the record is {@link PUSH_RECORD_BYTES} (3,000) and the body
 *   {@link PUSH_BODY_BYTES} (3,086) bytes. Only the time of a push and the fact of it show.
 * - {@link decryptPush}: what a browser (user agent) does with the body; for tests and tools.
 * - The plaintext: `PushPayload` (push-payload.ts), a small JSON, with its strict decoder.
 * - The subscription a viewer hands its devices (`push/sub`, sealed): {@link pushSubscriptionSchema}.
 *
 * Pure: WebCrypto for ECDH, HKDF and AES-GCM; @noble/curves only to derive the public point of an
 * ephemeral scalar drawn from the injectable {@link CryptoEnv} (so RFC 8291's vector is testable)
 * and to check received points.
 */
import { p256 } from '@noble/curves/nist.js';
import { z } from 'zod';
import { ab, b64u, concat, fromB64u, utf8, wipe } from './bytes.js';
import type { CryptoEnv } from './crypto/env.js';
import { hkdfSha256 } from './crypto/primitives.js';
import { InternalError, ProtocolError, VerificationError } from './errors.js';
import { decodePushPayload, encodePushPayload, type PushPayload } from './push-payload.js';

const describe = (err: z.ZodError): string =>
  err.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.code}`)
    .join('; ');

const subtle = (): SubtleCrypto => globalThis.crypto.subtle;

/** Length of the RFC 8188 header Hearth writes: salt 16, rs 4, idlen 1, keyid 65 (the sender's point). */
export const PUSH_HEADER_BYTES = 86;
/** Length of the one encrypted record of every Hearth notification (padded plaintext + 16-byte tag). */
export const PUSH_RECORD_BYTES = 3000;
/** Length of every Hearth push body (header + record): well below the 4,096 bytes push services take. */
export const PUSH_BODY_BYTES = PUSH_HEADER_BYTES + PUSH_RECORD_BYTES;
/** Padded plaintext length (before the tag): the JSON, the 0x02 delimiter, then zeros. */
export const PUSH_PLAINTEXT_BYTES = PUSH_RECORD_BYTES - 16;
/** The record size Hearth puts in the header (RFC 8188 `rs`; ≥ the one record's length). */
export const PUSH_RS = 4096;
/** Largest push body the protocol accepts anywhere (RFC 8030 push services take 4,096). */
export const MAX_PUSH_BODY_BYTES = 4096;

const P256_POINT_BYTES = 65;
const AUTH_BYTES = 16;
const SALT_BYTES = 16;

// ------------------------------------------------------------------ schemas

const b64uLen = (bytes: number) =>
  z.string().regex(new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((bytes * 4) / 3)}}$`));

/** True when `b` is an uncompressed P-256 point on the curve (not the identity). */
export function isP256Point(b: Uint8Array): boolean {
  if (b.length !== P256_POINT_BYTES || b[0] !== 0x04) return false;
  try {
    p256.Point.fromBytes(b).assertValidity();
    return true;
  } catch {
    return false;
  }
}

/** Largest endpoint URL of a subscription, in characters. */
export const MAX_PUSH_ENDPOINT_CHARS = 1024;

/** A push endpoint: an absolute https URL, ≤ 1024 characters, no credentials, no fragment. */
export const pushEndpointSchema = /* @__PURE__ */ z
  .string()
  .max(MAX_PUSH_ENDPOINT_CHARS)
  .refine((s): boolean => {
    try {
      const u = new URL(s);
      return (
        u.protocol === 'https:' && u.username === '' && u.password === '' && u.hash === '' && u.host !== ''
      );
    } catch {
      return false;
    }
  }, 'https URL');

/**
 * A Web Push subscription as a viewer hands it to a device (`push/sub`, sealed): `endpoint` (the
 * push service's URL for this browser), `p256dh` (b64u of the browser's 65-byte P-256 point) and
 * `auth` (b64u of its 16-byte secret).
 */
export const pushSubscriptionSchema = /* @__PURE__ */ z
  .object({
    endpoint: pushEndpointSchema,
    p256dh: b64uLen(P256_POINT_BYTES).refine((s): boolean => {
      try {
        return isP256Point(fromB64u(s, P256_POINT_BYTES));
      } catch {
        return false;
      }
    }, 'P-256 point'),
    auth: b64uLen(AUTH_BYTES),
  })
  .strict();
export type PushSubscriptionKeys = z.infer<typeof pushSubscriptionSchema>;

/** Decode a `push/sub` subscription. Raises ProtocolError only. */
export function decodePushSubscription(v: unknown): PushSubscriptionKeys {
  let size: number;
  try {
    size = JSON.stringify(v)?.length ?? 0;
  } catch {
    throw new ProtocolError('E_SCHEMA', 'push subscription: not JSON');
  }
  if (size > 2048) throw new ProtocolError('E_TOO_LARGE', 'push subscription larger than 2048 bytes');
  const r = pushSubscriptionSchema.safeParse(v);
  if (!r.success) throw new ProtocolError('E_SCHEMA', `push subscription: ${describe(r.error)}`);
  return r.data;
}

// ------------------------------------------------------------------ RFC 8291 / RFC 8188

async function importPublic(point: Uint8Array): Promise<CryptoKey> {
  if (!isP256Point(point)) throw new ProtocolError('E_DECODE', 'not a P-256 point');
  return subtle().importKey('raw', ab(point), { name: 'ECDH', namedCurve: 'P-256' }, false, []);
}

async function importPrivate(d: Uint8Array, point: Uint8Array): Promise<CryptoKey> {
  return subtle().importKey(
    'jwk',
    {
      kty: 'EC',
      crv: 'P-256',
      d: b64u(d),
      x: b64u(point.subarray(1, 33)),
      y: b64u(point.subarray(33, 65)),
      ext: false,
    },
    { name: 'ECDH', namedCurve: 'P-256' },
    false,
    ['deriveBits'],
  );
}

async function ecdh(d: Uint8Array, dPoint: Uint8Array, peer: Uint8Array): Promise<Uint8Array> {
  const [priv, pub] = await Promise.all([importPrivate(d, dPoint), importPublic(peer)]);
  return new Uint8Array(await subtle().deriveBits({ name: 'ECDH', public: pub }, priv, 256));
}

/** RFC 8291 §3.4 and RFC 8188 §2.2/2.3: the content encryption key and the nonce. */
async function deriveKeys(
  secret: Uint8Array,
  auth: Uint8Array,
  salt: Uint8Array,
  uaPublic: Uint8Array,
  asPublic: Uint8Array,
): Promise<{ cek: Uint8Array; nonce: Uint8Array }> {
  const keyInfo = concat(utf8('WebPush: info\0'), uaPublic, asPublic);
  const ikm = await hkdfSha256(secret, auth, keyInfo, 32);
  const [cek, nonce] = await Promise.all([
    hkdfSha256(ikm, salt, utf8('Content-Encoding: aes128gcm\0'), 16),
    hkdfSha256(ikm, salt, utf8('Content-Encoding: nonce\0'), 12),
  ]);
  wipe(ikm);
  return { cek, nonce };
}

/** A fresh P-256 scalar from `env` (rejection sampling: 1 ≤ d < n). */
function drawScalar(env: CryptoEnv): Uint8Array {
  for (let i = 0; i < 64; i++) {
    const d = env.random(32);
    if (p256.utils.isValidSecretKey(d)) return d;
  }
  /* c8 ignore next */
  throw new InternalError('E_INTERNAL', 'the random source gives no valid P-256 scalar');
}

/** What {@link encryptPush} encrypts to: a subscription's keys, as bytes or as its b64u texts. */
export interface PushTarget {
  /** The browser's 65-byte P-256 point (`p256dh`). */
  p256dh: Uint8Array | string;
  /** The browser's 16-byte auth secret (`auth`). */
  auth: Uint8Array | string;
}

export interface EncryptPushOptions {
  /**
   * Pad the plaintext (with its 0x02 delimiter) to this many bytes; default
   * {@link PUSH_PLAINTEXT_BYTES}. `0` adds no padding (the RFC 8291 example).
   */
  padTo?: number;
  /** The record size written in the header; default {@link PUSH_RS}. */
  rs?: number;
}

const keyBytes = (v: Uint8Array | string, n: number, what: string): Uint8Array => {
  const b = typeof v === 'string' ? fromB64u(v, n) : v;
  if (b.length !== n) throw new ProtocolError('E_DECODE', `${what} must be ${n} bytes`);
  return b;
};

/**
 * RFC 8291 encryption of `plaintext` to a subscription: the `aes128gcm` body (header with salt,
 * `rs` and the ephemeral public key, then one record). The salt and then the ephemeral scalar are
 * drawn from `env` (in that order). Raises ProtocolError (bad key, plaintext too long).
 */
export async function encryptPush(
  plaintext: Uint8Array,
  to: PushTarget,
  env: CryptoEnv,
  o: EncryptPushOptions = {},
): Promise<Uint8Array> {
  const uaPublic = keyBytes(to.p256dh, P256_POINT_BYTES, 'p256dh');
  const auth = keyBytes(to.auth, AUTH_BYTES, 'auth');
  const rs = o.rs ?? PUSH_RS;
  const padTo = o.padTo ?? PUSH_PLAINTEXT_BYTES;
  const size = Math.max(padTo, plaintext.length + 1);
  if (padTo !== 0 && plaintext.length + 1 > padTo)
    throw new ProtocolError('E_TOO_LARGE', `push plaintext longer than ${padTo - 1} bytes`);
  if (size + 16 > rs || rs > 0xffffffff || rs < 18)
    throw new ProtocolError('E_TOO_LARGE', 'push plaintext does not fit one record');
  const salt = env.random(SALT_BYTES);
  const d = drawScalar(env);
  const asPublic = p256.getPublicKey(d, false);
  const secret = await ecdh(d, asPublic, uaPublic);
  wipe(d);
  const { cek, nonce } = await deriveKeys(secret, auth, salt, uaPublic, asPublic);
  wipe(secret);
  const padded = new Uint8Array(size);
  padded.set(plaintext);
  padded[plaintext.length] = 0x02; // the last (and only) record
  const key = await subtle().importKey('raw', ab(cek), 'AES-GCM', false, ['encrypt']);
  wipe(cek);
  const record = new Uint8Array(await subtle().encrypt({ name: 'AES-GCM', iv: ab(nonce) }, key, ab(padded)));
  wipe(padded);
  const header = new Uint8Array(21);
  header.set(salt);
  new DataView(header.buffer).setUint32(16, rs);
  header[20] = P256_POINT_BYTES;
  return concat(header, asPublic, record);
}

/** The browser's side: its private scalar `d` (32 bytes), its point and its auth secret. */
export interface PushReceiverKeys {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  auth: Uint8Array;
}

/**
 * Decrypt an `aes128gcm` push body as a user agent does (RFC 8291 §3.4, RFC 8188 §2): exactly one
 * record, padding stripped. Raises ProtocolError (malformed) or VerificationError E_DECRYPT.
 */
export async function decryptPush(body: Uint8Array, keys: PushReceiverKeys): Promise<Uint8Array> {
  if (body.length > MAX_PUSH_BODY_BYTES)
    throw new ProtocolError('E_TOO_LARGE', `push body larger than ${MAX_PUSH_BODY_BYTES} bytes`);
  if (body.length < 21) throw new ProtocolError('E_DECODE', 'push body shorter than its header');
  const salt = body.subarray(0, 16);
  const rs = new DataView(body.buffer, body.byteOffset, body.length).getUint32(16);
  const idlen = body[20] as number;
  if (idlen !== P256_POINT_BYTES) throw new ProtocolError('E_DECODE', 'push keyid is not a P-256 point');
  if (rs < 18) throw new ProtocolError('E_DECODE', 'push record size below 18');
  const asPublic = body.subarray(21, 21 + idlen);
  const record = body.subarray(21 + idlen);
  if (asPublic.length !== idlen || record.length < 17)
    throw new ProtocolError('E_DECODE', 'push body shorter than its header and one record');
  if (record.length > rs) throw new ProtocolError('E_DECODE', 'push body holds more than one record');
  const secret = await ecdh(keys.privateKey, keys.publicKey, asPublic);
  const { cek, nonce } = await deriveKeys(secret, keys.auth, salt, keys.publicKey, asPublic);
  wipe(secret);
  const key = await subtle().importKey('raw', ab(cek), 'AES-GCM', false, ['decrypt']);
  wipe(cek);
  let padded: Uint8Array;
  try {
    padded = new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv: ab(nonce) }, key, ab(record)));
  } catch {
    throw new VerificationError('E_DECRYPT', 'push record does not authenticate');
  }
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (end < 0 || padded[end] !== 0x02)
    throw new ProtocolError('E_DECODE', 'push record lacks the last-record delimiter');
  return padded.slice(0, end);
}

/**
 * Encrypt a Hearth notification to one subscription: the payload's JSON, padded so that every body
 * is {@link PUSH_BODY_BYTES} long. Raises ProtocolError.
 */
export async function sealPushPayload(p: PushPayload, to: PushTarget, env: CryptoEnv): Promise<Uint8Array> {
  return encryptPush(encodePushPayload(p), to, env);
}

/** A browser-side helper for tests: decrypt a Hearth body and decode its payload. */
export async function openPushPayload(body: Uint8Array, keys: PushReceiverKeys): Promise<PushPayload> {
  return decodePushPayload(await decryptPush(body, keys));
}
