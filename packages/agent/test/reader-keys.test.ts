// Reader keys through the real agent (real rendezvous hub on loopback, real sealed channels, real
// files): `reader/key` is accepted only from a user whose grant allows `clips`, signed by that very
// user key, with a valid signature; accepted keys are in readers.json (0600) and are the
// recipients of the next recording, refused ones are not. Control: the member refused for want of
// `clips` is accepted, with the same message, once the owner grants `clips` (so the refusal is the
// grant's doing, not a broken message).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  decodeClipHeader,
  encodeReaderKey,
  signAclUpdate,
  signGrant,
  signReaderKey,
  systemEnv,
} from '@hearth/protocol';
import { startTestHub, type TestHub } from '@hearth/server/testing';
import { loadOrCreateIdentity } from '../src/device/identity.js';
import type { EventRecording } from '../src/events/recorder.js';
import { type Agent, type AgentEvent, startAgent } from '../src/index.js';
import { connectViewer, fakeMedia, ITER, pairViewer, pins, type TestViewer } from './world.js';

const x25519 = (fill: number) => new Uint8Array(32).fill(fill);

describe('reader/key', () => {
  let srv: TestHub;
  let dataDir: string;
  let agent: Agent;
  let owner: TestViewer;
  let noClips: TestViewer;
  let clips: TestViewer;
  let stranger: TestViewer;
  const events: AgentEvent[] = [];
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
  const grant = async (v: TestViewer, serial: number, scopes: ('live' | 'clips')[]) => {
    const g = await signGrant(
      owner.signer,
      { d: agent.deviceId, sub: v.id, role: 'member', scopes, nbf: 0, exp: null, serial },
      systemEnv,
    );
    const up = await signAclUpdate(
      owner.signer,
      { d: agent.deviceId, ver: ++ver, add: [g], revoke: [] },
      systemEnv,
    );
    owner.send(agent.deviceId, { t: 'acl/update', env: up });
    assert.deepEqual(await owner.next((m) => m.t === 'acl/ok' || m.t === 'acl/error'), { t: 'acl/ok', ver });
  };
  const ask = async (v: TestViewer, rk: string) => {
    v.send(agent.deviceId, { t: 'reader/key', rk });
    return v.next((m) => m.t === 'reader/ok' || m.t === 'reader/error');
  };

  before(async () => {
    srv = await startTestHub({ serveViewer: false });
    dataDir = join(mkdtempSync(join(tmpdir(), 'hearth-readers-')), 'data');
    agent = await startAgent({
      dataDir,
      serverUrl: srv.url,
      media,
      pairingIterations: ITER,
      minBackoffMs: 20,
      maxBackoffMs: 200,
      onEvent: (e) => events.push(e),
      // Blobs stay in the outbox, where this test reads them (a later test gives a sink).
      events: { upload: false },
    });
    pins.set(agent.deviceId, (await loadOrCreateIdentity(dataDir)).signer.publicKey);
    owner = await connectViewer(srv.url);
    const info = agent.pairing();
    assert.ok(info);
    await pairViewer(owner, info, 'qr');
    noClips = await connectViewer(srv.url);
    clips = await connectViewer(srv.url);
    stranger = await connectViewer(srv.url);
    await grant(noClips, 1, ['live']);
    await grant(clips, 2, ['live', 'clips']);
  });

  after(async () => {
    await agent?.close();
    for (const v of [owner, noClips, clips, stranger]) v?.client.close();
    await srv?.close();
    rmSync(join(dataDir, '..'), { recursive: true, force: true });
  });

  it('a stranger is refused (E_NO_GRANT); a member without clips is refused (E_SCOPE)', async () => {
    const s = encodeReaderKey(await signReaderKey(stranger.signer, x25519(1)));
    assert.deepEqual(await ask(stranger, s), { t: 'reader/error', code: 'E_NO_GRANT' });
    const n = encodeReaderKey(await signReaderKey(noClips.signer, x25519(2)));
    assert.deepEqual(await ask(noClips, n), { t: 'reader/error', code: 'E_SCOPE' });
    assert.equal(agent.readers.size, 0);
  });

  it('a bad signature, a key signed by another user, and garbage are refused', async () => {
    const rk = await signReaderKey(clips.signer, x25519(3));
    const forged = { ...rk, signature: rk.signature.slice() };
    forged.signature[0] = (forged.signature[0] as number) ^ 1;
    assert.deepEqual(await ask(clips, encodeReaderKey(forged)), {
      t: 'reader/error',
      code: 'E_BAD_SIGNATURE',
    });
    // Swapping the X25519 key under a valid signature: the same.
    const swapped = encodeReaderKey({ ...rk, x25519: x25519(9) });
    assert.deepEqual(await ask(clips, swapped), { t: 'reader/error', code: 'E_BAD_SIGNATURE' });
    // The member with clips registering a key for the owner (valid, but the owner's): refused.
    const owners = encodeReaderKey(await signReaderKey(owner.signer, x25519(4)));
    assert.deepEqual(await ask(clips, owners), { t: 'reader/error', code: 'E_WRONG_SIGNER' });
    assert.deepEqual(await ask(clips, '{"v":1}'), { t: 'reader/error', code: 'E_SCHEMA' });
    assert.equal(agent.readers.size, 0);
  });

  it('valid keys from users allowed clips are stored (readers.json, 0600) and are the next recording’s recipients', async () => {
    const c = encodeReaderKey(await signReaderKey(clips.signer, x25519(5)));
    assert.deepEqual(await ask(clips, c), { t: 'reader/ok' });
    const o = encodeReaderKey(await signReaderKey(owner.signer, x25519(6)));
    assert.deepEqual(await ask(owner, o), { t: 'reader/ok' });
    // One key per user key: a second replaces the first.
    const o2 = encodeReaderKey(await signReaderKey(owner.signer, x25519(7)));
    assert.deepEqual(await ask(owner, o2), { t: 'reader/ok' });
    assert.equal(agent.readers.size, 2);
    const path = join(dataDir, 'readers.json');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const file = JSON.parse(readFileSync(path, 'utf8')) as { keys: unknown[] };
    assert.equal(file.keys.length, 2);
    assert.ok(events.some((e) => e.kind === 'reader-key' && e.ok));
    // A recording now: sealed to the owner and the member with clips, not to the one without.
    assert.ok(emitRecording, 'the agent listens to recordings');
    const t = Date.now();
    emitRecording({
      camera: 'demo',
      kind: 'motion',
      trigger: t,
      start: t - 1000,
      end: t + 2000,
      snapshot: undefined,
      clip: new Uint8Array(5000).fill(7),
      frames: 10,
      truncated: false,
    });
    await agent.events.idle();
    const list = agent.events.outbox.list();
    assert.deepEqual(list.map((m) => m.kind).sort(), ['clip', 'event']);
    for (const m of list) {
      const h = decodeClipHeader(agent.events.outbox.read(m.id) as Uint8Array).header;
      assert.deepEqual(h.r.map((r) => r.k).sort(), [owner.id, clips.id].sort());
      assert.deepEqual([...(m.readers ?? [])].sort(), [owner.id, clips.id].sort());
    }
    assert.ok(!list.some((m) => m.readers?.includes(noClips.id)));
    // The sink comes later (the blob store's client): the outbox drains into it.
    const put: string[] = [];
    agent.events.setSink({ put: async (id) => void put.push(id), delete: async () => {} });
    await agent.events.idle();
    assert.deepEqual(put.sort(), list.map((m) => m.id).sort());
    assert.equal(agent.events.outbox.count, 0);
  });

  it('control: the member refused for want of clips is accepted once granted clips', async () => {
    const n = encodeReaderKey(await signReaderKey(noClips.signer, x25519(2)));
    await grant(noClips, 3, ['live', 'clips']);
    assert.deepEqual(await ask(noClips, n), { t: 'reader/ok' });
    assert.equal(agent.readers.size, 3);
  });
});
