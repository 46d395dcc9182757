/**
 * T6: clip encryption throughput, streamed, on the device's path. Seals N bytes in 64 KiB chunks
 * (the same buffers and nonces in every case) and prints MB/s side by side, with the ratio to raw:
 *
 * - raw node:crypto AES-256-GCM: `createCipheriv` per chunk, `update`, `final`, `getAuthTag`;
 * - the WebCrypto sealer: `BlobSealer` (protocol) as it is in a browser, WebCrypto AES-GCM and digest;
 * - the node sealer: `BlobSealer` with `nodeChunkAead()` (node:crypto AES-GCM; the per-chunk
 *   SHA-256 of the signed digest on node:crypto, same thread);
 * - the node sealer with `nodeChunkAead({hash: 'worker'})` (SHA-256 on a worker thread, in parallel);
 * - the node sealer with `nodeChunkAead({hash: 'webcrypto'})` (SHA-256 on WebCrypto);
 * - for reference, raw node:crypto AES-256-GCM and SHA-256 of each ciphertext on one thread: the
 *   floor of any one-thread implementation of this format (the digest is part of it).
 *
 * Each sealer case is the whole blob: create, every chunk (`sealChunkRaw`, `--window` in flight),
 * then `finish` (metadata box, HPKE wrap, signature). The cases alternate round by round. Besides
 * wall-clock MB/s, each case prints MB per CPU-second of the whole process (all threads: the
 * thread pool and the hash worker count), which a busy machine disturbs less.
 *
 *   node --conditions=source --import tsx packages/node/bench/clip-seal.ts            (128 MiB)
 *   node --conditions=source --import tsx packages/node/bench/clip-seal.ts --mib 1024 (the T6 figure)
 *   … --rounds 5 --window 8 --chunk 65536
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import {
  BlobSealer,
  type ChunkAead,
  chunkNonce,
  derivePayloadKey,
  signReaderKey,
  WebCryptoSigner,
  x25519Generate,
} from '@hearth/protocol';
import { nodeChunkAead } from '../src/chunk-aead.js';

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '128' },
    rounds: { type: 'string', default: '3' },
    window: { type: 'string', default: '8' },
    chunk: { type: 'string', default: String(64 * 1024) },
  },
});
const TOTAL = Math.round(Number(values.mib) * 2 ** 20);
const ROUNDS = Number(values.rounds);
const WINDOW = Number(values.window);
const CHUNK = Number(values.chunk);
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

/** Raw node:crypto: one cipher per chunk (its own nonce), ciphertext and tag; nothing else. */
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

/** Raw AES-256-GCM and the SHA-256 of each ciphertext, one thread, nothing else. */
async function rawWithHash(): Promise<number> {
  const key = await derivePayloadKey(randomBytes(32), randomBytes(16));
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < CHUNKS; i++) {
    const c = createCipheriv('aes-256-gcm', key, chunkNonce(i, i === CHUNKS - 1));
    const a = c.update(chunkAt(i));
    const b = c.final();
    const tag = c.getAuthTag();
    const h = createHash('sha256');
    h.update(a);
    h.update(tag);
    sink += a.length + b.length + tag.length + h.digest().length - 32;
  }
  const ms = performance.now() - t0;
  if (sink !== TOTAL + CHUNKS * 16) throw new Error('raw+hash: wrong output size');
  return ms;
}

/** A whole blob through `BlobSealer`, `WINDOW` chunks in flight. */
async function sealer(aead?: ChunkAead): Promise<number> {
  const t0 = performance.now();
  const s = await BlobSealer.create({
    device,
    kind: 'clip',
    camera: 'bench',
    t0: Date.now(),
    recipients: [rk],
    maxChunkBytes: CHUNK,
    ...(aead ? { aead } : {}),
  });
  const inflight: Promise<Uint8Array>[] = [];
  let sink = 0;
  for (let i = 0; i < CHUNKS; i++) {
    inflight.push(s.sealChunkRaw(chunkAt(i), i === CHUNKS - 1));
    if (inflight.length >= WINDOW) sink += (await inflight.shift()!).length;
  }
  for (const p of inflight) sink += (await p).length;
  await s.finish({ t1: Date.now() });
  const ms = performance.now() - t0;
  if (sink !== TOTAL + CHUNKS * 16) throw new Error('sealer: wrong output size');
  return ms;
}

const cases: [string, () => Promise<number>][] = [
  ['raw node:crypto AES-256-GCM', raw],
  ['WebCrypto sealer (protocol default)', () => sealer()],
  ['node sealer (nodeChunkAead(), digest same thread)', () => sealer(nodeChunkAead())],
  ['node sealer (digest on a worker thread)', () => sealer(nodeChunkAead({ hash: 'worker' }))],
  ['node sealer (WebCrypto digest)', () => sealer(nodeChunkAead({ hash: 'webcrypto' }))],
  ['reference: raw AES-256-GCM + SHA-256, one thread', rawWithHash],
];

const mbps = (ms: number) => TOTAL / 1e6 / (ms / 1000);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(
  `T6: ${(TOTAL / 2 ** 20).toFixed(0)} MiB in ${CHUNKS} chunks of ${CHUNK / 1024} KiB, ${ROUNDS} rounds, window ${WINDOW}; ` +
    `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
);
for (const [, f] of cases) await f(); // warm up (JIT, WebCrypto, thread pool)
const r = cases.map(() => [] as number[]);
const cpu = cases.map(() => [] as number[]);
for (let round = 0; round < ROUNDS; round++) {
  const line: string[] = [];
  for (let c = 0; c < cases.length; c++) {
    const before = process.cpuUsage();
    r[c]!.push(mbps(await cases[c]![1]()));
    const used = process.cpuUsage(before);
    cpu[c]!.push(mbps((used.user + used.system) / 1000));
    line.push(`${cases[c]![0]} ${r[c]!.at(-1)!.toFixed(0)} (${cpu[c]!.at(-1)!.toFixed(0)} per CPU-s)`);
  }
  console.log(`round ${round + 1} (MB/s): ${line.join(', ')}`);
}
const rawMedian = median(r[0]!);
const rawCpu = median(cpu[0]!);
console.log('median:');
for (let c = 0; c < cases.length; c++) {
  const m = median(r[c]!);
  const mc = median(cpu[c]!);
  console.log(
    `  ${cases[c]![0].padEnd(50)} ${m.toFixed(0).padStart(5)} MB/s ${(m / rawMedian).toFixed(2)}× raw | ${mc.toFixed(0).padStart(5)} MB/CPU-s ${(mc / rawCpu).toFixed(2)}× raw | rounds ${r[c]!.map((x) => x.toFixed(0)).join(', ')}`,
  );
}
console.log(
  `load after: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
