/**
 * Security review R2 and R4, through the real SessionManager (verifyOffer, the ACL, the replay
 * cache):
 * - R2: a stranger who knows only the device ID floods offers stamped 29 s ahead; the owner's next
 *   offer is still answered. Controls: the same kind of flood, reaching a copy of the old cache,
 *   does lock the owner out.
 * - R4: an offer answered before a restart, replayed to a new SessionManager (the agent after a
 *   restart, same ACL), is refused with E_RESTARTED; a fresh offer is answered. Control: without
 *   the start-time check, the replay is answered again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Acl,
  type CryptoEnv,
  createOffer,
  deviceIdFromKey,
  type Envelope,
  encodeId,
  fixedEnv,
  MemoryReplayCache,
  type ReplayCache,
  signAclUpdate,
  signGrant,
  WebCryptoSigner,
} from '@hearth/protocol';
import { OldReplayCache } from '../../protocol/test/broken-replay-cache.js';
import { type MediaBackend, SessionManager } from '../src/device/sessions.js';

const FP = 'AB:'.repeat(31) + 'AB';
const sdp = (tag: string) =>
  `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=${tag}\r\nt=0 0\r\na=fingerprint:sha-256 ${FP}\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n`;
const keyText = (s: WebCryptoSigner) => encodeId('userKey', s.publicKey);

const media: MediaBackend = {
  cameras: () => [{ name: 'demo', online: true }],
  async createViewerSession() {
    return { answerSdp: sdp('answer'), session: { close: () => undefined, closed: new Promise(() => {}) } };
  },
};

/** A cache that counts what reaches it. */
class Spy implements ReplayCache {
  calls = 0;
  constructor(readonly inner: ReplayCache) {}
  check(id: string, ts: number, now: number) {
    this.calls++;
    return this.inner.check(id, ts, now);
  }
}

async function world() {
  const env = fixedEnv(11);
  const device = await WebCryptoSigner.generate();
  const owner = await WebCryptoSigner.generate();
  const member = await WebCryptoSigner.generate();
  const stranger = await WebCryptoSigner.generate();
  const deviceId = deviceIdFromKey(device.publicKey);
  const now = env.now();
  const g = await signGrant(
    owner,
    {
      d: deviceId,
      sub: keyText(member),
      role: 'member',
      scopes: ['live'],
      nbf: now - 1000,
      exp: now + 3_600_000,
      serial: 1,
    },
    env,
  );
  const acl = await Acl.create(deviceId, owner.publicKey).apply(
    await signAclUpdate(owner, { d: deviceId, ver: 1, add: [g], revoke: [] }, env),
    now,
  );
  const sent: { to: string; m: { t: string; code?: string; env?: Envelope } }[] = [];
  const manager = (o: { replay?: ReplayCache; startedAt?: number } = {}) =>
    new SessionManager({
      deviceId,
      signer: device,
      env,
      media,
      acl: () => acl,
      send: (to, m) => sent.push({ to, m: m as never }),
      iceServers: () => [],
      sweepMs: 3_600_000,
      ...o,
    });
  /** An offer signed by `s`, stamped `ahead` ms from the device's now. */
  const offer = (s: WebCryptoSigner, ahead = 0) => {
    const e: CryptoEnv = { ...env, now: () => env.now() + ahead };
    return createOffer(s, { deviceId, camera: 'demo', sdp: sdp('offer') }, e);
  };
  /** Send `o` from its signer and return what the device replied. */
  const ask = async (mgr: SessionManager, s: WebCryptoSigner, o: Awaited<ReturnType<typeof offer>>) => {
    const n = sent.length;
    await mgr.onOffer(keyText(s), { env: o.envelope });
    assert.equal(sent.length, n + 1);
    return sent[n]!.m;
  };
  return { env, owner, member, stranger, manager, offer, ask };
}

