import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { b64u, fromB64u, hex } from '../../src/bytes.js';
import { fixedEnv } from '../../src/crypto/env.js';
import { AccessError, HearthError, LimitError, ProtocolError, VerificationError } from '../../src/errors.js';
import {
  DevicePairing,
  decodePairingMessage,
  PairingGuard,
  type PairingMethod,
  SPAKE2PLUS_POINTS,
} from '../../src/pairing/index.js';
import { fakeDeviceId, fixture, newDevice, newGuard, newViewer, run } from './helpers.js';

const WRONG_QR = new Uint8Array(16).fill(0x42);
const WRONG_CODE = new Uint8Array(5).fill(0x42);

function assertCode(e: unknown, cls: new (...a: never[]) => HearthError, code: string, msg?: string): void {
  assert.ok(e instanceof cls, `${msg ?? ''} expected ${cls.name}, got ${String(e)}`);
  assert.equal((e as HearthError).code, code, msg);
}

async function rejectsWith(
  p: Promise<unknown>,
  cls: new (...a: never[]) => HearthError,
  code: string,
): Promise<void> {
  await assert.rejects(p, (e) => {
    assertCode(e, cls, code);
    return true;
  });
}

describe('pairing: happy path', () => {
  for (const method of ['qr', 'code'] as PairingMethod[]) {
    it(`${method}: both sides finish with matching keys and pinned identities`, async () => {
      const f = await fixture();
      const guard = newGuard(f.env);
      const dev = newDevice(f, guard);
      const view = newViewer(f, { method });
      const o = await run(view, dev);
      assert.equal(o.error, undefined, String(o.error));
      assert.ok(o.device && o.viewer);
      assert.equal(o.device.sessionId, o.viewer.sessionId, 'both sides derive the same K_shared');
      assert.equal(o.device.sessionId.length, 16);
      assert.deepEqual(o.device.viewerKey, f.viewerSigner.publicKey, 'device pinned the viewer key');
      assert.deepEqual(o.viewer.deviceKey, f.deviceSigner.publicKey, 'viewer pinned the device key');
      assert.equal(o.device.role, 'owner');
      assert.equal(o.viewer.role, 'owner');
      assert.equal(o.device.method, method);
      assert.equal(o.viewer.deviceId, f.deviceId);
      assert.equal(dev.state, 'done');
      assert.equal(view.state, 'done');
      assert.deepEqual(
        o.wire.map((w) => decodePairingMessage(w).t),
        ['pair/start', 'pair/challenge', 'pair/confirm', 'pair/done'],
      );
      // The window closes after the first owner pairing.
      const s = guard.snapshot();
      assert.equal(s.open, false);
      assert.equal(s.closeReason, 'paired');
      assert.equal(s.hasOwner, true);
      assert.equal(s.methods[method].attempts, 1);
      assert.equal(s.methods[method].failures, 0);
    });
  }

  it('the wire never carries the setup secret, w0 or L', async () => {
    const f = await fixture();
    const o = await run(newViewer(f), newDevice(f, newGuard(f.env)));
    const all = o.wire.join('');
    for (const secret of [f.qrSecret, f.records.qr.w0, f.records.qr.L, f.records.code.w0]) {
      assert.ok(!all.includes(b64u(secret)) && !all.includes(hex(secret)));
    }
  });

  it('after the owner pairs, the window is closed; re-opened, the next viewer becomes a member', async () => {
    const f = await fixture();
    const guard = newGuard(f.env);
    assert.ok((await run(newViewer(f), newDevice(f, guard))).device);
    const closed = await run(newViewer(f), newDevice(f, guard));
    assertCode(closed.error, AccessError, 'E_PAIRING_CLOSED');
    assertCode(closed.peerError, AccessError, 'E_PAIRING_CLOSED', 'viewer learns the window is closed');
    guard.open();
    const o = await run(newViewer(f, { method: 'code' }), newDevice(f, guard));
    assert.equal(o.device?.role, 'member');
    assert.equal(o.viewer?.role, 'member');
  });

  it('two concurrent sessions: only the first to confirm pairs', async () => {
    const f = await fixture();
    const guard = newGuard(f.env);
    const d1 = newDevice(f, guard);
    const d2 = newDevice(f, guard);
    const v1 = newViewer(f);
    const v2 = newViewer(f, { method: 'code' });
    const c1 = await d1.receive(JSON.stringify((await v1.start()).send[0]));
    const c2 = await d2.receive(JSON.stringify((await v2.start()).send[0]));
    const k1 = await v1.receive(JSON.stringify(c1.send[0]));
    const k2 = await v2.receive(JSON.stringify(c2.send[0]));
    assert.ok((await d1.receive(JSON.stringify(k1.send[0]))).result);
    await rejectsWith(d2.receive(JSON.stringify(k2.send[0])), AccessError, 'E_PAIRING_CLOSED');
  });
});

