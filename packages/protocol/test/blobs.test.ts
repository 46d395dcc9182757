/** Blob tickets and request tokens (protocol `blobs.ts`): round trips, refusals, and fuzzed decoders. */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BLOB_REQUEST_MAX_SKEW_MS,
  type BlobTicket,
  blobHour,
  buildBlobRequestToken,
  decodeBlobErrorBody,
  decodeBlobListing,
  decodeBlobRequestToken,
  decodeBlobTicket,
  decodeBlobTicketHeader,
  decodeBlobUsage,
  EMPTY_BODY_SHA256,
  encodeBlobTicket,
  encodeBlobTicketHeader,
  isBlobId,
  newBlobId,
  signBlobTicket,
  verifyBlobRequestToken,
  verifyBlobTicket,
} from '../src/blobs.js';
import { b64u, utf8 } from '../src/bytes.js';
import { canonicalize } from '../src/canonical.js';
import { sha256, WebCryptoSigner } from '../src/crypto/primitives.js';
import { HearthError, ProtocolError, VerificationError } from '../src/errors.js';
import { deviceIdFromKey, encodeId } from '../src/ids.js';
import { editsArb, mutate, RUNS, textInputs, valueOrProtocolError } from './fuzz-helpers.js';

const FUZZ = Math.min(RUNS, 20_000);

async function rejects(p: Promise<unknown>, code: string, cls: typeof HearthError = HearthError) {
  await assert.rejects(p, (e: unknown) => e instanceof cls && (e as HearthError).code === code);
}

describe('blob IDs', () => {
  it('exactly the canonical b64u of 16 bytes', () => {
    const id = newBlobId();
    assert.equal(id.length, 22);
    assert.ok(isBlobId(id));
    assert.ok(isBlobId('AAAAAAAAAAAAAAAAAAAAAA'));
    for (const bad of [
      'AAAAAAAAAAAAAAAAAAAAAB',
      'A'.repeat(21),
      'A'.repeat(23),
      '..AAAAAAAAAAAAAAAAAAAA',
      '/AAAAAAAAAAAAAAAAAAAAA',
      1,
      null,
    ])
      assert.equal(isBlobId(bad), false, String(bad));
    assert.equal(blobHour(3_600_000 * 5 + 1), 5);
  });
});

