import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { p256 } from '@noble/curves/nist.js';
import { pbkdf2 } from '@noble/hashes/pbkdf2.js';
import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { concat, hex, utf8 } from '../../src/bytes.js';
import { fixedEnv } from '../../src/crypto/env.js';
import { ProtocolError, VerificationError } from '../../src/errors.js';
import {
  checkConfirmation,
  computeVerifierRecord,
  decodeShare,
  deriveProverSecrets,
  lenLE,
  P256_ORDER,
  proverFinish,
  proverShare,
  verifierRespond,
} from '../../src/pairing/index.js';

const ctx = { context: utf8('hearth/v1/pair'), idProver: new Uint8Array(0), idVerifier: utf8('hdid_test') };

describe('SPAKE2+ w0/w1 derivation', () => {
  it('w0s || w1s = PBKDF2(len(pw)||pw||len(idP)||idP||len(idV)||idV), 80 bytes, each half mod n', async () => {
    const pw = utf8('password');
    const salt = utf8('salt');
    const s = await deriveProverSecrets(pw, ctx, { salt, iterations: 1000 });
    // Independent computation with @noble/hashes.
    const input = concat(lenLE(pw), lenLE(ctx.idProver), lenLE(ctx.idVerifier));
    const out = pbkdf2(sha256, input, salt, { c: 1000, dkLen: 80 });
    const w0 = BigInt(`0x${hex(out.subarray(0, 40))}`) % P256_ORDER;
    const w1 = BigInt(`0x${hex(out.subarray(40))}`) % P256_ORDER;
    assert.equal(hex(s.w0), w0.toString(16).padStart(64, '0'));
    assert.equal(hex(s.w1), w1.toString(16).padStart(64, '0'));
    assert.equal(
      hex(lenLE(utf8('client'))),
      '0600000000000000636c69656e74',
      'len(S)||S, 8-byte little-endian',
    );
  });
});

describe('SPAKE2+ runs', () => {
  it('random passwords: both sides agree; a different password never confirms (property)', async () => {
    const env = fixedEnv(21);
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 32 }),
        fc.uint8Array({ maxLength: 32 }),
        async (pw, other) => {
          const pbkdf = { salt: utf8('s'), iterations: 1 };
          const prover = await deriveProverSecrets(pw, ctx, pbkdf);
          const record = computeVerifierRecord(await deriveProverSecrets(pw, ctx, pbkdf));
          const { x, shareP } = proverShare(prover.w0, env);
          const v = await verifierRespond(ctx, record, shareP, env);
          const p = await proverFinish(ctx, prover, x, shareP, v.shareV);
          checkConfirmation(p.confirmV, v.confirmV);
          checkConfirmation(v.confirmP, p.confirmP);
          assert.equal(hex(p.K_shared), hex(v.K_shared));
          if (hex(pw) !== hex(other)) {
            const wrong = await deriveProverSecrets(other, ctx, pbkdf);
            const w = proverShare(wrong.w0, env);
            const v2 = await verifierRespond(ctx, record, w.shareP, env);
            const p2 = await proverFinish(ctx, wrong, w.x, w.shareP, v2.shareV);
            assert.throws(() => checkConfirmation(p2.confirmV, v2.confirmV), VerificationError);
            assert.notEqual(hex(p2.K_shared), hex(v2.K_shared));
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('the verifier record alone does not give the prover secret w1', () => {
    const rec = computeVerifierRecord({ w0: new Uint8Array(32).fill(1), w1: new Uint8Array(32).fill(2) });
    assert.deepEqual(Object.keys(rec).sort(), ['L', 'w0']);
    assert.equal(rec.L.length, 65);
  });

  it('received points: wrong length, compressed, off-curve and identity are E_DECODE', () => {
    const G = p256.Point.BASE;
    const bad = [
      new Uint8Array(0),
      new Uint8Array(64),
      G.toBytes(true),
      Uint8Array.from([4, ...new Array(64).fill(0)]),
      Uint8Array.from([4, ...new Array(64).fill(0xff)]),
      Uint8Array.from([2, ...G.toBytes(false).subarray(1)]),
    ];
    for (const b of bad)
      assert.throws(
        () => decodeShare(b),
        (e) => e instanceof ProtocolError && e.code === 'E_DECODE',
      );
    assert.ok(decodeShare(G.toBytes(false)).equals(G));
  });

  it('scalars: zero and out-of-range explicit scalars are refused', () => {
    const w0 = new Uint8Array(32).fill(1);
    assert.throws(() => proverShare(w0, { scalar: new Uint8Array(32) }), RangeError);
    const n = P256_ORDER.toString(16).padStart(64, '0');
    assert.throws(() => proverShare(w0, { scalar: Uint8Array.from(Buffer.from(n, 'hex')) }), RangeError);
  });
});
