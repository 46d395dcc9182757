// fragmentChunks: how a device cuts an fMP4 into the chunks of a sealed clip (one chunk per
// fragment, so a viewer can append each to MSE as it opens).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { concat, fragmentChunks } from '../src/index.js';

function box(type: string, payload: number): Uint8Array {
  const b = new Uint8Array(8 + payload).fill(0x5a);
  new DataView(b.buffer).setUint32(0, b.length);
  b.set(new TextEncoder().encode(type), 4);
  return b;
}

describe('fragmentChunks', () => {
  it('init segment (ftyp + moov) as one chunk, then one per moof + mdat', () => {
    const init = concat(box('ftyp', 16), box('moov', 300));
    const f1 = concat(box('moof', 50), box('mdat', 1000));
    const f2 = concat(box('moof', 60), box('mdat', 2000));
    const chunks = fragmentChunks(concat(init, f1, f2));
    assert.deepEqual(chunks, [init, f1, f2]);
  });
  it('a fragment larger than the limit is split; the bytes are always all there, in order', () => {
    const mp4 = concat(box('ftyp', 16), box('moof', 10), box('mdat', 5000));
    const chunks = fragmentChunks(mp4, 1024);
    assert.ok(chunks.every((c) => c.length <= 1024));
    assert.deepEqual(concat(...chunks), mp4);
  });
  it('bytes that are not MP4 boxes are cut every `max` bytes; empty input is one empty chunk', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), fc.integer({ min: 1, max: 2048 }), (b, max) => {
        const chunks = fragmentChunks(b, max);
        assert.ok(chunks.length >= 1 && chunks.every((c) => c.length <= max));
        assert.deepEqual(concat(...chunks), b);
      }),
      { numRuns: 2000 },
    );
    assert.deepEqual(fragmentChunks(new Uint8Array(0)), [new Uint8Array(0)]);
  });
});
