/**
 * `hearth agent reset` (S8: a factory reset erases the device's server-side data), through the real
 * command, a real server and real files: the device's sealed blobs are erased from the server's
 * blob store first, then its data directory is emptied (a new device at the next start). Refusals:
 * without --yes nothing happens (usage error); with the server unreachable, nothing local is touched
 * either, since the device key is what authorizes the server-side erase. Control: before the reset,
 * the server's data dir holds the device's blob files.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BlobClient, loadOrCreateIdentity } from '@hearth/agent';
import { blobHour, newBlobId, signBlobTicket } from '@hearth/protocol';
import { startTestHub, type TestHub } from '@hearth/server/testing';

const BIN = fileURLToPath(new URL('../bin/hearth.js', import.meta.url));

/** Run the command (asynchronously: the server under test lives in this process). */
function hearth(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, HEARTH_FROM_SOURCE: '1' } });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => {
      out += d;
    });
    c.stderr.on('data', (d) => {
      err += d;
    });
    c.on('close', (code) => resolve({ code, out, err }));
  });
}

describe('hearth agent reset', () => {
  let srv: TestHub;
  let dir: string;
  let dataDir: string;
  let deviceId: string;

  before(async () => {
    srv = await startTestHub({ serveViewer: false });
    dir = mkdtempSync(join(tmpdir(), 'hearth-reset-'));
    dataDir = join(dir, 'agent');
    const id = await loadOrCreateIdentity(dataDir);
    deviceId = id.deviceId;
    writeFileSync(join(dataDir, 'readers.json'), '{"v":1,"keys":[]}');
    // Two sealed-looking blobs on the server, uploaded the way the agent uploads them.
    const client = new BlobClient({ serverUrl: srv.url, signer: id.signer });
    for (let i = 0; i < 2; i++) {
      const bytes = new Uint8Array(1000 + i).fill(i + 1);
      const blobId = newBlobId();
      const ticket = await signBlobTicket(id.signer, {
        id: blobId,
        kind: 'clip',
        hr: blobHour(Date.now()),
        size: bytes.length,
        sha256: new Uint8Array(createHash('sha256').update(bytes).digest()),
        readers: [],
        owners: [],
        seq: 1,
      });
      await client.put(blobId, bytes, ticket);
    }
  });
  after(async () => {
    await srv?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const serverFiles = () => {
    const d = join(srv.dataDir, 'blobs', deviceId);
    return existsSync(d) ? readdirSync(d) : [];
  };

  it('without --yes it refuses (usage) and touches nothing', async () => {
    const r = await hearth(['agent', 'reset', '--server', srv.url, '--data-dir', dataDir]);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /--yes/);
    assert.ok(existsSync(join(dataDir, 'device.key')));
    assert.ok(serverFiles().length >= 2, 'control: the server holds the device’s blob files');
  });

  it('with the server unreachable it fails clearly and keeps the device (its key authorizes the erase)', async () => {
    const r = await hearth([
      'agent',
      'reset',
      '--server',
      'http://127.0.0.1:9',
      '--data-dir',
      dataDir,
      '--yes',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.err, /^hearth: E_[A-Z_]+: /m);
    assert.ok(existsSync(join(dataDir, 'device.key')), 'nothing local was removed');
    assert.ok(serverFiles().length >= 2);
  });

  it("erases the device's blobs on the server, then its data directory", async () => {
    const r = await hearth(['agent', 'reset', '--server', srv.url, '--data-dir', dataDir, '--yes']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`Reset device ${deviceId}: its recordings on the server are erased`));
    assert.deepEqual(serverFiles(), []);
    assert.deepEqual(readdirSync(dataDir), []);
    // A second reset has nothing to reset.
    const again = await hearth(['agent', 'reset', '--server', srv.url, '--data-dir', dataDir, '--yes']);
    assert.equal(again.code, 1);
    assert.match(again.err, /E_CONFIG: no device identity/);
  });
});
