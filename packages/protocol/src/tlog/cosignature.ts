/**
 * C2SP witness cosignatures (https://c2sp.org/tlog-cosignature, `cosignature/v1`, Ed25519): an
 * owner's device that verified a checkpoint (signature, origin, consistency with what it saw before)
 * adds its own signature line to the checkpoint note. Other devices count those lines to show
 * "verified by N of your devices" and to catch a split view (two devices shown two histories).
 *
 * A cosignature is a signed-note signature line:
 *
 *     — <cosigner name> base64(key ID (4 bytes) || timestamp (8 bytes, big-endian) || Ed25519 sig (64))
 *
 * - key ID: SHA-256(<name> || 0x0A || 0x04 || 32-byte public key)[:4] (type 0x04, not signed-note's
 *   0x01, so a device's note signature can never pass for a cosignature and back);
 * - timestamp: POSIX seconds when the cosigner signed (Hearth: at most 2^53 - 1);
 * - signed message: `cosignature/v1\ntime <timestamp, decimal, no leading zeros>\n` followed by the
 *   whole checkpoint body (its final newline included, no signature lines).
 *
 * A malformed cosignature raises ProtocolError E_LOG_NOTE; one of a known cosigner that does not
 * verify on this checkpoint (forged, or replayed from another checkpoint) raises VerificationError
 * E_BAD_SIGNATURE.
 */
import { b64std, concat, fromUtf8Exact, utf8 } from '../bytes.js';
import { ed25519Verify, type Signer, sha256 } from '../crypto/primitives.js';
import { ProtocolError, VerificationError } from '../errors.js';
import { type Checkpoint, formatCheckpoint, openCheckpoint } from './checkpoint.js';
import { isKeyName, MAX_NOTE_BYTES, MAX_NOTE_SIGNATURES, type NoteSignature, parseNote } from './note.js';

/** The signed-note signature type of an Ed25519 `cosignature/v1`. */
export const NOTE_SIG_COSIGNATURE_V1 = 0x04;
/** Bytes of a cosignature after its key ID: timestamp (8) and Ed25519 signature (64). */
export const COSIGNATURE_BYTES = 8 + 64;

/** A cosigner (witness) key: name, `cosignature/v1` key ID and 32-byte Ed25519 public key. */
export interface CosignerKey {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Uint8Array;
}

/** The `cosignature/v1` key ID: SHA-256(name || 0x0A || 0x04 || publicKey)[:4], big-endian. */
export async function cosignerKeyId(name: string, publicKey: Uint8Array): Promise<number> {
  if (!isKeyName(name)) throw new RangeError('invalid cosigner key name');
  if (publicKey.length !== 32) throw new RangeError('Ed25519 public key must be 32 bytes');
  const h = await sha256(concat(utf8(name), new Uint8Array([0x0a, NOTE_SIG_COSIGNATURE_V1]), publicKey));
  return new DataView(h.buffer, h.byteOffset, 4).getUint32(0, false);
}

/** A cosigner key for `name` and `publicKey`. */
export async function cosignerKey(name: string, publicKey: Uint8Array): Promise<CosignerKey> {
  return { name, keyId: await cosignerKeyId(name, publicKey), publicKey: publicKey.slice() };
}

function checkTime(time: number): void {
  if (!Number.isSafeInteger(time) || time < 0) throw new RangeError('cosignature time out of range');
}

/** The message a `cosignature/v1` signs: header line, time line, checkpoint body. */
export function cosignatureMessage(cp: Checkpoint, time: number): Uint8Array {
  checkTime(time);
  return utf8(`cosignature/v1\ntime ${time}\n${formatCheckpoint(cp)}`);
}

/**
 * Cosign `cp` at `time` (POSIX seconds) as `name` with `signer`: returns the signature line
 * (`— <name> <base64>\n`) to append to the checkpoint note ({@link addCosignature}).
 */
