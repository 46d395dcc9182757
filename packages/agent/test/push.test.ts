/**
 * Notifications (events/push.ts): subscriptions per user key (clips grants only), the per-camera
 * cooldown (injected clock), the clip's second notification, gone subscriptions; then end to end
 * through the real stack: a viewer's sealed `push/sub`, the real agent, the real server and a
 * loopback push service that decrypts what it received as the browser would. Attack: the bytes
 * the server forwards do not contain the camera name; control: with the test-only plaintext
 * switch they do.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  Acl,
  b64u,
  deviceIdFromKey,
  encodeId,
  encodeReaderKey,
  fixedEnv,
  fromB64u,
  openPushPayload,
  PUSH_BODY_BYTES,
  type PushReceiverKeys,
  signAclUpdate,
  signGrant,
  signReaderKey,
  WebCryptoSigner,
  x25519Generate,
} from '@hearth/protocol';
import {
  startTestHub,
  startTestPushService,
  type TestHub,
  type TestPushService,
} from '@hearth/server/testing';
import { loadOrCreateIdentity } from '../src/device/identity.js';
import { PUSH_SUBS_FILE, PushNotifier, type PushSend } from '../src/events/push.js';
import type { EventRecording } from '../src/events/recorder.js';
import { type Agent, startAgent } from '../src/index.js';
import type { CameraEvent } from '../src/media/hub.js';
import { connectViewer, fakeMedia, ITER, pairViewer, pins, type TestViewer, until } from './world.js';

async function newReceiver(
  endpoint: string,
): Promise<{ keys: PushReceiverKeys; sub: { endpoint: string; p256dh: string; auth: string } }> {
  const kp = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, [
    'deriveBits',
  ])) as CryptoKeyPair;
  const jwk = await crypto.subtle.exportKey('jwk', kp.privateKey);
  const publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey));
  const auth = crypto.getRandomValues(new Uint8Array(16));
  return {
    keys: { privateKey: fromB64u(jwk.d as string), publicKey, auth },
    sub: { endpoint, p256dh: b64u(publicKey), auth: b64u(auth) },
  };
}

const tmp = () => mkdtempSync(join(tmpdir(), 'hearth-push-'));

describe('PushNotifier', () => {
  const env = fixedEnv(3);
  let owner: WebCryptoSigner;
  let member: WebCryptoSigner;
  let garage: WebCryptoSigner;
  let acl: Acl;
  const key = (s: WebCryptoSigner) => encodeId('userKey', s.publicKey);
  const dirs: string[] = [];
  before(async () => {
    const device = await WebCryptoSigner.generate();
    owner = await WebCryptoSigner.generate();
    member = await WebCryptoSigner.generate();
    garage = await WebCryptoSigner.generate();
    const d = deviceIdFromKey(device.publicKey);
    const now = env.now();
    const g1 = await signGrant(
      owner,
      { d, sub: key(member), role: 'member', scopes: ['live'], nbf: now - 1, exp: null, serial: 1 },
      env,
    );
    const g2 = await signGrant(
      owner,
      {
        d,
        sub: key(garage),
        role: 'member',
        scopes: ['live', 'clips'],
        cams: ['garage'],
        nbf: now - 1,
        exp: null,
        serial: 2,
      },
      env,
    );
    acl = await Acl.create(d, owner.publicKey).apply(
      await signAclUpdate(owner, { d, ver: 1, add: [g1, g2], revoke: [] }, env),
      now,
    );
  });
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const make = (answer: (p: PushSend) => string = () => 'ok', cooldownMs = 60_000) => {
    const dataDir = tmp();
    dirs.push(dataDir);
    const sent: PushSend[] = [];
    const n = new PushNotifier({
      dataDir,
      acl: () => acl,
      env,
      cooldownMs,
      transport: {
        push: async (p) => {
          sent.push(p);
          return answer(p);
        },
      },
    });
    return { n, sent, dataDir };
  };

  it('stores subscriptions only for grants with clips, in a private file, across restarts', async () => {
    const { n, dataDir } = make();
    const a = await newReceiver('https://push.example/a');
    assert.deepEqual(n.subscribe(key(owner), a.sub), { t: 'push/ok' });
    assert.deepEqual(n.subscribe(key(member), a.sub), { t: 'push/error', code: 'E_SCOPE' });
    const stranger = encodeId('userKey', (await WebCryptoSigner.generate()).publicKey);
    assert.deepEqual(n.subscribe(stranger, a.sub), { t: 'push/error', code: 'E_NO_GRANT' });
    assert.deepEqual(n.subscribe(key(owner), { ...a.sub, endpoint: 'http://push.example/a' }), {
      t: 'push/error',
      code: 'E_SCHEMA',
    });
    assert.equal(statSync(join(dataDir, PUSH_SUBS_FILE)).mode & 0o777, 0o600);
    const again = new PushNotifier({ dataDir, acl: () => acl, env, transport: { push: async () => 'ok' } });
    assert.deepEqual(again.subscriptionsOf(key(owner)), [a.sub]);
    // at most 8 per user: the oldest goes
    for (let i = 0; i < 9; i++) n.subscribe(key(owner), { ...a.sub, endpoint: `https://push.example/${i}` });
    const mine = n.subscriptionsOf(key(owner)).map((s) => s.endpoint);
    assert.equal(mine.length, 8);
    assert.ok(!mine.includes('https://push.example/a') && mine.includes('https://push.example/8'));
  });

  it('cooldown per camera (injected clock); the clip gets a second notification only for a notified event', async () => {
    const { n, sent } = make();
    const a = await newReceiver('https://push.example/a');
    n.subscribe(key(owner), a.sub);
    const t0 = env.now();
    assert.equal((await n.notify({ type: 'motion', cam: 'porch', t: t0 })).sent, true);
    env.advance(30_000);
    assert.equal((await n.notify({ type: 'motion', cam: 'porch', t: t0 + 30_000 })).sent, false);
    assert.equal((await n.notify({ type: 'sound', cam: 'garage', t: t0 + 30_000 })).sent, true);
    assert.equal(
      (await n.clipReady({ type: 'motion', cam: 'porch', t: t0 + 30_000, clip: b64u(new Uint8Array(16)) }))
        .sent,
      false,
    );
    assert.equal(
      (await n.clipReady({ type: 'motion', cam: 'porch', t: t0, clip: b64u(new Uint8Array(16)) })).sent,
      true,
    );
    env.advance(30_001);
    assert.equal((await n.notify({ type: 'motion', cam: 'porch', t: t0 + 60_001 })).sent, true);
    assert.equal(sent.length, 4);
    for (const s of sent) assert.equal(s.body.length, PUSH_BODY_BYTES);
    const p = await Promise.all(sent.map((s) => openPushPayload(s.body, a.keys)));
    assert.deepEqual(
      p.map((x) => [x.type, x.cam, x.clip !== undefined]),
      [
        ['motion', 'porch', false],
        ['sound', 'garage', false],
        ['motion', 'porch', true],
        ['motion', 'porch', false],
      ],
    );
    assert.equal(sent[0]?.urgency, 'high');
  });

  it('only users whose grant covers the camera; a thumbnail that fits goes in, a big one is left out', async () => {
    const { n, sent } = make(() => 'ok', 0);
    const o = await newReceiver('https://push.example/o');
    const g = await newReceiver('https://push.example/g');
    n.subscribe(key(owner), o.sub);
    n.subscribe(key(garage), g.sub);
    await n.notify({ type: 'motion', cam: 'porch', t: 1, thumb: new Uint8Array(1000).fill(1) });
    assert.deepEqual(
      sent.map((s) => s.endpoint),
      [o.sub.endpoint],
    );
    const p1 = await openPushPayload(sent[0]!.body, o.keys);
    assert.equal(Buffer.from(p1.thumb!, 'base64').length, 1000);
    await n.notify({ type: 'motion', cam: 'garage', t: 2, thumb: new Uint8Array(8000) });
    assert.deepEqual(
      sent
        .slice(1)
        .map((s) => s.endpoint)
        .sort(),
      [g.sub.endpoint, o.sub.endpoint].sort(),
    );
    const p2 = await openPushPayload(sent[1]!.body, sent[1]!.endpoint === o.sub.endpoint ? o.keys : g.keys);
    assert.equal(p2.thumb, undefined);
    assert.equal(sent[1]!.body.length, PUSH_BODY_BYTES);
  });

  it('a subscription the push service no longer knows (E_PUSH_GONE) is dropped', async () => {
    const { n } = make((p) => (p.endpoint.endsWith('/gone') ? 'E_PUSH_GONE' : 'ok'), 0);
    const a = await newReceiver('https://push.example/gone');
    const b = await newReceiver('https://push.example/ok');
    n.subscribe(key(owner), a.sub);
    n.subscribe(key(owner), b.sub);
    const r = await n.notify({ type: 'motion', cam: 'porch', t: 1 });
    assert.deepEqual(r, { sent: true, ok: 1, failed: { E_PUSH_GONE: 1 } });
    assert.deepEqual(
      n.subscriptionsOf(key(owner)).map((s) => s.endpoint),
      ['https://push.example/ok'],
    );
  });
});

describe('notifications end to end (viewer → agent → server → push service)', () => {
  let srv: TestHub;
  let svc: TestPushService;
  const dirs: string[] = [];
  const agents: Agent[] = [];
  const viewers: TestViewer[] = [];
  before(async () => {
    srv = await startTestHub({ serveViewer: false, push: { allowInsecureLoopback: true } });
    svc = await startTestPushService();
  });
  after(async () => {
    for (const a of agents) await a.close();
    for (const v of viewers) v.client.close();
    await srv?.close();
    await svc?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** A paired agent (owner = a fresh viewer) whose owner subscribed over the sealed channel. */
  async function setup(plaintextForTests: boolean) {
    const dataDir = join(tmp(), 'data');
    dirs.push(join(dataDir, '..'));
    const agent = await startAgent({
      dataDir,
      serverUrl: srv.url,
      media: fakeMedia().media,
      pairingIterations: ITER,
      minBackoffMs: 20,
      maxBackoffMs: 200,
      push: { plaintextForTests },
    });
    agents.push(agent);
    pins.set(agent.deviceId, (await loadOrCreateIdentity(dataDir)).signer.publicKey);
    await until('pairing window', () => agent.pairing());
    const owner = await connectViewer(srv.url);
    viewers.push(owner);
    await pairViewer(owner, agent.pairing()!, 'qr');
    const ua = await newReceiver(svc.endpoint(`sub-${agents.length}`));
    assert.ok(owner.send(agent.deviceId, { t: 'push/sub', sub: ua.sub }));
    assert.deepEqual(await owner.next((m) => m.t === 'push/ok' || m.t === 'push/error'), { t: 'push/ok' });
    return { agent, ua };
  }

  it('attack: what the server forwards is only ciphertext (no camera name); the browser reads the payload', async () => {
    const { agent, ua } = await setup(false);
    // the server never saw the subscription's keys: push/sub was sealed
    const seen = JSON.stringify(srv.frames);
    assert.ok(!seen.includes(ua.sub.p256dh) && !seen.includes(ua.sub.auth));
    const r = await agent.push.notify({ type: 'motion', cam: 'porch', t: 1_764_000_000_000 });
    assert.deepEqual(r, { sent: true, ok: 1, failed: {} });
    const got = await svc.next();
    assert.equal(got.vapidError, undefined);
    assert.equal(got.body.length, PUSH_BODY_BYTES);
    assert.ok(!Buffer.from(got.body).includes(Buffer.from('porch')), 'the camera name crossed in clear');
    const frame = srv.frames.find((f) => f.frame.t === 'push');
    assert.ok(frame && !JSON.stringify(frame.frame).includes('porch'));
    assert.deepEqual(await openPushPayload(got.body, ua.keys), {
      v: 1,
      type: 'motion',
      cam: 'porch',
      t: 1_764_000_000_000,
    });
  });

  it('control: with the test-only plaintext switch, the server forwards the camera name', async () => {
    const { agent } = await setup(true);
    const r = await agent.push.notify({ type: 'motion', cam: 'porch', t: 1 });
    assert.equal(r.ok, 1);
    const got = await svc.next();
    assert.ok(Buffer.from(got.body).includes(Buffer.from('"cam":"porch"')));
  });

  it('motion starts → a first notification; its clip sealed → a second one naming the clip (the agent wires both)', async () => {
    const dataDir = join(tmp(), 'data');
    dirs.push(join(dataDir, '..'));
    let camEvent: ((e: CameraEvent) => void) | undefined;
    let recording: ((r: EventRecording) => void) | undefined;
    const media = {
      ...fakeMedia().media,
      onCameraEvent: (l: (e: CameraEvent) => void) => {
        camEvent = l;
        return () => {};
      },
      onRecording: (l: (r: EventRecording) => void) => {
        recording = l;
        return () => {};
      },
    };
    const agent = await startAgent({
      dataDir,
      serverUrl: srv.url,
      media,
      pairingIterations: ITER,
      minBackoffMs: 20,
      maxBackoffMs: 200,
      events: { upload: false },
    });
    agents.push(agent);
    pins.set(agent.deviceId, (await loadOrCreateIdentity(dataDir)).signer.publicKey);
    await until('pairing window', () => agent.pairing());
    const owner = await connectViewer(srv.url);
    viewers.push(owner);
    await pairViewer(owner, agent.pairing()!, 'qr');
    const ua = await newReceiver(svc.endpoint('wired'));
    owner.send(agent.deviceId, { t: 'push/sub', sub: ua.sub });
    assert.deepEqual(await owner.next((m) => m.t === 'push/ok' || m.t === 'push/error'), { t: 'push/ok' });
    const kp = await x25519Generate();
    owner.send(agent.deviceId, {
      t: 'reader/key',
      rk: encodeReaderKey(await signReaderKey(owner.signer, kp.publicKey)),
    });
    assert.deepEqual(await owner.next((m) => m.t === 'reader/ok' || m.t === 'reader/error'), {
      t: 'reader/ok',
    });
    assert.ok(camEvent && recording, 'the agent listens to camera events and recordings');
    const at = Date.now() + 0.4;
    camEvent({ camera: 'porch', kind: 'motion', phase: 'start', at, t: 3000, score: 0.2 });
    const first = await openPushPayload((await svc.next()).body, ua.keys);
    assert.deepEqual(first, { v: 1, type: 'motion', cam: 'porch', t: Math.round(at) });
    recording({
      camera: 'porch',
      kind: 'motion',
      trigger: at,
      start: at - 2000,
      end: at + 3000,
      snapshot: undefined,
      clip: new Uint8Array(3000).fill(1),
      frames: 10,
      truncated: false,
    });
    const second = (await openPushPayload((await svc.next()).body, ua.keys)) as { clip?: string; t: number };
    const clip = agent.events.outbox.list().find((m) => m.kind === 'clip');
    assert.ok(clip, 'the clip is sealed');
    assert.equal(second.clip, clip.id);
    assert.equal(second.t, Math.round(at));
  });
});
