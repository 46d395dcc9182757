// Recordings to the server's blob store, end to end through real parts: a real Hearth server
// (blob store on loopback, files in its data dir), the real agent with its default sink (BlobClient,
// tickets signed at upload), viewers that register real X25519 reader keys over the sealed channel,
// and reads signed with the viewers' own keys, as the viewer app makes them.
//
// Shown: what a member with `clips` reads back is the exact recording; a member with `live` only is
// refused by the server under the device's ticket (control: the member with `clips` reads the same
// blob with the same request code); the server's data dir never holds the camera's name (control:
// the device's own outbox index does, so the scan can find it); a member cannot erase the device's
// blobs, the owner can, and afterwards nothing of the device is left in the server's data dir (S8).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  blobAuthorization,
  blobPath,
  blobStoreError,
  decodeBlobListing,
  decodeEventRecord,
  encodeReaderKey,
  openBlob,
  signAclUpdate,
  signGrant,
  signReaderKey,
  systemEnv,
  type X25519KeyPair,
  x25519Generate,
} from '@hearth/protocol';
import { startTestHub, type TestHub } from '@hearth/server/testing';
import { loadOrCreateIdentity } from '../src/device/identity.js';
import type { EventRecording } from '../src/events/recorder.js';
import { type Agent, startAgent } from '../src/index.js';
import { connectViewer, fakeMedia, ITER, pairViewer, pins, type TestViewer } from './world.js';

const CAMERA = 'nursery-upstairs';

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Files under `dir` whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const n = Buffer.from(needle, 'utf8');
  return filesUnder(dir).filter((f) => readFileSync(f).includes(n));
}

