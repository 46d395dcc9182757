/**
 * Identities (S3, F4, F5), canonical JSON, signed envelopes with domain separation, and the replay
 * cache (S11).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { z } from 'zod';
import { b64u, fromB32 } from '../src/bytes.js';
import { canonicalize, parseJson } from '../src/canonical.js';
import { decodeEnvelope, encodeEnvelope, MAX_ENVELOPE_BYTES, seal, verify } from '../src/envelope.js';
import { type HearthError, InternalError, ProtocolError } from '../src/errors.js';
import {
  decodeId,
  deviceIdFromKey,
  deviceIdMatches,
  encodeId,
  ID_KINDS,
  MAX_ID_TEXT,
  parseId,
  shortId,
} from '../src/ids.js';
import { MemoryReplayCache } from '../src/replay.js';
import { keys } from './fixtures.js';

type K = Awaited<ReturnType<typeof keys>>;
let k: K;
before(async () => {
  k = await keys();
});

const bad = (code: string) => (e: unknown) => e instanceof ProtocolError && e.code === code;

describe('ids', () => {
  it('device ID: hdid_ + 39 base32 chars, 160 bits of SHA-256 of the key, 32-bit checksum', () => {
    const id = deviceIdFromKey(k.device.publicKey);
    assert.match(id, /^hdid_[a-z2-7]{39}$/);
    assert.equal(decodeId('deviceId', id).length * 8, 160);
    assert.equal(fromB32(id.slice(5)).length, 24);
    assert.ok(deviceIdMatches(id, k.device.publicKey));
    assert.ok(!deviceIdMatches(id, k.otherDevice.publicKey));
    assert.equal(shortId(id), id.slice(0, 13));
  });

  it('key texts: hdk_ / huk_ / hsk_ + 58 chars; each round-trips', () => {
    for (const kind of ['deviceKey', 'userKey', 'serverKey'] as const) {
      const t = encodeId(kind, k.owner.publicKey);
      assert.match(t, new RegExp(`^${ID_KINDS[kind].prefix}_[a-z2-7]{58}$`));
      assert.ok(t.length <= MAX_ID_TEXT);
      assert.deepEqual(decodeId(kind, t), k.owner.publicKey);
      assert.equal(parseId(kind, t), t);
    }
  });

  it('a key of one kind cannot be used as another (prefix and checksum both differ)', () => {
    const huk = encodeId('userKey', k.owner.publicKey);
    assert.throws(() => decodeId('deviceKey', huk), bad('E_BAD_ID'));
    assert.throws(() => decodeId('deviceKey', `hdk_${huk.slice(4)}`), bad('E_BAD_ID'));
  });

  it('typos, case changes, truncation, non-strings and overlong text: E_BAD_ID', () => {
    const id = deviceIdFromKey(k.device.publicKey);
    const typo = `${id.slice(0, 10)}${id[10] === 'a' ? 'b' : 'a'}${id.slice(11)}`;
    for (const t of [
      typo,
      id.toUpperCase(),
      `HDID_${id.slice(5)}`,
      id.slice(0, -1),
      `${id}a`,
      '',
      'hdid_',
      42,
      null,
      `hdid_${'a'.repeat(80)}`,
    ]) {
      assert.throws(() => decodeId('deviceId', t), bad('E_BAD_ID'), String(t));
    }
  });
});

describe('canonical JSON', () => {
  it('sorts keys by UTF-16 code units, drops undefined, no whitespace, JCS string escapes', () => {
    assert.equal(
      canonicalize({ b: 1, a: [true, null, 'é\n"'], c: undefined, A: {} }),
      '{"A":{},"a":[true,null,"é\\n\\""],"b":1}',
    );
    assert.equal(canonicalize({ '\u20ac': 1, '\ud83d\ude00': 2, z: 3 }), '{"z":3,"€":1,"😀":2}');
  });

  it('refuses floats, unsafe integers, non-plain objects (InternalError: our bug)', () => {
    for (const v of [1.5, Number.NaN, 2 ** 53, new Date(0), new Map(), () => 1, 1n])
      assert.throws(
        () => canonicalize(v),
        (e) => e instanceof InternalError,
      );
  });

  it('parseJson: size limit before parsing, strict UTF-8, typed errors', () => {
    assert.deepEqual(parseJson('{"a":1}', 7), { a: 1 });
    assert.throws(() => parseJson('{"a":1} ', 7), bad('E_TOO_LARGE'));
    assert.throws(() => parseJson(new Uint8Array(8), 7), bad('E_TOO_LARGE'));
    assert.throws(() => parseJson(new Uint8Array([0x22, 0xff, 0x22]), 7), bad('E_DECODE'));
    assert.throws(() => parseJson('{', 7), bad('E_DECODE'));
    assert.throws(() => parseJson(42 as unknown as string, 7), bad('E_DECODE'));
  });
});

describe('envelopes', () => {
  const any = z.record(z.string(), z.unknown());

  it('seal/verify round trip: signer, body, nonce of 16 bytes', async () => {
    const e = await seal(k.owner, 'user', 'test', { x: 1 }, k.env);
    assert.equal(e.n.length, 22);
    assert.equal(e.s.length, 86);
    const r = await verify(e, { purpose: 'test', signerKind: 'user', body: any, now: e.t });
    assert.ok(r.ok);
    assert.deepEqual(r.body, { x: 1 });
    assert.deepEqual(r.signer, k.owner.publicKey);
  });

  it('domain separation: a signature for one purpose does not verify under another', async () => {
    const e = await seal(k.owner, 'user', 'test', { x: 1 }, k.env);
    const relabelled = { ...e, p: 'grant' as const };
    const r = await verify(relabelled, { purpose: 'grant', signerKind: 'user', body: any, now: e.t });
    assert.ok(!r.ok && r.error.code === 'E_BAD_SIGNATURE');
    const r2 = await verify(e, { purpose: 'grant', signerKind: 'user', body: any, now: e.t });
    assert.ok(!r2.ok && r2.error.code === 'E_BAD_BINDING');
  });

  it('the signer key is signed: re-attributing a signature to another key fails', async () => {
    const e = await seal(k.owner, 'user', 'test', { x: 1 }, k.env);
    const r = await verify(
      { ...e, k: encodeId('userKey', k.member.publicKey) },
      { purpose: 'test', signerKind: 'user', body: any, now: e.t },
    );
    assert.ok(!r.ok && r.error.code === 'E_BAD_SIGNATURE');
    const r2 = await verify(e, {
      purpose: 'test',
      signerKind: 'user',
      expectedSigner: k.member.publicKey,
      body: any,
      now: e.t,
    });
    assert.ok(!r2.ok && r2.error.code === 'E_WRONG_SIGNER');
  });

  it('decodeEnvelope: strict schema and size limit (text, bytes and objects)', async () => {
    const e = await seal(k.owner, 'user', 'test', { x: 1 }, k.env);
    assert.deepEqual(decodeEnvelope(encodeEnvelope(e)), e);
    assert.throws(() => decodeEnvelope({ ...e, extra: 1 }), bad('E_SCHEMA'));
    assert.throws(() => decodeEnvelope({ ...e, v: 2 }), bad('E_SCHEMA'));
    assert.throws(() => decodeEnvelope({ ...e, p: 'other' }), bad('E_SCHEMA'));
    assert.throws(() => decodeEnvelope({ ...e, t: 1.5 }), bad('E_SCHEMA'));
    assert.throws(() => decodeEnvelope({ ...e, s: e.s.slice(1) }), bad('E_SCHEMA'));
    assert.throws(() => decodeEnvelope(' '.repeat(MAX_ENVELOPE_BYTES + 1)), bad('E_TOO_LARGE'));
    // Regression (found by fuzz-decoders): a body outside canonical JSON was an untyped InternalError.
    assert.throws(() => decodeEnvelope({ ...e, b: { x: 1.5 } }), bad('E_SCHEMA'));
    assert.throws(() => decodeEnvelope(JSON.stringify({ ...e, b: { x: 2 ** 53 } })), bad('E_SCHEMA'));
    assert.throws(
      () => decodeEnvelope({ ...e, b: { big: 'x'.repeat(MAX_ENVELOPE_BYTES) } }),
      bad('E_TOO_LARGE'),
    );
  });

  it('a body with a float fails verification as a ProtocolError (not canonical), never a throw', async () => {
    const e = await seal(k.owner, 'user', 'test', { x: 1 }, k.env);
    const r = await verify(
      { ...e, b: { x: 1.5 } },
      { purpose: 'test', signerKind: 'user', body: any, now: e.t },
    );
    assert.ok(!r.ok && r.error.code === 'E_SCHEMA');
    const r2 = await verify(
      { ...e, s: '*'.repeat(86) },
      { purpose: 'test', signerKind: 'user', body: any, now: e.t },
    );
    assert.ok(!r2.ok && (r2.error as HearthError).code === 'E_DECODE');
  });
});

describe('replay cache', () => {
  it('fresh, then replay; distinct nonces are independent', () => {
    const c = new MemoryReplayCache(10, 1000);
    assert.equal(c.check('k/n1', 100, 100), 'fresh');
    assert.equal(c.check('k/n1', 100, 100), 'replay');
    assert.equal(c.check('k/n2', 100, 100), 'fresh');
  });

  it('prunes entries received longer ago than the window (by receipt time)', () => {
    const c = new MemoryReplayCache(100, 1000);
    c.check('a', 0, 0);
    c.check('b', 5000, 5000);
    assert.equal(c.size, 1);
  });

  it('envelope verification maps a stale verdict to E_STALE and a replay to E_REPLAY', async () => {
    const any = z.record(z.string(), z.unknown());
    // A window of 1 ms: once the receiver's clock moved on, the cache's mark refuses `a`.
    const replay = new MemoryReplayCache(1000, 1);
    const a = await seal(k.owner, 'user', 'test', {}, k.env);
    k.env.advance(5);
    const b = await seal(k.owner, 'user', 'test', {}, k.env);
    const rb = await verify(b, { purpose: 'test', signerKind: 'user', body: any, now: b.t, replay });
    assert.ok(rb.ok);
    const ra = await verify(a, { purpose: 'test', signerKind: 'user', body: any, now: b.t, replay });
    assert.ok(!ra.ok && ra.error.code === 'E_STALE');
    const rb2 = await verify(b, { purpose: 'test', signerKind: 'user', body: any, now: b.t, replay });
    assert.ok(!rb2.ok && rb2.error.code === 'E_REPLAY');
    assert.equal(b64u(new Uint8Array(0)), '');
  });
});
