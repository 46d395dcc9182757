/**
 * The header of a sealed blob: what the device signs, and the content key wrapped to each reader.
 *
 * ```
 * blob   = "HCB" 0x01 ‖ u32be(H) ‖ header (H bytes, canonical JSON) ‖ frame*
 * frame  = u32be(L) ‖ ct_i                                  16 ≤ L ≤ cs + 16 (stream.ts)
 * header = {v:1, kind, dev, dk, cam, id, t0, t1, salt, cs, n, len, dg, r: [recipient…], sig}
 * recipient = {k: "huk_…", x: b64u(X25519 pub), s: b64u(reader-key sig), e: b64u(HPKE enc), w: b64u(wrapped key)}
 * sig    = Ed25519_dk("hearth/v1/clip/header\n" ‖ canonicalJSON(header without sig))
 * (e, w) = HPKE-Base(DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM).Seal(pkR = x,
 *            info = "hearth/v1/clip/wrap\n" ‖ canonicalJSON(header without r and sig),
 *            aad  = canonicalJSON({k, x}), pt = contentKey)
 * ```
 *
 * The wrap's `info` binds every field of the blob (device, camera, id, times, kind, salt, chunk
 * count and digest), so a wrapped key cannot be moved to another blob; its `aad` binds the reader.
 */
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { z } from 'zod';
import { b64u, concat, constantTimeEqual, fromB64u, u32be, utf8 } from '../bytes.js';
import { canonicalBytes, canonicalize, parseJson } from '../canonical.js';
import { ed25519Verify, label, type Signer, type X25519KeyPair } from '../crypto/primitives.js';
import { describeZod } from '../envelope.js';
import { AccessError, HearthError, ProtocolError, VerificationError } from '../errors.js';
import { type DeviceId, type DeviceKeyText, decodeId, deviceIdMatches, type UserKeyText } from '../ids.js';
import { CLIP_KEY_BYTES, MAX_CLIP_CHUNK_BYTES, MAX_CLIP_CHUNKS } from './stream.js';

/** Purpose labels: the device's header signature and the HPKE info of the wrapped keys. */
export const CLIP_HEADER_PURPOSE = 'clip/header';
export const CLIP_WRAP_PURPOSE = 'clip/wrap';
/** The first four bytes of every sealed blob: "HCB" and the format version 1. */
export const CLIP_MAGIC = new Uint8Array([0x48, 0x43, 0x42, 0x01]);
/** Largest header (the JSON text), checked before it is read. */
export const MAX_CLIP_HEADER_BYTES = 32 * 1024;
/** Most recipients (reader keys) of one blob. */
export const MAX_CLIP_RECIPIENTS = 64;
/** Longest camera name. */
export const MAX_CLIP_CAMERA_CHARS = 64;
/** What a sealed blob holds. */
export const BLOB_KINDS = ['clip', 'snapshot', 'thumbnail'] as const;
export type BlobKind = (typeof BLOB_KINDS)[number];

const B64U = /^[A-Za-z0-9_-]*$/;
const b64 = (chars: number) => z.string().length(chars).regex(B64U);
const int = (min: number, max: number) => z.number().int().min(min).max(max);

const recipientSchema = z
  .object({ k: z.string().min(4).max(80), x: b64(43), s: b64(86), e: b64(43), w: b64(64) })
  .strict();
export type ClipRecipient = z.infer<typeof recipientSchema>;

const headerSchema = z
  .object({
    v: z.literal(1),
    kind: z.enum(BLOB_KINDS),
    dev: z.string().min(4).max(80),
    dk: z.string().min(4).max(80),
    cam: z
      .string()
      .min(1)
      .max(MAX_CLIP_CAMERA_CHARS)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
      .regex(/^[^\u0000-\u001f\u007f]+$/),
    id: b64(22),
    t0: int(0, Number.MAX_SAFE_INTEGER),
    t1: int(0, Number.MAX_SAFE_INTEGER),
    salt: b64(22),
    cs: int(1, MAX_CLIP_CHUNK_BYTES),
    n: int(1, MAX_CLIP_CHUNKS),
    len: int(0, Number.MAX_SAFE_INTEGER),
    dg: b64(43),
    r: z.array(recipientSchema).min(1).max(MAX_CLIP_RECIPIENTS),
    sig: b64(86),
  })
  .strict();

