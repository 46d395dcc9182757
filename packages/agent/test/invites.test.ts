// Invites through the real agent and the real rendezvous hub, over sealed channels: an owner
// creates an invite, the invitee redeems the link, the owner approves with an ordinary ACL update.
// Every defence (owner only, proof, one-time, expiry, rate limits) has an attack test and a control
// that removes that one check (`invites.unguardedForTests`, test only) and shows the attack working.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  Acl,
  createOffer,
  decodeInviteLink,
  encodeId,
  grantFromInvite,
  type InviteTemplate,
  inviteProof,
  inviteRedeemMessage,
  type LogEntry,
  makeInvite,
  signAclUpdate,
  signGrant,
  signInvite,
  systemEnv,
  WebCryptoSigner,
} from '@hearth/protocol';
import { startTestHub, type TestHub } from '@hearth/server/testing';
import { loadOrCreateIdentity } from '../src/device/identity.js';
import { type InviteCheck, InviteStore } from '../src/device/invites.js';
import { type Agent, startAgent } from '../src/index.js';
import { connectViewer, fakeMedia, ITER, pairViewer, pins, sdp, type TestViewer } from './world.js';

const ORIGIN = 'https://viewer.example';
const HOUR = 3600_000;
const family: InviteTemplate = { role: 'member', scopes: ['live', 'clips'], days: 365 };

