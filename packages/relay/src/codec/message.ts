/**
 * STUN message decode/encode (RFC 8489 §5, §14) with MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT.
 *
 * Wire layout (RFC 8489 §5):
 *   0                   1                   2                   3
 *  |0 0|     STUN Message Type     |         Message Length        |
 *  |                         Magic Cookie                          |
 *  |                     Transaction ID (96 bits)                  |
 *  then attributes: | Type (16) | Length (16) | Value, padded to 4 bytes |
 */

import {
  Attr,
  DEFAULT_MAX_MESSAGE_SIZE,
  FINGERPRINT_XOR,
  HEADER_SIZE,
  MAGIC_COOKIE,
  MAX_ATTRIBUTES,
  messageType,
  type StunClass,
  splitMessageType,
} from './constants.js';
import { crc32 } from './crc32.js';
import { StunDecodeError, StunEncodeError } from './errors.js';
import { type StunCrypto, timingSafeEqualBytes } from './hashes.js';

/** One attribute as found on the wire. `value` is a view into the message (no copy). */
export interface StunAttribute {
  readonly type: number;
  readonly value: Uint8Array;
}

/** A decoded STUN message. Attribute values are views into `raw`. */
export interface StunMessage {
  readonly method: number;
  readonly cls: StunClass;
  /** 12 bytes. */
  readonly transactionId: Uint8Array;
  /** Attributes in wire order, excluding those after MESSAGE-INTEGRITY other than MI-SHA256/FINGERPRINT. */
  readonly attributes: readonly StunAttribute[];
  /** The whole message. */
  readonly raw: Uint8Array;
  /** Offset of the MESSAGE-INTEGRITY attribute header, or -1. */
  readonly integrityOffset: number;
  /** Offset of the MESSAGE-INTEGRITY-SHA256 attribute header, or -1. */
  readonly integritySha256Offset: number;
  /** True when a FINGERPRINT was present (and verified). */
  readonly hasFingerprint: boolean;
}

/** Decoder options. */
export interface DecodeOptions {
  /** Hard cap on the message size in bytes. Default 65535. */
  readonly maxSize?: number;
  /** Reject messages whose FINGERPRINT is wrong (default true). */
  readonly checkFingerprint?: boolean;
}

/** Quick check: could these bytes be a STUN message (top bits 00, magic cookie, length % 4 == 0)? */
export function isStunMessage(buf: Uint8Array): boolean {
  return (
    buf.length >= HEADER_SIZE &&
    (buf[0]! & 0xc0) === 0 &&
    buf[4] === 0x21 &&
    buf[5] === 0x12 &&
    buf[6] === 0xa4 &&
    buf[7] === 0x42 &&
    (buf[3]! & 3) === 0
  );
}

/**
 * Decodes one STUN message occupying exactly `buf`. Throws only {@link StunDecodeError}.
 * Verifies FINGERPRINT if present; MESSAGE-INTEGRITY is checked separately ({@link verifyIntegrity}).
 */