/** A decoded (not yet verified) header. */
export interface ClipHeader {
  v: 1;
  kind: BlobKind;
  /** Device ID (`hdid_…`). */
  dev: DeviceId;
  /** Device key (`hdk_…`) that signed; the device ID is derived from it. */
  dk: DeviceKeyText;
  /** Camera name. */
  cam: string;
  /** Blob ID, b64u of 16 random bytes. */
  id: string;
  /** Start and end, ms since the epoch. */
  t0: number;
  t1: number;
  /** b64u of the 16-byte payload salt. */
  salt: string;
  /** Largest chunk plaintext. */
  cs: number;
  /** Number of chunks. */
  n: number;
  /** Total plaintext bytes. */
  len: number;
  /** b64u of the 32-byte chunk digest (stream.ts `ChunkDigest`). */
  dg: string;
  /** Recipients, sorted by `k`, one per viewer key. */
  r: ClipRecipient[];
  /** Device signature. */
  sig: string;
}

/** A header whose device signature verified against the pinned key. */
export interface VerifiedClipHeader extends ClipHeader {
  readonly verified: true;
}

type HeaderCore = Omit<ClipHeader, 'r' | 'sig'>;

/** The fields every wrap binds, picked by name (never whatever else an object carries). */
function coreOf(h: HeaderCore): HeaderCore {
  const { v, kind, dev, dk, cam, id, t0, t1, salt, cs, n, len, dg } = h;
  return { v, kind, dev, dk, cam, id, t0, t1, salt, cs, n, len, dg };
}

/** The bytes the device signs: the header without `sig`. */
export function clipHeaderSignedBytes(h: HeaderCore & Pick<ClipHeader, 'r'>): Uint8Array {
  return concat(utf8(`${label(CLIP_HEADER_PURPOSE)}\n`), canonicalBytes({ ...coreOf(h), r: h.r }));
}

/** The HPKE `info` of every wrapped key: the header without its recipients and signature. */
export function clipWrapInfo(h: HeaderCore): Uint8Array {
  return concat(utf8(`${label(CLIP_WRAP_PURPOSE)}\n`), canonicalBytes(coreOf(h)));
}

/** The HPKE `aad` of one wrapped key: the reader it is for. */
export function clipWrapAad(k: string, x: string): Uint8Array {
  return canonicalBytes({ k, x });
}

let suiteP: CipherSuite | undefined;
/** HPKE suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM (RFC 9180 ids 0x0020, 0x0001, 0x0002). */
export function clipHpkeSuite(): CipherSuite {
  suiteP ??= new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Aes256Gcm(),
  });
  return suiteP;
}

/** Wrap `contentKey` to one reader. `ekm` (32 bytes) seeds the HPKE ephemeral key (DeriveKeyPair). */
export async function wrapContentKey(
  contentKey: Uint8Array,
  x25519: Uint8Array,
  infoBytes: Uint8Array,
  aad: Uint8Array,
  ekm: Uint8Array,
): Promise<{ enc: Uint8Array; wrapped: Uint8Array }> {
  const suite = clipHpkeSuite();
  const pk = await globalThis.crypto.subtle.importKey('raw', new Uint8Array(x25519), 'X25519', true, []);
  const r = await suite.seal(
    { recipientPublicKey: pk, info: new Uint8Array(infoBytes), ekm: new Uint8Array(ekm) },
    new Uint8Array(contentKey),
    new Uint8Array(aad),
  );
  return { enc: new Uint8Array(r.enc), wrapped: new Uint8Array(r.ct) };
}

