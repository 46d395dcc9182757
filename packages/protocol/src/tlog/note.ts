/**
 * C2SP signed notes (https://c2sp.org/signed-note), Ed25519 only (signature type 0x01):
 *
 *     <text, ending in a newline>
 *     <blank line>
 *     — <key name> <base64(4-byte key ID || 64-byte signature)>
 *     ...
 *
 * The key ID is the first four bytes (big-endian uint32) of SHA-256(name || 0x0A || 0x01 || public
 * key). The signature is Ed25519 (RFC 8032) over the text's UTF-8 bytes, its final newline included.
 *
 * Parsing is strict and bounded: at most MAX_NOTE_BYTES of UTF-8, at most MAX_NOTE_SIGNATURES
 * signature lines, no control characters but newline, and every signature line well formed. A
 * malformed note raises ProtocolError E_LOG_NOTE (E_TOO_LARGE past the limits); verification
 * raises VerificationError E_BAD_SIGNATURE (a known key's signature fails) or E_WRONG_SIGNER (no
 * signature of a known key).
 */
import { b64std, concat, fromB64std, fromUtf8Exact, hex, utf8 } from '../bytes.js';
import { ed25519Verify, type Signer, sha256 } from '../crypto/primitives.js';
import { HearthError, ProtocolError, VerificationError } from '../errors.js';

/** Largest note accepted, in bytes of UTF-8 (text and signatures). */
export const MAX_NOTE_BYTES = 16 * 1024;
/** Most signature lines in a note (the spec's minimum that verifiers MUST accept). */
export const MAX_NOTE_SIGNATURES = 16;
/** Longest key name, in UTF-16 code units. */
export const MAX_KEY_NAME = 256;
/** The signed-note signature type of Ed25519. */
export const NOTE_SIG_ED25519 = 0x01;

const EM_DASH_SPACE = '\u2014 ';

/** One signature line: the key name, its 4-byte key ID (a uint32) and the signature bytes after it. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  readonly signature: Uint8Array;
}

/** A parsed (not yet verified) signed note. */
export interface Note {
  /** The text, its final newline included, without the separating blank line. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** An Ed25519 key that may sign notes: its name, key ID and 32-byte public key. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Uint8Array;
}

/** A key name as signed-note allows: non-empty, no Unicode space, no `+`, no control character. */
export function isKeyName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= MAX_KEY_NAME &&
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the rule is about control characters
    !/[\s+\u0000-\u001f\u007f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/u.test(
      name,
    ) &&
    isWellFormed(name)
  );
}

/** No lone surrogates (they would not survive UTF-8). */
function isWellFormed(s: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

/** The key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || publicKey)[:4], big-endian. */
export async function noteKeyId(name: string, publicKey: Uint8Array): Promise<number> {
  if (!isKeyName(name)) throw new RangeError('invalid signed-note key name');
  if (publicKey.length !== 32) throw new RangeError('Ed25519 public key must be 32 bytes');
  const h = await sha256(concat(utf8(name), new Uint8Array([0x0a, NOTE_SIG_ED25519]), publicKey));
  return new DataView(h.buffer, h.byteOffset, 4).getUint32(0, false);
}

/** A verifier for `name` and `publicKey`. */
export async function noteVerifier(name: string, publicKey: Uint8Array): Promise<NoteVerifier> {
  return { name, keyId: await noteKeyId(name, publicKey), publicKey: publicKey.slice() };
}

/** The Go / C2SP verifier-key text: `<name>+<key ID, 8 hex>+<base64(0x01 || public key)>`. */
export function encodeVerifierKey(v: NoteVerifier): string {
  return `${v.name}+${v.keyId.toString(16).padStart(8, '0')}+${b64std(concat(new Uint8Array([NOTE_SIG_ED25519]), v.publicKey))}`;
}

/** Parse a verifier-key text (Ed25519 only), checking that its key ID is the one its key has. */
export async function parseVerifierKey(text: string): Promise<NoteVerifier> {
  const bad = (why: string) => new ProtocolError('E_LOG_NOTE', `verifier key: ${why}`);
  if (typeof text !== 'string') throw bad('not a string');
  if (text.length > MAX_KEY_NAME + 80)
    throw new ProtocolError('E_TOO_LARGE', `verifier key longer than ${MAX_KEY_NAME + 80} characters`);
  const m = /^([^+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(text);
  if (!m || !isKeyName(m[1])) throw bad('not <name>+<hex id>+<base64 key>');
  const key = tryDecode(() => fromB64std(m[3]!, 64), bad('key is not base64'));
  if (key.length !== 33 || key[0] !== NOTE_SIG_ED25519) throw bad('not an Ed25519 key');
  const v = await noteVerifier(m[1], key.subarray(1));
  if (v.keyId !== Number.parseInt(m[2]!, 16)) throw bad('key ID does not match the key');
  return v;
}

function tryDecode<T>(f: () => T, err: HearthError): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof HearthError) throw err;
    throw e;
  }
}

/** Refuse what signed-note forbids anywhere in a note: control characters other than newline. */
function checkCharacters(s: string): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the rule is about control characters
  if (/[\u0000-\u0009\u000b-\u001f]/.test(s))
    throw new ProtocolError('E_LOG_NOTE', 'control character other than newline');
}

/** Note text as the spec allows it (for signing our own): ends in a newline, no control characters. */
function checkText(text: string): void {
  if (!text.endsWith('\n')) throw new ProtocolError('E_LOG_NOTE', 'text does not end in a newline');
  checkCharacters(text);
  if (!isWellFormed(text)) throw new ProtocolError('E_LOG_NOTE', 'text is not valid Unicode');
}

