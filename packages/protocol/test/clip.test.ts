/**
 * Sealed blobs (`src/clip/`): clips, snapshots and thumbnails sealed on the device with a STREAM of
 * AES-256-GCM chunks, a header signed by the device, and the content key wrapped with HPKE to each
 * reader key. Round trips, every tamper case of issue 9, wrong signer, not a recipient, limits.
 * (Fuzzing and the fixed test vectors are in clip-fuzz.test.ts and clip-vectors.test.ts.)
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { b64u, concat, fromB64u, u32be } from '../src/bytes.js';
import {
  BlobOpener,
  BlobSealer,
  CLIP_MAGIC,
  type ClipHeader,
  type ClipReader,
  clipMetaAad,
  clipWrapAad,
  clipWrapInfo,
  decodeClipHeader,
  decodeReaderKey,
  encodeClipHeader,
  encodeReaderKey,
  MAX_CLIP_HEADER_BYTES,
  MAX_CLIP_RECIPIENTS,
  openBlob,
  openBlobHeader,
  openClipMeta,
  type ReaderKey,
  StreamOpener,
  StreamSealer,
  sealBlob,
  sealClipMeta,
  signClipHeader,
  signReaderKey,
  unwrapContentKey,
  verifyClipHeader,
  verifyReaderKey,
  wrapContentKey,
} from '../src/clip/index.js';
import { fixedEnv } from '../src/crypto/env.js';
import { WebCryptoSigner, x25519Generate } from '../src/crypto/primitives.js';
import {
  AccessError,
  type ErrorCode,
  type HearthError,
  ProtocolError,
  VerificationError,
} from '../src/errors.js';
import { deviceIdFromKey, encodeId } from '../src/ids.js';
import { x25519KeyPairFromScalar } from '../src/still.js';
import { keys } from './fixtures.js';

type K = Awaited<ReturnType<typeof keys>>;
let k: K;
let alice: ClipReader & { rk: ReaderKey };
let bob: ClipReader & { rk: ReaderKey };
let carol: ClipReader & { rk: ReaderKey };

async function reader(identity: WebCryptoSigner, scalarByte?: number) {
  const x25519 =
    scalarByte === undefined
      ? await x25519Generate()
      : await x25519KeyPairFromScalar(new Uint8Array(32).fill(scalarByte));
  const rk = await signReaderKey(identity, x25519.publicKey);
  return { userKey: rk.userKey, x25519, rk };
}

before(async () => {
  k = await keys();
  alice = await reader(k.owner, 0x11);
  bob = await reader(k.member, 0x22);
  carol = await reader(k.stranger);
});

const fails =
  (code: ErrorCode, cls: new (...a: never[]) => HearthError = VerificationError) =>
  (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name} ${code}, got ${String(e)}`);
    assert.equal((e as HearthError).code, code, String(e));
    return true;
  };

const bytesOf = (n: number, seed = 1) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 7 + (i >> 8)) & 0xff;
  return b;
};

const base = () => ({
  device: k.device,
  kind: 'clip' as const,
  camera: 'door',
  t0: 1_700_000_000_000,
  recipients: [alice.rk, bob.rk],
});
const expect = () => ({ pinnedDeviceKey: k.device.publicKey, deviceId: k.deviceId, camera: 'door' });

/** A blob sealed chunk by chunk: its encoded header and its frames. */
async function sealFrames(chunks: Uint8Array[], o: { maxChunkBytes?: number; camera?: string } = {}) {
  const sealer = await BlobSealer.create({ ...base(), ...o });
  const frames: Uint8Array[] = [];
  for (let i = 0; i < chunks.length; i++)
    frames.push(await sealer.sealChunk(chunks[i]!, i === chunks.length - 1));
  const { header, bytes } = await sealer.finish({ t1: 1_700_000_030_000 });
  return { header, headerBytes: bytes, frames };
}

