/**
 * C2SP tlog checkpoints (https://c2sp.org/tlog-checkpoint): the note text of a log's tree head.
 *
 *     hearth/<deviceId>           origin
 *     <tree size, decimal>        no leading zeros ("0" for the empty tree)
 *     <base64 root hash>          standard base64 of the 32-byte RFC 6962 root
 *     [<extension line>...]       optional, non-empty (Hearth writes none)
 *
 * A Hearth device signs its checkpoints as a signed note with its device key; the signer's key name
 * is the origin. A malformed body raises ProtocolError E_LOG_CHECKPOINT; a checkpoint of another log
 * than the expected one raises VerificationError E_BAD_BINDING.
 */
import { b64std, fromB64std } from '../bytes.js';
import type { Signer } from '../crypto/primitives.js';
import { HearthError, ProtocolError, VerificationError } from '../errors.js';
import { HASH_SIZE, MAX_TREE_SIZE } from './merkle.js';
import { isKeyName, noteVerifier, openNote, parseNote, signNote } from './note.js';

/** Most extension lines accepted in a checkpoint. */
export const MAX_CHECKPOINT_EXTENSIONS = 8;
/** Longest extension line, in UTF-16 code units. */
export const MAX_CHECKPOINT_EXTENSION = 256;

/** Longest checkpoint body accepted, in UTF-16 code units (refused with E_TOO_LARGE before parsing). */
export const MAX_CHECKPOINT_CHARS = (MAX_CHECKPOINT_EXTENSIONS + 3) * (MAX_CHECKPOINT_EXTENSION + 1);

/** A log's signed tree head. */
export interface Checkpoint {
  /** Identifies the log: `hearth/<deviceId>` for a Hearth device. */
  readonly origin: string;
  /** Number of leaves. */
  readonly size: number;
  /** RFC 6962 root hash of the first `size` leaves (32 bytes). */
  readonly root: Uint8Array;
  /** Extension lines (opaque; Hearth writes none). */
  readonly extensions: readonly string[];
}

/** The origin (and signer key name) of a device's access log. */
export function logOrigin(deviceId: string): string {
  const o = `hearth/${deviceId}`;
  if (!isKeyName(o)) throw new RangeError('device ID not usable in a log origin');
  return o;
}

/** A non-empty extension line of at most MAX_CHECKPOINT_EXTENSION units, no control character. */
function isExtensionLine(e: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the rule is about control characters
  return e.length > 0 && e.length <= MAX_CHECKPOINT_EXTENSION && !/[\u0000-\u001f]/.test(e);
}

/** The checkpoint body (the note text). */
export function formatCheckpoint(cp: Checkpoint): string {
  if (!isKeyName(cp.origin)) throw new RangeError('checkpoint origin must be a valid key name');
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) throw new RangeError('checkpoint size out of range');
  if (cp.root.length !== HASH_SIZE) throw new RangeError('checkpoint root must be 32 bytes');
  if (cp.extensions.length > MAX_CHECKPOINT_EXTENSIONS) throw new RangeError('too many extension lines');
  for (const e of cp.extensions)
    if (!isExtensionLine(e)) throw new RangeError('extension lines must be non-empty single lines');
  return [cp.origin, String(cp.size), b64std(cp.root), ...cp.extensions].map((l) => `${l}\n`).join('');
}

/**
 * Parse a checkpoint body (a note's text, final newline included). Raises ProtocolError
 * E_TOO_LARGE past MAX_CHECKPOINT_CHARS and E_LOG_CHECKPOINT for anything that is not exactly the
 * format above; never anything untyped.
 */
export function parseCheckpoint(text: string): Checkpoint {
  const bad = (why: string) => new ProtocolError('E_LOG_CHECKPOINT', `checkpoint: ${why}`);
  if (typeof text !== 'string') throw bad('not text');
  if (text.length > MAX_CHECKPOINT_CHARS)
    throw new ProtocolError('E_TOO_LARGE', `checkpoint longer than ${MAX_CHECKPOINT_CHARS} characters`);
  if (!text.endsWith('\n')) throw bad('does not end in a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw bad('fewer than three lines');
  if (lines.length > 3 + MAX_CHECKPOINT_EXTENSIONS) throw bad('too many extension lines');
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  if (!isKeyName(origin)) throw bad('origin is empty or contains a space, a plus or a control character');
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(sizeLine))
    throw bad('tree size is not a decimal without leading zeros');
  const size = Number(sizeLine);
  if (size > MAX_TREE_SIZE) throw bad('tree size beyond 2^53 - 1');
  let root: Uint8Array;
  try {
    root = fromB64std(rootLine, 64);
  } catch (e) {
    if (e instanceof HearthError) throw bad('root hash is not canonical base64');
    throw e;
  }
  if (root.length !== HASH_SIZE) throw bad('root hash is not 32 bytes');
  for (const e of extensions)
    if (!isExtensionLine(e)) throw bad('empty or overlong extension line, or one with a control character');
  return { origin, size, root, extensions };
}

/** Sign a checkpoint as a signed note under the key name `cp.origin`. */
export function signCheckpoint(cp: Checkpoint, signer: Signer): Promise<string> {
  return signNote(formatCheckpoint(cp), [{ name: cp.origin, signer }]);
}

/**
 * Open a signed checkpoint of the log `origin` whose key is `publicKey` (the device key pinned at
 * pairing): parse the note and its body (E_LOG_NOTE, E_LOG_CHECKPOINT), check the origin
 * (E_BAD_BINDING: another device's log), then verify the note (E_WRONG_SIGNER when that key did not
 * sign it, E_BAD_SIGNATURE when its signature fails).
 */
export async function openCheckpoint(
  note: string | Uint8Array,
  origin: string,
  publicKey: Uint8Array,
): Promise<Checkpoint> {
  // The origin first, so that another device's checkpoint (signed by its own key under its own
  // name) is reported as what it is, E_BAD_BINDING, rather than as E_WRONG_SIGNER.
  const cp = parseCheckpoint(parseNote(note).text);
  if (cp.origin !== origin)
    throw new VerificationError('E_BAD_BINDING', 'checkpoint is of another log than the one expected');
  await openNote(note, [await noteVerifier(origin, publicKey)]);
  return cp;
}
