/**
 * The two forms of a device's setup secret (threat model S2, F10).
 *
 * **QR payload** — `https://<server-host[:port]>/pair#v=1&d=<deviceId>&s=<secret>`.
 *   - `s` is 16 random bytes (128 bits) in lower-case RFC 4648 base32 without padding (26 chars).
 *   - Everything secret sits in the fragment, which browsers never send to the server.
 *   - Entropy: 128 bits. Even without the attempt limit, online guessing is hopeless.
 *
 * **Manual code** — 13 Crockford base32 characters, shown as `XXXX-XXXX-XXXXX`:
 *   - chars 1–4: a 20-bit random lookup tag, drawn fresh for each pairing window. The device registers
 *     it with the rendezvous server, so a viewer can find the device without knowing its ID. It is not
 *     secret: the server sees it.
 *   - chars 5–12: the 40-bit secret.
 *   - char 13: a Luhn mod 32 check character. It catches every single mistyped character and most
 *     swaps of two neighbours before anything is sent, so a typo never costs one of the few attempts.
 *     It carries no entropy.
 *   - Entropy: 40 bits of secret. Guessing is bounded by the device's attempt limit (default 5 per
 *     window), so one window gives an attacker a chance of at most 5 / 2^40 ≈ 4.5·10^-12. A transcript
 *     gives nothing to guess against offline, because pairing is a PAKE (SPAKE2+).
 *
 * Input is forgiving: lower case, hyphens and white space are accepted, and O→0, I/L→1 (Crockford).
 * Errors never echo the input, because the input is a secret.
 */
import { b32, fromB32 } from '../bytes.js';
import type { CryptoEnv } from '../crypto/env.js';
import { ProtocolError } from '../errors.js';

/** Bits of secret in the QR payload. */
export const QR_SECRET_BITS = 128;
/** Bytes of secret in the QR payload. */
export const QR_SECRET_BYTES = 16;
/** Bits of secret in the manual code. */
export const MANUAL_SECRET_BITS = 40;
/** Bytes of secret in the manual code. */
export const MANUAL_SECRET_BYTES = 5;
/** Bits of the (public) lookup tag in the manual code. */
export const MANUAL_TAG_BITS = 20;
/** Characters of a manual code, check character included. */
export const MANUAL_CODE_CHARS = 13;
/** Longest QR payload text accepted. */
export const MAX_QR_PAYLOAD = 512;
/** Longest manual-code input accepted (before removing separators). */
export const MAX_MANUAL_INPUT = 64;
/** Longest device ID text accepted in a QR payload. */
export const MAX_DEVICE_ID_TEXT = 80;

/** Crockford base32 alphabet: no I, L, O, U. */
export const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

// ------------------------------------------------------------------ QR payload

/** What a pairing QR code carries. */
export interface QrPayload {
  /** Rendezvous server authority, `host` or `host:port` (normalized: lower case, no default port). */
  server: string;
  /** Device ID text (opaque here; ids.ts validates it). */
  deviceId: string;
  /** 16-byte setup secret. */
  secret: Uint8Array;
}

/** Options for {@link parseQrPayload}. */
export interface QrParseOptions {
  /** Accept `http://` too (local demos only). Default false. */
  allowInsecure?: boolean;
}

const DEVICE_ID_RE = /^[a-z0-9_]{1,80}$/;

/** Draw a fresh 16-byte QR setup secret. */
export function generateQrSecret(env: CryptoEnv): Uint8Array {
  return env.random(QR_SECRET_BYTES);
}

