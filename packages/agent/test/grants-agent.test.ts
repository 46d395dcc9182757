// Grants v2 through the real agent (real rendezvous hub on loopback, real sealed channels, real
// files, real sealing): what each blob of a recording is sealed to follows the ACL at seal time —
// per scope (clips / snapshots / timeline), per schedule (in the device's time zone), per history
// floor (a guest gets nothing made before its grant) — and after a revocation the next blobs
// exclude the revoked reader while the earlier ones included it. Escalation attempts through the
// agent's `acl/update` handler (a member's own update, a replayed old update, the recovery key
// adding a member, removing the last owner) are refused with their codes and leave the ACL, in
// memory and on disk, unchanged; control: the same change signed by an owner is applied.
// A second owner may read the ACL and sign updates; after an owner transfer the old owner cannot.
// Push notifications (PushNotifier, injected clock) follow the same rules.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  Acl,
  type AclUpdateInput,
  b64u,
  decodeClipHeader,
  decodeLogEntry,
  deviceIdFromKey,
  encodeId,
  encodeReaderKey,
  fixedEnv,
  type Grant,
  localTime,
  signAclUpdate,
  signGrant,
  signReaderKey,
  systemEnv,
  WebCryptoSigner,
} from '@hearth/protocol';
import { startTestHub, type TestHub } from '@hearth/server/testing';
import { loadOrCreateIdentity } from '../src/device/identity.js';
import type { OutboxMeta } from '../src/events/outbox.js';
import { PushNotifier, type PushSend } from '../src/events/push.js';
import type { EventRecording } from '../src/events/recorder.js';
import { type Agent, startAgent } from '../src/index.js';
import { connectViewer, fakeMedia, ITER, pairViewer, pins, type TestViewer } from './world.js';

const TZ = 'Asia/Kolkata'; // UTC+5:30: a schedule in it is not a schedule in UTC
const hhmm = (m: number) => {
  const x = ((m % 1440) + 1440) % 1440;
  return `${String(Math.floor(x / 60)).padStart(2, '0')}:${String(x % 60).padStart(2, '0')}`;
};
const ALL_DAYS = [0, 1, 2, 3, 4, 5, 6];