/** The device's wraps of `key` to alice and bob for an (edited) header core. */
async function rewrap(core: Omit<ClipHeader, 'r' | 'sig'>, key: Uint8Array) {
  const r = [];
  for (const rd of [alice, bob].sort((x, y) => (x.userKey < y.userKey ? -1 : 1))) {
    const x = b64u(rd.x25519.publicKey);
    const { enc, wrapped } = await wrapContentKey(
      key,
      rd.x25519.publicKey,
      clipWrapInfo(core),
      clipWrapAad(rd.userKey, x),
      new Uint8Array(32).fill(7),
    );
    r.push({ k: rd.userKey, x, s: b64u(rd.rk.signature), e: b64u(enc), w: b64u(wrapped) });
  }
  return r;
}

/** Open header ‖ frames through the streaming opener; the plaintext, or the typed error. */
async function openFrames(headerBytes: Uint8Array, frames: Uint8Array[], r: ClipReader = alice) {
  const { opener } = await openBlobHeader(headerBytes, { ...expect(), reader: r });
  const out: Uint8Array[] = [];
  for (const f of frames) out.push(...(await opener.push(f)));
  opener.finish();
  return concat(...out);
}

describe('clip: sealed blobs round trip', () => {
  for (const n of [0, 1, 100, 65535, 65536, 65537, 3 * 65536 + 5]) {
    it(`whole buffer, ${n} bytes, 64 KiB chunks: both recipients open it`, async () => {
      const pt = bytesOf(n);
      const { blob, header } = await sealBlob({ ...base(), t1: 1_700_000_001_000, plaintext: pt });
      assert.equal(header.n, Math.max(1, Math.ceil(n / 65536)));
      assert.equal(header.len, n);
      assert.deepEqual([...blob.subarray(0, 4)], [...CLIP_MAGIC]);
      for (const r of [alice, bob]) {
        const got = await openBlob(blob, { ...expect(), reader: r });
        assert.deepEqual(got.plaintext, pt);
        assert.deepEqual(got.meta, { cam: 'door', t0: 1_700_000_000_000, t1: 1_700_000_001_000 });
        assert.equal(got.header.kind, 'clip');
        assert.equal(got.header.hr, Math.floor(1_700_000_000_000 / 3_600_000));
        assert.equal(got.header.v, 2);
      }
    });
  }

  it('streaming: variable fMP4-sized chunks up to 1 MiB, fed to the opener in odd slices', async () => {
    const chunks = [bytesOf(1000, 1), bytesOf(300_000, 2), bytesOf(1024 * 1024, 3), bytesOf(7, 4)];
    const { headerBytes, frames } = await sealFrames(chunks, { maxChunkBytes: 1024 * 1024 });
    const all = concat(...frames);
    const { opener } = await openBlobHeader(headerBytes, { ...expect(), reader: bob });
    const got: Uint8Array[] = [];
    const cuts = [0, 1, 3, 4, 1003, 1005, 200_000, 301_024, 900_000, all.length - 3, all.length];
    for (let i = 1; i < cuts.length; i++) {
      const part = await opener.push(all.subarray(cuts[i - 1], cuts[i]));
      got.push(...part);
      // The last chunk is only released once the digest matched.
      if (i < cuts.length - 1) assert.ok(got.length < 4);
    }
    opener.finish();
    assert.equal(got.length, 4);
    for (let i = 0; i < 4; i++) assert.deepEqual(got[i], chunks[i]);
    assert.ok(opener.done);
  });

  it('the header is readable from a prefix: openBlobHeader reports where the frames start', async () => {
    const { blob } = await sealBlob({ ...base(), t1: 1_700_000_001_000, plaintext: bytesOf(70_000) });
    const { opener, size } = await openBlobHeader(blob, { ...expect(), reader: alice });
    const pt = concat(...(await opener.push(blob.subarray(size))));
    opener.finish();
    assert.deepEqual(pt, bytesOf(70_000));
  });

  it('snapshot and event kinds are bound in the header', async () => {
    for (const kind of ['snapshot', 'event'] as const) {
      const { blob } = await sealBlob({ ...base(), kind, t1: 1_700_000_000_000, plaintext: bytesOf(5000) });
      const got = await openBlob(blob, { ...expect(), reader: alice });
      assert.equal(got.header.kind, kind);
    }
  });

  it('a non-extractable X25519 reader key works (the browser case)', async () => {
    const c = await reader(k.stranger);
    assert.equal(c.x25519.privateKey.extractable, false);
    const { blob } = await sealBlob({
      ...base(),
      recipients: [c.rk],
      t1: 1_700_000_000_000,
      plaintext: bytesOf(10),
    });
    assert.deepEqual((await openBlob(blob, { ...expect(), reader: c })).plaintext, bytesOf(10));
  });

  it('the sealer refuses misuse: chunk after the last, too large, empty middle chunk, finish early or twice', async () => {
    const s = await BlobSealer.create({ ...base(), maxChunkBytes: 1000 });
    await assert.rejects(s.sealChunk(bytesOf(1001)), fails('E_TOO_LARGE', ProtocolError));
    await s.sealChunk(bytesOf(10));
    await assert.rejects(s.sealChunk(new Uint8Array(0)), fails('E_BAD_STATE', ProtocolError));
    await assert.rejects(s.finish({ t1: 1_700_000_000_000 }), fails('E_BAD_STATE', ProtocolError));
    await s.sealChunk(bytesOf(10), true);
    await assert.rejects(s.sealChunk(bytesOf(10)), fails('E_BAD_STATE', ProtocolError));
    await s.finish({ t1: 1_700_000_000_000 });
    await assert.rejects(s.finish({ t1: 1_700_000_000_000 }), fails('E_BAD_STATE', ProtocolError));
    await assert.rejects(
      BlobSealer.create({ ...base(), maxChunkBytes: 1024 * 1024 + 1 }),
      fails('E_TOO_LARGE', ProtocolError),
    );
  });
});

