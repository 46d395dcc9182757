import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { b64u, ConfigError, WebCryptoSigner } from '@hearth/protocol';
import fc from 'fast-check';
import { decodeKeyFile, encodeKeyFile, loadOrCreateKey } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'hearth-node-keys-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const keyPath = () => join(root, `d${n++}`, 'device.key');
const seedOf = (i: number) => Uint8Array.from({ length: 32 }, (_, j) => (i * 31 + j * 7) & 0xff);
/** The public key Node's own crypto reads from a key file (an independent PKCS#8 parser). */
const nodePublicKey = (pem: string) =>
  new Uint8Array(
    createPublicKey(createPrivateKey(pem)).export({ format: 'der', type: 'spki' }).subarray(-32),
  );

describe('key file format (PKCS#8 PEM)', () => {
  it('first start creates a 0600 PEM key that Node crypto reads as the same Ed25519 key; it reloads', async () => {
    const p = keyPath();
    const a = await loadOrCreateKey(p);
    assert.equal(a.created, true);
    assert.equal(statSync(p).mode & 0o777, 0o600);
    const pem = readFileSync(p, 'utf8');
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=]{64}\n-----END PRIVATE KEY-----\n$/);
    assert.equal(createPrivateKey(pem).asymmetricKeyType, 'ed25519');
    assert.deepEqual(nodePublicKey(pem), a.signer.publicKey);
    const b = await loadOrCreateKey(p);
    assert.equal(b.created, false);
    assert.equal(b.migratedFrom, undefined);
    assert.deepEqual(b.signer.publicKey, a.signer.publicKey);
    assert.equal(readFileSync(p, 'utf8'), pem, 'unchanged');
  });

  it('reads a PKCS#8 PEM Ed25519 key made by other tooling (Node crypto, as openssl genpkey writes)', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const p = keyPath();
    mkdirSync(dirname(p), { mode: 0o700 });
    writeFileSync(p, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const k = await loadOrCreateKey(p);
    assert.equal(k.created, false);
    assert.deepEqual(
      k.signer.publicKey,
      new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)),
    );
  });

  it('encode/decode round-trip for any seed (fuzz)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
        const d = decodeKeyFile(Buffer.from(encodeKeyFile(seed)), 'k');
        assert.equal(d.format, 'pkcs8-pem');
        assert.deepEqual(d.seed, seed);
      }),
    );
  });

  it('decoding hostile bytes raises E_CONFIG naming the file, or returns a 32-byte seed (fuzz)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc
            .string({ maxLength: 200 })
            .map((s) => Buffer.from(`-----BEGIN PRIVATE KEY-----\n${s}\n-----END PRIVATE KEY-----\n`)),
          fc
            .uint8Array({ maxLength: 60 })
            .map((b) =>
              Buffer.from(
                `-----BEGIN PRIVATE KEY-----\n${Buffer.from(b).toString('base64')}\n-----END PRIVATE KEY-----\n`,
              ),
            ),
        ),
        (bytes) => {
          try {
            assert.equal(decodeKeyFile(bytes, '/x/key').seed.length, 32);
          } catch (e) {
            assert.ok(e instanceof ConfigError, String(e));
            assert.ok((e as Error).message.includes('/x/key'));
          }
        },
      ),
    );
  });
});

describe('older key files keep loading and are migrated', () => {
  for (const [format, encode] of [
    ['legacy-raw-seed', (s: Uint8Array) => Buffer.from(s)], // the agent's device.key (32 raw bytes)
    ['legacy-b64u-seed', (s: Uint8Array) => Buffer.from(`${b64u(s)}\n`)], // the server's server.key
  ] as const) {
    it(`${format}: same identity, rewritten as PKCS#8 PEM (0600), then loads as current`, async () => {
      const seed = seedOf(format.length);
      const want = (await WebCryptoSigner.fromSeed(seed)).publicKey;
      const p = keyPath();
      const first = await loadOrCreateKey(p); // makes the directory
      assert.equal(first.created, true);
      writeFileSync(p, encode(seed), { mode: 0o600 });
      const a = await loadOrCreateKey(p);
      assert.equal(a.created, false);
      assert.equal(a.migratedFrom, format);
      assert.deepEqual(a.signer.publicKey, want, 'the same identity');
      const pem = readFileSync(p, 'utf8');
      assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
      assert.deepEqual(nodePublicKey(pem), want);
      assert.equal(statSync(p).mode & 0o777, 0o600);
      const b = await loadOrCreateKey(p);
      assert.equal(b.migratedFrom, undefined);
      assert.deepEqual(b.signer.publicKey, want);
    });
  }
});

describe('a wrong key file stops the start with a clear error and is left alone', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  for (const [what, content, why] of [
    ['text', 'not a key at all\n', /in no known format/],
    ['31 bytes', Buffer.alloc(31, 1), /31 bytes in no known format/],
    ['33 bytes', Buffer.alloc(33, 1), /33 bytes in no known format/],
    [
      'an EC P-256 PKCS#8 key',
      ec.export({ format: 'pem', type: 'pkcs8' }),
      /PKCS#8 key that is not an Ed25519 key/,
    ],
    [
      'a SEC1 "EC PRIVATE KEY"',
      ec.export({ format: 'pem', type: 'sec1' }),
      /PEM "EC PRIVATE KEY", not a PKCS#8/,
    ],
    ['a cut PEM', '-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n', /damaged PEM block/],
    ['a too-large file', Buffer.alloc(5000, 0x41), /too large|more than/],
  ] as const) {
    it(what, async () => {
      const p = keyPath();
      await loadOrCreateKey(p);
      writeFileSync(p, content, { mode: 0o600 });
      await assert.rejects(loadOrCreateKey(p), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'E_CONFIG');
        assert.ok(e.message.includes(p), `names the file: ${e.message}`);
        assert.match(e.message, why);
        assert.match(e.message, /delete it to create a new identity/);
        return true;
      });
      assert.deepEqual(readFileSync(p), Buffer.from(content), 'left as it was');
    });
  }

  it('a key file others can read is refused, not loaded and not chmod-ed', async () => {
    const p = keyPath();
    await loadOrCreateKey(p);
    chmodSync(p, 0o644);
    await assert.rejects(loadOrCreateKey(p), (e: Error) => {
      assert.ok(e.message.includes(`${p} has mode 0644`), e.message);
      assert.ok(e.message.includes(`chmod 600 ${p}`), e.message);
      return true;
    });
    assert.equal(statSync(p).mode & 0o777, 0o644);
  });
});
