/**
 * Identities and their text forms.
 *
 * Every key type has its own prefix, so one can never be mistaken for another (tailscale's
 * `nodekey:` habit): `hdid_` device ID, `hdk_` device public key, `huk_` user (viewer) public key,
 * `hsk_` rendezvous server public key. The text is `<prefix>_<base32(payload || check)>`, where
 * `check` is the first 4 bytes of SHA-256(prefix || payload), so a typo or a key pasted into the
 * wrong field is caught on decode.
 *
 * A device ID is the first 20 bytes (160 bits) of SHA-256("hearth/v1/device-id" || device public key):
 * it is derived from a key generated on the device, carries no serial or MAC, and cannot be
 * enumerated (threat model S3, F4, F5).
 */
import { sha256 as sha256sync } from '@noble/hashes/sha2.js';
import { b32, concat, constantTimeEqual, fromB32, utf8 } from './bytes.js';
import { ProtocolError } from './errors.js';

/** Key and ID kinds with their text prefixes and payload sizes. */
export const ID_KINDS = {
  deviceId: { prefix: 'hdid', size: 20 },
  deviceKey: { prefix: 'hdk', size: 32 },
  userKey: { prefix: 'huk', size: 32 },
  serverKey: { prefix: 'hsk', size: 32 },
} as const;
export type IdKind = keyof typeof ID_KINDS;

declare const brand: unique symbol;
/** Text of a given kind, e.g. `Text<'deviceId'>` is a valid `hdid_...` string. */
export type Text<K extends IdKind> = string & { readonly [brand]: K };
export type DeviceId = Text<'deviceId'>;
export type DeviceKeyText = Text<'deviceKey'>;
export type UserKeyText = Text<'userKey'>;
export type ServerKeyText = Text<'serverKey'>;

/** Longest valid text of any kind; decoders refuse anything longer before parsing. */
export const MAX_ID_TEXT = 80;

function checksum(prefix: string, payload: Uint8Array): Uint8Array {
  return sha256sync(concat(utf8(prefix), payload)).subarray(0, 4);
}

/** Encode a payload as text of the given kind. */
export function encodeId<K extends IdKind>(kind: K, payload: Uint8Array): Text<K> {
  const { prefix, size } = ID_KINDS[kind];
  if (payload.length !== size) throw new RangeError(`${kind} must be ${size} bytes`);
  return `${prefix}_${b32(concat(payload, checksum(prefix, payload)))}` as Text<K>;
}

/** Decode text of the given kind to its payload; raises ProtocolError E_BAD_ID on any defect. */
export function decodeId(kind: IdKind, text: unknown): Uint8Array {
  const { prefix, size } = ID_KINDS[kind];
  if (typeof text !== 'string' || text.length > MAX_ID_TEXT)
    throw new ProtocolError('E_BAD_ID', `${kind}: not a string of reasonable length`);
  const sep = text.indexOf('_');
  if (sep < 0 || text.slice(0, sep) !== prefix) {
    throw new ProtocolError('E_BAD_ID', `${kind}: expected prefix "${prefix}_"`);
  }
  let raw: Uint8Array;
  try {
    raw = fromB32(text.slice(sep + 1));
  } catch {
    throw new ProtocolError('E_BAD_ID', `${kind}: bad base32`);
  }
  if (raw.length !== size + 4) throw new ProtocolError('E_BAD_ID', `${kind}: wrong length`);
  const payload = raw.slice(0, size);
  if (!constantTimeEqual(raw.subarray(size), checksum(prefix, payload)))
    throw new ProtocolError('E_BAD_ID', `${kind}: bad checksum`);
  // Canonical form only: one text per payload (base32 lower-case, no padding bits set).
  if (encodeId(kind, payload) !== text) throw new ProtocolError('E_BAD_ID', `${kind}: not in canonical form`);
  return payload;
}

/** True when `text` is valid text of `kind`. */
export function isId<K extends IdKind>(kind: K, text: unknown): text is Text<K> {
  try {
    decodeId(kind, text);
    return true;
  } catch {
    return false;
  }
}

/** Validate and brand text of a kind. */
export function parseId<K extends IdKind>(kind: K, text: unknown): Text<K> {
  decodeId(kind, text);
  return text as Text<K>;
}

const DEVICE_ID_LABEL = utf8('hearth/v1/device-id');

/** Derive the device ID from the device's Ed25519 public key. */
export function deviceIdFromKey(devicePublicKey: Uint8Array): DeviceId {
  if (devicePublicKey.length !== 32) throw new RangeError('device public key must be 32 bytes');
  return encodeId('deviceId', sha256sync(concat(DEVICE_ID_LABEL, devicePublicKey)).subarray(0, 20));
}

/** True when `devicePublicKey` is the key that `deviceId` was derived from. */
export function deviceIdMatches(deviceId: string, devicePublicKey: Uint8Array): boolean {
  if (devicePublicKey.length !== 32) return false;
  return deviceIdFromKey(devicePublicKey) === deviceId;
}

/** Short, human-comparable form of any ID text (for UIs and logs): prefix and first 8 chars. */
export function shortId(text: string): string {
  const sep = text.indexOf('_');
  return sep < 0 ? text.slice(0, 12) : `${text.slice(0, sep + 1)}${text.slice(sep + 1, sep + 9)}`;
}
