// The access-log witness gossip (log-gossip.ts) through the real server on 127.0.0.1 with real
// keys: who may publish and read, the limits, and fuzzed bodies. Each refusal has a control: the
// honest request passes, or the defence turned off (a test-only switch) lets the attack through.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  addCosignature,
  blobAuthorization,
  cosign,
  deviceIdFromKey,
  encodeId,
  encodeLogEntry,
  logCosignedPath,
  logOrigin,
  MAX_COSIGNED_PER_DEVICE,
  MemoryLog,
  systemEnv,
  utf8,
  WebCryptoSigner,
} from '@hearth/protocol';
import fc from 'fast-check';
import { type HearthServer, type LogGossipTestHooks, startServer } from '../src/index.js';
import { tempDir } from './helpers.js';

async function server(hooks: LogGossipTestHooks = {}) {
  const tmp = tempDir();
  const srv = await startServer(
    {
      dataDir: tmp.dir,
      host: '127.0.0.1',
      port: 0,
      tls: { mode: 'off' },
      relay: { enabled: false },
      serveViewer: false,
    },
    { logGossipTestHooks: hooks },
  );
  return {
    srv,
    close: async () => {
      await srv.close();
      tmp.rm();
    },
  };
}

async function device() {
  const signer = await WebCryptoSigner.generate();
  const deviceId = deviceIdFromKey(signer.publicKey);
  const log = new MemoryLog(logOrigin(deviceId), signer);
  const grow = async (n: number) => {
    for (let i = 0; i < n; i++)
      await log.append(encodeLogEntry({ v: 1, t: log.size, k: 'pair/attempt', result: 'ok' }));
  };
  await grow(3);
  return { signer, deviceId, log, grow, dk: encodeId('deviceKey', signer.publicKey) };
}

type Dev = Awaited<ReturnType<typeof device>>;

async function cosigned(d: Dev, who: WebCryptoSigner, size = d.log.size, name?: string) {
  const note = await d.log.signedCheckpoint(size);
  const cp = await d.log.checkpoint(size);
  return addCosignature(note, await cosign(cp, name ?? encodeId('userKey', who.publicKey), who, 1));
}

async function call(
  srv: HearthServer,
  who: WebCryptoSigner,
  method: 'GET' | 'PUT',
  path: string,
  body?: string,
  authPath = path,
) {
  const bytes = body === undefined ? undefined : utf8(body);
  const authorization = await blobAuthorization(who, 'user', method, authPath, bytes, systemEnv);
  const r = await fetch(`${srv.url}${path}`, {
    method,
    headers: { authorization },
    ...(body !== undefined ? { body } : {}),
  });
  const text = await r.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { code?: string }).code;
  } catch {}
  return { status: r.status, text, code };
}

const put = (srv: HearthServer, who: WebCryptoSigner, d: Dev, note: string, key?: string, dk?: string) =>
  call(
    srv,
    who,
    'PUT',
    logCosignedPath(d.deviceId),
    JSON.stringify({ note, key: key ?? encodeId('userKey', who.publicKey), dk: dk ?? d.dk }),
  );