describe('invites through the real agent', () => {
  let srv: TestHub;
  let dataDir: string;
  let agent: Agent;
  let owner: TestViewer;
  let deviceKey: Uint8Array;
  const viewers: TestViewer[] = [];
  const logged: LogEntry[] = [];
  const unguarded: InviteCheck[] = [];
  let skew = 0; // the invites' clock runs `skew` ms ahead of the wall clock
  let serial = 0;
  const start = () =>
    startAgent({
      dataDir,
      serverUrl: srv.url,
      media: fakeMedia().media,
      pairingIterations: ITER,
      minBackoffMs: 20,
      maxBackoffMs: 200,
      strangerReplies: {
        perStrangerPerSecond: 1000,
        perStrangerBurst: 1000,
        totalPerSecond: 1000,
        totalBurst: 1000,
      },
      invites: {
        now: () => Date.now() + skew,
        log: { append: (e) => void logged.push(e) },
        unguardedForTests: unguarded,
      },
    });
  const viewer = async () => {
    const v = await connectViewer(srv.url);
    viewers.push(v);
    return v;
  };
  /** Send `m` from `v` and wait for its invite answer. */
  const ask = async (v: TestViewer, m: { t: string; [k: string]: unknown }) => {
    v.send(agent.deviceId, m);
    return v.next((x) =>
      ['invite/ok', 'invite/error', 'invite/pending', 'invite/approved', 'invites'].includes(x.t),
    );
  };
  const invite = async (o: { exp?: number; tmpl?: InviteTemplate; label?: string } = {}) => {
    const made = await makeInvite(
      {
        owner: owner.signer,
        deviceId: agent.deviceId,
        deviceKey,
        origin: ORIGIN,
        exp: o.exp ?? Date.now() + skew + HOUR,
        tmpl: o.tmpl ?? family,
        ...(o.label ? { label: o.label } : {}),
      },
      systemEnv,
    );
    assert.deepEqual(await ask(owner, { t: 'invite/create', env: made.env }), {
      t: 'invite/ok',
      id: made.id,
    });
    return { ...made, decoded: decodeInviteLink(made.link) };
  };
  const redeem = async (v: TestViewer, link: ReturnType<typeof decodeInviteLink>, name = 'Grandma') =>
    ask(v, await inviteRedeemMessage(link, v.signer.publicKey, name));
  const grant = async (sub: string, tmpl: InviteTemplate = { role: 'member', scopes: ['live'] }) => {
    const g = await signGrant(
      owner.signer,
      grantFromInvite(tmpl, { d: agent.deviceId, sub, serial: ++serial, now: Date.now() - 1000 }),
      systemEnv,
    );
    const ver = agent.acl()!.state.ver + 1;
    const up = await signAclUpdate(owner.signer, { d: agent.deviceId, ver, add: [g], revoke: [] }, systemEnv);
    owner.send(agent.deviceId, { t: 'acl/update', env: up });
    assert.deepEqual(await owner.next((m) => m.t === 'acl/ok' || m.t === 'acl/error'), { t: 'acl/ok', ver });
  };
  const state = async (id: string) => {
    const r = (await ask(owner, { t: 'invite/list' })) as {
      t: string;
      list: { id: string; state: string }[];
    };
    assert.equal(r.t, 'invites');
    return r.list.find((i) => i.id === id);
  };

  before(async () => {
    // Many strangers (invitees, guessers), all from 127.0.0.1, talk to the device here: lift the
    // hub's caps on strangers and per sender address (R3), which would drop some of their messages.
    srv = await startTestHub({
      serveViewer: false,
      limits: {
        strangersPerSecond: 1000,
        strangersBurst: 1000,
        inboundPerSenderPerSecond: 1000,
        inboundPerSenderBurst: 1000,
      },
    });
    dataDir = join(mkdtempSync(join(tmpdir(), 'hearth-invites-')), 'data');
    agent = await start();
    deviceKey = (await loadOrCreateIdentity(dataDir)).signer.publicKey;
    pins.set(agent.deviceId, deviceKey);
    owner = await viewer();
    const r = await pairViewer(owner, agent.pairing()!, 'code');
    assert.equal(r.role, 'owner');
  });

  after(async () => {
    await agent?.close();
    for (const v of viewers) v.client.close();
    await srv?.close();
    rmSync(join(dataDir, '..'), { recursive: true, force: true });
  });

  it('full flow: create → redeem → the owner hears the request → acl/update approves → the invitee is told and can watch', async () => {
    const inv = await invite({ label: 'Grandma' });
    assert.deepEqual(inv.decoded.deviceKey, deviceKey, 'the link pins the real device key');
    assert.equal(inv.decoded.d, agent.deviceId);
    assert.ok(!inv.link.split('#')[0]!.includes(inv.decoded.s), 'the secret is only in the fragment');
    assert.ok(logged.some((e) => e.k === 'acl/invite' && e.invite === inv.id));
    assert.equal((await state(inv.id))?.state, 'open');

    const guest = await viewer();
    assert.deepEqual(await redeem(guest, inv.decoded), { t: 'invite/pending', id: inv.id });
    assert.deepEqual(await owner.next((m) => m.t === 'invite/request'), {
      t: 'invite/request',
      id: inv.id,
      sub: guest.id,
      name: 'Grandma',
    });
    const listed = (await state(inv.id)) as unknown as Record<string, unknown>;
    assert.deepEqual(listed, {
      id: inv.id,
      exp: inv.decoded.exp,
      state: 'requested',
      label: 'Grandma',
      sub: guest.id,
      name: 'Grandma',
      tmpl: family,
    });
    assert.ok(logged.some((e) => e.k === 'acl/request' && e.invite === inv.id && e.result === 'pending'));

    // Redeeming grants nothing by itself: the invitee is still a stranger.
    guest.send(agent.deviceId, { t: 'cameras' });
    assert.deepEqual(await guest.next((m) => m.t === 'cameras/refused'), {
      t: 'cameras/refused',
      code: 'E_NO_GRANT',
    });
    const o1 = await createOffer(
      guest.signer,
      { deviceId: agent.deviceId, camera: 'demo', sdp: sdp('o') },
      systemEnv,
    );
    guest.send(agent.deviceId, { t: 'session/offer', env: o1.envelope });
    assert.deepEqual(await guest.next((m) => m.t === 'session/refused'), {
      t: 'session/refused',
      sid: o1.sid,
      code: 'E_NO_GRANT',
    });
    // The invitee's retry (a lost reply) gets the same answer and changes nothing.
    assert.deepEqual(await redeem(guest, inv.decoded), { t: 'invite/pending', id: inv.id });

    // Approval is an ordinary owner-signed ACL update with a grant for the request's key, built
    // from the invite's template.
    await grant(guest.id, family);
    assert.deepEqual(await guest.next((m) => m.t === 'invite/approved'), {
      t: 'invite/approved',
      id: inv.id,
    });
    assert.equal((await state(inv.id))?.state, 'approved');
    assert.ok(logged.some((e) => e.k === 'acl/request' && e.invite === inv.id && e.result === 'approved'));
    guest.send(agent.deviceId, { t: 'cameras' });
    assert.equal((await guest.next((m) => m.t === 'cameras')).role, 'member');
    const o2 = await createOffer(
      guest.signer,
      { deviceId: agent.deviceId, camera: 'demo', sdp: sdp('o') },
      systemEnv,
    );
    guest.send(agent.deviceId, { t: 'session/offer', env: o2.envelope });
    await guest.next((m) => m.t === 'session/answer');
    assert.deepEqual(await redeem(guest, inv.decoded), { t: 'invite/approved', id: inv.id });
  });

  it('one-time: a redeemed link replayed by a second key is E_INVITE_USED (the first redeem works); control: without the check the second key gets in line', async () => {
    const inv = await invite();
    const first = await viewer();
    const second = await viewer();
    assert.deepEqual(await redeem(first, inv.decoded), { t: 'invite/pending', id: inv.id });
    await owner.next((m) => m.t === 'invite/request' && m.sub === first.id);
    assert.deepEqual(await redeem(second, inv.decoded), { t: 'invite/error', code: 'E_INVITE_USED' });
    assert.ok(logged.some((e) => e.k === 'acl/request' && e.invite === inv.id && e.result === 'used'));
    assert.equal(
      ((await state(inv.id)) as { sub?: string }).sub,
      first.id,
      'the request is still the first key’s',
    );

    const ctl = await invite();
    assert.deepEqual(await redeem(first, ctl.decoded), { t: 'invite/pending', id: ctl.id });
    unguarded.push('one-time');
    try {
      assert.deepEqual(await redeem(second, ctl.decoded), { t: 'invite/pending', id: ctl.id });
    } finally {
      unguarded.splice(0);
    }
  });

  it('expiry (injected clock): an expired link is E_INVITE_EXPIRED and listed expired; control: before exp it works, and without the check it is taken', async () => {
    const inv = await invite({ exp: Date.now() + skew + HOUR });
    const late = await viewer();
    skew += 2 * HOUR;
    try {
      assert.deepEqual(await redeem(late, inv.decoded), { t: 'invite/error', code: 'E_INVITE_EXPIRED' });
      assert.equal((await state(inv.id))?.state, 'expired');
      unguarded.push('expiry');
      assert.deepEqual(await redeem(late, inv.decoded), { t: 'invite/pending', id: inv.id });
    } finally {
      unguarded.splice(0);
      skew -= 2 * HOUR;
    }
    const fresh = await invite({ exp: Date.now() + skew + HOUR });
    assert.deepEqual(await redeem(late, fresh.decoded), { t: 'invite/pending', id: fresh.id });
  });

  it('a wrong proof and a guessed ID get the same E_INVITE_UNKNOWN; control: without the proof check a wrong proof gets in', async () => {
    const inv = await invite();
    const thief = await viewer();
    const other = await WebCryptoSigner.generate();
    // The proof made for another key (e.g. seen elsewhere) does not work for the thief's.
    const stolen = {
      t: 'invite/redeem',
      id: inv.id,
      proof: await inviteProof(inv.decoded.secret, other.publicKey, agent.deviceId),
      name: 'x',
    };
    assert.deepEqual(await ask(thief, stolen), { t: 'invite/error', code: 'E_INVITE_UNKNOWN' });
    // A proof for another device neither.
    const elsewhere = {
      ...stolen,
      proof: await inviteProof(
        inv.decoded.secret,
        thief.signer.publicKey,
        encodeId('deviceId', new Uint8Array(20)),
      ),
    };
    assert.deepEqual(await ask(thief, elsewhere), { t: 'invite/error', code: 'E_INVITE_UNKNOWN' });
    const guessed = { ...stolen, id: 'ab'.repeat(16) };
    assert.deepEqual(await ask(thief, guessed), { t: 'invite/error', code: 'E_INVITE_UNKNOWN' });
    assert.equal((await state(inv.id))?.state, 'open', 'nothing changed');
    unguarded.push('proof');
    try {
      assert.deepEqual(await ask(thief, stolen), { t: 'invite/pending', id: inv.id });
    } finally {
      unguarded.splice(0);
    }
  });

  it('brute force: after 5 failures a key is E_RATE_LIMITED, even with the right proof; control: without the limit every guess is answered and the right one gets in', async () => {
    const inv = await invite();
    const guesser = await viewer();
    const right = await inviteRedeemMessage(inv.decoded, guesser.signer.publicKey, 'g');
    const wrong = (i: number) => ({ ...right, proof: `${'A'.repeat(41)}${'ABCDEFGH'[i % 8]}A` });
    for (let i = 0; i < 5; i++)
      assert.deepEqual(await ask(guesser, wrong(i)), { t: 'invite/error', code: 'E_INVITE_UNKNOWN' });
    assert.deepEqual(await ask(guesser, wrong(5)), { t: 'invite/error', code: 'E_RATE_LIMITED' });
    assert.deepEqual(await ask(guesser, right), { t: 'invite/error', code: 'E_RATE_LIMITED' });
    // The limit is per key: another invitee is not locked out.
    const honest = await viewer();
    const inv2 = await invite();
    assert.deepEqual(await redeem(honest, inv2.decoded), { t: 'invite/pending', id: inv2.id });

    const ctl = await viewer();
    unguarded.push('rate-limit');
    try {
      for (let i = 0; i < 12; i++)
        assert.deepEqual(await ask(ctl, wrong(i)), { t: 'invite/error', code: 'E_INVITE_UNKNOWN' });
      const ok = await inviteRedeemMessage(inv.decoded, ctl.signer.publicKey, 'c');
      assert.deepEqual(await ask(ctl, ok), { t: 'invite/pending', id: inv.id });
    } finally {
      unguarded.splice(0);
    }
  });

  it('non-owners cannot create, list or deny invites (E_NO_GRANT), nor can a member-signed invite be slipped in (E_WRONG_SIGNER); control: without the owner check a stranger’s invite is stored', async () => {
    const stranger = await viewer();
    const mine = await makeInvite(
      {
        owner: stranger.signer,
        deviceId: agent.deviceId,
        deviceKey,
        origin: ORIGIN,
        exp: Date.now() + skew + HOUR,
        tmpl: family,
      },
      systemEnv,
    );
    assert.deepEqual(await ask(stranger, { t: 'invite/create', env: mine.env }), {
      t: 'invite/error',
      code: 'E_NO_GRANT',
    });
    assert.deepEqual(await ask(stranger, { t: 'invite/list' }), { t: 'invite/error', code: 'E_NO_GRANT' });
    assert.deepEqual(await ask(stranger, { t: 'invite/deny', id: mine.id }), {
      t: 'invite/error',
      code: 'E_NO_GRANT',
    });
    // A member (granted in the first test) is no owner either.
    const member = viewers[1]!;
    assert.deepEqual(await ask(member, { t: 'invite/create', env: mine.env }), {
      t: 'invite/error',
      code: 'E_NO_GRANT',
    });
    // The owner forwarding an invite someone else signed: refused by signer.
    assert.deepEqual(await ask(owner, { t: 'invite/create', env: mine.env }), {
      t: 'invite/error',
      code: 'E_WRONG_SIGNER',
    });
    // Another device's invite.
    const other = await signInvite(
      owner.signer,
      {
        d: encodeId('deviceId', new Uint8Array(20)),
        id: mine.id,
        pk: 'A'.repeat(43),
        exp: Date.now() + HOUR,
        tmpl: family,
      },
      systemEnv,
    );
    assert.deepEqual(await ask(owner, { t: 'invite/create', env: other }), {
      t: 'invite/error',
      code: 'E_BAD_BINDING',
    });
    assert.equal(await state(mine.id), undefined);
    unguarded.push('owner');
    try {
      assert.deepEqual(await ask(stranger, { t: 'invite/create', env: mine.env }), {
        t: 'invite/ok',
        id: mine.id,
      });
    } finally {
      unguarded.splice(0);
    }
  });

  it('deny: the owner refuses a request; the invitee’s retry is E_INVITE_USED; a denied open link is cancelled', async () => {
    const inv = await invite();
    const v = await viewer();
    assert.deepEqual(await redeem(v, inv.decoded), { t: 'invite/pending', id: inv.id });
    assert.deepEqual(await ask(owner, { t: 'invite/deny', id: inv.id }), { t: 'invite/ok', id: inv.id });
    assert.equal((await state(inv.id))?.state, 'denied');
    assert.ok(logged.some((e) => e.k === 'acl/request' && e.invite === inv.id && e.result === 'denied'));
    assert.deepEqual(await redeem(v, inv.decoded), { t: 'invite/error', code: 'E_INVITE_USED' });
    const cancelled = await invite();
    assert.deepEqual(await ask(owner, { t: 'invite/deny', id: cancelled.id }), {
      t: 'invite/ok',
      id: cancelled.id,
    });
    assert.deepEqual(await redeem(v, cancelled.decoded), { t: 'invite/error', code: 'E_INVITE_USED' });
    assert.deepEqual(await ask(owner, { t: 'invite/deny', id: 'cd'.repeat(16) }), {
      t: 'invite/error',
      code: 'E_INVITE_UNKNOWN',
    });
  });

  it('a restart keeps the invites: a used link is still refused, an open one still works', async () => {
    const used = await invite();
    const open = await invite();
    const a = await viewer();
    assert.deepEqual(await redeem(a, used.decoded), { t: 'invite/pending', id: used.id });
    await agent.close();
    agent = await start();
    const b = await viewer();
    assert.deepEqual(await redeem(b, used.decoded), { t: 'invite/error', code: 'E_INVITE_USED' });
    assert.deepEqual(await redeem(b, open.decoded), { t: 'invite/pending', id: open.id });
    assert.equal(
      readFileSync(InviteStore.path(dataDir), 'utf8').includes(open.decoded.s),
      false,
      'the device never holds the secret',
    );
  });
});

