import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Acl,
  createOffer,
  type DeviceId,
  deviceIdFromKey,
  type Envelope,
  encodeId,
  fixedEnv,
  openStill,
  signAclUpdate,
  signGrant,
  verifyAnswer,
  WebCryptoSigner,
  x25519Generate,
} from '@hearth/protocol';
import { type MediaBackend, type SessionEvent, SessionManager } from '../src/device/sessions.js';

const FP = 'AB:'.repeat(31) + 'AB';
const sdp = (tag: string) =>
  `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=${tag}\r\nt=0 0\r\na=fingerprint:sha-256 ${FP}\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n`;

function fakeMedia() {
  const closed: string[] = [];
  /** Per session: the opts the backend was given, and how to end its `closed` promise. */
  const made: { id: string; opts: { sid?: string }; end: (code: string | undefined) => void }[] = [];
  let n = 0;
  const media: MediaBackend = {
    cameras: () => [{ name: 'demo', online: true }],
    async createViewerSession(camera, _offerSdp, opts) {
      const id = `${camera}-${++n}`;
      let end!: (code: string | undefined) => void;
      const done = new Promise<string | undefined>((r) => {
        end = r;
      });
      made.push({ id, opts, end });
      return {
        answerSdp: sdp('answer'),
        session: { close: () => void closed.push(id), closed: done },
      };
    },
  };
  return { media, closed, made, count: () => n };
}

async function setup() {
  const env = fixedEnv(7);
  const device = await WebCryptoSigner.generate();
  const owner = await WebCryptoSigner.generate();
  const member = await WebCryptoSigner.generate();
  const stranger = await WebCryptoSigner.generate();
  const deviceId = deviceIdFromKey(device.publicKey);
  let acl: Acl | undefined = Acl.create(deviceId, owner.publicKey);
  const sent: { to: string; m: { t: string; code?: string; env?: Envelope; sid?: string } }[] = [];
  const fm = fakeMedia();
  const events: SessionEvent[] = [];
  const mgr = new SessionManager({
    deviceId,
    signer: device,
    env,
    media: fm.media,
    acl: () => acl,
    send: (to, m) => sent.push({ to, m: m as never }),
    iceServers: () => [],
    onEvent: (e) => events.push(e),
    sweepMs: 3_600_000,
  });
  const offerFrom = async (s: WebCryptoSigner, camera = 'demo', id: DeviceId | string = deviceId) =>
    createOffer(s, { deviceId: id, camera, sdp: sdp('offer') }, env);
  return {
    env,
    device,
    owner,
    member,
    stranger,
    deviceId,
    sent,
    events,
    fm,
    mgr,
    offerFrom,
    setAcl: (a: Acl | undefined) => (acl = a),
    getAcl: () => acl!,
  };
}

const keyText = (s: WebCryptoSigner) => encodeId('userKey', s.publicKey);