describe('clip: tampering is refused with typed errors', () => {
  const chunks = () => [bytesOf(1000, 1), bytesOf(1000, 2), bytesOf(1000, 3), bytesOf(500, 4)];
  let clip: Awaited<ReturnType<typeof sealFrames>>;
  let other: Awaited<ReturnType<typeof sealFrames>>;
  before(async () => {
    clip = await sealFrames(chunks(), { maxChunkBytes: 1000 });
    other = await sealFrames(chunks(), { maxChunkBytes: 1000 }); // same plaintext, another clip
  });

  it('control: the untouched clip opens', async () => {
    assert.deepEqual(await openFrames(clip.headerBytes, clip.frames), concat(...chunks()));
  });

  it('truncation (the last chunk missing) → E_CLIP_TRUNCATED', async () => {
    await assert.rejects(openFrames(clip.headerBytes, clip.frames.slice(0, 3)), fails('E_CLIP_TRUNCATED'));
    await assert.rejects(openFrames(clip.headerBytes, []), fails('E_CLIP_TRUNCATED'));
    // Cut inside the last frame.
    const cut = clip.frames.slice();
    cut[3] = cut[3]!.subarray(0, 100);
    await assert.rejects(openFrames(clip.headerBytes, cut), fails('E_CLIP_TRUNCATED'));
  });

  it('a middle chunk dropped, chunks reordered or duplicated → E_CLIP_CHUNK', async () => {
    const f = clip.frames;
    await assert.rejects(openFrames(clip.headerBytes, [f[0]!, f[2]!, f[3]!]), fails('E_CLIP_CHUNK'));
    await assert.rejects(openFrames(clip.headerBytes, [f[1]!, f[0]!, f[2]!, f[3]!]), fails('E_CLIP_CHUNK'));
    await assert.rejects(openFrames(clip.headerBytes, [f[0]!, f[0]!, f[2]!, f[3]!]), fails('E_CLIP_CHUNK'));
    await assert.rejects(openFrames(clip.headerBytes, [f[0]!, f[1]!, f[3]!, f[2]!]), fails('E_CLIP_CHUNK'));
  });

  it('a chunk spliced from another clip (same position, same plaintext) → E_CLIP_CHUNK', async () => {
    for (let i = 0; i < 4; i++) {
      const f = clip.frames.slice();
      f[i] = other.frames[i]!;
      await assert.rejects(openFrames(clip.headerBytes, f), fails('E_CLIP_CHUNK'), `chunk ${i}`);
    }
  });

  it('a flipped bit in a chunk, data after the last chunk, an impossible frame length → E_CLIP_CHUNK', async () => {
    const f = clip.frames.slice();
    const flipped = f[1]!.slice();
    flipped[50]! ^= 1;
    f[1] = flipped;
    await assert.rejects(openFrames(clip.headerBytes, f), fails('E_CLIP_CHUNK'));
    await assert.rejects(
      openFrames(clip.headerBytes, [...clip.frames, new Uint8Array([0])]),
      fails('E_CLIP_CHUNK'),
    );
    await assert.rejects(
      openFrames(clip.headerBytes, [...clip.frames, clip.frames[3]!]),
      fails('E_CLIP_CHUNK'),
    );
    await assert.rejects(
      openFrames(clip.headerBytes, [concat(u32be(1017), bytesOf(1017))]),
      fails('E_CLIP_CHUNK'),
    );
    await assert.rejects(
      openFrames(clip.headerBytes, [concat(u32be(15), bytesOf(15))]),
      fails('E_CLIP_CHUNK'),
    );
  });

  it('after a failure the opener stays failed', async () => {
    const { opener } = await openBlobHeader(clip.headerBytes, { ...expect(), reader: alice });
    await assert.rejects(opener.push(clip.frames[1]!), fails('E_CLIP_CHUNK'));
    await assert.rejects(opener.push(clip.frames[0]!), fails('E_CLIP_CHUNK'));
    assert.throws(() => opener.finish(), fails('E_CLIP_CHUNK'));
  });

  it('the last-chunk flag: a stream cut short is refused even by an opener that is told fewer chunks', async () => {
    const key = new Uint8Array(32).fill(9);
    const salt = new Uint8Array(16).fill(8);
    const s = await StreamSealer.create(key, salt, 100);
    const cts = [
      await s.seal(bytesOf(100), false),
      await s.seal(bytesOf(100), false),
      await s.seal(bytesOf(5), true),
    ];
    const o = await StreamOpener.create(key, salt, 100, 2);
    await o.open(cts[0]!);
    await assert.rejects(o.open(cts[1]!), fails('E_CLIP_CHUNK')); // chunk 1 is not a last chunk
    const o3 = await StreamOpener.create(key, salt, 100, 3);
    for (const c of cts) await o3.open(c);
    assert.ok(o3.finished);
  });

  it('a co-recipient who knows the content key forges a chunk → E_CLIP_DIGEST (the device signed the digest)', async () => {
    const { header } = decodeClipHeader(clip.headerBytes);
    const v = await verifyClipHeader(header, expect());
    const key = await unwrapContentKey(v, bob);
    const forger = await StreamSealer.create(key, fromB64u(header.salt), header.cs);
    const forged = chunks();
    forged[1] = bytesOf(1000, 99);
    const f: Uint8Array[] = [];
    for (let i = 0; i < 4; i++)
      f.push(concat(u32be(forged[i]!.length + 16), await forger.seal(forged[i]!, i === 3)));
    await assert.rejects(openFrames(clip.headerBytes, f), fails('E_CLIP_DIGEST'));
  });

  it('a header field changed (m swapped from another blob, hour, kind, chunk count) → E_BAD_SIGNATURE', async () => {
    const { header } = decodeClipHeader(clip.headerBytes);
    const o = decodeClipHeader(other.headerBytes).header;
    assert.notEqual(o.m, header.m);
    for (const edit of [
      { m: o.m },
      { hr: header.hr + 1 },
      { hr: header.hr - 1 },
      { kind: 'snapshot' as const },
      { n: 3, len: 3000 },
      { r: header.r.slice(0, 1) },
    ]) {
      const h = { ...header, ...edit } as ClipHeader;
      const bytes = encodeClipHeader(h);
      await assert.rejects(
        openBlobHeader(bytes, { pinnedDeviceKey: k.device.publicKey, reader: alice }),
        fails('E_BAD_SIGNATURE'),
        JSON.stringify(edit),
      );
    }
  });

  it('the metadata box is bound to its blob: moved, or under edited clear fields, it does not open, even re-signed by the device', async () => {
    const a = decodeClipHeader(clip.headerBytes).header;
    const b = decodeClipHeader(other.headerBytes).header;
    const key = await unwrapContentKey(await verifyClipHeader(a, expect()), alice);
    // b's box under a's key: another key (and AAD) → E_DECRYPT.
    await assert.rejects(openClipMeta(key, fromB64u(a.salt), b.m, clipMetaAad(a), a.hr), fails('E_DECRYPT'));
    // The device itself re-wraps the same content key for a header with an edited hour or kind but
    // the original box: signature and wrap check out, the box's AAD does not.
    for (const edit of [{ hr: a.hr + 1 }, { kind: 'snapshot' as const }, { len: a.len - 1 }]) {
      const { sig: _s, r: _r, ...rest } = { ...a, ...edit };
      const h = await signClipHeader(k.device, { ...rest, r: await rewrap(rest, key) });
      await assert.rejects(
        openBlobHeader(encodeClipHeader(h), { ...expect(), reader: alice }),
        fails('E_DECRYPT'),
        JSON.stringify(edit),
      );
    }
    // A box the device sealed for an hour that is not t0's: E_CLIP_HEADER.
    const { sig: _s, r: _r, m: _m, ...clear } = { ...a, hr: a.hr + 1 };
    const m = await sealClipMeta(
      key,
      fromB64u(a.salt),
      { cam: 'door', t0: 1_700_000_000_000, t1: 1_700_000_030_000 },
      clipMetaAad(clear),
    );
    const h = await signClipHeader(k.device, { ...clear, m, r: await rewrap({ ...clear, m }, key) });
    await assert.rejects(
      openBlobHeader(encodeClipHeader(h), { ...expect(), reader: alice }),
      fails('E_CLIP_HEADER', ProtocolError),
    );
  });

  it('a header re-signed by another device key → E_WRONG_SIGNER; expected device or camera differ → E_BAD_BINDING', async () => {
    const { header } = decodeClipHeader(clip.headerBytes);
    const { sig: _s, ...rest } = header;
    const resigned = await signClipHeader(k.otherDevice, {
      ...rest,
      dk: encodeId('deviceKey', k.otherDevice.publicKey),
      dev: deviceIdFromKey(k.otherDevice.publicKey),
    });
    await assert.rejects(
      openBlobHeader(encodeClipHeader(resigned), { pinnedDeviceKey: k.device.publicKey, reader: alice }),
      fails('E_WRONG_SIGNER'),
    );
    // Re-signed by another key while still claiming the pinned key: the signature fails.
    const lying = await signClipHeader(k.otherDevice, rest);
    await assert.rejects(
      openBlobHeader(encodeClipHeader(lying), { pinnedDeviceKey: k.device.publicKey, reader: alice }),
      fails('E_BAD_SIGNATURE'),
    );
    // The camera is checked inside the box, after unwrapping.
    for (const camera of ['garden', 'Door', 'doo', 'door ', 'doors'])
      await assert.rejects(
        openBlobHeader(clip.headerBytes, { ...expect(), camera, reader: alice }),
        fails('E_BAD_BINDING'),
        camera,
      );
    const { meta } = await openBlobHeader(clip.headerBytes, { ...expect(), camera: 'door', reader: alice });
    assert.equal(meta.cam, 'door');
    await assert.rejects(
      openBlobHeader(clip.headerBytes, {
        ...expect(),
        deviceId: deviceIdFromKey(k.otherDevice.publicKey),
        reader: alice,
      }),
      fails('E_BAD_BINDING'),
    );
  });

  it('a wrapped key moved to another clip does not open, even under a valid device signature → E_DECRYPT', async () => {
    const a = decodeClipHeader(clip.headerBytes).header;
    const b = decodeClipHeader(other.headerBytes).header;
    const { sig: _s, ...rest } = b;
    // The device itself (or anyone with its key) signing the moved wrap: the HPKE info still differs.
    const moved = await signClipHeader(k.device, { ...rest, r: a.r });
    const v = await verifyClipHeader(moved, expect());
    await assert.rejects(unwrapContentKey(v, alice), fails('E_DECRYPT'));
    // And a wrap moved between readers (aad binds the reader).
    const swapped = await signClipHeader(k.device, {
      ...rest,
      r: [
        { ...b.r[0]!, e: b.r[1]!.e, w: b.r[1]!.w },
        { ...b.r[1]!, e: b.r[0]!.e, w: b.r[0]!.w },
      ],
    });
    const v2 = await verifyClipHeader(swapped, expect());
    await assert.rejects(unwrapContentKey(v2, alice), fails('E_DECRYPT'));
    assert.notDeepEqual(clipWrapInfo(a), clipWrapInfo(b));
  });
});