function normalizeServer(server: string, insecure: boolean): string | undefined {
  if (server.length === 0 || server.length > 300 || /[\s/?#@\\%]/.test(server)) return undefined;
  let u: URL;
  try {
    u = new URL(`${insecure ? 'http' : 'https'}://${server}/`);
  } catch {
    return undefined;
  }
  if (u.username !== '' || u.password !== '' || u.pathname !== '/' || u.search !== '' || u.hash !== '')
    return undefined;
  if (u.host === '') return undefined;
  return u.host;
}

/** Build the QR payload URL. Raises RangeError for a malformed server, device ID or secret. */
export function encodeQrPayload(p: QrPayload, opts: QrParseOptions = {}): string {
  const server = normalizeServer(p.server, opts.allowInsecure === true);
  if (!server) throw new RangeError('QR payload: server must be host or host:port');
  if (!DEVICE_ID_RE.test(p.deviceId)) throw new RangeError('QR payload: malformed device ID');
  if (!(p.secret instanceof Uint8Array) || p.secret.length !== QR_SECRET_BYTES) {
    throw new RangeError(`QR payload: secret must be ${QR_SECRET_BYTES} bytes`);
  }
  const scheme = opts.allowInsecure ? 'http' : 'https';
  return `${scheme}://${server}/pair#v=1&d=${p.deviceId}&s=${b32(p.secret)}`;
}

/**
 * Parse a scanned QR payload. Raises ProtocolError: E_TOO_LARGE past {@link MAX_QR_PAYLOAD},
 * E_DECODE when it is not a pairing URL, E_UNSUPPORTED for another version, E_SCHEMA for missing,
 * repeated or unknown fields or a malformed value.
 */
export function parseQrPayload(input: unknown, opts: QrParseOptions = {}): QrPayload {
  if (typeof input !== 'string') throw new ProtocolError('E_SCHEMA', 'QR payload: not a string');
  if (input.length > MAX_QR_PAYLOAD) throw new ProtocolError('E_TOO_LARGE', 'QR payload too long');
  const m = /^(https?):\/\/([^/?#]+)\/pair#([^#]*)$/.exec(input.trim());
  if (!m) throw new ProtocolError('E_DECODE', 'QR payload: not a Hearth pairing URL');
  const [, scheme, authority, fragment] = m as unknown as [string, string, string, string];
  if (scheme === 'http' && !opts.allowInsecure)
    throw new ProtocolError('E_DECODE', 'QR payload: https required');
  const server = normalizeServer(authority, scheme === 'http');
  if (!server) throw new ProtocolError('E_DECODE', 'QR payload: malformed server address');

  const fields = new Map<string, string>();
  const parts = fragment.split('&');
  if (parts.length > 8) throw new ProtocolError('E_SCHEMA', 'QR payload: too many fields');
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ProtocolError('E_SCHEMA', 'QR payload: malformed field');
    const k = part.slice(0, eq);
    if (fields.has(k)) throw new ProtocolError('E_SCHEMA', 'QR payload: repeated field');
    fields.set(k, part.slice(eq + 1));
  }
  const v = fields.get('v');
  if (v === undefined) throw new ProtocolError('E_SCHEMA', 'QR payload: missing version');
  if (v !== '1') throw new ProtocolError('E_UNSUPPORTED', 'QR payload: unsupported version');
  for (const k of fields.keys()) {
    if (k !== 'v' && k !== 'd' && k !== 's') throw new ProtocolError('E_SCHEMA', 'QR payload: unknown field');
  }
  const deviceId = fields.get('d');
  if (deviceId === undefined || !DEVICE_ID_RE.test(deviceId))
    throw new ProtocolError('E_SCHEMA', 'QR payload: missing or malformed device ID');
  const s = fields.get('s');
  if (s === undefined || s.length !== 26)
    throw new ProtocolError('E_SCHEMA', 'QR payload: missing or malformed secret');
  let secret: Uint8Array;
  try {
    secret = fromB32(s);
  } catch {
    throw new ProtocolError('E_DECODE', 'QR payload: secret is not base32');
  }
  if (secret.length !== QR_SECRET_BYTES || b32(secret) !== s.toLowerCase()) {
    throw new ProtocolError('E_DECODE', 'QR payload: secret is not canonical base32');
  }
  return { server, deviceId, secret };
}

// ------------------------------------------------------------------ manual code

/** A manual setup code: public lookup tag and 40-bit secret. */
export interface ManualCode {
  /** 4 Crockford characters (20 bits), upper case: the lookup tag the device registers. */
  tag: string;
  /** 5-byte secret (40 bits). */
  secret: Uint8Array;
}

const TAG_RE = /^[0-9A-HJKMNP-TV-Z]{4}$/;

function charValue(c: string): number {
  const i = CROCKFORD.indexOf(c);
  if (i < 0 || c.length !== 1)
    throw new ProtocolError('E_DECODE', 'setup code: character outside Crockford base32');
  return i;
}

/** Luhn mod 32 check value over 5-bit digits (factor 2 on the rightmost digit). */
export function luhn32(values: readonly number[]): number {
  let factor = 2;
  let sum = 0;
  for (let i = values.length - 1; i >= 0; i--) {
    let addend = factor * values[i]!;
    factor = factor === 2 ? 1 : 2;
    addend = Math.floor(addend / 32) + (addend % 32);
    sum += addend;
  }
  return (32 - (sum % 32)) % 32;
}

/** 40-bit secret -> 8 five-bit digits, big-endian. */
function secretDigits(secret: Uint8Array): number[] {
  let v = 0n;
  for (const b of secret) v = (v << 8n) | BigInt(b);
  const out: number[] = [];
  for (let i = 7; i >= 0; i--) out.push(Number((v >> BigInt(i * 5)) & 31n));
  return out;
}

function digitsSecret(d: readonly number[]): Uint8Array {
  let v = 0n;
  for (const x of d) v = (v << 5n) | BigInt(x);
  const out = new Uint8Array(MANUAL_SECRET_BYTES);
  for (let i = MANUAL_SECRET_BYTES - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Draw a fresh manual code (new lookup tag and new secret). */
export function generateManualCode(env: CryptoEnv): ManualCode {
  const t = env.random(3);
  const tagValue = ((t[0]! << 12) | (t[1]! << 4) | (t[2]! >> 4)) & 0xfffff;
  t.fill(0);
  let tag = '';
  for (let i = 3; i >= 0; i--) tag += CROCKFORD[(tagValue >> (i * 5)) & 31];
  return { tag, secret: env.random(MANUAL_SECRET_BYTES) };
}

/** Display form `XXXX-XXXX-XXXXX` (tag, secret, secret + check). Raises RangeError for bad input. */
export function encodeManualCode(c: ManualCode): string {
  if (typeof c.tag !== 'string' || !TAG_RE.test(c.tag))
    throw new RangeError('manual code: tag must be 4 Crockford characters');
  if (!(c.secret instanceof Uint8Array) || c.secret.length !== MANUAL_SECRET_BYTES) {
    throw new RangeError(`manual code: secret must be ${MANUAL_SECRET_BYTES} bytes`);
  }
  const digits = [...[...c.tag].map(charValue), ...secretDigits(c.secret)];
  digits.push(luhn32(digits));
  const s = digits.map((d) => CROCKFORD[d]).join('');
  return `${s.slice(0, 4)}-${s.slice(4, 8)}-${s.slice(8)}`;
}

/** Normalize typed text: drop white space and hyphens, upper-case, O→0, I/L→1. */
function normalizeTyped(input: string): string {
  return input
    .replace(/[\s-]+/g, '')
    .toUpperCase()
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1');
}

/**
 * Parse a typed manual code. Raises ProtocolError: E_SCHEMA for a non-string or the wrong number of
 * characters, E_TOO_LARGE past {@link MAX_MANUAL_INPUT}, E_DECODE for a character outside the alphabet
 * or a check-character mismatch (a typo).
 */
export function parseManualCode(input: unknown): ManualCode {
  if (typeof input !== 'string') throw new ProtocolError('E_SCHEMA', 'setup code: not a string');
  if (input.length > MAX_MANUAL_INPUT) throw new ProtocolError('E_TOO_LARGE', 'setup code too long');
  const s = normalizeTyped(input);
  if (s.length !== MANUAL_CODE_CHARS) {
    throw new ProtocolError('E_SCHEMA', `setup code: expected ${MANUAL_CODE_CHARS} characters`);
  }
  const digits = [...s].map(charValue);
  const check = digits.pop()!;
  if (luhn32(digits) !== check)
    throw new ProtocolError('E_DECODE', 'setup code: check character mismatch (typo?)');
  return { tag: s.slice(0, 4), secret: digitsSecret(digits.slice(4)) };
}

/** Normalize a typed lookup tag (the first group of a manual code) the same way as the code. */
export function parseLookupTag(input: unknown): string {
  if (typeof input !== 'string' || input.length > 16)
    throw new ProtocolError('E_SCHEMA', 'lookup tag: not a short string');
  const s = normalizeTyped(input);
  if (!TAG_RE.test(s)) throw new ProtocolError('E_DECODE', 'lookup tag: expected 4 Crockford characters');
  return s;
}
