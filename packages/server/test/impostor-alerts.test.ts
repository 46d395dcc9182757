/**
 * Security review R14, against the real server: anyone who knows a device's public key can fail
 * to log in as it as often as they like, and each failure used to be one live alert to the
 * device. Now the hub sends at most one alert per `limits.alertIntervalMs`, whose count adds up
 * every attempt made meanwhile: nothing is lost, and the device is not spammed. Control: with an
 * interval of 1 ms, (nearly) every attempt is an alert of its own.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAuth, encodeId, systemEnv } from '@hearth/protocol';
import { Client, connect, device, sleep, tempDir, testServer } from './helpers.js';

async function attempts(alertIntervalMs: number, n: number) {
  const tmp = tempDir();
  const srv = await testServer(tmp.dir, { limits: { alertIntervalMs } });
  try {
    const victim = await device();
    const attacker = await device();
    const dc = await connect(srv.wsUrl, victim);
    const t0 = Date.now();
    for (let i = 0; i < n; i++) {
      const c = new Client(srv.wsUrl);
      const hello = await c.next('hello');
      const mine = await createAuth(
        attacker.signer,
        'device',
        hello as { srv: string; ch: string },
        systemEnv,
      );
      c.send({ t: 'auth', env: { ...mine, k: encodeId('deviceKey', victim.signer.publicKey) } });
      await c.closed;
    }
    const elapsedMs = Date.now() - t0;
    // Whatever was counted meanwhile arrives with the next alert.
    await sleep(alertIntervalMs + 300);
    const alerts = dc.c.frames.filter((f) => f.t === 'alert');
    dc.c.close();
    return { alerts: alerts.length, total: alerts.reduce((s, f) => s + Number(f.count), 0), elapsedMs };
  } finally {
    await srv.close();
    tmp.rm();
  }
}

describe('impostor alerts are aggregated and rate-limited (review R14)', () => {
  it('40 failed logins as the device: a handful of alerts, whose counts add up to 40', async () => {
    const interval = 500;
    const r = await attempts(interval, 40);
    const cap = Math.ceil(r.elapsedMs / interval) + 2;
    console.log(
      `R14: 40 attempts in ${r.elapsedMs} ms gave ${r.alerts} alerts (cap ${cap}), counts summing to ${r.total}`,
    );
    assert.equal(r.total, 40, 'every attempt is counted');
    assert.ok(r.alerts <= cap, `${r.alerts} alerts`);
  });

  it('control: with a 1 ms interval, every attempt is an alert of its own', async () => {
    const r = await attempts(1, 40);
    console.log(`R14 control: ${r.alerts} alerts for 40 attempts`);
    assert.equal(r.total, 40);
    assert.ok(r.alerts >= 30, `${r.alerts} alerts`);
  });
});
