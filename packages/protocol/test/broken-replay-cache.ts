/** Test support: the broken defence for the replay-cache tests (review R2). Not a test file. */
import type { ReplayCache, ReplayVerdict } from '../src/replay.js';

/**
 * The cache before review R2, kept verbatim as the broken defence: eviction by claimed timestamp,
 * and a low-water mark raised to the (possibly future) timestamp of evicted entries.
 */
export class OldReplayCache implements ReplayCache {
  private readonly seen = new Map<string, number>();
  private lowWater = Number.NEGATIVE_INFINITY;
  constructor(
    readonly maxEntries = 100_000,
    readonly windowMs = 5 * 60_000,
  ) {}
  check(id: string, ts: number, _now: number): ReplayVerdict {
    if (ts <= this.lowWater) return 'stale';
    if (this.seen.has(id)) return 'replay';
    const horizon = ts - this.windowMs;
    for (const [k, t] of this.seen) {
      if (t >= horizon) break;
      this.seen.delete(k);
    }
    while (this.seen.size >= this.maxEntries) {
      let minKey: string | undefined;
      let minTs = Number.POSITIVE_INFINITY;
      let scanned = 0;
      for (const [k, t] of this.seen) {
        if (t < minTs) {
          minTs = t;
          minKey = k;
        }
        if (++scanned >= 64) break;
      }
      if (minKey === undefined) break;
      this.seen.delete(minKey);
      if (minTs > this.lowWater) this.lowWater = minTs;
    }
    if (ts <= this.lowWater) return 'stale';
    this.seen.set(id, ts);
    return 'fresh';
  }
}
