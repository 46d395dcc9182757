// Erasing the household (S8) through the real agent and server: an owner's signed
// `household/erase` makes the device answer, then its runner stops it and factory-resets it (the
// server's copy of its data first, then its data directory). The attacks: a member asking, a request
// signed by a member but sent by the owner's channel, an old request, one for another device; each
// is refused with its code, logged as a possible attack, and nothing is erased. Control: the owner's
// fresh request, through the same channel, erases the device.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type Agent,
  type FactoryResetResult,
  factoryReset,
  loadOrCreateIdentity,
  type PairingInfo,
} from '@hearth/agent';
import {
  deviceIdFromKey,
  fixedEnv,
  signAclUpdate,
  signEraseRequest,
  signGrant,
  systemEnv,
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

describe('erasing the household through the real agent and server', () => {
  let srv: TestHub;
  let root: string;
  let dataDir: string;
  let agent: Agent;
  let owner: Viewer;
  let member: Viewer;
  let window: PairingInfo | undefined;
  let allowErase = false;
  let erased: Promise<FactoryResetResult> | undefined;

  const ask = async (v: Viewer, m: { t: string; [k: string]: unknown }) => {
    v.send(agent.deviceId, m);
    return v.next((x) => x.t === 'household/erasing' || x.t === 'household/error');
  };
  const alerts = () => logAlerts(agent);

  before(async () => {
    srv = await startTestHub({ serveViewer: false });
    root = mkdtempSync(join(tmpdir(), 'hearth-erase-'));
    dataDir = join(root, 'data');
    agent = await startTestAgent(
      dataDir,
      srv.url,
      (i) => {
        window = i;
      },
      {
        // What the CLI does (commands.ts startAgentWith): stop the agent, then the factory reset.
        onErase: () => {
          if (!allowErase) return;
          erased = agent.close().then(() => factoryReset({ dataDir, serverUrl: srv.url }));
        },
      },
    );
    pins.set(agent.deviceId, (await loadOrCreateIdentity(dataDir)).signer.publicKey);
    owner = await connectViewer(srv.url);
    member = await connectViewer(srv.url);
    await until('pairing window', () => window);
    await pairByCode(owner, window!);
    await until('paired', () => agent.acl()?.owners.length === 1);
    const g = await signGrant(
      owner.signer,
      { d: agent.deviceId, sub: member.id, role: 'member', scopes: ['live'], nbf: 0, exp: null, serial: 1 },
      systemEnv,
    );
    const up = await signAclUpdate(
      owner.signer,
      { d: agent.deviceId, ver: 1, add: [g], revoke: [] },
      systemEnv,
    );
    owner.send(agent.deviceId, { t: 'acl/update', env: up });
    await owner.next((m) => m.t === 'acl/ok');
  });

  after(async () => {
    for (const v of [owner, member]) v?.close();
    await agent?.close();
    await srv?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('attacks: a member, a member-signed request, an old one, one for another device: refused, logged, nothing erased', async () => {
    const d = agent.deviceId;
    allowErase = true;
    assert.deepEqual(
      await ask(member, {
        t: 'household/erase',
        env: await signEraseRequest(member.signer, { d }, systemEnv),
      }),
      {
        t: 'household/error',
        code: 'E_NO_GRANT',
      },
    );
    assert.deepEqual(
      await ask(owner, {
        t: 'household/erase',
        env: await signEraseRequest(member.signer, { d }, systemEnv),
      }),
      {
        t: 'household/error',
        code: 'E_WRONG_SIGNER',
      },
    );
    const old = await signEraseRequest(owner.signer, { d }, fixedEnv(3, Date.now() - 10 * 60_000));
    assert.deepEqual(await ask(owner, { t: 'household/erase', env: old }), {
      t: 'household/error',
      code: 'E_STALE',
    });
    const other = deviceIdFromKey(new Uint8Array(32).fill(5));
    assert.deepEqual(
      await ask(owner, {
        t: 'household/erase',
        env: await signEraseRequest(owner.signer, { d: other }, systemEnv),
      }),
      { t: 'household/error', code: 'E_BAD_BINDING' },
    );
    const a = await alerts();
    for (const code of ['E_NO_GRANT', 'E_WRONG_SIGNER', 'E_STALE', 'E_BAD_BINDING'])
      assert.ok(a.includes(`possible-attack:${code}`), `${code} logged: ${a.join(' ')}`);
    assert.equal(erased, undefined, 'nothing was erased');
    assert.ok(existsSync(join(dataDir, 'device.key')));
    allowErase = false;
  });

  it("control: the owner's fresh request erases the device (server first), and it starts again as a new one", async () => {
    const d = agent.deviceId;
    const env = () => signEraseRequest(owner.signer, { d }, systemEnv);
    allowErase = true;
    assert.deepEqual(await ask(owner, { t: 'household/erase', env: await env() }), {
      t: 'household/erasing',
    });
    const r = await until('the factory reset', () => erased, 10_000).then((p) => p);
    assert.equal(r.deviceId, d);
    assert.equal(r.serverErased, true, "the server's copy is erased first");
    assert.deepEqual(readdirSync(dataDir), [], 'the data directory is empty');
    // A fresh agent in the same directory is a new device, waiting to be paired.
    const fresh = await startTestAgent(dataDir, srv.url, () => undefined);
    try {
      assert.notEqual(fresh.deviceId, d);
      assert.equal(fresh.acl(), undefined, 'unpaired');
    } finally {
      await fresh.close();
    }
  });
});