/** Flood `mgr` with `n` offers from `s`, each stamped 29 s ahead (inside the 30 s skew). */
async function flood(
  w: Awaited<ReturnType<typeof world>>,
  mgr: SessionManager,
  s: WebCryptoSigner,
  n: number,
) {
  const refused = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await w.ask(mgr, s, await w.offer(s, 29_000));
    refused.set(r.code ?? r.t, (refused.get(r.code ?? r.t) ?? 0) + 1);
  }
  return refused;
}

describe('review R2: a replay-cache flood cannot lock the owner out', () => {
  it("a stranger's flood of future-stamped offers never reaches the cache; the owner is answered", async () => {
    const w = await world();
    const spy = new Spy(new MemoryReplayCache(50_000, 5 * 60_000));
    const mgr = w.manager({ replay: spy });
    const refused = await flood(w, mgr, w.stranger, 1500);
    assert.deepEqual([...refused], [['E_NO_GRANT', 1500]]);
    assert.equal(spy.calls, 0, 'no stranger offer reached the replay cache');
    assert.equal((await w.ask(mgr, w.owner, await w.offer(w.owner))).t, 'session/answer');
    assert.equal(spy.calls, 1);
    mgr.dispose();
  });

  it('even the broken cache is safe from strangers, because it is only consulted after the ACL', async () => {
    const w = await world();
    const mgr = w.manager({ replay: new OldReplayCache(100, 5 * 60_000) });
    await flood(w, mgr, w.stranger, 150);
    assert.equal((await w.ask(mgr, w.owner, await w.offer(w.owner))).t, 'session/answer');
    mgr.dispose();
  });

  it("control: a granted key's flood into the broken (old) cache locks the owner out with E_STALE", async () => {
    const w = await world();
    const mgr = w.manager({ replay: new OldReplayCache(100, 5 * 60_000) });
    await flood(w, mgr, w.member, 101);
    const r = await w.ask(mgr, w.owner, await w.offer(w.owner));
    assert.equal(r.code, 'E_STALE');
    mgr.dispose();
  });

  it("the same granted flood into the real cache: the owner's next offer is answered, a replay still refused", async () => {
    const w = await world();
    const mgr = w.manager({ replay: new MemoryReplayCache(100, 5 * 60_000) });
    const refused = await flood(w, mgr, w.member, 101);
    assert.equal(refused.get('session/answer'), 101);
    const o = await w.offer(w.owner);
    assert.equal((await w.ask(mgr, w.owner, o)).t, 'session/answer');
    assert.equal((await w.ask(mgr, w.owner, o)).code, 'E_REPLAY');
    mgr.dispose();
  });
});

describe('review R4: an offer replayed across a restart', () => {
  it('is refused with E_RESTARTED by the restarted device; a fresh offer is answered', async () => {
    const w = await world();
    const before = w.manager();
    const o = await w.offer(w.owner);
    assert.equal((await w.ask(before, w.owner, o)).t, 'session/answer');
    assert.equal((await w.ask(before, w.owner, o)).code, 'E_REPLAY');
    before.dispose(); // the agent is killed; its in-memory cache is gone
    w.env.advance(2_000);
    const after = w.manager(); // the restarted agent, same identity and ACL
    assert.equal((await w.ask(after, w.owner, o)).code, 'E_RESTARTED');
    assert.equal((await w.ask(after, w.owner, await w.offer(w.owner))).t, 'session/answer');
    after.dispose();
  });

  it('control: without the start-time check, the replay is answered again after the restart', async () => {
    const w = await world();
    const before = w.manager();
    const o = await w.offer(w.owner);
    assert.equal((await w.ask(before, w.owner, o)).t, 'session/answer');
    before.dispose();
    w.env.advance(2_000);
    const broken = w.manager({ startedAt: Number.NEGATIVE_INFINITY });
    assert.equal((await w.ask(broken, w.owner, o)).t, 'session/answer');
    broken.dispose();
  });
});
