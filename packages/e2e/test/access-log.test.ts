// The access log through the real parts: a real agent (startAgent, its AccessLog in the data
// directory) and the real rendezvous server (startTestHub, in this process, with the witness
// gossip routes), the viewer's real LogClient (@hearth/viewer net/log.ts) fetching through the
// sealed channel, verifying with the protocol's LogMonitor, cosigning and publishing.
//
// The sealed channel leaves the server no way to alter what the device sends, so the tamper tests
// put the attacker where it can act: the device's own log files (drop, reorder, roll back), and a
// holder of the device key showing two owners two histories (a fork, caught through the gossip).
// Each has a control: the honest run passes, and the same attack with the catching check turned
// off (LogChecks) is not seen, so each attack test can fail.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AccessLog,
  type Agent,
  accessLogDir,
  idHashOf,
  keyHashOf,
  loadOrCreateIdentity,
  type PairingInfo,
} from '@hearth/agent';
import {
  createOffer,
  decodeLogEntry,
  encodeId,
  LOG_CHECKS,
  type LogChecks,
  type LogGet,
  signAclUpdate,
  signGrant,
  systemEnv,
  WebCryptoSigner,
} from '@hearth/protocol';
import { startTestHub, type TestHub } from '@hearth/server/testing';
import { type FetchLike, LogClient, type LogStore, type SavedLog } from '@hearth/viewer';
import {
  connectViewer,
  pairByCode,
  pins,
  sdp,
  startTestAgent,
  until,
  type Viewer,
} from './support/viewers.js';

/** A LogStore in memory, which a test can copy (the same saved state for an attack and its control). */
class MapStore implements LogStore {
  readonly m = new Map<string, SavedLog>();
  async load(id: string) {
    const s = this.m.get(id);
    return s ? structuredClone(s) : undefined;
  }
  async save(id: string, s: SavedLog) {
    this.m.set(id, structuredClone(s));
  }
  copy(): MapStore {
    const c = new MapStore();
    for (const [k, v] of this.m) c.m.set(k, structuredClone(v));
    return c;
  }
}

const nodeFetch: FetchLike = async (url, init) => {
  const r = await fetch(url, init);
  return { status: r.status, text: () => r.text() };
};

/** Records of the device's entries file. */
function readRecords(dataDir: string): Uint8Array[] {
  const buf = readFileSync(join(accessLogDir(dataDir), 'entries'));
  const out: Uint8Array[] = [];
  for (let off = 0; off < buf.length; ) {
    const n = buf.readUInt32BE(off);
    out.push(new Uint8Array(buf.subarray(off + 4, off + 4 + n)));
    off += 4 + n;
  }
  return out;
}

/** The attacker rewrites the entries file (the device rebuilds its hash file from it on open). */
function writeRecords(dataDir: string, records: Uint8Array[]): void {
  const parts: Buffer[] = [];
  for (const r of records) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(r.length);
    parts.push(len, Buffer.from(r));
  }
  writeFileSync(join(accessLogDir(dataDir), 'entries'), Buffer.concat(parts), { mode: 0o600 });
  unlinkSync(join(accessLogDir(dataDir), 'hashes'));
}

