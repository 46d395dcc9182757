/**
 * Fuzzing the sealed-blob decoders (`src/clip/`): the header decoder on random bytes, mutated
 * valid headers and mutated JSON, and the chunk decoder (the streaming opener) on mutated frames
 * cut into random slices, and the metadata box (its plaintext decoder on mutated JSON, and the box
 * opener on mutated boxes and on arbitrary plaintexts sealed under the right key and AAD). Every
 * input either opens to the original or fails with a typed HearthError; nothing else escapes.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { b64u, concat, fromB64u, u32be } from '../src/bytes.js';
import {
  BlobSealer,
  CLIP_MAGIC,
  CLIP_META_PURPOSE,
  type ClipReader,
  clipMetaAad,
  decodeClipHeader,
  decodeClipMeta,
  decodeReaderKey,
  encodeReaderKey,
  MAX_CLIP_META_BYTES,
  openBlobHeader,
  openClipMeta,
  signReaderKey,
  unwrapContentKey,
  verifyClipHeader,
} from '../src/clip/index.js';
import { hkdfSha256, info } from '../src/crypto/primitives.js';
import { HearthError, ProtocolError } from '../src/errors.js';
import { x25519KeyPairFromScalar } from '../src/still.js';
import { keys } from './fixtures.js';
import {
  editsArb,
  mutate,
  RUNS,
  textInputs,
  valueOrHearthError,
  valueOrProtocolError,
} from './fuzz-helpers.js';

type K = Awaited<ReturnType<typeof keys>>;
let k: K;
let alice: ClipReader;
let headerBytes: Uint8Array;
let headerText: string;
let frames: Uint8Array[];
let plain: Uint8Array;
let readerKeyText: string;

const ASYNC_RUNS = Math.max(50, Math.min(RUNS, 1000));

before(async () => {
  k = await keys();
  const x = await x25519KeyPairFromScalar(new Uint8Array(32).fill(0x11));
  const rk = await signReaderKey(k.owner, x.publicKey);
  readerKeyText = encodeReaderKey(rk);
  alice = { userKey: rk.userKey, x25519: x };
  const s = await BlobSealer.create({
    device: k.device,
    kind: 'clip',
    camera: 'door',
    t0: 1_700_000_000_000,
    recipients: [rk],
    maxChunkBytes: 64,
  });
  const chunks = [new Uint8Array(64).fill(1), new Uint8Array(64).fill(2), new Uint8Array(20).fill(3)];
  plain = concat(...chunks);
  frames = [];
  for (let i = 0; i < chunks.length; i++) frames.push(await s.sealChunk(chunks[i]!, i === chunks.length - 1));
  headerBytes = (await s.finish({ t1: 1_700_000_010_000 })).bytes;
  headerText = new TextDecoder().decode(headerBytes.subarray(8));
});

const framed = (text: string | Uint8Array) => {
  const b = typeof text === 'string' ? new TextEncoder().encode(text) : text;
  return concat(CLIP_MAGIC, u32be(b.length), b);
};

describe('clip fuzz: header decoder', () => {
  it('random bytes, mutated valid headers, mutated JSON: a header or a ProtocolError', () => {
    const bytesArb = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      fc.uint8Array({ maxLength: 600 }).map((b) => concat(CLIP_MAGIC, b)),
      fc.tuple(fc.nat(), fc.nat(255)).map(([i, v]) => {
        const b = headerBytes.slice();
        b[i % b.length] = v;
        return b;
      }),
      fc.nat().map((i) => headerBytes.subarray(0, i % (headerBytes.length + 1))),
      textInputs(fc.constant(headerText)).map((t) => framed(t)),
      fc.tuple(fc.constant(headerText), editsArb).map(([t, e]) => framed(mutate(t, e))),
    );
    let valid = 0;
    fc.assert(
      fc.property(bytesArb, (b) => {
        const r = valueOrProtocolError(() => decodeClipHeader(b));
        if (!(r instanceof ProtocolError)) valid++;
      }),
      { numRuns: RUNS },
    );
    assert.ok(valid > 0, 'some inputs decode (the unmutated header at least)');
  });

  it('mutated headers that still decode never verify under the pinned key unless unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(fc.tuple(fc.constant(headerText), editsArb), async ([t, e]) => {
        const m = mutate(t, e);
        const r = await valueOrHearthError(() =>
          openBlobHeader(framed(m), { pinnedDeviceKey: k.device.publicKey, reader: alice }),
        );
        if (!(r instanceof HearthError)) assert.equal(m, headerText);
      }),
      { numRuns: ASYNC_RUNS },
    );
  });

  it('reader-key decoder: a reader key or a ProtocolError', () => {
    fc.assert(
      fc.property(textInputs(fc.constant(readerKeyText)), (t) => {
        valueOrProtocolError(() => decodeReaderKey(t));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('clip fuzz: chunk decoder (streaming opener)', () => {
  const editArb = fc.array(fc.record({ at: fc.nat(), op: fc.nat(5), v: fc.nat(255) }), {
    minLength: 0,
    maxLength: 3,
  });
  const splitsArb = fc.array(fc.nat(), { maxLength: 6 });

  it('mutated frames in random slices: the original plaintext, or a typed error', async () => {
    const all = concat(...frames);
    let opened = 0;
    await fc.assert(
      fc.asyncProperty(editArb, splitsArb, async (edits, splits) => {
        let b: Uint8Array = all.slice();
        for (const { at, op, v } of edits) {
          const i = at % Math.max(1, b.length);
          if (op === 0) b[i] = b[i]! ^ (1 << (v % 8));
          else if (op === 1) b = concat(b.subarray(0, i), new Uint8Array([v]), b.subarray(i));
          else if (op === 2) b = concat(b.subarray(0, i), b.subarray(i + 1));
          else if (op === 3) b = b.subarray(0, i);
          else if (op === 4) b = concat(b.subarray(0, i), b.subarray(i, i + (v % 90)), b.subarray(i));
          else b = concat(b, new Uint8Array(v % 5).fill(v));
        }
        const cuts = [...new Set([0, ...splits.map((s) => s % (b.length + 1)), b.length])].sort(
          (x, y) => x - y,
        );
        const r = await valueOrHearthError(async () => {
          const { opener } = await openBlobHeader(headerBytes, {
            pinnedDeviceKey: k.device.publicKey,
            reader: alice,
          });
          const out: Uint8Array[] = [];
          for (let i = 1; i < cuts.length; i++)
            out.push(...(await opener.push(b.subarray(cuts[i - 1], cuts[i]))));
          opener.finish();
          return concat(...out);
        });
        if (!(r instanceof HearthError)) {
          opened++;
          assert.deepEqual(r, plain);
          assert.deepEqual(b, all);
        }
      }),
      { numRuns: ASYNC_RUNS },
    );
    assert.ok(opened > 0, 'the unmutated input (no edits) opens');
  });

  it('random bytes as frames: always a typed error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async (b) => {
        const r = await valueOrHearthError(async () => {
          const { opener } = await openBlobHeader(headerBytes, {
            pinnedDeviceKey: k.device.publicKey,
            reader: alice,
          });
          await opener.push(b);
          opener.finish();
        });
        assert.ok(r instanceof HearthError);
      }),
      { numRuns: ASYNC_RUNS },
    );
  });
});

describe('clip fuzz: metadata box', () => {
  const metaText = '{"cam":"door","t0":1700000000000,"t1":1700000010000}';

  it('plaintext decoder: mutated, random and oversized JSON → a ClipMeta (canonical) or a ProtocolError', () => {
    let valid = 0;
    const arb = fc.oneof(
      textInputs(fc.constant(metaText)),
      fc.tuple(fc.constant(metaText), editsArb).map(([t, e]) => mutate(t, e)),
      fc
        .record({
          cam: fc.oneof(
            fc.string({ maxLength: 80 }),
            fc.string({ unit: 'grapheme', maxLength: 70 }),
            fc.nat(),
          ),
          t0: fc.oneof(fc.integer(), fc.double(), fc.constant(Number.MAX_SAFE_INTEGER + 2)),
          t1: fc.oneof(fc.integer(), fc.double(), fc.string()),
        })
        .map((o) => JSON.stringify(o)),
      fc.nat(2000).map((n) => `{"cam":"${'a'.repeat(n)}","t0":0,"t1":0}`),
    );
    fc.assert(
      fc.property(arb, (t) => {
        const b = typeof t === 'string' ? new TextEncoder().encode(t) : t;
        const r = valueOrProtocolError(() => decodeClipMeta(b));
        if (r instanceof ProtocolError) {
          if (b.length > MAX_CLIP_META_BYTES) assert.equal(r.code, 'E_TOO_LARGE');
          return;
        }
        valid++;
        assert.equal(JSON.stringify({ cam: r.cam, t0: r.t0, t1: r.t1 }), new TextDecoder().decode(b));
        assert.ok(r.t1 >= r.t0 && r.cam.length >= 1 && r.cam.length <= 64);
      }),
      { numRuns: RUNS },
    );
    assert.ok(valid > 0, 'the unmutated text decodes');
  });

  it('box opener: mutated boxes → the original meta (unchanged box only) or a typed error', async () => {
    const { header } = decodeClipHeader(headerBytes);
    const v = await verifyClipHeader(header, { pinnedDeviceKey: k.device.publicKey });
    const key = await unwrapContentKey(v, alice);
    const salt = fromB64u(header.salt);
    const aad = clipMetaAad(header);
    const box = fromB64u(header.m);
    const arb = fc.oneof(
      fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 3 }).map((edits) => {
        const b = box.slice();
        for (const [i, x] of edits) b[i % b.length] = x;
        return b64u(b);
      }),
      fc.uint8Array({ maxLength: 600 }).map(b64u),
      fc.string({ maxLength: 800 }),
    );
    await fc.assert(
      fc.asyncProperty(arb, async (m) => {
        const r = await valueOrHearthError(() => openClipMeta(key, salt, m, aad, header.hr));
        if (!(r instanceof HearthError)) {
          assert.equal(m, header.m);
          assert.equal(r.cam, 'door');
        }
      }),
      { numRuns: ASYNC_RUNS },
    );
  });

  it('arbitrary plaintexts sealed under the right key and AAD (a buggy device): a valid meta or a ProtocolError', async () => {
    const { header } = decodeClipHeader(headerBytes);
    const v = await verifyClipHeader(header, { pinnedDeviceKey: k.device.publicKey });
    const ck = await unwrapContentKey(v, alice);
    const salt = fromB64u(header.salt);
    const aad = clipMetaAad(header);
    const raw = await hkdfSha256(ck, salt, info(CLIP_META_PURPOSE), 32);
    const mk = await crypto.subtle.importKey('raw', raw as Uint8Array<ArrayBuffer>, 'AES-GCM', false, [
      'encrypt',
    ]);
    const seal = async (pt: Uint8Array) =>
      b64u(
        new Uint8Array(
          await crypto.subtle.encrypt(
            { name: 'AES-GCM', iv: new Uint8Array(12), additionalData: new Uint8Array(aad) },
            mk,
            new Uint8Array(pt),
          ),
        ),
      );
    const arb = fc.oneof(
      textInputs(fc.constant(metaText), 600),
      fc.tuple(fc.constant(metaText), editsArb).map(([t, e]) => mutate(t, e)),
    );
    let valid = 0;
    await fc.assert(
      fc.asyncProperty(arb, async (t) => {
        const pt = typeof t === 'string' ? new TextEncoder().encode(t) : t;
        const r = await valueOrHearthError(async () =>
          openClipMeta(ck, salt, await seal(pt), aad, header.hr),
        );
        if (r instanceof HearthError) assert.ok(r instanceof ProtocolError, String(r));
        else valid++;
      }),
      { numRuns: ASYNC_RUNS },
    );
    assert.ok(valid > 0, 'the unmutated text opens');
  });
});
