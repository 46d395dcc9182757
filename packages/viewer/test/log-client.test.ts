// The viewer's access-log client (net/log.ts) against a device log in memory (the protocol's
// MemoryLog under a real device key): verification, persistence through the store, the answers a
// device can give. The attack through the real agent and server is in packages/e2e/test/access-log.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  b64u,
  deviceIdFromKey,
  encodeId,
  encodeLogEntry,
  encodeProofWire,
  LOG_CHECKS,
  type LogEntry,
  type LogGet,
  logOrigin,
  MemoryLog,
  WebCryptoSigner,
} from '@hearth/protocol';
import { idbLogStore, LogClient, type LogStore, type SavedLog } from '../src/net/log.js';

const entry = (t: number): Extract<LogEntry, { k: 'alert' }> => ({
  v: 1,
  t,
  k: 'alert',
  alert: 'possible-attack',
  code: 'E_REPLAY',
});

async function world() {
  const device = await WebCryptoSigner.generate();
  const deviceId = deviceIdFromKey(device.publicKey);
  const log = new MemoryLog(logOrigin(deviceId), device);
  const viewer = await WebCryptoSigner.generate();
  const keyText = encodeId('userKey', viewer.publicKey);
  /** What the device answers; `alter` lets the key holder change what it serves. */
  let alter: ((m: Record<string, unknown>) => Record<string, unknown>) | undefined;
  const send = async (_id: string, m: LogGet): Promise<unknown> => {
    const size = Math.min(log.size, m.from + (m.max ?? 64));
    const from = Math.min(m.from, size);
    const f = await log.fetch(from, size);
    const u = {
      t: 'log/update',
      cp: await log.signedCheckpoint(size),
      cons: encodeProofWire(await log.consistencyProof(from, size)),
      start: from,
      entries: f.entries.map((e) => b64u(e)),
      proofs: f.proofs.map(encodeProofWire),
    };
    return alter ? alter(u) : u;
  };
  const store = new Map<string, SavedLog>();
  const mapStore: LogStore = {
    load: async (id) => structuredClone(store.get(id)),
    save: async (id, s) => void store.set(id, structuredClone(s)),
  };
  const dev = { deviceId, deviceKey: encodeId('deviceKey', device.publicKey), witnesses: [keyText] };
  const client = (checks = LOG_CHECKS, s: LogStore = mapStore) =>
    new LogClient({ signer: viewer, keyText, send, store: s, checks, device: async () => dev });
  const grow = async (n: number) => {
    for (let i = 0; i < n; i++) await log.append(encodeLogEntry(entry(log.size)));
  };
  return {
    deviceId,
    log,
    grow,
    client,
    store,
    setAlter: (f: typeof alter) => {
      alter = f;
    },
  };
}

describe('LogClient', () => {
  it('verifies, pages, persists; a new client on the same store resumes from the saved checkpoint', async () => {
    const w = await world();
    await w.grow(300);
    const r = await w.client().refresh(w.deviceId);
    assert.equal(r.verdict, 'verified');
    assert.deepEqual([r.size, r.added, r.entries.length], [300, 300, 300]);
    assert.deepEqual(
      r.entries.slice(0, 3).map((e) => [e.index, e.entry.t]),
      [
        [0, 0],
        [1, 1],
        [2, 2],
      ],
    );
    assert.equal(r.published, false, 'no gossip without fetch');
    await w.grow(2);
    const again = await w.client().refresh(w.deviceId);
    assert.deepEqual(
      [again.verdict, again.added, again.size, again.entries.length],
      ['verified', 2, 302, 302],
    );
  });

  it('an altered entry served by the key holder is E_LOG_PROOF and the alarm persists (control: without the inclusion check it is shown)', async () => {
    const w = await world();
    await w.grow(3);
    assert.equal((await w.client().refresh(w.deviceId)).verdict, 'verified');
    await w.grow(2);
    const saved = structuredClone(w.store.get(w.deviceId)!);
    const forged = b64u(encodeLogEntry({ ...entry(3), code: 'E_STALE' }));
    w.setAlter((u) => ({ ...u, entries: [forged, ...(u.entries as string[]).slice(1)] }));
    const r = await w.client().refresh(w.deviceId);
    assert.equal(r.verdict, 'tampered');
    assert.equal(r.tampered?.tampered, 'E_LOG_PROOF');
    const later = w.client();
    await later.refresh(w.deviceId).catch(() => undefined);
    assert.equal(later.saved(w.deviceId)?.alarms.length, 2, 'the first alarm came back from the store');
    // Control: the same forgery with the inclusion check off is shown as a real entry.
    w.store.set(w.deviceId, saved);
    const blind = await w.client({ ...LOG_CHECKS, entries: async () => {} }).refresh(w.deviceId);
    assert.equal(blind.verdict, 'verified');
    assert.ok(blind.entries.some((e) => e.entry.k === 'alert' && e.entry.code === 'E_STALE'));
  });

  it('log/error and a failed send are unavailable, not tampered', async () => {
    const w = await world();
    w.setAlter(() => ({ t: 'log/error', code: 'E_NO_GRANT' }));
    const r = await w.client().refresh(w.deviceId);
    assert.deepEqual([r.verdict, r.error, r.alarms.length], ['unavailable', 'E_NO_GRANT', 0]);
    w.setAlter(() => {
      throw new Error('offline');
    });
    assert.equal((await w.client().refresh(w.deviceId)).verdict, 'unavailable');
  });

  it('a malformed update is tampered (attack false); a saved record that no longer verifies is dropped', async () => {
    const w = await world();
    await w.grow(1);
    w.setAlter((u) => ({ ...u, cons: 'nope' }));
    const r = await w.client().refresh(w.deviceId);
    assert.deepEqual([r.verdict, r.tampered?.tampered, r.tampered?.attack], ['tampered', 'E_SCHEMA', false]);
    w.setAlter(undefined);
    await w.client().refresh(w.deviceId);
    const s = w.store.get(w.deviceId)!;
    w.store.set(w.deviceId, { ...s, note: s.note.replace('\n1\n', '\n9\n') });
    const c = w.client();
    const again = await c.refresh(w.deviceId);
    assert.deepEqual([again.verdict, again.added], ['verified', 1], 'started again from nothing');
  });

  it('idbLogStore keeps records under log/<deviceId>', async () => {
    const m = new Map<IDBValidKey, unknown>();
    const s = idbLogStore({
      get: async <T>(_s: 'keys', k: IDBValidKey) => m.get(k) as T | undefined,
      put: async (_s: 'keys', v: unknown, k?: IDBValidKey) => void m.set(k!, v),
    });
    const rec: SavedLog = { v: 1, note: 'n', entries: [], alarms: [], verifiedBy: [] };
    await s.save('hdid_x', rec);
    assert.deepEqual([...m.keys()], ['log/hdid_x']);
    assert.deepEqual(await s.load('hdid_x'), rec);
  });
});