describe('grants v2 through the agent', () => {
  let srv: TestHub;
  let dataDir: string;
  let agent: Agent;
  let owner: TestViewer;
  let owner2: TestViewer;
  let alice: TestViewer; // member: live, clips (a v1-style grant: clips covers snapshots and timeline)
  let bob: TestViewer; // member: timeline only
  let guest: TestViewer; // guest with clips: nothing from before its grant
  let sitter: TestViewer; // member with clips, outside its hours now
  let sitter2: TestViewer; // member with clips, inside its hours now (control)
  let recovery: WebCryptoSigner;
  let emitRecording: ((r: EventRecording) => void) | undefined;
  const fm = fakeMedia();
  const media = {
    ...fm.media,
    onRecording: (l: (r: EventRecording) => void) => {
      emitRecording = l;
      return () => {
        emitRecording = undefined;
      };
    },
  };
  let ver = 0;
  let serial = 0;
  let guestNbf = 0;
  const grantFor = (v: TestViewer, over: Partial<Grant> = {}): Grant => ({
    d: agent.deviceId,
    sub: v.id,
    role: 'member',
    scopes: ['live', 'clips'],
    nbf: 0,
    exp: null,
    serial: ++serial,
    ...over,
  });
  const aclUpdate = async (
    by: WebCryptoSigner,
    u: Partial<AclUpdateInput> & { grants?: Grant[] } = {},
    issuer = by,
  ) => {
    const { grants = [], ...rest } = u;
    const add = await Promise.all(grants.map((g) => signGrant(issuer, g, systemEnv)));
    return signAclUpdate(by, { d: agent.deviceId, ver: ver + 1, add, revoke: [], ...rest }, systemEnv);
  };
  /** Send an update from `v`; the device's answer. */
  const send = async (v: TestViewer, env: unknown) => {
    v.send(agent.deviceId, { t: 'acl/update', env });
    const r = await v.next((m) => m.t === 'acl/ok' || m.t === 'acl/error');
    if (r.t === 'acl/ok') ver = r.ver as number;
    return r;
  };
  const register = async (v: TestViewer, fill: number) => {
    const rk = encodeReaderKey(await signReaderKey(v.signer, new Uint8Array(32).fill(fill)));
    v.send(agent.deviceId, { t: 'reader/key', rk });
    return v.next((m) => m.t === 'reader/ok' || m.t === 'reader/error');
  };
  /** One recording now (started a minute ago, with a snapshot); its outbox entries by kind. */
  const record = async (): Promise<Record<string, { meta: OutboxMeta; to: string[] }>> => {
    const before = new Set(agent.events.outbox.list().map((m) => m.id));
    assert.ok(emitRecording);
    const t = Date.now();
    emitRecording({
      camera: 'demo',
      kind: 'motion',
      trigger: t,
      start: t - 60_000,
      end: t + 2000,
      snapshot: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]),
      clip: new Uint8Array(3000).fill(7),
      frames: 10,
      truncated: false,
    });
    await agent.events.idle();
    const out: Record<string, { meta: OutboxMeta; to: string[] }> = {};
    for (const m of agent.events.outbox.list()) {
      if (before.has(m.id)) continue;
      const h = decodeClipHeader(agent.events.outbox.read(m.id) as Uint8Array).header;
      const to = h.r.map((r) => r.k).sort();
      assert.deepEqual([...(m.readers ?? [])].sort(), to, 'the meta lists the header recipients');
      out[m.kind] = { meta: m, to };
    }
    return out;
  };
  const aclFile = () => readFileSync(join(dataDir, 'acl.json'), 'utf8');
  let first: Record<string, { meta: OutboxMeta; to: string[] }>;

  before(async () => {
    srv = await startTestHub({ serveViewer: false });
    dataDir = join(mkdtempSync(join(tmpdir(), 'hearth-grants-')), 'data');
    agent = await startAgent({
      dataDir,
      serverUrl: srv.url,
      media,
      timeZone: TZ,
      pairingIterations: ITER,
      minBackoffMs: 20,
      maxBackoffMs: 200,
      events: { upload: false },
    });
    pins.set(agent.deviceId, (await loadOrCreateIdentity(dataDir)).signer.publicKey);
    owner = await connectViewer(srv.url);
    const info = agent.pairing();
    assert.ok(info);
    await pairViewer(owner, info, 'qr');
    owner2 = await connectViewer(srv.url);
    alice = await connectViewer(srv.url);
    bob = await connectViewer(srv.url);
    guest = await connectViewer(srv.url);
    sitter = await connectViewer(srv.url);
    sitter2 = await connectViewer(srv.url);
    recovery = await WebCryptoSigner.generate();
    assert.equal(agent.acl()?.timeZone, TZ);
    // Everyone first without hours, so that each registers a reader key; then the sitters' grants
    // are replaced by scheduled ones (a re-grant: revoke the old serial, add a new one).
    const now = Date.now();
    guestNbf = now - 1000;
    const plain = [
      grantFor(alice),
      grantFor(bob, { scopes: ['live', 'timeline'] }),
      grantFor(guest, { role: 'guest', nbf: guestNbf, exp: now + 3_600_000 }),
      grantFor(sitter),
      grantFor(sitter2),
    ];
    assert.deepEqual(
      await send(
        owner,
        await aclUpdate(owner.signer, { grants: plain, recovery: encodeId('userKey', recovery.publicKey) }),
      ),
      { t: 'acl/ok', ver: 1 },
    );
    for (const [i, v] of [owner, alice, bob, guest, sitter, sitter2].entries())
      assert.deepEqual(await register(v, i + 1), { t: 'reader/ok' });
    const { minute } = localTime(Date.now(), TZ);
    const out = [{ days: ALL_DAYS, from: hhmm(minute + 120), to: hhmm(minute + 180) }];
    const inside = [{ days: ALL_DAYS, from: hhmm(minute - 60), to: hhmm(minute + 60) }];
    assert.deepEqual(
      await send(
        owner,
        await aclUpdate(owner.signer, {
          revoke: [4, 5],
          grants: [grantFor(sitter, { sched: out }), grantFor(sitter2, { sched: inside })],
        }),
      ),
      { t: 'acl/ok', ver: 2 },
    );
  });

  after(async () => {
    await agent?.close();
    for (const v of [owner, owner2, alice, bob, guest, sitter, sitter2]) v?.client.close();
    await srv?.close();
    rmSync(join(dataDir, '..'), { recursive: true, force: true });
  });

  it('each blob is sealed per scope, schedule (device time zone) and history floor', async () => {
    first = await record();
    assert.deepEqual(Object.keys(first).sort(), ['clip', 'event', 'snapshot']);
    const ids = (...vs: TestViewer[]) => vs.map((v) => v.id).sort();
    // clip: started a minute ago, before the guest's grant (its floor): not the guest's; not bob's
    // (timeline only); not the sitter's (outside hours); the sitter within hours gets it.
    assert.deepEqual(first.clip?.to, ids(owner, alice, sitter2));
    // snapshot (at the trigger, after the guest's nbf): alice's and the guest's v1-style clips cover it
    assert.deepEqual(first.snapshot?.to, ids(owner, alice, guest, sitter2));
    // event record (the timeline): bob's too
    assert.deepEqual(first.event?.to, ids(owner, alice, bob, guest, sitter2));
    assert.ok(!Object.values(first).some((b) => b.to.includes(sitter.id)));
  });

  it('after a revocation the next blobs exclude the revoked reader; the earlier ones included it', async () => {
    const before = agent.acl();
    const aliceSerial = before?.grantsOf(alice.id)[0]?.serial;
    assert.ok(aliceSerial);
    assert.deepEqual(await send(owner, await aclUpdate(owner.signer, { revoke: [aliceSerial] })), {
      t: 'acl/ok',
      ver: 3,
    });
    assert.deepEqual(before?.diff(agent.acl() as Acl).revoked, [alice.id]);
    const next = await record();
    for (const kind of ['clip', 'snapshot', 'event']) {
      assert.ok(first[kind]?.to.includes(alice.id), `the earlier ${kind} was sealed to alice`);
      assert.ok(next[kind]?.to.includes(owner.id), `the owner still gets the ${kind}`);
      assert.ok(!next[kind]?.to.includes(alice.id), `the next ${kind} is not sealed to alice`);
    }
    // the earlier blobs are untouched: their headers still name alice (clips already made stay readable)
    const h = decodeClipHeader(agent.events.outbox.read(first.clip?.meta.id as string) as Uint8Array).header;
    assert.ok(h.r.some((r) => r.k === alice.id));
  });

  it('escalation attempts through acl/update are refused and leave the ACL unchanged; control: an owner’s is applied', async () => {
    const acl0 = agent.acl()?.toJSON();
    const file0 = aclFile();
    const unchanged = () => {
      assert.deepEqual(agent.acl()?.toJSON(), acl0);
      assert.equal(aclFile(), file0);
    };
    const power = grantFor(bob, { scopes: ['live', 'clips', 'talk', 'ptz'] });
    // a member signs an update granting itself everything
    assert.deepEqual(await send(bob, await aclUpdate(bob.signer, { grants: [power] })), {
      t: 'acl/error',
      code: 'E_WRONG_SIGNER',
    });
    unchanged();
    // a member's forged removal of the owner (and making itself one)
    assert.deepEqual(
      await send(bob, await aclUpdate(bob.signer, { owners: { add: [bob.id], remove: [owner.id] } })),
      { t: 'acl/error', code: 'E_WRONG_SIGNER' },
    );
    unchanged();
    // a replayed old update (the one that granted alice, to undo her revocation)
    const old = await signAclUpdate(
      owner.signer,
      {
        d: agent.deviceId,
        ver: 1,
        add: [await signGrant(owner.signer, grantFor(alice), systemEnv)],
        revoke: [],
      },
      systemEnv,
    );
    assert.deepEqual(await send(alice, old), { t: 'acl/error', code: 'E_STALE_ACL' });
    unchanged();
    // the recovery key adding a member (sent by bob, who holds a stolen printout)
    assert.deepEqual(await send(bob, await aclUpdate(recovery, { grants: [power] }, owner.signer)), {
      t: 'acl/error',
      code: 'E_RECOVERY_SCOPE',
    });
    unchanged();
    // removing the last owner
    assert.deepEqual(await send(owner, await aclUpdate(owner.signer, { owners: { remove: [owner.id] } })), {
      t: 'acl/error',
      code: 'E_LAST_OWNER',
    });
    unchanged();
    // Each attempt from a non-owner is in the access log as a possible attack (one per code a
    // minute); the owner's own refused update (E_LAST_OWNER) is not an attack.
    await agent.accessLog.flush();
    const alerts: string[] = [];
    for (let i = 0; i < agent.accessLog.size; i++) {
      const e = decodeLogEntry(agent.accessLog.entry(i));
      if (e.k === 'alert' && 'code' in e) alerts.push(`${e.alert}:${e.code}`);
    }
    for (const code of ['E_WRONG_SIGNER', 'E_STALE_ACL', 'E_RECOVERY_SCOPE'])
      assert.ok(alerts.includes(`possible-attack:${code}`), `${code} logged: ${alerts.join(' ')}`);
    assert.ok(!alerts.includes('possible-attack:E_LAST_OWNER'), 'an owner’s refused update is not an attack');
    // control: the owner signs the same grant: applied
    assert.deepEqual(await send(owner, await aclUpdate(owner.signer, { grants: [power] })), {
      t: 'acl/ok',
      ver: 4,
    });
    assert.equal(agent.acl()?.authorize(bob.id, 'ptz', Date.now()).allowed, true);
    assert.notEqual(aclFile(), file0);
  });

  it('a second owner reads the ACL and signs updates; after a transfer the old owner cannot', async () => {
    owner2.send(agent.deviceId, { t: 'acl/get' });
    assert.deepEqual(await owner2.next((m) => m.t === 'acl' || m.t === 'acl/error'), {
      t: 'acl/error',
      code: 'E_NO_GRANT',
    });
    assert.equal(
      (await send(owner, await aclUpdate(owner.signer, { owners: { add: [owner2.id] } }))).t,
      'acl/ok',
    );
    owner2.send(agent.deviceId, { t: 'acl/get' });
    const got = await owner2.next((m) => m.t === 'acl' || m.t === 'acl/error');
    assert.equal(got.t, 'acl');
    assert.deepEqual((got.state as { owners: string[] }).owners, [owner.id, owner2.id]);
    assert.deepEqual(await register(owner2, 9), { t: 'reader/ok' });
    // transfer: owner2 removes owner
    assert.equal(
      (await send(owner2, await aclUpdate(owner2.signer, { owners: { remove: [owner.id] } }))).t,
      'acl/ok',
    );
    assert.deepEqual(agent.acl()?.owners, [owner2.id]);
    owner.send(agent.deviceId, { t: 'acl/get' });
    assert.deepEqual(await owner.next((m) => m.t === 'acl' || m.t === 'acl/error'), {
      t: 'acl/error',
      code: 'E_NO_GRANT',
    });
    assert.deepEqual(await send(owner, await aclUpdate(owner.signer, {})), {
      t: 'acl/error',
      code: 'E_WRONG_SIGNER',
    });
    const r = await record();
    assert.ok(r.clip?.to.includes(owner2.id) && !r.clip.to.includes(owner.id));
    // the grants the old owner signed still hold (the household survives the transfer)
    assert.equal(agent.acl()?.authorize(bob.id, 'timeline', Date.now()).allowed, true);
  });
});

