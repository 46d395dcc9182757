/**
 * The viewer's reader key in the real app (Chromium, the real server and hub, a scripted device
 * speaking through the sealed channel, as in viewer.test.ts): after a paired device lists its
 * cameras, the viewer sends `reader/key` with its X25519 key signed by its identity key; it keeps
 * sending it once per session until the device says `reader/ok`, and never again after that.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeReaderKey, encodeId, verifyReaderKey, WebCryptoSigner } from '@hearth/protocol';
import { type ChromiumHandle, chromiumAvailable, launchChromium, seedDevice } from '@hearth/testkit';
import { type HearthHook, webRoot } from '@hearth/viewer';
import type { Page } from 'playwright-core';
import { type Harness, startHarness } from './harness.js';

declare global {
  interface Window {
    __hearth?: HearthHook;
  }
}

const pkg = fileURLToPath(new URL('../', webRoot));
const avail = await chromiumAvailable();

describe('viewer reader key', { skip: avail.ok ? false : avail.reason, timeout: 120_000 }, () => {
  let chromium: ChromiumHandle;
  let harness: Harness;
  let page: Page;

  before(async () => {
    const r = spawnSync(process.execPath, ['build.mjs'], { cwd: pkg, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    harness = await startHarness();
    chromium = await launchChromium();
    page = await chromium.newPage();
  });
  after(async () => {
    await chromium?.close();
    await harness?.close();
  });

  const ready = async () => page.waitForSelector('html[data-ready="true"]', { timeout: 15_000 });

  it('is sent signed after the camera list, once per session until reader/ok, then never again', async () => {
    const dev = await WebCryptoSigner.generate();
    const got: { t: string; rk?: unknown }[] = [];
    let ack = false;
    const deviceId = await harness.device(dev, (m, reply) => {
      got.push(m);
      if (m.t === 'cameras') reply({ t: 'cameras', list: [{ name: 'front', online: true }], role: 'owner' });
      if (m.t === 'reader/key' && ack) reply({ t: 'reader/ok' });
    });
    await page.goto(`${harness.url}/`);
    await ready();
    await seedDevice(page, {
      deviceId,
      deviceKey: encodeId('deviceKey', dev.publicKey),
      role: 'owner',
      server: harness.url,
      label: 'Hall',
    });
    const keys = () => got.filter((m) => m.t === 'reader/key');
    const waitKeys = async (n: number) => {
      for (let i = 0; i < 600 && keys().length < n; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(keys().length, n);
    };

    await page.reload();
    await ready();
    await waitKeys(1);
    const hook = await page.evaluate(() => ({
      vk: window.__hearth!.viewerKey,
      rk: window.__hearth!.readerKey,
    }));
    const rk = keys()[0]!.rk as string;
    assert.equal(rk, hook.rk);
    const parsed = decodeReaderKey(rk);
    await verifyReaderKey(parsed, hook.vk); // signed by this browser's identity key
    // The camera list comes first: the key goes only to a device that answered us on the channel.
    assert.ok(got.findIndex((m) => m.t === 'cameras') < got.findIndex((m) => m.t === 'reader/key'));

    // Not acknowledged: the next session sends it again (the control for "never again" below).
    await page.reload();
    await ready();
    await waitKeys(2);
    assert.equal(keys()[1]!.rk, rk, 'the same key, kept in IndexedDB');

    // Acknowledged this time; after that, a new session does not send it.
    ack = true;
    await page.reload();
    await ready();
    await waitKeys(3);
    await page.waitForFunction(async () => {
      const db = await new Promise<IDBDatabase>((res, rej) => {
        const q = indexedDB.open('hearth');
        q.onsuccess = () => res(q.result);
        q.onerror = () => rej(q.error);
      });
      const rec = await new Promise<{ acked: string[] } | undefined>((res) => {
        const q = db.transaction('keys').objectStore('keys').get('reader');
        q.onsuccess = () => res(q.result);
      });
      db.close();
      return (rec?.acked.length ?? 0) > 0;
    });
    const before = got.length;
    await page.reload();
    await ready();
    await page.waitForSelector('a.cam[data-camera="front"]');
    // Something the viewer sends later on the same (ordered) channel: the live view's first message.
    await page.click('a.cam[data-camera="front"]');
    for (
      let i = 0;
      i < 600 && !got.slice(before).some((m) => m.t.startsWith('session/') || m.t === 'relay/ask');
      i++
    )
      await new Promise((r) => setTimeout(r, 50));
    const since = got.slice(before).map((m) => m.t);
    assert.ok(
      since.includes('cameras') && since.some((t) => t.startsWith('session/') || t === 'relay/ask'),
      since.join(),
    );
    assert.equal(keys().length, 3, `sent again after reader/ok: ${since.join()}`);
  });
});
