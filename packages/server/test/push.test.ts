/**
 * Web Push through the real server: a device's `push` frame reaches a real (loopback) push
 * service with a valid VAPID authorization and exactly the device's ciphertext, which the
 * subscription's private key opens as a browser would. Endpoint checks (SSRF) with their control,
 * the per-device budget, 404/410.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  b64u,
  fromB64u,
  openPushPayload,
  type PushPayload,
  type PushReceiverKeys,
  sealPushPayload,
  systemEnv,
  WebCryptoSigner,
} from '@hearth/protocol';
import { checkPushEndpoint, pushAddressAllowed, VAPID_KEY_FILE } from '../src/push.js';
import {
  startTestHub,
  startTestPushService,
  type TestHub,
  type TestPeer,
  type TestPushService,
} from '../src/testing.js';

async function newReceiver(): Promise<PushReceiverKeys & { p256dh: string; authText: string }> {
  const kp = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, [
    'deriveBits',
  ])) as CryptoKeyPair;
  const jwk = await crypto.subtle.exportKey('jwk', kp.privateKey);
  const publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey));
  const auth = crypto.getRandomValues(new Uint8Array(16));
  return {
    privateKey: fromB64u(jwk.d as string),
    publicKey,
    auth,
    p256dh: b64u(publicKey),
    authText: b64u(auth),
  };
}

let refs = 0;
/** Send a `push` frame and wait for its answer: 'ok' or the error code. */
function push(
  peer: TestPeer,
  endpoint: string,
  body: Uint8Array,
  ttl = 60,
  urgency = 'high' as const,
): Promise<string> {
  const ref = `p${++refs}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer to push')), 15_000);
    const offOk = peer.core.on('push/ok', (f) => {
      if (f.ref !== ref) return;
      done('ok');
    });
    const offErr = peer.core.on('error', (f) => {
      if (f.ref !== ref) return;
      done(f.code);
    });
    const done = (v: string) => {
      clearTimeout(timer);
      offOk();
      offErr();
      resolve(v);
    };
    assert.ok(peer.core.send({ t: 'push', ref, endpoint, body: b64u(body), ttl, urgency }));
  });
}

const payload: PushPayload = { v: 1, type: 'motion', cam: 'porch', t: 1_764_000_000_000 };

describe('server: Web Push', () => {
  let hub: TestHub;
  let svc: TestPushService;
  let dev: TestPeer;
  before(async () => {
    hub = await startTestHub({ push: { allowInsecureLoopback: true, perMinute: 1, burst: 6 } });
    svc = await startTestPushService();
    dev = await hub.peer(await WebCryptoSigner.generate(), 'device');
  });
  after(async () => {
    await hub?.close();
    await svc?.close();
  });

  it('forwards the ciphertext with VAPID; the push service decrypts it to the payload, as a browser', async () => {
    const ua = await newReceiver();
    const body = await sealPushPayload(payload, { p256dh: ua.p256dh, auth: ua.authText }, systemEnv);
    const answer = push(dev, svc.endpoint('a'), body, 120, 'high');
    const got = await svc.next();
    assert.equal(await answer, 'ok');
    assert.equal(got.vapidError, undefined);
    assert.equal(got.claims?.aud, svc.origin);
    assert.match(got.claims?.sub ?? '', /^(mailto:|https:)/);
    assert.ok((got.claims?.exp ?? 0) <= Date.now() / 1000 + 24 * 3600);
    assert.equal(got.headers.ttl, '120');
    assert.equal(got.headers.urgency, 'high');
    assert.equal(got.headers['content-encoding'], 'aes128gcm');
    assert.deepEqual(got.body, body); // exactly the device's bytes
    assert.deepEqual(await openPushPayload(got.body, ua), payload);
    // the key the viewer subscribes with is the one that signed
    const res = await fetch(`${hub.url}/v1/push/vapid`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { key: string }).key, got.k);
    // the VAPID key is a private file in the data directory
    assert.equal(statSync(join(hub.dataDir, VAPID_KEY_FILE)).mode & 0o077, 0);
  });

  it('404 and 410 from the push service: E_PUSH_GONE; 500: E_PUSH_FAILED', async () => {
    const body = new Uint8Array(100);
    svc.status = 410;
    assert.equal(await push(dev, svc.endpoint('gone'), body), 'E_PUSH_GONE');
    svc.status = 500;
    assert.equal(await push(dev, svc.endpoint('err'), body), 'E_PUSH_FAILED');
    svc.status = 201;
  });

  it('a viewer cannot push; a device over its budget gets E_RATE_LIMITED and nothing is sent', async () => {
    const viewer = await hub.peer(await WebCryptoSigner.generate(), 'viewer');
    const bad = new Promise<string>((resolve) => viewer.core.on('error', (f) => resolve(f.code)));
    viewer.core.send({
      t: 'push',
      ref: 'v1',
      endpoint: svc.endpoint('v'),
      body: 'AAAA',
      ttl: 1,
      urgency: 'low',
    });
    assert.equal(await bad, 'E_BAD_STATE');
    const other = await hub.peer(await WebCryptoSigner.generate(), 'device');
    const before = svc.received.length;
    const answers: string[] = [];
    for (let i = 0; i < 8; i++) answers.push(await push(other, svc.endpoint(`r${i}`), new Uint8Array(10)));
    // burst 6, 1 a minute: the first 6 go, then the budget is spent
    assert.deepEqual(answers.slice(0, 6), Array(6).fill('ok'));
    assert.deepEqual(answers.slice(6), ['E_RATE_LIMITED', 'E_RATE_LIMITED']);
    assert.equal(svc.received.length - before, 6);
  });
});

describe('server: push endpoints (SSRF)', () => {
  it('attack: a device cannot make the server POST to a loopback service; control: with the test switch it can', async () => {
    const svc = await startTestPushService();
    const strict = await startTestHub({});
    const lax = await startTestHub({ push: { allowInsecureLoopback: true } });
    try {
      const d1 = await strict.peer(await WebCryptoSigner.generate(), 'device');
      assert.equal(await push(d1, svc.endpoint('x'), new Uint8Array(10)), 'E_PUSH_ENDPOINT');
      // the https form of a loopback address is refused too (no TLS needed to see it)
      assert.equal(
        await push(d1, svc.endpoint('x').replace('http:', 'https:'), new Uint8Array(10)),
        'E_PUSH_ENDPOINT',
      );
      assert.equal(svc.received.length, 0);
      const d2 = await lax.peer(await WebCryptoSigner.generate(), 'device');
      assert.equal(await push(d2, svc.endpoint('x'), new Uint8Array(10)), 'ok');
      assert.equal(svc.received.length, 1);
    } finally {
      await strict.close();
      await lax.close();
      await svc.close();
    }
  });

  it('checkPushEndpoint: https to public hosts only', () => {
    for (const ok of [
      'https://fcm.googleapis.com/fcm/send/abc',
      'https://updates.push.services.mozilla.com/wpush/v2/x',
      'https://web.push.apple.com/QH',
      'https://8.8.8.8/x',
    ])
      assert.ok(checkPushEndpoint(ok, false), ok);
    for (const bad of [
      'http://fcm.googleapis.com/x',
      'https://127.0.0.1/x',
      'https://[::1]/x',
      'https://10.1.2.3/x',
      'https://192.168.1.1/x',
      'https://169.254.169.254/latest/meta-data',
      'https://[fd00::1]/x',
      'https://[::ffff:127.0.0.1]/x',
      'https://0.0.0.0/x',
      'https://localhost/x',
      'https://printer.local/x',
      'https://user:pw@fcm.googleapis.com/x',
      'file:///etc/passwd',
      'not a url',
    ])
      assert.equal(checkPushEndpoint(bad, false), undefined, bad);
    assert.ok(checkPushEndpoint('http://127.0.0.1:9/x', true));
    assert.ok(checkPushEndpoint('https://127.0.0.1:9/x', true));
    assert.equal(checkPushEndpoint('http://10.0.0.1/x', true), undefined);
    assert.equal(pushAddressAllowed('::ffff:10.0.0.1', false), false);
    assert.equal(pushAddressAllowed('2a00:1450:4001::1', false), true);
  });
});
