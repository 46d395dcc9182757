/**
 * Notifications in a real Chromium: the viewer's real service worker (dist/sw.js, served by the real
 * server with the production headers) gets a push through CDP `ServiceWorker.deliverPushMessage`
 * (what Chromium hands the worker after it decrypted an RFC 8291 body) and shows the notification:
 * `registration.getNotifications()` has the title with the camera, the body with the camera and
 * the local time, and the thumbnail as the image. The open app also shows its in-app toast. An
 * unreadable payload still shows a (generic) notification, as browsers require.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ChromiumHandle, chromiumAvailable, launchChromium } from '@hearth/testkit';
import { webRoot } from '@hearth/viewer';
import type { BrowserContext, CDPSession, Page } from 'playwright-core';
import { type Harness, startHarness } from './harness.js';

const pkg = fileURLToPath(new URL('../', webRoot)); // packages/viewer (build.mjs)
const avail = await chromiumAvailable();

/** A 16×9 JPEG (ffmpeg, lavfi color), base64. */
const JPEG =
  '/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU5LjM3LjEwMAD/2wBDAAgUFBcUFxsbGxsbGyAeICEhISAgICAhISEkJCQqKiokJCQhISQkKCgqKi4vLisrKisvLzIyMjw8OTlGRkhWVmf/xABMAAEBAAAAAAAAAAAAAAAAAAAABgEBAQAAAAAAAAAAAAAAAAAABgcQAQAAAAAAAAAAAAAAAAAAAAARAQAAAAAAAAAAAAAAAAAAAAD/wAARCAAIABADASIAAhEAAxEA/9oADAMBAAIRAxEAPwCtAR06f//Z';

type Shown = { title: string; body: string; image: string; icon: string; tag: string };

describe('viewer service worker: push notifications in Chromium', {
  skip: avail.ok ? false : avail.reason,
  timeout: 120_000,
}, () => {
  let chromium: ChromiumHandle;
  let harness: Harness;
  let ctx: BrowserContext;
  let page: Page;
  let cdp: CDPSession;
  let registrationId: string;
  const problems: string[] = [];

  before(async () => {
    const r = spawnSync(process.execPath, ['build.mjs'], { cwd: pkg, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    harness = await startHarness();
    chromium = await launchChromium();
    ctx = await chromium.newContext();
    await ctx.grantPermissions(['notifications'], { origin: harness.url });
    page = await ctx.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content.Security.Policy|Refused to/i.test(m.text()))
        problems.push(m.text());
    });
    cdp = await ctx.newCDPSession(page);
    const registered = new Promise<string>((resolve) => {
      cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => {
        for (const reg of e.registrations)
          if (reg.scopeURL.startsWith(harness.url) && !reg.isDeleted) resolve(reg.registrationId);
      });
    });
    await cdp.send('ServiceWorker.enable');
    await page.goto(harness.url);
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
    registrationId = await registered;
    // the page must be controlled for the worker to post to it (the worker claims on activate)
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, {
      timeout: 10_000,
    });
  });

  after(async () => {
    await chromium?.close();
    await harness?.close();
  });

  const shown = (): Promise<Shown[]> =>
    page.evaluate(() =>
      navigator.serviceWorker.ready
        .then((r) => r.getNotifications())
        .then((ns) =>
          ns.map((n) => ({
            title: n.title,
            body: n.body,
            image: (n as Notification & { image?: string }).image ?? '',
            icon: n.icon,
            tag: n.tag,
          })),
        ),
    );

  async function deliver(data: string): Promise<void> {
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: `${harness.url}/`, registrationId, data });
  }

  async function until<T>(what: string, f: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < 200; i++) {
      const v = await f();
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it('a motion push shows "Motion · porch" with the local time and the thumbnail', async () => {
    const t = Date.UTC(2026, 11, 4, 18, 30, 5);
    await deliver(JSON.stringify({ v: 1, type: 'motion', cam: 'porch', t, thumb: JPEG }));
    const n = await until('the notification', async () =>
      (await shown()).find((x) => x.tag === `hearth-porch-${t}`),
    );
    assert.equal(n.title, 'Motion · porch');
    assert.match(n.body, /porch/);
    const local = await page.evaluate(
      (ms) =>
        new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' }),
      t,
    );
    assert.ok(n.body.includes(local), `${n.body} has the local time ${local}`);
    assert.equal(n.image, `data:image/jpeg;base64,${JPEG}`);
    // and the open app shows its own toast
    await page.waitForSelector('.toast[data-camera="porch"] canvas.thumb', { timeout: 10_000 });
    // its thumbnail is drawn on a canvas: the strict CSP holds (no data: or blob: image URL)
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(problems, []);
  });

  it('the clip-ready push replaces the event notification; an unreadable one shows a generic notification', async () => {
    const t = Date.UTC(2026, 11, 4, 18, 31, 0);
    await deliver(JSON.stringify({ v: 1, type: 'sound', cam: 'garden', t }));
    await deliver(JSON.stringify({ v: 1, type: 'sound', cam: 'garden', t, clip: 'AAAAAAAAAAAAAAAAAAAAAA' }));
    const n = await until('the clip notification', async () =>
      (await shown()).find((x) => x.tag === `hearth-garden-${t}` && /clip/.test(x.body)),
    );
    assert.equal(n.title, 'Sound · garden');
    assert.equal((await shown()).filter((x) => x.tag === `hearth-garden-${t}`).length, 1);
    await deliver('{"v":1,"type":"motion","cam":"../../etc","t":1}');
    const g = await until('the generic notification', async () =>
      (await shown()).find((x) => x.tag === 'hearth-unreadable'),
    );
    assert.equal(g.title, 'Hearth');
    assert.ok(!g.body.includes('etc'));
  });
});
