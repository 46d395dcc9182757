/**
 * Live-view session setup driven step by step (threat model S4, S11, S12): the happy path, then
 * every way the server or relay (A4) or a network attacker (A3) could interfere: a tampered offer or
 * answer (every field, every wire byte), a replayed offer, stale and future timestamps, the wrong
 * key, an answer not bound to our offer, and an SDP whose DTLS fingerprint was swapped after signing.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { b64u } from '../src/bytes.js';
import { canonicalize } from '../src/canonical.js';
import { decodeEnvelope, type Envelope, encodeEnvelope, seal } from '../src/envelope.js';
import { HearthError, isPossibleAttack, ProtocolError, VerificationError } from '../src/errors.js';
import { Acl } from '../src/grants.js';
import { deviceIdFromKey } from '../src/ids.js';
import { MemoryReplayCache } from '../src/replay.js';
import { sameFingerprint, sdpFingerprint } from '../src/sdp.js';
import { createAnswer, createOffer, verifyAnswer, verifyOffer } from '../src/session.js';
import { fp, keys, sdpWith } from './fixtures.js';

type K = Awaited<ReturnType<typeof keys>>;
let k: K;
before(async () => {
  k = await keys();
});

async function offerAndAnswer() {
  const offer = await createOffer(
    k.owner,
    { deviceId: k.deviceId, camera: 'door', sdp: sdpWith(fp(0xaa)) },
    k.env,
  );
  const vo = await verifyOffer(offer.envelope, { deviceId: k.deviceId, now: k.env.now() });
  assert.ok(vo.ok);
  const answer = await createAnswer(k.device, vo.body, sdpWith(fp(0xbb)), k.env);
  return { offer, vo: vo.body, answer };
}

const answerOpts = (sid: string, offerDigest: string) => ({
  pinnedDeviceKey: k.device.publicKey,
  sid,
  offerDigest,
  now: k.env.now(),
});

/** Every way of changing one field of an envelope (top level and body). */
function fieldTampers(e: Envelope): [string, Envelope][] {
  const out: [string, Envelope][] = [];
  const flipChar = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
  out.push(['v', { ...e, v: 2 as 1 }]);
  out.push(['p', { ...e, p: e.p === 'session/offer' ? 'session/answer' : 'session/offer' }]);
  out.push(['k', { ...e, k: `${e.k.slice(0, 5)}${e.k[5] === 'a' ? 'b' : 'a'}${e.k.slice(6)}` }]);
  out.push(['n', { ...e, n: flipChar(e.n) }]);
  out.push(['t', { ...e, t: e.t + 1 }]);
  out.push(['s', { ...e, s: flipChar(e.s) }]);
  for (const key of Object.keys(e.b)) {
    const v = e.b[key];
    const changed = typeof v === 'string' ? (key === 'sdp' ? v.replace('H264', 'VP8 ') : flipChar(v)) : v;
    out.push([`b.${key}`, { ...e, b: { ...e.b, [key]: changed } }]);
    const without = { ...e.b };
    delete without[key];
    out.push([`b.${key} removed`, { ...e, b: without }]);
  }
  out.push(['b + extra field', { ...e, b: { ...e.b, x: 1 } }]);
  return out;
}

describe('session: happy path', () => {
  it('offer verified by the device, ACL consulted, answer verified by the viewer against the pinned key', async () => {
    const { offer, vo, answer } = await offerAndAnswer();
    assert.equal(vo.camera, 'door');
    assert.deepEqual(vo.viewerKey, k.owner.publicKey);
    assert.ok(sameFingerprint(vo.fingerprint, { algorithm: 'sha-256', value: fp(0xaa) }));
    const acl = Acl.create(k.deviceId, k.owner.publicKey);
    assert.equal(acl.authorize(vo.viewerKey, 'live', k.env.now(), vo.camera).allowed, true);
    const va = await verifyAnswer(answer, answerOpts(offer.sid, offer.digest));
    assert.ok(va.ok);
    assert.ok(sameFingerprint(va.body.fingerprint, { algorithm: 'sha-256', value: fp(0xbb) }));
  });

  it('envelopes survive the wire (encode → decode) unchanged', async () => {
    const { offer, answer } = await offerAndAnswer();
    assert.deepEqual(decodeEnvelope(encodeEnvelope(offer.envelope)), offer.envelope);
    const va = await verifyAnswer(
      decodeEnvelope(encodeEnvelope(answer)),
      answerOpts(offer.sid, offer.digest),
    );
    assert.ok(va.ok);
  });

  it('refuses to sign an SDP without DTLS, or with two different fingerprints', async () => {
    await assert.rejects(
      () => createOffer(k.owner, { deviceId: k.deviceId, camera: 'door', sdp: 'v=0\r\n' }, k.env),
      (e) => (e as HearthError).code === 'E_SCHEMA',
    );
    const two = sdpWith(fp(0xaa), `a=fingerprint:sha-256 ${fp(0xcc)}`);
    await assert.rejects(
      () => createOffer(k.owner, { deviceId: k.deviceId, camera: 'door', sdp: two }, k.env),
      (e) => (e as HearthError).code === 'E_SCHEMA',
    );
  });
});

