// Review R13: a device whose clock is 10 min off (no RTC) is told "clock is off by N s", not "possible
// attack", against the real hub; it still connects (the auth proof is stamped with the hello's time).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Logger } from '@hearth/node';
import { type CryptoEnv, createOffer, systemEnv, WebCryptoSigner } from '@hearth/protocol';
import { startTestHub, type TestHub } from '@hearth/server/testing';
import { loadOrCreateIdentity } from '../src/device/identity.js';
import { RendezvousClient } from '../src/device/rendezvous-client.js';
import { type Agent, type AgentEvent, startAgent } from '../src/index.js';
import { connectViewer, fakeMedia, type Msg, pins, sdp, type TestViewer, until } from './world.js';

const SKEW_MS = -10 * 60_000; // the device's clock is 10 min behind

describe('review R13: a device clock 10 min off, against the real hub', () => {
  let srv: TestHub;
  let agent: Agent;
  let dataDir: string;
  const events: AgentEvent[] = [];
  const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
  const viewers: TestViewer[] = [];
  const log: Logger = {
    info() {},
    error() {},
    warn: (obj, msg) => void warnings.push({ obj: obj as Record<string, unknown>, msg: msg ?? '' }),
  };
  const skewed: CryptoEnv = { random: (n) => systemEnv.random(n), now: () => Date.now() + SKEW_MS };

  before(async () => {
    srv = await startTestHub({ serveViewer: false });
    dataDir = mkdtempSync(join(tmpdir(), 'hearth-skew-'));
    agent = await startAgent({
      dataDir,
      serverUrl: srv.url,
      media: fakeMedia().media,
      env: skewed,
      log,
      minBackoffMs: 20,
      maxBackoffMs: 200,
      onEvent: (e) => events.push(e),
    });
    pins.set(agent.deviceId, (await loadOrCreateIdentity(dataDir)).signer.publicKey);
  });
  after(async () => {
    if (process.env.DEBUG_R13)
      console.log(JSON.stringify({ off: agent.client.clockOffsetMs, warnings, events }));
    for (const v of viewers) v.client.close();
    await agent?.close();
    await srv?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('connects, and warns that its own clock is off by about 600 s', async () => {
    await until('device online', () => srv.online().includes(agent.deviceId), 10_000);
    const drift = await until('the drift warning', () => events.find((e) => e.kind === 'clock-drift'));
    assert.ok(drift && drift.kind === 'clock-drift');
    assert.ok(Math.abs(drift.offsetMs - SKEW_MS) < 20_000, `offset ${drift.offsetMs}`);
    assert.ok(warnings.some((w) => /clock is off by -60\d s from the server's/.test(w.msg)));
  });

  it('a viewer with a correct clock: the device logs "clock is off by -600 s", not a possible attack', async () => {
    const v = await connectViewer(srv.url);
    viewers.push(v);
    const offer = await createOffer(
      v.signer,
      { deviceId: agent.deviceId, camera: 'demo', sdp: sdp('o') },
      systemEnv,
    );
    v.send(agent.deviceId, { t: 'session/offer', env: offer.envelope });
    const w = await until('the skew warning', () =>
      warnings.find((x) => x.obj.code === 'E_CLOCK_SKEW' && x.obj.viewer === v.id.slice(0, 12)),
    );
    assert.match(w.msg, /clock is off by -60\d s \(this device's clock/);
    assert.ok(events.some((e) => e.kind === 'clock-skew' && e.viewer === v.id));
    assert.ok(!events.some((e) => e.kind === 'channel-attack' || (e.kind === 'session-refused' && e.attack)));
    assert.ok(!warnings.some((x) => /possible attack/.test(x.msg)), 'nothing logged as a possible attack');
  });

  it('an offer that verifies but is stale is refused E_CLOCK_SKEW naming the skew; control: a forged one is an attack', async () => {
    // A second device on the same skewed clock, talking in clear so the offer reaches the session
    // layer (the sealed channel above refuses the stale handshake first).
    const dir2 = mkdtempSync(join(tmpdir(), 'hearth-skew2-'));
    const ev2: AgentEvent[] = [];
    const a2 = await startAgent({
      dataDir: dir2,
      serverUrl: srv.url,
      media: fakeMedia().media,
      env: skewed,
      log,
      unsealedForTests: true,
      onEvent: (e) => ev2.push(e),
    });
    try {
      await until('device 2 online', () => srv.online().includes(a2.deviceId), 10_000);
      const signer = await WebCryptoSigner.generate();
      const c = new RendezvousClient({ url: `${srv.url.replace(/^http/, 'ws')}/ws`, signer, role: 'viewer' });
      const inbox: Msg[] = [];
      c.on('recv', (_f: string, m: unknown) => void inbox.push(m as Msg));
      c.start();
      await until('viewer ready', () => c.connected);
      const offer = await createOffer(
        signer,
        { deviceId: a2.deviceId, camera: 'demo', sdp: sdp('o') },
        systemEnv,
      );
      c.sendTo(a2.deviceId, { t: 'session/offer', env: offer.envelope });
      const r = await until('refusal', () => inbox.find((m) => m.t === 'session/refused'), 10_000);
      assert.equal(r.code, 'E_CLOCK_SKEW');
      const skew = ev2.find((e) => e.kind === 'clock-skew');
      assert.ok(skew && skew.kind === 'clock-skew' && Math.abs(skew.skewMs + SKEW_MS) < 20_000);
      assert.ok(!ev2.some((e) => e.kind === 'session-refused' && e.attack), 'not an attack');
      // Control: the same stale offer with a forged signature is still refused as a possible attack.
      const s = offer.envelope.s;
      c.sendTo(a2.deviceId, {
        t: 'session/offer',
        env: { ...offer.envelope, s: `${s[0] === 'A' ? 'B' : 'A'}${s.slice(1)}` },
      });
      const r2 = await until(
        'second refusal',
        () => inbox.filter((m) => m.t === 'session/refused')[1],
        10_000,
      );
      assert.equal(r2.code, 'E_BAD_SIGNATURE');
      assert.ok(ev2.some((e) => e.kind === 'session-refused' && e.code === 'E_BAD_SIGNATURE' && e.attack));
      c.close();
    } finally {
      await a2.close();
      rmSync(dir2, { recursive: true, force: true });
    }
  });
});
