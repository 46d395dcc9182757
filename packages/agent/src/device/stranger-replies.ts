/**
 * What the device sends to keys that hold no grant (refusals, channel and pairing replies) is
 * rate-limited per stranger and in total, and what goes over is dropped and counted, not sent
 * (review R3): a flood of requests from strangers gets at most a trickle of answers, never one
 * per request, so the device never answers a stranger faster than the server lets it ask, and its
 * own connection is never closed for traffic that others provoked.
 */
import { TokenBucket } from '@hearth/protocol';

export interface StrangerRepliesOptions {
  /** Is `key` a grant holder now (owner or member)? Those are never limited here. */
  isHolder(key: string): boolean;
  now(): number;
  /** Replies to one stranger: per second and burst. Defaults 1 and 10. */
  perStrangerPerSecond?: number;
  perStrangerBurst?: number;
  /** Replies to all strangers together: per second and burst. Defaults 10 and 40. */
  totalPerSecond?: number;
  totalBurst?: number;
}

/** Most strangers tracked at once (the oldest goes; the total bucket still caps). */
const MAX_TRACKED = 4096;

export class StrangerReplies {
  private readonly per = new Map<string, TokenBucket>();
  private readonly total: TokenBucket;
  private droppedCount = 0;
  private readonly droppedTo = new Set<string>();

  constructor(private readonly o: StrangerRepliesOptions) {
    this.total = new TokenBucket(o.totalPerSecond ?? 10, o.totalBurst ?? 40, o.now());
  }

  /** May a message go to `to` now? Counts it as dropped when not. */
  allow(to: string): boolean {
    if (this.o.isHolder(to)) return true;
    const now = this.o.now();
    let b = this.per.get(to);
    if (!b) {
      if (this.per.size >= MAX_TRACKED) this.per.delete(this.per.keys().next().value as string);
      b = new TokenBucket(this.o.perStrangerPerSecond ?? 1, this.o.perStrangerBurst ?? 10, now);
      this.per.set(to, b);
    }
    if (b.take(now) && this.total.take(now)) return true;
    this.droppedCount++;
    if (this.droppedTo.size < MAX_TRACKED) this.droppedTo.add(to);
    return false;
  }

  /** What was dropped since the last call (for one coalesced log line), then reset. */
  takeDropped(): { dropped: number; strangers: number } {
    const r = { dropped: this.droppedCount, strangers: this.droppedTo.size };
    this.droppedCount = 0;
    this.droppedTo.clear();
    return r;
  }
}
