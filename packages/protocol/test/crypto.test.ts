/**
 * The WebCrypto layer (src/crypto/primitives.ts) against published vectors: RFC 8032 §7.1 (Ed25519
 * tests 1 and 2), RFC 7748 §5.2 and §6.1 (X25519), RFC 5869 (HKDF), RFC 4231 (HMAC), FIPS 180-2
 * (SHA-256), plus the checks the wrappers add (small-order X25519 keys, AES-GCM tag failures).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromHex, hex, utf8 } from '../src/bytes.js';
import {
  aesGcmDecrypt,
  aesGcmEncrypt,
  ed25519Verify,
  hkdfSha256,
  hmacSha256,
  hmacSha256Verify,
  label,
  sha256,
  WebCryptoSigner,
  x25519,
  x25519FromScalar,
} from '../src/crypto/primitives.js';
import { VerificationError } from '../src/errors.js';

const RFC8032 = [
  {
    name: 'RFC 8032 §7.1 TEST 1 (empty message)',
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    msg: '',
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'RFC 8032 §7.1 TEST 2 (one byte)',
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    msg: '72',
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
];

describe('Ed25519 (RFC 8032) through WebCryptoSigner / ed25519Verify', () => {
  for (const v of RFC8032) {
    it(`${v.name}: public key, signature, verification`, async () => {
      const s = await WebCryptoSigner.fromSeed(fromHex(v.seed), true);
      assert.equal(hex(s.publicKey), v.pub);
      const sig = await s.sign(fromHex(v.msg));
      assert.equal(hex(sig), v.sig);
      assert.equal(await ed25519Verify(fromHex(v.pub), fromHex(v.msg), fromHex(v.sig)), true);
      assert.equal(hex(await s.exportSeed()), v.seed);
    });
  }

  it('rejects a flipped signature bit, another message, another key, and bad lengths (false, no throw)', async () => {
    const [a, b] = RFC8032 as [(typeof RFC8032)[0], (typeof RFC8032)[0]];
    const sig = fromHex(a.sig);
    sig[5]! ^= 1;
    assert.equal(await ed25519Verify(fromHex(a.pub), fromHex(a.msg), sig), false);
    assert.equal(await ed25519Verify(fromHex(a.pub), fromHex('00'), fromHex(a.sig)), false);
    assert.equal(await ed25519Verify(fromHex(b.pub), fromHex(a.msg), fromHex(a.sig)), false);
    assert.equal(await ed25519Verify(fromHex(a.pub).subarray(1), fromHex(a.msg), fromHex(a.sig)), false);
    assert.equal(await ed25519Verify(fromHex(a.pub), fromHex(a.msg), fromHex(a.sig).subarray(1)), false);
    // A 32-byte string that is not a valid point: false, not an exception.
    assert.equal(await ed25519Verify(new Uint8Array(32).fill(0xff), fromHex(a.msg), fromHex(a.sig)), false);
  });

  it('generated keys sign and verify; non-extractable by default', async () => {
    const s = await WebCryptoSigner.generate();
    const m = utf8('hello');
    assert.equal(await ed25519Verify(s.publicKey, m, await s.sign(m)), true);
    await assert.rejects(() => s.exportSeed());
  });
});

describe('X25519 (RFC 7748) through x25519FromScalar / x25519', () => {
  it('RFC 7748 §5.2 vector 1', async () => {
    const k = await x25519FromScalar(
      fromHex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'),
    );
    const out = await x25519(k, fromHex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'));
    assert.equal(hex(out), 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552');
  });

  it('RFC 7748 §5.2 vector 2', async () => {
    const k = await x25519FromScalar(
      fromHex('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d'),
    );
    const out = await x25519(k, fromHex('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493'));
    assert.equal(hex(out), '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957');
  });

  it('RFC 7748 §6.1 Diffie-Hellman: public keys from the base point and the shared secret both ways', async () => {
    const alice = await x25519FromScalar(
      fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'),
    );
    const bob = await x25519FromScalar(
      fromHex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'),
    );
    const base = new Uint8Array(32);
    base[0] = 9;
    const alicePub = await x25519(alice, base);
    const bobPub = await x25519(bob, base);
    assert.equal(hex(alicePub), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    assert.equal(hex(bobPub), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    assert.equal(hex(await x25519(alice, bobPub)), shared);
    assert.equal(hex(await x25519(bob, alicePub)), shared);
  });

  it('refuses small-order peer keys (all-zero output) with a typed VerificationError', async () => {
    const k = await x25519FromScalar(
      fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'),
    );
    const one = new Uint8Array(32);
    one[0] = 1;
    for (const small of [new Uint8Array(32), one]) {
      await assert.rejects(
        () => x25519(k, small),
        (e) => e instanceof VerificationError,
      );
    }
    await assert.rejects(
      () => x25519(k, new Uint8Array(31)),
      (e) => (e as VerificationError).code === 'E_DECODE',
    );
  });
});

describe('hashes, MACs, KDF and AEAD', () => {
  it('SHA-256("abc") (FIPS 180-2)', async () => {
    assert.equal(
      hex(await sha256(utf8('abc'))),
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('HMAC-SHA-256 RFC 4231 test case 2, verify in constant time', async () => {
    const tag = await hmacSha256(utf8('Jefe'), utf8('what do ya want for nothing?'));
    assert.equal(hex(tag), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    assert.equal(await hmacSha256Verify(utf8('Jefe'), utf8('what do ya want for nothing?'), tag), true);
    tag[0]! ^= 1;
    assert.equal(await hmacSha256Verify(utf8('Jefe'), utf8('what do ya want for nothing?'), tag), false);
  });

  it('HKDF-SHA-256 RFC 5869 test case 1', async () => {
    const okm = await hkdfSha256(
      new Uint8Array(22).fill(0x0b),
      fromHex('000102030405060708090a0b0c'),
      fromHex('f0f1f2f3f4f5f6f7f8f9'),
      42,
    );
    assert.equal(
      hex(okm),
      '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
    );
  });

  it('AES-256-GCM round trip; a flipped bit in ciphertext, tag or AAD is E_DECRYPT', async () => {
    const key = new Uint8Array(32).fill(7);
    const iv = new Uint8Array(12).fill(1);
    const ct = await aesGcmEncrypt(key, iv, utf8('secret'), utf8('aad'));
    assert.equal(ct.length, 6 + 16);
    assert.deepEqual(await aesGcmDecrypt(key, iv, ct, utf8('aad')), utf8('secret'));
    for (let i = 0; i < ct.length; i++) {
      const bad = ct.slice();
      bad[i]! ^= 0x80;
      await assert.rejects(
        () => aesGcmDecrypt(key, iv, bad, utf8('aad')),
        (e) => (e as VerificationError).code === 'E_DECRYPT',
      );
    }
    await assert.rejects(
      () => aesGcmDecrypt(key, iv, ct, utf8('aaD')),
      (e) => (e as VerificationError).code === 'E_DECRYPT',
    );
    await assert.rejects(
      () => aesGcmDecrypt(key, iv, ct.subarray(0, 15)),
      (e) => (e as VerificationError).code === 'E_DECODE',
    );
  });

  it('labels are hearth/v1/<purpose>', () => {
    assert.equal(label('session/offer'), 'hearth/v1/session/offer');
  });
});
