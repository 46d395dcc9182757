/**
 * The persisted pairing state (the agent's pairing.json): a guard snapshot round-trips, restores the
 * same budget, and hostile or corrupt files are refused with a typed ProtocolError (size limit,
 * schema; fuzzed).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { utf8 } from '../../src/bytes.js';
import { fixedEnv } from '../../src/crypto/env.js';
import { ProtocolError } from '../../src/errors.js';
import {
  decodePairingState,
  encodePairingState,
  MAX_PAIRING_STATE_BYTES,
  PairingGuard,
} from '../../src/pairing/index.js';
import { editsArb, mutate, valueOrProtocolError } from '../fuzz-helpers.js';

const RUNS = Number(process.env.HEARTH_FUZZ_RUNS ?? 100_000);

function spentGuard() {
  const env = fixedEnv(1, 1_800_000_000_000);
  const g = new PairingGuard({ env });
  g.open();
  for (let i = 0; i < 3; i++) {
    g.charge('code');
    g.recordFailure('code');
    env.advance(60_000);
  }
  return { g, env };
}

describe('pairing state file', () => {
  it('round-trips a snapshot, and a guard restored from it keeps the spent budget', () => {
    const { g, env } = spentGuard();
    const snap = g.snapshot();
    const decoded = decodePairingState(encodePairingState(snap));
    assert.deepEqual(decoded, JSON.parse(JSON.stringify(snap)));
    const restored = new PairingGuard({ env, restore: decoded });
    assert.deepEqual(restored.snapshot(), snap);
    assert.equal(restored.snapshot().methods.code.remaining, 2);
    // Bytes work too (the agent reads a Buffer).
    assert.deepEqual(decodePairingState(utf8(encodePairingState(snap))), decoded);
  });

  it('refuses negative, fractional or missing counters, unknown roles and close reasons', () => {
    const snap = JSON.parse(encodePairingState(spentGuard().g.snapshot()));
    const bad = [
      { ...snap, methods: { ...snap.methods, code: { ...snap.methods.code, attempts: -1 } } },
      { ...snap, methods: { ...snap.methods, code: { ...snap.methods.code, attempts: 0.5 } } },
      { ...snap, methods: { qr: snap.methods.qr } },
      { ...snap, role: 'admin' },
      { ...snap, closeReason: 'hacked' },
      { ...snap, open: 'yes' },
      { ...snap, closesAt: 2 ** 60 },
      [],
      null,
    ];
    for (const b of bad) {
      assert.throws(
        () => decodePairingState(JSON.stringify(b)),
        (e) => e instanceof ProtocolError && e.code === 'E_SCHEMA',
        JSON.stringify(b).slice(0, 80),
      );
    }
    assert.throws(
      () => decodePairingState('{'),
      (e) => e instanceof ProtocolError,
    );
    assert.throws(
      () => decodePairingState(' '.repeat(MAX_PAIRING_STATE_BYTES + 1)),
      (e) => e instanceof ProtocolError && e.code === 'E_TOO_LARGE',
    );
  });

  it(`fuzz: ${RUNS} random and mutated inputs give a valid state or a ProtocolError`, () => {
    const valid = encodePairingState(spentGuard().g.snapshot());
    const input = fc.oneof(
      fc.string({ maxLength: 600 }),
      fc.uint8Array({ maxLength: 600 }),
      fc.json({ maxDepth: 3 }),
      editsArb.map((e) => mutate(valid, e)),
      editsArb.map((e) => utf8(mutate(valid, e))),
    );
    fc.assert(
      fc.property(input, (x) => {
        const r = valueOrProtocolError(() => decodePairingState(x));
        if (r instanceof ProtocolError) return;
        // Whatever is accepted restores a working guard.
        const g = new PairingGuard({ env: fixedEnv(1, 1_800_000_000_000), restore: r });
        assert.equal(typeof g.snapshot().open, 'boolean');
      }),
      { numRuns: RUNS },
    );
  });
});