describe('clip: recipients and reader keys', () => {
  it('a reader without a wrapped key → AccessError E_NOT_RECIPIENT', async () => {
    const { blob } = await sealBlob({ ...base(), t1: 1_700_000_000_000, plaintext: bytesOf(100) });
    await assert.rejects(
      openBlob(blob, { ...expect(), reader: carol }),
      fails('E_NOT_RECIPIENT', AccessError),
    );
    // The right viewer key with another X25519 key (e.g. after a revocation and a new epoch).
    const newKey = await x25519Generate();
    await assert.rejects(
      openBlob(blob, { ...expect(), reader: { userKey: alice.userKey, x25519: newKey } }),
      fails('E_NOT_RECIPIENT', AccessError),
    );
  });

  it('a revoked reader key is simply not in the next clip: it can open the old one, not the new one', async () => {
    const old = await sealBlob({ ...base(), t1: 1_700_000_000_000, plaintext: bytesOf(10) });
    const next = await sealBlob({
      ...base(),
      recipients: [alice.rk],
      t1: 1_700_000_000_000,
      plaintext: bytesOf(10),
    });
    await openBlob(old.blob, { ...expect(), reader: bob });
    await assert.rejects(
      openBlob(next.blob, { ...expect(), reader: bob }),
      fails('E_NOT_RECIPIENT', AccessError),
    );
  });

  it('reader keys: sign, verify, encode/decode; a forged or mismatched one is refused by the sealer', async () => {
    const rk = alice.rk;
    await verifyReaderKey(rk, alice.userKey);
    const back = decodeReaderKey(encodeReaderKey(rk));
    assert.deepEqual(back, rk);
    await assert.rejects(verifyReaderKey(rk, bob.userKey), fails('E_WRONG_SIGNER'));
    const forged = { ...rk, x25519: bob.x25519.publicKey };
    await assert.rejects(verifyReaderKey(forged), fails('E_BAD_SIGNATURE'));
    await assert.rejects(BlobSealer.create({ ...base(), recipients: [forged] }), fails('E_BAD_SIGNATURE'));
    const badSig = { ...rk, signature: rk.signature.map((x, i) => (i === 0 ? x ^ 1 : x)) };
    await assert.rejects(verifyReaderKey(badSig), fails('E_BAD_SIGNATURE'));
    assert.throws(() => decodeReaderKey('{"v":1}'), fails('E_SCHEMA', ProtocolError));
    assert.throws(() => decodeReaderKey('x'.repeat(600)), fails('E_TOO_LARGE', ProtocolError));
  });

  it('recipient limits: none, two keys for one viewer, more than 64', async () => {
    await assert.rejects(
      BlobSealer.create({ ...base(), recipients: [] }),
      fails('E_BAD_STATE', ProtocolError),
    );
    const alice2 = await reader(k.owner);
    await assert.rejects(
      BlobSealer.create({ ...base(), recipients: [alice.rk, alice2.rk] }),
      fails('E_BAD_STATE', ProtocolError),
    );
    const many: ReaderKey[] = [];
    for (let i = 0; i < MAX_CLIP_RECIPIENTS + 1; i++) {
      const s = await WebCryptoSigner.fromSeed(new Uint8Array(32).fill(100 + i));
      many.push(
        await signReaderKey(s, (await x25519KeyPairFromScalar(new Uint8Array(32).fill(i + 1))).publicKey),
      );
    }
    await assert.rejects(
      BlobSealer.create({ ...base(), recipients: many }),
      fails('E_TOO_LARGE', ProtocolError),
    );
    // Exactly 64 fits in the header limit, and the last of them can open.
    const env = fixedEnv(3);
    const { blob } = await sealBlob({
      ...base(),
      recipients: many.slice(0, MAX_CLIP_RECIPIENTS),
      t1: 1_700_000_000_000,
      plaintext: bytesOf(10),
      env,
    });
    const hlen = new DataView(blob.buffer, blob.byteOffset + 4, 4).getUint32(0);
    assert.ok(hlen <= MAX_CLIP_HEADER_BYTES, `header ${hlen} bytes`);
    const last = MAX_CLIP_RECIPIENTS - 1;
    const rd = {
      userKey: many[last]!.userKey,
      x25519: await x25519KeyPairFromScalar(new Uint8Array(32).fill(last + 1)),
    };
    assert.deepEqual((await openBlob(blob, { ...expect(), reader: rd })).plaintext, bytesOf(10));
  });
});