describe('blob tickets', () => {
  let dev: WebCryptoSigner;
  let other: WebCryptoSigner;
  let t: BlobTicket;
  const reader = encodeId('userKey', new Uint8Array(32).fill(7));
  before(async () => {
    dev = await WebCryptoSigner.generate();
    other = await WebCryptoSigner.generate();
    t = await signBlobTicket(dev, {
      id: newBlobId(),
      kind: 'clip',
      hr: 490_000,
      size: 1234,
      sha256: await sha256(utf8('x')),
      readers: [reader],
      owners: [reader],
      seq: 3,
    });
  });

  it('sign, encode, decode, verify', async () => {
    assert.equal(t.dev, deviceIdFromKey(dev.publicKey));
    const text = encodeBlobTicket(t);
    assert.deepEqual(decodeBlobTicket(text), t);
    assert.deepEqual(decodeBlobTicketHeader(encodeBlobTicketHeader(t)), t);
    await verifyBlobTicket(decodeBlobTicket(text), t.dev);
  });

  it('a ticket of another device claimed for this one: E_BAD_BINDING; a changed field: E_BAD_SIGNATURE', async () => {
    const o = await signBlobTicket(other, {
      id: t.id,
      kind: 'clip',
      hr: 1,
      size: 1,
      sha256: new Uint8Array(32),
      readers: [],
      owners: [],
      seq: 1,
    });
    await rejects(verifyBlobTicket({ ...o, dev: t.dev }), 'E_BAD_BINDING', VerificationError);
    await rejects(verifyBlobTicket(o, t.dev), 'E_BAD_BINDING', VerificationError);
    for (const change of [{ seq: 4 }, { readers: [] }, { size: 1 }, { hr: 1 }, { kind: 'event' as const }])
      await rejects(verifyBlobTicket({ ...t, ...change }), 'E_BAD_SIGNATURE', VerificationError);
  });

  it('refuses non-canonical text, duplicates, unknown fields, bad keys', () => {
    const text = encodeBlobTicket(t);
    const spaced = text.replace(',', ', ');
    assert.throws(
      () => decodeBlobTicket(spaced),
      (e: unknown) => e instanceof ProtocolError && e.code === 'E_SCHEMA',
    );
    const obj = JSON.parse(text);
    assert.throws(() => decodeBlobTicket(canonicalize({ ...obj, x: 1 })), /unrecognized_keys/);
    assert.throws(() => decodeBlobTicket(canonicalize({ ...obj, readers: [reader, reader] })), ProtocolError);
    assert.throws(
      () => decodeBlobTicket(canonicalize({ ...obj, readers: ['huk_nope'] })),
      (e: unknown) => (e as ProtocolError).code === 'E_BAD_ID',
    );
    assert.throws(
      () => decodeBlobTicket(canonicalize({ ...obj, dk: obj.dev })),
      (e: unknown) => (e as ProtocolError).code === 'E_BAD_ID',
    );
    assert.throws(
      () => decodeBlobTicket('x'.repeat(9000)),
      (e: unknown) => (e as ProtocolError).code === 'E_TOO_LARGE',
    );
  });

  it(`fuzz: ${FUZZ} ticket texts and headers give a ticket or a ProtocolError`, () => {
    const valid = fc.constant(encodeBlobTicket(t));
    fc.assert(
      fc.property(textInputs(valid), (input) => {
        valueOrProtocolError(() => decodeBlobTicket(input));
      }),
      { numRuns: FUZZ },
    );
    const hdr = encodeBlobTicketHeader(t);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.tuple(fc.constant(hdr), editsArb).map(([s, e]) => mutate(s, e)),
        ),
        (input) => {
          valueOrProtocolError(() => decodeBlobTicketHeader(input));
        },
      ),
      { numRuns: FUZZ },
    );
    // Structured mutations of the object form.
    const base = JSON.parse(encodeBlobTicket(t));
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(base)), fc.jsonValue(), (k, v) => {
        valueOrProtocolError(() => decodeBlobTicket({ ...base, [k]: v }));
      }),
      { numRuns: FUZZ },
    );
  });
});

