// startAgent end to end over a real WebSocket to the real rendezvous hub (`@hearth/server/testing`,
// in this process), with the real RendezvousClient on both sides, the protocol's ViewerPairing and signed offers, and a fake media
// backend (real ffmpeg/werift: test/e2e).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createOffer,
  decodeEnvelope,
  deviceIdFromKey,
  type Envelope,
  encodeManualCode,
  parseManualCode,
  signAclUpdate,
  signGrant,
  systemEnv,
  verifyAnswer,
  WebCryptoSigner,
} from '@hearth/protocol';
import { startTestHub, type TestHub } from '@hearth/server/testing';
import { loadOrCreateIdentity } from '../src/device/identity.js';
import { RendezvousClient } from '../src/device/rendezvous-client.js';
import { type Agent, type AgentEvent, type PairingInfo, startAgent } from '../src/index.js';

import { connectViewer, fakeMedia, ITER, pairViewer, pins, sdp, type TestViewer, until } from './world.js';

describe('startAgent', () => {
  let srv: TestHub;
  let dataDir: string;
  let agent: Agent;
  const fm = fakeMedia();
  const windows: PairingInfo[] = [];
  const events: AgentEvent[] = [];
  let owner: TestViewer;
  let pinned: Uint8Array;
  const viewers: TestViewer[] = [];
  const start = () =>
    startAgent({
      dataDir,
      serverUrl: srv.url,
      media: fm.media,
      pairingIterations: ITER,
      minBackoffMs: 20,
      maxBackoffMs: 200,
      onPairingWindow: (i) => windows.push(i),
      onEvent: (e) => events.push(e),
    });

  before(async () => {
    srv = await startTestHub({ serveViewer: false });
    srv.ice = [{ urls: ['stun:127.0.0.1:3478'] }];
    dataDir = join(mkdtempSync(join(tmpdir(), 'hearth-agent-')), 'data');
    // The first lookup tag is "taken" (the hub answers E_TAG_TAKEN): the agent must draw a new code.
    let refuse = 1;
    srv.intercept = (f, from) => {
      if (f.t !== 'pair/register' || f.tag === null || refuse === 0 || !from.id) return true;
      refuse--;
      srv.inject(from.id, { t: 'error', code: 'E_TAG_TAKEN', msg: 'another device holds this lookup tag' });
      return false;
    };
    agent = await start();
    pins.set(agent.deviceId, (await loadOrCreateIdentity(dataDir)).signer.publicKey);
  });

  after(async () => {
    await agent?.close();
    for (const v of viewers) v.client.close();
    await srv?.close();
    rmSync(join(dataDir, '..'), { recursive: true, force: true });
  });

  it('first start: creates the device key (0600) and shows a pairing window; a taken tag gets a new code', async () => {
    assert.equal(statSync(join(dataDir, 'device.key')).mode & 0o777, 0o600);
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    assert.match(agent.deviceId, /^hdid_/);
    await until('tag registered', () => srv.tags.size === 1);
    assert.equal(windows.length, 2, 'the refused tag produced a second window announcement');
    assert.notEqual(windows[0]?.manualCode, windows[1]?.manualCode);
    assert.equal(windows[0]?.qrUrl, windows[1]?.qrUrl);
    assert.deepEqual(agent.pairing(), windows[1]);
    assert.equal(srv.tags.get(parseManualCode(windows[1]!.manualCode).tag), agent.deviceId);
    assert.equal(agent.acl(), undefined);
  });

  it('an unpaired viewer asking for cameras is refused', async () => {
    const v = await connectViewer(srv.url);
    viewers.push(v);
    v.send(agent.deviceId, { t: 'cameras' });
    assert.deepEqual(await v.next((m) => m.t === 'cameras/refused'), {
      t: 'cameras/refused',
      code: 'E_NO_GRANT',
    });
  });

  it('a wrong manual code is refused and counted', async () => {
    const v = viewers[0]!;
    const c = parseManualCode(agent.pairing()!.manualCode);
    c.secret[0]! ^= 1;
    const wrong = { ...agent.pairing()!, manualCode: encodeManualCode(c) };
    await assert.rejects(pairViewer(v, wrong, 'code'), { code: 'E_BAD_CONFIRMATION' });
    assert.equal(agent.pairingState().methods.code.attempts, 1);
    assert.ok(agent.pairing(), 'the window stays open');
  });

  it('pairing by manual code over the rendezvous makes the viewer owner and closes the window', async () => {
    owner = await connectViewer(srv.url);
    viewers.push(owner);
    const r = await pairViewer(owner, agent.pairing()!, 'code');
    assert.equal(r.role, 'owner');
    assert.equal(deviceIdFromKey(r.deviceKey), agent.deviceId);
    pinned = r.deviceKey;
    assert.equal(agent.acl()?.owners[0], owner.id);
    assert.equal(statSync(join(dataDir, 'acl.json')).mode & 0o777, 0o600);
    assert.equal(agent.pairing(), undefined);
    await until('tag dropped', () => srv.tags.size === 0);
    assert.ok(events.some((e) => e.kind === 'acl-created'));
  });

  it('the owner lists cameras and gets a device-signed answer bound to its offer; ICE trickles', async () => {
    owner.send(agent.deviceId, { t: 'cameras' });
    const cams = await owner.next((m) => m.t === 'cameras');
    assert.deepEqual(cams, {
      t: 'cameras',
      list: [
        { name: 'demo', online: true },
        { name: 'porch', online: false },
        { name: 'attic', online: false },
      ],
      role: 'owner',
    });
    const offer = await createOffer(
      owner.signer,
      { deviceId: agent.deviceId, camera: 'demo', sdp: sdp('offer') },
      systemEnv,
    );
    owner.send(agent.deviceId, { t: 'session/offer', env: offer.envelope });
    // Candidates sent right after the offer, before the answer exists, are not lost.
    const cand = {
      candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host',
      sdpMid: '0',
      sdpMLineIndex: 0,
    };
    owner.send(agent.deviceId, { t: 'session/ice', sid: offer.sid, c: cand });
    const ans = await owner.next((m) => m.t === 'session/answer');
    const v = await verifyAnswer(decodeEnvelope(ans.env) as Envelope, {
      pinnedDeviceKey: pinned,
      sid: offer.sid,
      offerDigest: offer.digest,
      now: Date.now(),
    });
    assert.ok(v.ok, 'the answer verifies against the pinned device key');
    await until('candidate delivered', () => fm.state.ice.length === 1);
    assert.deepEqual(fm.state.ice[0], cand);
    assert.equal(agent.sessions.size, 1);
    owner.send(agent.deviceId, { t: 'session/close', sid: offer.sid });
    await until('closed', () => agent.sessions.size === 0);
  });

  it('a message in clear (outside the sealed channel) is ignored, even from the owner', async () => {
    owner.client.sendTo(agent.deviceId, { t: 'cameras' });
    owner.client.sendTo(agent.deviceId, { t: 'acl/get' });
    // Then a sealed one: its answer arriving first-and-only shows the clear ones were dropped.
    owner.send(agent.deviceId, { t: 'cameras' });
    await owner.next((m) => m.t === 'cameras');
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!owner.inbox.some((x) => x.m.t === 'cameras' || x.m.t === 'acl'), 'no reply to clear messages');
  });

  it('an offer the viewer closes while it is being answered gets no answer and its media is closed', async () => {
    const closedBefore = fm.state.closed;
    const offer = await createOffer(
      owner.signer,
      { deviceId: agent.deviceId, camera: 'demo', sdp: sdp('offer') },
      systemEnv,
    );
    owner.send(agent.deviceId, { t: 'session/offer', env: offer.envelope });
    owner.send(agent.deviceId, { t: 'session/close', sid: offer.sid });
    await until('media closed', () => fm.state.closed === closedBefore + 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(!owner.inbox.some((x) => x.m.t === 'session/answer'), 'no answer');
    assert.equal(agent.sessions.size, 0);
  });

  it('a camera that cannot start is refused with its specific code (E_CAMERA_UNAVAILABLE when ffmpeg cannot run), or E_MEDIA for an unclassified failure; a stranger is refused by the ACL', async () => {
    const o = await createOffer(
      owner.signer,
      { deviceId: agent.deviceId, camera: 'porch', sdp: sdp('offer') },
      systemEnv,
    );
    owner.send(agent.deviceId, { t: 'session/offer', env: o.envelope });
    assert.deepEqual(await owner.next((m) => m.t === 'session/refused'), {
      t: 'session/refused',
      sid: o.sid,
      code: 'E_MEDIA',
    });
    // A known cause gets its own code: ffmpeg that cannot be started is E_CAMERA_UNAVAILABLE.
    const u = await createOffer(
      owner.signer,
      { deviceId: agent.deviceId, camera: 'attic', sdp: sdp('offer') },
      systemEnv,
    );
    owner.send(agent.deviceId, { t: 'session/offer', env: u.envelope });
    assert.deepEqual(await owner.next((m) => m.t === 'session/refused' && m.sid === u.sid), {
      t: 'session/refused',
      sid: u.sid,
      code: 'E_CAMERA_UNAVAILABLE',
    });
    const stranger = viewers[0]!;
    const s = await createOffer(
      stranger.signer,
      { deviceId: agent.deviceId, camera: 'demo', sdp: sdp('offer') },
      systemEnv,
    );
    stranger.send(agent.deviceId, { t: 'session/offer', env: s.envelope });
    assert.deepEqual(await stranger.next((m) => m.t === 'session/refused'), {
      t: 'session/refused',
      sid: s.sid,
      code: 'E_NO_GRANT',
    });
    assert.ok(events.some((e) => e.kind === 'session-refused' && e.code === 'E_NO_GRANT' && !e.attack));
  });

  it('owner-signed ACL updates grant and revoke; revocation closes the live session at once', async () => {
    const member = viewers[0]!;
    const grant = await signGrant(
      owner.signer,
      { d: agent.deviceId, sub: member.id, role: 'member', scopes: ['live'], nbf: 0, exp: null, serial: 1 },
      systemEnv,
    );
    const up1 = await signAclUpdate(
      owner.signer,
      { d: agent.deviceId, ver: 1, add: [grant], revoke: [] },
      systemEnv,
    );

    const lastAllow = () =>
      srv.frames.filter((f) => f.from === agent.deviceId && f.frame.t === 'allow').at(-1)?.frame as
        | { k: string[] }
        | undefined;
    owner.send(agent.deviceId, { t: 'acl/update', env: up1 });
    assert.deepEqual(await owner.next((m) => m.t === 'acl/ok' || m.t === 'acl/error'), {
      t: 'acl/ok',
      ver: 1,
    });
    // The device names its grant holders to the hub (presence follows them, review R5d).
    await until('allow list with the member', () => lastAllow()?.k.includes(member.id));
    assert.deepEqual(lastAllow()?.k.sort(), [owner.id, member.id].sort());
    const o = await createOffer(
      member.signer,
      { deviceId: agent.deviceId, camera: 'demo', sdp: sdp('offer') },
      systemEnv,
    );
    member.send(agent.deviceId, { t: 'session/offer', env: o.envelope });
    await member.next((m) => m.t === 'session/answer');
    assert.equal(agent.sessions.size, 1);
    // The member cannot change the ACL.
    const forged = await signAclUpdate(
      member.signer,
      { d: agent.deviceId, ver: 2, add: [], revoke: [1] },
      systemEnv,
    );
    member.send(agent.deviceId, { t: 'acl/update', env: forged });
    assert.equal((await member.next((m) => m.t === 'acl/error')).code, 'E_WRONG_SIGNER');
    const up2 = await signAclUpdate(
      owner.signer,
      { d: agent.deviceId, ver: 2, add: [], revoke: [1] },
      systemEnv,
    );
    owner.send(agent.deviceId, { t: 'acl/update', env: up2 });
    assert.deepEqual(await owner.next((m) => m.t === 'acl/ok'), { t: 'acl/ok', ver: 2 });
    await until('allow list without the member', () => !lastAllow()?.k.includes(member.id));
    assert.deepEqual(lastAllow()?.k, [owner.id]);
    assert.deepEqual(await member.next((m) => m.t === 'session/closed'), {
      t: 'session/closed',
      sid: o.sid,
      code: 'E_GRANT_REVOKED',
    });
    assert.equal(agent.sessions.size, 0);
    assert.ok(events.some((e) => e.kind === 'acl-updated' && e.closed === 1));
  });

  it('reconnects after the server drops it and registers the lookup tag again', async () => {
    await agent.openPairing();
    await until('tag', () => srv.tags.size === 1);
    const authsBefore = srv.frames.filter((f) => f.frame.t === 'auth').length;
    srv.dropAll();
    await until('tags cleared', () => srv.tags.size === 0);
    await until('reconnected', () => srv.online().includes(agent.deviceId) && srv.tags.size === 1, 10_000);
    assert.ok(srv.frames.filter((f) => f.frame.t === 'auth').length > authsBefore);
    assert.equal(srv.tags.get(parseManualCode(agent.pairing()!.manualCode).tag), agent.deviceId);
  });

  it('a restart keeps the identity, the ACL, and the open window with its counters', async () => {
    const id = agent.deviceId;
    const snap = agent.pairingState();
    await agent.close();
    agent = await start();
    assert.equal(agent.deviceId, id);
    assert.equal(agent.acl()?.owners[0], owner.id);
    assert.equal(agent.acl()?.state.ver, 2);
    assert.equal(agent.pairing()?.expiresAt, snap.closesAt);
    assert.equal(agent.pairingState().role, 'member');
    owner.client.close();
    const o = await connectViewer(srv.url, owner.signer);
    viewers.push(o);
    o.send(agent.deviceId, { t: 'cameras' });
    assert.equal((await o.next((m) => m.t === 'cameras')).role, 'owner');
  });

  it('review R4: an offer answered before a restart, replayed after it, is refused with E_RESTARTED; a fresh one is answered', async () => {
    // One connection per key: close the earlier ones of the owner (they would replace ours).
    for (const x of viewers) if (x.id === owner.id) x.client.close();
    let v = await connectViewer(srv.url, owner.signer);
    viewers.push(v);
    const offer = await createOffer(
      owner.signer,
      { deviceId: agent.deviceId, camera: 'demo', sdp: sdp('offer') },
      systemEnv,
    );
    v.send(agent.deviceId, { t: 'session/offer', env: offer.envelope });
    assert.equal(
      (await v.next((m) => m.t === 'session/answer' || m.t === 'session/refused')).t,
      'session/answer',
    );
    v.send(agent.deviceId, { t: 'session/offer', env: offer.envelope });
    assert.equal((await v.next((m) => m.t === 'session/refused')).code, 'E_REPLAY');
    v.send(agent.deviceId, { t: 'session/close', sid: offer.sid });
    await until('closed', () => agent.sessions.size === 0);
    // The agent restarts (its in-memory replay cache is gone) on the same data directory.
    await until('the clock moved past the offer', () => Date.now() > offer.envelope.t);
    await agent.close();
    agent = await start();
    v.client.close();
    v = await connectViewer(srv.url, owner.signer);
    viewers.push(v);
    v.send(agent.deviceId, { t: 'session/offer', env: offer.envelope });
    const r = await v.next((m) => m.t === 'session/answer' || m.t === 'session/refused');
    assert.deepEqual([r.t, r.code], ['session/refused', 'E_RESTARTED']);
    const fresh = await createOffer(
      owner.signer,
      { deviceId: agent.deviceId, camera: 'demo', sdp: sdp('offer') },
      systemEnv,
    );
    v.send(agent.deviceId, { t: 'session/offer', env: fresh.envelope });
    assert.equal(
      (await v.next((m) => m.t === 'session/answer' || m.t === 'session/refused')).t,
      'session/answer',
    );
    v.send(agent.deviceId, { t: 'session/close', sid: fresh.sid });
    await until('closed', () => agent.sessions.size === 0);
  });
});