describe('recordings reach the server blob store, sealed, and only readers read them', () => {
  let srv: TestHub;
  let dataDir: string;
  let agent: Agent;
  let owner: TestViewer;
  let member: TestViewer;
  let liveOnly: TestViewer;
  const keys = new Map<string, X25519KeyPair>();
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
  const clip = new Uint8Array(200_000).map((_, i) => (i * 31) % 251);
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
  const register = async (v: TestViewer) => {
    const kp = await x25519Generate();
    keys.set(v.id, kp);
    v.send(agent.deviceId, {
      t: 'reader/key',
      rk: encodeReaderKey(await signReaderKey(v.signer, kp.publicKey)),
    });
    return v.next((m) => m.t === 'reader/ok' || m.t === 'reader/error');
  };
  /** A request signed with the viewer's identity key, as the viewer app signs it. */
  const request = async (v: TestViewer, method: string, path: string): Promise<Response> => {
    const authorization = await blobAuthorization(v.signer, 'user', method, path, undefined, systemEnv);
    return fetch(`${srv.url}${path}`, { method, headers: { authorization } });
  };
  const ok = async (r: Response): Promise<Uint8Array> => {
    const body = new Uint8Array(await r.arrayBuffer());
    if (r.status >= 400) throw blobStoreError(r.status, body);
    return body;
  };

  before(async () => {
    srv = await startTestHub({ serveViewer: false });
    dataDir = join(mkdtempSync(join(tmpdir(), 'hearth-upload-')), 'data');
    agent = await startAgent({
      dataDir,
      serverUrl: srv.url,
      media,
      pairingIterations: ITER,
      minBackoffMs: 20,
      maxBackoffMs: 200,
      events: { minBackoffMs: 20, maxBackoffMs: 200 },
    });
    pins.set(agent.deviceId, (await loadOrCreateIdentity(dataDir)).signer.publicKey);
    owner = await connectViewer(srv.url);
    const info = agent.pairing();
    assert.ok(info);
    await pairViewer(owner, info, 'qr');
    member = await connectViewer(srv.url);
    liveOnly = await connectViewer(srv.url);
    await grant(member, 1, ['live', 'clips']);
    await grant(liveOnly, 2, ['live']);
    assert.deepEqual(await register(owner), { t: 'reader/ok' });
    assert.deepEqual(await register(member), { t: 'reader/ok' });
    assert.deepEqual(await register(liveOnly), { t: 'reader/error', code: 'E_SCOPE' });
    assert.ok(emitRecording, 'the agent listens to recordings');
    const t = Date.now();
    emitRecording({
      camera: CAMERA,
      kind: 'motion',
      trigger: t,
      start: t - 1000,
      end: t + 2000,
      snapshot: undefined,
      clip,
      frames: 30,
      truncated: false,
    });
    await agent.events.idle();
    // The uploader drains the outbox into the server (retrying on its backoff if it must).
    for (let i = 0; i < 200 && agent.events.outbox.count > 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(agent.events.outbox.count, 0, 'the outbox drained into the server');
  });

  after(async () => {
    await agent?.close();
    for (const v of [owner, member, liveOnly]) v?.client.close();
    await srv?.close();
    if (dataDir) rmSync(join(dataDir, '..'), { recursive: true, force: true });
  });

  it('a member with clips lists the event and reads back the exact clip; the event record names it', async () => {
    const listing = decodeBlobListing(await ok(await request(member, 'GET', blobPath(agent.deviceId))));
    assert.deepEqual(listing.blobs.map((b) => b.kind).sort(), ['clip', 'event']);
    const reader = { userKey: member.id, x25519: keys.get(member.id) as X25519KeyPair };
    const ev = listing.blobs.find((b) => b.kind === 'event');
    assert.ok(ev);
    const evBlob = await ok(await request(member, 'GET', blobPath(agent.deviceId, ev.id)));
    const opened = await openBlob(evBlob, {
      pinnedDeviceKey: pins.get(agent.deviceId) as Uint8Array,
      reader,
      camera: CAMERA,
    });
    const record = decodeEventRecord(opened.plaintext);
    assert.equal(record.cam, CAMERA);
    assert.equal(record.type, 'motion');
    const clipId = record.clip;
    assert.ok(clipId && listing.blobs.some((b) => b.id === clipId && b.kind === 'clip'));
    const clipBlob = await ok(await request(member, 'GET', blobPath(agent.deviceId, clipId)));
    // With the capability the server gives ciphertext only: no run of the clip's bytes is in it.
    assert.ok(!Buffer.from(clipBlob).includes(Buffer.from(clip.subarray(1000, 1064))));
    const c = await openBlob(clipBlob, {
      pinnedDeviceKey: pins.get(agent.deviceId) as Uint8Array,
      reader,
      camera: CAMERA,
    });
    assert.deepEqual(c.plaintext, clip);
  });

  it('attack: a member with live only is refused the clip by the server; control: the member with clips reads it', async () => {
    const listing = decodeBlobListing(await ok(await request(member, 'GET', blobPath(agent.deviceId))));
    const clipId = listing.blobs.find((b) => b.kind === 'clip')?.id as string;
    const theirs = decodeBlobListing(await ok(await request(liveOnly, 'GET', blobPath(agent.deviceId))));
    assert.equal(theirs.blobs.length, 0, 'the listing shows a non-reader nothing');
    const r = await request(liveOnly, 'GET', blobPath(agent.deviceId, clipId));
    assert.ok(r.status === 403 || r.status === 404, `status ${r.status}`);
    await r.arrayBuffer();
    const control = await request(member, 'GET', blobPath(agent.deviceId, clipId));
    assert.equal(control.status, 200);
    await control.arrayBuffer();
  });

  it("the server's data dir never holds the camera's name; control: the device's own files do", () => {
    assert.ok(filesUnder(join(srv.dataDir, 'blobs')).length >= 4, 'blobs and tickets are stored as files');
    assert.deepEqual(filesContaining(srv.dataDir, CAMERA), []);
    assert.ok(filesContaining(dataDir, CAMERA).length > 0, 'the scan finds the name where it is');
  });

  it('revocation: clips made after it are not wrapped to the revoked key; the owner still reads them', async () => {
    const listing = async (v: TestViewer) =>
      decodeBlobListing(await ok(await request(v, 'GET', blobPath(agent.deviceId)))).blobs;
    const before = new Set((await listing(owner)).map((b) => b.id));
    const up = await signAclUpdate(
      owner.signer,
      { d: agent.deviceId, ver: ++ver, add: [], revoke: [1] },
      systemEnv,
    );
    owner.send(agent.deviceId, { t: 'acl/update', env: up });
    assert.deepEqual(await owner.next((m) => m.t === 'acl/ok' || m.t === 'acl/error'), { t: 'acl/ok', ver });
    const t = Date.now();
    emitRecording?.({
      camera: CAMERA,
      kind: 'motion',
      trigger: t,
      start: t - 500,
      end: t + 500,
      snapshot: undefined,
      clip: clip.subarray(0, 5000),
      frames: 5,
      truncated: false,
    });
    await agent.events.idle();
    const fresh = (await listing(owner)).filter((b) => !before.has(b.id) && b.kind === 'clip');
    assert.equal(fresh.length, 1, 'the new clip reached the server');
    const id = fresh[0]!.id;
    const bytes = await ok(await request(owner, 'GET', blobPath(agent.deviceId, id)));
    const pinnedDeviceKey = pins.get(agent.deviceId) as Uint8Array;
    // The revoked member's key is not among the recipients, so it cannot unwrap (and the server,
    // under the new ticket, does not even serve it).
    await assert.rejects(
      openBlob(bytes, { pinnedDeviceKey, reader: { userKey: member.id, x25519: keys.get(member.id)! } }),
      (e: { code?: string }) => e.code === 'E_NOT_RECIPIENT',
    );
    const r = await request(member, 'GET', blobPath(agent.deviceId, id));
    assert.ok(r.status === 403 || r.status === 404, `status ${r.status}`);
    await r.arrayBuffer();
    // Control: the owner's key opens the same bytes.
    const mine = await openBlob(bytes, {
      pinnedDeviceKey,
      reader: { userKey: owner.id, x25519: keys.get(owner.id)! },
    });
    assert.deepEqual(mine.plaintext, clip.subarray(0, 5000));
  });

  it('S8: a member cannot erase the device’s blobs; the owner can, and nothing of the device is left', async () => {
    const path = blobPath(agent.deviceId);
    const refused = await request(member, 'DELETE', path);
    assert.ok(refused.status === 403 || refused.status === 404, `status ${refused.status}`);
    await refused.arrayBuffer();
    const devDir = join(srv.dataDir, 'blobs', agent.deviceId);
    assert.ok(statSync(devDir).isDirectory() && filesUnder(devDir).length > 0);
    await ok(await request(owner, 'DELETE', path));
    const after = decodeBlobListing(await ok(await request(owner, 'GET', path)));
    assert.equal(after.blobs.length, 0);
    const left = filesUnder(join(srv.dataDir, 'blobs')).filter((f) => f.includes(agent.deviceId));
    assert.deepEqual(left, []);
  });
});
