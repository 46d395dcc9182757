/**
 * The viewer in a real Chromium (Debian's, driven by playwright-core), served from dist/ with the
 * production CSP by the real Hearth server on 127.0.0.1 (its real hub), with a device the test
 * scripts: a real rendezvous client authenticated by its own device key.
 *
 * 1. Smoke: the page renders the pairing form, generates a non-extractable Ed25519 key, stores it
 *    in IndexedDB, keeps it across reloads, authenticates with it, registers the service worker,
 *    and violates no CSP rule.
 * 2. Live: a paired device (seeded into IndexedDB) shows its cameras; the live view connects over
 *    real WebRTC to a second page acting as the device, whose answer the test signs with the
 *    device key: "connected (direct)" with frames decoded. With an answer signed by another key:
 *    "possible attack", and the device's peer connection never connects.
 *
 * Screenshots at phone size go to docs/img/viewer-*.png.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  createAnswer,
  decodeEnvelope,
  deviceIdFromKey,
  encodeId,
  systemEnv,
  verifyOffer,
  WebCryptoSigner,
} from '@hearth/protocol';
import {
  type ChromiumHandle,
  chromiumAvailable,
  launchChromium,
  seedDevice,
  waitForState,
} from '@hearth/testkit';
import { type HearthHook, webRoot } from '@hearth/viewer';
import type { BrowserContext, Page } from 'playwright-core';
import { type Harness, startHarness } from './harness.js';

declare global {
  interface Window {
    __hearth?: HearthHook;
  }
}

const pkg = fileURLToPath(new URL('../', webRoot)); // packages/viewer (build.mjs)
const IMG = fileURLToPath(new URL('../../../../../docs/img/', import.meta.url));
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

/** Screenshots for the docs, refreshed only with HEARTH_SCREENSHOTS=1 (tests never dirty the tree). */
async function shot(p: Page, name: string): Promise<void> {
  if (process.env.HEARTH_SCREENSHOTS === '1') await p.screenshot({ path: join(IMG, name) });
}

const avail = await chromiumAvailable();

