/**
 * The metadata box `m` of a sealed blob (format v2): the camera name and the exact start and end
 * times, which the clear header does not carry (a server that stores the blob would see them).
 *
 * ```
 * metaKey = HKDF-SHA-256(ikm = contentKey, salt, info = "hearth/v1/clip/meta", 32)
 * m       = b64u(AES-256-GCM(metaKey, nonce = 0^12, pt = canonicalJSON({cam, t0, t1}),
 *                            aad = canonicalJSON(header without m, r and sig)))
 * ```
 *
 * The key is fresh per blob (the content key and salt are), so the fixed nonce is used once. The
 * AAD binds the box to its blob's clear fields; `m` itself is in the signed bytes and in the HPKE
 * `info` of every wrap. Decoding: size limit first, strict schema, canonical form, and the clear
 * hour must be the hour of `t0`. Only the readers (who can unwrap the content key) see the box.
 */
import { z } from 'zod';
import { b64u, fromB64u } from '../bytes.js';
import { canonicalBytes, canonicalize, parseJson } from '../canonical.js';
import { hkdfSha256, info } from '../crypto/primitives.js';
import { describeZod } from '../envelope.js';
import { HearthError, ProtocolError, VerificationError } from '../errors.js';

/** Purpose label of the metadata key (HKDF info). */
export const CLIP_META_PURPOSE = 'clip/meta';
/** Longest camera name (UTF-16 units). */
export const MAX_CLIP_CAMERA_CHARS = 64;
/** Largest metadata plaintext (the JSON), checked before it is parsed. */
export const MAX_CLIP_META_BYTES = 512;
/** Bounds of the `m` text in the header: a tag alone, up to the largest plaintext and its tag. */
export const MIN_CLIP_META_B64 = 22;
export const MAX_CLIP_META_B64 = Math.ceil(((MAX_CLIP_META_BYTES + 16) * 4) / 3);
const HOUR_MS = 3_600_000;

/** What the metadata box holds. */
export interface ClipMeta {
  /** Camera name. */
  cam: string;
  /** Start and end, ms since the epoch (t1 ≥ t0). */
  t0: number;
  t1: number;
}

const time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const metaSchema = z
  .object({
    cam: z
      .string()
      .min(1)
      .max(MAX_CLIP_CAMERA_CHARS)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
      .regex(/^[^\u0000-\u001f\u007f]+$/),
    t0: time,
    t1: time,
  })
  .strict()
  .refine((m) => m.t1 >= m.t0, 't1 before t0');

const bad = (m: string) => new ProtocolError('E_CLIP_HEADER', `clip meta: ${m}`);

/** Check a metadata value (the sealer's side): E_CLIP_HEADER when it could not be decoded. */
export function checkClipMeta(meta: ClipMeta): ClipMeta {
  const r = metaSchema.safeParse(meta);
  if (!r.success) throw bad(describeZod(r.error));
  const { cam, t0, t1 } = r.data;
  return { cam, t0, t1 };
}

/** The canonical plaintext of the box. */
export function encodeClipMeta(meta: ClipMeta): Uint8Array {
  return canonicalBytes(checkClipMeta(meta));
}

/**
 * Decode the plaintext of a box: size limit before anything, strict schema, canonical form.
 * ProtocolError only: E_TOO_LARGE, E_CLIP_HEADER.
 */
export function decodeClipMeta(bytes: Uint8Array): ClipMeta {
  if (!(bytes instanceof Uint8Array)) throw bad('not bytes');
  if (bytes.length > MAX_CLIP_META_BYTES)
    throw new ProtocolError('E_TOO_LARGE', `clip meta larger than ${MAX_CLIP_META_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = parseJson(bytes, MAX_CLIP_META_BYTES);
  } catch (e) {
    if (e instanceof HearthError && e.code === 'E_TOO_LARGE') throw e;
    throw bad((e as Error).message);
  }
  const r = metaSchema.safeParse(raw);
  if (!r.success) throw bad(describeZod(r.error));
  const meta = { cam: r.data.cam, t0: r.data.t0, t1: r.data.t1 };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw bad('not UTF-8');
  }
  if (canonicalize(meta) !== text) throw bad('not in canonical form');
  return meta;
}

/** The hour a time falls in (the clear `hr`). */
export function clipHour(t0: number): number {
  return Math.floor(t0 / HOUR_MS);
}

const ZERO_NONCE = new Uint8Array(12);

async function metaKey(contentKey: Uint8Array, salt: Uint8Array, usage: KeyUsage): Promise<CryptoKey> {
  const raw = await hkdfSha256(contentKey, salt, info(CLIP_META_PURPOSE), 32);
  try {
    // hkdfSha256 returns bytes over a plain ArrayBuffer.
    return await globalThis.crypto.subtle.importKey('raw', raw as Uint8Array<ArrayBuffer>, 'AES-GCM', false, [
      usage,
    ]);
  } finally {
    raw.fill(0);
  }
}

/** Seal the box: the b64u text of `m`. `aad` = {@link clipMetaAad} of the clear core. */
export async function sealClipMeta(
  contentKey: Uint8Array,
  salt: Uint8Array,
  meta: ClipMeta,
  aad: Uint8Array,
): Promise<string> {
  const pt = encodeClipMeta(meta);
  const key = await metaKey(contentKey, salt, 'encrypt');
  const ct = await globalThis.crypto.subtle.encrypt(
    { name: 'AES-GCM', iv: ZERO_NONCE, additionalData: new Uint8Array(aad) },
    key,
    new Uint8Array(pt),
  );
  return b64u(new Uint8Array(ct));
}

/**
 * Open the box `m` of a header whose signature verified: VerificationError E_DECRYPT when it does
 * not open under this blob's key and clear fields, ProtocolError E_CLIP_HEADER (or E_TOO_LARGE)
 * when what it holds is malformed or `t0` is not in the clear hour `hr`.
 */
export async function openClipMeta(
  contentKey: Uint8Array,
  salt: Uint8Array,
  m: string,
  aad: Uint8Array,
  hr: number,
): Promise<ClipMeta> {
  if (typeof m !== 'string' || m.length > MAX_CLIP_META_B64) throw bad('box too large');
  let ct: Uint8Array;
  try {
    ct = fromB64u(m);
  } catch {
    throw bad('box is not base64url');
  }
  const key = await metaKey(contentKey, salt, 'decrypt');
  let pt: Uint8Array;
  try {
    pt = new Uint8Array(
      await globalThis.crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: ZERO_NONCE, additionalData: new Uint8Array(aad) },
        key,
        new Uint8Array(ct),
      ),
    );
  } catch {
    throw new VerificationError('E_DECRYPT', 'clip: the metadata box does not open for this blob');
  }
  const meta = decodeClipMeta(pt);
  if (clipHour(meta.t0) !== hr) throw bad('t0 is not in the hour of the clear header');
  return meta;
}