export function decodeStunMessage(buf: Uint8Array, options: DecodeOptions = {}): StunMessage {
  const maxSize = options.maxSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  if (buf.length > maxSize) throw new StunDecodeError('message exceeds size limit', 'E_STUN_TOO_LARGE');
  if (buf.length < HEADER_SIZE) throw new StunDecodeError('shorter than STUN header');
  if ((buf[0]! & 0xc0) !== 0) throw new StunDecodeError('first two bits must be zero');
  const type = (buf[0]! << 8) | buf[1]!;
  const length = (buf[2]! << 8) | buf[3]!;
  if ((length & 3) !== 0) throw new StunDecodeError('length not a multiple of 4');
  if (HEADER_SIZE + length !== buf.length) throw new StunDecodeError('length field does not match datagram');
  const cookie = ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0;
  if (cookie !== MAGIC_COOKIE) throw new StunDecodeError('bad magic cookie');
  const { method, cls } = splitMessageType(type);
  const attributes: StunAttribute[] = [];
  let integrityOffset = -1;
  let integritySha256Offset = -1;
  let hasFingerprint = false;
  let off = HEADER_SIZE;
  let count = 0;
  while (off < buf.length) {
    if (hasFingerprint) throw new StunDecodeError('attribute after FINGERPRINT');
    if (buf.length - off < 4) throw new StunDecodeError('truncated attribute header');
    if (++count > MAX_ATTRIBUTES) throw new StunDecodeError('too many attributes');
    const at = (buf[off]! << 8) | buf[off + 1]!;
    const al = (buf[off + 2]! << 8) | buf[off + 3]!;
    const padded = (al + 3) & ~3;
    if (off + 4 + padded > buf.length) throw new StunDecodeError('attribute overruns message');
    const value = buf.subarray(off + 4, off + 4 + al);
    if (at === Attr.Fingerprint) {
      if (al !== 4) throw new StunDecodeError('bad FINGERPRINT length');
      if (options.checkFingerprint !== false) {
        const want = (crc32(buf, 0, off) ^ FINGERPRINT_XOR) >>> 0;
        const got = ((value[0]! << 24) | (value[1]! << 16) | (value[2]! << 8) | value[3]!) >>> 0;
        if (want !== got) throw new StunDecodeError('FINGERPRINT mismatch', 'E_STUN_FINGERPRINT');
      }
      hasFingerprint = true;
    } else if (at === Attr.MessageIntegrity) {
      if (al !== 20) throw new StunDecodeError('bad MESSAGE-INTEGRITY length');
      if (integrityOffset === -1 && integritySha256Offset === -1) integrityOffset = off;
    } else if (at === Attr.MessageIntegritySha256) {
      // RFC 8489 §14.6: 16..32 bytes, multiple of 4.
      if (al < 16 || al > 32 || (al & 3) !== 0)
        throw new StunDecodeError('bad MESSAGE-INTEGRITY-SHA256 length');
      if (integritySha256Offset === -1) integritySha256Offset = off;
    } else if (integrityOffset === -1 && integritySha256Offset === -1) {
      // RFC 8489 §14.5: attributes after MESSAGE-INTEGRITY are ignored.
      attributes.push({ type: at, value });
    }
    off += 4 + padded;
  }
  return {
    method,
    cls,
    transactionId: buf.subarray(8, 20),
    attributes,
    raw: buf,
    integrityOffset,
    integritySha256Offset,
    hasFingerprint,
  };
}

/** First value of attribute `type`, or undefined. */
export function getAttribute(msg: StunMessage, type: number): Uint8Array | undefined {
  for (const a of msg.attributes) if (a.type === type) return a.value;
  return undefined;
}

/** All values of attribute `type` (e.g. several XOR-PEER-ADDRESS in CreatePermission). */
export function getAttributes(msg: StunMessage, type: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const a of msg.attributes) if (a.type === type) out.push(a.value);
  return out;
}

/** What to put in a message being encoded. */
export interface StunMessageInit {
  readonly method: number;
  readonly cls: StunClass;
  /** 12 bytes. */
  readonly transactionId: Uint8Array;
  readonly attributes?: readonly StunAttribute[];
}

/** Integrity options for {@link encodeStunMessage}. */
export interface EncodeOptions {
  /** Append MESSAGE-INTEGRITY (HMAC-SHA1) with this key (RFC 8489 §14.5). */
  readonly integrityKey?: Uint8Array;
  /** Append MESSAGE-INTEGRITY-SHA256 with this key (RFC 8489 §14.6). */
  readonly integritySha256Key?: Uint8Array;
  /** Needed when either integrity key is given. */
  readonly crypto?: StunCrypto;
  /** Append FINGERPRINT (RFC 8489 §14.7). */
  readonly fingerprint?: boolean;
}

