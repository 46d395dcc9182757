/**
 * The pairing glue, with a scripted stand-in for the protocol's viewer machine: lookups, routing
 * by sender, delivery errors, device refusals, and the final pin check (the key must hash to the
 * device ID we set out to pair with).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deviceIdFromKey, encodeId, systemEnv, WebCryptoSigner } from '@hearth/protocol';
import type { PairingAdapter, PairingOutcome } from '../src/pairing/adapter.js';
import { PairingFailure, type PairSignaling, reasonForCode, startPairing } from '../src/pairing/flow.js';

const devKey = new Uint8Array(32).fill(9);
const deviceId = deviceIdFromKey(devKey);
const deviceKey = encodeId('deviceKey', devKey);
const signer = await WebCryptoSigner.generate(false);

/** A machine that sends pair/start, then answers pair/challenge with pair/confirm, then takes pair/done or pair/error. */
function scripted(
  done: PairingOutcome = { kind: 'done', deviceKey, role: 'owner' },
): PairingAdapter & { created: unknown[] } {
  const created: unknown[] = [];
  return {
    created,
    parseLink(link) {
      const d = new URL(link).hash.match(/d=([^&]+)/)?.[1];
      if (!d) throw new Error('bad link');
      return { deviceId: d };
    },
    lookupTag(code) {
      if (!/^[0-9A-Z]{4}-/.test(code)) throw new Error('bad code');
      return code.slice(0, 4);
    },
    create(o) {
      created.push(o);
      return {
        start: async () => ({ kind: 'send', m: { t: 'pair/start' } }),
        receive: async (m) => {
          if (m.t === 'pair/challenge') return { kind: 'send', m: { t: 'pair/confirm' } };
          if (m.t === 'pair/done') return done;
          if (m.t === 'pair/error')
            return {
              kind: 'failed',
              code: String(m.code),
              ...(typeof m.left === 'number' ? { attemptsLeft: m.left } : {}),
            };
          return { kind: 'wait' };
        },
      };
    },
  };
}

function signaling() {
  const frames: { t: string; tag?: string }[] = [];
  const sent: { to: string; m: { t: string } }[] = [];
  const s: PairSignaling = {
    ready: true,
    send(f) {
      frames.push(f);
      return true;
    },
    sendTo(to, m) {
      sent.push({ to, m: m as { t: string } });
      return `r${sent.length}`;
    },
  };
  return { s, frames, sent };
}
const tick = () => new Promise((r) => setTimeout(r, 5));

