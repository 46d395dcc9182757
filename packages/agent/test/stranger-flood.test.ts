/**
 * Security review R3 through the real agent (startAgent, sealed channels, ACL, SessionManager) and
 * the real hub over real WebSockets: four strangers who know only the device's ID flood it with
 * `cameras` requests and offers, each under its own per-connection limit, while its owner opens a
 * session. The device stays connected (one authentication all along), the owner's offer is
 * answered, and no stranger gets more replies than the device's reply budget for strangers
 * allows, however many requests it sent. Control: with that budget opened wide, the strangers get
 * an answer to (nearly) every request that reached the device.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createOffer, systemEnv } from '@hearth/protocol';
import { startTestHub } from '@hearth/server/testing';
import { loadOrCreateIdentity } from '../src/device/identity.js';
import { type PairingInfo, startAgent } from '../src/index.js';
import { connectViewer, fakeMedia, ITER, pairViewer, pins, sdp, until } from './world.js';

const PER_STRANGER = { rate: 1, burst: 10 };

async function run(wide: boolean) {
  const srv = await startTestHub({ serveViewer: false, limits: { messagesPerSecond: 20, messageBurst: 40 } });
  const dataDir = join(mkdtempSync(join(tmpdir(), 'hearth-flood-')), 'data');
  const windows: PairingInfo[] = [];
  const agent = await startAgent({
    dataDir,
    serverUrl: srv.url,
    media: fakeMedia().media,
    pairingIterations: ITER,
    minBackoffMs: 20,
    maxBackoffMs: 200,
    onPairingWindow: (i) => windows.push(i),
    strangerReplies: wide
      ? { perStrangerPerSecond: 1000, perStrangerBurst: 1000, totalPerSecond: 1000, totalBurst: 1000 }
      : { perStrangerPerSecond: PER_STRANGER.rate, perStrangerBurst: PER_STRANGER.burst },
  });
  const viewers: Awaited<ReturnType<typeof connectViewer>>[] = [];
  try {
    pins.set(agent.deviceId, (await loadOrCreateIdentity(dataDir)).signer.publicKey);
    await until('pairing window', () => agent.pairing());
    const owner = await connectViewer(srv.url);
    viewers.push(owner);
    await pairViewer(owner, agent.pairing()!, 'code');
    await until('allow list at the hub', () =>
      srv.frames.some((f) => f.frame.t === 'allow' && f.frame.k.includes(owner.id)),
    );
    const strangers = await Promise.all(Array.from({ length: 4 }, () => connectViewer(srv.url)));
    viewers.push(...strangers);
    let sent = 0;
    const t0 = Date.now();
    const timers = strangers.map((s, i) =>
      setInterval(() => {
        sent++;
        if ((sent + i) % 2) s.send(agent.deviceId, { t: 'cameras' });
        else
          void createOffer(
            s.signer,
            { deviceId: agent.deviceId, camera: 'demo', sdp: sdp('x') },
            systemEnv,
          ).then((o) => s.send(agent.deviceId, { t: 'session/offer', env: o.envelope }));
      }, 1000 / 15),
    );
    await new Promise((r) => setTimeout(r, 1500));
    // The owner, in the middle of the flood.
    const offer = await createOffer(
      owner.signer,
      { deviceId: agent.deviceId, camera: 'demo', sdp: sdp('owner') },
      systemEnv,
    );
    owner.send(agent.deviceId, { t: 'session/offer', env: offer.envelope });
    const answer = await owner.next((m) => m.t === 'session/answer' || m.t === 'session/refused', 10_000);
    await new Promise((r) => setTimeout(r, 1500));
    for (const t of timers) clearInterval(t);
    const elapsedS = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 300));
    const replies = strangers.map((s) => s.inbox.length);
    const reached = srv.frames.filter(
      (f) => f.frame.t === 'send' && f.frame.to === agent.deviceId && f.from !== owner.id,
    ).length;
    return {
      answer: answer.t,
      connected: agent.client.connected,
      auths: srv.authenticated.filter((id) => id === agent.deviceId).length,
      replies,
      sent,
      reached,
      elapsedS,
    };
  } finally {
    for (const v of viewers) v.client.close();
    await agent.close();
    await srv.close();
    rmSync(join(dataDir, '..'), { recursive: true, force: true });
  }
}

describe('strangers flooding a real agent (review R3)', () => {
  it('the device stays connected, the owner is answered, each stranger gets at most its reply budget', async () => {
    const r = await run(false);
    const cap = PER_STRANGER.burst + Math.ceil(PER_STRANGER.rate * r.elapsedS) + 1;
    console.log(
      `R3 agent: strangers sent ${r.sent} requests in ${r.elapsedS.toFixed(1)} s, replies per stranger ${r.replies.join('/')} (cap ${cap}); owner got ${r.answer}`,
    );
    assert.equal(r.answer, 'session/answer');
    assert.ok(r.connected);
    assert.equal(r.auths, 1, 'the device was never disconnected');
    for (const n of r.replies) assert.ok(n <= cap, `a stranger got ${n} replies (cap ${cap})`);
  });

  it('control: with the reply budget opened wide, strangers get far more replies than the cap', async () => {
    const r = await run(true);
    const cap = PER_STRANGER.burst + Math.ceil(PER_STRANGER.rate * r.elapsedS) + 1;
    console.log(`R3 agent control: replies per stranger ${r.replies.join('/')} (cap ${cap})`);
    assert.ok(
      r.replies.some((n) => n > cap),
      `replies ${r.replies.join('/')} would pass the cap`,
    );
  });
});
