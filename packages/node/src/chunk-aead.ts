/**
 * The sealed-blob chunk AEAD on node:crypto (protocol `clip/stream.ts` `ChunkAead`): the same
 * AES-256-GCM, under the same key and nonces, as the WebCrypto default, so the bytes are the same
 * (the cross tests check it); without WebCrypto's cost per call (a copy of the input, a thread-pool
 * job and a promise per chunk), which at 64 KiB chunks is about a third of the time (BENCHMARKS.md T6).
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import type { ChunkAead } from '@hearth/protocol';

const TAG = 16;

/** A plain Uint8Array over the same memory (callers compare with Uint8Array, not Buffer). */
const view = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.length);

/**
 * node:crypto AES-256-GCM for the chunks. `hash: 'node'` hashes each chunk's ciphertext with
 * node:crypto too (on the calling thread); by default the digest stays WebCrypto's, which runs on the
 * thread pool next to the sealing (faster on a machine with a spare core; BENCHMARKS.md T6).
 */
export function nodeChunkAead(o: { hash?: 'node' | 'webcrypto' } = {}): ChunkAead {
  const aead: ChunkAead = {
    seal(key, nonce, plaintext, aad) {
      const c = createCipheriv('aes-256-gcm', key, nonce);
      if (aad.length > 0) c.setAAD(aad);
      const out = Buffer.allocUnsafeSlow(plaintext.length + TAG);
      const n = c.update(plaintext).copy(out, 0);
      c.final(); // GCM: no bytes
      c.getAuthTag().copy(out, n);
      return view(out);
    },
    open(key, nonce, ciphertext, aad) {
      if (ciphertext.length < TAG) throw new Error('chunk shorter than its tag');
      const d = createDecipheriv('aes-256-gcm', key, nonce);
      if (aad.length > 0) d.setAAD(aad);
      d.setAuthTag(ciphertext.subarray(ciphertext.length - TAG));
      const pt = d.update(ciphertext.subarray(0, ciphertext.length - TAG));
      d.final(); // throws when the tag does not match
      return view(pt);
    },
  };
  if (o.hash === 'node') aead.sha256 = (data) => view(createHash('sha256').update(data).digest());
  return aead;
}