export async function cosign(cp: Checkpoint, name: string, signer: Signer, time: number): Promise<string> {
  const msg = cosignatureMessage(cp, time);
  const head = new Uint8Array(12);
  const dv = new DataView(head.buffer);
  dv.setUint32(0, await cosignerKeyId(name, signer.publicKey), false);
  dv.setBigUint64(4, BigInt(time), false);
  const sig = await signer.sign(msg);
  return `\u2014 ${name} ${b64std(concat(head, sig))}\n`;
}

/** Append a signature line (from {@link cosign}) to a signed note; the result is parsed to be sure. */
export function addCosignature(note: string | Uint8Array, line: string): string {
  parseNote(note); // size limit and format first, then decode
  const text = typeof note === 'string' ? note : fromUtf8Exact(note);
  const out = text + line;
  const parsed = parseNote(out);
  if (parsed.signatures.length > MAX_NOTE_SIGNATURES || utf8(out).length > MAX_NOTE_BYTES)
    throw new ProtocolError('E_TOO_LARGE', 'no room for another signature in the note');
  return out;
}

/** A verified cosignature: who and when (POSIX seconds). */
export interface Cosignature {
  readonly cosigner: CosignerKey;
  readonly time: number;
}

/**
 * Verify one signature line as a cosignature of `cp` by `key`. Raises E_LOG_NOTE when the line is
 * not `key`'s (name or key ID) or is not 8 + 64 bytes or its time is beyond 2^53 - 1, and
 * E_BAD_SIGNATURE when the signature does not verify on this checkpoint (forged or replayed).
 */
export async function verifyCosignature(
  cp: Checkpoint,
  sig: NoteSignature,
  key: CosignerKey,
): Promise<Cosignature> {
  if (sig.name !== key.name || sig.keyId !== key.keyId)
    throw new ProtocolError('E_LOG_NOTE', `signature line is not a cosignature of ${key.name}`);
  if (sig.signature.length !== COSIGNATURE_BYTES)
    throw new ProtocolError('E_LOG_NOTE', 'cosignature is not a timestamp and an Ed25519 signature');
  const t = new DataView(sig.signature.buffer, sig.signature.byteOffset, 8).getBigUint64(0, false);
  if (t > BigInt(Number.MAX_SAFE_INTEGER))
    throw new ProtocolError('E_LOG_NOTE', 'cosignature time too large');
  const time = Number(t);
  if (!(await ed25519Verify(key.publicKey, cosignatureMessage(cp, time), sig.signature.subarray(8))))
    throw new VerificationError(
      'E_BAD_SIGNATURE',
      `cosignature of ${key.name} does not verify on this checkpoint`,
    );
  return { cosigner: key, time };
}

/** A device-signed checkpoint and the known witnesses whose cosignatures on it verified. */
export interface CosignedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly cosignatures: readonly Cosignature[];
}

/**
 * "Verified by N of your devices": open a checkpoint note of log `origin` signed by the device key
 * `publicKey` (as {@link openCheckpoint}) and verify the cosignatures of the known `witnesses` on it.
 * Lines of unknown keys are ignored; a known witness's line that fails raises E_BAD_SIGNATURE (a
 * forgery, or a cosignature replayed from another checkpoint) and a witness that cosigns twice
 * E_LOG_NOTE. `cosignatures.length` is N.
 */
export async function openCosigned(
  note: string | Uint8Array,
  origin: string,
  publicKey: Uint8Array,
  witnesses: readonly CosignerKey[],
): Promise<CosignedCheckpoint> {
  const checkpoint = await openCheckpoint(note, origin, publicKey);
  const parsed = parseNote(note);
  const cosignatures: Cosignature[] = [];
  for (const sig of parsed.signatures) {
    const key = witnesses.find((k) => k.name === sig.name && k.keyId === sig.keyId);
    if (!key) continue;
    if (cosignatures.some((c) => c.cosigner === key))
      throw new ProtocolError('E_LOG_NOTE', `witness ${key.name} cosigned the checkpoint twice`);
    cosignatures.push(await verifyCosignature(checkpoint, sig, key));
  }
  return { checkpoint, cosignatures };
}
