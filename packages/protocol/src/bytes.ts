/** Byte helpers shared by the core. No I/O, no Node APIs. */
import { base32nopad, base64, base64urlnopad } from '@scure/base';
import { ProtocolError } from './errors.js';

const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });
const tdExact = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** UTF-8 encode. */
export function utf8(s: string): Uint8Array {
  return te.encode(s);
}

/** Strict UTF-8 decode; invalid sequences raise E_DECODE. */
export function fromUtf8(b: Uint8Array): string {
  try {
    return td.decode(b);
  } catch {
    throw new ProtocolError('E_DECODE', 'invalid UTF-8');
  }
}

/**
 * Strict UTF-8 decode that keeps a leading byte order mark as U+FEFF (TextDecoder drops it by
 * default), so `utf8(fromUtf8Exact(b))` is always `b`: for decoders that must accept one byte string
 * per value. Invalid sequences raise E_DECODE.
 */
export function fromUtf8Exact(b: Uint8Array): string {
  try {
    return tdExact.decode(b);
  } catch {
    throw new ProtocolError('E_DECODE', 'invalid UTF-8');
  }
}

/** Concatenate byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Big-endian 8-byte length as used by RFC 9383's transcript (little-endian there; see spake2plus). */
export function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, false);
  return b;
}

/** Length-prefixed (u32 big-endian) field, for unambiguous concatenation of variable-length inputs. */
export function lp(b: Uint8Array): Uint8Array {
  return concat(u32be(b.length), b);
}

/**
 * Compare two byte arrays in time that depends only on their lengths, never on their contents.
 * Use it for every comparison that involves a secret or a MAC.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Overwrite a buffer that held secret material. */
export function wipe(b: Uint8Array | undefined): void {
  if (b) b.fill(0);
}

/** base64url without padding. */
export function b64u(b: Uint8Array): string {
  return base64urlnopad.encode(b);
}

/** Decode base64url without padding; raises E_DECODE, and E_TOO_LARGE past `maxBytes`. */
export function fromB64u(s: string, maxBytes = 1 << 20): Uint8Array {
  if (typeof s !== 'string') throw new ProtocolError('E_DECODE', 'base64url: not a string');
  if (s.length > Math.ceil((maxBytes * 4) / 3))
    throw new ProtocolError('E_TOO_LARGE', 'base64url field too long');
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new ProtocolError('E_DECODE', 'base64url: bad character');
  try {
    return base64urlnopad.decode(s);
  } catch {
    throw new ProtocolError('E_DECODE', 'base64url: bad length or padding bits');
  }
}

/** Standard base64 with padding (RFC 4648 section 4), as C2SP signed notes and checkpoints use. */
export function b64std(b: Uint8Array): string {
  return base64.encode(b);
}

/**
 * Decode standard padded base64 strictly (canonical padding bits, `=` only at the end); raises
 * E_DECODE, and E_TOO_LARGE past `maxBytes`.
 */
export function fromB64std(s: string, maxBytes = 1 << 20): Uint8Array {
  if (typeof s !== 'string') throw new ProtocolError('E_DECODE', 'base64: not a string');
  if (s.length > Math.ceil(maxBytes / 3) * 4) throw new ProtocolError('E_TOO_LARGE', 'base64 field too long');
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s))
    throw new ProtocolError('E_DECODE', 'base64: bad character, length or padding');
  let out: Uint8Array;
  try {
    out = base64.decode(s);
  } catch {
    throw new ProtocolError('E_DECODE', 'base64: bad padding bits');
  }
  // Refuse non-canonical encodings (padding bits set): the text must be the encoding of its bytes.
  if (base64.encode(out) !== s) throw new ProtocolError('E_DECODE', 'base64: not canonical');
  return out;
}

/** Lower-case RFC 4648 base32 without padding. */
export function b32(b: Uint8Array): string {
  return base32nopad.encode(b).toLowerCase();
}

/** Decode lower- or upper-case RFC 4648 base32 without padding; raises E_DECODE. */
export function fromB32(s: string): Uint8Array {
  if (!/^[A-Za-z2-7]*$/.test(s)) throw new ProtocolError('E_DECODE', 'base32: bad character');
  try {
    return base32nopad.decode(s.toUpperCase());
  } catch {
    throw new ProtocolError('E_DECODE', 'base32: bad length or padding bits');
  }
}

/** Lower-case hex. */
export function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/** Decode hex (either case); raises E_DECODE. */
export function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new ProtocolError('E_DECODE', 'hex: malformed');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Copy into a fresh ArrayBuffer-backed array (WebCrypto wants BufferSource without SharedArrayBuffer). */
export function ab(b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(b.length);
  out.set(b);
  return out;
}
