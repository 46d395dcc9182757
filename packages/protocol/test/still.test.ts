/**
 * The sealed still (`still.ts`): the device's JPEG of the latest frame, sealed under a key from two
 * ephemeral X25519 keys carried in the signed offer and answer. The server that routes it must
 * learn nothing from it; a still that does not authenticate is a typed error, never a picture.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { b64u, fromB64u, hex } from '../src/bytes.js';
import { sha256, x25519Generate } from '../src/crypto/primitives.js';
import { HearthError, ProtocolError, VerificationError } from '../src/errors.js';
import { createAnswer, createOffer, verifyAnswer, verifyOffer } from '../src/session.js';
import {
  createStillSealer,
  decodeStillCiphertext,
  deriveStillKey,
  MAX_STILL_JPEG_BYTES,
  openStill,
  openStillWithKey,
  STILL_CT_CHARS,
  sealStillWithKey,
  stillAad,
  stillMessageSchema,
  x25519KeyPairFromScalar,
} from '../src/still.js';
import { fp, keys, sdpWith } from './fixtures.js';
import { editsArb, mutate, RUNS } from './fuzz-helpers.js';

type K = Awaited<ReturnType<typeof keys>>;
let k: K;
before(async () => {
  k = await keys();
});

/** A fake JPEG: SOI, some bytes, EOI. */
const jpegOf = (n: number, seed = 7) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  b.set([0xff, 0xd8], 0);
  b.set([0xff, 0xd9], n - 2);
  return b;
};

async function session(o: { viewerSk?: boolean } = {}) {
  const eph = await x25519Generate();
  const offer = await createOffer(
    k.owner,
    {
      deviceId: k.deviceId,
      camera: 'door',
      sdp: sdpWith(fp(0xaa)),
      ...(o.viewerSk === false ? {} : { stillKey: eph.publicKey }),
    },
    k.env,
  );
  const vo = await verifyOffer(offer.envelope, { deviceId: k.deviceId, now: k.env.now() });
  assert.ok(vo.ok);
  return { eph, offer, vo: vo.body };
}

const isCode = (code: string, cls: typeof HearthError) => (e: unknown) =>
  e instanceof cls && (e as HearthError).code === code;

