/**
 * The MP4 reader MSE playback relies on (core/mp4.ts), on real ffmpeg output: where the init
 * segment ends, and the codec string of each track, read from avcC and esds; never a throw on
 * hostile bytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { codecsOfInit, initSegmentLength, mimeOfInit } from '../src/core/mp4.js';
import { ffmpegAvailable, makeFmp4 } from './fixtures/fmp4.js';

const skip = ffmpegAvailable() ? false : 'ffmpeg not installed';

const boxTypes = (b: Uint8Array): string[] => {
  const out: string[] = [];
  for (let p = 0; p + 8 <= b.length; ) {
    const n = new DataView(b.buffer, b.byteOffset + p).getUint32(0);
    out.push(new TextDecoder().decode(b.subarray(p + 4, p + 8)));
    if (n < 8) break;
    p += n;
  }
  return out;
};

describe('MP4 init segment', { skip }, () => {
  it('baseline video: avc1.42c01e from avcC; the init ends right after moov', () => {
    const f = makeFmp4({ seconds: 2 });
    const n = initSegmentLength(f);
    assert.ok(n !== undefined && n > 100 && n < 4096, String(n));
    assert.deepEqual(boxTypes(f.subarray(0, n)), ['ftyp', 'moov']);
    assert.equal(boxTypes(f.subarray(n))[0], 'moof');
    assert.equal(codecsOfInit(f.subarray(0, n)), 'avc1.42c01e');
    assert.equal(mimeOfInit(f.subarray(0, n)), 'video/mp4; codecs="avc1.42c01e"');
  });
  it('high profile, with AAC audio: both tracks, in order', () => {
    const f = makeFmp4({ seconds: 1, profile: 'high', audio: true });
    const c = codecsOfInit(f.subarray(0, initSegmentLength(f)));
    assert.match(c ?? '', /^avc1\.64[0-9a-f]{4},mp4a\.40\.2$/);
  });
  it('an incomplete moov is not an init segment yet, at any cut', () => {
    const f = makeFmp4({ seconds: 1 });
    const n = initSegmentLength(f)!;
    for (let cut = 0; cut < n; cut += 7)
      assert.equal(initSegmentLength(f.subarray(0, cut)), undefined, String(cut));
    assert.equal(initSegmentLength(f.subarray(0, n)), n);
  });
});

describe('MP4 reader on hostile bytes', () => {
  it('never throws; mutated real inits give undefined or a well-formed codec string', () => {
    const init = ffmpegAvailable() ? makeFmp4({ seconds: 1 }).slice(0, 1200) : new Uint8Array(64);
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2048 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(255))),
        (rnd, muts) => {
          for (const b of [rnd, init.slice()]) {
            for (const [i, v] of muts) if (b.length) b[i % b.length] = v;
            initSegmentLength(b);
            const c = codecsOfInit(b);
            if (c !== undefined)
              assert.match(
                c,
                /^(avc[13]\.[0-9a-f]{6}|mp4a\.[0-9a-f.]+)(,(avc[13]\.[0-9a-f]{6}|mp4a\.[0-9a-f.]+))*$/,
              );
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