describe('PushNotifier: schedules and history floors (injected clock)', () => {
  it('a member out of hours and a guest for an event before its grant get nothing; control: in hours / after the grant', async () => {
    // 2026-12-07 is a Monday; 09:00 UTC is 10:00 in Berlin.
    const t = Date.parse('2026-12-07T09:00:00Z');
    const env = fixedEnv(5, t);
    const device = await WebCryptoSigner.generate();
    const owner = await WebCryptoSigner.generate();
    const sitter = await WebCryptoSigner.generate();
    const guest = await WebCryptoSigner.generate();
    const key = (s: WebCryptoSigner) => encodeId('userKey', s.publicKey);
    const d = deviceIdFromKey(device.publicKey);
    const g = (s: WebCryptoSigner, serial: number, over: Partial<Grant>) =>
      signGrant(
        owner,
        { d, sub: key(s), role: 'member', scopes: ['clips'], nbf: 0, exp: null, serial, ...over },
        env,
      );
    const acl = await Acl.create(d, owner.publicKey, { timeZone: 'Europe/Berlin' }).apply(
      await signAclUpdate(
        owner,
        {
          d,
          ver: 1,
          add: [
            await g(sitter, 1, { sched: [{ days: [1], from: '10:00', to: '11:00' }] }),
            await g(guest, 2, { role: 'guest', nbf: t - 1000, exp: t + 3_600_000 }),
          ],
          revoke: [],
        },
        env,
      ),
      t,
    );
    const dir = mkdtempSync(join(tmpdir(), 'hearth-grants-push-'));
    try {
      const sent: PushSend[] = [];
      let current = acl;
      const n = new PushNotifier({
        dataDir: dir,
        acl: () => current,
        env,
        cooldownMs: 0,
        transport: {
          push: async (p) => {
            sent.push(p);
            return 'ok';
          },
        },
      });
      const kp = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, [
        'deriveBits',
      ])) as CryptoKeyPair;
      const p256dh = b64u(new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey)));
      const sub = (e: string) => ({
        endpoint: `https://push.example/${e}`,
        p256dh,
        auth: b64u(new Uint8Array(16).fill(1)),
      });
      assert.deepEqual(n.subscribe(key(sitter), sub('sitter')), { t: 'push/ok' });
      assert.deepEqual(n.subscribe(key(guest), sub('guest')), { t: 'push/ok' });
      const to = () => sent.splice(0).map((s) => s.endpoint.split('/').pop());
      // 10:00 Berlin, an event now: both
      await n.notify({ type: 'motion', cam: 'door', t });
      assert.deepEqual(to().sort(), ['guest', 'sitter']);
      // an event made before the guest's grant (clipReady of an old one would be the same rule)
      await n.notify({ type: 'motion', cam: 'door', t: t - 5000 });
      assert.deepEqual(to(), ['sitter']);
      // 11:00 Berlin: out of the sitter's hours
      env.advance(3_600_000);
      await n.notify({ type: 'motion', cam: 'door', t: t + 3_600_000 });
      assert.deepEqual(to(), []); // the guest's grant ended at exp too
      // control: the same ACL in UTC (11:00 Berlin = 10:00 UTC): the sitter is in hours again
      current = acl.withTimeZone('UTC');
      await n.notify({ type: 'motion', cam: 'door', t: t + 3_600_000 });
      assert.deepEqual(to(), ['sitter']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the device time zone (config)', () => {
  it('timeZone: from the camera map, else the system’s; an unknown one is E_CONFIG', async () => {
    const { deviceTimeZone, loadTimeZone } = await import('../src/config.js');
    const dir = mkdtempSync(join(tmpdir(), 'hearth-tz-'));
    try {
      const { writeFileSync } = await import('node:fs');
      const f = join(dir, 'cameras.yaml');
      writeFileSync(f, 'timeZone: Europe/Berlin\ncameras:\n  demo: testsrc?size=320x240&fps=5&gop=1\n');
      assert.equal(loadTimeZone(f), 'Europe/Berlin');
      writeFileSync(f, 'cameras:\n  demo: testsrc?size=320x240&fps=5&gop=1\n');
      assert.equal(loadTimeZone(f), undefined);
      assert.equal(deviceTimeZone(), Intl.DateTimeFormat().resolvedOptions().timeZone);
      for (const bad of ['timeZone: Mars/Olympus\n', 'timeZone: 5\n']) {
        writeFileSync(f, bad);
        assert.throws(
          () => loadTimeZone(f),
          (e) => (e as { code?: string }).code === 'E_CONFIG',
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