describe('the access log through the real agent, server and viewer client', () => {
  let srv: TestHub;
  let root: string;
  let dataDir: string;
  let agent: Agent;
  let owner: Viewer;
  let ownerSigner: WebCryptoSigner;
  let member: Viewer;
  const open: Viewer[] = [];
  let window: PairingInfo | undefined;
  const start = () =>
    startTestAgent(dataDir, srv.url, (i) => {
      window = i;
    });

  /** The owner's viewer connection of now (a restart of the agent needs a new one). */
  const send = async (deviceId: string, m: LogGet): Promise<unknown> => {
    owner.send(deviceId, m);
    return owner.next((x) => x.t === 'log/update' || x.t === 'log/error');
  };
  const client = (store: LogStore, checks?: LogChecks) =>
    new LogClient({
      signer: ownerSigner,
      keyText: encodeId('userKey', ownerSigner.publicKey),
      send,
      server: srv.url,
      fetch: nodeFetch,
      store,
      ...(checks ? { checks } : {}),
      device: async (id) =>
        id === agent.deviceId
          ? {
              deviceId: id,
              deviceKey: encodeId('deviceKey', pins.get(id)!),
              witnesses: [encodeId('userKey', ownerSigner.publicKey)],
            }
          : undefined,
    });
  const restart = async () => {
    await agent.close();
    agent = await start();
    owner.close();
    owner = await connectViewer(srv.url, ownerSigner);
    open.push(owner);
  };
  const liveView = async () => {
    const o = await createOffer(
      ownerSigner,
      { deviceId: agent.deviceId, camera: 'demo', sdp: sdp('offer') },
      systemEnv,
    );
    owner.send(agent.deviceId, { t: 'session/offer', env: o.envelope });
    await owner.next((m) => m.t === 'session/answer');
    owner.send(agent.deviceId, { t: 'session/close', sid: o.sid });
    await until('closed', () => agent.sessions.size === 0);
    await agent.accessLog.flush();
    return o.sid;
  };
  const store = new MapStore();

  before(async () => {
    srv = await startTestHub({ serveViewer: false });
    root = mkdtempSync(join(tmpdir(), 'hearth-log-'));
    dataDir = join(root, 'data');
    agent = await start();
    pins.set(agent.deviceId, (await loadOrCreateIdentity(dataDir)).signer.publicKey);
    ownerSigner = await WebCryptoSigner.generate();
    owner = await connectViewer(srv.url, ownerSigner);
    member = await connectViewer(srv.url);
    open.push(owner, member);
  });

  after(async () => {
    await agent?.close();
    for (const v of open) v.close();
    await srv?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('pairing, a live view and an ACL change become entries the owner verifies', async () => {
    await until('pairing window', () => window);
    await pairByCode(owner, agent.pairing()!);
    const sid = await liveView();
    const grant = await signGrant(
      ownerSigner,
      { d: agent.deviceId, sub: member.id, role: 'member', scopes: ['live'], nbf: 0, exp: null, serial: 1 },
      systemEnv,
    );
    const steps: [number, { add: (typeof grant)[]; revoke: number[] }][] = [
      [1, { add: [grant], revoke: [] }],
      [2, { add: [], revoke: [1] }],
    ];
    for (const [ver, body] of steps) {
      const up = await signAclUpdate(ownerSigner, { d: agent.deviceId, ver, ...body }, systemEnv);
      owner.send(agent.deviceId, { t: 'acl/update', env: up });
      assert.deepEqual(await owner.next((m) => m.t === 'acl/ok' || m.t === 'acl/error'), {
        t: 'acl/ok',
        ver,
      });
    }
    await agent.accessLog.flush();

    const logs = client(store);
    const r = await logs.refresh(agent.deviceId);
    assert.equal(r.verdict, 'verified', JSON.stringify(r.tampered));
    assert.equal(r.size, agent.accessLog.size);
    assert.equal(r.added, r.size);
    const o = await keyHashOf(owner.id);
    const m = await keyHashOf(member.id);
    const e = r.entries.map((x) => x.entry);
    assert.deepEqual(
      e.map((x) => x.k),
      // The owner's grant is written before its pairing is answered (and logged as ok).
      ['acl/grant', 'pair/attempt', 'live/start', 'live/stop', 'acl/grant', 'acl/revoke'],
    );
    assert.ok(e.some((x) => x.k === 'pair/attempt' && x.result === 'ok' && x.viewer === o));
    assert.ok(e.some((x) => x.k === 'acl/grant' && x.subject === o && x.role === 'owner' && x.ver === 0));
    assert.ok(
      e.some((x) => x.k === 'live/start' && x.viewer === o && x.camera === 'demo' && x.path === 'direct'),
    );
    const sidHash = await idHashOf(sid);
    assert.ok(e.some((x) => x.k === 'live/stop' && x.sid === sidHash));
    assert.ok(e.some((x) => x.k === 'acl/grant' && x.subject === m && x.by === o && x.ver === 1));
    assert.ok(e.some((x) => x.k === 'acl/revoke' && x.subject === m && x.by === o && x.ver === 2));
    assert.ok(r.published, 'the cosigned checkpoint reached the gossip');
    assert.deepEqual(r.alarms, []);
    // A second refresh with nothing new is verified and adds nothing.
    const again = await logs.refresh(agent.deviceId);
    assert.deepEqual([again.verdict, again.added, again.size], ['verified', 0, r.size]);
  });

  it('only owners read the log: a member gets log/error E_NO_GRANT (control: the owner gets log/update)', async () => {
    member.send(agent.deviceId, { t: 'log/get', from: 0 });
    assert.deepEqual(await member.next((m) => m.t.startsWith('log/')), {
      t: 'log/error',
      code: 'E_NO_GRANT',
    });
    owner.send(agent.deviceId, { t: 'log/get', from: 0, max: 1 });
    const u = await owner.next((m) => m.t.startsWith('log/'));
    assert.equal(u.t, 'log/update');
    assert.equal((u.entries as string[]).length, 1);
  });

  it('an honest restart keeps the log: verified, and new entries follow (control of the tamper tests)', async () => {
    const before = agent.accessLog.size;
    await restart();
    assert.equal(agent.accessLog.size, before);
    await liveView();
    const r = await client(store.copy()).refresh(agent.deviceId);
    assert.equal(r.verdict, 'verified', JSON.stringify(r.tampered));
    assert.equal(r.size, before + 2);
    const saved = await client(store).refresh(agent.deviceId);
    assert.equal(saved.verdict, 'verified');
  });

  it('a verified entry dropped from the device log files is E_LOG_FORK (control: without the consistency check it goes unseen)', async () => {
    const good = readRecords(dataDir);
    const verified = store.copy();
    writeRecords(
      dataDir,
      good.filter((_, i) => i !== 3),
    );
    await restart();
    await liveView(); // the device goes on logging past the verified size
    const r = await client(verified.copy()).refresh(agent.deviceId);
    assert.equal(r.verdict, 'tampered');
    assert.equal(r.tampered?.tampered, 'E_LOG_FORK');
    assert.equal(r.tampered?.attack, true);
    assert.equal(r.alarms.length, 1);
    const unguarded = await client(verified.copy(), { ...LOG_CHECKS, advance: async () => {} }).refresh(
      agent.deviceId,
    );
    assert.equal(unguarded.verdict, 'verified', 'the dropped entry is not seen without the check');
    // Put the honest log back for the next tests.
    await agent.close();
    writeRecords(dataDir, good);
    agent = await start();
    owner.close();
    owner = await connectViewer(srv.url, ownerSigner);
    open.push(owner);
  });

  it('two verified entries swapped in the device log files are E_LOG_FORK (control: without the check it goes unseen)', async () => {
    const good = readRecords(dataDir);
    const verified = store.copy();
    const swapped = [...good];
    [swapped[1], swapped[2]] = [swapped[2]!, swapped[1]!];
    assert.notDeepEqual(decodeLogEntry(swapped[1]!), decodeLogEntry(good[1]!));
    writeRecords(dataDir, swapped);
    await restart();
    const r = await client(verified.copy()).refresh(agent.deviceId);
    assert.equal(r.tampered?.tampered, 'E_LOG_FORK');
    const unguarded = await client(verified.copy(), { ...LOG_CHECKS, advance: async () => {} }).refresh(
      agent.deviceId,
    );
    assert.equal(unguarded.verdict, 'verified');
    const honest = await client(new MapStore()).refresh(agent.deviceId);
    assert.equal(
      honest.verdict,
      'verified',
      'a viewer that saw nothing before cannot tell (trust on first use)',
    );
    await agent.close();
    writeRecords(dataDir, good);
    agent = await start();
    owner.close();
    owner = await connectViewer(srv.url, ownerSigner);
    open.push(owner);
  });

  it('an older copy of the log files restored (rollback) is E_LOG_ROLLBACK (control: a viewer without the saved checkpoint accepts it)', async () => {
    const dir = accessLogDir(dataDir);
    const old = join(root, 'old');
    rmSync(old, { recursive: true, force: true });
    writeFileSync(old, readFileSync(join(dir, 'entries')));
    await liveView();
    const r1 = await client(store).refresh(agent.deviceId);
    assert.equal(r1.verdict, 'verified');
    await agent.close();
    copyFileSync(old, join(dir, 'entries'));
    unlinkSync(join(dir, 'hashes'));
    agent = await start();
    owner.close();
    owner = await connectViewer(srv.url, ownerSigner);
    open.push(owner);
    assert.ok(agent.accessLog.size < r1.size);
    const verified = store.copy();
    const r = await client(verified.copy()).refresh(agent.deviceId);
    assert.equal(r.verdict, 'tampered');
    assert.equal(r.tampered?.tampered, 'E_LOG_ROLLBACK');
    const fresh = await client(new MapStore()).refresh(agent.deviceId);
    assert.equal(fresh.verdict, 'verified', JSON.stringify(fresh.tampered));
    // Both checks catch it (the smaller tree, and entries that cannot start at the verified size).
    const unguarded = await client(verified.copy(), {
      ...LOG_CHECKS,
      advance: async () => {},
      entries: async () => {},
    }).refresh(agent.deviceId);
    assert.equal(unguarded.verdict, 'verified');
  });

  it('a holder of the device key showing two owners two histories is caught through the server gossip as E_LOG_FORK (controls: one history passes; without the comparison it goes unseen)', async () => {
    const device = (await loadOrCreateIdentity(dataDir)).signer;
    const deviceId = agent.deviceId;
    const a = await WebCryptoSigner.generate();
    const b = await WebCryptoSigner.generate();
    const owners = [encodeId('userKey', a.publicKey), encodeId('userKey', b.publicKey)];
    // Two logs under the one device key: the history each owner is shown.
    const openLog = (name: string) => AccessLog.open({ dataDir: join(root, name), deviceId, signer: device });
    const logA = await openLog('forkA');
    const logB = await openLog('forkB');
    for (const [log, who] of [
      [logA, a],
      [logB, b],
    ] as const) {
      await log.append({ v: 1, t: 1, k: 'pair/attempt', result: 'ok' });
      await log.append({
        v: 1,
        t: 2,
        k: 'live/start',
        viewer: await keyHashOf(who.publicKey),
        camera: 'demo',
        sid: await idHashOf(`${log === logA ? 'a' : 'b'}`),
        path: 'direct',
      });
    }
    const ownerClient = (who: WebCryptoSigner, log: AccessLog, checks?: LogChecks) =>
      new LogClient({
        signer: who,
        keyText: encodeId('userKey', who.publicKey),
        send: async (_id, m) => log.update(m.from, m.max, m.wit ?? []),
        server: srv.url,
        fetch: nodeFetch,
        store: new MapStore(),
        ...(checks ? { checks } : {}),
        device: async () => ({
          deviceId,
          deviceKey: encodeId('deviceKey', device.publicKey),
          witnesses: owners,
        }),
      });
    const ra = await ownerClient(a, logA).refresh(deviceId);
    assert.equal(ra.verdict, 'verified');
    assert.ok(ra.published);
    // Control first (B shown A's history: one history), then the attack and the unguarded control.
    const same = await ownerClient(b, logA).refresh(deviceId);
    assert.equal(same.verdict, 'verified', JSON.stringify(same.tampered));
    assert.deepEqual(same.verdict === 'verified' && same.verifiedBy, [owners[0]]);
    const rb = await ownerClient(b, logB).refresh(deviceId);
    assert.equal(rb.verdict, 'tampered');
    assert.equal(rb.tampered?.tampered, 'E_LOG_FORK');
    const unguarded = await ownerClient(b, logB, { ...LOG_CHECKS, compare: async () => {} }).refresh(
      deviceId,
    );
    assert.equal(unguarded.verdict, 'verified', 'without the comparison the split view goes unseen');
    // A's next refresh now meets B's published note of the other history too.
    const ra2 = await ownerClient(a, logA).refresh(deviceId);
    assert.equal(ra2.tampered?.tampered, 'E_LOG_FORK');
    await logA.close();
    await logB.close();
  });
});
