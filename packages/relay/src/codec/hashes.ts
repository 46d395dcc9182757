/**
 * Hash functions the codec needs, injected so the codec stays pure: the Node server passes
 * node:crypto implementations, browsers and tests can use {@link nobleStunCrypto}.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { md5, sha1 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';

/** Minimal crypto interface for MESSAGE-INTEGRITY and long-term keys. */
export interface StunCrypto {
  /** HMAC-SHA1 over the concatenation of `parts`. */
  hmacSha1(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array;
  /** HMAC-SHA256 over the concatenation of `parts`. */
  hmacSha256(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array;
  /** MD5 digest (for the RFC 8489 §9.2.2 long-term key). */
  md5(data: Uint8Array): Uint8Array;
}

/** Pure-JS implementation (audited @noble/hashes). Fine for control traffic; never on the data path. */
export const nobleStunCrypto: StunCrypto = {
  hmacSha1(key, parts) {
    const h = hmac.create(sha1, key);
    for (const p of parts) h.update(p);
    return h.digest();
  },
  hmacSha256(key, parts) {
    const h = hmac.create(sha256, key);
    for (const p of parts) h.update(p);
    return h.digest();
  },
  md5(data) {
    return md5(data);
  },
};

/** Constant-time equality of two byte arrays. */
export function timingSafeEqualBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
