/**
 * The replay cache under a flood (security review R2): a stranger's offers stamped in the future
 * must not lock the owner out. Each attack also runs against a copy of the old algorithm (the
 * "broken defence"), which it does lock out, so these tests would fail with the defence removed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MemoryReplayCache, type ReplayCache } from '../src/replay.js';
import { OldReplayCache } from './broken-replay-cache.js';

const NOW = 1_800_000_000_000;

/** The attack: `n` distinct nonces from one stranger key, each stamped 29 s ahead. */
function flood(c: ReplayCache, n: number, now = NOW): void {
  for (let i = 0; i < n; i++) c.check(`huk_stranger/n${i}`, now + 29_000, now);
}

describe('replay cache under a flood of future-stamped entries (review R2)', () => {
  it("control: the old cache refuses the owner's fresh entry as stale after the flood", () => {
    const old = new OldReplayCache(50_000, 5 * 60_000);
    flood(old, 50_001);
    assert.equal(old.check('huk_owner/fresh', NOW, NOW), 'stale');
  });

  it('after the flood, a fresh entry at now is accepted; a replay of it is still refused', () => {
    const c = new MemoryReplayCache(50_000, 5 * 60_000);
    flood(c, 50_001);
    assert.equal(c.check('huk_owner/fresh', NOW, NOW), 'fresh');
    assert.equal(c.check('huk_owner/fresh', NOW, NOW), 'replay');
    assert.ok(c.mark <= NOW - 5 * 60_000, `mark ${c.mark} passed now - window`);
  });

  it('the memory bound holds under the flood, and entries expire by receipt time', () => {
    const c = new MemoryReplayCache(1000, 60_000);
    flood(c, 10_000);
    assert.equal(c.size, 1000);
    // Received 61 s ago (claimed 29 s ahead): expired now, although its claimed time is "recent".
    assert.equal(c.check('huk_owner/later', NOW + 61_000, NOW + 61_000), 'fresh');
    assert.equal(c.size, 1);
  });

  it('a replay is refused for as long as it is in the window, while the cache is not full', () => {
    const c = new MemoryReplayCache(100, 150_000);
    assert.equal(c.check('k/a', NOW, NOW), 'fresh');
    for (let t = 0; t <= 149_000; t += 1000) assert.equal(c.check('k/a', NOW, NOW + t), 'replay');
    // Past the window (received 150 s + ago) it is forgotten, and its timestamp is now stale.
    assert.equal(c.check('k/a', NOW, NOW + 151_000), 'stale');
  });

  it('property: no sequence of inserts makes a fresh in-window entry with a new nonce stale', () => {
    const maxAge = 120_000;
    const maxFuture = 30_000;
    const window = maxAge + maxFuture;
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            id: fc.integer({ min: 0, max: 50 }),
            // Claimed timestamps anywhere around now (far past, far future), the clock moving on.
            dts: fc.integer({ min: -10 * window, max: 10 * window }),
            step: fc.integer({ min: 0, max: 20_000 }),
          }),
          { maxLength: 200 },
        ),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: -maxAge, max: maxFuture }),
        (ops, max, offset) => {
          const c = new MemoryReplayCache(max, window);
          let now = NOW;
          for (const o of ops) {
            now += o.step;
            c.check(`k/${o.id}`, now + o.dts, now);
          }
          assert.ok(c.size <= max);
          assert.equal(c.check('k/new-nonce', now + offset, now), 'fresh');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property (control): the same search finds a lock-out in the old cache', () => {
    const window = 150_000;
    let found = false;
    try {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 29_000 }), fc.integer({ min: 1, max: 10 }), (ahead, max) => {
          const c = new OldReplayCache(max, window);
          for (let i = 0; i <= max; i++) c.check(`s/${i}`, NOW + ahead, NOW);
          assert.equal(c.check('k/new-nonce', NOW, NOW), 'fresh');
        }),
        { numRuns: 50 },
      );
    } catch {
      found = true;
    }
    assert.ok(found, 'the old algorithm should be locked out');
  });
});