/** Encodes a message. Throws only {@link StunEncodeError}. */
export function encodeStunMessage(init: StunMessageInit, options: EncodeOptions = {}): Uint8Array {
  if (init.transactionId.length !== 12) throw new StunEncodeError('transaction id must be 12 bytes');
  if (!Number.isInteger(init.method) || init.method < 0 || init.method > 0xfff) {
    throw new StunEncodeError('method out of range');
  }
  const attrs = init.attributes ?? [];
  let size = HEADER_SIZE;
  for (const a of attrs) {
    if (!Number.isInteger(a.type) || a.type < 0 || a.type > 0xffff)
      throw new StunEncodeError('bad attribute type');
    if (a.value.length > 0xffff) throw new StunEncodeError('attribute too long');
    size += 4 + ((a.value.length + 3) & ~3);
  }
  if (options.integrityKey) size += 24;
  if (options.integritySha256Key) size += 36;
  if (options.fingerprint) size += 8;
  if (size - HEADER_SIZE > 0xffff) throw new StunEncodeError('message too long');
  const out = new Uint8Array(size);
  const type = messageType(init.method, init.cls);
  out[0] = type >> 8;
  out[1] = type & 0xff;
  out[4] = 0x21;
  out[5] = 0x12;
  out[6] = 0xa4;
  out[7] = 0x42;
  out.set(init.transactionId, 8);
  let off = HEADER_SIZE;
  for (const a of attrs) {
    out[off] = a.type >> 8;
    out[off + 1] = a.type & 0xff;
    out[off + 2] = a.value.length >> 8;
    out[off + 3] = a.value.length & 0xff;
    out.set(a.value, off + 4);
    off += 4 + ((a.value.length + 3) & ~3);
  }
  const setLength = (len: number) => {
    out[2] = len >> 8;
    out[3] = len & 0xff;
  };
  if (options.integrityKey || options.integritySha256Key) {
    if (!options.crypto) throw new StunEncodeError('integrity requested without crypto');
  }
  if (options.integrityKey) {
    setLength(off + 24 - HEADER_SIZE);
    const mac = options.crypto!.hmacSha1(options.integrityKey, [out.subarray(0, off)]);
    out[off] = Attr.MessageIntegrity >> 8;
    out[off + 1] = Attr.MessageIntegrity & 0xff;
    out[off + 3] = 20;
    out.set(mac, off + 4);
    off += 24;
  }
  if (options.integritySha256Key) {
    setLength(off + 36 - HEADER_SIZE);
    const mac = options.crypto!.hmacSha256(options.integritySha256Key, [out.subarray(0, off)]);
    out[off] = Attr.MessageIntegritySha256 >> 8;
    out[off + 1] = Attr.MessageIntegritySha256 & 0xff;
    out[off + 3] = 32;
    out.set(mac, off + 4);
    off += 36;
  }
  setLength(size - HEADER_SIZE);
  if (options.fingerprint) {
    const fp = (crc32(out, 0, off) ^ FINGERPRINT_XOR) >>> 0;
    out[off] = Attr.Fingerprint >> 8;
    out[off + 1] = Attr.Fingerprint & 0xff;
    out[off + 3] = 4;
    out[off + 4] = fp >>> 24;
    out[off + 5] = (fp >>> 16) & 0xff;
    out[off + 6] = (fp >>> 8) & 0xff;
    out[off + 7] = fp & 0xff;
  }
  return out;
}

/** HMAC over the message up to `attrOffset` with the length field patched as RFC 8489 §14.5 says. */
function integrityInput(raw: Uint8Array, attrOffset: number, attrSize: number): Uint8Array[] {
  const header = raw.slice(0, HEADER_SIZE);
  const len = attrOffset - HEADER_SIZE + attrSize;
  header[2] = len >> 8;
  header[3] = len & 0xff;
  return [header, raw.subarray(HEADER_SIZE, attrOffset)];
}

/**
 * Checks MESSAGE-INTEGRITY-SHA256 if present, else MESSAGE-INTEGRITY, with `key`.
 * Returns false when the message carries neither. Comparison is constant-time.
 */
export function verifyIntegrity(msg: StunMessage, key: Uint8Array, crypto: StunCrypto): boolean {
  const raw = msg.raw;
  if (msg.integritySha256Offset !== -1) {
    const off = msg.integritySha256Offset;
    const len = (raw[off + 2]! << 8) | raw[off + 3]!;
    const mac = crypto.hmacSha256(key, integrityInput(raw, off, 4 + len)).subarray(0, len);
    return timingSafeEqualBytes(mac, raw.subarray(off + 4, off + 4 + len));
  }
  if (msg.integrityOffset !== -1) {
    const off = msg.integrityOffset;
    const mac = crypto.hmacSha1(key, integrityInput(raw, off, 24));
    return timingSafeEqualBytes(mac, raw.subarray(off + 4, off + 24));
  }
  return false;
}

/** RFC 8489 §9.2.2 long-term key: MD5(username ":" realm ":" password) (SASLprep not applied). */
export function longTermKey(
  username: string,
  realm: string,
  password: string,
  crypto: StunCrypto,
): Uint8Array {
  return crypto.md5(new TextEncoder().encode(`${username}:${realm}:${password}`));
}