describe('blob request tokens', () => {
  let dev: WebCryptoSigner;
  let user: WebCryptoSigner;
  const now = 1_750_000_000_000;
  const path = '/v1/blobs/hdid_x?kind=event&from=1&to=2';
  let tok: string;
  before(async () => {
    dev = await WebCryptoSigner.generate();
    user = await WebCryptoSigner.generate();
    tok = await buildBlobRequestToken(user, 'user', {
      method: 'GET',
      path,
      bodySha256: await sha256(new Uint8Array()),
      ts: now,
      nonce: new Uint8Array(16).fill(1),
    });
  });

  it('round trip: signer, nonce, body hash', async () => {
    const v = await verifyBlobRequestToken(tok, { method: 'GET', path, now: now + 1000 });
    assert.equal(v.kind, 'user');
    assert.equal(v.keyText, encodeId('userKey', user.publicKey));
    assert.deepEqual(v.key, user.publicKey);
    assert.equal(v.nonce, b64u(new Uint8Array(16).fill(1)));
    assert.equal(v.bh, EMPTY_BODY_SHA256);
    const d = await buildBlobRequestToken(dev, 'device', {
      method: 'PUT',
      path: '/v1/blobs/a/b',
      bodySha256: new Uint8Array(32),
      ts: now,
      nonce: new Uint8Array(16),
    });
    assert.equal(
      (await verifyBlobRequestToken(d, { method: 'PUT', path: '/v1/blobs/a/b', now })).kind,
      'device',
    );
  });

  it('refusals: other method or path (E_BAD_BINDING), other key (E_BAD_SIGNATURE), stale or future (E_STALE)', async () => {
    await rejects(verifyBlobRequestToken(tok, { method: 'DELETE', path, now }), 'E_BAD_BINDING');
    await rejects(
      verifyBlobRequestToken(tok, { method: 'GET', path: '/v1/blobs/hdid_x', now }),
      'E_BAD_BINDING',
    );
    const [json, sig] = tok.split('.') as [string, string];
    const claims = JSON.parse(
      new TextDecoder().decode(
        Uint8Array.from(atob(json.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0)),
      ),
    );
    const forged = `${b64u(utf8(canonicalize({ ...claims, k: encodeId('userKey', dev.publicKey) })))}.${sig}`;
    await rejects(verifyBlobRequestToken(forged, { method: 'GET', path, now }), 'E_BAD_SIGNATURE');
    const changedTs = `${b64u(utf8(canonicalize({ ...claims, ts: now + 1 })))}.${sig}`;
    await rejects(verifyBlobRequestToken(changedTs, { method: 'GET', path, now }), 'E_BAD_SIGNATURE');
    await rejects(
      verifyBlobRequestToken(tok, { method: 'GET', path, now: now + BLOB_REQUEST_MAX_SKEW_MS + 1 }),
      'E_STALE',
    );
    await rejects(
      verifyBlobRequestToken(tok, { method: 'GET', path, now: now - BLOB_REQUEST_MAX_SKEW_MS - 1 }),
      'E_STALE',
    );
    await verifyBlobRequestToken(tok, { method: 'GET', path, now: now + BLOB_REQUEST_MAX_SKEW_MS });
    // Non-canonical JSON with the same meaning is refused before any signature work.
    const spaced = `${b64u(utf8(JSON.stringify(claims, null, 1)))}.${sig}`;
    assert.throws(() => decodeBlobRequestToken(spaced), ProtocolError);
  });

  it(`fuzz: ${FUZZ} tokens give a decoded token or a ProtocolError; verify raises only typed errors`, async () => {
    const [json, sig] = tok.split('.') as [string, string];
    const arb = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.tuple(fc.constant(tok), editsArb).map(([s, e]) => mutate(s, e)),
      fc.tuple(fc.constant(json), editsArb).map(([s, e]) => `${mutate(s, e)}.${sig}`),
      fc.jsonValue().map((v) => `${b64u(utf8(JSON.stringify(v)))}.${sig}`),
      fc.constant(tok),
    );
    fc.assert(
      fc.property(arb, (input) => {
        valueOrProtocolError(() => decodeBlobRequestToken(input));
      }),
      { numRuns: FUZZ },
    );
    await fc.assert(
      fc.asyncProperty(arb, async (input) => {
        try {
          await verifyBlobRequestToken(input, { method: 'GET', path, now });
        } catch (e) {
          if (!(e instanceof ProtocolError || e instanceof VerificationError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('HTTP answer decoders: a value or a ProtocolError', () => {
    assert.deepEqual(decodeBlobUsage('{"bytes":1,"count":1,"quotaBytes":2}'), {
      bytes: 1,
      count: 1,
      quotaBytes: 2,
    });
    assert.deepEqual(decodeBlobErrorBody('{"code":"E_QUOTA","message":"m"}'), {
      code: 'E_QUOTA',
      message: 'm',
    });
    assert.deepEqual(decodeBlobListing('{"blobs":[]}'), { blobs: [] });
    const valid = fc.constantFrom(
      '{"blobs":[{"id":"AAAAAAAAAAAAAAAAAAAAAA","kind":"clip","hr":1,"size":2}]}',
      '{"bytes":1,"count":1,"quotaBytes":2}',
      '{"code":"E_QUOTA","message":"m"}',
    );
    fc.assert(
      fc.property(textInputs(valid), (input) => {
        for (const f of [decodeBlobListing, decodeBlobUsage, decodeBlobErrorBody])
          valueOrProtocolError(() =>
            f(typeof input === 'string' || input instanceof Uint8Array ? input : String(input)),
          );
      }),
      { numRuns: FUZZ },
    );
  });
});