describe('pairing: wrong secret', () => {
  for (const method of ['qr', 'code'] as PairingMethod[]) {
    it(`${method}: the viewer detects it at the challenge; the device counts the failure`, async () => {
      const f = await fixture();
      const guard = newGuard(f.env);
      const o = await run(
        newViewer(f, { method, secret: method === 'qr' ? WRONG_QR : WRONG_CODE }),
        newDevice(f, guard),
      );
      assert.equal(o.errorSide, 'viewer');
      assertCode(o.error, VerificationError, 'E_BAD_CONFIRMATION');
      assertCode(o.peerError, VerificationError, 'E_BAD_CONFIRMATION', 'device side');
      assert.equal(o.device, undefined);
      assert.equal(o.viewer, undefined);
      const s = guard.snapshot().methods[method];
      assert.equal(s.attempts, 1);
      assert.equal(s.failures, 1);
      assert.equal(guard.snapshot().open, true, 'a failure does not close the window');
    });
  }

  it('an attacker who ignores the mismatch and sends a confirmation: the device fails with E_BAD_CONFIRMATION', async () => {
    const f = await fixture();
    const guard = newGuard(f.env);
    const dev = newDevice(f, guard);
    // Honest run to harvest a well-formed pair/confirm from a different session.
    const other = await run(newViewer(f), newDevice(f, newGuard(f.env)));
    const v = newViewer(f, { secret: WRONG_QR });
    await dev.receive(JSON.stringify((await v.start()).send[0]));
    await rejectsWith(dev.receive(other.wire[2]!), VerificationError, 'E_BAD_CONFIRMATION');
    assert.equal(guard.snapshot().methods.qr.failures, 1);
    assert.equal(dev.state, 'failed');
  });

  it('an abandoned attempt (challenge sent, no confirm) is charged and counted', async () => {
    const f = await fixture();
    const guard = newGuard(f.env);
    const dev = newDevice(f, guard);
    await dev.receive(JSON.stringify((await newViewer(f).start()).send[0]));
    dev.abort();
    assert.deepEqual([guard.snapshot().methods.qr.attempts, guard.snapshot().methods.qr.failures], [1, 1]);
  });
});

describe('pairing: attempt limits and backoff', () => {
  it('code: E_RATE_LIMITED with retryAt, then allowed once the clock passes retryAt', async () => {
    const f = await fixture();
    const env = fixedEnv(11);
    const guard = newGuard(env); // code: 5 attempts, 2 free, then 2 s, 4 s, 8 s...
    const wrong = () =>
      run(newViewer(f, { method: 'code', secret: WRONG_CODE, env }), newDevice(f, guard, env));
    for (let i = 0; i < 2; i++) assertCode((await wrong()).error, VerificationError, 'E_BAD_CONFIRMATION');
    const limited = await wrong();
    assertCode(limited.error, LimitError, 'E_RATE_LIMITED');
    assert.equal(limited.errorSide, 'device');
    const retryAt = (limited.error as LimitError).retryAt;
    assert.equal(retryAt, env.now() + 2000);
    assertCode(limited.peerError, LimitError, 'E_RATE_LIMITED', 'viewer side');
    assert.equal((limited.peerError as LimitError).retryAt, retryAt, 'retryAt reaches the viewer');
    assert.equal(guard.snapshot().methods.code.attempts, 2, 'a refused attempt is not charged');
    assert.equal(guard.snapshot().methods.code.retryAt, retryAt);
    env.advance(1999);
    assertCode((await wrong()).error, LimitError, 'E_RATE_LIMITED');
    env.advance(1);
    assertCode((await wrong()).error, VerificationError, 'E_BAD_CONFIRMATION');
    // Next wait doubles.
    env.advance(3999);
    assertCode((await wrong()).error, LimitError, 'E_RATE_LIMITED');
    env.advance(1);
    assertCode((await wrong()).error, VerificationError, 'E_BAD_CONFIRMATION');
  });

  it('beyond the budget the method locks (E_LOCKED); QR keeps its own budget; re-opening restores it', async () => {
    const f = await fixture();
    const env = fixedEnv(12);
    const guard = newGuard(env);
    const wrong = () =>
      run(newViewer(f, { method: 'code', secret: WRONG_CODE, env }), newDevice(f, guard, env));
    for (let i = 0; i < 5; i++) {
      assertCode((await wrong()).error, VerificationError, 'E_BAD_CONFIRMATION', `attempt ${i + 1}`);
      env.advance(60_000);
    }
    const locked = await wrong();
    assertCode(locked.error, LimitError, 'E_LOCKED');
    assertCode(locked.peerError, LimitError, 'E_LOCKED');
    // Even the right code is refused now.
    assertCode(
      (await run(newViewer(f, { method: 'code', env }), newDevice(f, guard, env))).error,
      LimitError,
      'E_LOCKED',
    );
    const s = guard.snapshot().methods.code;
    assert.deepEqual([s.attempts, s.failures, s.remaining, s.locked], [5, 5, 0, true]);
    assert.equal(guard.snapshot().methods.qr.locked, false);
    guard.open();
    const ok = await run(newViewer(f, { method: 'code', env }), newDevice(f, guard, env));
    assert.equal(ok.error, undefined);
    assert.equal(ok.viewer?.role, 'owner');
  });

  it('qr: 20 attempts, then E_LOCKED', async () => {
    const f = await fixture();
    const env = fixedEnv(13);
    // With the default backoff, 20 QR attempts need more than the 10-minute window: widen it here.
    const guard = newGuard(env, { windowMs: 3_600_000 });
    for (let i = 0; i < 20; i++) {
      const o = await run(newViewer(f, { secret: WRONG_QR, env }), newDevice(f, guard, env));
      assertCode(o.error, VerificationError, 'E_BAD_CONFIRMATION', `attempt ${i + 1}`);
      env.advance(60_000);
    }
    assertCode((await run(newViewer(f, { env }), newDevice(f, guard, env))).error, LimitError, 'E_LOCKED');
  });
});

