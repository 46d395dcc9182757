/**
 * Reconnect delays: exponential with full jitter ("AWS full jitter"), so that thousands of viewers
 * cut off by a server restart do not come back in lock step.
 */

/** Options of {@link backoffDelay}. */
export interface BackoffOptions {
  /** First ceiling (ms). Default 500. */
  baseMs?: number;
  /** Largest ceiling (ms). Default 30 s. */
  maxMs?: number;
  /** Uniform [0, 1) source. Default Math.random (timing jitter needs no CSPRNG). */
  random?: () => number;
}

/** Delay before reconnect attempt `attempt` (0-based): uniform in [ceiling/4, ceiling). */
export function backoffDelay(attempt: number, o: BackoffOptions = {}): number {
  const base = o.baseMs ?? 500;
  const max = o.maxMs ?? 30_000;
  const rnd = o.random ?? Math.random;
  const ceiling = Math.min(max, base * 2 ** Math.min(Math.max(0, attempt), 30));
  // A floor of a quarter keeps a burst of instant retries from hammering a server that is down.
  return Math.floor(ceiling / 4 + rnd() * ((ceiling * 3) / 4));
}
