// The device's access log on disk (device/access-log.ts): append, reopen, torn tails cut on open,
// the hash file rebuilt, paging under the message limit; every answer checked with the protocol's
// LogMonitor, as an owner's viewer checks it.
import assert from 'node:assert/strict';
import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  decodeLogUpdateWire,
  deviceIdFromKey,
  type LogEntry,
  LogMonitor,
  MAX_MESSAGE_BYTES,
  WebCryptoSigner,
} from '@hearth/protocol';
import { AccessLog, accessLogDir } from '../src/device/access-log.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'hearth-alog-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const entry = (t: number, camera = 'demo'): LogEntry => ({
  v: 1,
  t,
  k: 'live/start',
  viewer: 'a'.repeat(32),
  camera,
  sid: 'b'.repeat(32),
  path: 'direct',
});

async function world() {
  const signer = await WebCryptoSigner.generate();
  const deviceId = deviceIdFromKey(signer.publicKey);
  const dataDir = tmp();
  const open = () => AccessLog.open({ dataDir, deviceId, signer });
  const monitor = () => {
    const m = new LogMonitor();
    m.addDevice(deviceId, signer.publicKey);
    return m;
  };
  const files = {
    entries: join(accessLogDir(dataDir), 'entries'),
    hashes: join(accessLogDir(dataDir), 'hashes'),
  };
  return { signer, deviceId, dataDir, open, monitor, files };
}

/** Read the whole log as a viewer does, page by page, through the monitor. */
async function readAll(log: AccessLog, m: LogMonitor, deviceId: string, max?: number) {
  const out: LogEntry[] = [];
  for (;;) {
    const from = m.checkpoint(deviceId)?.size ?? 0;
    const v = await m.update(deviceId, decodeLogUpdateWire(await log.update(from, max)));
    assert.ok(v.ok, JSON.stringify(v));
    out.push(...v.entries);
    if (v.size === from) return out;
  }
}

