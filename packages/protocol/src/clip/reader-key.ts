/**
 * Reader keys: a viewer's X25519 public key for sealed blobs, signed by the viewer's identity
 * (`huk_`) key, so that a device wraps content keys only to keys its viewers vouched for.
 *
 * ```
 * signed = "hearth/v1/clip/reader-key\n" ‖ canonicalJSON({v: 1, k: "huk_…", x: b64u(x25519 public)})
 * text   = canonicalJSON({k, s, v: 1, x})          s = b64u(Ed25519_huk(signed))
 * ```
 *
 * The X25519 private key never leaves the viewer: in a browser it is a non-extractable WebCrypto
 * key (`x25519Generate`), stored in IndexedDB.
 */
import { z } from 'zod';
import { b64u, concat, fromB64u, utf8 } from '../bytes.js';
import { canonicalBytes, canonicalize, parseJson } from '../canonical.js';
import { ed25519Verify, label, type Signer } from '../crypto/primitives.js';
import { describeZod } from '../envelope.js';
import { ProtocolError, VerificationError } from '../errors.js';
import { decodeId, encodeId, type UserKeyText } from '../ids.js';

/** Purpose label of a reader key's signature. */
export const READER_KEY_PURPOSE = 'clip/reader-key';
/** Largest encoded reader key. */
export const MAX_READER_KEY_BYTES = 512;

/** A viewer's X25519 key for sealed blobs, signed by its identity key. */
export interface ReaderKey {
  /** The viewer's identity key (`huk_…`) that signed. */
  userKey: UserKeyText;
  /** 32-byte X25519 public key. */
  x25519: Uint8Array;
  /** 64-byte Ed25519 signature by `userKey` over {@link readerKeySignedBytes}. */
  signature: Uint8Array;
}

/** The bytes a reader key's signature covers. */
export function readerKeySignedBytes(userKey: string, x25519: Uint8Array): Uint8Array {
  return concat(
    utf8(`${label(READER_KEY_PURPOSE)}\n`),
    canonicalBytes({ v: 1, k: userKey, x: b64u(x25519) }),
  );
}

/** Sign `x25519` (a 32-byte public key) with the viewer's identity signer. */
export async function signReaderKey(identity: Signer, x25519: Uint8Array): Promise<ReaderKey> {
  if (x25519.length !== 32) throw new RangeError('X25519 public key must be 32 bytes');
  const userKey = encodeId('userKey', identity.publicKey) as UserKeyText;
  const signature = await identity.sign(readerKeySignedBytes(userKey, x25519));
  return { userKey, x25519: x25519.slice(), signature };
}

/**
 * Check a reader key's signature; when `expectedUserKey` is given (the grant's `sub`), the signer
 * must be that key (E_WRONG_SIGNER). E_BAD_ID for a bad `huk_`, E_BAD_SIGNATURE when it does not verify.
 */
export async function verifyReaderKey(rk: ReaderKey, expectedUserKey?: string): Promise<void> {
  const pub = decodeId('userKey', rk.userKey);
  if (expectedUserKey !== undefined && expectedUserKey !== rk.userKey)
    throw new VerificationError('E_WRONG_SIGNER', 'reader key: signed by another viewer key');
  if (rk.x25519.length !== 32) throw new ProtocolError('E_DECODE', 'reader key: X25519 key must be 32 bytes');
  if (!(await ed25519Verify(pub, readerKeySignedBytes(rk.userKey, rk.x25519), rk.signature)))
    throw new VerificationError('E_BAD_SIGNATURE', 'reader key: signature does not verify');
}

const readerKeySchema = z
  .object({
    v: z.literal(1),
    k: z.string().min(4).max(80),
    x: z
      .string()
      .length(43)
      .regex(/^[A-Za-z0-9_-]*$/),
    s: z
      .string()
      .length(86)
      .regex(/^[A-Za-z0-9_-]*$/),
  })
  .strict();

/** Canonical JSON text of a reader key. */
export function encodeReaderKey(rk: ReaderKey): string {
  return canonicalize({ v: 1, k: rk.userKey, x: b64u(rk.x25519), s: b64u(rk.signature) });
}

/** Decode (no signature check): E_TOO_LARGE, E_DECODE, E_SCHEMA or E_BAD_ID. */
export function decodeReaderKey(input: string | Uint8Array | unknown): ReaderKey {
  const raw =
    typeof input === 'string' || input instanceof Uint8Array ? parseJson(input, MAX_READER_KEY_BYTES) : input;
  const r = readerKeySchema.safeParse(raw);
  if (!r.success) throw new ProtocolError('E_SCHEMA', `reader key: ${describeZod(r.error)}`);
  decodeId('userKey', r.data.k);
  return {
    userKey: r.data.k as UserKeyText,
    x25519: fromB64u(r.data.x, 32),
    signature: fromB64u(r.data.s, 64),
  };
}