describe('still: sealed end to end, bound to the session', () => {
  it('round trip: offer sk → sealer → answer sk → verified answer → openStill gives the JPEG', async () => {
    const { eph, offer, vo } = await session();
    assert.equal(vo.stillKey?.length, 32);
    assert.deepEqual(vo.stillKey, eph.publicKey);
    const sealer = await createStillSealer({
      stillKey: vo.stillKey,
      sid: vo.sid,
      camera: vo.camera,
      digest: vo.digest,
    });
    const answer = await createAnswer(k.device, vo, sdpWith(fp(0xbb)), k.env, sealer.publicKey);
    const va = await verifyAnswer(answer, {
      pinnedDeviceKey: k.device.publicKey,
      sid: offer.sid,
      offerDigest: offer.digest,
      now: k.env.now(),
    });
    assert.ok(va.ok);
    assert.deepEqual(va.body.stillKey, sealer.publicKey);
    const jpeg = jpegOf(30_000);
    const ct = await sealer.seal(jpeg);
    assert.equal(ct.length, STILL_CT_CHARS);
    assert.ok(stillMessageSchema.safeParse({ t: 'session/still', sid: offer.sid, ct }).success);
    const out = await openStill({
      secret: eph.privateKey,
      deviceStillKey: sealer.publicKey,
      ctx: { sid: offer.sid, camera: 'door', offerDigest: offer.digest },
      ct,
    });
    assert.deepEqual(out, jpeg);
    // The largest JPEG and an empty one round trip too, at the same ciphertext size.
    for (const n of [MAX_STILL_JPEG_BYTES, 0]) {
      const s = await createStillSealer({
        stillKey: eph.publicKey,
        sid: offer.sid,
        camera: 'door',
        digest: offer.digest,
      });
      const j = n ? jpegOf(n) : new Uint8Array();
      const c = await s.seal(j);
      assert.equal(c.length, STILL_CT_CHARS, 'fixed size: the length says nothing about the picture');
      const back = await openStill({
        secret: eph.privateKey,
        deviceStillKey: s.publicKey,
        ctx: { sid: offer.sid, camera: 'door', offerDigest: offer.digest },
        ct: c,
      });
      assert.deepEqual(back, j);
    }
  });

  it('a sealer seals exactly one message (the nonce is fixed because the key is single use)', async () => {
    const { vo } = await session();
    assert.ok(vo.stillKey);
    const s = await createStillSealer({
      stillKey: vo.stillKey,
      sid: vo.sid,
      camera: vo.camera,
      digest: vo.digest,
    });
    await s.seal(jpegOf(100));
    await assert.rejects(s.seal(jpegOf(100)), isCode('E_BAD_STATE', ProtocolError));
    // Two sealers for the same offer draw different ephemeral keys, hence different keys.
    const a = await createStillSealer({
      stillKey: vo.stillKey,
      sid: vo.sid,
      camera: vo.camera,
      digest: vo.digest,
    });
    const b = await createStillSealer({
      stillKey: vo.stillKey,
      sid: vo.sid,
      camera: vo.camera,
      digest: vo.digest,
    });
    assert.notDeepEqual(a.publicKey, b.publicKey);
    assert.notEqual(await a.seal(jpegOf(100)), await b.seal(jpegOf(100)));
  });

  it('a flipped bit anywhere in the ciphertext or tag: VerificationError E_DECRYPT', async () => {
    const { eph, vo } = await session();
    assert.ok(vo.stillKey);
    const dev = await x25519Generate();
    const key = await deriveStillKey(dev.privateKey, eph.publicKey, vo.digest);
    const ctx = { sid: vo.sid, camera: vo.camera };
    const ct = await sealStillWithKey(key, ctx, jpegOf(5000));
    const bytes = fromB64u(ct);
    // Every byte of the first and last 64 (the JPEG's start, the padding's end, the tag) and every
    // 61st in between, each with a different bit.
    const positions = new Set<number>();
    for (let i = 0; i < 64; i++) positions.add(i).add(bytes.length - 1 - i);
    for (let i = 0; i < bytes.length; i += 61) positions.add(i);
    for (const i of positions) {
      const t = bytes.slice();
      t[i] = (t[i] ?? 0) ^ (1 << (i % 8));
      await assert.rejects(
        openStillWithKey(key, ctx, b64u(t)),
        isCode('E_DECRYPT', VerificationError),
        `byte ${i}`,
      );
    }
    assert.deepEqual(await openStillWithKey(key, ctx, ct), jpegOf(5000));
  });

  it('another session, camera, offer or key: E_DECRYPT; never the picture', async () => {
    const { eph, offer, vo } = await session();
    assert.ok(vo.stillKey);
    const s = await createStillSealer({
      stillKey: vo.stillKey,
      sid: vo.sid,
      camera: vo.camera,
      digest: vo.digest,
    });
    const ct = await s.seal(jpegOf(1000));
    const other = await session();
    const good = { sid: offer.sid, camera: 'door', offerDigest: offer.digest };
    const cases: [string, Parameters<typeof openStill>[0]][] = [
      [
        'sid',
        { secret: eph.privateKey, deviceStillKey: s.publicKey, ctx: { ...good, sid: other.offer.sid }, ct },
      ],
      [
        'camera',
        { secret: eph.privateKey, deviceStillKey: s.publicKey, ctx: { ...good, camera: 'yard' }, ct },
      ],
      [
        'offer digest',
        {
          secret: eph.privateKey,
          deviceStillKey: s.publicKey,
          ctx: { ...good, offerDigest: other.offer.digest },
          ct,
        },
      ],
      ['viewer secret', { secret: other.eph.privateKey, deviceStillKey: s.publicKey, ctx: good, ct }],
      [
        'device key',
        { secret: eph.privateKey, deviceStillKey: (await x25519Generate()).publicKey, ctx: good, ct },
      ],
    ];
    for (const [what, args] of cases)
      await assert.rejects(openStill(args), isCode('E_DECRYPT', VerificationError), what);
    // The AAD names the session and the camera (length-prefixed: no ambiguity between them).
    assert.notDeepEqual(stillAad({ sid: 'ab', camera: 'c' }), stillAad({ sid: 'a', camera: 'bc' }));
  });

  it('size: a JPEG over the limit is E_TOO_LARGE at sealing; a ct too long is E_TOO_LARGE, too short E_DECODE', async () => {
    const { vo } = await session();
    assert.ok(vo.stillKey);
    const s = await createStillSealer({
      stillKey: vo.stillKey,
      sid: vo.sid,
      camera: vo.camera,
      digest: vo.digest,
    });
    await assert.rejects(s.seal(jpegOf(MAX_STILL_JPEG_BYTES + 1)), isCode('E_TOO_LARGE', ProtocolError));
    assert.throws(
      () => decodeStillCiphertext('A'.repeat(STILL_CT_CHARS + 1)),
      isCode('E_TOO_LARGE', ProtocolError),
    );
    assert.throws(
      () => decodeStillCiphertext('A'.repeat(10 * STILL_CT_CHARS)),
      isCode('E_TOO_LARGE', ProtocolError),
    );
    assert.throws(
      () => decodeStillCiphertext('A'.repeat(STILL_CT_CHARS - 1)),
      isCode('E_DECODE', ProtocolError),
    );
    assert.throws(() => decodeStillCiphertext(42), isCode('E_DECODE', ProtocolError));
    assert.throws(
      () => decodeStillCiphertext(`${'A'.repeat(STILL_CT_CHARS - 1)}=`),
      isCode('E_DECODE', ProtocolError),
    );
    assert.equal(
      stillMessageSchema.safeParse({ t: 'session/still', sid: vo.sid, ct: 'AAAA' }).success,
      false,
    );
    assert.equal(
      stillMessageSchema.safeParse({ t: 'session/still', sid: vo.sid, ct: 'A'.repeat(STILL_CT_CHARS), x: 1 })
        .success,
      false,
      'strict',
    );
  });

  it('interoperates with old peers: no sk in the offer, no sk in the answer; the device cannot add one', async () => {
    const { vo } = await session({ viewerSk: false });
    assert.equal(vo.stillKey, undefined);
    assert.equal('sk' in vo.envelope.b, false);
    const answer = await createAnswer(k.device, vo, sdpWith(fp(0xbb)), k.env);
    assert.equal('sk' in answer.b, false);
    await assert.rejects(
      createAnswer(k.device, vo, sdpWith(fp(0xbb)), k.env, (await x25519Generate()).publicKey),
      RangeError,
    );
  });

  it('a small-order viewer key: the sealer refuses (VerificationError E_DECODE), so the device answers without sk', async () => {
    const { vo } = await session();
    await assert.rejects(
      createStillSealer({ stillKey: new Uint8Array(32), sid: vo.sid, camera: vo.camera, digest: vo.digest }),
      (e: unknown) => e instanceof HearthError,
    );
  });

  it('a non-canonical or wrong-length sk in a signed offer is E_SCHEMA', async () => {
    const { offerBodySchema } = await import('../src/session.js');
    const base = { d: k.deviceId, cam: 'door', sid: 'A'.repeat(22), sdp: sdpWith(fp(1)) };
    assert.ok(offerBodySchema.safeParse({ ...base, sk: b64u(new Uint8Array(32).fill(3)) }).success);
    assert.equal(
      offerBodySchema.safeParse({ ...base, sk: `${'A'.repeat(42)}B` }).success,
      false,
      'padding bits',
    );
    assert.equal(offerBodySchema.safeParse({ ...base, sk: 'A'.repeat(44) }).success, false);
    assert.equal(offerBodySchema.safeParse({ ...base, sk: 1 }).success, false);
  });
});