describe('agent SessionManager', () => {
  it('answers the owner with a device-signed answer bound to the offer', async () => {
    const t = await setup();
    const o = await t.offerFrom(t.owner);
    await t.mgr.onOffer(keyText(t.owner), { env: o.envelope });
    assert.equal(t.sent.length, 1);
    assert.equal(t.sent[0]!.m.t, 'session/answer');
    const r = await verifyAnswer(t.sent[0]!.m.env!, {
      pinnedDeviceKey: t.device.publicKey,
      sid: o.sid,
      offerDigest: o.digest,
      now: t.env.now(),
    });
    assert.ok(r.ok, 'answer verifies against the pinned device key');
    assert.equal(t.mgr.size, 1);
    t.mgr.dispose();
  });

  it('refuses a viewer without a grant (E_NO_GRANT) and starts no media', async () => {
    const t = await setup();
    const o = await t.offerFrom(t.stranger);
    await t.mgr.onOffer(keyText(t.stranger), { env: o.envelope });
    assert.deepEqual(
      t.sent.map((s) => [s.m.t, s.m.code]),
      [['session/refused', 'E_NO_GRANT']],
    );
    assert.equal(t.fm.count(), 0);
    t.mgr.dispose();
  });

  it('refuses while unpaired', async () => {
    const t = await setup();
    t.setAcl(undefined);
    const o = await t.offerFrom(t.owner);
    await t.mgr.onOffer(keyText(t.owner), { env: o.envelope });
    assert.equal(t.sent[0]!.m.code, 'E_NO_GRANT');
    t.mgr.dispose();
  });

  it('refuses an offer forwarded by someone other than its signer', async () => {
    const t = await setup();
    const o = await t.offerFrom(t.owner);
    await t.mgr.onOffer(keyText(t.stranger), { env: o.envelope });
    assert.equal(t.sent[0]!.m.code, 'E_BAD_BINDING');
    assert.equal(t.sent[0]!.to, keyText(t.stranger));
    t.mgr.dispose();
  });

  it('refuses a replayed offer and a tampered offer', async () => {
    const t = await setup();
    const o = await t.offerFrom(t.owner);
    await t.mgr.onOffer(keyText(t.owner), { env: o.envelope });
    await t.mgr.onOffer(keyText(t.owner), { env: o.envelope });
    assert.equal(t.sent[1]!.m.code, 'E_REPLAY');
    const o2 = await t.offerFrom(t.owner);
    const tampered = {
      ...o2.envelope,
      b: { ...o2.envelope.b, sdp: sdp('offer').replace(FP, 'CD:'.repeat(31) + 'CD') },
    };
    await t.mgr.onOffer(keyText(t.owner), { env: tampered });
    assert.equal(t.sent[2]!.m.code, 'E_BAD_SIGNATURE');
    t.mgr.dispose();
  });

  it('refuses an unknown camera and an offer for another device', async () => {
    const t = await setup();
    await t.mgr.onOffer(keyText(t.owner), { env: (await t.offerFrom(t.owner, 'garage')).envelope });
    assert.equal(t.sent[0]!.m.code, 'E_NO_CAMERA');
    const other = deviceIdFromKey((await WebCryptoSigner.generate()).publicKey);
    await t.mgr.onOffer(keyText(t.owner), { env: (await t.offerFrom(t.owner, 'demo', other)).envelope });
    assert.equal(t.sent[1]!.m.code, 'E_BAD_BINDING');
    t.mgr.dispose();
  });

  it('closes a member session when the owner revokes the grant, and when a grant expires', async () => {
    const t = await setup();
    const now = t.env.now();
    const g = await signGrant(
      t.owner,
      {
        d: t.deviceId,
        sub: keyText(t.member),
        role: 'member',
        scopes: ['live'],
        nbf: now - 1000,
        exp: now + 60_000,
        serial: 1,
      },
      t.env,
    );
    t.setAcl(
      await t
        .getAcl()
        .apply(await signAclUpdate(t.owner, { d: t.deviceId, ver: 1, add: [g], revoke: [] }, t.env), now),
    );
    await t.mgr.onOffer(keyText(t.member), { env: (await t.offerFrom(t.member)).envelope });
    assert.equal(t.sent.at(-1)!.m.t, 'session/answer');
    assert.equal(t.mgr.size, 1);
    t.setAcl(
      await t
        .getAcl()
        .apply(await signAclUpdate(t.owner, { d: t.deviceId, ver: 2, add: [], revoke: [1] }, t.env), now),
    );
    assert.equal(t.mgr.sweep(), 1);
    assert.equal(t.mgr.size, 0);
    assert.deepEqual([t.sent.at(-1)!.m.t, t.sent.at(-1)!.m.code], ['session/closed', 'E_GRANT_REVOKED']);
    assert.equal(t.fm.closed.length, 1);

    const g2 = await signGrant(
      t.owner,
      {
        d: t.deviceId,
        sub: keyText(t.member),
        role: 'guest',
        scopes: ['live'],
        nbf: now - 1000,
        exp: now + 5_000,
        serial: 2,
      },
      t.env,
    );
    t.setAcl(
      await t
        .getAcl()
        .apply(await signAclUpdate(t.owner, { d: t.deviceId, ver: 3, add: [g2], revoke: [] }, t.env), now),
    );
    await t.mgr.onOffer(keyText(t.member), { env: (await t.offerFrom(t.member)).envelope });
    assert.equal(t.mgr.size, 1);
    t.env.advance(6_000);
    assert.equal(t.mgr.sweep(), 1);
    assert.equal(t.sent.at(-1)!.m.code, 'E_GRANT_EXPIRED');
    t.mgr.dispose();
  });
  it('a media session that closes with E_DTLS_FAILED: the viewer is told, a media-attack is reported; the backend got the sid', async () => {
    const t = await setup();
    const o = await t.offerFrom(t.owner);
    await t.mgr.onOffer(keyText(t.owner), { env: o.envelope });
    assert.equal(t.sent.at(-1)!.m.t, 'session/answer');
    assert.equal(t.fm.made.length, 1);
    assert.equal(t.fm.made[0]!.opts.sid, o.sid, "the backend names the session by the viewer's sid");
    assert.equal(t.mgr.size, 1);
    const before = t.sent.length;
    t.fm.made[0]!.end('E_DTLS_FAILED');
    for (let i = 0; i < 50 && t.sent.length === before; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(t.sent.slice(before), [
      { to: keyText(t.owner), m: { t: 'session/closed', sid: o.sid, code: 'E_DTLS_FAILED' } },
    ]);
    assert.deepEqual(
      t.events.find((e) => e.kind === 'media-attack'),
      { kind: 'media-attack', viewer: keyText(t.owner), sid: o.sid, code: 'E_DTLS_FAILED' },
    );
    assert.equal(t.mgr.size, 0);
    t.mgr.dispose();
  });

  it('a media session that closes without a code is not reported as an attack and nothing is sent', async () => {
    const t = await setup();
    const o = await t.offerFrom(t.owner);
    await t.mgr.onOffer(keyText(t.owner), { env: o.envelope });
    const before = t.sent.length;
    t.fm.made[0]!.end(undefined);
    for (let i = 0; i < 50 && t.mgr.size > 0; i++) await new Promise((r) => setImmediate(r));
    assert.equal(t.mgr.size, 0);
    assert.equal(t.sent.length, before);
    assert.ok(!t.events.some((e) => e.kind === 'media-attack'));
    assert.ok(t.events.some((e) => e.kind === 'session-closed' && e.sid === o.sid));
    t.mgr.dispose();
  });

  it('sealed still: answer (with sk) first, then session/still; a failing or absent still never touches the session', async () => {
    const t = await setup();
    const jpeg = new Uint8Array([0xff, 0xd8, 1, 2, 3, 0xff, 0xd9]);
    let mode: 'ok' | 'throw' | 'none' = 'ok';
    t.fm.media.still = async () => {
      if (mode === 'throw') throw new Error('ffmpeg died');
      return mode === 'ok' ? jpeg : undefined;
    };
    const eph = await x25519Generate();
    const o = await createOffer(
      t.owner,
      { deviceId: t.deviceId, camera: 'demo', sdp: sdp('offer'), stillKey: eph.publicKey },
      t.env,
    );
    await t.mgr.onOffer(keyText(t.owner), { env: o.envelope });
    const still = await (async () => {
      for (let i = 0; i < 200; i++) {
        const s = t.sent.find((x) => x.m.t === 'session/still');
        if (s) return s;
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error('no still');
    })();
    assert.equal(t.sent[0]!.m.t, 'session/answer');
    assert.equal(t.sent.indexOf(still), 1);
    const r = await verifyAnswer(t.sent[0]!.m.env!, {
      pinnedDeviceKey: t.device.publicKey,
      sid: o.sid,
      offerDigest: o.digest,
      now: t.env.now(),
    });
    assert.ok(r.ok && r.body.stillKey);
    const back = await openStill({
      secret: eph.privateKey,
      deviceStillKey: r.body.stillKey,
      ctx: { sid: o.sid, camera: 'demo', offerDigest: o.digest },
      ct: (still.m as { ct?: string }).ct,
    });
    assert.deepEqual(back, jpeg);
    for (const m of ['throw', 'none'] as const) {
      mode = m;
      const before = t.sent.length;
      const e2 = await x25519Generate();
      const o2 = await createOffer(
        t.owner,
        { deviceId: t.deviceId, camera: 'demo', sdp: sdp('offer'), stillKey: e2.publicKey },
        t.env,
      );
      await t.mgr.onOffer(keyText(t.owner), { env: o2.envelope });
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(
        t.sent.slice(before).map((x) => x.m.t),
        ['session/answer'],
        m,
      );
    }
    assert.equal(t.mgr.size, 3, 'all three sessions live');
    // A backend without stills: the answer has no sk even when the viewer asked.
    delete t.fm.media.still;
    const o3 = await createOffer(
      t.owner,
      { deviceId: t.deviceId, camera: 'demo', sdp: sdp('offer'), stillKey: eph.publicKey },
      t.env,
    );
    await t.mgr.onOffer(keyText(t.owner), { env: o3.envelope });
    assert.equal('sk' in (t.sent.at(-1)!.m.env as Envelope).b, false);
    t.mgr.dispose();
  });
});