describe('pairing flow', () => {
  it('QR link: start → challenge → confirm → done, pinned only from the device we asked', async () => {
    const sig = signaling();
    const steps: string[] = [];
    const adapter = scripted();
    const run = startPairing({
      input: { kind: 'link', link: `https://h/pair#v=1&d=${deviceId}&s=x` },
      signaling: sig.s,
      signer,
      env: systemEnv,
      adapter,
      onStep: (s) => steps.push(s),
    });
    await tick();
    assert.deepEqual(sig.sent, [{ to: deviceId, m: { t: 'pair/start' } }]);
    run.onMessage('hdid_someoneelse', { t: 'pair/done' }); // ignored: wrong sender
    run.onMessage(deviceId, { t: 'pair/challenge' });
    await tick();
    assert.deepEqual(sig.sent.at(-1), { to: deviceId, m: { t: 'pair/confirm' } });
    run.onMessage(deviceId, { t: 'pair/done' });
    assert.deepEqual(await run.result, { deviceId, deviceKey, role: 'owner' });
    assert.deepEqual(steps, ['contacting', 'verifying', 'verifying']);
  });

  it('manual code: looks the tag up, then pairs with the device found', async () => {
    const sig = signaling();
    const adapter = scripted();
    const run = startPairing({
      input: { kind: 'code', code: 'ABCD-EFGH-JKLM' },
      signaling: sig.s,
      signer,
      env: systemEnv,
      adapter,
    });
    await tick();
    assert.deepEqual(sig.frames, [{ t: 'pair/lookup', tag: 'ABCD' }]);
    run.onFound({ tag: 'ZZZZ', d: deviceId }); // another lookup's answer: ignored
    assert.equal(sig.sent.length, 0);
    run.onFound({ tag: 'ABCD', d: deviceId });
    await tick();
    assert.deepEqual(adapter.created, [{ deviceId, code: 'ABCD-EFGH-JKLM', signer, env: systemEnv }]);
    run.onMessage(deviceId, { t: 'pair/challenge' });
    await tick();
    run.onMessage(deviceId, { t: 'pair/done' });
    assert.equal((await run.result).deviceId, deviceId);
  });

  const fails = async (
    f: (run: ReturnType<typeof startPairing>) => void,
    adapter = scripted(),
  ): Promise<PairingFailure> => {
    const sig = signaling();
    const run = startPairing({
      input: { kind: 'code', code: 'ABCD-EFGH-JKLM' },
      signaling: sig.s,
      signer,
      env: systemEnv,
      adapter,
      stepTimeoutMs: 200,
    });
    const settled = run.result.then(
      () => assert.fail('should fail'),
      (e: unknown) => e,
    );
    await tick();
    f(run);
    const err = await settled;
    assert.ok(err instanceof PairingFailure);
    return err;
  };

  it('no device registered the tag: not-found', async () => {
    assert.equal((await fails((run) => run.onFound({ tag: 'ABCD', d: null }))).reason, 'not-found');
  });

  it('the server cannot deliver to the device: offline', async () => {
    const e = await fails((run) => {
      run.onFound({ tag: 'ABCD', d: deviceId });
      setTimeout(() => assert.ok(run.onServerError({ code: 'E_OFFLINE', ref: 'r1' })), 2);
    });
    assert.equal(e.reason, 'offline');
  });

  it('wrong code with attempts left, as the device says', async () => {
    const e = await fails((run) => {
      run.onFound({ tag: 'ABCD', d: deviceId });
      setTimeout(() => run.onMessage(deviceId, { t: 'pair/error', code: 'E_BAD_CONFIRMATION', left: 2 }), 2);
    });
    assert.deepEqual([e.reason, e.attemptsLeft], ['wrong-code', 2]);
  });

  it('locked and window closed', async () => {
    for (const [code, reason] of [
      ['E_LOCKED', 'locked'],
      ['E_PAIRING_CLOSED', 'closed'],
    ] as const) {
      const e = await fails((run) => {
        run.onFound({ tag: 'ABCD', d: deviceId });
        setTimeout(() => run.onMessage(deviceId, { t: 'pair/error', code }), 2);
      });
      assert.equal(e.reason, reason, code);
    }
  });

  it('a device key that does not hash to the device ID is never pinned', async () => {
    const other = encodeId('deviceKey', new Uint8Array(32).fill(1));
    const e = await fails(
      (run) => {
        run.onFound({ tag: 'ABCD', d: deviceId });
        setTimeout(() => run.onMessage(deviceId, { t: 'pair/done' }), 2);
      },
      scripted({ kind: 'done', deviceKey: other, role: 'owner' }),
    );
    assert.deepEqual([e.reason, e.code], ['attack', 'E_BAD_BINDING']);
  });

  it('silence: timeout', async () => {
    assert.equal((await fails(() => undefined)).reason, 'timeout');
  });

  it('a malformed code or link: bad-input, nothing sent', async () => {
    const sig = signaling();
    const run = startPairing({
      input: { kind: 'code', code: 'nope' },
      signaling: sig.s,
      signer,
      env: systemEnv,
      adapter: scripted(),
    });
    await assert.rejects(run.result, (e: PairingFailure) => e.reason === 'bad-input');
    const run2 = startPairing({
      input: { kind: 'link', link: 'https://h/pair#v=1' },
      signaling: sig.s,
      signer,
      env: systemEnv,
      adapter: scripted(),
    });
    await assert.rejects(run2.result, (e: PairingFailure) => e.reason === 'bad-input');
    assert.equal(sig.frames.length + sig.sent.length, 0);
  });

  it('error codes map to reasons', () => {
    assert.equal(reasonForCode('E_BAD_CONFIRMATION'), 'wrong-code');
    assert.equal(reasonForCode('E_RATE_LIMITED'), 'wait');
    assert.equal(reasonForCode('E_OFFLINE'), 'offline');
    // Codes nothing emits are no longer sorted by pattern: only the registry's action counts.
    assert.equal(reasonForCode('E_NOT_CONNECTED'), 'failed');
    assert.equal(reasonForCode('E_BAD_SIGNATURE'), 'attack');
    assert.equal(reasonForCode('E_DTLS_FAILED'), 'attack');
    assert.equal(reasonForCode('E_INTERNAL'), 'failed');
    assert.equal(reasonForCode('E_WHATEVER'), 'failed');
    // Every failure carries a registered code.
    assert.equal(new PairingFailure('no-server').code, 'E_NO_SERVER');
    assert.equal(new PairingFailure('failed', { code: 'E_WHATEVER' }).code, 'E_INTERNAL');
    assert.equal(new PairingFailure('attack', { code: 'E_WRONG_SIGNER' }).code, 'E_WRONG_SIGNER');
  });
});
