/** Typed encoders/decoders for attribute values. Decoders throw only {@link StunDecodeError}. */
import { CHANNEL_MAX, CHANNEL_MIN, ERROR_REASONS, MAX_REASON_BYTES } from './constants.js';
import { StunDecodeError, StunEncodeError } from './errors.js';

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 string value (USERNAME, REALM, NONCE, SOFTWARE). */
export function encodeString(s: string, maxBytes = 0xffff): Uint8Array {
  const b = utf8.encode(s);
  if (b.length > maxBytes) throw new StunEncodeError('string attribute too long');
  return b;
}

/** Decodes a UTF-8 string value, enforcing `maxBytes`. */
export function decodeString(v: Uint8Array, maxBytes: number): string {
  if (v.length > maxBytes) throw new StunDecodeError('string attribute too long');
  try {
    return utf8Strict.decode(v);
  } catch {
    throw new StunDecodeError('string attribute is not UTF-8');
  }
}

/** 32-bit unsigned value (LIFETIME, PRIORITY). */
export function encodeU32(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new StunEncodeError('u32 out of range');
  return new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

/** Decodes a 32-bit unsigned value. */
export function decodeU32(v: Uint8Array): number {
  if (v.length !== 4) throw new StunDecodeError('u32 attribute must be 4 bytes');
  return ((v[0]! << 24) | (v[1]! << 16) | (v[2]! << 8) | v[3]!) >>> 0;
}

/** An ERROR-CODE value (RFC 8489 §14.8). */
export interface StunErrorCode {
  readonly code: number;
  readonly reason: string;
}

/** Encodes ERROR-CODE; `reason` defaults to the RFC phrase. */
export function encodeErrorCode(code: number, reason = ERROR_REASONS[code] ?? ''): Uint8Array {
  if (!Number.isInteger(code) || code < 300 || code > 699)
    throw new StunEncodeError('error code out of range');
  const r = utf8.encode(reason);
  if (r.length > MAX_REASON_BYTES) throw new StunEncodeError('reason too long');
  const out = new Uint8Array(4 + r.length);
  out[2] = Math.floor(code / 100);
  out[3] = code % 100;
  out.set(r, 4);
  return out;
}

/** Decodes ERROR-CODE. */
export function decodeErrorCode(v: Uint8Array): StunErrorCode {
  if (v.length < 4) throw new StunDecodeError('ERROR-CODE too short');
  const cls = v[2]! & 7;
  const num = v[3]!;
  if (cls < 3 || cls > 6 || num > 99) throw new StunDecodeError('ERROR-CODE out of range');
  return { code: cls * 100 + num, reason: decodeString(v.subarray(4), MAX_REASON_BYTES) };
}

/** UNKNOWN-ATTRIBUTES value (list of 16-bit types). */
export function encodeUnknownAttributes(types: readonly number[]): Uint8Array {
  const out = new Uint8Array(types.length * 2);
  types.forEach((t, i) => {
    out[2 * i] = t >> 8;
    out[2 * i + 1] = t & 0xff;
  });
  return out;
}

/** Decodes UNKNOWN-ATTRIBUTES. */
export function decodeUnknownAttributes(v: Uint8Array): number[] {
  if (v.length % 2 !== 0) throw new StunDecodeError('UNKNOWN-ATTRIBUTES length odd');
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 2) out.push((v[i]! << 8) | v[i + 1]!);
  return out;
}

/** CHANNEL-NUMBER value (RFC 8656 §18.1): number + RFFU. */
export function encodeChannelNumber(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new StunEncodeError('channel out of range');
  return new Uint8Array([n >> 8, n & 0xff, 0, 0]);
}

/** Decodes CHANNEL-NUMBER (any 16-bit value; the server checks the bindable range). */
export function decodeChannelNumber(v: Uint8Array): number {
  if (v.length !== 4) throw new StunDecodeError('CHANNEL-NUMBER must be 4 bytes');
  return (v[0]! << 8) | v[1]!;
}

/** True for a bindable channel number, 0x4000–0x7FFF (see {@link CHANNEL_MAX}). */
export function isValidChannelNumber(n: number): boolean {
  return n >= CHANNEL_MIN && n <= CHANNEL_MAX;
}

/** REQUESTED-TRANSPORT value (RFC 8656 §18.7). */
export function encodeRequestedTransport(protocol: number): Uint8Array {
  if (!Number.isInteger(protocol) || protocol < 0 || protocol > 255)
    throw new StunEncodeError('bad protocol');
  return new Uint8Array([protocol, 0, 0, 0]);
}

/** Decodes REQUESTED-TRANSPORT to the IP protocol number. */
export function decodeRequestedTransport(v: Uint8Array): number {
  if (v.length !== 4) throw new StunDecodeError('REQUESTED-TRANSPORT must be 4 bytes');
  return v[0]!;
}

/** REQUESTED-ADDRESS-FAMILY value: 4 or 6 (RFC 8656 §18.8). */
export function encodeRequestedAddressFamily(family: 4 | 6): Uint8Array {
  return new Uint8Array([family === 4 ? 1 : 2, 0, 0, 0]);
}

/** Decodes REQUESTED-ADDRESS-FAMILY; returns 4, 6 or 0 for an unknown family. */
export function decodeRequestedAddressFamily(v: Uint8Array): 4 | 6 | 0 {
  if (v.length !== 4) throw new StunDecodeError('REQUESTED-ADDRESS-FAMILY must be 4 bytes');
  return v[0] === 1 ? 4 : v[0] === 2 ? 6 : 0;
}

/** Decodes EVEN-PORT: returns the R (reserve next port) bit. */
export function decodeEvenPort(v: Uint8Array): { reserve: boolean } {
  if (v.length < 1) throw new StunDecodeError('EVEN-PORT too short');
  return { reserve: (v[0]! & 0x80) !== 0 };
}

/** Encodes EVEN-PORT. */
export function encodeEvenPort(reserve: boolean): Uint8Array {
  return new Uint8Array([reserve ? 0x80 : 0, 0, 0, 0]);
}
