/**
 * Security review R4 with a real agent process, killed for real: `hearth agent` (from source) with
 * an ffmpeg test-pattern camera, the real hub, and an owner paired over the PAKE. The owner's offer
 * is handled; the agent is SIGKILLed (its in-memory replay cache dies with it) and started again
 * on the same data directory. Then:
 * - the server replays the sealed frame that carried the offer: the new process cannot open it
 *   (its channels died too), and nothing is answered;
 * - the offer itself, re-sent by the viewer through a fresh channel, is refused with E_RESTARTED
 *   (it is stamped before the agent's start);
 * - a fresh offer is handled as usual.
 * (The control, the same replay answered again without the start-time check, is the unit test in
 * packages/agent/test/replay-flood.test.ts, which runs the real SessionManager.)
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createOffer, type Envelope, systemEnv } from '@hearth/protocol';
import { startTestHub, type TestHub } from '@hearth/server/testing';
import { connectViewer, pairViewer, pins, sdp, type TestViewer, until } from '../../../agent/test/world.js';
import { hearth, type Proc } from './stack.js';

describe('replay across a real SIGKILL and restart of the agent (review R4)', { timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-r4-'));
  const dataDir = join(dir, 'agent');
  const cams = join(dir, 'cameras.yaml');
  let hub: TestHub;
  let agent: Proc | undefined;
  let owner: TestViewer | undefined;
  after(async () => {
    agent?.kill('SIGKILL');
    owner?.client.close();
    await hub?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const startAgentProc = () =>
    hearth(['agent', '--server', hub.url, '--cameras', cams, '--data-dir', dataDir, '--log-level', 'warn']);
  const reply = (sid: string) =>
    owner!.next((m) => (m.t === 'session/answer' || m.t === 'session/refused') && m.sid === sid, 30_000);

  it('the replayed frame is not opened, the re-sent offer is E_RESTARTED, a fresh one is handled', async () => {
    hub = await startTestHub({ serveViewer: false });
    writeFileSync(cams, 'cameras:\n  demo: testsrc?size=320x240&fps=15&gop=4\n');
    agent = startAgentProc();
    const secretFile = join(dataDir, 'pairing-secret.json');
    await until('the pairing window', () => existsSync(secretFile), 60_000);
    await until('the lookup tag registered', () => hub.tags.size === 1, 30_000);
    const info = JSON.parse(readFileSync(secretFile, 'utf8'));
    owner = await connectViewer(hub.url);
    const paired = await pairViewer(owner, info, 'code', 'default'); // the real agent's cost
    const deviceId = (await until('device online', () => hub.online().find((x) => x.startsWith('hdid_'))))!;
    pins.set(deviceId, paired.deviceKey);

    const offer = await createOffer(owner.signer, { deviceId, camera: 'demo', sdp: sdp('offer') }, systemEnv);
    const sent = hub.frames.length;
    owner.send(deviceId, { t: 'session/offer', env: offer.envelope });
    const first = await reply(offer.sid);
    // Handled: answered, or refused by the media layer for this synthetic SDP; never for replay.
    assert.ok(
      first.t === 'session/answer' || !['E_RESTARTED', 'E_STALE', 'E_REPLAY'].includes(String(first.code)),
    );
    // What carried it: the sealed offer, and the channel hello too if the channel opened for it.
    const carried = hub.frames
      .slice(sent)
      .filter((f) => f.from === owner!.id && f.frame.t === 'send' && f.frame.to === deviceId)
      .map((f) => (f.frame as { m: { t: string } }).m);
    assert.ok(
      carried.some((m) => m.t === 'chan/msg'),
      'the hub saw the sealed frame that carried the offer',
    );

    // A real SIGKILL: no clean shutdown, the in-memory replay cache and channels are gone.
    agent.kill('SIGKILL');
    await agent.exited();
    await until('device offline', () => !hub.online().includes(deviceId), 10_000);
    agent = startAgentProc();
    await until('device back', () => hub.online().includes(deviceId), 60_000);

    // The server replays the exact frames (a recorded hello is refused, E_RESTARTED; the sealed
    // offer finds no channel that can open it).
    const before = owner.inbox.length;
    for (const m of carried) assert.ok(hub.inject(deviceId, { t: 'recv', from: owner.id, m }));
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(
      !owner.inbox.slice(before).some((x) => x.m.t === 'session/answer' && x.m.sid === offer.sid),
      'the replayed frame got no answer',
    );

    // The viewer's channel died with the old process: the first message gets chan/reset and a new
    // handshake; ask for the cameras until the new channel answers.
    let listed: unknown;
    for (let i = 0; i < 10 && !listed; i++) {
      owner.send(deviceId, { t: 'cameras' });
      listed = await owner.next((m) => m.t === 'cameras', 2000).catch(() => undefined);
    }
    const seq = (who: string) =>
      hub.frames
        .filter((f) => f.from === who && f.frame.t === 'send')
        .map((f) => (f.frame as { m: { t: string } }).m.t)
        .join(' ');
    assert.ok(listed, `a fresh channel: device sent ${seq(deviceId)}; owner sent ${seq(owner.id)}`);
    // The viewer re-sends the same signed offer (a fresh channel): stamped before the restart.
    owner.send(deviceId, { t: 'session/offer', env: offer.envelope as Envelope });
    const again = await reply(offer.sid);
    assert.deepEqual({ t: again.t, code: again.code }, { t: 'session/refused', code: 'E_RESTARTED' });

    const fresh = await createOffer(owner.signer, { deviceId, camera: 'demo', sdp: sdp('fresh') }, systemEnv);
    owner.send(deviceId, { t: 'session/offer', env: fresh.envelope });
    const third = await reply(fresh.sid);
    assert.notEqual(third.code, 'E_RESTARTED');
  });
});
