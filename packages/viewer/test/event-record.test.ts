/** The event-index record decoder (core/event-record.ts, contract §2): strict, bounded, fuzzed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError, utf8 } from '@hearth/protocol';
import fc from 'fast-check';
import { decodeEventRecord } from '../src/core/event-record.js';

const good = {
  v: 1,
  type: 'motion',
  cam: 'door',
  t: 1_765_000_000_000,
  t1: 1_765_000_012_000,
  clip: 'A'.repeat(22),
  snap: 'B'.repeat(22),
  thumb: btoa('\xff\xd8\xff'),
  score: 0.4,
};

describe('event record', () => {
  it('decodes a valid record, from text or bytes; optional fields may be absent', () => {
    assert.deepEqual(decodeEventRecord(JSON.stringify(good)), good);
    assert.deepEqual(decodeEventRecord(utf8(JSON.stringify(good))), good);
    const { clip: _c, snap: _s, score: _x, ...min } = good;
    assert.deepEqual(decodeEventRecord(JSON.stringify({ ...min, type: 'sound' })), { ...min, type: 'sound' });
  });
  it('refuses extra fields, bad types, bad IDs, t1 before t, oversize', () => {
    for (const bad of [
      { ...good, x: 1 },
      { ...good, v: 2 },
      { ...good, type: 'person' },
      { ...good, cam: 'Door!' },
      { ...good, clip: 'short' },
      { ...good, t1: good.t - 1 },
      { ...good, score: 1.5 },
      { ...good, thumb: '<svg>' },
      { ...good, thumb: 'A'.repeat(20_000) },
    ]) {
      assert.throws(
        () => decodeEventRecord(JSON.stringify(bad)),
        (e: unknown) => e instanceof ProtocolError && ['E_SCHEMA', 'E_TOO_LARGE'].includes(e.code),
        JSON.stringify(bad).slice(0, 80),
      );
    }
  });
  it('fuzz: never throws anything but ProtocolError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 20_000 }),
          fc.string({ maxLength: 2000 }),
          fc.json().map((j) => j),
          fc
            .record({
              v: fc.constant(1),
              type: fc.string(),
              cam: fc.string(),
              t: fc.double(),
              t1: fc.integer(),
              thumb: fc.string(),
            })
            .map((o) => JSON.stringify(o)),
        ),
        (input) => {
          try {
            decodeEventRecord(input as string);
          } catch (e) {
            assert.ok(e instanceof ProtocolError, String(e));
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
