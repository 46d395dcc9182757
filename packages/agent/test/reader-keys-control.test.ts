// The reader-key store's scope check, end to end on real files with the real sealer and opener:
// a member whose grant has `live` but not `clips` cannot get a key registered, is not a recipient of
// the next recording, and cannot open it (E_NOT_RECIPIENT). Control: a store that checks the wrong
// scope (the test-only `scopeForTests: 'live'`) lets the same member register and read the same
// recording, so the test would fail if the check were gone.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  Acl,
  type ClipReader,
  decodeEnvelope,
  encodeId,
  encodeReaderKey,
  openBlob,
  signAclUpdate,
  signGrant,
  signReaderKey,
  systemEnv,
  WebCryptoSigner,
  x25519KeyPairFromScalar,
} from '@hearth/protocol';
import { loadOrCreateIdentity } from '../src/device/identity.js';
import { EventPipeline } from '../src/events/pipeline.js';
import { ReaderKeyStore } from '../src/events/readers.js';

const root = mkdtempSync(join(tmpdir(), 'hearth-readers-ctl-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function world(name: string, scopeForTests?: 'live') {
  const dataDir = join(root, name);
  const id = await loadOrCreateIdentity(dataDir);
  const owner = await WebCryptoSigner.generate();
  const member = await WebCryptoSigner.generate();
  const mx = await x25519KeyPairFromScalar(new Uint8Array(32).fill(0x42));
  const reader: ClipReader = { userKey: encodeId('userKey', member.publicKey), x25519: mx };
  const g = await signGrant(
    owner,
    { d: id.deviceId, sub: reader.userKey, role: 'member', scopes: ['live'], nbf: 0, exp: null, serial: 1 },
    systemEnv,
  );
  const acl = await Acl.create(id.deviceId, owner.publicKey).apply(
    decodeEnvelope(await signAclUpdate(owner, { d: id.deviceId, ver: 1, add: [g], revoke: [] }, systemEnv)),
    Date.now(),
  );
  const store = await ReaderKeyStore.load(dataDir, scopeForTests ? { scopeForTests } : {});
  const ox = await x25519KeyPairFromScalar(new Uint8Array(32).fill(0x21));
  const ownerKey = encodeId('userKey', owner.publicKey);
  await store.register(ownerKey, encodeReaderKey(await signReaderKey(owner, ox.publicKey)), acl, Date.now());
  const pipeline = new EventPipeline({
    dataDir,
    device: id.signer,
    recipients: (camera, now) => store.recipients(acl, camera, now),
    retentionEveryMs: 0,
  });
  const t = Date.now();
  const attempt = async () => {
    const registered = await store
      .register(reader.userKey, encodeReaderKey(await signReaderKey(member, mx.publicKey)), acl, Date.now())
      .then(
        () => 'ok',
        (e: { code: string }) => e.code,
      );
    const r = await pipeline.handle({
      camera: 'door',
      kind: 'motion',
      trigger: t,
      start: t,
      end: t + 1000,
      snapshot: undefined,
      clip: new Uint8Array(3000).fill(9),
      frames: 3,
      truncated: false,
    });
    assert.ok(r?.clip);
    const opened = await openBlob(pipeline.outbox.read(r.clip.id) as Uint8Array, {
      pinnedDeviceKey: id.signer.publicKey,
      reader,
    }).then(
      (o) => (o.plaintext.every((b) => b === 9) ? 'read the clip' : 'garbage'),
      (e: { code: string }) => e.code,
    );
    pipeline.close();
    return { registered, readers: r.readers, opened };
  };
  return { attempt, member: reader.userKey, owner: ownerKey };
}

describe('reader keys need the clips scope (with a broken-check control)', () => {
  it('a member with live only: refused, not a recipient, cannot open', async () => {
    const w = await world('real');
    const r = await w.attempt();
    assert.equal(r.registered, 'E_SCOPE');
    assert.deepEqual(r.readers, [w.owner]);
    assert.equal(r.opened, 'E_NOT_RECIPIENT');
  });
  it('control: a store checking the wrong scope lets the same member read the recording', async () => {
    const w = await world('broken', 'live');
    const r = await w.attempt();
    assert.equal(r.registered, 'ok');
    assert.deepEqual([...r.readers].sort(), [w.owner, w.member].sort());
    assert.equal(r.opened, 'read the clip');
  });
});
