/**
 * The sealed-blob chunk AEAD on node:crypto (protocol `clip/stream.ts` `ChunkAead`): the same
 * AES-256-GCM, under the same key and nonces, as the WebCrypto default, so the bytes are the same
 * (the cross tests check it), without WebCrypto's cost per call (a copy of the input, a thread-pool
 * job and a promise per chunk).
 *
 * The per-chunk SHA-256 of the signed digest costs about as much as the AES-GCM itself. By default
 * it runs on the calling thread (node:crypto: the least CPU per byte). `hash: 'worker'` moves it to
 * a worker thread (one per process, shared, not keeping the process alive; the sealer's output then
 * lives in SharedArrayBuffers, so the worker reads the ciphertext without a copy while the calling
 * thread seals the next chunk): more throughput when a core is free, more CPU in all (BENCHMARKS.md T6).
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { ChunkAead } from '@hearth/protocol';

const TAG = 16;

/** A plain Uint8Array over the same memory (callers compare with Uint8Array, not Buffer). */
const view = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.length);

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
parentPort.on('message', (m) => {
  let d;
  try {
    d = createHash('sha256').update(new Uint8Array(m.b, m.o, m.n)).digest();
  } catch (e) {
    parentPort.postMessage({ i: m.i, e: String(e) });
    return;
  }
  parentPort.postMessage({ i: m.i, d });
});
`;

/** SHA-256 on a worker thread; referenced only while a hash is pending. */
class HashWorker {
  private static current: HashWorker | undefined;
  private readonly worker: Worker;
  private readonly pending = new Map<
    number,
    { resolve: (d: Uint8Array) => void; reject: (e: Error) => void }
  >();
  private next = 0;
  private dead = false;

  static shared(): HashWorker {
    if (!HashWorker.current || HashWorker.current.dead) HashWorker.current = new HashWorker();
    return HashWorker.current;
  }

  private constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (m: { i: number; d?: Uint8Array; e?: string }) => {
      const p = this.pending.get(m.i);
      if (!p) return;
      this.pending.delete(m.i);
      if (this.pending.size === 0) this.worker.unref();
      if (m.d) p.resolve(new Uint8Array(m.d.buffer, m.d.byteOffset, m.d.length));
      else p.reject(new Error(`hash worker: ${m.e}`));
    });
    const fail = (e: Error) => {
      this.dead = true;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`hash worker exited (${code})`)));
  }

  hash(data: Uint8Array): Promise<Uint8Array> {
    // The worker reads shared memory in place; anything else is copied into it first.
    let shared = data;
    if (!(data.buffer instanceof SharedArrayBuffer)) {
      shared = new Uint8Array(new SharedArrayBuffer(data.length));
      shared.set(data);
    }
    return new Promise((resolve, reject) => {
      const i = this.next++;
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(i, { resolve, reject });
      this.worker.postMessage({ i, b: shared.buffer, o: shared.byteOffset, n: shared.length });
    });
  }
}

/** Where each chunk's SHA-256 (for the signed digest) is computed. */
export type ChunkHashMode = 'worker' | 'node' | 'webcrypto';

/**
 * node:crypto AES-256-GCM for the chunks. `hash`: where the per-chunk SHA-256 runs: `'node'`
 * (default; node:crypto on the calling thread), `'worker'` (node:crypto on a shared worker thread,
 * in parallel with the sealing), `'webcrypto'` (the protocol's default, WebCrypto's digest on the
 * thread pool). The bytes are the same in every mode.
 */
export function nodeChunkAead(o: { hash?: ChunkHashMode } = {}): ChunkAead {
  const mode = o.hash ?? 'node';
  const alloc = (n: number): Uint8Array =>
    mode === 'worker' ? new Uint8Array(new SharedArrayBuffer(n)) : view(Buffer.allocUnsafeSlow(n));
  const aead: ChunkAead = {
    seal(key, nonce, plaintext, aad) {
      const c = createCipheriv('aes-256-gcm', key, nonce);
      if (aad.length > 0) c.setAAD(aad);
      const out = alloc(plaintext.length + TAG);
      const ct = c.update(plaintext);
      out.set(ct, 0);
      c.final(); // GCM: no bytes
      out.set(c.getAuthTag(), ct.length);
      return out;
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
  if (mode === 'node') aead.sha256 = (data) => view(createHash('sha256').update(data).digest());
  else if (mode === 'worker') aead.sha256 = (data) => HashWorker.shared().hash(data);
  return aead;
}
