/**
 * The header of a sealed blob (format v2): what the device signs, the sealed metadata box, and the
 * content key wrapped to each reader.
 *
 * ```
 * blob   = "HCB" 0x02 ‖ u32be(H) ‖ header (H bytes, canonical JSON) ‖ frame*
 * frame  = u32be(L) ‖ ct_i                                  16 ≤ L ≤ cs + 16 (stream.ts)
 * header = {v:2, kind, dev, dk, id, hr, salt, cs, n, len, dg, m, r: [recipient…], sig}
 * hr     = floor(t0 / 3 600 000)                            the coarse hour, the only time in the clear
 * m      = b64u(AES-256-GCM(metaKey, 0^12, canonicalJSON({cam, t0, t1}), aad = canonicalJSON(clear core)))
 * clear core = header without m, r and sig                  (meta.ts)
 * recipient = {k: "huk_…", x: b64u(X25519 pub), s: b64u(reader-key sig), e: b64u(HPKE enc), w: b64u(wrapped key)}
 * sig    = Ed25519_dk("hearth/v1/clip/header\n" ‖ canonicalJSON(header without sig))
 * (e, w) = HPKE-Base(DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM).Seal(pkR = x,
 *            info = "hearth/v1/clip/wrap\n" ‖ canonicalJSON(header without r and sig),
 *            aad  = canonicalJSON({k, x}), pt = contentKey)
 * ```
 *
 * The camera name and the exact times are only inside `m`; a server that stores the blob sees the
 * kind, the hour, the sizes and the recipients' keys. The wrap's `info` binds every field of the
 * blob (device, id, hour, kind, salt, chunk count and digest, and `m`), so a wrapped key cannot be
 * moved to another blob; its `aad` binds the reader.
 */
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { z } from 'zod';
import { b64u, concat, constantTimeEqual, fromB64u, u32be, utf8 } from '../bytes.js';
import { canonicalBytes, canonicalize, parseJson } from '../canonical.js';
import { ed25519Verify, label, type Signer, type X25519KeyPair } from '../crypto/primitives.js';
import { describeZod } from '../envelope.js';
import { AccessError, HearthError, ProtocolError, VerificationError } from '../errors.js';
import { type DeviceId, type DeviceKeyText, decodeId, deviceIdMatches, type UserKeyText } from '../ids.js';
import { MAX_CLIP_META_B64, MIN_CLIP_META_B64 } from './meta.js';
import { CLIP_KEY_BYTES, MAX_CLIP_CHUNK_BYTES, MAX_CLIP_CHUNKS } from './stream.js';

/** Purpose labels: the device's header signature and the HPKE info of the wrapped keys. */
export const CLIP_HEADER_PURPOSE = 'clip/header';
export const CLIP_WRAP_PURPOSE = 'clip/wrap';
/** The format version of the blobs this code writes and reads. */
export const CLIP_FORMAT_VERSION = 2;
/** The first four bytes of every sealed blob: "HCB" and the format version 2. */
export const CLIP_MAGIC = new Uint8Array([0x48, 0x43, 0x42, CLIP_FORMAT_VERSION]);
/** Largest header (the JSON text), checked before it is read. */
export const MAX_CLIP_HEADER_BYTES = 32 * 1024;
/** Most recipients (reader keys) of one blob. */
export const MAX_CLIP_RECIPIENTS = 64;
/** One hour in ms: `hr` = floor(t0 / CLIP_HOUR_MS). */
export const CLIP_HOUR_MS = 3_600_000;
/** What a sealed blob holds (`event` = an event-index record). */
export const BLOB_KINDS = ['clip', 'snapshot', 'event'] as const;
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
    v: z.literal(2),
    kind: z.enum(BLOB_KINDS),
    dev: z.string().min(4).max(80),
    dk: z.string().min(4).max(80),
    id: b64(22),
    hr: int(0, Math.floor(Number.MAX_SAFE_INTEGER / CLIP_HOUR_MS)),
    salt: b64(22),
    cs: int(1, MAX_CLIP_CHUNK_BYTES),
    n: int(1, MAX_CLIP_CHUNKS),
    len: int(0, Number.MAX_SAFE_INTEGER),
    dg: b64(43),
    m: z.string().min(MIN_CLIP_META_B64).max(MAX_CLIP_META_B64).regex(B64U),
    r: z.array(recipientSchema).min(1).max(MAX_CLIP_RECIPIENTS),
    sig: b64(86),
  })
  .strict();

/** A decoded (not yet verified) header. */
export interface ClipHeader {
  v: 2;
  kind: BlobKind;
  /** Device ID (`hdid_…`). */
  dev: DeviceId;
  /** Device key (`hdk_…`) that signed; the device ID is derived from it. */
  dk: DeviceKeyText;
  /** Blob ID, b64u of 16 random bytes. */
  id: string;
  /** The hour the blob starts in: floor(t0 / 3 600 000). The exact times are in `m`. */
  hr: number;
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
  /** b64u of the sealed metadata box (camera name, exact times): meta.ts. */
  m: string;
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
/** The clear core: what the metadata box's AAD binds (the header without m, r and sig). */
export type ClipClearCore = Omit<HeaderCore, 'm'>;

/** The clear fields, picked by name (never whatever else an object carries). */
function clearCoreOf(h: ClipClearCore): ClipClearCore {
  const { v, kind, dev, dk, id, hr, salt, cs, n, len, dg } = h;
  return { v, kind, dev, dk, id, hr, salt, cs, n, len, dg };
}

/** The fields every wrap binds, picked by name: the clear core and `m`. */
function coreOf(h: HeaderCore): HeaderCore {
  return { ...clearCoreOf(h), m: h.m };
}

/** The AAD of the metadata box `m`: canonicalJSON(header without m, r and sig). */
export function clipMetaAad(h: ClipClearCore): Uint8Array {
  return canonicalBytes(clearCoreOf(h));
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
  for (let i = 0; i < Math.min(3, prefix.length); i++)
    if (prefix[i] !== CLIP_MAGIC[i])
      throw new ProtocolError('E_CLIP_HEADER', 'clip: not a sealed blob (magic)');
  if (prefix.length > 3 && prefix[3] !== CLIP_FORMAT_VERSION)
    throw new ProtocolError(
      'E_CLIP_HEADER',
      `clip: another version of the sealed-blob format (${prefix[3]}; this code reads version ${CLIP_FORMAT_VERSION} only)`,
    );
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
    for (const s of [h.id, h.salt, h.dg, h.m, ...h.r.flatMap((r) => [r.x, r.s, r.e, r.w])]) fromB64u(s);
  } catch (e) {
    throw bad(`a key, ID or base64url field is malformed (${(e as Error).message})`);
  }
  if (!deviceIdMatches(h.dev, dk)) throw bad('dev is not derived from dk');
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
}

/**
 * Verify the device signature: E_WRONG_SIGNER when `dk` is not the pinned key (a header re-signed
 * by another key), E_BAD_BINDING for another device, E_BAD_SIGNATURE when it does not verify. The
 * camera is inside the metadata box: the opener checks it after unwrapping (blob.ts).
 */
export async function verifyClipHeader(h: ClipHeader, o: ClipHeaderExpectation): Promise<VerifiedClipHeader> {
  const dk = decodeId('deviceKey', h.dk);
  if (!constantTimeEqual(dk, o.pinnedDeviceKey))
    throw new VerificationError('E_WRONG_SIGNER', 'clip header: signed by another device key');
  if (o.deviceId !== undefined && h.dev !== o.deviceId)
    throw new VerificationError('E_BAD_BINDING', 'clip header: for another device');
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
