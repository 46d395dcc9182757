// Lost-phone recovery through the real agent and server: a new phone, in no ACL, holds only the
// printed recovery key. It proves the key to the device (`acl/get {rp}`, bound to its own key), gets
// the ACL's version and owners, and signs the one update the recovery key may: itself as the only
// owner. The attacks: a wrong recovery key, a proof made for another phone and replayed, and the
// recovery key trying to add a member; each is refused, the ACL is unchanged, and the device logs a
// possible attack. Controls: without a proof a stranger is refused anyway, and the genuine key
// succeeds (the old owner is out).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Agent, loadOrCreateIdentity, type PairingInfo } from '@hearth/agent';
import {
  encodeId,
  signAclUpdate,
  signGrant,
  signRecoveryProof,
  systemEnv,
  WebCryptoSigner,
} from '@hearth/protocol';
import { startTestHub, type TestHub } from '@hearth/server/testing';
import {
  connectViewer,
  logAlerts,
  pairByCode,
  pins,
  startTestAgent,
  until,
  type Viewer,
} from './support/viewers.js';

describe('recovery with the printed recovery key, through the real agent', () => {
  let srv: TestHub;
  let root: string;
  let agent: Agent;
  let owner: Viewer;
  let phone: Viewer;
  let thief: Viewer;
  let recovery: WebCryptoSigner;
  let window: PairingInfo | undefined;

  const ask = async (v: Viewer, m: { t: string; [k: string]: unknown }, replies: string[]) => {
    v.send(agent.deviceId, m);
    return v.next((x) => replies.includes(x.t));
  };
  const alerts = () => logAlerts(agent);

  before(async () => {
    srv = await startTestHub({ serveViewer: false });
    root = mkdtempSync(join(tmpdir(), 'hearth-recover-'));
    const dataDir = join(root, 'data');
    agent = await startTestAgent(dataDir, srv.url, (i) => {
      window = i;
    });
    pins.set(agent.deviceId, (await loadOrCreateIdentity(dataDir)).signer.publicKey);
    owner = await connectViewer(srv.url);
    phone = await connectViewer(srv.url);
    thief = await connectViewer(srv.url);
    await until('pairing window', () => window);
    await pairByCode(owner, window!);
    await until('paired', () => agent.acl()?.owners.length === 1);
    // At pairing the owner's viewer sets the recovery key (the printed one).
    recovery = await WebCryptoSigner.generate();
    const up = await signAclUpdate(
      owner.signer,
      { d: agent.deviceId, ver: 1, add: [], revoke: [], recovery: encodeId('userKey', recovery.publicKey) },
      systemEnv,
    );
    assert.deepEqual(await ask(owner, { t: 'acl/update', env: up }, ['acl/ok', 'acl/error']), {
      t: 'acl/ok',
      ver: 1,
    });
  });

  after(async () => {
    for (const v of [owner, phone, thief]) v?.close();
    await agent?.close();
    await srv?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('control: a stranger without a proof gets no ACL', async () => {
    assert.deepEqual(await ask(phone, { t: 'acl/get' }, ['acl', 'acl/error']), {
      t: 'acl/error',
      code: 'E_NO_GRANT',
    });
  });

  it('attack: a proof by a key that is not the recovery key is refused and logged', async () => {
    const wrong = await WebCryptoSigner.generate();
    const rp = await signRecoveryProof(wrong, { d: agent.deviceId, vk: phone.id }, systemEnv);
    const r = await ask(phone, { t: 'acl/get', rp }, ['acl', 'acl/error']);
    assert.deepEqual(r, { t: 'acl/error', code: 'E_WRONG_SIGNER' });
    await until('alert logged', async () => (await alerts()).includes('possible-attack:E_WRONG_SIGNER'));
  });

  it("attack: the genuine phone's proof, replayed by another key, is refused (bound to the asker)", async () => {
    const rp = await signRecoveryProof(recovery, { d: agent.deviceId, vk: phone.id }, systemEnv);
    const r = await ask(thief, { t: 'acl/get', rp }, ['acl', 'acl/error']);
    assert.deepEqual(r, { t: 'acl/error', code: 'E_BAD_BINDING' });
  });

  it('attack: the recovery key may not add a member, even with the right version', async () => {
    const ver = agent.acl()!.state.ver;
    const g = await signGrant(
      recovery,
      { d: agent.deviceId, sub: thief.id, role: 'member', scopes: ['live'], nbf: 0, exp: null, serial: 9 },
      systemEnv,
    );
    const up = await signAclUpdate(
      recovery,
      { d: agent.deviceId, ver: ver + 1, add: [g], revoke: [] },
      systemEnv,
    );
    const r = await ask(thief, { t: 'acl/update', env: up }, ['acl/ok', 'acl/error']);
    assert.deepEqual(r, { t: 'acl/error', code: 'E_RECOVERY_SCOPE' });
    assert.equal(agent.acl()!.state.ver, ver, 'the ACL is unchanged');
    assert.deepEqual(agent.acl()!.owners, [owner.id]);
  });

  it('the genuine key makes the new phone the only owner; the lost phone is out', async () => {
    const rp = await signRecoveryProof(recovery, { d: agent.deviceId, vk: phone.id }, systemEnv);
    const got = await ask(phone, { t: 'acl/get', rp }, ['acl', 'acl/error']);
    assert.equal(got.t, 'acl', JSON.stringify(got));
    const state = got.state as { ver: number; owners: string[] };
    assert.deepEqual(state.owners, [owner.id]);
    const up = await signAclUpdate(
      recovery,
      {
        d: agent.deviceId,
        ver: state.ver + 1,
        add: [],
        revoke: [],
        owners: { add: [phone.id], remove: state.owners },
      },
      systemEnv,
    );
    assert.deepEqual(await ask(phone, { t: 'acl/update', env: up }, ['acl/ok', 'acl/error']), {
      t: 'acl/ok',
      ver: state.ver + 1,
    });
    assert.deepEqual(agent.acl()!.owners, [phone.id]);
    assert.deepEqual(await ask(owner, { t: 'acl/get' }, ['acl', 'acl/error']), {
      t: 'acl/error',
      code: 'E_NO_GRANT',
    });
    assert.equal(
      (await ask(phone, { t: 'acl/get' }, ['acl', 'acl/error'])).t,
      'acl',
      'the new phone reads it as owner',
    );
  });
});