/** Encode a signed header: magic ‖ u32be(length) ‖ canonical JSON. */
export function encodeClipHeader(h: ClipHeader): Uint8Array {
  const json = canonicalBytes(h);
  if (json.length > MAX_CLIP_HEADER_BYTES)
    throw new ProtocolError('E_TOO_LARGE', `clip header larger than ${MAX_CLIP_HEADER_BYTES} bytes`);
  return concat(CLIP_MAGIC, u32be(json.length), json);
}

/**
 * The length of the encoded header at the start of `prefix` (magic, length and JSON), or undefined
 * when fewer than 8 bytes are there yet. Checks the magic and the size limit first: E_CLIP_HEADER,
 * E_TOO_LARGE.
 */
export function clipHeaderLength(prefix: Uint8Array): number | undefined {
  for (let i = 0; i < Math.min(4, prefix.length); i++)
    if (prefix[i] !== CLIP_MAGIC[i])
      throw new ProtocolError('E_CLIP_HEADER', 'clip: not a sealed blob (magic) or another version');
  if (prefix.length < 8) return undefined;
  const n = new DataView(prefix.buffer, prefix.byteOffset + 4, 4).getUint32(0, false);
  if (n > MAX_CLIP_HEADER_BYTES)
    throw new ProtocolError('E_TOO_LARGE', `clip header larger than ${MAX_CLIP_HEADER_BYTES} bytes`);
  if (n < 2) throw new ProtocolError('E_CLIP_HEADER', 'clip header: empty');
  return 8 + n;
}

/**
 * Decode the header at the start of `bytes` (no signature check): size limit before anything,
 * then strict schema, canonical form and consistency. Returns the header and the bytes it took.
 * ProtocolError only: E_TOO_LARGE, E_CLIP_HEADER.
 */
export function decodeClipHeader(bytes: Uint8Array): { header: ClipHeader; size: number } {
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError('E_CLIP_HEADER', 'clip header: not bytes');
  const size = clipHeaderLength(bytes);
  if (size === undefined || bytes.length < size)
    throw new ProtocolError('E_CLIP_HEADER', 'clip header: truncated');
  const json = bytes.subarray(8, size);
  let raw: unknown;
  try {
    raw = parseJson(json, MAX_CLIP_HEADER_BYTES);
  } catch (e) {
    if (e instanceof HearthError && e.code === 'E_TOO_LARGE') throw e;
    throw new ProtocolError('E_CLIP_HEADER', `clip header: ${(e as Error).message}`);
  }
  const r = headerSchema.safeParse(raw);
  if (!r.success) throw new ProtocolError('E_CLIP_HEADER', `clip header: ${describeZod(r.error)}`);
  const h = r.data as ClipHeader;
  if (canonicalize(h) !== new TextDecoder().decode(json))
    throw new ProtocolError('E_CLIP_HEADER', 'clip header: not in canonical form');
  checkConsistent(h);
  return { header: h, size };
}

function checkConsistent(h: ClipHeader): void {
  const bad = (m: string) => new ProtocolError('E_CLIP_HEADER', `clip header: ${m}`);
  let dk: Uint8Array;
  try {
    decodeId('deviceId', h.dev);
    dk = decodeId('deviceKey', h.dk);
    for (const r of h.r) decodeId('userKey', r.k);
    for (const s of [h.id, h.salt, h.dg, ...h.r.flatMap((r) => [r.x, r.s, r.e, r.w])]) fromB64u(s);
  } catch (e) {
    throw bad(`a key, ID or base64url field is malformed (${(e as Error).message})`);
  }
  if (!deviceIdMatches(h.dev, dk)) throw bad('dev is not derived from dk');
  if (h.t1 < h.t0) throw bad('t1 before t0');
  if (h.len > h.n * h.cs) throw bad('len larger than n chunks of cs bytes');
  if (h.n > Math.max(1, h.len)) throw bad('more chunks than bytes (only a lone chunk may be empty)');
  for (let i = 1; i < h.r.length; i++)
    if (!(h.r[i - 1]!.k < h.r[i]!.k)) throw bad('recipients not sorted by k, or a viewer twice');
}