describe('clip: header decoding', () => {
  let hb: Uint8Array;
  before(async () => {
    hb = (await sealFrames([bytesOf(10)])).headerBytes;
  });

  it('sizes are checked before parsing: a length prefix past 32 KiB → E_TOO_LARGE', () => {
    const big = concat(CLIP_MAGIC, u32be(MAX_CLIP_HEADER_BYTES + 1));
    assert.throws(() => decodeClipHeader(big), fails('E_TOO_LARGE', ProtocolError));
    assert.throws(
      () => decodeClipHeader(concat(CLIP_MAGIC, u32be(0xffffffff))),
      fails('E_TOO_LARGE', ProtocolError),
    );
  });

  it('bad magic or version, truncated, not canonical, inconsistent → E_CLIP_HEADER', () => {
    for (const version of [0, 1, 3, 255]) {
      const wrongVersion = hb.slice();
      wrongVersion[3] = version;
      assert.throws(
        () => decodeClipHeader(wrongVersion),
        (e) => fails('E_CLIP_HEADER', ProtocolError)(e) && /another version/.test((e as Error).message),
      );
    }
    const notOurs = hb.slice();
    notOurs[0] = 0x49;
    assert.throws(() => decodeClipHeader(notOurs), fails('E_CLIP_HEADER', ProtocolError));
    assert.throws(
      () => decodeClipHeader(hb.subarray(0, hb.length - 1)),
      fails('E_CLIP_HEADER', ProtocolError),
    );
    assert.throws(() => decodeClipHeader(new Uint8Array(3)), fails('E_CLIP_HEADER', ProtocolError));
    const { header } = decodeClipHeader(hb);
    const json = JSON.stringify(header, null, 1); // valid JSON, not canonical
    const te = new TextEncoder().encode(json);
    assert.throws(
      () => decodeClipHeader(concat(CLIP_MAGIC, u32be(te.length), te)),
      fails('E_CLIP_HEADER', ProtocolError),
    );
    for (const edit of [
      { n: 2 }, // more chunks than bytes allow
      { len: header.n * header.cs + 1 },
      { dev: deviceIdFromKey(k.otherDevice.publicKey) },
      { r: [...header.r, ...header.r] },
      { extra: 1 },
      { cam: 'door' }, // a v1 field in the clear
      { t0: 1_700_000_000_000 },
      { v: 1 },
      { hr: -1 },
      { hr: 1.5 },
      { m: 'AAAA' },
      { m: 'A'.repeat(5000) },
      { m: `${header.m.slice(1)}*` },
    ]) {
      const h = { ...header, ...edit } as ClipHeader;
      const j = new TextEncoder().encode(JSON.stringify(Object.fromEntries(Object.entries(h).sort())));
      assert.throws(
        () => decodeClipHeader(concat(CLIP_MAGIC, u32be(j.length), j)),
        fails('E_CLIP_HEADER', ProtocolError),
        JSON.stringify(edit),
      );
    }
  });

  it('the opener is not fooled by bytes after the header in the same buffer', async () => {
    const { size } = decodeClipHeader(concat(hb, bytesOf(100)));
    assert.equal(size, hb.length);
  });

  it('BlobOpener.create wipes the content key it is given', async () => {
    const { header } = decodeClipHeader(hb);
    const v = await verifyClipHeader(header, expect());
    const key = await unwrapContentKey(v, alice);
    await BlobOpener.create(v, key);
    assert.ok(key.every((x) => x === 0));
    assert.equal(b64u(key).length, 43);
  });
});
