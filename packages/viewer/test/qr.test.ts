import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import jsqrModule from 'jsqr';
import { encodeQr, type QrCode, type QrEcc, qrCapacity } from '../src/core/qr.js';

// jsQR is CommonJS: its function is the module itself at run time, `default` in its typings.
const jsQR = ((jsqrModule as { default?: unknown }).default ?? jsqrModule) as typeof jsqrModule.default;

/** Draw the code as RGBA pixels (4 px a module, a 4-module quiet zone) for an independent decoder. */
function pixels(q: QrCode, scale = 4): { data: Uint8ClampedArray; width: number } {
  const width = (q.size + 8) * scale;
  const data = new Uint8ClampedArray(width * width * 4).fill(255);
  for (let y = 0; y < q.size; y++)
    for (let x = 0; x < q.size; x++) {
      if (!q.get(x, y)) continue;
      for (let dy = 0; dy < scale; dy++)
        for (let dx = 0; dx < scale; dx++) {
          const p = (((y + 4) * scale + dy) * width + (x + 4) * scale + dx) * 4;
          data[p] = data[p + 1] = data[p + 2] = 0;
        }
    }
  return { data, width };
}

function decode(q: QrCode): string | undefined {
  const { data, width } = pixels(q);
  return jsQR(data, width, width, { inversionAttempts: 'dontInvert' })?.data;
}

describe('QR encoder (checked by an independent decoder, jsQR)', () => {
  it('a typical invite link decodes back to itself, at level M', () => {
    const link = `https://cams.example/#/invite/${'eyJ2IjoxLCJkIjoiaGRpZF9hYmMifQ'.repeat(12)}`;
    const q = encodeQr(link, 'M');
    assert.ok(q.version >= 10, `version ${q.version}`);
    assert.equal(decode(q), link);
  });

  it('every mask, and versions from 1 to 40, at both levels', () => {
    for (let mask = 0; mask < 8; mask++)
      assert.equal(decode(encodeQr('HELLO hearth', 'M', mask)), 'HELLO hearth');
    const lengths = [1, 17, 40, 90, 150, 250, 400, 600, 900, 1400, 2000];
    for (const ecc of ['L', 'M'] as QrEcc[])
      for (const n of lengths) {
        if (n > qrCapacity(40, ecc)) continue;
        const text = Array.from(
          { length: n },
          (_, i) => 'abcdefghijklmnopqrstuvwxyz0123456789-_'[i % 38],
        ).join('');
        const q = encodeQr(text, ecc);
        assert.equal(decode(q), text, `${ecc} ${n} bytes, version ${q.version}`);
      }
  });

  it('control: the decoder does refuse a damaged code (so the checks above can fail)', () => {
    const q = encodeQr('HELLO hearth', 'M');
    const broken: QrCode = { ...q, get: (x, y) => (x >= 9 && y >= 9 ? !q.get(x, y) : q.get(x, y)) };
    assert.notEqual(decode(broken), 'HELLO hearth');
  });

  it('picks the smallest version that fits, at its exact capacity', () => {
    // Standard byte-mode capacities (ISO/IEC 18004 table 7).
    assert.equal(qrCapacity(1, 'L'), 17);
    assert.equal(qrCapacity(1, 'M'), 14);
    assert.equal(qrCapacity(10, 'M'), 213);
    assert.equal(qrCapacity(40, 'L'), 2953);
    assert.equal(qrCapacity(40, 'M'), 2331);
    assert.equal(encodeQr('x'.repeat(14), 'M').version, 1);
    assert.equal(encodeQr('x'.repeat(15), 'M').version, 2);
    assert.throws(() => encodeQr('x'.repeat(2332), 'M'), RangeError);
  });
});