describe('session: tampered messages at every step', () => {
  it('offer: every field changed after signing is rejected with a typed error', async () => {
    const { offer } = await offerAndAnswer();
    for (const [name, bad] of fieldTampers(offer.envelope)) {
      const r = await verifyOffer(bad, { deviceId: k.deviceId, now: k.env.now() });
      assert.equal(r.ok, false, `offer field ${name} accepted`);
      if (!r.ok) assert.ok(r.error instanceof HearthError, name);
    }
  });

  it('answer: every field changed after signing is rejected with a typed error', async () => {
    const { offer, answer } = await offerAndAnswer();
    for (const [name, bad] of fieldTampers(answer)) {
      const r = await verifyAnswer(bad, answerOpts(offer.sid, offer.digest));
      assert.equal(r.ok, false, `answer field ${name} accepted`);
      if (!r.ok) assert.ok(r.error instanceof HearthError, name);
    }
  });

  it('offer and answer: every wire byte XOR 0x01 is refused (decode error or failed verification)', async () => {
    const { offer, answer } = await offerAndAnswer();
    const cases: [string, (e: Envelope) => Promise<boolean>][] = [
      [
        encodeEnvelope(offer.envelope),
        async (e) => (await verifyOffer(e, { deviceId: k.deviceId, now: k.env.now() })).ok,
      ],
      [encodeEnvelope(answer), async (e) => (await verifyAnswer(e, answerOpts(offer.sid, offer.digest))).ok],
    ];
    for (const [wire, check] of cases) {
      for (let i = 0; i < wire.length; i++) {
        const bad = wire.slice(0, i) + String.fromCharCode(wire.charCodeAt(i) ^ 1) + wire.slice(i + 1);
        let e: Envelope;
        try {
          e = decodeEnvelope(bad);
        } catch (err) {
          assert.ok(err instanceof ProtocolError, `byte ${i}: untyped ${String(err)}`);
          continue;
        }
        // A flip that leaves an equivalent canonical value (none exist in canonical JSON) would be fine;
        // anything else must fail verification.
        if (canonicalize(e) === wire) continue;
        assert.equal(await check(e), false, `byte ${i} flipped and still accepted`);
      }
    }
  });

  it('fingerprint swapped after signing: the signature no longer verifies (offer and answer); a possible attack', async () => {
    const { offer, answer } = await offerAndAnswer();
    const attacker = fp(0x66);
    const badOffer = { ...offer.envelope, b: { ...offer.envelope.b, sdp: sdpWith(attacker) } };
    const ro = await verifyOffer(badOffer, { deviceId: k.deviceId, now: k.env.now() });
    assert.ok(!ro.ok && ro.error.code === 'E_BAD_SIGNATURE' && isPossibleAttack(ro.error));
    const badAnswer = { ...answer, b: { ...answer.b, sdp: sdpWith(attacker) } };
    const ra = await verifyAnswer(badAnswer, answerOpts(offer.sid, offer.digest));
    assert.ok(!ra.ok && ra.error.code === 'E_BAD_SIGNATURE' && isPossibleAttack(ra.error));
  });

  it('fingerprint swapped and re-signed by the server (a key other than the pinned device key): E_WRONG_SIGNER', async () => {
    const { offer, vo } = await offerAndAnswer();
    const forged = await createAnswer(k.otherDevice, vo, sdpWith(fp(0x66)), k.env);
    const r = await verifyAnswer(forged, answerOpts(offer.sid, offer.digest));
    assert.ok(!r.ok && r.error.code === 'E_WRONG_SIGNER' && isPossibleAttack(r.error));
  });

  it('the DTLS certificate presented does not match the signed fingerprint: sameFingerprint is false', async () => {
    const { answer } = await offerAndAnswer();
    const signed = sdpFingerprint(answer.b.sdp as string);
    assert.equal(sameFingerprint(signed, { algorithm: 'sha-256', value: fp(0x66) }), false);
    assert.equal(sameFingerprint(signed, { algorithm: 'sha-384', value: signed.value }), false);
    assert.equal(sameFingerprint(signed, { algorithm: 'sha-256', value: signed.value.toLowerCase() }), true);
  });
});

