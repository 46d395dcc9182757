/**
 * Canonical JSON: the byte encoding that every signed message uses.
 *
 * It is the subset of RFC 8785 (JCS) that Hearth needs: objects with keys sorted by UTF-16 code
 * units, arrays, strings, booleans, null, and safe integers only (no floats, so number formatting
 * can never differ between implementations). `JSON.stringify` of a string is exactly JCS's string
 * serialisation, so the output is byte-identical to JCS for this subset.
 *
 * Parsing goes through {@link parseJson}, which enforces a size limit before anything else.
 */
import { fromUtf8, utf8 } from './bytes.js';
import { InternalError, ProtocolError } from './errors.js';

/** A value the canonical encoding accepts. */
export type Canonical = string | number | boolean | null | Canonical[] | { [k: string]: Canonical };

/** Serialise `value` canonically. Raises InternalError for values outside the subset (our bug). */
export function canonicalize(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value))
        throw new InternalError('E_INTERNAL', 'canonical JSON allows only safe integers');
      return String(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(canonicalize).join(',')}]`;
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null)
        throw new InternalError('E_INTERNAL', 'canonical JSON allows only plain objects');
      const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalize(v)}`).join(',')}}`;
    }
    default:
      throw new InternalError('E_INTERNAL', `canonical JSON cannot encode ${typeof value}`);
  }
}

/** Canonical bytes of `value`. */
export function canonicalBytes(value: unknown): Uint8Array {
  return utf8(canonicalize(value));
}

/**
 * Deepest nesting of arrays and objects accepted in any JSON the protocol parses. Hearth's own
 * messages nest fewer than 10 levels; the limit keeps a hostile payload from reaching code that
 * recurses over it (`JSON.stringify` of a 9 000-level `send` overflowed the server's stack and
 * closed the connection with 1011, review R5a).
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Refuse JSON text nested deeper than `max` (E_TOO_LARGE), before it is parsed. One pass over the
 * text that skips string contents (brackets in strings do not count); it does not validate the
 * JSON, which the parser then does.
 */
export function checkJsonDepth(text: string, max = MAX_JSON_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped unit
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) throw new ProtocolError('E_TOO_LARGE', `nested deeper than ${max} levels`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

/**
 * Parse JSON text or UTF-8 bytes with a size limit and a nesting limit ({@link MAX_JSON_DEPTH}). Raises ProtocolError E_TOO_LARGE or E_DECODE,
 * never anything untyped.
 */
export function parseJson(input: string | Uint8Array, maxBytes: number): unknown {
  let text: string;
  if (typeof input === 'string') {
    // A JS string of n UTF-16 units is at least n bytes of UTF-8; refuse early, then measure.
    if (input.length > maxBytes)
      throw new ProtocolError('E_TOO_LARGE', `message larger than ${maxBytes} bytes`);
    text = input;
  } else {
    if (!(input instanceof Uint8Array)) throw new ProtocolError('E_DECODE', 'expected text or bytes');
    if (input.length > maxBytes)
      throw new ProtocolError('E_TOO_LARGE', `message larger than ${maxBytes} bytes`);
    text = fromUtf8(input);
  }
  checkJsonDepth(text);
  try {
    return JSON.parse(text);
  } catch {
    throw new ProtocolError('E_DECODE', 'not valid JSON');
  }
}