describe('invites.json on load', () => {
  const deviceDir = () => mkdtempSync(join(tmpdir(), 'hearth-invites-file-'));

  async function storeWithOneInvite(dir: string) {
    const id = await loadOrCreateIdentity(dir);
    const owner = await WebCryptoSigner.generate();
    const ownerText = encodeId('userKey', owner.publicKey);
    const acl = Acl.create(id.deviceId, owner.publicKey);
    const o = {
      dataDir: dir,
      deviceId: id.deviceId,
      acl: () => acl,
      send: () => true,
      now: () => Date.now(),
    };
    const store = await InviteStore.load(o);
    const made = await makeInvite(
      {
        owner,
        deviceId: id.deviceId,
        deviceKey: id.signer.publicKey,
        origin: ORIGIN,
        exp: Date.now() + HOUR,
        tmpl: family,
      },
      systemEnv,
    );
    const replies: unknown[] = [];
    await store.onMessage(ownerText, { t: 'invite/create', env: made.env }, (m) => void replies.push(m));
    assert.deepEqual(replies, [{ t: 'invite/ok', id: made.id }]);
    return o;
  }

  it('control: the file the store wrote loads back', async () => {
    const dir = deviceDir();
    try {
      const o = await storeWithOneInvite(dir);
      assert.equal((await InviteStore.load(o)).list().length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const [what, edit] of [
    ['not JSON', () => 'not json'],
    ['off the schema', (s: string) => s.replace('"v":1', '"v":2')],
    [
      'an altered template (the owner’s signature no longer verifies)',
      (s: string) => s.replace('"role":"member"', '"role":"guest"'),
    ],
    ['an altered expiry', (s: string) => s.replace(/"exp":(\d+)/, (_m, n) => `"exp":${Number(n) + 1}`)],
    ['a state without its invitee', (s: string) => s.replace('"state":"open"', '"state":"approved"')],
  ] as const) {
    it(`a tampered file (${what}) stops the load with an error naming the file`, async () => {
      const dir = deviceDir();
      try {
        const o = await storeWithOneInvite(dir);
        const path = InviteStore.path(dir);
        const before = readFileSync(path, 'utf8');
        const after = edit(before);
        assert.notEqual(after, before, 'the edit applies');
        writeFileSync(path, after, { mode: 0o600 });
        await assert.rejects(InviteStore.load(o), (e: Error & { code?: string }) => {
          assert.equal(e.code, 'E_CONFIG');
          assert.ok(e.message.includes(path), e.message);
          return true;
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('a file others may read is refused (private file), and startAgent stops on it', async () => {
    const dir = deviceDir();
    try {
      const o = await storeWithOneInvite(dir);
      chmodSync(InviteStore.path(dir), 0o644);
      await assert.rejects(InviteStore.load(o), { code: 'E_CONFIG' });
      await assert.rejects(
        startAgent({ dataDir: dir, serverUrl: 'http://127.0.0.1:1', media: fakeMedia().media }),
        {
          code: 'E_CONFIG',
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('InviteStore limits and list (injected clock)', () => {
  let dir: string;
  let clock: number;
  let owner: WebCryptoSigner;
  let ownerText: string;
  let dev: Awaited<ReturnType<typeof loadOrCreateIdentity>>;
  const sent: { to: string; m: unknown }[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-invites-limits-'));
    dev = await loadOrCreateIdentity(dir);
    owner = await WebCryptoSigner.generate();
    ownerText = encodeId('userKey', owner.publicKey);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const open = async (limits: object, unguardedForTests: InviteCheck[] = []) => {
    rmSync(InviteStore.path(dir), { force: true });
    clock = Date.now();
    const acl = Acl.create(dev.deviceId, owner.publicKey);
    return InviteStore.load({
      dataDir: dir,
      deviceId: dev.deviceId,
      acl: () => acl,
      send: (to, m) => void sent.push({ to, m }) === undefined,
      now: () => clock,
      limits,
      unguardedForTests,
    });
  };
  const call = async (store: InviteStore, from: string, m: Parameters<InviteStore['onMessage']>[1]) => {
    const out: unknown[] = [];
    await store.onMessage(from, m, (r) => void out.push(r));
    return out[0] as { t: string; code?: string; id?: string; list?: unknown[]; more?: boolean };
  };
  const create = async (store: InviteStore, tmpl: InviteTemplate = family) => {
    const made = await makeInvite(
      {
        owner,
        deviceId: dev.deviceId,
        deviceKey: dev.signer.publicKey,
        origin: ORIGIN,
        exp: clock + HOUR,
        tmpl,
      },
      { random: (n) => crypto.getRandomValues(new Uint8Array(n)), now: () => clock },
    );
    assert.equal((await call(store, ownerText, { t: 'invite/create', env: made.env })).t, 'invite/ok');
    return decodeInviteLink(made.link);
  };
  const key = async () => WebCryptoSigner.generate();
  const wrong = { proof: 'A'.repeat(43), name: 'x' };

  it('all keys together: after the total burst of failures even a right proof from a new key is E_RATE_LIMITED, until the clock refills it; control: without the limit it gets in', async () => {
    for (const off of [[], ['rate-limit']] as InviteCheck[][]) {
      const store = await open({ perKeyBurst: 100, totalBurst: 3, totalEveryMs: 1000 }, off);
      const link = await create(store);
      for (let i = 0; i < 3; i++) {
        const k = await key();
        const r = await call(store, encodeId('userKey', k.publicKey), {
          t: 'invite/redeem',
          id: 'ab'.repeat(16),
          ...wrong,
        });
        assert.equal(r.code, 'E_INVITE_UNKNOWN');
      }
      const honest = await key();
      const m = await inviteRedeemMessage(link, honest.publicKey, 'Ana');
      const r = await call(store, encodeId('userKey', honest.publicKey), m);
      if (off.length === 0) {
        assert.equal(r.code, 'E_RATE_LIMITED');
        clock += 1000;
        assert.equal((await call(store, encodeId('userKey', honest.publicKey), m)).t, 'invite/pending');
      } else {
        assert.equal(r.t, 'invite/pending', 'control: without the limit the right proof gets in at once');
      }
    }
  });

  it('guesses sent all at once are limited too: of 20 concurrent wrong redeems at most the burst (5) is answered', async () => {
    const store = await open({});
    await create(store);
    const from = encodeId('userKey', (await key()).publicKey);
    const bad = { t: 'invite/redeem' as const, id: 'ab'.repeat(16), ...wrong };
    const rs = await Promise.all(Array.from({ length: 20 }, () => call(store, from, bad)));
    assert.equal(rs.filter((r) => r.code === 'E_INVITE_UNKNOWN').length, 5);
    assert.equal(rs.filter((r) => r.code === 'E_RATE_LIMITED').length, 15);
  });

  it('per key: a spent key gets one more try after perKeyEveryMs', async () => {
    const store = await open({ perKeyBurst: 2, perKeyEveryMs: 60_000 });
    const link = await create(store);
    const k = await key();
    const from = encodeId('userKey', k.publicKey);
    const bad = { t: 'invite/redeem' as const, id: 'ab'.repeat(16), ...wrong };
    assert.equal((await call(store, from, bad)).code, 'E_INVITE_UNKNOWN');
    assert.equal((await call(store, from, bad)).code, 'E_INVITE_UNKNOWN');
    assert.equal((await call(store, from, bad)).code, 'E_RATE_LIMITED');
    clock += 59_000;
    assert.equal((await call(store, from, bad)).code, 'E_RATE_LIMITED');
    clock += 1_000;
    assert.equal(
      (await call(store, from, await inviteRedeemMessage(link, k.publicKey, 'k'))).t,
      'invite/pending',
    );
  });

  it('at most 32 open invites (E_RATE_LIMITED); the list fits one message (more: true) even with the largest templates', async () => {
    const store = await open({});
    const big: InviteTemplate = {
      role: 'member',
      scopes: ['live', 'clips'],
      cams: Array.from({ length: 64 }, (_, i) => `camera-${String(i).padStart(2, '0')}-${'x'.repeat(20)}`),
      groups: Array.from({ length: 16 }, (_, i) => `group-${i}-${'y'.repeat(20)}`),
      sched: Array.from({ length: 8 }, () => ({ days: [0, 1, 2, 3, 4, 5, 6], from: '08:00', to: '18:00' })),
      days: 30,
      floor: 'grant',
    };
    for (let i = 0; i < 32; i++) await create(store, big);
    const made = await makeInvite(
      {
        owner,
        deviceId: dev.deviceId,
        deviceKey: dev.signer.publicKey,
        origin: ORIGIN,
        exp: clock + HOUR,
        tmpl: family,
      },
      systemEnv,
    );
    assert.equal(
      (await call(store, ownerText, { t: 'invite/create', env: made.env })).code,
      'E_RATE_LIMITED',
    );
    const list = await call(store, ownerText, { t: 'invite/list' });
    assert.equal(list.t, 'invites');
    assert.equal(list.more, true);
    assert.ok(list.list!.length > 0 && list.list!.length < 32);
    const { decodeDeviceMessage } = await import('@hearth/protocol');
    assert.ok(decodeDeviceMessage(list).ok, 'within MAX_MESSAGE_BYTES');
  });
});