describe('RendezvousClient', () => {
  it('drops a connection on which the server went silent and reconnects (jittered backoff)', async () => {
    const srv = await startTestHub({ serveViewer: false });
    const signer = await WebCryptoSigner.generate();
    const client = new RendezvousClient({
      url: `${srv.url.replace(/^http/, 'ws')}/ws`,
      signer,
      role: 'device',
      heartbeatMs: 40,
      readyTimeoutMs: 150,
      minBackoffMs: 20,
      maxBackoffMs: 100,
    });
    let drops = 0;
    let readies = 0;
    client.on('disconnected', () => drops++);
    client.on('ready', () => readies++);
    try {
      client.start();
      await until('ready', () => readies === 1);
      srv.silent = true;
      await until('dropped after missed pongs', () => drops >= 1);
      await until('a reconnect that never authenticates is dropped too', () => drops >= 2);
      srv.silent = false;
      await until('ready again', () => readies >= 2 && client.connected);
      assert.ok(client.send({ t: 'ping' }));
    } finally {
      client.close();
      await srv.close();
    }
  });
});

describe('agent start with damaged state files', () => {
  // A damaged ACL must never read as "no owner yet" (that would open pairing to a new owner), and a
  // damaged pairing state must never read as a fresh budget: both stop the start with a clear error
  // that names the file, and the file is left as it was for the owner to look at.
  for (const [file, content, code] of [
    ['acl.json', '{"v":1,"owner":"huk_nope"}', /^E_/],
    ['acl.json', 'not json at all', /^E_/],
    ['pairing.json', '{"open":true}', /^E_CONFIG$/],
  ] as const) {
    it(`${file} holding ${JSON.stringify(content)}`, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'hearth-agent-bad-'));
      try {
        writeFileSync(join(dataDir, file), content, { mode: 0o600 });
        await assert.rejects(
          startAgent({ dataDir, serverUrl: 'http://127.0.0.1:1', media: fakeMedia().media }),
          (e: Error & { code?: string }) => {
            assert.match(e.code ?? '', code);
            assert.ok(e.message.includes(join(dataDir, file)), `names the file: ${e.message}`);
            return true;
          },
        );
        assert.equal(readFileSync(join(dataDir, file), 'utf8'), content, 'left untouched');
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }
});
