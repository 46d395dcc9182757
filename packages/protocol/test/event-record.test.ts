/**
 * The event-index record (`src/clip/event-record.ts`, docs/events-contract.md §2): round trip,
 * canonical encoding, the limits, and a fuzz of the decoder (never anything but a ProtocolError).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromUtf8 } from '../src/bytes.js';
import {
  decodeEventRecord,
  type EventRecord,
  encodeEventRecord,
  eventThumb,
  MAX_EVENT_RECORD_BYTES,
  MAX_EVENT_THUMB_BYTES,
} from '../src/clip/index.js';
import { ProtocolError } from '../src/errors.js';
import { RUNS, textInputs, valueOrProtocolError } from './fuzz-helpers.js';

const jpeg = new Uint8Array([0xff, 0xd8, 1, 2, 3, 0xff, 0xd9]);
const rec: EventRecord = {
  v: 1,
  type: 'motion',
  cam: 'door',
  t: 1_700_000_000_000,
  t1: 1_700_000_012_000,
  clip: 'AAAAAAAAAAAAAAAAAAAAAA',
  snap: 'BBBBBBBBBBBBBBBBBBBBBA',
  thumb: eventThumb(jpeg),
  score: 0.125,
};

describe('event record', () => {
  it('a JSON -0 decodes to 0 (found by the fuzz: the record must encode back to itself)', () => {
    const r = decodeEventRecord(
      '{"cam":"a","score":-0,"t":-0,"t1":1000000000,"thumb":"AA==","type":"motion","v":1}',
    );
    assert.ok(Object.is(r.score, 0) && Object.is(r.t, 0));
    assert.deepEqual(decodeEventRecord(encodeEventRecord(r)), r);
  });
  it('round-trips, canonically (sorted keys, score in thousandths)', () => {
    const bytes = encodeEventRecord(rec);
    assert.equal(
      fromUtf8(bytes),
      `{"cam":"door","clip":"AAAAAAAAAAAAAAAAAAAAAA","score":125,"snap":"BBBBBBBBBBBBBBBBBBBBBA","t":1700000000000,"t1":1700000012000,"thumb":"${rec.thumb}","type":"motion","v":1}`,
    );
    assert.deepEqual(decodeEventRecord(bytes), rec);
    const bare: EventRecord = { v: 1, type: 'sound', cam: 'a', t: 5, t1: 5, thumb: '' };
    assert.deepEqual(decodeEventRecord(encodeEventRecord(bare)), bare);
  });
  it('refuses what the schema does not allow', () => {
    const bad: unknown[] = [
      { ...JSON.parse(fromUtf8(encodeEventRecord(rec))), x: 1 },
      { ...JSON.parse(fromUtf8(encodeEventRecord(rec))), v: 2 },
      { ...JSON.parse(fromUtf8(encodeEventRecord(rec))), cam: 'Door Cam' },
      { ...JSON.parse(fromUtf8(encodeEventRecord(rec))), t1: 1 },
      { ...JSON.parse(fromUtf8(encodeEventRecord(rec))), score: 0.5 },
      { ...JSON.parse(fromUtf8(encodeEventRecord(rec))), clip: 'short' },
      { ...JSON.parse(fromUtf8(encodeEventRecord(rec))), thumb: 'not base64!' },
    ];
    for (const b of bad)
      assert.throws(
        () => decodeEventRecord(JSON.stringify(b)),
        (e: unknown) => e instanceof ProtocolError,
        JSON.stringify(b),
      );
    // Not canonical padding, and a thumbnail over 8 KiB.
    assert.throws(
      () => decodeEventRecord(JSON.stringify({ ...rec, score: 1, thumb: '/w==x' })),
      ProtocolError,
    );
    const big = eventThumb(new Uint8Array(MAX_EVENT_THUMB_BYTES));
    assert.throws(() => eventThumb(new Uint8Array(MAX_EVENT_THUMB_BYTES + 1)), RangeError);
    assert.ok(decodeEventRecord(encodeEventRecord({ ...rec, thumb: big })));
    assert.throws(() => encodeEventRecord({ ...rec, score: 2 }), RangeError);
  });
  it('checks the size before anything else', () => {
    const huge = `{"pad":"${'x'.repeat(MAX_EVENT_RECORD_BYTES)}"}`;
    assert.throws(
      () => decodeEventRecord(huge),
      (e: unknown) => e instanceof ProtocolError && e.code === 'E_TOO_LARGE',
    );
  });
  it(`fuzz: ${RUNS} inputs: a record or a ProtocolError, never anything else`, () => {
    const valid = fc
      .record({
        type: fc.constantFrom('motion' as const, 'sound' as const),
        cam: fc.stringMatching(/^[a-z0-9_-]{1,32}$/),
        t: fc.nat(),
        d: fc.nat(),
        score: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
        thumb: fc.uint8Array({ maxLength: 64 }),
      })
      .map((o) =>
        fromUtf8(
          encodeEventRecord({
            v: 1,
            type: o.type,
            cam: o.cam,
            t: o.t,
            t1: o.t + o.d,
            thumb: eventThumb(o.thumb),
            ...(o.score !== undefined ? { score: o.score / 1000 } : {}),
          }),
        ),
      );
    fc.assert(
      fc.property(textInputs(valid), (input) => {
        const r = valueOrProtocolError(() => decodeEventRecord(input));
        if (!(r instanceof ProtocolError)) assert.deepEqual(decodeEventRecord(encodeEventRecord(r)), r);
      }),
      { numRuns: RUNS },
    );
  });
});
