/**
 * Rendezvous authentication (threat model S3, F4, S12): a connection is admitted for an ID only with
 * a proof of possession of its key, bound to this server and this connection's challenge.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { seal } from '../src/envelope.js';
import type { HearthError } from '../src/errors.js';
import { encodeId } from '../src/ids.js';
import {
  claimedDeviceId,
  createAuth,
  decodeClientFrame,
  decodeServerFrame,
  MAX_FRAME_BYTES,
  newChallenge,
  verifyAuth,
} from '../src/rendezvous.js';
import { MemoryReplayCache } from '../src/replay.js';
import { keys } from './fixtures.js';

type K = Awaited<ReturnType<typeof keys>>;
let k: K;
let srv: string;
before(async () => {
  k = await keys();
  srv = encodeId('serverKey', new Uint8Array(32).fill(9));
});
const code = (c: string) => (e: unknown) => (e as HearthError).code === c;

describe('rendezvous: auth', () => {
  it('device and viewer prove their keys; the device ID is derived from the key, never claimed', async () => {
    const ch = newChallenge(k.env);
    const d = await verifyAuth(await createAuth(k.device, 'device', { srv, ch }, k.env), {
      serverKey: srv,
      challenge: ch,
      now: k.env.now(),
    });
    assert.deepEqual(d, { role: 'device', id: k.deviceId, key: k.device.publicKey });
    const v = await verifyAuth(await createAuth(k.owner, 'viewer', { srv, ch }, k.env), {
      serverKey: srv,
      challenge: ch,
      now: k.env.now(),
    });
    assert.equal(v.id, encodeId('userKey', k.owner.publicKey));
  });

  it("registering someone else's device ID: a forged proof fails, and claimedDeviceId names the victim for the alert", async () => {
    const ch = newChallenge(k.env);
    const real = await createAuth(k.device, 'device', { srv, ch }, k.env);
    const forged = { ...real, s: (await createAuth(k.otherDevice, 'device', { srv, ch }, k.env)).s };
    await assert.rejects(
      () => verifyAuth(forged, { serverKey: srv, challenge: ch, now: k.env.now() }),
      code('E_BAD_SIGNATURE'),
    );
    assert.equal(claimedDeviceId(forged), k.deviceId);
    assert.equal(claimedDeviceId({ nope: 1 }), undefined);
  });

  it('a proof for another connection (challenge) or another server: E_BAD_BINDING', async () => {
    const ch = newChallenge(k.env);
    const e = await createAuth(k.device, 'device', { srv, ch }, k.env);
    await assert.rejects(
      () => verifyAuth(e, { serverKey: srv, challenge: newChallenge(k.env), now: k.env.now() }),
      code('E_BAD_BINDING'),
    );
    await assert.rejects(
      () =>
        verifyAuth(e, {
          serverKey: encodeId('serverKey', new Uint8Array(32)),
          challenge: ch,
          now: k.env.now(),
        }),
      code('E_BAD_BINDING'),
    );
  });

  it('a role that contradicts the purpose, a user key posing as a device, a replayed or stale proof: refused', async () => {
    const ch = newChallenge(k.env);
    const lying = await seal(k.device, 'device', 'auth/device', { srv, ch, role: 'viewer' }, k.env);
    await assert.rejects(
      () => verifyAuth(lying, { serverKey: srv, challenge: ch, now: k.env.now() }),
      code('E_BAD_BINDING'),
    );
    const userAsDevice = await seal(k.owner, 'user', 'auth/device', { srv, ch, role: 'device' }, k.env);
    await assert.rejects(
      () => verifyAuth(userAsDevice, { serverKey: srv, challenge: ch, now: k.env.now() }),
      code('E_WRONG_SIGNER'),
    );
    const e = await createAuth(k.device, 'device', { srv, ch }, k.env);
    const replay = new MemoryReplayCache();
    await verifyAuth(e, { serverKey: srv, challenge: ch, now: k.env.now(), replay });
    await assert.rejects(
      () => verifyAuth(e, { serverKey: srv, challenge: ch, now: k.env.now(), replay }),
      code('E_REPLAY'),
    );
    await assert.rejects(
      () => verifyAuth(e, { serverKey: srv, challenge: ch, now: k.env.now() + 60_001 }),
      code('E_STALE'),
    );
    const offer = await seal(k.owner, 'user', 'test', {}, k.env);
    await assert.rejects(
      () => verifyAuth(offer, { serverKey: srv, challenge: ch, now: k.env.now() }),
      code('E_SCHEMA'),
    );
  });
});

describe('rendezvous: frames', () => {
  it('decode every frame type; strict schemas; size limit', () => {
    const id = k.deviceId;
    for (const f of [
      { t: 'hello', v: 1, srv, ch: 'A'.repeat(43) },
      { t: 'ready', id, ice: [{ urls: ['stun:x'] }], impostors: 2 },
      { t: 'recv', from: id, m: { any: 1 } },
      {
        t: 'relay',
        peer: id,
        ice: [{ urls: ['turn:x'], username: '1:a', credential: 'c' }],
        until: 1,
        ref: 'r',
      },
      { t: 'presence', d: id, online: true },
      { t: 'pair/found', tag: 'AB12', d: null },
      { t: 'alert', code: 'E_IMPOSTOR', count: 1 },
      { t: 'error', code: 'E_OFFLINE', msg: 'm' },
      { t: 'pong' },
    ])
      assert.deepEqual(decodeServerFrame(JSON.stringify(f)), f);
    for (const f of [
      { t: 'auth', env: {} },
      { t: 'send', to: id, m: 1, ref: 'r' },
      { t: 'watch', d: [id] },
      { t: 'pair/register', tag: null },
      { t: 'pair/lookup', tag: 'AB12' },
      { t: 'relay', v: encodeId('userKey', k.owner.publicKey), ref: 'r' },
      { t: 'ping' },
    ])
      assert.deepEqual(decodeClientFrame(JSON.stringify(f)), f);
    assert.throws(() => decodeClientFrame(JSON.stringify({ t: 'ping', x: 1 })), code('E_SCHEMA'));
    // The error and alert frames carry registered codes only (an enum, not free text).
    for (const f of [
      { t: 'error', code: 'E_X', msg: 'm' },
      { t: 'error', code: 'E_GRANT_REVOKED', msg: 'm' },
      { t: 'alert', code: 'impostor', count: 1 },
    ])
      assert.throws(() => decodeServerFrame(JSON.stringify(f)), code('E_SCHEMA'));
    assert.throws(
      () => decodeClientFrame(JSON.stringify({ t: 'send', to: 'hdid_bad', m: 1 })),
      code('E_SCHEMA'),
    );
    assert.throws(
      () => decodeClientFrame(JSON.stringify({ t: 'pair/lookup', tag: 'ab12' })),
      code('E_SCHEMA'),
    );
    // `relay` names a viewer key only (a device ID is refused), and its credentials are bounded.
    assert.throws(() => decodeClientFrame(JSON.stringify({ t: 'relay', v: id })), code('E_SCHEMA'));
    assert.throws(
      () =>
        decodeServerFrame(
          JSON.stringify({
            t: 'relay',
            peer: id,
            ice: [{ urls: ['turn:x'], username: 'u'.repeat(257) }],
            until: 1,
          }),
        ),
      code('E_SCHEMA'),
    );
    assert.throws(
      () => decodeServerFrame(JSON.stringify({ t: 'ready', id, ice: [{ urls: ['http://x'] }] })),
      code('E_SCHEMA'),
    );
    assert.throws(() => decodeServerFrame(' '.repeat(MAX_FRAME_BYTES + 1)), code('E_TOO_LARGE'));
  });
});