/** What {@link verifyClipHeader} checks the header against. */
export interface ClipHeaderExpectation {
  /** The device key pinned at pairing. */
  pinnedDeviceKey: Uint8Array;
  /** When set, the header must be for this device ID (E_BAD_BINDING). */
  deviceId?: string;
  /** When set, the header must be for this camera (E_BAD_BINDING). */
  camera?: string;
}

/**
 * Verify the device signature: E_WRONG_SIGNER when `dk` is not the pinned key (a header re-signed
 * by another key), E_BAD_BINDING for another device or camera, E_BAD_SIGNATURE when it does not verify.
 */
export async function verifyClipHeader(h: ClipHeader, o: ClipHeaderExpectation): Promise<VerifiedClipHeader> {
  const dk = decodeId('deviceKey', h.dk);
  if (!constantTimeEqual(dk, o.pinnedDeviceKey))
    throw new VerificationError('E_WRONG_SIGNER', 'clip header: signed by another device key');
  if (o.deviceId !== undefined && h.dev !== o.deviceId)
    throw new VerificationError('E_BAD_BINDING', 'clip header: for another device');
  if (o.camera !== undefined && h.cam !== o.camera)
    throw new VerificationError('E_BAD_BINDING', 'clip header: for another camera');
  if (!(await ed25519Verify(dk, clipHeaderSignedBytes(h), fromB64u(h.sig, 64))))
    throw new VerificationError('E_BAD_SIGNATURE', 'clip header: device signature does not verify');
  return { ...coreOf(h), r: h.r, sig: h.sig, verified: true };
}

/** A reader: its identity key text and its X25519 key pair (private key non-extractable is fine). */
export interface ClipReader {
  userKey: UserKeyText | string;
  x25519: X25519KeyPair;
}

/**
 * Unwrap the content key for `reader`: AccessError E_NOT_RECIPIENT when the header has no entry
 * for this viewer key and X25519 key, VerificationError E_DECRYPT when the wrap does not open.
 */
export async function unwrapContentKey(h: VerifiedClipHeader, reader: ClipReader): Promise<Uint8Array> {
  const x = b64u(reader.x25519.publicKey);
  const entry = h.r.find((r) => r.k === reader.userKey && r.x === x);
  if (!entry) throw new AccessError('E_NOT_RECIPIENT', 'clip: not wrapped to this reader key');
  const suite = clipHpkeSuite();
  const publicKey = await globalThis.crypto.subtle.importKey(
    'raw',
    new Uint8Array(reader.x25519.publicKey),
    'X25519',
    true,
    [],
  );
  let pt: ArrayBuffer;
  try {
    pt = await suite.open(
      {
        recipientKey: { publicKey, privateKey: reader.x25519.privateKey },
        enc: fromB64u(entry.e, 32),
        info: new Uint8Array(clipWrapInfo(h)),
      },
      fromB64u(entry.w, 48),
      new Uint8Array(clipWrapAad(entry.k, entry.x)),
    );
  } catch {
    throw new VerificationError('E_DECRYPT', 'clip: the wrapped key does not open');
  }
  const key = new Uint8Array(pt);
  if (key.length !== CLIP_KEY_BYTES) throw new VerificationError('E_DECRYPT', 'clip: wrapped key length');
  return key;
}

/** Sign a complete header (everything but `sig`) with the device key. */
export async function signClipHeader(device: Signer, h: Omit<ClipHeader, 'sig'>): Promise<ClipHeader> {
  const sig = b64u(await device.sign(clipHeaderSignedBytes(h)));
  return { ...coreOf(h), r: h.r, sig };
}
