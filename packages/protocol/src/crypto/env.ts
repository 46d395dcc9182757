/**
 * Injectable randomness and clock, so that every state machine and test is deterministic when it
 * needs to be. Production code uses {@link systemEnv}; tests use {@link fixedEnv}.
 */

/** A source of random bytes and the current time. */
export interface CryptoEnv {
  /** Fill and return `n` random bytes. */
  random(n: number): Uint8Array;
  /** Current time, milliseconds since the Unix epoch. */
  now(): number;
}

/** WebCrypto's CSPRNG and the wall clock. */
export const systemEnv: CryptoEnv = {
  random(n: number): Uint8Array {
    const out = new Uint8Array(n);
    // getRandomValues accepts at most 65536 bytes per call.
    for (let o = 0; o < n; o += 65536)
      globalThis.crypto.getRandomValues(out.subarray(o, Math.min(n, o + 65536)));
    return out;
  },
  now: () => Date.now(),
};

/**
 * A deterministic environment for tests: a counter-based byte stream (NOT random; never use in
 * production) and a settable clock.
 */
export function fixedEnv(
  seed = 1,
  start = 1_700_000_000_000,
): CryptoEnv & { advance(ms: number): void; set(ms: number): void } {
  let counter = seed >>> 0;
  let t = start;
  return {
    random(n: number): Uint8Array {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        // xorshift32
        counter ^= counter << 13;
        counter ^= counter >>> 17;
        counter ^= counter << 5;
        counter >>>= 0;
        out[i] = counter & 0xff;
      }
      return out;
    },
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
    set(ms: number) {
      t = ms;
    },
  };
}
