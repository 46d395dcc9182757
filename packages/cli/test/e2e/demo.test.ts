/**
 * The README's quick start, as a person runs it: `hearth demo` (what `npm start` runs) prints a URL
 * and a code; a fresh Chromium opens the URL, types the code, and watches the demo camera. A second
 * view of the same camera does not start a second ffmpeg. Ctrl-C stops everything, ffmpeg included.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ChromiumHandle, chromiumAvailable, isAlive } from '@hearth/testkit';
import type { BrowserContext, Page } from 'playwright-core';
import {
  descendants,
  framesFlow,
  freePort,
  hearth,
  hook,
  launchLoopbackChromium,
  openApp,
  type Proc,
  pairedDevices,
  submitCode,
  until,
  watch,
} from './stack.js';

const avail = await chromiumAvailable();

describe('quick start: hearth demo', { skip: avail.ok ? false : avail.reason, timeout: 240_000 }, () => {
  let dir: string;
  let demo: Proc;
  let chromium: ChromiumHandle;
  let ctx: BrowserContext;
  let page: Page;
  let url: string;
  let code: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-demo-'));
    const port = await freePort();
    demo = hearth(['demo', '--port', String(port), '--data-dir', dir, '--gop', '4']);
    url = (await demo.waitFor(/Open (http:\/\/\S+?)\/? in a browser/, 120_000))[1]!;
    code = (await demo.waitFor(/type the code:\s+([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5})/, 60_000))[1]!;
    chromium = await launchLoopbackChromium();
    ctx = await chromium.newContext();
    page = await ctx.newPage();
  });

  after(async () => {
    await chromium?.close();
    demo?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('prints a loopback URL and a pairing code, and never the secret in logs', () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(demo.output(), /Scan to pair/);
    // The QR link's secret is shown only inside the QR; the text never spells it out in a log line.
    assert.doesNotMatch(demo.output(), /"level":\d+.*#v=1&d=/);
  });

  it('a fresh browser pairs by typing the code and watches the demo camera', async () => {
    await openApp(page, url);
    await submitCode(page, code);
    await page.waitForSelector('a.cam[data-camera="demo"]', { timeout: 60_000 });
    const devs = await pairedDevices(page);
    assert.equal(devs.length, 1);
    assert.equal(devs[0]!.role, 'owner');
    await page.click('a.cam[data-camera="demo"]');
    const [first, later] = await framesFlow(page);
    assert.ok(later > first, `frames keep coming (${first} → ${later})`);
    assert.equal((await hook(page)).state, 'connected (direct)');
    // HEARTH_SCREENSHOTS=1 refreshes the README's picture of the demo.
    if (process.env.HEARTH_SCREENSHOTS === '1') {
      await page.setViewportSize({ width: 390, height: 640 });
      await new Promise((r) => setTimeout(r, 500));
      await page.screenshot({
        path: fileURLToPath(new URL('../../../../docs/img/demo-live.png', import.meta.url)),
      });
    }
  });

  it('a second view of the same camera shares its single ffmpeg process', async () => {
    const devs = await pairedDevices(page);
    const page2 = await ctx.newPage();
    await openApp(page2, url);
    await watch(page2, devs[0]!.deviceId, 'demo');
    const [first, later] = await framesFlow(page2);
    assert.ok(later > first);
    assert.ok((await hook(page)).frames > 0);
    assert.equal(descendants(demo.pid, 'ffmpeg').length, 1, 'one ffmpeg for two viewers');
    await page2.close();
  });

  it('Ctrl-C stops the server, the agent and ffmpeg', async () => {
    const ffmpeg = descendants(demo.pid, 'ffmpeg');
    assert.equal(ffmpeg.length, 1);
    demo.kill('SIGINT');
    assert.equal(await demo.exited(), 0);
    await until('ffmpeg gone', () => ffmpeg.every((p) => !isAlive(p)), 10_000);
  });
});
