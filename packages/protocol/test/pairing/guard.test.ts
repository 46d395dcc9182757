import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fixedEnv } from '../../src/crypto/env.js';
import { AccessError, LimitError } from '../../src/errors.js';
import { DEFAULT_ATTEMPT_POLICIES, DEFAULT_WINDOW_MS, PairingGuard } from '../../src/pairing/index.js';

describe('PairingGuard', () => {
  it('defaults: 10-minute window, qr 20 attempts, code 5 attempts', () => {
    assert.equal(DEFAULT_WINDOW_MS, 600_000);
    assert.equal(DEFAULT_ATTEMPT_POLICIES.qr.maxAttempts, 20);
    assert.equal(DEFAULT_ATTEMPT_POLICIES.code.maxAttempts, 5);
  });

  it('closed until opened; opened, closes after windowMs', () => {
    const env = fixedEnv();
    const g = new PairingGuard({ env });
    assert.throws(
      () => g.check('qr'),
      (e) => e instanceof AccessError && e.code === 'E_PAIRING_CLOSED',
    );
    assert.equal(g.snapshot().closeReason, 'never-opened');
    g.open();
    g.check('qr');
    assert.equal(g.snapshot().closesAt, env.now() + DEFAULT_WINDOW_MS);
    env.advance(DEFAULT_WINDOW_MS - 1);
    assert.equal(g.isOpen(), true);
    env.advance(1);
    assert.equal(g.isOpen(), false);
    assert.equal(g.snapshot().closeReason, 'expired');
  });

  it('backoff schedule and lock (code policy)', () => {
    const env = fixedEnv();
    const g = new PairingGuard({ env });
    g.open();
    const t0 = env.now();
    g.charge('code');
    g.charge('code');
    assert.throws(
      () => g.charge('code'),
      (e) => e instanceof LimitError && e.code === 'E_RATE_LIMITED' && e.retryAt === t0 + 2000,
    );
    env.advance(2000);
    g.charge('code');
    assert.equal(g.snapshot().methods.code.retryAt, env.now() + 4000);
    env.advance(4000);
    g.charge('code');
    env.advance(8000);
    g.charge('code');
    const s = g.snapshot().methods.code;
    assert.deepEqual([s.attempts, s.remaining, s.locked], [5, 0, true]);
    env.advance(3_600_000 - 14_000 - 1);
    // Window (10 min) has expired by now: closed wins over locked.
    assert.throws(
      () => g.charge('code'),
      (e) => e instanceof AccessError,
    );
    g.open();
    assert.equal(g.snapshot().methods.code.attempts, 0);
    g.charge('code');
  });

  it('locked: E_LOCKED while the window stays open; the other method is unaffected', () => {
    const env = fixedEnv();
    const g = new PairingGuard({
      env,
      policies: { code: { maxAttempts: 2, freeAttempts: 2, baseDelayMs: 0, maxDelayMs: 0 } },
    });
    g.open();
    g.charge('code');
    g.charge('code');
    assert.throws(
      () => g.check('code'),
      (e) => e instanceof LimitError && e.code === 'E_LOCKED',
    );
    g.charge('qr');
  });

  it('complete(): owner first, then the window is closed; re-opened windows pair members', () => {
    const env = fixedEnv();
    const g = new PairingGuard({ env });
    g.open();
    assert.equal(g.complete('qr'), 'owner');
    assert.throws(
      () => g.complete('qr'),
      (e) => e instanceof AccessError && e.code === 'E_PAIRING_CLOSED',
    );
    g.open();
    assert.equal(g.snapshot().role, 'member');
    assert.equal(g.complete('code'), 'member');
    assert.equal(g.snapshot().paired, 2);
  });

  it('rejects nonsensical policies', () => {
    const env = fixedEnv();
    assert.throws(
      () =>
        new PairingGuard({
          env,
          policies: { qr: { maxAttempts: 0, freeAttempts: 0, baseDelayMs: 0, maxDelayMs: 0 } },
        }),
      RangeError,
    );
    assert.throws(() => new PairingGuard({ env, windowMs: 0 }), RangeError);
  });
});
