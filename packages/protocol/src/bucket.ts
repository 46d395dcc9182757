/**
 * A token bucket: `rate` tokens a second, at most `burst` held, starting full. Pure (the caller
 * passes the time), so the server and the device share it.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.last) / 1000) * this.rate);
    this.last = Math.max(this.last, now);
  }

  /** Take one token at `now`; false (and nothing taken) when the bucket is empty. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether a token is there at `now` (nothing is taken). */
  ready(now: number): boolean {
    this.refill(now);
    return this.tokens >= 1;
  }

  /** Give one token back (what it was taken for turned out not to count). */
  give(): void {
    this.tokens = Math.min(this.burst, this.tokens + 1);
  }
}

/**
 * One {@link TokenBucket} per key (an address, a key, a stranger), at most `max` keys: the least
 * recently used is forgotten first, so a flood of new keys costs bounded memory.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, TokenBucket>();
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly max: number,
  ) {}

  /** The bucket of `key` (a full one when the key is new), now the most recently used. */
  get(key: string, now: number): TokenBucket {
    let b = this.buckets.get(key);
    if (b) this.buckets.delete(key);
    else {
      b = new TokenBucket(this.rate, this.burst, now);
      if (this.buckets.size >= this.max) this.buckets.delete(this.buckets.keys().next().value as string);
    }
    this.buckets.set(key, b);
    return b;
  }

  /** Take one token from `key`'s bucket at `now`. */
  take(key: string, now: number): boolean {
    return this.get(key, now).take(now);
  }

  /** Keys tracked (tests). */
  get size(): number {
    return this.buckets.size;
  }
}
