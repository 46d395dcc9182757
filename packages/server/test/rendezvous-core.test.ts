/**
 * The protocol's RendezvousCore (the client of both the agent and the viewer) against the real hub,
 * through the test handle `@hearth/server/testing`: authentication, routing with `from` set by the
 * hub, presence, delivery errors with their ref, reconnect after a dead network, the silent-server
 * heartbeat, and the hub's own auth check refusing a proof the core did not make.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createAuth, encodeId, systemEnv, WebCryptoSigner } from '@hearth/protocol';
import { startTestHub, type TestHub, testPeer } from '../src/testing.js';
import { Client } from './helpers.js';

async function until(what: string, f: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('RendezvousCore against the real hub', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startTestHub({ serveViewer: false });
  });
  after(async () => {
    await hub?.close();
  });

  it('authenticates both roles, routes both ways with from set by the hub, reports presence', async () => {
    const devSigner = await WebCryptoSigner.generate();
    const viewSigner = await WebCryptoSigner.generate();
    hub.ice = [{ urls: ['stun:127.0.0.1:3478'] }];
    const viewer = await hub.peer(viewSigner, 'viewer');
    assert.equal(viewer.core.id, encodeId('userKey', viewSigner.publicKey));
    assert.deepEqual(viewer.core.ice, [{ urls: ['stun:127.0.0.1:3478'] }]);
    const presence: { d: string; online: boolean }[] = [];
    viewer.core.on('presence', (f) => presence.push(f));
    const dev = testPeer(hub.wsUrl, devSigner, 'device');
    viewer.core.send({ t: 'watch', d: [dev.id] });
    await until('offline presence', () => presence.length === 1);
    dev.start();
    await dev.whenReady();
    // Presence follows the device's allow list (review R5d): the device names the viewer.
    assert.ok(dev.core.send({ t: 'allow', k: [viewer.id] }));
    await until('online presence', () => presence.some((p) => p.online));
    assert.ok(hub.online().includes(dev.id) && hub.online().includes(viewer.id));
    assert.ok(hub.authenticated.includes(dev.id));

    assert.ok(viewer.sendTo(dev.id, { t: 'hi' }));
    assert.deepEqual(await dev.next(), { from: viewer.id, m: { t: 'hi' } });
    assert.ok(dev.sendTo(viewer.id, { t: 'back' }));
    assert.deepEqual(await viewer.next(), { from: dev.id, m: { t: 'back' } });
    assert.ok(hub.frames.some((f) => f.from === viewer.id && f.frame.t === 'send'));

    dev.stop();
    await until('offline again', () => presence.at(-1)?.online === false);
    const errors: { code: string; ref?: string }[] = [];
    viewer.core.on('error', (f) => errors.push(f));
    viewer.sendTo(dev.id, { t: 'hi' }, 'r7');
    await until('delivery error', () => errors.length === 1);
    assert.deepEqual({ code: errors[0]!.code, ref: errors[0]!.ref }, { code: 'E_OFFLINE', ref: 'r7' });
    viewer.stop();
  });

  it('reconnects after the hub cuts every connection, and after a silent spell', async () => {
    const p = await hub.peer(await WebCryptoSigner.generate(), 'device', {
      pingMs: 40,
      handshakeMs: 300,
    });
    let readies = 0;
    const drops: number[] = [];
    p.core.on('ready', () => readies++);
    p.core.on('disconnected', (d) => drops.push(d.code));
    hub.dropAll();
    await until('ready again after the cut', () => readies === 1);
    assert.equal(drops[0], 1006, 'a cut without a close frame');

    hub.silent = true;
    await until('dropped as silent', () => drops.includes(4004));
    await until('a silent handshake is abandoned too', () => drops.includes(4000));
    hub.silent = false;
    await until('ready after the silence', () => readies >= 2 && p.core.ready);
    assert.ok(p.core.send({ t: 'ping' }));
    p.stop();
  });

  it('the hub refuses an auth proof bound to another connection (control: a proof for that connection passes)', async () => {
    const signer = await WebCryptoSigner.generate();
    const a = new Client(hub.wsUrl);
    const b = new Client(hub.wsUrl);
    const helloA = (await a.next('hello')) as unknown as { srv: string; ch: string };
    await b.next('hello');
    // A proof made for connection A, replayed on connection B: the real verifyAuth refuses it.
    const env = await createAuth(signer, 'device', helloA, systemEnv);
    b.send({ t: 'auth', env });
    assert.equal((await b.closed).code, 4002);
    // Control: a proof for A on A is admitted (a fresh one: the first nonce is spent in the replay cache).
    a.send({ t: 'auth', env: await createAuth(signer, 'device', helloA, systemEnv) });
    assert.ok(await a.next('ready'));
    a.close();
  });
});
