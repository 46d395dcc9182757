/**
 * The device directory (store/directory.ts) over the real device-record code, with a map standing in
 * for IndexedDB: what it lists, what it refuses to pin, and the live state (presence, camera lists)
 * the screens read.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deviceIdFromKey, encodeId } from '@hearth/protocol';
import type { DeviceRecords, PairedDevice } from '../src/store/devices.js';
import { DeviceDirectory } from '../src/store/directory.js';

/** The `devices` object store (keyPath `deviceId`) as a map, with the Db's async shape. */
function records(): DeviceRecords & { rows: Map<IDBValidKey, unknown> } {
  const rows = new Map<IDBValidKey, unknown>();
  const key = (v: unknown) => (v as { deviceId: string }).deviceId;
  return {
    rows,
    get: async <T>(_s: string, k: IDBValidKey) => structuredClone(rows.get(k)) as T | undefined,
    put: async (_s: string, v: unknown) => void rows.set(key(v), structuredClone(v)),
    delete: async (_s: string, k: IDBValidKey) => void rows.delete(k),
    all: async <T>() => [...rows.values()].map((v) => structuredClone(v)) as T[],
  };
}

function device(seed: number, pairedAt: number, label = `cam ${seed}`): PairedDevice {
  const raw = new Uint8Array(32).fill(seed);
  return {
    deviceId: deviceIdFromKey(raw),
    deviceKey: encodeId('deviceKey', raw),
    role: 'owner',
    server: 'https://hearth.example',
    label,
    pairedAt,
  };
}

describe('device directory', () => {
  it('adds, lists oldest first, finds, and gives the pinned key bytes', async () => {
    const db = records();
    const dir = new DeviceDirectory(db);
    await dir.load();
    assert.equal(dir.size, 0);
    const a = device(1, 2000);
    const b = device(2, 1000);
    await dir.add(a);
    await dir.add(b);
    assert.deepEqual(dir.ids(), [b.deviceId, a.deviceId]);
    assert.equal(dir.find(a.deviceId)?.label, 'cam 1');
    assert.ok(dir.isPaired(b.deviceId));
    assert.ok(!dir.isPaired(device(3, 0).deviceId));
    assert.deepEqual(dir.pinnedKey(a.deviceId), new Uint8Array(32).fill(1));
    assert.equal(dir.pinnedKey(device(3, 0).deviceId), undefined);
    // A second directory over the same records sees the same devices.
    const again = new DeviceDirectory(db);
    await again.load();
    assert.deepEqual(again.all(), dir.all());
  });

  it('refuses to pin a key that does not hash to the device ID', async () => {
    const db = records();
    const dir = new DeviceDirectory(db);
    const a = device(1, 1);
    const wrong = { ...a, deviceKey: device(2, 1).deviceKey };
    await assert.rejects(dir.add(wrong), /does not match/);
    assert.equal(db.rows.size, 0);
    assert.equal(dir.size, 0);
  });

  it('drops a tampered record on load (a swapped key never becomes a pinned key)', async () => {
    const db = records();
    const a = device(1, 1);
    const b = device(2, 2);
    await db.put('devices', a);
    await db.put('devices', { ...b, deviceKey: device(9, 2).deviceKey });
    await db.put('devices', { ...device(3, 3), deviceId: 'hdid_nonsense' });
    const dir = new DeviceDirectory(db);
    await dir.load();
    assert.deepEqual(dir.ids(), [a.deviceId]);
    assert.equal(dir.pinnedKey(b.deviceId), undefined);
  });

  it('renames (label cut to 64 characters, stored) and forgets', async () => {
    const db = records();
    const dir = new DeviceDirectory(db);
    const a = device(1, 1);
    const b = device(2, 2);
    await dir.add(a);
    await dir.add(b);
    await dir.rename(a.deviceId, 'x'.repeat(100));
    assert.equal(dir.find(a.deviceId)?.label, 'x'.repeat(64));
    assert.equal((db.rows.get(a.deviceId) as PairedDevice).label, 'x'.repeat(64));
    await dir.rename(device(3, 3).deviceId, 'nobody'); // not paired: nothing is created
    assert.equal(db.rows.size, 2);
    await dir.forget(a.deviceId);
    assert.deepEqual(dir.ids(), [b.deviceId]);
    assert.ok(!db.rows.has(a.deviceId));
    assert.equal(dir.pinnedKey(a.deviceId), undefined);
  });

  it('keeps presence (returning what was known before) and the last camera list or refusal', async () => {
    const dir = new DeviceDirectory(records());
    const a = device(1, 1);
    await dir.add(a);
    assert.equal(dir.online(a.deviceId), undefined);
    assert.equal(dir.setOnline(a.deviceId, true), undefined);
    assert.equal(dir.setOnline(a.deviceId, false), true);
    assert.equal(dir.online(a.deviceId), false);
    assert.equal(dir.cameras(a.deviceId), undefined);
    dir.setCameras(a.deviceId, [{ name: 'porch', online: true }]);
    assert.deepEqual(dir.cameras(a.deviceId), { list: [{ name: 'porch', online: true }] });
    dir.setRefused(a.deviceId, 'E_ACL');
    assert.deepEqual(dir.cameras(a.deviceId), { refused: 'E_ACL' });
    dir.setCameras(a.deviceId, []);
    assert.deepEqual(dir.cameras(a.deviceId), { list: [] });
  });
});