describe('pairing: window', () => {
  it('never opened: E_PAIRING_CLOSED', async () => {
    const f = await fixture();
    const o = await run(newViewer(f), newDevice(f, newGuard(f.env, { open: false })));
    assertCode(o.error, AccessError, 'E_PAIRING_CLOSED');
    assertCode(o.peerError, AccessError, 'E_PAIRING_CLOSED');
  });

  it('expired after 10 minutes: E_PAIRING_CLOSED', async () => {
    const f = await fixture();
    const env = fixedEnv(14);
    const guard = newGuard(env);
    env.advance(10 * 60 * 1000);
    assertCode(
      (await run(newViewer(f, { env }), newDevice(f, guard, env))).error,
      AccessError,
      'E_PAIRING_CLOSED',
    );
    assert.equal(guard.snapshot().closeReason, 'expired');
  });

  it('expires between challenge and confirm: E_PAIRING_CLOSED, nothing paired', async () => {
    const f = await fixture();
    const env = fixedEnv(15);
    const guard = newGuard(env);
    env.advance(10 * 60 * 1000 - 1000);
    const o = await run(newViewer(f, { env }), newDevice(f, guard, env), (step, j) => {
      if (step === 2) env.advance(2000);
      return j;
    });
    assertCode(o.error, AccessError, 'E_PAIRING_CLOSED');
    assert.equal(o.device, undefined);
    assert.equal(o.viewer, undefined);
    assert.equal(guard.snapshot().hasOwner, false);
  });

  it('snapshot survives a restart (budget not refilled)', async () => {
    const f = await fixture();
    const env = fixedEnv(16);
    const guard = newGuard(env);
    await run(newViewer(f, { method: 'code', secret: WRONG_CODE, env }), newDevice(f, guard, env));
    const snap = JSON.parse(JSON.stringify(guard.snapshot()));
    const restored = new PairingGuard({ env, restore: snap });
    assert.deepEqual(restored.snapshot(), guard.snapshot());
    assert.equal(restored.snapshot().methods.code.remaining, 4);
  });
});

describe('pairing: identity binding', () => {
  it('device key not matching the expected device ID: viewer refuses with VerificationError', async () => {
    const f = await fixture();
    const o = await run(newViewer(f, { deviceIdMatches: () => false }), newDevice(f, newGuard(f.env)));
    assert.equal(o.errorSide, 'viewer');
    assertCode(o.error, VerificationError, 'E_BAD_BINDING');
    assert.equal(o.viewer, undefined);
  });

  it('a device signing with a key other than its ID: viewer refuses', async () => {
    const f = await fixture();
    const dev = newDevice(f, newGuard(f.env), f.env, f.otherSigner);
    const o = await run(newViewer(f), dev);
    assertCode(o.error, VerificationError, 'E_BAD_BINDING');
    assert.equal(o.viewer, undefined);
  });

  it('a viewer expecting another device ID cannot pair with this device (idVerifier is in w0 and TT)', async () => {
    const f = await fixture();
    const otherId = fakeDeviceId(f.otherSigner.publicKey);
    const o = await run(newViewer(f, { deviceId: otherId }), newDevice(f, newGuard(f.env)));
    assertCode(o.error, VerificationError, 'E_BAD_CONFIRMATION');
  });
});

