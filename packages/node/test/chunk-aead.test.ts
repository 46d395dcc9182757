/**
 * The node:crypto chunk AEAD (`nodeChunkAead`) against the protocol's WebCrypto path: the same
 * randomness gives the same bytes, each side opens what the other sealed, and tampering is refused
 * the same way through both (E_CLIP_CHUNK, E_CLIP_DIGEST, E_CLIP_TRUNCATED).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  BlobSealer,
  type ChunkAead,
  type ClipReader,
  concat,
  decodeClipHeader,
  fixedEnv,
  fromB64u,
  type HearthError,
  openBlob,
  openBlobHeader,
  type ReaderKey,
  StreamOpener,
  StreamSealer,
  sealBlob,
  signReaderKey,
  u32be,
  unwrapContentKey,
  VerificationError,
  verifyClipHeader,
  WebCryptoSigner,
  x25519KeyPairFromScalar,
} from '@hearth/protocol';
import { nodeChunkAead } from '../src/index.js';

let device: WebCryptoSigner;
let alice: ClipReader & { rk: ReaderKey };
let bob: ClipReader & { rk: ReaderKey };

before(async () => {
  device = await WebCryptoSigner.fromSeed(new Uint8Array(32).fill(1));
  for (const [seed, scalar] of [
    [2, 0x11],
    [3, 0x22],
  ] as const) {
    const id = await WebCryptoSigner.fromSeed(new Uint8Array(32).fill(seed));
    const x25519 = await x25519KeyPairFromScalar(new Uint8Array(32).fill(scalar));
    const rk = await signReaderKey(id, x25519.publicKey);
    const r = { userKey: rk.userKey, x25519, rk };
    if (seed === 2) alice = r;
    else bob = r;
  }
});

const bytesOf = (n: number, seed = 1) =>
  Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed * 7) & 0xff);
const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
const fails = (code: string) => (e: unknown) => {
  assert.ok(e instanceof VerificationError, `expected ${code}, got ${String(e)}`);
  assert.equal((e as HearthError).code, code, String(e));
  return true;
};

const IMPLS: [string, ChunkAead | undefined][] = [
  ['WebCrypto', undefined],
  ['node (digest on the same thread)', nodeChunkAead()],
  ['node (digest on a worker)', nodeChunkAead({ hash: 'worker' })],
  ['node (WebCrypto digest)', nodeChunkAead({ hash: 'webcrypto' })],
];

const seal = (plaintext: Uint8Array, aead: ChunkAead | undefined, maxChunkBytes?: number, seed = 7) =>
  sealBlob({
    device,
    kind: 'clip',
    camera: 'door',
    t0: 1_700_000_000_000,
    t1: 1_700_000_009_000,
    recipients: [alice.rk, bob.rk],
    plaintext,
    env: fixedEnv(seed),
    ...(maxChunkBytes ? { maxChunkBytes } : {}),
    ...(aead ? { aead } : {}),
  });
const expect = (r: ClipReader, aead?: ChunkAead) => ({
  pinnedDeviceKey: device.publicKey,
  camera: 'door',
  reader: r,
  ...(aead ? { aead } : {}),
});

describe('nodeChunkAead: byte for byte the WebCrypto sealer', () => {
  for (const [n, cs] of [
    [0, undefined],
    [1, undefined],
    [100, 64],
    [65_536, undefined],
    [3 * 65_536 + 5, undefined],
    [300_000, 1024 * 1024],
  ] as const) {
    it(`${n} bytes${cs ? `, ${cs}-byte chunks` : ''}: the same env randomness gives identical blobs`, async () => {
      const pt = bytesOf(n);
      const blobs = await Promise.all(IMPLS.map(([, a]) => seal(pt, a, cs)));
      for (let i = 1; i < blobs.length; i++)
        assert.equal(hex(blobs[i]!.blob), hex(blobs[0]!.blob), IMPLS[i]![0]);
    });
  }

  it('control: a broken AEAD (the nonce ignored) gives other bytes, and the WebCrypto opener refuses them', async () => {
    const good = nodeChunkAead();
    const broken: ChunkAead = {
      seal: (key, _nonce, pt, aad) => good.seal(key, new Uint8Array(12), pt, aad),
      open: (key, _nonce, ct, aad) => good.open(key, new Uint8Array(12), ct, aad),
    };
    const pt = bytesOf(3 * 65_536 + 5);
    const [a, b] = await Promise.all([seal(pt, undefined), seal(pt, broken)]);
    assert.notEqual(hex(b.blob), hex(a.blob));
    await assert.rejects(openBlob(b.blob, expect(alice)), fails('E_CLIP_CHUNK'));
  });

  it('overlapping sealChunk calls keep the order and the bytes', async () => {
    const chunks = [bytesOf(1000, 1), bytesOf(70, 2), bytesOf(1000, 3), bytesOf(3, 4)];
    const out: string[] = [];
    for (const [, aead] of IMPLS) {
      const s = await BlobSealer.create({
        device,
        kind: 'snapshot',
        camera: 'door',
        t0: 1_700_000_000_000,
        recipients: [alice.rk],
        maxChunkBytes: 1000,
        env: fixedEnv(11),
        ...(aead ? { aead } : {}),
      });
      const frames = await Promise.all(chunks.map((c, i) => s.sealChunk(c, i === chunks.length - 1)));
      const { bytes } = await s.finish({ t1: 1_700_000_000_500 });
      out.push(hex(concat(bytes, ...frames)));
    }
    for (let i = 1; i < out.length; i++) assert.equal(out[i], out[0], IMPLS[i]![0]);
  });
});

describe('nodeChunkAead: each side opens what the other sealed', () => {
  it('node-sealed opens with the protocol (WebCrypto) opener, WebCrypto-sealed with the node opener', async () => {
    const pt = bytesOf(200_000);
    for (const [sName, sAead] of IMPLS)
      for (const [oName, oAead] of IMPLS) {
        const { blob } = await seal(pt, sAead, undefined, 3);
        const got = await openBlob(blob, expect(bob, oAead));
        assert.equal(hex(got.plaintext), hex(pt), `sealed ${sName}, opened ${oName}`);
        assert.deepEqual(got.meta, { cam: 'door', t0: 1_700_000_000_000, t1: 1_700_000_009_000 });
      }
  });

  it('the node opener returns plain Uint8Arrays (not Buffers)', async () => {
    const { blob } = await seal(bytesOf(10), undefined);
    const got = await openBlob(blob, expect(alice, nodeChunkAead()));
    assert.equal(Object.getPrototypeOf(got.plaintext), Uint8Array.prototype);
    assert.deepEqual(got.plaintext, bytesOf(10));
  });
});

describe('nodeChunkAead: tampering is refused through both', () => {
  const chunks = () => [bytesOf(1000, 1), bytesOf(1000, 2), bytesOf(1000, 3), bytesOf(500, 4)];
  async function sealFrames(aead?: ChunkAead) {
    const s = await BlobSealer.create({
      device,
      kind: 'clip',
      camera: 'door',
      t0: 1_700_000_000_000,
      recipients: [alice.rk, bob.rk],
      maxChunkBytes: 1000,
      ...(aead ? { aead } : {}),
    });
    const frames: Uint8Array[] = [];
    const cs = chunks();
    for (let i = 0; i < cs.length; i++) frames.push(await s.sealChunk(cs[i]!, i === cs.length - 1));
    return { headerBytes: (await s.finish({ t1: 1_700_000_001_000 })).bytes, frames };
  }
  async function openFrames(headerBytes: Uint8Array, frames: Uint8Array[], aead?: ChunkAead) {
    const { opener } = await openBlobHeader(headerBytes, expect(alice, aead));
    const out: Uint8Array[] = [];
    for (const f of frames) out.push(...(await opener.push(f)));
    opener.finish();
    return concat(...out);
  }

  for (const [sName, sAead] of IMPLS)
    for (const [oName, oAead] of IMPLS)
      it(`sealed ${sName}, opened ${oName}: flipped bit, reordered, truncated, forged by a co-recipient`, async () => {
        const clip = await sealFrames(sAead);
        assert.equal(hex(await openFrames(clip.headerBytes, clip.frames, oAead)), hex(concat(...chunks())));
        const flipped = clip.frames.slice();
        const f1 = flipped[1]!.slice();
        f1[50]! ^= 1;
        flipped[1] = f1;
        await assert.rejects(openFrames(clip.headerBytes, flipped, oAead), fails('E_CLIP_CHUNK'));
        const f = clip.frames;
        await assert.rejects(
          openFrames(clip.headerBytes, [f[1]!, f[0]!, f[2]!, f[3]!], oAead),
          fails('E_CLIP_CHUNK'),
        );
        await assert.rejects(openFrames(clip.headerBytes, f.slice(0, 3), oAead), fails('E_CLIP_TRUNCATED'));
        // Bob knows the content key and seals a different chunk 1 (through either implementation).
        const { header } = decodeClipHeader(clip.headerBytes);
        const key = await unwrapContentKey(await verifyClipHeader(header, expect(bob)), bob);
        const forger = await StreamSealer.create(key, fromB64u(header.salt), header.cs, sAead);
        const forged = chunks();
        forged[1] = bytesOf(1000, 99);
        const ff: Uint8Array[] = [];
        for (let i = 0; i < 4; i++)
          ff.push(concat(u32be(forged[i]!.length + 16), await forger.seal(forged[i]!, i === 3)));
        await assert.rejects(openFrames(clip.headerBytes, ff, oAead), fails('E_CLIP_DIGEST'));
      });

  it('the worker digest survives many chunks in flight, and hashes copies of non-shared input', async () => {
    const aead = nodeChunkAead({ hash: 'worker' });
    const data = Array.from({ length: 300 }, (_, i) => bytesOf(100 + i, i));
    const got = await Promise.all(data.map((d) => aead.sha256!(d)));
    const { createHash } = await import('node:crypto');
    for (let i = 0; i < data.length; i++)
      assert.equal(hex(got[i]!), createHash('sha256').update(data[i]!).digest('hex'));
  });

  it('the stream layer alone: a chunk under another key, or too short, is E_CLIP_CHUNK with node:crypto', async () => {
    const aead = nodeChunkAead();
    const s = await StreamSealer.create(new Uint8Array(32).fill(9), new Uint8Array(16).fill(8), 100, aead);
    const ct = await s.seal(bytesOf(100), true);
    const other = await StreamOpener.create(
      new Uint8Array(32).fill(10),
      new Uint8Array(16).fill(8),
      100,
      1,
      aead,
    );
    await assert.rejects(other.open(ct), fails('E_CLIP_CHUNK'));
    const same = await StreamOpener.create(
      new Uint8Array(32).fill(9),
      new Uint8Array(16).fill(8),
      100,
      1,
      aead,
    );
    await assert.rejects(same.open(ct.subarray(0, 15)), fails('E_CLIP_CHUNK'));
    assert.equal(hex(await same.open(ct)), hex(bytesOf(100)));
  });
});
