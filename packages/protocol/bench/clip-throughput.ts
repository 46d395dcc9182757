/**
 * T6: clip encryption throughput. Seals N bytes in 64 KiB chunks through the sealed-blob code
 * (`src/clip/`: WebCrypto AES-256-GCM, the per-chunk SHA-256 of the signed digest, the frame
 * counter) and through raw node:crypto AES-256-GCM on the same buffers with the same nonces, and
 * prints MB/s for both and the ratio. The cases alternate round by round in one run.
 *
 *   node --conditions=source --import tsx packages/protocol/bench/clip-throughput.ts
 *   HEARTH_T6_BYTES=1073741824 …   (1 GiB, the T6 figure; default 128 MiB)
 *   HEARTH_T6_ROUNDS=3 HEARTH_T6_WINDOW=8 …   (rounds; chunks in flight for the pipelined case)
 *   HEARTH_T6_CHUNK=1048576 …   (chunk size, default 64 KiB, at most 1 MiB)
 *
 * Not part of the protocol sources (it imports node:crypto).
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { BlobSealer, chunkNonce, derivePayloadKey, signReaderKey } from '../src/clip/index.js';
import { WebCryptoSigner, x25519Generate } from '../src/crypto/primitives.js';

const TOTAL = Number(process.env.HEARTH_T6_BYTES ?? 128 * 1024 * 1024);
const ROUNDS = Number(process.env.HEARTH_T6_ROUNDS ?? 3);
const WINDOW = Number(process.env.HEARTH_T6_WINDOW ?? 8);
const CHUNK = Number(process.env.HEARTH_T6_CHUNK ?? 64 * 1024);
const CHUNKS = Math.ceil(TOTAL / CHUNK);

// A 16 MiB pool of random bytes; chunk i is the i-th slice of it (cycled), in every case.
const POOL = randomBytes(16 * 1024 * 1024);
const chunkAt = (i: number) => {
  const o = (i * CHUNK) % POOL.length;
  return new Uint8Array(POOL.buffer, POOL.byteOffset + o, Math.min(CHUNK, TOTAL - i * CHUNK));
};

const device = await WebCryptoSigner.generate();
const viewer = await WebCryptoSigner.generate();
const rk = await signReaderKey(viewer, (await x25519Generate()).publicKey);

/** Raw node:crypto: one cipher per chunk (a fresh nonce each), ciphertext ‖ tag. */
async function raw(): Promise<number> {
  const key = await derivePayloadKey(randomBytes(32), randomBytes(16));
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < CHUNKS; i++) {
    const c = createCipheriv('aes-256-gcm', key, chunkNonce(i, i === CHUNKS - 1));
    const a = c.update(chunkAt(i));
    const b = c.final();
    const tag = c.getAuthTag();
    sink += a.length + b.length + tag.length;
  }
  const ms = performance.now() - t0;
  if (sink !== TOTAL + CHUNKS * 16) throw new Error('raw: wrong output size');
  return ms;
}

/** WebCrypto AES-256-GCM alone (no digest, no framing), `window` calls in flight: the floor of our cost. */
async function webcrypto(window: number): Promise<number> {
  const raw = await derivePayloadKey(randomBytes(32), randomBytes(16));
  const key = await globalThis.crypto.subtle.importKey('raw', new Uint8Array(raw), 'AES-GCM', false, [
    'encrypt',
  ]);
  const t0 = performance.now();
  const inflight: Promise<ArrayBuffer>[] = [];
  let sink = 0;
  for (let i = 0; i < CHUNKS; i++) {
    inflight.push(
      globalThis.crypto.subtle.encrypt(
        { name: 'AES-GCM', iv: chunkNonce(i, i === CHUNKS - 1) },
        key,
        chunkAt(i),
      ),
    );
    if (inflight.length >= window) sink += (await inflight.shift()!).byteLength;
  }
  for (const p of inflight) sink += (await p).byteLength;
  const ms = performance.now() - t0;
  if (sink !== TOTAL + CHUNKS * 16) throw new Error('webcrypto: wrong output size');
  return ms;
}

/** Through the sealed-blob code: `window` chunks in flight (1 = await each chunk before the next). */
async function hearth(window: number): Promise<number> {
  const t0 = performance.now();
  const s = await BlobSealer.create({
    device,
    kind: 'clip',
    camera: 'bench',
    t0: Date.now(),
    recipients: [rk],
    maxChunkBytes: CHUNK,
  });
  const inflight: Promise<Uint8Array>[] = [];
  let sink = 0;
  for (let i = 0; i < CHUNKS; i++) {
    inflight.push(s.sealChunkRaw(chunkAt(i), i === CHUNKS - 1));
    if (inflight.length >= window) sink += (await inflight.shift()!).length;
  }
  for (const p of inflight) sink += (await p).length;
  await s.finish({ t1: Date.now() });
  const ms = performance.now() - t0;
  if (sink !== TOTAL + CHUNKS * 16) throw new Error('hearth: wrong output size');
  return ms;
}

const mbps = (ms: number) => TOTAL / 1e6 / (ms / 1000);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(
  `T6: ${(TOTAL / 2 ** 20).toFixed(0)} MiB in ${CHUNKS} chunks of ${CHUNK / 1024} KiB, ${ROUNDS} rounds, window ${WINDOW}; Node ${process.version}`,
);
const r: Record<string, number[]> = { raw: [], hearth: [], hearthSeq: [], webcrypto: [] };
await hearth(WINDOW); // warm up WebCrypto and the JIT
await raw();
for (let round = 0; round < ROUNDS; round++) {
  r.raw!.push(mbps(await raw()));
  r.hearth!.push(mbps(await hearth(WINDOW)));
  r.hearthSeq!.push(mbps(await hearth(1)));
  r.webcrypto!.push(mbps(await webcrypto(WINDOW)));
  console.log(
    `round ${round + 1}: raw node:crypto ${r.raw!.at(-1)!.toFixed(0)} MB/s, hearth (window ${WINDOW}) ${r.hearth!.at(-1)!.toFixed(0)} MB/s, hearth (one at a time) ${r.hearthSeq!.at(-1)!.toFixed(0)} MB/s, bare WebCrypto AES-GCM (window ${WINDOW}) ${r.webcrypto!.at(-1)!.toFixed(0)} MB/s`,
  );
}
const mr = median(r.raw!);
const mh = median(r.hearth!);
const ms = median(r.hearthSeq!);
const mw = median(r.webcrypto!);
console.log(`median: bare WebCrypto AES-GCM ${mw.toFixed(0)} MB/s (ratio ${(mw / mr).toFixed(2)}×)`);
console.log(
  `median: raw ${mr.toFixed(0)} MB/s; hearth window ${WINDOW}: ${mh.toFixed(0)} MB/s (ratio ${(mh / mr).toFixed(2)}×); hearth one at a time: ${ms.toFixed(0)} MB/s (ratio ${(ms / mr).toFixed(2)}×)`,
);
