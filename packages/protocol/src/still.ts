/**
 * The sealed still: the camera's latest frame (a JPEG), sent by the device while the live stream
 * connects, encrypted end to end so that the rendezvous server, which routes it, learns nothing
 * from it but that a still was sent (its size is fixed).
 *
 * ```
 * viewer                                             device
 *   session/offer  {…, sk: Xv}   (signed, viewer key)  |
 *   |------------------------------------------------->|
 *   |  session/answer {…, o: H(offer), sk: Xd}  (signed, device key)
 *   |<-------------------------------------------------|
 *   |  session/still {sid, ct}                          |  ct = AES-256-GCM(k, 0^96, pad(jpeg), aad)
 *   |<-------------------------------------------------|
 *   k   = HKDF-SHA-256(ikm = X25519(xv, Xd) = X25519(xd, Xv), salt = H(offer), info = "hearth/v1/session-still")
 *   aad = "hearth/v1/session-still" ‖ lp(sid) ‖ lp(camera)
 * ```
 *
 * Both ephemeral keys are fresh per session (the viewer's per attempt, the device's per answer)
 * and each is inside a signed envelope, so only the two ends can derive `k`, and `k` is used for
 * exactly one message. That is why the nonce is fixed (all zero): a (key, nonce) pair never
 * repeats, and {@link createStillSealer} makes the one-message rule structural (its `seal` works
 * once). The plaintext is always {@link STILL_PADDED_BYTES}: a 4-byte big-endian JPEG length, the
 * JPEG, zeros; so the ciphertext length says nothing about the picture.
 */
import { z } from 'zod';
import { b64u, concat, fromB64u, lp, u32be, utf8, wipe } from './bytes.js';
import {
  aesGcmDecrypt,
  aesGcmEncrypt,
  hkdfSha256,
  info,
  label,
  type X25519KeyPair,
  x25519,
  x25519FromScalar,
  x25519Generate,
} from './crypto/primitives.js';
import { ProtocolError } from './errors.js';

/** Purpose label of the still key (HKDF info) and of its AAD. */
export const STILL_PURPOSE = 'session-still';
/** Size of every still's plaintext: length prefix, JPEG, zero padding. */
export const STILL_PADDED_BYTES = 48 * 1024;
/** Largest JPEG a still can carry. */
export const MAX_STILL_JPEG_BYTES = STILL_PADDED_BYTES - 4;
/** Size of every still's ciphertext (padded plaintext and the 16-byte GCM tag). */
export const STILL_CT_BYTES = STILL_PADDED_BYTES + 16;
/** Length of `ct` in `session/still` (b64u, no padding). */
export const STILL_CT_CHARS = Math.ceil((STILL_CT_BYTES * 4) / 3);

const NONCE = new Uint8Array(12);

/** `session/still {sid, ct}` (device → viewer), strict. */
export const stillMessageSchema = z
  .object({
    t: z.literal('session/still'),
    sid: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
    ct: z
      .string()
      .length(STILL_CT_CHARS)
      .regex(/^[A-Za-z0-9_-]*$/),
  })
  .strict();
export type StillMessage = z.infer<typeof stillMessageSchema>;

/** What a still is bound to: the session, the camera, and the offer the answer was bound to. */
export interface StillContext {
  sid: string;
  camera: string;
  /** The offer's digest (b64u of 32 bytes), as in the answer's `o`. */
  offerDigest: string;
}

/** The AAD of a still: the purpose label, the session ID and the camera, length-prefixed. */
export function stillAad(ctx: { sid: string; camera: string }): Uint8Array {
  return concat(utf8(label(STILL_PURPOSE)), lp(utf8(ctx.sid)), lp(utf8(ctx.camera)));
}

/**
 * The still key: HKDF-SHA-256(X25519(secret, peerPublic), salt = offer digest, info =
 * `hearth/v1/session-still`), 32 bytes. A small-order peer key raises VerificationError E_DECODE.
 */
export async function deriveStillKey(
  secret: CryptoKey,
  peerPublic: Uint8Array,
  offerDigest: string,
): Promise<Uint8Array> {
  const salt = fromB64u(offerDigest, 32);
  if (salt.length !== 32) throw new ProtocolError('E_DECODE', 'offer digest must be 32 bytes');
  const ikm = await x25519(secret, peerPublic);
  try {
    return await hkdfSha256(ikm, salt, info(STILL_PURPOSE), 32);
  } finally {
    wipe(ikm);
  }
}

/** Pad a JPEG to {@link STILL_PADDED_BYTES}; E_TOO_LARGE past {@link MAX_STILL_JPEG_BYTES}. */
export function padStill(jpeg: Uint8Array): Uint8Array {
  if (jpeg.length > MAX_STILL_JPEG_BYTES)
    throw new ProtocolError('E_TOO_LARGE', `still larger than ${MAX_STILL_JPEG_BYTES} bytes`);
  const out = new Uint8Array(STILL_PADDED_BYTES);
  out.set(u32be(jpeg.length), 0);
  out.set(jpeg, 4);
  return out;
}

