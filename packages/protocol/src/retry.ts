/**
 * The one retry schedule: exponential backoff with jitter, so that thousands of clients cut off by a
 * server restart do not come back in lock step. The rendezvous client core (agent and viewer) and
 * the viewer's live-view retries all use it.
 */
import type { CryptoEnv } from './crypto/env.js';

/** A retry schedule: the first ceiling and the largest one (ms). */
export interface RetrySchedule {
  /** First ceiling (ms). Default 500. */
  baseMs?: number;
  /** Largest ceiling (ms). Default 30 s. */
  maxMs?: number;
}

/** Options of {@link backoffDelay}: a schedule and a source of jitter. */
export interface BackoffOptions extends RetrySchedule {
  /** Uniform [0, 1) source. Default Math.random (timing jitter needs no CSPRNG). */
  random?: () => number;
}

/** The schedule used when none is given. */
export const DEFAULT_RETRY: Required<RetrySchedule> = { baseMs: 500, maxMs: 30_000 };

/**
 * Delay before retry `attempt` (0-based): the ceiling is `baseMs · 2^attempt`, capped at `maxMs`,
 * and the delay is uniform in [ceiling/4, ceiling). The floor of a quarter keeps a burst of instant
 * retries from hammering a server that is down.
 */
export function backoffDelay(attempt: number, o: BackoffOptions = {}): number {
  const base = Math.max(1, o.baseMs ?? DEFAULT_RETRY.baseMs);
  const max = Math.max(base, o.maxMs ?? DEFAULT_RETRY.maxMs);
  const rnd = o.random ?? Math.random;
  const a = Number.isFinite(attempt) ? Math.min(Math.max(0, Math.floor(attempt)), 30) : 0;
  const ceiling = Math.min(max, base * 2 ** a);
  const u = Math.min(Math.max(rnd(), 0), 1 - Number.EPSILON);
  return Math.floor(ceiling / 4 + u * ((ceiling * 3) / 4));
}

/** A uniform [0, 1) number from a CryptoEnv's random bytes (deterministic under `fixedEnv`). */
export function envUnit(env: CryptoEnv): number {
  const b = env.random(4);
  return (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) / 2 ** 32;
}
