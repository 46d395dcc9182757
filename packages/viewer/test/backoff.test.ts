import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay } from '../src/core/backoff.js';

describe('backoff', () => {
  it('grows exponentially within [ceiling/4, ceiling) and caps', () => {
    for (let a = 0; a < 40; a++) {
      const ceiling = Math.min(30_000, 500 * 2 ** a);
      assert.equal(backoffDelay(a, { random: () => 0 }), Math.floor(ceiling / 4), `attempt ${a} low`);
      assert.ok(backoffDelay(a, { random: () => 0.999999 }) < ceiling, `attempt ${a} high`);
    }
  });
  it('jitters', () => {
    const seen = new Set(Array.from({ length: 50 }, () => backoffDelay(6)));
    assert.ok(seen.size > 10);
  });
});
