import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { depacketize, FU_A, fragmentFuA, packetizeAccessUnit, STAP_A } from '../src/media/index.js';

const nal = (type: number, size: number, nri = 3): Buffer => {
  const b = Buffer.alloc(size);
  b[0] = (nri << 5) | type;
  for (let i = 1; i < size; i++) b[i] = i & 0xff;
  return b;
};
const sps = nal(7, 12);
const pps = nal(8, 5);

describe('RTP H.264 packetizer (RFC 6184)', () => {
  it('aggregates SPS+PPS into one STAP-A, then the IDR', () => {
    const out = packetizeAccessUnit([nal(9, 2), sps, pps, nal(5, 500)], 1200);
    assert.equal(out.length, 2);
    const stap = out[0]?.payload as Buffer;
    assert.equal((stap[0] ?? 0) & 0x1f, STAP_A);
    assert.equal((stap[0] ?? 0) & 0x60, 0x60);
    assert.equal(stap.readUInt16BE(1), 12);
    assert.equal(stap.length, 1 + 2 + 12 + 2 + 5);
    assert.equal(out[0]?.marker, false);
    assert.equal(out[1]?.marker, true);
    assert.deepEqual(depacketize(out.map((o) => o.payload)), [sps, pps, nal(5, 500)]);
  });

  it('sends a NAL of exactly maxPayload as a single packet, one byte more as FU-A', () => {
    assert.equal(packetizeAccessUnit([nal(1, 1200)], 1200).length, 1);
    const f = packetizeAccessUnit([nal(1, 1201)], 1200);
    assert.equal(f.length, 2);
    assert.ok(f.every((x) => ((x.payload[0] ?? 0) & 0x1f) === FU_A));
  });

  for (const size of [1201, 2397, 2398, 2399, 5000, 100_000]) {
    it(`FU-A boundaries for a ${size}-byte NAL`, () => {
      const n = nal(5, size);
      const frags = fragmentFuA(n, 1200);
      // body = size-1 bytes in chunks of 1198
      assert.equal(frags.length, Math.ceil((size - 1) / 1198));
      frags.forEach((f, i) => {
        assert.ok(f.length <= 1200);
        assert.equal(f[0], ((n[0] ?? 0) & 0xe0) | FU_A);
        const start = (f[1] ?? 0) & 0x80;
        const end = (f[1] ?? 0) & 0x40;
        assert.equal(!!start, i === 0);
        assert.equal(!!end, i === frags.length - 1);
        assert.equal((f[1] ?? 0) & 0x1f, 5);
        if (i < frags.length - 1) assert.equal(f.length, 1200);
      });
      assert.deepEqual(depacketize(frags), [n]);
    });
  }

  it('marker bit only on the last packet of the access unit', () => {
    const out = packetizeAccessUnit([sps, pps, nal(5, 3000), nal(5, 10)], 1200);
    assert.deepEqual(
      out.map((o) => o.marker),
      out.map((_, i) => i === out.length - 1),
    );
  });

  it('round-trips arbitrary access units (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ type: fc.constantFrom(1, 5, 6, 7, 8), size: fc.integer({ min: 1, max: 4000 }) }),
          { minLength: 1, maxLength: 6 },
        ),
        fc.integer({ min: 20, max: 1400 }),
        (spec, mtu) => {
          const nals = spec.map((s) => nal(s.type, s.size));
          const out = packetizeAccessUnit(nals, mtu);
          for (const o of out) assert.ok(o.payload.length <= mtu);
          assert.deepEqual(depacketize(out.map((o) => o.payload)), nals);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