describe('still: fixed test vector (docs/protocol.md)', () => {
  it('deterministic keys, digest, sid and camera give the recorded key and ciphertext', async () => {
    const scalar = (b: number) => Uint8Array.from({ length: 32 }, (_, i) => (b + i) & 0xff);
    const viewer = await x25519KeyPairFromScalar(scalar(0x01));
    const device = await x25519KeyPairFromScalar(scalar(0x41));
    const digest = b64u(Uint8Array.from({ length: 32 }, (_, i) => 0xa0 + i));
    const sid = b64u(Uint8Array.from({ length: 16 }, (_, i) => i));
    const camera = 'door';
    const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0xff, 0xd9]);
    const kv = await deriveStillKey(viewer.privateKey, device.publicKey, digest);
    const kd = await deriveStillKey(device.privateKey, viewer.publicKey, digest);
    assert.deepEqual(kv, kd);
    const sealer = await createStillSealer(
      { stillKey: viewer.publicKey, sid, camera, digest },
      { scalar: scalar(0x41) },
    );
    assert.deepEqual(sealer.publicKey, device.publicKey);
    const ct = await sealer.seal(jpeg);
    const bytes = fromB64u(ct);
    const got = {
      viewerPublic: hex(viewer.publicKey),
      devicePublic: hex(device.publicKey),
      sid,
      digest,
      key: hex(kv),
      ctFirst32: hex(bytes.slice(0, 32)),
      tag: hex(bytes.slice(-16)),
      ctSha256: hex(await sha256(bytes)),
    };
    if (process.env.HEARTH_PRINT_VECTORS) console.log(JSON.stringify(got, null, 2));
    assert.deepEqual(got, VECTOR);
    const back = await openStill({
      secret: viewer.privateKey,
      deviceStillKey: device.publicKey,
      ctx: { sid, camera, offerDigest: digest },
      ct,
    });
    assert.deepEqual(back, jpeg);
  });
});

