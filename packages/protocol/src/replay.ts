/**
 * Replay protection (threat model S11; security review R2).
 *
 * A signed message carries a random nonce and a timestamp. The receiver accepts it only if the
 * timestamp is inside its freshness window and the (signer, nonce) pair has not been seen while the
 * message could still be fresh.
 *
 * The cache is bounded and keyed by the time an entry was *received* (the receiver's clock), never
 * by the timestamp the sender claims: entries expire `windowMs` after they were received, and when
 * the cache is full the entry received first is evicted. A message's claimed timestamp only decides
 * whether it is `'stale'`, and the low-water mark that does so never passes the receiver's
 * `now - windowMs` (with `windowMs` at least the receiver's max age). So no sequence of inserts,
 * whatever timestamps they claim, can make a fresh in-window message with a new nonce `'stale'`:
 * the old cache raised its mark to the (claimed, possibly future) timestamp of evicted entries,
 * and a stranger's flood stamped 29 s ahead locked the owner out (review R2).
 *
 * The trade-off of the memory bound: a nonce evicted early (the cache overflowed within
 * `windowMs`) is forgotten. Callers therefore feed the cache only with messages from keys that
 * already hold a grant (the device checks the ACL first), so only a member's own flood can evict.
 */

/** Outcome of a replay check. */
export type ReplayVerdict = 'fresh' | 'replay' | 'stale';

/** A store of recently seen nonces. Implementations: {@link MemoryReplayCache}; a shared store for clusters. */
export interface ReplayCache {
  /**
   * Record `id` (signer and nonce) with its message timestamp `ts`, received at the receiver's
   * time `now`, unless it was already seen (`'replay'`) or `ts` is at or below the low-water mark
   * (`'stale'`, never above `now - windowMs`).
   */
  check(id: string, ts: number, now: number): ReplayVerdict;
}

interface Entry {
  /** The sender's claimed timestamp. */
  ts: number;
  /** When the receiver saw it (its own clock, kept monotonic). */
  at: number;
}

/** A bounded in-memory replay cache. */
export class MemoryReplayCache implements ReplayCache {
  /** Insertion order = receipt order (the clock below is monotonic). */
  private readonly seen = new Map<string, Entry>();
  private lowWater = Number.NEGATIVE_INFINITY;
  private clock = Number.NEGATIVE_INFINITY;

  /**
   * @param maxEntries most nonces kept (memory bound).
   * @param windowMs how long a nonce must be remembered after it was received: the receiver's
   *   freshness window (max age + max clock skew). Must be at least the receiver's max age.
   */
  constructor(
    readonly maxEntries = 100_000,
    readonly windowMs = 5 * 60_000,
  ) {
    if (!(maxEntries > 0)) throw new RangeError('maxEntries must be positive');
    if (!(windowMs > 0)) throw new RangeError('windowMs must be positive');
  }

  check(id: string, ts: number, now: number): ReplayVerdict {
    if (now > this.clock) this.clock = now;
    const horizon = this.clock - this.windowMs;
    this.prune(horizon);
    if (this.seen.has(id)) return 'replay';
    if (ts <= this.lowWater || ts <= horizon) return 'stale';
    while (this.seen.size >= this.maxEntries) this.evictFirst(horizon);
    this.seen.set(id, { ts, at: this.clock });
    return 'fresh';
  }

  /** Number of nonces held. */
  get size(): number {
    return this.seen.size;
  }

  /** The low-water mark (for tests and metrics): never above the newest `now - windowMs`. */
  get mark(): number {
    return this.lowWater;
  }

  /** Drop entries received before `horizon` (they are at the head: receipt order). */
  private prune(horizon: number): void {
    for (const [k, e] of this.seen) {
      if (e.at >= horizon) break;
      this.seen.delete(k);
      this.raise(e.ts, horizon);
    }
  }

  /** Evict the entry received first. Its nonce is forgotten (see the trade-off above). */
  private evictFirst(horizon: number): void {
    const first = this.seen.entries().next();
    if (first.done) return;
    const [k, e] = first.value;
    this.seen.delete(k);
    this.raise(e.ts, horizon);
  }

  /** Raise the mark toward a forgotten entry's timestamp, but never past the horizon. */
  private raise(ts: number, horizon: number): void {
    const m = Math.min(ts, horizon);
    if (m > this.lowWater) this.lowWater = m;
  }
}