describe('log gossip: PUT/GET /v1/log/<deviceId>/cosigned', () => {
  let s: Awaited<ReturnType<typeof server>>;
  before(async () => {
    s = await server();
  });
  after(async () => {
    await s.close();
  });

  it('an owner publishes its cosigned checkpoint and reads the others; a stranger who published nothing cannot read', async () => {
    const d = await device();
    const a = await WebCryptoSigner.generate();
    const b = await WebCryptoSigner.generate();
    const stranger = await WebCryptoSigner.generate();
    const path = logCosignedPath(d.deviceId);
    assert.equal((await call(s.srv, a, 'GET', path)).code, 'E_NO_GRANT');
    assert.equal((await put(s.srv, a, d, await cosigned(d, a))).status, 204);
    assert.equal((await put(s.srv, b, d, await cosigned(d, b))).status, 204);
    const r = await call(s.srv, a, 'GET', path);
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.text) as { list: unknown[] }).list.length, 2);
    const denied = await call(s.srv, stranger, 'GET', path);
    assert.deepEqual([denied.status, denied.code], [403, 'E_NO_GRANT']);
  });

  it('control: with the read check off, a stranger reads the owners’ notes', async () => {
    const u = await server({ unguarded: { read: true } });
    try {
      const d = await device();
      const a = await WebCryptoSigner.generate();
      await put(u.srv, a, d, await cosigned(d, a));
      const r = await call(u.srv, await WebCryptoSigner.generate(), 'GET', logCosignedPath(d.deviceId));
      assert.equal(r.status, 200);
    } finally {
      await u.close();
    }
  });

  it('refuses a note in another key’s name, without its own cosignature, of another device, or with a forged device signature (control: off, junk is kept)', async () => {
    const d = await device();
    const other = await device();
    const a = await WebCryptoSigner.generate();
    const b = await WebCryptoSigner.generate();
    // B publishes a note cosigned by A, in A's name: the token is B's.
    assert.equal(
      (await put(s.srv, b, d, await cosigned(d, a), encodeId('userKey', a.publicKey))).code,
      'E_BAD_BINDING',
    );
    // B publishes A's cosigned note under its own key: no cosignature of B on it.
    assert.equal((await put(s.srv, b, d, await cosigned(d, a))).code, 'E_WRONG_SIGNER');
    // A checkpoint of another device, with that device's key.
    assert.equal(
      (await put(s.srv, a, d, await cosigned(other, a), undefined, other.dk)).code,
      'E_BAD_BINDING',
    );
    // Signed by a key that is not the device's.
    const fake = await device();
    const forged = await cosigned(
      { ...fake, deviceId: d.deviceId, log: new MemoryLog(logOrigin(d.deviceId), fake.signer) } as Dev,
      a,
      0,
    );
    assert.equal((await put(s.srv, a, d, forged)).code, 'E_WRONG_SIGNER');
    assert.equal(
      s.srv && (await put(s.srv, a, d, await cosigned(d, a))).status,
      204,
      'control: the honest note',
    );
    const u = await server({ unguarded: { notes: true } });
    try {
      assert.equal((await put(u.srv, b, d, 'junk')).status, 204, 'control: without the checks junk is kept');
    } finally {
      await u.close();
    }
  });

  it('keeps the latest per key, refuses an older tree, at most 16 keys per device, 4 KiB a note', async () => {
    const d = await device();
    const a = await WebCryptoSigner.generate();
    const path = logCosignedPath(d.deviceId);
    assert.equal((await put(s.srv, a, d, await cosigned(d, a, 3))).status, 204);
    await d.grow(2);
    assert.equal((await put(s.srv, a, d, await cosigned(d, a, 5))).status, 204);
    assert.equal((await put(s.srv, a, d, await cosigned(d, a, 3))).code, 'E_BAD_STATE');
    const list = (JSON.parse((await call(s.srv, a, 'GET', path)).text) as { list: { note: string }[] }).list;
    assert.equal(list.length, 1);
    assert.match(list[0]!.note, /\n5\n/);
    const keys = await Promise.all(
      Array.from({ length: MAX_COSIGNED_PER_DEVICE + 2 }, () => WebCryptoSigner.generate()),
    );
    for (const k of keys) assert.equal((await put(s.srv, k, d, await cosigned(d, k))).status, 204);
    const last = keys.at(-1)!;
    const after = (JSON.parse((await call(s.srv, last, 'GET', path)).text) as { list: unknown[] }).list;
    assert.equal(after.length, MAX_COSIGNED_PER_DEVICE);
    const big = await put(s.srv, a, d, `${await cosigned(d, a)}${'x'.repeat(3900)}`);
    assert.equal(big.code, 'E_SCHEMA', 'a note over 4 KiB');
    const huge = await call(s.srv, a, 'PUT', path, 'x'.repeat(10_000));
    assert.deepEqual([huge.status, huge.code], [413, 'E_TOO_LARGE']);
  });

  it('refuses a token for another path, a body the token does not sign, a replayed request, a device key, no token', async () => {
    const d = await device();
    const a = await WebCryptoSigner.generate();
    const path = logCosignedPath(d.deviceId);
    const note = await cosigned(d, a);
    const body = JSON.stringify({ note, key: encodeId('userKey', a.publicKey), dk: d.dk });
    const other = logCosignedPath((await device()).deviceId);
    assert.equal((await call(s.srv, a, 'PUT', path, body, other)).code, 'E_BAD_BINDING');
    const auth = await blobAuthorization(a, 'user', 'PUT', path, utf8(body), systemEnv);
    const send = (b: string) =>
      fetch(`${s.srv.url}${path}`, { method: 'PUT', headers: { authorization: auth }, body: b });
    assert.equal((await send(`${body} `)).status, 401);
    assert.equal((await send(body)).status, 204, 'control: the signed body');
    const replay = await send(body);
    assert.equal(((await replay.json()) as { code: string }).code, 'E_REPLAY');
    const dauth = await blobAuthorization(d.signer, 'device', 'GET', path, undefined, systemEnv);
    const r = await fetch(`${s.srv.url}${path}`, { headers: { authorization: dauth } });
    assert.equal(((await r.json()) as { code: string }).code, 'E_SCOPE');
    const none = await fetch(`${s.srv.url}${path}`);
    assert.equal(((await none.json()) as { code: string }).code, 'E_AUTH');
    const bad = await fetch(`${s.srv.url}/v1/log/not-a-device/cosigned`);
    assert.equal(((await bad.json()) as { code: string }).code, 'E_BAD_ID');
    assert.equal((await fetch(`${s.srv.url}/v1/log/${d.deviceId}/other`)).status, 404);
  });

  it("the device's erase (factory reset) takes its gossip too (S8); control: before it, the note is served", async () => {
    const d = await device();
    const a = await WebCryptoSigner.generate();
    assert.equal((await put(s.srv, a, d, await cosigned(d, a))).status, 204);
    const path = logCosignedPath(d.deviceId);
    const before = await call(s.srv, a, 'GET', path);
    assert.equal(before.status, 200);
    assert.match(before.text, /hearth\//, 'control: the cosigned note is kept');
    const erase = `/v1/blobs/${d.deviceId}`;
    const auth = await blobAuthorization(d.signer, 'device', 'DELETE', erase, undefined, systemEnv);
    assert.equal(
      (await fetch(`${s.srv.url}${erase}`, { method: 'DELETE', headers: { authorization: auth } })).status,
      204,
    );
    const after = await call(s.srv, a, 'GET', path);
    assert.doesNotMatch(after.text, /hearth\//, `nothing of the device is served: ${after.text}`);
  });

  it('limits requests per address (control: under the burst they are answered)', async () => {
    const l = await server({ perAddress: { perSecond: 0.001, burst: 3 } });
    try {
      const a = await WebCryptoSigner.generate();
      const path = logCosignedPath((await device()).deviceId);
      const codes: (string | undefined)[] = [];
      for (let i = 0; i < 5; i++) codes.push((await call(l.srv, a, 'GET', path)).code);
      assert.deepEqual(codes, ['E_NO_GRANT', 'E_NO_GRANT', 'E_NO_GRANT', 'E_RATE_LIMITED', 'E_RATE_LIMITED']);
    } finally {
      await l.close();
    }
  });

  it('fuzz: hostile bodies get a registered 4xx, never a 5xx, and nothing is stored', async () => {
    const d = await device();
    const a = await WebCryptoSigner.generate();
    const valid = JSON.stringify({
      note: await cosigned(d, a),
      key: encodeId('userKey', a.publicKey),
      dk: d.dk,
    });
    const f = await server({ perAddress: { perSecond: 1000, burst: 1000 } });
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.string({ maxLength: 300 }),
            fc.json({ maxDepth: 3 }),
            fc
              .tuple(fc.nat(valid.length), fc.nat(255))
              .map(([i, c]) => valid.slice(0, i) + String.fromCharCode(c) + valid.slice(i + 1)),
          ),
          async (body) => {
            if (body === valid) return;
            const r = await call(f.srv, a, 'PUT', logCosignedPath(d.deviceId), body);
            assert.ok(r.status >= 400 && r.status < 500, `${r.status} ${r.text}`);
            assert.match(r.code ?? '', /^E_[A-Z_]+$/);
          },
        ),
        { numRuns: 150 },
      );
      // Nothing was kept: a GET by the same key is still refused.
      assert.equal((await call(f.srv, a, 'GET', logCosignedPath(d.deviceId))).code, 'E_NO_GRANT');
    } finally {
      await f.close();
    }
  });
});