describe('fuzz: openStillWithKey on mutated and random ciphertexts', () => {
  const runs = Math.max(50, Math.floor(RUNS / 100));
  it(`${runs} inputs: E_DECRYPT, E_DECODE or E_TOO_LARGE; never the picture, never an untyped error`, async () => {
    const key = new Uint8Array(32).fill(9);
    const ctx = { sid: 'A'.repeat(22), camera: 'door' };
    const ct = await sealStillWithKey(key, ctx, jpegOf(2000));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.tuple(fc.constant(ct), editsArb).map(([s, e]) => mutate(s, e)),
          fc.string({ maxLength: 200 }),
          fc.integer({ min: STILL_CT_CHARS - 3, max: STILL_CT_CHARS + 3 }).map((n) => 'A'.repeat(n)),
          fc.anything(),
        ),
        async (input) => {
          try {
            const out = await openStillWithKey(key, ctx, input);
            assert.equal(input, ct, 'only the genuine ciphertext opens');
            assert.deepEqual(out, jpegOf(2000));
          } catch (e) {
            assert.ok(e instanceof HearthError, `untyped: ${String(e)}`);
            assert.ok(['E_DECRYPT', 'E_DECODE', 'E_TOO_LARGE'].includes(e.code), e.code);
          }
        },
      ),
      { numRuns: runs },
    );
  });
});

/** Recomputed independently with Python's `cryptography` (X25519, HKDF, AESGCM) when recorded. */
const VECTOR = {
  viewerPublic: '07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c',
  devicePublic: '64b101b1d0be5a8704bd078f9895001fc03e8e9f9522f188dd128d9846d48466',
  sid: 'AAECAwQFBgcICQoLDA0ODw',
  digest: 'oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8',
  key: '564cb66cac9d26832c1296cc64bce7ac911cf56be8f1a2d128e9af89515af3e0',
  ctFirst32: 'bba3fc6d6f7cab6be696900296a8de7507f97e6be13afc660a3bc44e362c898d',
  tag: '4739954a7618e6d0c3507fc120373407',
  ctSha256: 'e2c163f687d3316ceaf22ca9a44db9f84f14c1c23b62b7a40eb6aa43d6e27aad',
};