describe('pairing: out-of-order and bad states', () => {
  it('device: confirm before start, start twice, challenge/done from the viewer side', async () => {
    const f = await fixture();
    const ok = await run(newViewer(f), newDevice(f, newGuard(f.env)));
    const [start, challenge, confirm, done] = ok.wire as [string, string, string, string];
    for (const [name, msgs] of [
      ['confirm first', [confirm]],
      ['challenge to device', [challenge]],
      ['done to device', [done]],
      ['start twice', [start, start]],
    ] as const) {
      const dev = newDevice(f, newGuard(f.env));
      let err: unknown;
      for (const m of msgs) {
        try {
          await dev.receive(m);
        } catch (e) {
          err = e;
          break;
        }
      }
      assertCode(err, ProtocolError, 'E_BAD_STATE', name);
    }
  });

  it('device: a replayed pair/confirm after done, and a second start after done', async () => {
    const f = await fixture();
    const dev = newDevice(f, newGuard(f.env));
    const o = await run(newViewer(f), dev);
    assert.ok(o.device);
    for (const m of [o.wire[2]!, o.wire[0]!]) {
      await rejectsWith(dev.receive(m), ProtocolError, 'E_BAD_STATE');
      assert.equal(dev.state, 'done', 'a completed session stays completed');
    }
  });

  it('device: after an error every message gets E_BAD_STATE', async () => {
    const f = await fixture();
    const ok = await run(newViewer(f), newDevice(f, newGuard(f.env)));
    const dev = newDevice(f, newGuard(f.env));
    await rejectsWith(dev.receive('{"t":"nope"}'), ProtocolError, 'E_SCHEMA');
    assert.equal(dev.state, 'failed');
    await rejectsWith(dev.receive(ok.wire[0]!), ProtocolError, 'E_BAD_STATE');
  });

  it('viewer: receive before start, done before challenge, challenge twice, start twice', async () => {
    const f = await fixture();
    const ok = await run(newViewer(f), newDevice(f, newGuard(f.env)));
    const [start, challenge, , done] = ok.wire as [string, string, string, string];
    const v0 = newViewer(f);
    await rejectsWith(v0.receive(challenge), ProtocolError, 'E_BAD_STATE');
    const v1 = newViewer(f);
    await v1.start();
    await rejectsWith(v1.receive(done), ProtocolError, 'E_BAD_STATE');
    const v2 = newViewer(f);
    await v2.start();
    await rejectsWith(v2.receive(start), ProtocolError, 'E_BAD_STATE');
    const v3 = newViewer(f);
    await v3.start();
    await rejectsWith(v3.start(), ProtocolError, 'E_BAD_STATE');
  });
});

describe('pairing: hostile shares', () => {
  const identityLike = [
    ['all zero', new Uint8Array(65)],
    ['0x04 then zeros', Uint8Array.from([4, ...new Array(64).fill(0)])],
    ['off-curve', Uint8Array.from([4, ...new Array(64).fill(1)])],
  ] as const;
  for (const [name, bytes] of identityLike) {
    it(`shareP ${name}: E_DECODE, not charged`, async () => {
      const f = await fixture();
      const guard = newGuard(f.env);
      const dev = newDevice(f, guard);
      const m = JSON.stringify({ t: 'pair/start', v: 1, method: 'code', shareP: b64u(bytes) });
      await rejectsWith(dev.receive(m), ProtocolError, 'E_DECODE');
      assert.equal(guard.snapshot().methods.code.attempts, 0);
    });
  }

  it('shareP = w0·M (makes X - w0·M the identity): refused', async () => {
    // Only someone who knows w0 can build it; the device must still not compute on the identity.
    const f = await fixture();
    const { p256 } = await import('@noble/curves/nist.js');
    const w0 = BigInt(`0x${hex(f.records.qr.w0)}`);
    const shareP = p256.Point.fromBytes(SPAKE2PLUS_POINTS.M).multiply(w0).toBytes(false);
    const dev = newDevice(f, newGuard(f.env));
    await rejectsWith(
      dev.receive(JSON.stringify({ t: 'pair/start', v: 1, method: 'qr', shareP: b64u(shareP) })),
      ProtocolError,
      'E_DECODE',
    );
  });

  it('method not offered: E_UNSUPPORTED', async () => {
    const f = await fixture();
    const dev = new DevicePairing({
      deviceId: f.deviceId,
      records: { qr: f.records.qr },
      signer: f.deviceSigner,
      guard: newGuard(f.env),
      env: f.env,
    });
    const o = await run(newViewer(f, { method: 'code' }), dev);
    assertCode(o.error, ProtocolError, 'E_UNSUPPORTED');
  });
});

