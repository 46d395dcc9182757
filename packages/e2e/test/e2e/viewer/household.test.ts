/**
 * The household screens in a real Chromium, against the real server (hub + the viewer's dist/ with
 * the production CSP) and a scripted device that speaks through the sealed channel and answers only
 * `acl/get` and `acl/update` (it keeps no log: `log/get` is refused). The whole household with a
 * real agent, three browser profiles and real media is `cli/test/e2e/household.test.ts`.
 *
 * 1. People: an owner opens the household screen from the home screen; the device's ACL shows as
 *    rows ("pending": this device logs nothing the viewer verified); Revoke says that downloaded
 *    clips cannot be recalled, and sends an `acl/update` signed by this browser's key that revokes
 *    exactly the member's serial; the row then reads "revoked — pending".
 * 2. Join: an invite link's secret leaves the address bar at once; the screen shows the device's
 *    fingerprint and pins nothing until the person asks to join.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  aclUpdateSchema,
  b64u,
  canonicalize,
  decodeEnvelope,
  decodeId,
  deviceFingerprint,
  deviceIdFromKey,
  encodeId,
  seal,
  systemEnv,
  utf8,
  verify,
  WebCryptoSigner,
} from '@hearth/protocol';
import { type ChromiumHandle, chromiumAvailable, launchChromium, seedDevice } from '@hearth/testkit';
import type { HearthHook } from '@hearth/viewer';
import type { BrowserContext, Page } from 'playwright-core';
import { type Harness, startHarness } from './harness.js';

declare global {
  interface Window {
    __hearth?: HearthHook;
  }
}

const avail = await chromiumAvailable();

/** Screenshots for a look at the screens, only with HEARTH_SHOTS_DIR set (tests never dirty the tree). */
async function shot(p: Page, name: string): Promise<void> {
  const dir = process.env.HEARTH_SHOTS_DIR;
  if (dir) await p.screenshot({ path: `${dir}/${name}`, fullPage: true });
}

