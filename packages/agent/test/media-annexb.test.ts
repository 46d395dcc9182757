import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type AccessUnit,
  AccessUnitAssembler,
  AnnexBParser,
  GopCache,
  MediaError,
  NAL,
  nalType,
  profileLevelIdFromSps,
} from '../src/media/index.js';

// Synthetic NAL units: header byte (nal_ref_idc 3) + a body byte. For slices the body's top bit is
// first_mb_in_slice == 0 (new picture).
const sps = Buffer.from([0x67, 0x42, 0xe0, 0x1f, 0xda, 0x02]);
const pps = Buffer.from([0x68, 0xce, 0x3c, 0x80]);
const aud = Buffer.from([0x09, 0xf0]);
const sei = Buffer.from([0x06, 0x05, 0x01, 0x80]);
const idr = (n: number, size = 8): Buffer =>
  Buffer.concat([Buffer.from([0x65, 0x88]), Buffer.alloc(size - 2, n + 1)]);
const p = (n: number, size = 6): Buffer =>
  Buffer.concat([Buffer.from([0x41, 0x9a]), Buffer.alloc(size - 2, n + 1)]);
const sliceCont = (n: number): Buffer => Buffer.from([0x41, 0x40, n + 1, n + 1]); // first_mb != 0

const annexB = (nals: readonly Buffer[], long = false): Buffer =>
  Buffer.concat(nals.flatMap((n, i) => [Buffer.from(long || i % 2 ? [0, 0, 0, 1] : [0, 0, 1]), n]));

function parseAll(stream: Buffer, chunk: number): Buffer[] {
  const parser = new AnnexBParser();
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; i += chunk) out.push(...parser.push(stream.subarray(i, i + chunk)));
  out.push(...parser.flush());
  return out;
}

function assemble(nals: readonly Buffer[]): AccessUnit[] {
  const a = new AccessUnitAssembler(() => 0);
  const out: AccessUnit[] = [];
  for (const n of nals) {
    const au = a.push(n);
    if (au) out.push(au);
  }
  const last = a.flush();
  if (last) out.push(last);
  return out;
}

describe('Annex-B parser', () => {
  const nals = [aud, sps, pps, sei, idr(0, 3000), p(1), p(2, 1500), aud, p(3)];
  const stream = annexB(nals);
  for (const chunk of [1, 2, 3, 4, 7, 64, 1000, 1 << 20]) {
    it(`splits NAL units whatever the chunking (${chunk} B)`, () => {
      assert.deepEqual(parseAll(stream, chunk), nals);
    });
  }
  it('drops leading garbage and trailing zero bytes', () => {
    const s = Buffer.concat([Buffer.from([0xff, 0x00, 0x12]), annexB([sps, pps]), Buffer.from([0, 0, 0, 0])]);
    assert.deepEqual(parseAll(s, 5), [sps, pps]);
  });
  it('throws a typed error for a NAL unit over the limit', () => {
    const parser = new AnnexBParser({ maxNalBytes: 100 });
    assert.throws(
      () => parser.push(Buffer.concat([Buffer.from([0, 0, 1, 0x65]), Buffer.alloc(200, 7)])),
      (e) => e instanceof MediaError && e.reason === 'nal-too-large',
    );
  });
  it('reads profile-level-id from SPS', () => {
    assert.equal(profileLevelIdFromSps(sps), '42e01f');
    assert.equal(profileLevelIdFromSps(pps), undefined);
  });
});

describe('access units', () => {
  it('groups NAL units into pictures (AUD, parameter sets, first_mb_in_slice)', () => {
    const aus = assemble([aud, sps, pps, idr(0), sliceCont(0), aud, p(1), p(2), sei, p(3), sliceCont(3)]);
    assert.deepEqual(
      aus.map((a) => a.nals.map(nalType)),
      [[NAL.AUD, NAL.SPS, NAL.PPS, NAL.IDR, 1], [NAL.AUD, 1], [1], [NAL.SEI, 1, 1]],
    );
    assert.deepEqual(
      aus.map((a) => a.keyframe),
      [true, false, false, false],
    );
  });

  it('parameter sets repeated between the slices of one IDR (ffmpeg dump_extra, one packet per slice) stay in one keyframe AU', () => {
    const idrCont = Buffer.from([0x65, 0x40, 7, 7]); // IDR slice, first_mb != 0
    const aus = assemble([
      sps,
      pps,
      idr(0),
      sps,
      pps,
      idrCont,
      p(1),
      sliceCont(1),
      sps,
      pps,
      idr(2),
      sps,
      pps,
      idrCont,
      p(3),
    ]);
    assert.deepEqual(
      aus.map((a) => a.nals.map(nalType)),
      [[NAL.SPS, NAL.PPS, NAL.IDR, NAL.IDR], [1, 1], [NAL.SPS, NAL.PPS, NAL.IDR, NAL.IDR], [1]],
    );
    assert.deepEqual(
      aus.map((a) => a.keyframe),
      [true, false, true, false],
    );
  });

  it('an SEI between two slices of one picture stays with it; parameter sets before a new picture open its AU', () => {
    const aus = assemble([idr(0), sei, sliceCont(0), sps, pps, idr(1), p(2)]);
    assert.deepEqual(
      aus.map((a) => a.nals.map(nalType)),
      [[NAL.IDR, NAL.SEI, 1], [NAL.SPS, NAL.PPS, NAL.IDR], [1]],
    );
  });
});