/**
 * Parse a signed note (text or UTF-8 bytes) without verifying it. Raises E_TOO_LARGE past
 * MAX_NOTE_BYTES or MAX_NOTE_SIGNATURES, E_LOG_NOTE for anything malformed; never anything untyped.
 */
export function parseNote(input: string | Uint8Array): Note {
  let s: string;
  if (typeof input === 'string') {
    if (input.length > MAX_NOTE_BYTES)
      throw new ProtocolError('E_TOO_LARGE', `note larger than ${MAX_NOTE_BYTES} bytes`);
    if (!isWellFormed(input)) throw new ProtocolError('E_LOG_NOTE', 'note is not valid Unicode');
    if (utf8(input).length > MAX_NOTE_BYTES)
      throw new ProtocolError('E_TOO_LARGE', `note larger than ${MAX_NOTE_BYTES} bytes`);
    s = input;
  } else if (input instanceof Uint8Array) {
    if (input.length > MAX_NOTE_BYTES)
      throw new ProtocolError('E_TOO_LARGE', `note larger than ${MAX_NOTE_BYTES} bytes`);
    s = tryDecode(() => fromUtf8Exact(input), new ProtocolError('E_LOG_NOTE', 'note is not valid UTF-8'));
  } else {
    throw new ProtocolError('E_LOG_NOTE', 'note: expected text or bytes');
  }
  checkCharacters(s);
  // The text is separated from the signatures by the last blank line.
  const split = s.lastIndexOf('\n\n');
  if (split < 0) throw new ProtocolError('E_LOG_NOTE', 'no blank line before the signatures');
  const text = s.slice(0, split + 1);
  const block = s.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n'))
    throw new ProtocolError('E_LOG_NOTE', 'signature block empty or not ending in a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES)
    throw new ProtocolError('E_TOO_LARGE', `more than ${MAX_NOTE_SIGNATURES} signatures`);
  const signatures: NoteSignature[] = [];
  for (const line of lines) {
    if (!line.startsWith(EM_DASH_SPACE))
      throw new ProtocolError('E_LOG_NOTE', 'signature line does not start with an em dash and a space');
    const parts = line.slice(EM_DASH_SPACE.length).split(' ');
    if (parts.length !== 2 || !isKeyName(parts[0]))
      throw new ProtocolError('E_LOG_NOTE', 'signature line is not "— <key name> <base64>"');
    const raw = tryDecode(
      () => fromB64std(parts[1]!, MAX_NOTE_BYTES),
      new ProtocolError('E_LOG_NOTE', 'signature is not canonical base64'),
    );
    if (raw.length < 5) throw new ProtocolError('E_LOG_NOTE', 'signature shorter than a key ID and a byte');
    signatures.push({
      name: parts[0],
      keyId: new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0, false),
      signature: raw.slice(4),
    });
  }
  return { text, signatures };
}

/** Sign `text` (ending in a newline) with each of `signers`; returns the note. */
export async function signNote(
  text: string,
  signers: readonly { readonly name: string; readonly signer: Signer }[],
): Promise<string> {
  checkText(text);
  if (signers.length === 0 || signers.length > MAX_NOTE_SIGNATURES)
    throw new RangeError(`a note needs 1 to ${MAX_NOTE_SIGNATURES} signatures`);
  const msg = utf8(text);
  let out = `${text}\n`;
  for (const { name, signer } of signers) {
    const id = await noteKeyId(name, signer.publicKey);
    const idBytes = new Uint8Array(4);
    new DataView(idBytes.buffer).setUint32(0, id, false);
    out += `${EM_DASH_SPACE}${name} ${b64std(concat(idBytes, await signer.sign(msg)))}\n`;
  }
  if (utf8(out).length > MAX_NOTE_BYTES) throw new RangeError(`note larger than ${MAX_NOTE_BYTES} bytes`);
  return out;
}

/** A verified note: its text and the known keys whose signatures verified. */
export interface OpenedNote {
  readonly text: string;
  readonly verifiedBy: readonly NoteVerifier[];
}

/**
 * Parse and verify a note against `verifiers` (signed-note's rules): signatures of unknown keys (name
 * and key ID not both matching a verifier) are ignored; a known key's signature that fails raises
 * E_BAD_SIGNATURE, a known key that signs twice E_LOG_NOTE; no verified known signature at all
 * raises E_WRONG_SIGNER.
 */
export async function openNote(
  input: string | Uint8Array,
  verifiers: readonly NoteVerifier[],
): Promise<OpenedNote> {
  const note = parseNote(input);
  const msg = utf8(note.text);
  const verifiedBy: NoteVerifier[] = [];
  for (const sig of note.signatures) {
    const v = verifiers.find((k) => k.name === sig.name && k.keyId === sig.keyId);
    if (!v) continue;
    if (verifiedBy.includes(v))
      throw new ProtocolError('E_LOG_NOTE', `key ${sig.name} signed the note twice`);
    if (!(await ed25519Verify(v.publicKey, msg, sig.signature)))
      throw new VerificationError('E_BAD_SIGNATURE', `note signature of ${sig.name} does not verify`);
    verifiedBy.push(v);
  }
  if (verifiedBy.length === 0)
    throw new VerificationError(
      'E_WRONG_SIGNER',
      `note is not signed by any expected key (${verifiers.map((v) => `${v.name}+${hex(idBytes(v.keyId))}`).join(', ') || 'none'})`,
    );
  return { text: note.text, verifiedBy };
}

function idBytes(id: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, id, false);
  return b;
}
