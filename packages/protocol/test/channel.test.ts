/**
 * The sealed device ⇄ viewer channel (`channel.ts`): handshake checks (signer, binding, freshness),
 * message checks (tampering, replay, reordering, direction), restart handling, and a test vector.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { b64u, fromB64u, fromUtf8, hex } from '../src/bytes.js';
import {
  acceptHello,
  type ChannelMsgFrame,
  completeHandshake,
  createHello,
  DeviceChannels,
  type DeviceInbound,
  decodeRouted,
  MAX_CHANNEL_CT_CHARS,
  ViewerChannels,
  type ViewerInbound,
} from '../src/channel.js';
import { fixedEnv } from '../src/crypto/env.js';
import { WebCryptoSigner } from '../src/crypto/primitives.js';
import { seal } from '../src/envelope.js';
import { ProtocolError, VerificationError } from '../src/errors.js';
import { deviceIdFromKey, encodeId } from '../src/ids.js';
import { x25519KeyPairFromScalar } from '../src/still.js';

let viewer: WebCryptoSigner;
let device: WebCryptoSigner;
let other: WebCryptoSigner;
let deviceId: string;
let viewerId: string;
before(async () => {
  viewer = await WebCryptoSigner.fromSeed(new Uint8Array(32).fill(1));
  device = await WebCryptoSigner.fromSeed(new Uint8Array(32).fill(2));
  other = await WebCryptoSigner.fromSeed(new Uint8Array(32).fill(3));
  deviceId = deviceIdFromKey(device.publicKey);
  viewerId = encodeId('userKey', viewer.publicKey);
});

/** Poll until `f` holds (a deadline, not a timing assertion: it only bounds a hang). */
async function waitFor(f: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Two ends wired through an in-memory "server" that records (and may tamper with) every frame. */
function pair(
  o: { tamper?: (m: unknown, dir: 'v2d' | 'd2v') => unknown; deviceSigner?: WebCryptoSigner } = {},
) {
  const env = fixedEnv(9);
  const wire: { dir: 'v2d' | 'd2v'; m: unknown }[] = [];
  const atViewer: ViewerInbound[] = [];
  const atDevice: DeviceInbound[] = [];
  let pending: Promise<unknown>[] = [];
  const ends = {} as { v: ViewerChannels; d: DeviceChannels };
  ends.v = new ViewerChannels({
    signer: viewer,
    env,
    pinned: (d) => (d === deviceId ? device.publicKey : undefined),
    route: (_to, m0) => {
      const m = o.tamper ? o.tamper(structuredClone(m0), 'v2d') : m0;
      wire.push({ dir: 'v2d', m });
      pending.push(ends.d.receive(viewerId, m).then((r) => atDevice.push(r)));
      return true;
    },
  });
  ends.d = new DeviceChannels({
    signer: o.deviceSigner ?? device,
    deviceId,
    env,
    route: (_to, m0) => {
      const m = o.tamper ? o.tamper(structuredClone(m0), 'd2v') : m0;
      wire.push({ dir: 'd2v', m });
      pending.push(ends.v.receive(deviceId, m).then((r) => atViewer.push(r)));
      return true;
    },
  });
  const settle = async (until?: () => boolean) => {
    if (until) await waitFor(until);
    // Quiet for three rounds in a row: nothing in flight (hellos and seals are async too).
    for (let quiet = 0, i = 0; quiet < 3 && i < 100; i++) {
      const p = pending;
      pending = [];
      await Promise.all(p);
      await new Promise((r) => setTimeout(r, 5));
      quiet = p.length === 0 && pending.length === 0 ? quiet + 1 : 0;
    }
  };
  return { ...ends, env, wire, atViewer, atDevice, settle };
}

describe('sealed channel: the happy path', () => {
  it('a request and its reply cross sealed; the wire carries no plaintext', async () => {
    const p = pair();
    assert.ok(p.v.send(deviceId, { t: 'cameras' }));
    await p.settle(() => p.atDevice.length > 0);
    const got = p.atDevice.find((r) => r.kind === 'message');
    assert.ok(got && got.kind === 'message');
    assert.deepEqual(got.m, { t: 'cameras' });
    assert.ok(p.d.send(viewerId, { t: 'cameras', list: [{ name: 'nursery', online: true }] }, got.channel));
    await p.settle(() => p.atViewer.some((r) => r.kind === 'message'));
    const back = p.atViewer.find((r) => r.kind === 'message');
    assert.ok(back && back.kind === 'message');
    assert.deepEqual(back.m, { t: 'cameras', list: [{ name: 'nursery', online: true }] });
    const text = JSON.stringify(p.wire);
    assert.doesNotMatch(text, /nursery/);
    assert.doesNotMatch(text, /"t":"cameras"/);
    assert.deepEqual(
      p.wire.map((w) => (w.m as { t: string }).t),
      ['chan/hello', 'chan/accept', 'chan/msg', 'chan/msg'],
    );
    assert.ok(p.v.established(deviceId));
  });

  it("the device's flushed() settles only after what send() accepted is on the route (an allow list sent then comes after it)", async () => {
    const p = pair();
    assert.ok(p.v.send(deviceId, { t: 'cameras' }));
    await p.settle(() => p.atDevice.some((r) => r.kind === 'message'));
    const n = p.wire.length;
    assert.ok(p.d.send(viewerId, { t: 'session/closed', sid: 'A'.repeat(22), code: 'E_GRANT_REVOKED' }));
    // Control: sealing is asynchronous, so right after send() nothing is on the wire yet.
    assert.equal(p.wire.length, n);
    await p.d.flushed();
    assert.equal(p.wire.length, n + 1);
    assert.equal((p.wire[n]!.m as { t: string }).t, 'chan/msg');
  });

  it('messages sent during the handshake are queued and delivered in order', async () => {
    const p = pair();
    for (let i = 0; i < 5; i++) p.v.send(deviceId, { t: 'session/close', sid: `${'A'.repeat(21)}${i}` });
    await p.settle(() => p.atDevice.length >= 5);
    const sids = p.atDevice.flatMap((r) =>
      r.kind === 'message' && r.m.t === 'session/close' ? [r.m.sid] : [],
    );
    assert.deepEqual(
      sids,
      [0, 1, 2, 3, 4].map((i) => `${'A'.repeat(21)}${i}`),
    );
  });

  it('clear messages are refused on both sides unless the test switch is set', async () => {
    const p = pair();
    const d = await p.d.receive(viewerId, { t: 'cameras' });
    assert.ok(d.kind === 'rejected' && d.error.code === 'E_SCHEMA' && !d.attack);
    const v = await p.v.receive(deviceId, { t: 'cameras', list: [] });
    assert.ok(v.kind === 'rejected' && v.error.code === 'E_SCHEMA');
    const open = new DeviceChannels({
      signer: device,
      deviceId,
      env: fixedEnv(),
      route: () => true,
      unsealedForTests: true,
    });
    const o = await open.receive(viewerId, { t: 'cameras' });
    assert.equal(o.kind, 'message');
  });

  it('a device restart (lost channel) answers chan/reset and the viewer makes a new channel', async () => {
    const p = pair();
    p.v.send(deviceId, { t: 'cameras' });
    await p.settle(() => p.atDevice.length > 0);
    p.d.clear(); // the device restarted
    p.v.send(deviceId, { t: 'cameras' });
    await p.settle(() => p.atViewer.some((r) => r.kind === 'handled' && r.event === 'reset'));
    assert.ok(p.atViewer.some((r) => r.kind === 'handled' && r.event === 'reset'));
    assert.equal(p.v.established(deviceId), false);
    p.v.send(deviceId, { t: 'acl/get' });
    await p.settle(() => p.atDevice.some((r) => r.kind === 'message' && r.m.t === 'acl/get'));
    const last = p.atDevice.at(-1);
    assert.ok(last?.kind === 'message' && last.m.t === 'acl/get');
    assert.equal(p.wire.filter((w) => (w.m as { t: string }).t === 'chan/hello').length, 2);
  });
});

describe('sealed channel: attacks', () => {
  it('a tampered ciphertext is E_DECRYPT, a possible attack', async () => {
    const p = pair({
      tamper: (m, dir) => {
        const f = m as ChannelMsgFrame;
        if (dir === 'd2v' && f.t === 'chan/msg') {
          const ct = fromB64u(f.ct);
          ct[0]! ^= 1;
          f.ct = b64u(ct);
        }
        return f;
      },
    });
    p.v.send(deviceId, { t: 'cameras' });
    await p.settle(() => p.atDevice.length > 0);
    const got = p.atDevice.find((r) => r.kind === 'message');
    assert.ok(got?.kind === 'message');
    p.d.send(viewerId, { t: 'cameras/refused', code: 'E_NO_GRANT' }, got.channel);
    await p.settle(() => p.atViewer.length > 1);
    const r = p.atViewer.at(-1);
    assert.ok(r?.kind === 'rejected');
    assert.ok(r.error instanceof VerificationError);
    assert.equal(r.error.code, 'E_DECRYPT');
    assert.equal(r.attack, true);
  });

  it('a replayed or reordered counter is E_REPLAY; the channel goes on afterwards', async () => {
    const p = pair();
    p.v.send(deviceId, { t: 'cameras' });
    p.v.send(deviceId, { t: 'acl/get' });
    await p.settle(() => p.atDevice.length >= 2);
    const msgs = p.wire.filter((w) => (w.m as { t: string }).t === 'chan/msg').map((w) => w.m);
    const replay = await p.d.receive(viewerId, msgs[0]);
    assert.ok(replay.kind === 'rejected' && replay.error.code === 'E_REPLAY' && replay.attack);
    const again = await p.d.receive(viewerId, msgs[1]);
    assert.ok(again.kind === 'rejected' && again.error.code === 'E_REPLAY');
    // Reordering: deliver messages 1 and 3, then 2.
    const held: unknown[] = [];
    const v2 = new ViewerChannels({
      signer: viewer,
      env: p.env,
      pinned: () => device.publicKey,
      route: (_t, m) => {
        held.push(m);
        return true;
      },
    });
    // a fresh channel for the reordering case
    v2.send(deviceId, { t: 'cameras' });
    await waitFor(() => held.length === 1);
    const hello = held.shift();
    const dv: unknown[] = [];
    const d2 = new DeviceChannels({
      signer: device,
      deviceId,
      env: p.env,
      route: (_t, m) => {
        dv.push(m);
        return true;
      },
    });
    await d2.receive(viewerId, hello);
    await v2.receive(deviceId, dv.shift());
    v2.send(deviceId, { t: 'acl/get' });
    v2.send(deviceId, { t: 'acl/get' });
    await waitFor(() => held.length === 3);
    const [m1, m2, m3] = held;
    assert.equal((await d2.receive(viewerId, m1)).kind, 'message');
    assert.equal((await d2.receive(viewerId, m3)).kind, 'message');
    const late = await d2.receive(viewerId, m2);
    assert.ok(
      late.kind === 'rejected' && late.error.code === 'E_REPLAY',
      'the late (reordered) message is refused',
    );
  });

  it('keys are separated by direction: a message reflected back to its sender does not open', async () => {
    const env = fixedEnv(3);
    const h = await createHello(viewer, deviceId, env);
    const a = await acceptHello(h.hello, { device, deviceId, from: viewerId, env });
    assert.ok(a.ok);
    const v = await completeHandshake(a.value.accept, {
      pending: h,
      viewerKey: viewerId,
      pinnedDeviceKey: device.publicKey,
      now: env.now(),
    });
    assert.ok(v.ok);
    assert.equal(v.value.transcript, a.value.channel.transcript);
    const f = await v.value.seal({ t: 'cameras' });
    // The viewer's own frame, fed to the viewer: same counter space, other direction's key.
    await assert.rejects(
      v.value.open(f),
      (e: unknown) => e instanceof VerificationError && e.code === 'E_DECRYPT',
    );
    const keys = v.value as unknown as { sendKey: Uint8Array; recvKey: Uint8Array };
    assert.notEqual(hex(keys.sendKey), hex(keys.recvKey));
    assert.deepEqual(await a.value.channel.open(f), { t: 'cameras' });
  });

  it('an accept signed by another key than the pinned one is E_WRONG_SIGNER', async () => {
    const p = pair({ deviceSigner: other });
    p.v.send(deviceId, { t: 'cameras' });
    await p.settle(() => p.atViewer.length > 0);
    const r = p.atViewer.find((x) => x.kind === 'rejected');
    assert.ok(r?.kind === 'rejected');
    assert.equal(r.error.code, 'E_WRONG_SIGNER');
    assert.ok(r.attack);
    assert.equal(p.v.established(deviceId), false);
    assert.equal(p.atDevice.filter((x) => x.kind === 'message').length, 0);
  });

  it('a hello signed by a key other than its sender is E_BAD_BINDING', async () => {
    const env = fixedEnv(4);
    const h = await createHello(other, deviceId, env);
    const a = await acceptHello(h.hello, { device, deviceId, from: viewerId, env });
    assert.ok(!a.ok && a.error instanceof VerificationError && a.error.code === 'E_BAD_BINDING');
    // signed by a device key instead of a user key
    const forged = await seal(device, 'device', 'chan/hello', h.hello.b, env);
    const b = await acceptHello(forged, { device, deviceId, from: viewerId, env });
    assert.ok(!b.ok && b.error.code === 'E_WRONG_SIGNER');
    // a bit flipped in the body
    const bad = { ...h.hello, b: { ...h.hello.b, e: b64u(new Uint8Array(32).fill(9)) } };
    const c = await acceptHello(bad, { device, deviceId, from: encodeId('userKey', other.publicKey), env });
    assert.ok(!c.ok && c.error.code === 'E_BAD_SIGNATURE');
  });

  it('a hello for another device is E_BAD_BINDING, and the refusal is told', async () => {
    const env = fixedEnv(5);
    const h = await createHello(viewer, deviceIdFromKey(other.publicKey), env);
    const a = await acceptHello(h.hello, { device, deviceId, from: viewerId, env });
    assert.ok(!a.ok && a.error.code === 'E_BAD_BINDING' && /another device/.test(a.error.message));
    const sent: unknown[] = [];
    const d = new DeviceChannels({ signer: device, deviceId, env, route: (_t, m) => !!sent.push(m) });
    const r = await d.receive(viewerId, { t: 'chan/hello', env: h.hello });
    assert.ok(r.kind === 'rejected' && r.attack);
    assert.deepEqual(sent, [{ t: 'chan/refused', c: h.id, code: 'E_BAD_BINDING' }]);
    assert.equal(d.size, 0);
  });

  it('a stale hello is E_STALE; a replayed hello is E_REPLAY', async () => {
    const env = fixedEnv(6);
    const h = await createHello(viewer, deviceId, env);
    env.advance(61_000);
    const a = await acceptHello(h.hello, { device, deviceId, from: viewerId, env });
    assert.ok(!a.ok && a.error.code === 'E_STALE');
    const d = new DeviceChannels({ signer: device, deviceId, env, route: () => true });
    const fresh = await createHello(viewer, deviceId, env);
    assert.equal((await d.receive(viewerId, { t: 'chan/hello', env: fresh.hello })).kind, 'handled');
    const r = await d.receive(viewerId, { t: 'chan/hello', env: fresh.hello });
    assert.ok(r.kind === 'rejected' && r.error.code === 'E_REPLAY');
  });

  it('review R4: a hello recorded before the device restarted is refused (E_RESTARTED), a fresh one is not; control: without the start time it is accepted', async () => {
    const env = fixedEnv(7);
    const recorded = await createHello(viewer, deviceId, env);
    env.advance(5_000); // the device restarts 5 s later (a new DeviceChannels: empty replay cache)
    const sent: { t: string; c?: string; code?: string }[] = [];
    const d = new DeviceChannels({
      signer: device,
      deviceId,
      env,
      route: (_t, m) => !!sent.push(m as never),
    });
    const r = await d.receive(viewerId, { t: 'chan/hello', env: recorded.hello });
    assert.ok(r.kind === 'rejected' && r.error.code === 'E_RESTARTED' && !r.attack);
    assert.equal(sent.at(-1)?.t, 'chan/refused');
    assert.equal(sent.at(-1)?.code, 'E_RESTARTED');
    const fresh = await createHello(viewer, deviceId, env);
    assert.equal((await d.receive(viewerId, { t: 'chan/hello', env: fresh.hello })).kind, 'handled');
    // Control: a device that does not know when it started takes the recorded hello.
    const old = new DeviceChannels({ signer: device, deviceId, env, route: () => true, startedAt: 0 });
    assert.equal((await old.receive(viewerId, { t: 'chan/hello', env: recorded.hello })).kind, 'handled');
  });

  it('a message the channel cannot open (other keys under its id) is E_DECRYPT, and the device asks for a new handshake', async () => {
    const p = pair();
    p.v.send(deviceId, { t: 'cameras' });
    await p.settle(() => p.atDevice.length > 0);
    const msg = p.wire.find((w) => w.dir === 'v2d' && (w.m as { t: string }).t === 'chan/msg')!.m as {
      c: string;
      n: number;
      ct: string;
    };
    const garbled = { ...msg, n: msg.n + 1, ct: `${msg.ct.slice(0, -4)}AAAA` };
    const r = await p.d.receive(viewerId, garbled);
    assert.ok(r.kind === 'rejected' && r.error.code === 'E_DECRYPT' && r.attack);
    await p.settle(() => p.atViewer.some((x) => x.kind === 'handled' && x.event === 'reset'));
    assert.equal(p.v.established(deviceId), false, 'the viewer drops the channel and will shake hands anew');
    p.v.send(deviceId, { t: 'acl/get' });
    await p.settle(() => p.atDevice.some((x) => x.kind === 'message' && x.m.t === 'acl/get'));
  });

  it('a stale accept is E_STALE; an accept for another hello is E_BAD_BINDING', async () => {
    const env = fixedEnv(7);
    const h1 = await createHello(viewer, deviceId, env);
    const h2 = await createHello(viewer, deviceId, env);
    const a = await acceptHello(h1.hello, { device, deviceId, from: viewerId, env });
    assert.ok(a.ok);
    const opts = { viewerKey: viewerId, pinnedDeviceKey: device.publicKey };
    const wrong = await completeHandshake(a.value.accept, { ...opts, pending: h2, now: env.now() });
    assert.ok(!wrong.ok && wrong.error.code === 'E_BAD_BINDING');
    const stale = await completeHandshake(a.value.accept, { ...opts, pending: h1, now: env.now() + 61_000 });
    assert.ok(!stale.ok && stale.error.code === 'E_STALE');
  });

  it('malformed frames are typed ProtocolErrors, never throws', async () => {
    for (const m of [
      null,
      { t: 'chan/msg' },
      { t: 'chan/msg', c: 'x', n: 1, ct: 'AAAA' },
      { t: 'chan/msg', c: 'A'.repeat(22), n: 0, ct: 'A'.repeat(30) },
      { t: 'chan/msg', c: 'A'.repeat(22), n: 1, ct: 'A'.repeat(MAX_CHANNEL_CT_CHARS + 1) },
      { t: 'chan/hello', env: 'x' },
      { t: 'chan/nope' },
    ]) {
      const r = decodeRouted(m);
      assert.equal(r.kind, 'invalid', JSON.stringify(m)?.slice(0, 60));
      if (r.kind === 'invalid') assert.ok(r.error instanceof ProtocolError);
    }
    const d = new DeviceChannels({ signer: device, deviceId, env: fixedEnv(), route: () => true });
    const r = await d.receive(viewerId, { t: 'chan/hello', env: { v: 1 } });
    assert.ok(r.kind === 'rejected' && r.error instanceof ProtocolError);
  });
});

describe('sealed channel: test vector (docs/protocol.md)', () => {
  it('fixed keys, clock and randomness give fixed bytes', async () => {
    const env = fixedEnv(42, 1_750_000_000_000);
    const ve = await x25519KeyPairFromScalar(new Uint8Array(32).fill(0x11));
    const de = await x25519KeyPairFromScalar(new Uint8Array(32).fill(0x22));
    const h = await createHello(viewer, deviceId, env, ve);
    const a = await acceptHello(h.hello, { device, deviceId, from: viewerId, env, eph: de });
    assert.ok(a.ok);
    const v = await completeHandshake(a.value.accept, {
      pending: h,
      viewerKey: viewerId,
      pinnedDeviceKey: device.publicKey,
      now: env.now(),
    });
    assert.ok(v.ok);
    const f = await v.value.seal({ t: 'cameras' });
    const vector = {
      c: h.id,
      transcript: v.value.transcript,
      ct1: f.ct,
      kv2d: hex((v.value as unknown as { sendKey: Uint8Array }).sendKey),
      kd2v: hex((v.value as unknown as { recvKey: Uint8Array }).recvKey),
    };
    assert.deepEqual(vector, VECTOR);
    assert.equal(
      fromUtf8(new TextEncoder().encode(JSON.stringify(await a.value.channel.open(f)))),
      '{"t":"cameras"}',
    );
  });
});

/** Pinned by the first run; reproduced in docs/protocol.md. */
const VECTOR = {
  c: 'KKwDwMS22K6TN9ozZOCp2Q',
  transcript: '08MgmRm_S1WpuKVOfF5ylmyrrMoqeDVIiCCG8pxn5rs',
  ct1: 'YXiaprLM5RCZCloXzcbA2luQ9ztfiS95LmJLEgqHpA',
  kv2d: 'd396c3de1c274b710ae0a434dbc013f096dfec6db8058f6227e819f804346462',
  kd2v: 'b1cc9027e1de358fc8e613f016a12873ba7dfcaa675b941ce726a80b2d0e2f7d',
};