describe('session: replay, freshness and binding', () => {
  it('a replayed offer is rejected with E_REPLAY (same replay cache)', async () => {
    const { offer } = await offerAndAnswer();
    const replay = new MemoryReplayCache();
    const first = await verifyOffer(offer.envelope, { deviceId: k.deviceId, now: k.env.now(), replay });
    assert.ok(first.ok);
    const again = await verifyOffer(offer.envelope, {
      deviceId: k.deviceId,
      now: k.env.now() + 1000,
      replay,
    });
    assert.ok(!again.ok && again.error.code === 'E_REPLAY' && isPossibleAttack(again.error));
  });

  it('a forged offer does not consume the nonce (replay cache is checked last)', async () => {
    const { offer } = await offerAndAnswer();
    const replay = new MemoryReplayCache();
    const forged = { ...offer.envelope, s: b64u(new Uint8Array(64)) };
    assert.equal((await verifyOffer(forged, { deviceId: k.deviceId, now: k.env.now(), replay })).ok, false);
    assert.equal(replay.size, 0);
    assert.ok((await verifyOffer(offer.envelope, { deviceId: k.deviceId, now: k.env.now(), replay })).ok);
  });

  it('stale (older than 120 s) and future (more than 30 s ahead) offers and answers: E_STALE', async () => {
    const { offer, answer } = await offerAndAnswer();
    const t = k.env.now();
    for (const now of [t + 120_001, t - 30_001]) {
      const ro = await verifyOffer(offer.envelope, { deviceId: k.deviceId, now });
      assert.ok(!ro.ok && ro.error.code === 'E_STALE', `offer at ${now - t}`);
      const ra = await verifyAnswer(answer, { ...answerOpts(offer.sid, offer.digest), now });
      assert.ok(!ra.ok && ra.error.code === 'E_STALE', `answer at ${now - t}`);
    }
    for (const now of [t + 120_000, t - 30_000])
      assert.ok((await verifyOffer(offer.envelope, { deviceId: k.deviceId, now })).ok);
  });

  it('an offer for another device: E_BAD_BINDING', async () => {
    const { offer } = await offerAndAnswer();
    const r = await verifyOffer(offer.envelope, {
      deviceId: deviceIdFromKey(k.otherDevice.publicKey),
      now: k.env.now(),
    });
    assert.ok(!r.ok && r.error.code === 'E_BAD_BINDING');
  });

  it('an offer signed by a device key (hdk_) instead of a user key: E_WRONG_SIGNER', async () => {
    const e = await seal(
      k.device,
      'device',
      'session/offer',
      { d: k.deviceId, cam: 'door', sid: b64u(new Uint8Array(16)), sdp: sdpWith(fp(1)) },
      k.env,
    );
    const r = await verifyOffer(e, { deviceId: k.deviceId, now: k.env.now() });
    assert.ok(!r.ok && r.error.code === 'E_WRONG_SIGNER');
  });

  it('a genuine answer replayed for another offer or session: E_BAD_BINDING', async () => {
    const a = await offerAndAnswer();
    const b = await offerAndAnswer();
    const r1 = await verifyAnswer(a.answer, answerOpts(b.offer.sid, b.offer.digest));
    assert.ok(!r1.ok && r1.error.code === 'E_BAD_BINDING');
    const r2 = await verifyAnswer(a.answer, answerOpts(a.offer.sid, b.offer.digest));
    assert.ok(!r2.ok && r2.error.code === 'E_BAD_BINDING');
  });

  it('a genuine envelope of another purpose (e.g. an answer offered as an offer): E_BAD_BINDING', async () => {
    const { offer, answer } = await offerAndAnswer();
    const r = await verifyOffer(answer, { deviceId: k.deviceId, now: k.env.now() });
    assert.ok(!r.ok && r.error.code === 'E_BAD_BINDING');
    const r2 = await verifyAnswer(offer.envelope, answerOpts(offer.sid, offer.digest));
    assert.ok(!r2.ok && r2.error.code === 'E_BAD_BINDING');
  });

  it('verification failures are VerificationErrors (shown as possible attack), malformed bodies ProtocolErrors', async () => {
    const { offer } = await offerAndAnswer();
    const e = await seal(
      k.owner,
      'user',
      'session/offer',
      { d: k.deviceId, cam: 'NOT OK', sid: offer.sid, sdp: sdpWith(fp(1)) },
      k.env,
    );
    const r = await verifyOffer(e, { deviceId: k.deviceId, now: k.env.now() });
    assert.ok(
      !r.ok &&
        r.error instanceof ProtocolError &&
        !(r.error instanceof VerificationError) &&
        r.error.code === 'E_SCHEMA',
    );
  });
});