describe('viewer in Chromium', { skip: avail.ok ? false : avail.reason, timeout: 120_000 }, () => {
  let chromium: ChromiumHandle;
  let harness: Harness;
  let ctx: BrowserContext;
  let page: Page;
  const problems: string[] = [];

  before(async () => {
    const r = spawnSync(process.execPath, ['build.mjs'], { cwd: pkg, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    mkdirSync(IMG, { recursive: true });
    harness = await startHarness();
    chromium = await launchChromium({
      // Loopback only: host candidates on 127.0.0.1, no mDNS names; the test's signaling also
      // drops every candidate that is not 127.0.0.1.
      allowLoopbackInPeerConnection: true,
      args: ['--disable-features=WebRtcHideLocalIpsWithMdns'],
    });
    ctx = await chromium.newContext(PHONE);
    page = await ctx.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content.Security.Policy|Refused to/i.test(m.text()))
        problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  });

  after(async () => {
    await chromium?.close();
    await harness?.close();
  });

  const ready = async (p: Page) => p.waitForSelector('html[data-ready="true"]', { timeout: 15_000 });

  it('renders the pairing form on first run and makes a non-extractable Ed25519 key that persists', async () => {
    await page.goto(harness.url);
    await ready(page);
    assert.ok(await page.isVisible('#pair-form'));
    assert.ok(await page.isVisible('#pair-code'));
    assert.equal(await page.textContent('h1'), 'Pair a camera');

    const readKey = () =>
      page.evaluate(async () => {
        const db = await new Promise<IDBDatabase>((res, rej) => {
          const r = indexedDB.open('hearth');
          r.onsuccess = () => res(r.result);
          r.onerror = () => rej(r.error);
        });
        const rec = await new Promise<{ kp: CryptoKeyPair; created: number }>((res, rej) => {
          const r = db.transaction('keys').objectStore('keys').get('viewer');
          r.onsuccess = () => res(r.result);
          r.onerror = () => rej(r.error);
        });
        db.close();
        const priv = rec.kp.privateKey;
        let exported = 'refused';
        try {
          await crypto.subtle.exportKey('pkcs8', priv);
          exported = 'EXPORTED';
        } catch (e) {
          exported = `refused: ${(e as Error).name}`;
        }
        const pub = new Uint8Array(await crypto.subtle.exportKey('raw', rec.kp.publicKey));
        // The stored key really signs, and verifies under the stored public key.
        const msg = new TextEncoder().encode('hearth');
        const sig = await crypto.subtle.sign('Ed25519', priv, msg);
        const ok = await crypto.subtle.verify('Ed25519', rec.kp.publicKey, sig, msg);
        return {
          alg: priv.algorithm.name,
          type: priv.type,
          extractable: priv.extractable,
          usages: priv.usages,
          exported,
          pub: Array.from(pub),
          created: rec.created,
          signs: ok,
          hookKey: window.__hearth?.viewerKey,
        };
      });

    const k1 = await readKey();
    assert.equal(k1.alg, 'Ed25519');
    assert.equal(k1.type, 'private');
    assert.equal(k1.extractable, false);
    assert.deepEqual(k1.usages, ['sign']);
    assert.match(k1.exported, /^refused: InvalidAccessError/);
    assert.equal(k1.signs, true);
    assert.equal(k1.hookKey, encodeId('userKey', Uint8Array.from(k1.pub)));

    await page.reload();
    await ready(page);
    const k2 = await readKey();
    assert.deepEqual(k2.pub, k1.pub, 'same key after reload');
    assert.equal(k2.created, k1.created);
    assert.equal(k2.hookKey, k1.hookKey);

    // The real hub authenticated the browser with exactly that key.
    await page.waitForFunction(() => window.__hearth?.rendezvous === 'ready');
    assert.ok(harness.authenticated.includes(k1.hookKey!));
    assert.equal(await page.evaluate(() => window.__hearth?.state), 'idle');
    assert.deepEqual(await page.evaluate(() => window.__hearth?.pairedDevices()), []);
  });

  it('manual code: looks up the tag and says clearly when no device is waiting', async () => {
    // A well-formed code (valid check character), typed sloppily.
    await page.fill('#pair-code', 'zq7k kmxq-y422g');
    await page.fill('#pair-label', 'Nursery');
    await page.click('#pair-submit');
    await page.waitForSelector('#pair-status.error');
    const text = await page.textContent('#pair-status');
    assert.match(text ?? '', /No device is waiting for this code/);
    assert.equal(await page.inputValue('#pair-code'), 'ZQ7K-KMXQ-Y422G');
    const lookup = harness.log.find((l) => l.frame.t === 'pair/lookup');
    assert.deepEqual(lookup?.frame, { t: 'pair/lookup', tag: 'ZQ7K' });
    // A malformed code never reaches the server.
    await page.fill('#pair-code', 'hello');
    await page.click('#pair-submit');
    assert.match((await page.textContent('#pair-status')) ?? '', /not a Hearth pairing code/);
    await page.fill('#pair-code', '');
    await page.fill('#pair-label', '');
    await page.evaluate(() => {
      document.getElementById('pair-status')?.replaceChildren();
      (document.activeElement as HTMLElement | null)?.blur();
    });
    await shot(page, 'viewer-pairing.png');
  });

  it('registers a service worker that caches the shell only', async () => {
    const cached = await page.evaluate(async () => {
      const reg = await navigator.serviceWorker.ready;
      const names = await caches.keys();
      const c = await caches.open(names.find((n) => n.startsWith('hearth-shell-'))!);
      return { scope: reg.scope, urls: (await c.keys()).map((r) => new URL(r.url).pathname).sort() };
    });
    assert.ok(
      cached.urls.includes('/app.js') &&
        cached.urls.includes('/index.html') &&
        cached.urls.includes('/manifest.webmanifest'),
    );
    assert.ok(cached.urls.every((u) => !u.startsWith('/ws')));
  });

  describe('live view against a WebRTC device page', () => {
    let devicePage: Page;
    const deviceKey = { signer: undefined as unknown as WebCryptoSigner };
    let deviceId = '';
    let signWith: 'device' | 'impostor' = 'device';
    let impostor: WebCryptoSigner;

    before(async () => {
      deviceKey.signer = await WebCryptoSigner.generate(true);
      impostor = await WebCryptoSigner.generate(true);
      deviceId = deviceIdFromKey(deviceKey.signer.publicKey);
      devicePage = await (await chromium.newContext()).newPage();
      await devicePage.goto('about:blank');
      // The "camera": a canvas animation sent over WebRTC.
      await devicePage.evaluate(() => {
        const canvas = document.createElement('canvas');
        canvas.width = 640;
        canvas.height = 360;
        const g = canvas.getContext('2d')!;
        let n = 0;
        setInterval(() => {
          n++;
          const grd = g.createLinearGradient(0, 0, 640, 360);
          grd.addColorStop(0, '#3b2f2a');
          grd.addColorStop(1, '#6b4f3a');
          g.fillStyle = grd;
          g.fillRect(0, 0, 640, 360);
          g.fillStyle = '#f59e0b';
          g.beginPath();
          g.arc(320 + 200 * Math.sin(n / 15), 200, 40, 0, Math.PI * 2);
          g.fill();
          g.fillStyle = '#fff';
          g.font = '28px sans-serif';
          g.fillText(`front · ${new Date().toISOString().slice(11, 19)}`, 24, 44);
        }, 33);
        const stream = canvas.captureStream(30);
        const w = window as unknown as Record<string, unknown>;
        w.pcs = [] as RTCPeerConnection[];
        w.answer = async (offerSdp: string) => {
          const pc = new RTCPeerConnection();
          (w.pcs as RTCPeerConnection[]).push(pc);
          w.pc = pc;
          for (const t of stream.getTracks()) pc.addTrack(t, stream);
          await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
          await pc.setLocalDescription(await pc.createAnswer());
          await new Promise<void>((r) => {
            if (pc.iceGatheringState === 'complete') return r();
            pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
            setTimeout(r, 3000);
          });
          return pc.localDescription!.sdp;
        };
        w.addIce = (c: RTCIceCandidateInit) => (w.pc as RTCPeerConnection).addIceCandidate(c);
        w.connected = () => (w.pcs as RTCPeerConnection[]).some((p) => p.connectionState === 'connected');
      });

      // Trickled candidates wait until the device page has a peer connection for the offer.
      let answered: Promise<void> = Promise.resolve();
      await harness.device(deviceKey.signer, async (m, reply, from) => {
        if (m.t === 'cameras')
          return reply({
            t: 'cameras',
            list: [
              { name: 'front', online: true },
              { name: 'garden', online: false },
            ],
            role: 'owner',
          });
        if (m.t === 'session/ice') {
          const c = m.c as RTCIceCandidateInit | null;
          await answered;
          if (c?.candidate?.includes(' 127.0.0.1 '))
            await devicePage.evaluate(
              (cc) => (window as unknown as { addIce(c: unknown): Promise<void> }).addIce(cc),
              c,
            );
          return;
        }
        if (m.t !== 'session/offer') return;
        let done = () => {};
        answered = new Promise<void>((r) => {
          done = r;
        });
        try {
          await answerOffer(m, reply, from);
        } finally {
          done();
        }
      }); // it speaks only through the sealed channel, as the real agent does
      async function answerOffer(
        m: { t: string; [k: string]: unknown },
        reply: (m: unknown) => void,
        from: string,
      ): Promise<void> {
        const r = await verifyOffer(decodeEnvelope(m.env), { deviceId, now: Date.now() });
        assert.ok(r.ok, 'offer verifies');
        assert.equal(r.body.viewerKeyText, from);
        let sdp = await devicePage.evaluate(
          (s) => (window as unknown as { answer(s: string): Promise<string> }).answer(s),
          r.body.sdp,
        );
        sdp = sdp
          .split('\r\n')
          .filter((l) => !l.startsWith('a=candidate:') || l.includes(' 127.0.0.1 '))
          .join('\r\n');
        const env = await createAnswer(
          signWith === 'device' ? deviceKey.signer : impostor,
          r.body,
          sdp,
          systemEnv,
        );
        reply({ t: 'session/answer', env });
      }

      // Pin the device as pairing would have (IndexedDB record), then reload.
      await seedDevice(page, {
        deviceId,
        deviceKey: encodeId('deviceKey', deviceKey.signer.publicKey),
        role: 'owner',
        server: harness.url,
        label: 'Living room',
      });
      await page.goto(`${harness.url}/`);
      await ready(page);
    });

    it('lists the paired device with its online state and cameras', async () => {
      await page.waitForSelector('a.cam[data-camera="front"]');
      assert.equal(
        await page.getAttribute(`li.device[data-device="${deviceId}"]`, 'data-presence'),
        'online',
      );
      const devs = await page.evaluate(() => window.__hearth?.pairedDevices());
      assert.equal(devs?.length, 1);
      assert.equal(devs?.[0]?.deviceId, deviceId);
      await shot(page, 'viewer-cameras.png');
    });

    it('connects, verifies the signed answer, and decodes frames: connected (direct)', async () => {
      await page.click('a.cam[data-camera="front"]');
      await page.waitForSelector('#status');
      await waitForState(page, 'connected (direct)', { stopOn: ['possible attack'] });
      await page.waitForFunction(() => (window.__hearth?.framesDecoded() ?? 0) > 10, undefined, {
        timeout: 15_000,
      });
      assert.equal(await page.evaluate(() => window.__hearth?.state), 'connected (direct)');
      assert.equal(await page.textContent('#status'), 'connected (direct)');
      const v = await page.evaluate(() => {
        const el = document.getElementById('video') as HTMLVideoElement;
        return { muted: el.muted, playsInline: el.playsInline, autoplay: el.autoplay, w: el.videoWidth };
      });
      assert.deepEqual(v, { muted: true, playsInline: true, autoplay: true, w: 640 });
      assert.equal(await page.isVisible('#retry'), false);
      await shot(page, 'viewer-live.png');
    });

    it('an answer signed by another key: possible attack, no media, the device never connects', async () => {
      await page.goto(`${harness.url}/#/`);
      await ready(page);
      signWith = 'impostor';
      const before = await devicePage.evaluate(() => (window as unknown as { pcs: unknown[] }).pcs.length);
      await page.click('a.cam[data-camera="front"]');
      await page.waitForSelector('#status[data-state="possible attack"]', { timeout: 20_000 });
      assert.equal(await page.textContent('#status'), 'possible attack (E_WRONG_SIGNER)');
      const err = await page.evaluate(() => window.__hearth?.lastError);
      assert.equal((err as { attack?: boolean })?.attack, true);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(await page.evaluate(() => window.__hearth?.framesDecoded()), 0);
      const dev = await devicePage.evaluate(() => {
        const w = window as unknown as { pcs: RTCPeerConnection[] };
        return w.pcs.slice(-1).map((p) => p.connectionState);
      });
      assert.ok(
        (await devicePage.evaluate(() => (window as unknown as { pcs: unknown[] }).pcs.length)) > before,
      );
      assert.notEqual(dev[0], 'connected', 'the viewer never applied the forged answer');
      assert.equal(
        await page.evaluate(() => (document.getElementById('video') as HTMLVideoElement).srcObject),
        null,
      );
      assert.ok(await page.isVisible('#retry'));
      await shot(page, 'viewer-attack.png');
      signWith = 'device';
    });

    it('device offline is shown, and the view resumes when it is back', async () => {
      await page.click('#retry');
      await waitForState(page, 'connected (direct)', { stopOn: ['possible attack'] });
      await page.goto(`${harness.url}/#/`);
      await ready(page);
      await harness.setOnline(deviceId, false);
      await page.waitForSelector(`li.device[data-presence="offline"]`);
      await page.click('a.cam[data-camera="front"]');
      await page.waitForSelector('#status[data-state="device offline"]');
      await harness.setOnline(deviceId, true);
      await waitForState(page, 'connected (direct)', { stopOn: ['possible attack'] });
    });

    it('loads with no CSP violation or page error', () => {
      assert.deepEqual(problems, []);
    });
  });
});
