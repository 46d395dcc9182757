/** The rendezvous against real `ws` clients with real keys, on 127.0.0.1. */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createAuth, encodeId, systemEnv } from '@hearth/protocol';
import { SHELL_FILES } from '@hearth/viewer';
import WebSocket from 'ws';
import { TestTurnClient } from '../../relay/test/helpers/turn-client.js';
import { CLOSE } from '../src/index.js';
import { Client, connect, device, relayGrant, sleep, tempDir, testServer, viewer } from './helpers.js';

describe('rendezvous', () => {
  const tmp = tempDir();
  let srv: Awaited<ReturnType<typeof testServer>>;
  before(async () => {
    srv = await testServer(tmp.dir);
  });
  after(async () => {
    await srv.close();
    tmp.rm();
  });

  it('hello carries the server key and a fresh challenge per connection', async () => {
    const a = new Client(srv.wsUrl);
    const b = new Client(srv.wsUrl);
    const [ha, hb] = await Promise.all([a.next('hello'), b.next('hello')]);
    assert.equal(ha.srv, srv.serverKey);
    assert.match(srv.serverKey, /^hsk_/);
    assert.notEqual(ha.ch, hb.ch);
    a.close();
    b.close();
  });

  it('authenticates a device and a viewer by key; ready carries their IDs', async () => {
    const d = await device();
    const v = await viewer();
    const cd = await connect(srv.wsUrl, d);
    const cv = await connect(srv.wsUrl, v);
    assert.equal(cd.ready.id, d.id);
    assert.equal(cv.ready.id, v.id);
    assert.deepEqual(cd.ready.ice, []);
    assert.equal(cd.ready.impostors, undefined);
    cd.c.close();
    cv.c.close();
  });

  it('an auth for another connection is refused with 4002 by the challenge alone (no auth replay cache, review R2)', async () => {
    const d = await device();
    const a = new Client(srv.wsUrl);
    const ha = await a.next('hello');
    const env = await createAuth(d.signer, 'device', ha as { srv: string; ch: string }, systemEnv);
    // The same proof, reused on two other connections: each has its own challenge, so both fail.
    for (let i = 0; i < 2; i++) {
      const b = new Client(srv.wsUrl);
      await b.next('hello');
      b.send({ t: 'auth', env });
      assert.match(String((await b.next('error')).msg), /E_BAD_BINDING/);
      assert.equal((await b.closed).code, CLOSE.AUTH_FAILED);
    }
    // No shared replay cache spent its nonce (a cache that a flood could fill and block every
    // login with): on its own connection, the proof is admitted.
    a.send({ t: 'auth', env });
    assert.equal((await a.next('ready')).id, d.id);
    a.close();
  });

  it("a wrong-key proof for a device ID is refused, counted, and reported on the device's next ready", async () => {
    const victim = await device();
    const attacker = await device();
    for (let i = 0; i < 2; i++) {
      const c = new Client(srv.wsUrl);
      const hello = await c.next('hello');
      const mine = await createAuth(
        attacker.signer,
        'device',
        hello as { srv: string; ch: string },
        systemEnv,
      );
      const forged = { ...mine, k: encodeId('deviceKey', victim.signer.publicKey) };
      c.send({ t: 'auth', env: forged });
      const err = await c.next('error');
      assert.match(String(err.msg), /E_BAD_SIGNATURE/);
      assert.equal((await c.closed).code, CLOSE.AUTH_FAILED);
    }
    const first = await connect(srv.wsUrl, victim);
    assert.equal(first.ready.id, victim.id);
    assert.equal(first.ready.impostors, 2);
    first.c.close();
    await first.c.closed;
    const again = await connect(srv.wsUrl, victim);
    assert.equal(again.ready.impostors, undefined, 'the counter resets once reported');

    // While the device is connected, an attempt is reported live.
    const c = new Client(srv.wsUrl);
    const hello = await c.next('hello');
    const mine = await createAuth(attacker.signer, 'device', hello as { srv: string; ch: string }, systemEnv);
    c.send({ t: 'auth', env: { ...mine, k: encodeId('deviceKey', victim.signer.publicKey) } });
    const alert = await again.c.next('alert');
    assert.deepEqual(alert, { t: 'alert', code: 'E_IMPOSTOR', count: 1 });
    await c.closed;
    again.c.close();
  });

  it('a second valid connection for the same ID replaces the first (4003), without an offline blip', async () => {
    const d = await device();
    const v = await viewer();
    const w = await connect(srv.wsUrl, v);
    const one = await connect(srv.wsUrl, d);
    one.c.send({ t: 'allow', k: [v.id] });
    await sleep(50);
    w.c.send({ t: 'watch', d: [d.id] });
    assert.equal((await w.c.next('presence')).online, true);
    const two = await connect(srv.wsUrl, d);
    assert.equal((await one.c.closed).code, CLOSE.REPLACED);
    // Messages now reach the new connection.
    w.c.send({ t: 'send', to: d.id, m: { hi: 1 } });
    assert.deepEqual((await two.c.next('recv')).m, { hi: 1 });
    await sleep(50);
    assert.equal(w.c.frames.filter((f) => f.t === 'presence' && f.online === false).length, 0);
    two.c.close();
    assert.equal((await w.c.next('presence', (f) => f.online === false)).d, d.id);
    w.c.close();
  });

  it('routes by ID with `from` set from the authenticated connection (a forged from is impossible)', async () => {
    const d = await device();
    const v = await viewer();
    const other = await viewer();
    const cd = await connect(srv.wsUrl, d);
    const cv = await connect(srv.wsUrl, v);
    cv.c.send({ t: 'send', to: d.id, m: { t: 'session/offer', x: 1 }, ref: 'r1' });
    const got = await cd.c.next('recv');
    assert.deepEqual(got, { t: 'recv', from: v.id, m: { t: 'session/offer', x: 1 } });
    // A `from` field in a send frame is refused by the schema, not forwarded.
    cv.c.send({ t: 'send', to: d.id, from: other.id, m: {} });
    assert.equal((await cv.c.next('error')).code, 'E_SCHEMA');
    // Inside m it is only payload: the envelope's from is still the sender.
    cv.c.send({ t: 'send', to: d.id, m: { from: other.id } });
    assert.equal((await cd.c.next('recv')).from, v.id);
    // The device answers.
    cd.c.send({ t: 'send', to: v.id, m: { ok: true } });
    assert.deepEqual(await cv.c.next('recv'), { t: 'recv', from: d.id, m: { ok: true } });
    cd.c.close();
    cv.c.close();
  });

  it('a send to an offline or unknown target gets E_OFFLINE with its ref', async () => {
    const v = await viewer();
    const gone = await device();
    const cv = await connect(srv.wsUrl, v);
    cv.c.send({ t: 'send', to: gone.id, m: { t: 'pair/start' }, ref: 'r42' });
    const e = await cv.c.next('error');
    assert.equal(e.code, 'E_OFFLINE');
    assert.equal(e.ref, 'r42');
    cv.c.close();
  });

  it('presence: current state on watch, then connect/disconnect events', async () => {
    const d = await device();
    const v = await viewer();
    const cv = await connect(srv.wsUrl, v);
    cv.c.send({ t: 'watch', d: [d.id] });
    assert.deepEqual(await cv.c.next('presence'), { t: 'presence', d: d.id, online: false });
    const cd = await connect(srv.wsUrl, d);
    cd.c.send({ t: 'allow', k: [v.id] });
    assert.deepEqual(await cv.c.next('presence'), { t: 'presence', d: d.id, online: true });
    cd.c.close();
    assert.deepEqual(await cv.c.next('presence'), { t: 'presence', d: d.id, online: false });
    // Unwatched devices are not reported.
    cv.c.send({ t: 'watch', d: [] });
    await connect(srv.wsUrl, d).then((x) => x.c.close());
    await sleep(100);
    assert.equal(cv.c.frames.filter((f) => f.t === 'presence').length, 3);
    cv.c.close();
  });

  it('pair/register and pair/lookup: conflict refused, tags live only while the device is connected', async () => {
    const d1 = await device();
    const d2 = await device();
    const v = await viewer();
    const c1 = await connect(srv.wsUrl, d1);
    const c2 = await connect(srv.wsUrl, d2);
    const cv = await connect(srv.wsUrl, v);
    cv.c.send({ t: 'pair/lookup', tag: 'AB12' });
    assert.deepEqual(await cv.c.next('pair/found'), { t: 'pair/found', tag: 'AB12', d: null });
    c1.c.send({ t: 'pair/register', tag: 'AB12' });
    await sleep(50);
    c2.c.send({ t: 'pair/register', tag: 'AB12' });
    assert.equal((await c2.c.next('error')).code, 'E_TAG_TAKEN');
    cv.c.send({ t: 'pair/lookup', tag: 'AB12' });
    assert.equal((await cv.c.next('pair/found')).d, d1.id);
    // A viewer may not register.
    cv.c.send({ t: 'pair/register', tag: 'ZZ99' });
    assert.equal((await cv.c.next('error')).code, 'E_BAD_STATE');
    // Unregister (null) frees it.
    c1.c.send({ t: 'pair/register', tag: null });
    await sleep(50);
    c2.c.send({ t: 'pair/register', tag: 'AB12' });
    await sleep(50);
    cv.c.send({ t: 'pair/lookup', tag: 'AB12' });
    assert.equal((await cv.c.next('pair/found')).d, d2.id);
    c2.c.close();
    await c2.c.closed;
    await sleep(50);
    cv.c.send({ t: 'pair/lookup', tag: 'AB12' });
    assert.equal((await cv.c.next('pair/found')).d, null);
    c1.c.close();
    cv.c.close();
  });

  it('frames before auth are refused; ping works', async () => {
    const c = new Client(srv.wsUrl);
    await c.next('hello');
    c.send({ t: 'send', to: (await device()).id, m: 1 });
    assert.equal((await c.next('error')).code, 'E_BAD_STATE');
    c.send({ t: 'ping' });
    await c.next('pong');
    c.close();
  });

  it('GET /healthz is only ok, with no counts of connections or devices (review R5c)', async () => {
    const d = await device();
    const cd = await connect(srv.wsUrl, d);
    const cv = await connect(srv.wsUrl, await viewer());
    const r = await fetch(`${srv.url}/healthz`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    // A device and a viewer are online: the old answer said so with counts.
    assert.equal(await r.text(), '{"ok":true}');
    cd.c.close();
    cv.c.close();
  });

  it('serves the viewer with the production CSP: /, /pair, shell files; never dist/lib', async () => {
    for (const p of ['/', '/pair', '/sw.js', ...SHELL_FILES.map((f) => `/${f}`)]) {
      const r = await fetch(`${srv.url}${p}`);
      assert.equal(r.status, 200, p);
      assert.equal(
        r.headers.get('content-security-policy'),
        "default-src 'self'; media-src 'self' blob:; frame-ancestors 'none'",
        p,
      );
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      if (p === '/' || p === '/pair') assert.match(await r.text(), /<html/i);
      else await r.arrayBuffer();
    }
    for (const p of ['/lib/index.js', '/../package.json', '/%2e%2e/package.json', '/index.ts', '/ws']) {
      const r = await fetch(`${srv.url}${p}`);
      assert.equal(r.status, 404, p);
      await r.arrayBuffer();
    }
  });
});

describe('TURN over TLS', () => {
  it("with the operator's certificate the relay serves TLS too and relay credentials offer turns:; not with a self-signed one", async () => {
    const tmp = tempDir();
    const relay = { enabled: true, udpPort: 0, tcpPort: 0, tlsPort: 0, allowLoopbackPeers: true };
    try {
      // A self-signed server (which also leaves PEM files to reuse as "the operator's").
      const a = await testServer(tmp.dir, { tls: { mode: 'self-signed' }, relay });
      assert.equal(a.relay?.tlsPort, undefined, 'no TURN/TLS with a self-signed certificate');
      await a.close();
      const b = await testServer(join(tmp.dir, 'b'), {
        tls: { mode: 'files', cert: join(tmp.dir, 'tls-cert.pem'), key: join(tmp.dir, 'tls-key.pem') },
        relay,
      });
      try {
        const tlsPort = b.relay?.tlsPort;
        assert.ok(tlsPort && tlsPort > 0);
        const g = await relayGrant(b.wsUrl);
        const turn = (g.viewer.ice as { urls: string[]; username?: string; credential?: string }[])[0]!;
        assert.equal(turn.urls.at(-1), `turns:127.0.0.1:${tlsPort}?transport=tcp`);
        const t = await TestTurnClient.tls(tlsPort);
        try {
          assert.equal((await t.allocate(turn.username!, turn.credential!)).code, 0);
        } finally {
          t.close();
        }
        g.close();
      } finally {
        await b.close();
      }
    } finally {
      tmp.rm();
    }
  });
});

describe('persistence', () => {
  it('a restart keeps the server key (mode 0600) and the device registry', async () => {
    const tmp = tempDir();
    try {
      const a = await testServer(tmp.dir);
      const d = await device();
      const cd = await connect(a.wsUrl, d);
      cd.c.close();
      await cd.c.closed;
      await a.close();
      assert.equal(statSync(join(tmp.dir, 'server.key')).mode & 0o777, 0o600);
      const b = await testServer(tmp.dir);
      assert.equal(b.serverKey, a.serverKey);
      const { Store } = await import('../src/index.js');
      await b.close();
      const store = new Store(tmp.dir);
      assert.ok(store.device(d.id));
      assert.equal(store.version, 1);
      store.close();
    } finally {
      tmp.rm();
    }
  });

  it('S8: after devices and viewers connected, the database holds key-derived IDs and times only', async () => {
    const tmp = tempDir();
    try {
      const a = await testServer(tmp.dir);
      const d = await device();
      const v = await viewer();
      for (const who of [d, v]) {
        const x = await connect(a.wsUrl, who);
        x.c.close();
        await x.c.closed;
      }
      await a.close();
      const { default: Database } = await import('better-sqlite3');
      const db = new Database(join(tmp.dir, 'hearth.db'), { readonly: true });
      try {
        const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
        const columns = Object.fromEntries(
          (tables as { name: string }[]).map(({ name }) => [
            name,
            (db.prepare(`SELECT name FROM pragma_table_info('${name}')`).all() as { name: string }[]).map(
              (c) => c.name,
            ),
          ]),
        );
        assert.deepEqual(columns, {
          devices: ['id', 'first_seen', 'last_seen'],
          impostors: ['id', 'count', 'last_at'],
          migrations: ['version', 'applied_at'],
        });
        // Viewers leave no row at all; the device's row is its key-derived ID.
        assert.deepEqual(db.prepare('SELECT id FROM devices').all(), [{ id: d.id }]);
      } finally {
        db.close();
      }
    } finally {
      tmp.rm();
    }
  });

  it('shutdown closes sockets with 1001', async () => {
    const tmp = tempDir();
    try {
      const s = await testServer(tmp.dir);
      const { c } = await connect(s.wsUrl, await viewer());
      await s.close();
      assert.equal((await c.closed).code, CLOSE.GOING_AWAY);
    } finally {
      tmp.rm();
    }
  });

  it('self-signed TLS: certificate generated once, fingerprint reported and stable', async () => {
    const tmp = tempDir();
    try {
      const a = await testServer(tmp.dir, { tls: { mode: 'self-signed' } });
      assert.match(a.url, /^https:/);
      assert.match(a.certSha256 ?? '', /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      await a.close();
      const b = await testServer(tmp.dir, { tls: { mode: 'self-signed' } });
      assert.equal(b.certSha256, a.certSha256);
      assert.equal(statSync(join(tmp.dir, 'tls-key.pem')).mode & 0o777, 0o600);
      await b.close();
      // Operator-supplied files (here: the same PEMs) on a non-loopback-looking config path.
      const c = await testServer(join(tmp.dir, 'c'), {
        tlsCert: join(tmp.dir, 'tls-cert.pem'),
        tlsKey: join(tmp.dir, 'tls-key.pem'),
      } as never);
      try {
        assert.equal(c.certSha256, a.certSha256);
        const ws = new WebSocket(c.wsUrl, { rejectUnauthorized: false });
        const hello = await new Promise<{ t: string; srv: string }>((resolve, reject) => {
          ws.once('message', (d) => resolve(JSON.parse(d.toString())));
          ws.once('error', reject);
        });
        const fp = await new Promise<string>((resolve) => {
          const sock = (ws as unknown as { _socket: { getPeerCertificate(): { fingerprint256: string } } })
            ._socket;
          resolve(sock.getPeerCertificate().fingerprint256);
        });
        assert.equal(hello.srv, c.serverKey);
        assert.equal(fp, c.certSha256);
        ws.close();
      } finally {
        await c.close();
      }
    } finally {
      tmp.rm();
    }
  });
});
