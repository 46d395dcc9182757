/**
 * RFC 9383 Appendix C, ciphersuite P256-SHA256-HKDF-SHA256-HMAC-SHA256: every intermediate value,
 * transcribed with the RFC's own line wrapping (each array joins to one hex string).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromHex, hex, utf8 } from '../../src/bytes.js';
import {
  checkConfirmation,
  computeVerifierRecord,
  M_COMPRESSED,
  N_COMPRESSED,
  proverFinish,
  proverShare,
  SPAKE2PLUS_POINTS,
  transcript,
  verifierRespond,
} from '../../src/pairing/spake2plus.js';

const j = (lines: string[]): string => lines.join('').replace(/^0x/, '');

// [Context=b'SPAKE2+-P256-SHA256-HKDF-SHA256-HMAC-SHA256 Test Vectors']
// [idProver=b'client']
// [idVerifier=b'server']
const V1 = {
  id: 'RFC9383-C-P256-SHA256-HKDF-SHA256-HMAC-SHA256',
  context: 'SPAKE2+-P256-SHA256-HKDF-SHA256-HMAC-SHA256 Test Vectors',
  idProver: 'client',
  idVerifier: 'server',
  w0: j(['0xbb8e1bbcf3c48f62c08db243652ae55d3e5586053fca77102994f23ad9549', '1b3']),
  w1: j(['0x7e945f34d78785b8a3ef44d0df5a1a97d6b3b460409a345ca7830387a74b1', 'dba']),
  L: j([
    '0x04eb7c9db3d9a9eb1f8adab81b5794c1f13ae3e225efbe91ea487425854c7f',
    'c00f00bfedcbd09b2400142d40a14f2064ef31dfaa903b91d1faea7093d835966efd',
  ]),
  x: j(['0xd1232c8e8693d02368976c174e2088851b8365d0d79a9eee709c6a05a2fad5', '39']),
  shareP: j([
    '0x04ef3bd051bf78a2234ec0df197f7828060fe9856503579bb17330090',
    '42c15c0c1de127727f418b5966afadfdd95a6e4591d171056b333dab97a79c7193e3',
    '41727',
  ]),
  y: j(['0x717a72348a182085109c8d3917d6c43d59b224dc6a7fc4f0483232fa6516d8', 'b3']),
  shareV: j([
    '0x04c0f65da0d11927bdf5d560c69e1d7d939a05b0e88291887d679fcad',
    'ea75810fb5cc1ca7494db39e82ff2f50665255d76173e09986ab46742c798a9a6843',
    '7b048',
  ]),
  Z: j([
    '0x04bbfce7dd7f277819c8da21544afb7964705569bdf12fb92aa388059408d5',
    '0091a0c5f1d3127f56813b5337f9e4e67e2ca633117a4fbd559946ab474356c41839',
  ]),
  V: j([
    '0x0458bf27c6bca011c9ce1930e8984a797a3419797b936629a5a937cf2f11c8',
    'b9514b82b993da8a46e664f23db7c01edc87faa530db01c2ee405230b18997f16b68',
  ]),
  TT: j([
    '0x38000000000000005350414b45322b2d503235362d5348413235362d484b4',
    '4462d5348413235362d484d41432d534841323536205465737420566563746f72730',
    '600000000000000636c69656e7406000000000000007365727665724100000000000',
    '00004886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12',
    'f5ff355163e43ce224e0b0e65ff02ac8e5c7be09419c785e0ca547d55a12e2d20410',
    '000000000000004d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f9',
    '8baa1292b4907d60aa6bfade45008a636337f5168c64d9bd36034808cd564490b1e6',
    '56edbe7410000000000000004ef3bd051bf78a2234ec0df197f7828060fe98565035',
    '79bb1733009042c15c0c1de127727f418b5966afadfdd95a6e4591d171056b333dab',
    '97a79c7193e341727410000000000000004c0f65da0d11927bdf5d560c69e1d7d939',
    'a05b0e88291887d679fcadea75810fb5cc1ca7494db39e82ff2f50665255d76173e0',
    '9986ab46742c798a9a68437b048410000000000000004bbfce7dd7f277819c8da215',
    '44afb7964705569bdf12fb92aa388059408d50091a0c5f1d3127f56813b5337f9e4e',
    '67e2ca633117a4fbd559946ab474356c4183941000000000000000458bf27c6bca01',
    '1c9ce1930e8984a797a3419797b936629a5a937cf2f11c8b9514b82b993da8a46e66',
    '4f23db7c01edc87faa530db01c2ee405230b18997f16b682000000000000000bb8e1',
    'bbcf3c48f62c08db243652ae55d3e5586053fca77102994f23ad95491b3',
  ]),
  K_main: j(['0x4c59e1ccf2cfb961aa31bd9434478a1089b56cd11542f53d3576fb6c2', 'a438a29']),
  K_confirmP: j(['0x871ae3f7b78445e34438fb284504240239031c39d80ac23eb5ab9', 'be5ad6db58a']),
  K_confirmV: j(['0xccd53c7c1fa37b64a462b40db8be101cedcf838950162902054e6', '44b400f1680']),
  // HMAC(K_confirmP, shareV) = confirmP
  confirmP: j(['0x926cc713504b9b4d76c9162ded04b5493e89109', 'f6d89462cd33adc46fda27527']),
  // HMAC(K_confirmV, shareP) = confirmV
  confirmV: j(['0x9747bcc4f8fe9f63defee53ac9b07876d907d55', '047e6ff2def2e7529089d3e68']),
  K_shared: j(['0x0c5f8ccd1413423a54f6c1fb26ff01534a87f893779c6e68666d772', 'bfd91f3e7']),
};

// RFC 9383 §4, P256.
const M_HEX = '02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f';
const N_HEX = '03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49';

describe('RFC 9383 Appendix C test vectors', () => {
  const v = V1;
  const ctx = { context: utf8(v.context), idProver: utf8(v.idProver), idVerifier: utf8(v.idVerifier) };
  const secrets = { w0: fromHex(v.w0), w1: fromHex(v.w1) };

  it('M and N constants (RFC 9383 §4)', () => {
    assert.equal(hex(M_COMPRESSED), M_HEX, 'RFC9383-4-P256-M');
    assert.equal(hex(N_COMPRESSED), N_HEX, 'RFC9383-4-P256-N');
  });

  it(`${v.id}: L = w1·P`, () => {
    const rec = computeVerifierRecord(secrets);
    assert.equal(hex(rec.L), v.L, `${v.id} L`);
    assert.equal(hex(rec.w0), v.w0, `${v.id} w0`);
  });

  it(`${v.id}: every intermediate value, both sides`, async () => {
    const p1 = proverShare(secrets.w0, { scalar: fromHex(v.x) });
    assert.equal(hex(p1.shareP), v.shareP, `${v.id} shareP`);

    const rec = computeVerifierRecord(secrets);
    const ver = await verifierRespond(ctx, rec, p1.shareP, { scalar: fromHex(v.y) });
    const pro = await proverFinish(ctx, secrets, p1.x, p1.shareP, ver.shareV);

    for (const [side, k] of [
      ['verifier', ver],
      ['prover', pro],
    ] as const) {
      const m = (f: string) => `${v.id} ${side} ${f}`;
      assert.equal(hex(k.shareP), v.shareP, m('shareP'));
      assert.equal(hex(k.shareV), v.shareV, m('shareV'));
      assert.equal(hex(k.Z), v.Z, m('Z'));
      assert.equal(hex(k.V), v.V, m('V'));
      assert.equal(hex(k.TT), v.TT, m('TT'));
      assert.equal(k.TT.length, 570, m('TT length'));
      assert.equal(hex(k.K_main), v.K_main, m('K_main'));
      assert.equal(hex(k.K_confirmP), v.K_confirmP, m('K_confirmP'));
      assert.equal(hex(k.K_confirmV), v.K_confirmV, m('K_confirmV'));
      assert.equal(hex(k.confirmP), v.confirmP, m('confirmP = HMAC(K_confirmP, shareV)'));
      assert.equal(hex(k.confirmV), v.confirmV, m('confirmV = HMAC(K_confirmV, shareP)'));
      assert.equal(hex(k.K_shared), v.K_shared, m('K_shared'));
    }
    checkConfirmation(fromHex(v.confirmV), pro.confirmV);
    checkConfirmation(fromHex(v.confirmP), ver.confirmP);
  });

  it(`${v.id}: TT assembled from the vector's own fields`, () => {
    const tt = transcript(
      ctx,
      fromHex(v.shareP),
      fromHex(v.shareV),
      fromHex(v.Z),
      fromHex(v.V),
      fromHex(v.w0),
    );
    assert.equal(hex(tt), v.TT, `${v.id} TT`);
    assert.equal(hex(SPAKE2PLUS_POINTS.M).slice(0, 4), '0488', `${v.id} M uncompressed in TT`);
  });
});