describe('AccessLog', () => {
  it('appends in call order, survives a reopen, and what it serves verifies', async () => {
    const w = await world();
    const log = await w.open();
    // Entries given as promises keep their place in call order, whichever resolves first.
    const idx = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        log.append(new Promise<LogEntry>((r) => setTimeout(() => r(entry(i)), (20 - i) % 5))),
      ),
    );
    assert.deepEqual(idx, [...Array(20).keys()]);
    const cp = await log.checkpoint();
    await log.close();
    assert.equal(statSync(w.files.entries).mode & 0o777, 0o600);
    assert.equal(statSync(accessLogDir(w.dataDir)).mode & 0o777, 0o700);
    const again = await w.open();
    assert.equal(again.size, 20);
    assert.equal(again.truncated, 0);
    assert.equal((await again.checkpoint()).split('\n\n')[0], cp.split('\n\n')[0]);
    const m = w.monitor();
    const got = await readAll(again, m, w.deviceId, 7);
    assert.deepEqual(
      got.map((e) => e.t),
      [...Array(20).keys()],
    );
    assert.equal(await again.append(entry(20)), 20);
    assert.deepEqual(
      (await readAll(again, m, w.deviceId)).map((e) => e.t),
      [20],
    );
    await again.close();
  });

  it('append never throws: an invalid entry resolves to -1 and is reported (control: a valid one is appended)', async () => {
    const w = await world();
    const errors: string[] = [];
    const log = await AccessLog.open({
      dataDir: w.dataDir,
      deviceId: w.deviceId,
      signer: w.signer,
      onError: (e) => errors.push(e.message),
    });
    assert.equal(await log.append({ ...entry(1), camera: 'NOT A CAMERA' } as LogEntry), -1);
    assert.equal(await log.append(Promise.reject(new Error('no hash'))), -1);
    assert.equal(errors.length, 2);
    assert.equal(await log.append(entry(2)), 0);
    assert.equal(log.size, 1);
    await log.close();
    assert.equal(await log.append(entry(3)), -1, 'closed: dropped quietly');
  });

  for (const [name, tail] of [
    ['a record cut inside its data', (rec: Buffer) => rec.subarray(0, rec.length - 5)],
    ['a length prefix cut short', (rec: Buffer) => rec.subarray(0, 2)],
    [
      'a length with zeros after it (a power cut)',
      (rec: Buffer) => Buffer.concat([rec.subarray(0, 4), Buffer.alloc(rec.length - 4)]),
    ],
    ['a length out of range', () => Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3])],
  ] as const) {
    it(`a torn tail (${name}) is cut on open; the log goes on and verifies (control: the intact file keeps every entry)`, async () => {
      const w = await world();
      const log = await w.open();
      for (let i = 0; i < 3; i++) await log.append(entry(i));
      const m = w.monitor();
      await readAll(log, m, w.deviceId);
      await log.close();
      const intact = readFileSync(w.files.entries);
      // Control: reopening the intact file keeps every entry and cuts nothing.
      const control = await w.open();
      assert.deepEqual([control.size, control.truncated], [3, 0]);
      await control.close();
      // The crash: the next record only partly on disk.
      const rec = Buffer.from(intact.subarray(intact.length - intact.length / 3));
      appendFileSync(w.files.entries, tail(rec));
      const reopened = await w.open();
      assert.equal(reopened.size, 3);
      assert.ok(reopened.truncated > 0);
      assert.deepEqual(readFileSync(w.files.entries), intact, 'the file is back to its last whole record');
      assert.equal(await reopened.append(entry(3)), 3);
      assert.deepEqual(
        (await readAll(reopened, m, w.deviceId)).map((e) => e.t),
        [3],
        'the viewer that verified 3 entries accepts the fourth: no trace of the torn one',
      );
      await reopened.close();
    });
  }

  it('a hash file behind the entries (a crash between the two writes) or damaged is rebuilt (control: the same checkpoint as before)', async () => {
    const w = await world();
    const log = await w.open();
    for (let i = 0; i < 5; i++) await log.append(entry(i));
    const cp = (await log.checkpoint()).split('\n\n')[0];
    await log.close();
    truncateSync(w.files.hashes, 32 * 3);
    const a = await w.open();
    assert.equal((await a.checkpoint()).split('\n\n')[0], cp);
    await a.close();
    const h = readFileSync(w.files.hashes);
    h[0]! ^= 1;
    writeFileSync(w.files.hashes, h);
    const b = await w.open();
    assert.equal((await b.checkpoint()).split('\n\n')[0], cp);
    assert.equal(readFileSync(w.files.hashes).length, 32 * 5);
    await b.close();
  });

  it('pages stay under the message limit with the largest entries, and every page verifies', async () => {
    const w = await world();
    const log = await w.open();
    const big = (i: number): LogEntry => ({
      v: 1,
      t: i,
      k: 'clip/sealed',
      camera: 'demo',
      clip: 'c'.repeat(32),
      epoch: i,
      recipients: Array.from({ length: 32 }, (_, j) => j.toString(16).padStart(32, '0')),
    });
    for (let i = 0; i < 60; i++) await log.append(big(i));
    const u = await log.update(0, 256);
    assert.ok(JSON.stringify(u).length <= MAX_MESSAGE_BYTES);
    assert.ok(u.entries.length > 0 && u.entries.length < 60, `a page of ${u.entries.length}`);
    const m = w.monitor();
    const got = await readAll(log, m, w.deviceId, 256);
    assert.deepEqual(
      got.map((e) => e.t),
      [...Array(60).keys()],
    );
    await log.close();
  });

  it('a viewer that verified more than the device has gets the checkpoint of now (its monitor sees the rollback)', async () => {
    const w = await world();
    const log = await w.open();
    for (let i = 0; i < 4; i++) await log.append(entry(i));
    const u = await log.update(9);
    assert.deepEqual([u.start, u.entries.length, u.cons.length], [4, 0, 0]);
    assert.match(u.cp, /\n4\n/);
    await log.close();
  });
});
