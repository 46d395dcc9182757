/** node:crypto implementation of the codec's StunCrypto (native speed for the server). */
import { createHash, createHmac } from 'node:crypto';
import type { StunCrypto } from '../codec/hashes.js';

/** StunCrypto backed by OpenSSL via node:crypto. */
export const nodeStunCrypto: StunCrypto = {
  hmacSha1(key, parts) {
    const h = createHmac('sha1', key);
    for (const p of parts) h.update(p);
    return h.digest();
  },
  hmacSha256(key, parts) {
    const h = createHmac('sha256', key);
    for (const p of parts) h.update(p);
    return h.digest();
  },
  md5(data) {
    return createHash('md5').update(data).digest();
  },
};
