/**
 * The server's data directory files follow @hearth/node's rules (the agent's): an existing
 * server.key of the older format keeps the same identity, and loose permissions are refused,
 * never quietly chmod-ed.
 */
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { b64u, encodeId, WebCryptoSigner } from '@hearth/protocol';
import { tempDir, testServer } from './helpers.js';

describe('server data files', () => {
  it('a server.key of the older format (base64url seed) keeps its identity and is rewritten as PKCS#8 PEM', async () => {
    const tmp = tempDir();
    try {
      const seed = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
      const want = encodeId('serverKey', (await WebCryptoSigner.fromSeed(seed)).publicKey);
      const path = join(tmp.dir, 'server.key');
      writeFileSync(path, `${b64u(seed)}\n`, { mode: 0o600 });
      const a = await testServer(tmp.dir);
      await a.close();
      assert.equal(a.serverKey, want, 'the same server key as before the upgrade');
      assert.match(readFileSync(path, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const b = await testServer(tmp.dir);
      await b.close();
      assert.equal(b.serverKey, want);
    } finally {
      tmp.rm();
    }
  });

  for (const [file, relay] of [
    ['server.key', false],
    ['turn.secret', true],
    ['vapid.key', false],
  ] as const) {
    for (const m of [0o644, 0o666]) {
      it(`${file} with mode ${m.toString(8)} stops the start with an error naming it and the fix`, async () => {
        const tmp = tempDir();
        try {
          const first = await testServer(tmp.dir, relay ? { relay: { udpPort: 0, tcpPort: 0 } } : {});
          await first.close();
          const path = join(tmp.dir, file);
          chmodSync(path, m);
          await assert.rejects(
            testServer(tmp.dir, relay ? { relay: { udpPort: 0, tcpPort: 0 } } : {}),
            (e: Error & { code?: string }) => {
              assert.equal(e.code, 'E_CONFIG');
              assert.ok(e.message.includes(`${path} has mode 0${m.toString(8)}`), e.message);
              assert.ok(e.message.includes(`chmod 600 ${path}`), e.message);
              return true;
            },
          );
          assert.equal(statSync(path).mode & 0o777, m, 'left as it was, not chmod-ed');
        } finally {
          tmp.rm();
        }
      });
    }
  }
});