const au = (nals: Buffer[]): AccessUnit => ({
  nals,
  keyframe: nals.some((n) => nalType(n) === NAL.IDR),
  time: 0,
  bytes: nals.reduce((a, b) => a + b.length, 0),
});

describe('GOP cache', () => {
  it('holds everything from the last IDR', () => {
    const g = new GopCache();
    g.push(au([p(0)])); // before any IDR: not cached
    assert.equal(g.snapshot().units.length, 0);
    g.push(au([sps, pps, idr(1)]));
    g.push(au([p(2)]));
    g.push(au([p(3)]));
    assert.equal(g.snapshot().units.length, 3);
    g.push(au([sps, pps, idr(4)]));
    g.push(au([p(5)]));
    const s = g.snapshot();
    assert.equal(s.units.length, 2);
    assert.equal(s.units[0]?.keyframe, true);
    assert.deepEqual(s.units[0]?.nals.map(nalType), [NAL.SPS, NAL.PPS, NAL.IDR]);
    assert.equal(g.profileLevelId(), '42e01f');
  });
  it('puts remembered SPS/PPS in front of a keyframe that lacks them', () => {
    const g = new GopCache();
    g.push(au([sps, pps, idr(0)]));
    const out = g.push(au([idr(1)]));
    assert.deepEqual(out.nals.map(nalType), [NAL.SPS, NAL.PPS, NAL.IDR]);
    assert.deepEqual(g.snapshot().units[0]?.nals.map(nalType), [NAL.SPS, NAL.PPS, NAL.IDR]);
  });
  it('is bounded: past the bound only the keyframe stays (truncated) until the next IDR', () => {
    const g = new GopCache({ maxBytes: 1000, maxFrames: 5 });
    g.push(au([sps, pps, idr(0, 200)]));
    for (let i = 0; i < 10; i++) g.push(au([p(i, 50)]));
    let s = g.snapshot();
    assert.equal(s.truncated, true);
    assert.equal(s.units.length, 1);
    assert.equal(s.units[0]?.keyframe, true);
    g.push(au([sps, pps, idr(1, 200)]));
    g.push(au([p(1, 50)]));
    s = g.snapshot();
    assert.equal(s.truncated, false);
    assert.equal(s.units.length, 2);
    // byte bound
    const h = new GopCache({ maxBytes: 500 });
    h.push(au([sps, pps, idr(0, 200)]));
    for (let i = 0; i < 10; i++) h.push(au([p(i, 100)]));
    assert.ok(h.size.bytes <= 500);
    assert.equal(h.size.truncated, true);
  });
});

describe('Annex-B parser property', () => {
  it('never throws anything but MediaError and round-trips well-formed streams (100k inputs)', () => {
    const nalArb = fc.uint8Array({ minLength: 1, maxLength: 64 }).map((u) => {
      // A NAL with no start code inside and a non-zero last byte: emulation prevention guarantees this.
      const b = Buffer.from(u);
      b[0] = ((b[0] ?? 1) & 0x7f) | 0x01;
      for (let i = 2; i < b.length; i++) if (b[i - 2] === 0 && b[i - 1] === 0 && (b[i] ?? 0) <= 3) b[i] = 3;
      if (b[b.length - 1] === 0) b[b.length - 1] = 0x80;
      return b;
    });
    let wellFormed = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          {
            weight: 1,
            arbitrary: fc
              .uint8Array({ maxLength: 256 })
              .map((u) => ({ raw: Buffer.from(u), nals: undefined })),
          },
          {
            weight: 1,
            arbitrary: fc.array(nalArb, { maxLength: 8 }).map((n) => ({ raw: annexB(n), nals: n })),
          },
        ),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 16, max: 512 }),
        ({ raw, nals }, chunk, maxNal) => {
          const parser = new AnnexBParser({ maxNalBytes: maxNal });
          const out: Buffer[] = [];
          try {
            for (let i = 0; i < raw.length; i += chunk) out.push(...parser.push(raw.subarray(i, i + chunk)));
            out.push(...parser.flush());
          } catch (e) {
            if (!(e instanceof MediaError) || e.reason !== 'nal-too-large') throw e;
            return;
          }
          for (const n of out) assert.ok(n.length > 0 && n.length <= maxNal);
          if (nals) {
            wellFormed++;
            assert.deepEqual(out, nals);
          }
          // Assembly never throws either.
          assemble(out);
        },
      ),
      { numRuns: 100_000 },
    );
    assert.ok(wellFormed > 10_000);
  });
});