describe('pairing: tampering', () => {
  type Tamper = { what: string; apply: (json: string) => string };
  /** Tampering descriptors for one message: flip bits of each base64url field (first, middle, last byte). */
  function fieldTampers(json: string): Tamper[] {
    const m = JSON.parse(json) as Record<string, unknown>;
    const out: Tamper[] = [];
    const edit = (what: string, f: (o: Record<string, unknown>) => void) =>
      out.push({
        what: `${m.t} ${what}`,
        apply: (j) => {
          const o = JSON.parse(j) as Record<string, unknown>;
          f(o);
          return JSON.stringify(o);
        },
      });
    for (const [k, v] of Object.entries(m)) {
      if (k === 't') {
        edit('t renamed', (o) => {
          o.t = `${String(o.t)}x`;
        });
      } else if (k === 'v') {
        edit('v=2', (o) => {
          o.v = 2;
        });
      } else if (k === 'method') {
        edit('method swapped', (o) => {
          o.method = o.method === 'qr' ? 'code' : 'qr';
        });
      } else if (typeof v === 'string') {
        const n = fromB64u(v).length;
        for (const i of new Set([0, n >> 1, n - 1])) {
          for (const bit of [0x01, 0x80]) {
            edit(`${k}[${i}]^${bit}`, (o) => {
              const b = fromB64u(o[k] as string);
              b[i]! ^= bit;
              o[k] = b64u(b);
            });
          }
        }
      }
    }
    edit('extra field', (o) => {
      o.extra = 1;
    });
    return out;
  }

  it('every field of every message, flipped: a typed error, never success', async () => {
    const f = await fixture();
    const honest = await run(newViewer(f), newDevice(f, newGuard(f.env)));
    assert.ok(honest.viewer);
    let cases = 0;
    for (let step = 0; step < 4; step++) {
      for (const t of fieldTampers(honest.wire[step]!)) {
        const env = fixedEnv(100 + cases);
        const o = await run(newViewer(f, { env }), newDevice(f, newGuard(env), env), (s, j) =>
          s === step ? t.apply(j) : j,
        );
        cases++;
        assert.ok(o.error instanceof HearthError, `${t.what}: typed error`);
        assert.equal(o.viewer, undefined, `${t.what}: viewer must not succeed`);
        if (step < 3) assert.equal(o.device, undefined, `${t.what}: device must not succeed`);
      }
    }
    assert.ok(cases >= 45, `ran ${cases} field tampering cases`);
  });

  it('every byte of every message, XOR 0x01 on the wire: a typed error, never success', async () => {
    const f = await fixture();
    const honest = await run(newViewer(f), newDevice(f, newGuard(f.env)));
    let cases = 0;
    for (let step = 0; step < 4; step++) {
      const msg = honest.wire[step]!;
      // Inside a box every flipped character is equivalent (not base64url, or a different byte that
      // AES-GCM rejects), so sample the box every 5th character plus its last 3 unless HEARTH_FULL_FUZZ=1.
      const boxAt = msg.indexOf('"box":"') + 7;
      const boxEnd = boxAt > 6 ? msg.indexOf('"', boxAt) : -1;
      const full = process.env.HEARTH_FULL_FUZZ === '1';
      for (let i = 0; i < msg.length; i++) {
        if (!full && boxEnd > 0 && i >= boxAt && i < boxEnd - 3 && (i - boxAt) % 5 !== 0) continue;
        const env = fixedEnv(1000 + cases);
        // Each run draws fresh randomness, so re-derive this run's message and flip the same byte.
        const o = await run(newViewer(f, { env }), newDevice(f, newGuard(env), env), (s, j) =>
          s === step ? j.slice(0, i) + String.fromCharCode(j.charCodeAt(i) ^ 1) + j.slice(i + 1) : j,
        );
        cases++;
        assert.ok(o.error instanceof HearthError, `step ${step} byte ${i}: typed error`);
        assert.equal(o.viewer, undefined, `step ${step} byte ${i}: viewer must not succeed`);
        if (step < 3) assert.equal(o.device, undefined, `step ${step} byte ${i}: device must not succeed`);
      }
    }
    assert.ok(cases > 400, `ran ${cases} wire tampering cases`);
  });
});