function unpadStill(pt: Uint8Array): Uint8Array {
  if (pt.length !== STILL_PADDED_BYTES) throw new ProtocolError('E_DECODE', 'still: bad padded length');
  const n = new DataView(pt.buffer, pt.byteOffset, 4).getUint32(0, false);
  if (n > MAX_STILL_JPEG_BYTES) throw new ProtocolError('E_DECODE', 'still: bad length prefix');
  for (let i = 4 + n; i < pt.length; i++)
    if (pt[i] !== 0) throw new ProtocolError('E_DECODE', 'still: bad padding');
  return pt.slice(4, 4 + n);
}

/** Seal with a still key (low level: the key must never seal a second message). */
export async function sealStillWithKey(
  key: Uint8Array,
  ctx: { sid: string; camera: string },
  jpeg: Uint8Array,
): Promise<string> {
  return b64u(await aesGcmEncrypt(key, NONCE, padStill(jpeg), stillAad(ctx)));
}

/** Decode and check the size of `ct`: E_TOO_LARGE when longer, E_DECODE when otherwise malformed. */
export function decodeStillCiphertext(ct: unknown): Uint8Array {
  if (typeof ct !== 'string') throw new ProtocolError('E_DECODE', 'still: ct is not a string');
  if (ct.length > STILL_CT_CHARS) throw new ProtocolError('E_TOO_LARGE', 'still: ct too long');
  if (ct.length !== STILL_CT_CHARS) throw new ProtocolError('E_DECODE', 'still: ct has the wrong length');
  const bytes = fromB64u(ct, STILL_CT_BYTES);
  if (bytes.length !== STILL_CT_BYTES) throw new ProtocolError('E_DECODE', 'still: ct has the wrong length');
  return bytes;
}

/** Open with a still key: E_TOO_LARGE / E_DECODE for a malformed `ct`, VerificationError E_DECRYPT otherwise. */
export async function openStillWithKey(
  key: Uint8Array,
  ctx: { sid: string; camera: string },
  ct: unknown,
): Promise<Uint8Array> {
  const bytes = decodeStillCiphertext(ct);
  return unpadStill(await aesGcmDecrypt(key, NONCE, bytes, stillAad(ctx)));
}

/** The device's side of one still: its ephemeral public key (for the answer) and a one-shot seal. */
export interface StillSealer {
  /** The device's ephemeral X25519 public key: the answer's `sk`. */
  readonly publicKey: Uint8Array;
  /** Seal the JPEG into `ct` for `session/still`. Works once; a second call throws. */
  seal(jpeg: Uint8Array): Promise<string>;
}

/**
 * Device: for a verified offer that carries the viewer's `sk`, draw a fresh ephemeral key, derive
 * the still key and return a one-shot sealer. Throws (VerificationError E_DECODE) for a small-order
 * viewer key: the caller then answers without `sk`. `scalar` is for test vectors only.
 */
export async function createStillSealer(
  offer: { stillKey: Uint8Array; sid: string; camera: string; digest: string },
  o: { scalar?: Uint8Array } = {},
): Promise<StillSealer> {
  const eph = o.scalar ? await x25519KeyPairFromScalar(o.scalar) : await x25519Generate();
  let key: Uint8Array | undefined = await deriveStillKey(eph.privateKey, offer.stillKey, offer.digest);
  const ctx = { sid: offer.sid, camera: offer.camera };
  return {
    publicKey: eph.publicKey,
    async seal(jpeg) {
      if (!key) throw new ProtocolError('E_BAD_STATE', 'a still key seals one message');
      const k = key;
      key = undefined;
      try {
        return await sealStillWithKey(k, ctx, jpeg);
      } finally {
        wipe(k);
      }
    },
  };
}

/**
 * Viewer: open `ct` with our ephemeral secret and the device's `sk` from the verified answer.
 * E_TOO_LARGE / E_DECODE for a malformed `ct`, VerificationError E_DECRYPT when it does not
 * authenticate (tampered, another session, camera or offer).
 */
export async function openStill(o: {
  secret: CryptoKey;
  deviceStillKey: Uint8Array;
  ctx: StillContext;
  ct: unknown;
}): Promise<Uint8Array> {
  decodeStillCiphertext(o.ct); // size first: no key agreement for junk
  const key = await deriveStillKey(o.secret, o.deviceStillKey, o.ctx.offerDigest);
  try {
    return await openStillWithKey(key, o.ctx, o.ct);
  } finally {
    wipe(key);
  }
}

const BASE_POINT = (() => {
  const b = new Uint8Array(32);
  b[0] = 9;
  return b;
})();

/** An X25519 key pair from a fixed 32-byte scalar (test vectors only; never for real sessions). */
export async function x25519KeyPairFromScalar(scalar: Uint8Array): Promise<X25519KeyPair> {
  const privateKey = await x25519FromScalar(scalar);
  return { privateKey, publicKey: await x25519(privateKey, BASE_POINT) };
}