describe('household screens in Chromium', { skip: avail.ok ? false : avail.reason, timeout: 120_000 }, () => {
  let chromium: ChromiumHandle;
  let harness: Harness;
  const contexts: BrowserContext[] = [];
  const problems: string[] = [];
  let deviceId: string;
  let deviceKeyText: string;
  let deviceSigner: WebCryptoSigner;
  const updates: unknown[] = [];

  const newPage = async (): Promise<Page> => {
    const ctx = await chromium.newContext({ viewport: { width: 390, height: 844 } });
    contexts.push(ctx);
    const p = await ctx.newPage();
    p.on('console', (m) => {
      if (m.type() === 'error' && /Content.Security.Policy|Refused to/i.test(m.text()))
        problems.push(m.text());
    });
    p.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    return p;
  };
  const ready = (p: Page) => p.waitForSelector('html[data-ready="true"]', { timeout: 15_000 });

  before(async () => {
    // The viewer's dist/ is built by the viewer tests (build.test.ts) and by viewer.test.ts.
    harness = await startHarness();
    chromium = await launchChromium();
    deviceSigner = await WebCryptoSigner.generate();
    deviceId = deviceIdFromKey(deviceSigner.publicKey);
    deviceKeyText = encodeId('deviceKey', deviceSigner.publicKey);
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await chromium?.close();
    await harness?.close();
  });

  it('people: rows from the ACL, and a revoke the device can verify', async () => {
    const page = await newPage();
    await page.goto(harness.url);
    await ready(page);
    const me = (await page.evaluate(() => window.__hearth?.viewerKey))!;
    const member = encodeId('userKey', (await WebCryptoSigner.generate()).publicKey);
    const granter = await WebCryptoSigner.generate();
    const grant = await seal(
      granter,
      'user',
      'grant',
      { d: deviceId, sub: member, role: 'member', scopes: ['live', 'clips'], nbf: 1, exp: null, serial: 3 },
      systemEnv,
    );
    const state = {
      d: deviceId,
      ver: 0,
      owners: [me],
      grants: [grant],
      revoked: [] as number[],
      revokedKeys: [] as string[],
    };
    await harness.device(deviceSigner, async (m, reply, from) => {
      if (m.t === 'cameras')
        return reply({ t: 'cameras', list: [{ name: 'front', online: true }], role: 'owner' });
      if (m.t === 'acl/get') return reply({ t: 'acl', state });
      if (m.t === 'log/get') return reply({ t: 'log/error', code: 'E_NO_GRANT' }); // this scripted device keeps no log
      if (m.t !== 'acl/update') return;
      const r = await verify(decodeEnvelope(m.env), {
        purpose: 'acl/update',
        signerKind: 'user',
        expectedSigner: decodeId('userKey', from),
        body: aclUpdateSchema,
        now: Date.now(),
      });
      assert.ok(r.ok, 'the update is signed by the viewer that sent it');
      updates.push(r.body);
      state.ver = r.body.ver;
      state.grants = state.grants.filter((g) => !r.body.revoke.includes((g.b as { serial: number }).serial));
      state.revoked.push(...r.body.revoke);
      reply({ t: 'acl/ok', ver: state.ver });
    });
    await seedDevice(page, {
      deviceId,
      deviceKey: deviceKeyText,
      role: 'owner',
      server: harness.url,
      label: 'Home',
    });
    await page.goto(`${harness.url}/`);
    await ready(page);
    await page.click(`li.device[data-device="${deviceId}"] a.people-link`);
    await page.waitForSelector(`li.member[data-sub="${member}"]`);
    assert.equal(await page.textContent('h1'), 'People on Home');
    const owner = page.locator('li.member[data-role="owner"]');
    assert.equal(await owner.locator('.member-name').textContent(), 'You');
    assert.equal(await owner.getAttribute('data-status'), 'pending');
    const row = page.locator(`li.member[data-sub="${member}"]`);
    assert.match((await row.textContent()) ?? '', /Live view, clips · All cameras · Any time · No end date/);
    assert.equal(await row.locator('.badge').textContent(), 'pending');

    await shot(page, 'people.png');
    await row.locator('button.danger').click();
    await shot(page, 'people-revoke.png');
    assert.equal(
      await row.locator('.revoke-note').textContent(),
      'Clips already downloaded cannot be recalled.',
    );
    await row.locator('.inline button.danger').click();
    await page.waitForSelector(`li.member[data-sub="${member}"][data-status="revoking"]`);
    assert.deepEqual(updates, [{ d: deviceId, ver: 1, add: [], revoke: [3] }]);
    assert.equal(
      await page.locator(`li.member[data-sub="${member}"] .badge`).textContent(),
      'revoked — pending',
    );
    assert.match((await page.textContent('#people-status')) ?? '', /pending until the device's log has it/);
    await shot(page, 'people-revoked.png');
    // The make-an-invite form: the three role templates.
    await page.click('#invite-new');
    await page.waitForSelector('#invite-form');
    assert.deepEqual(await page.locator('label.preset strong').allTextContents(), [
      'Family member',
      'Babysitter',
      'Guest',
    ]);
    await shot(page, 'invite-form.png');
    assert.deepEqual(problems, []);
  });

  it('join: the invite secret leaves the address bar; nothing is pinned before "Ask to join"', async () => {
    const page = await newPage();
    const s = b64u(systemEnv.random(32));
    const payload = b64u(
      utf8(canonicalize({ v: 1, d: deviceId, dk: deviceKeyText, s, exp: Date.now() + 3_600_000 })),
    );
    await page.goto(`${harness.url}/#/invite/${payload}`);
    await ready(page);
    await page.waitForSelector('#join-fingerprint');
    assert.equal(await page.textContent('#join-fingerprint'), deviceFingerprint(deviceId));
    assert.ok(page.url().endsWith('/#/join'), page.url());
    assert.ok(!page.url().includes(s) && !page.url().includes(payload));
    assert.deepEqual(await page.evaluate(() => window.__hearth?.pairedDevices()), []);
    await shot(page, 'join.png');
    // A reload finds no link any more; a broken link says so.
    await page.goto(`${harness.url}/#/invite/${payload.slice(0, -4)}`);
    await ready(page);
    await page.waitForSelector('section.join .refused');
    assert.equal(await page.textContent('section.join .refused'), 'This is not a valid invite link.');
    assert.deepEqual(problems, []);
  });
});
