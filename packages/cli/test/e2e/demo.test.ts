/**
 * The README's quick start, as a person runs it: `hearth demo` (what `npm start` runs) prints a URL
 * and a code; a fresh Chromium opens the URL, types the code, and watches the demo camera. A second
 * view of the same camera does not start a second ffmpeg. Ctrl-C stops everything, ffmpeg included.
 *
 * Review R9: here stdout is a pipe (as under systemd or Docker, where it is a log), so the pairing
 * secrets are not printed: they are in a 0600 file that `hearth agent pairing` shows. Control: the
 * same demo on a terminal (util-linux `script`) prints them, so the scan of the log can see them.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
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
  HEARTH_BIN,
  hearth,
  hearthOnTty,
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
    await demo.waitFor(/hearth agent pairing --data-dir \S+/, 60_000);
    code = JSON.parse(readFileSync(secretFile(), 'utf8')).manualCode;
    chromium = await launchLoopbackChromium();
    ctx = await chromium.newContext();
    page = await ctx.newPage();
  });

  after(async () => {
    await chromium?.close();
    demo?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const secretFile = () => join(dir, 'agent', 'pairing-secret.json');
  const hearthEnv = { ...process.env, HEARTH_FROM_SOURCE: '1' };

  it('stdout is not a terminal: the pairing secrets are only in a 0600 file, shown by `hearth agent pairing` (review R9)', () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const secret = JSON.parse(readFileSync(secretFile(), 'utf8'));
    assert.equal(statSync(secretFile()).mode & 0o777, 0o600);
    const qrSecret = /[#&]s=([a-z2-7]+)/.exec(secret.qrUrl)?.[1];
    assert.ok(qrSecret && code, 'the file holds the QR link and the code');
    const log = demo.output(); // stdout and stderr, as a journal would keep them
    assert.ok(!log.includes(code), 'the manual code is not in the log');
    assert.ok(!log.includes(qrSecret), 'the QR secret is not in the log');
    assert.match(log, /A pairing window is open/);
    const shown = execFileSync(
      process.execPath,
      [HEARTH_BIN, 'agent', 'pairing', '--data-dir', join(dir, 'agent')],
      {
        env: hearthEnv,
        encoding: 'utf8',
      },
    );
    assert.ok(shown.includes(code) && shown.includes(secret.qrUrl), 'hearth agent pairing shows them again');
  });

  it('control: on a terminal the same demo prints them (so the scan above can see a leak)', async () => {
    const dir2 = mkdtempSync(join(tmpdir(), 'hearth-demo-tty-'));
    const port = await freePort();
    try {
      const tty = hearthOnTty(['demo', '--port', String(port), '--data-dir', dir2, '--gop', '4']);
      const m = await tty.waitFor(/type the code:\s+([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5})/, 120_000);
      const fileCode = JSON.parse(
        readFileSync(join(dir2, 'agent', 'pairing-secret.json'), 'utf8'),
      ).manualCode;
      assert.equal(m[1], fileCode);
      // `script` runs the demo (exec'd) as its child: stop the demo itself, as Ctrl-C would.
      for (const pid of descendants(tty.pid, 'node')) process.kill(pid, 'SIGINT');
      await tty.exited();
    } finally {
      rmSync(dir2, { recursive: true, force: true });
    }
  });

  it('a fresh browser pairs by typing the code and watches the demo camera', async () => {
    await openApp(page, url);
    await submitCode(page, code);
    await page.waitForSelector('a.cam[data-camera="demo"]', { timeout: 60_000 });
    const devs = await pairedDevices(page);
    assert.equal(devs.length, 1);
    assert.equal(devs[0]!.role, 'owner');
    await until('the secrets file is gone with the window', () => !existsSync(secretFile()), 10_000);
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
