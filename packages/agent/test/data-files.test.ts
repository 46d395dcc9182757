/**
 * The agent's device key in the one key file format of @hearth/node: a device.key written by an
 * older agent (32 raw seed bytes) keeps the same device ID, and a key others can read is refused.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { deviceIdFromKey, WebCryptoSigner } from '@hearth/protocol';
import { loadOrCreateIdentity, startAgent } from '../src/index.js';

const temp = () => mkdtempSync(join(tmpdir(), 'hearth-agent-files-'));

describe('device.key', () => {
  it('an older raw-seed device.key keeps its device ID and is rewritten as PKCS#8 PEM', async () => {
    const dir = temp();
    try {
      const seed = Uint8Array.from({ length: 32 }, (_, i) => 200 - i);
      const want = deviceIdFromKey((await WebCryptoSigner.fromSeed(seed)).publicKey);
      const path = join(dir, 'device.key');
      writeFileSync(path, seed, { mode: 0o600 });
      const a = await loadOrCreateIdentity(dir);
      assert.equal(a.deviceId, want);
      assert.equal(a.created, false);
      assert.equal(a.migratedFrom, 'legacy-raw-seed');
      assert.match(readFileSync(path, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
      const b = await loadOrCreateIdentity(dir);
      assert.equal(b.deviceId, want);
      assert.equal(b.migratedFrom, undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a device.key with mode 0644 is refused with the file and the fix, and left as it was', async () => {
    const dir = temp();
    try {
      await loadOrCreateIdentity(dir);
      const path = join(dir, 'device.key');
      chmodSync(path, 0o644);
      await assert.rejects(loadOrCreateIdentity(dir), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'E_CONFIG');
        assert.ok(e.message.includes(`${path} has mode 0644`), e.message);
        assert.ok(e.message.includes(`chmod 600 ${path}`), e.message);
        return true;
      });
      assert.equal(statSync(path).mode & 0o777, 0o644);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('--pin-cert configuration', () => {
  it('a malformed pin, or a pin with an http:// server, stops startAgent with E_CONFIG (not a retry loop)', async () => {
    const dir = temp();
    const media = { cameras: () => [], createViewerSession: () => Promise.reject(new Error('unused')) };
    try {
      for (const [serverUrl, pin, why] of [
        ['https://127.0.0.1:1', 'AB:CD', /64 hex digits/],
        ['http://127.0.0.1:1', 'ab'.repeat(32), /needs an https:\/\/ server URL/],
      ] as const) {
        await assert.rejects(
          startAgent({ dataDir: dir, serverUrl, media, pinnedCertSha256: pin }),
          (e: Error & { code?: string }) => e.code === 'E_CONFIG' && why.test(e.message),
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
