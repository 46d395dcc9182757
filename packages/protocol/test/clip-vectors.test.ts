/**
 * Fixed test vectors of the sealed-blob format (`src/clip/`), printed in docs/protocol.md
 * ("Clips, snapshots and event records: sealed blobs"): fixed keys, and every random byte from a
 * fixed xorshift source (`fixedEnv(2026)`), so the whole blob is one fixed hex string. The STREAM
 * layer is also checked against node:crypto (HKDF and AES-256-GCM), an independent implementation.
 */
import assert from 'node:assert/strict';
import { createDecipheriv, createHash, hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { fromHex, hex } from '../src/bytes.js';
import { canonicalize } from '../src/canonical.js';
import {
  chunkNonce,
  decodeClipHeader,
  derivePayloadKey,
  openBlob,
  type ReaderKey,
  sealBlob,
  signReaderKey,
} from '../src/clip/index.js';
import { fixedEnv } from '../src/crypto/env.js';
import { WebCryptoSigner, type X25519KeyPair } from '../src/crypto/primitives.js';
import { ProtocolError } from '../src/errors.js';
import { x25519KeyPairFromScalar } from '../src/still.js';

/** The vector's blob (format v2): magic, header length, canonical header, two frames. */
export const VECTOR_BLOB_HEX = [
  '484342020000033b7b226373223a36342c22646576223a22686469645f7733687572686976326c726e35677574636a35',
  '65736d3535326d6d7a646a3365696670347a3269222c226467223a223945547a417332714e566e6e52464a42464f664c',
  '684a676f5773593343345f4471785a79597a4c385a6f49222c22646b223a2268646b5f726b656f68786c756268797a6c',
  '376b73336d77747a6f73356f6c66676f636e3764776b62656737746f736561646e61706e356f677061696d7a6d222c22',
  '6872223a3437323232322c226964223a2246413843497a316d2d35685268423863593459353741222c226b696e64223a',
  '22636c6970222c226c656e223a3130302c226d223a225034523763427558524b7251756c725536695279574d54556436',
  '687a46414a394a6a627371524451706c3661585455654c645a71356e516a6d656f3733324e335856495736377a413850',
  '7668337053447255726b565835454c6934222c226e223a322c2272223a5b7b2265223a223146666a6a6130473355556f',
  '62556166564738425475345279355f4a6932715a5f32523072355668455559222c226b223a2268756b5f716534786f64',
  '766970756c76367676646b72746d677464367a746679336375727774786470697335367968767864366a776f6b6e7633',
  '34753561222c2273223a22466c704f5f676446517076763333315455736f6f615a2d5a34354672563632677a3979636e',
  '6b616d3734426d6d7a6d507849636968745754367169434d5f6c4a5f3753547a5642456a614f6d617450384738757444',
  '41222c2277223a2257426c3949556b35693342724f427846496a58646634455445485f68555643365377424d58546576',
  '7766686e51636f493649693756644b567052385355426d79222c2278223a22653036516d37355f5f6b54455a61496741',
  '3331676a754e596c394d652d584c776633534a4c4c443350784d227d5d2c2273616c74223a22774e586c555447697267',
  '5f4e346663336f7031596677222c22736967223a2243515473704b4c445452553474316d434d6e5651706b565752562d',
  '577a6c6745515a6a367639682d666c6e5a4d33717071416e7864347262417156754541654b5f61466879744631395f47',
  '4431533355796f344c4341222c2276223a327d00000050f937f23f97f97cb27060d0755b0aa567207f6ef1925b9ac130',
  '1a67f8b0587a33363fc52c602a13f7efe2d854c89dfa9f795ff51b86bbb79a849c7b4aa25fd3e0b8be035506a418a588',
  '17422ff4d9d686000000344f484061afd7e0053a67ab3edd5f69d14c6aa1a63b08eef84d619f1ae4e68abd2ca55e0f71',
  'd9e2c792629d290579acd40116e401',
].join('');
export const VECTOR_BLOB_SHA256 = '615a914d6c14d2ddb88e43dbbecc946e5c7b34bea46f3d3d1f840f57cc091301';

/** The same inputs sealed by format v1 (camera and times in the clear): refused, another version. */
const V1_BLOB_HEX = [
  '48434201000003007b2263616d223a22646f6f72222c226373223a36342c22646576223a22686469645f773368757268',
  '6976326c726e35677574636a3565736d3535326d6d7a646a3365696670347a3269222c226467223a223945547a417332',
  '714e566e6e52464a42464f664c684a676f5773593343345f4471785a79597a4c385a6f49222c22646b223a2268646b5f',
  '726b656f68786c756268797a6c376b73336d77747a6f73356f6c66676f636e3764776b62656737746f736561646e6170',
  '6e356f677061696d7a6d222c226964223a2246413843497a316d2d35685268423863593459353741222c226b696e6422',
  '3a22636c6970222c226c656e223a3130302c226e223a322c2272223a5b7b2265223a223146666a6a6130473355556f62',
  '556166564738425475345279355f4a6932715a5f32523072355668455559222c226b223a2268756b5f716534786f6476',
  '6970756c76367676646b72746d677464367a746679336375727774786470697335367968767864366a776f6b6e763334',
  '753561222c2273223a22466c704f5f676446517076763333315455736f6f615a2d5a34354672563632677a3979636e6b',
  '616d3734426d6d7a6d507849636968745754367169434d5f6c4a5f3753547a5642456a614f6d61745038473875744441',
  '222c2277223a224b526e365948516a6e4958574d745849566d717747714f7a44704e4976737943484d63625877734874',
  '67596f5346767a32644130325f2d467375464362654b44222c2278223a22653036516d37355f5f6b54455a6149674133',
  '31676a754e596c394d652d584c776633534a4c4c443350784d227d5d2c2273616c74223a22774e586c5554476972675f',
  '4e346663336f7031596677222c22736967223a225256736d4b7177664451626e75333344766948613459524266664735',
  '525a636a6b4c74753458706f5135326b624d74756a34775945392d5638707748566758564b456541727043304d616a62',
  '664a5659355132594367222c227430223a313730303030303030303030302c227431223a313730303030303030353030',
  '302c2276223a317d00000050f937f23f97f97cb27060d0755b0aa567207f6ef1925b9ac1301a67f8b0587a33363fc52c',
  '602a13f7efe2d854c89dfa9f795ff51b86bbb79a849c7b4aa25fd3e0b8be035506a418a58817422ff4d9d68600000034',
  '4f484061afd7e0053a67ab3edd5f69d14c6aa1a63b08eef84d619f1ae4e68abd2ca55e0f71d9e2c792629d290579acd4',
  '0116e401',
].join('');

/** metaKey = HKDF-SHA-256(contentKey, salt, "hearth/v1/clip/meta"). */
const VECTOR_META_KEY = 'f18dd4b671506ed4c1e257625b2fde0f36dff8a6105a54e5135fa04ec53d2cad';

let device: WebCryptoSigner;
let viewer: WebCryptoSigner;
let x: X25519KeyPair;
let rk: ReaderKey;
const plaintext = Uint8Array.from({ length: 100 }, (_, i) => i);

before(async () => {
  device = await WebCryptoSigner.fromSeed(new Uint8Array(32).fill(1));
  viewer = await WebCryptoSigner.fromSeed(new Uint8Array(32).fill(2));
  x = await x25519KeyPairFromScalar(new Uint8Array(32).fill(0x11));
  rk = await signReaderKey(viewer, x.publicKey);
});

const seal = () =>
  sealBlob({
    device,
    kind: 'clip',
    camera: 'door',
    t0: 1_700_000_000_000,
    t1: 1_700_000_005_000,
    recipients: [rk],
    maxChunkBytes: 64,
    plaintext,
    env: fixedEnv(2026),
  });

describe('clip test vectors', () => {
  it('the inputs: reader key, and the random bytes in the order the sealer draws them', async () => {
    assert.equal(hex(x.publicKey), '7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13');
    assert.equal(
      hex(rk.signature),
      '165a4efe0745429befdf7d5352ca28699f99e3916b57ada0cfdc9c9e46a6ef80669b398fc4872286d593eaa88233f949ffb493cd50448da3a66ad3fc1bcbad0c',
    );
    const e = fixedEnv(2026);
    assert.equal(hex(e.random(16)), '140f02233d66fb9851841f1c638639ec'); // blob id
    assert.equal(hex(e.random(32)), 'af300a29c1bd08097cc9d8a4c9c01f1fd19c84ff8ec7c804e57d81242503d14a'); // content key
    assert.equal(hex(e.random(16)), 'c0d5e55131a2ae0fcde1f737a29d587f'); // salt
    assert.equal(hex(e.random(32)), '0d1a33689728d7855eb713c30f6ae33b566c8d88939a7056df2005f5e1812b2c'); // HPKE ikmE
    assert.equal(
      hex(
        await derivePayloadKey(
          fromHex('af300a29c1bd08097cc9d8a4c9c01f1fd19c84ff8ec7c804e57d81242503d14a'),
          fromHex('c0d5e55131a2ae0fcde1f737a29d587f'),
        ),
      ),
      '5421e390ce089597aded4fb71a860cc27fca1c9607620d625819edd475ec244a',
    );
    assert.equal(hex(chunkNonce(0, false)), '000000000000000000000000');
    assert.equal(hex(chunkNonce(1, true)), '000000000000000000000101');
  });

  it('the blob is byte for byte the vector, and opens to the plaintext', async () => {
    const { blob } = await seal();
    assert.equal(hex(blob), VECTOR_BLOB_HEX);
    assert.equal(createHash('sha256').update(blob).digest('hex'), VECTOR_BLOB_SHA256);
    const got = await openBlob(fromHex(VECTOR_BLOB_HEX), {
      pinnedDeviceKey: device.publicKey,
      reader: { userKey: rk.userKey, x25519: x },
    });
    assert.deepEqual(got.plaintext, plaintext);
    assert.deepEqual(got.meta, { cam: 'door', t0: 1_700_000_000_000, t1: 1_700_000_005_000 });
  });

  it('node:crypto agrees: HKDF payload key, AES-256-GCM chunks with counter‖flag nonces, chunk digest', () => {
    const blob = fromHex(VECTOR_BLOB_HEX);
    const { header, size } = decodeClipHeader(blob);
    const salt = Buffer.from(header.salt, 'base64url');
    const ck = Buffer.from('af300a29c1bd08097cc9d8a4c9c01f1fd19c84ff8ec7c804e57d81242503d14a', 'hex');
    const pk = Buffer.from(hkdfSync('sha256', ck, salt, 'hearth/v1/clip/payload', 32));
    assert.equal(pk.toString('hex'), '5421e390ce089597aded4fb71a860cc27fca1c9607620d625819edd475ec244a');
    let o = size;
    const pts: Buffer[] = [];
    const hashes: Buffer[] = [];
    for (let i = 0; i < header.n; i++) {
      const len = new DataView(blob.buffer, blob.byteOffset + o, 4).getUint32(0);
      const ct = blob.subarray(o + 4, o + 4 + len);
      o += 4 + len;
      hashes.push(createHash('sha256').update(ct).digest());
      const nonce = Buffer.alloc(12);
      nonce.writeUInt32BE(i, 7);
      nonce[11] = i === header.n - 1 ? 1 : 0;
      const d = createDecipheriv('aes-256-gcm', pk, nonce);
      d.setAuthTag(ct.subarray(ct.length - 16));
      pts.push(d.update(ct.subarray(0, ct.length - 16)), d.final());
    }
    assert.equal(o, blob.length);
    // The metadata box: HKDF "hearth/v1/clip/meta", zero nonce, AAD = the clear core.
    const mk = Buffer.from(hkdfSync('sha256', ck, salt, 'hearth/v1/clip/meta', 32));
    assert.equal(mk.toString('hex'), VECTOR_META_KEY);
    const { m, r: _r, sig: _s, ...clear } = header;
    const box = Buffer.from(m, 'base64url');
    const md = createDecipheriv('aes-256-gcm', mk, Buffer.alloc(12));
    md.setAAD(Buffer.from(canonicalize(clear)));
    md.setAuthTag(box.subarray(box.length - 16));
    const meta = Buffer.concat([md.update(box.subarray(0, box.length - 16)), md.final()]).toString();
    assert.equal(meta, '{"cam":"door","t0":1700000000000,"t1":1700000005000}');
    assert.equal(header.hr, Math.floor(1_700_000_000_000 / 3_600_000));
    assert.deepEqual(new Uint8Array(Buffer.concat(pts)), plaintext);
    const dg = createHash('sha256').update('hearth/v1/clip/chunks').update(Buffer.concat(hashes)).digest();
    assert.equal(dg.toString('base64url'), header.dg);
  });

  it('a format v1 blob of the same inputs is refused: E_CLIP_HEADER, another version', async () => {
    const v1 = fromHex(V1_BLOB_HEX);
    assert.deepEqual([...v1.subarray(0, 4)], [0x48, 0x43, 0x42, 0x01]);
    const isOld = (e: unknown) =>
      e instanceof ProtocolError && e.code === 'E_CLIP_HEADER' && /another version/.test(e.message);
    assert.throws(() => decodeClipHeader(v1), isOld);
    await assert.rejects(
      openBlob(v1, { pinnedDeviceKey: device.publicKey, reader: { userKey: rk.userKey, x25519: x } }),
      isOld,
    );
  });

  it('docs/protocol.md prints the same vector', () => {
    const md = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
    assert.ok(md.includes(VECTOR_BLOB_SHA256), 'the blob SHA-256');
    const blob = fromHex(VECTOR_BLOB_HEX);
    const { size } = decodeClipHeader(blob);
    assert.ok(md.includes(new TextDecoder().decode(blob.subarray(8, size))), 'the header JSON');
    assert.ok(md.includes(hex(blob.subarray(size))), 'the frames');
    assert.ok(md.includes(VECTOR_META_KEY), 'the metadata key');
  });
});
