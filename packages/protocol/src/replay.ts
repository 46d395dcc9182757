/**
 * Replay protection (threat model S11).
 *
 * A signed message carries a random nonce and a timestamp. The receiver accepts it only if the
 * timestamp is inside its freshness window and the (signer, nonce) pair has not been seen while the
 * message could still be fresh. The cache is bounded: when it is full, the oldest entry is evicted
 * and the low-water mark rises to its timestamp, so anything at or below the mark is refused as
 * stale. That way eviction can never re-admit a replay; under a flood the window just narrows.
 */

/** Outcome of a replay check. */
export type ReplayVerdict = 'fresh' | 'replay' | 'stale';

/** A store of recently seen nonces. Implementations: {@link MemoryReplayCache}; a shared store for clusters. */
export interface ReplayCache {
  /**
   * Record `id` (signer and nonce) with its message timestamp `ts`, unless it was already seen
   * (`'replay'`) or `ts` is at or below the low-water mark (`'stale'`).
   */
  check(id: string, ts: number): ReplayVerdict;
}

/** A bounded in-memory replay cache. */
export class MemoryReplayCache implements ReplayCache {
  private readonly seen = new Map<string, number>();
  private lowWater = Number.NEGATIVE_INFINITY;

  /**
   * @param maxEntries most nonces kept (memory bound).
   * @param windowMs how long a nonce must be remembered: the receiver's freshness window
   *   (max age + max clock skew). Entries older than `newest - windowMs` are pruned.
   */
  constructor(
    readonly maxEntries = 100_000,
    readonly windowMs = 5 * 60_000,
  ) {
    if (!(maxEntries > 0)) throw new RangeError('maxEntries must be positive');
  }

  check(id: string, ts: number): ReplayVerdict {
    if (ts <= this.lowWater) return 'stale';
    if (this.seen.has(id)) return 'replay';
    this.prune(ts);
    while (this.seen.size >= this.maxEntries) this.evictOldest();
    if (ts <= this.lowWater) return 'stale';
    this.seen.set(id, ts);
    return 'fresh';
  }

  /** Number of nonces held. */
  get size(): number {
    return this.seen.size;
  }

  private prune(ts: number): void {
    // Cheap amortised pruning: insertion order is roughly time order; drop expired heads.
    const horizon = ts - this.windowMs;
    for (const [k, t] of this.seen) {
      if (t >= horizon) break;
      this.seen.delete(k);
    }
  }

  private evictOldest(): void {
    // Find the minimum timestamp among the first few entries (near-sorted map), evict it, raise the mark.
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
    if (minKey === undefined) return;
    this.seen.delete(minKey);
    if (minTs > this.lowWater) this.lowWater = minTs;
  }
}
