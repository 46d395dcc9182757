/**
 * Recorded clips in a real Chromium (Debian's, through testkit's launcher): a real fMP4 made by
 * ffmpeg (testsrc, libx264, 1 s GOPs, `frag_keyframe+empty_moov+default_base_moof`, 4 s), sealed
 * with protocol for the reader key the page made and keeps in IndexedDB, served by a loopback
 * fixture of the blob store's GET/DELETE routes (docs/events-contract.md §4), with the production
 * CSP. The page is the real timeline screen and player (clip-page.ts).
 *
 * - The timeline lists the day's events with their thumbnails; a forged event blob is listed as a
 *   possible attack, not hidden.
 * - Control: the untampered clip plays through MSE while it streams (frames decoded) and is marked
 *   unverified, with no download, while the fixture holds back its last part; once that arrives it
 *   is confirmed, ≥ 3.5 s are buffered, and the download is the exact file.
 * - Attack: the same clip with one flipped byte in a late chunk starts playing, then stops at that
 *   chunk with "possible attack (E_CLIP_CHUNK)": the picture is cleared and nothing can be downloaded.
 * - Attack by an insider (another reader of the clip, who knows its content key): a chunk re-sealed
 *   with other content authenticates, so it plays, unverified; at the last chunk the signed digest
 *   does not match: "possible attack (E_CLIP_DIGEST)", stopped, nothing to download.
 * - Delete asks first; accepted, it deletes the event, its clip and its snapshot.
 * - Attack: a store that serves the clip without its last chunk (cleanly, exact length):
 *   "possible attack (E_CLIP_TRUNCATED)", stopped.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { clipHeaderLength, encodeId, utf8 } from '@hearth/protocol';
import { type ChromiumHandle, chromiumAvailable, launchChromium } from '@hearth/testkit';
import * as esbuild from 'esbuild';
import type { Page } from 'playwright-core';
import { APP_HEADERS } from '../../src/index.js';
import { device, EVENT_KIND, forgeChunk, insider, type Stored, seal } from '../fixtures/blobs.js';
import { ffmpegAvailable, makeFmp4 } from '../fixtures/fmp4.js';

const avail = await chromiumAvailable();
const skip = !avail.ok ? avail.reason : !ffmpegAvailable() ? 'ffmpeg not installed' : false;

const DAY = '2026-12-04';
const T0 = Date.UTC(2026, 11, 4, 12, 0, 0);

/** A 160×90 JPEG of the test pattern (the record's thumbnail). */
function jpeg(): Uint8Array {
  const r = spawnSync(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc=size=160x90',
      '-frames:v',
      '1',
      '-f',
      'mjpeg',
      'pipe:1',
    ],
    { maxBuffer: 1 << 20 },
  );
  assert.equal(r.status, 0);
  return new Uint8Array(r.stdout);
}

/** Flip one byte inside the ciphertext of frame `k` (not its length prefix). */
function tamperFrame(blob: Uint8Array, k: number): Uint8Array {
  const b = blob.slice();
  let p = clipHeaderLength(b)!;
  for (let i = 0; i < k; i++) p += 4 + new DataView(b.buffer, p, 4).getUint32(0);
  b[p + 4 + 10]! ^= 0x40;
  return b;
}

const frames = (blob: Uint8Array): number => {
  let p = clipHeaderLength(blob)!;
  let n = 0;
  for (; p < blob.length; n++) p += 4 + new DataView(blob.buffer, blob.byteOffset + p, 4).getUint32(0);
  return n;
};

describe('recorded clips in Chromium', { skip, timeout: 180_000 }, () => {
  let chromium: ChromiumHandle;
  let server: Server;
  let url: string;
  let page: Page;
  const store = new Map<string, Stored>();
  const requests: string[] = [];
  /** IDs whose last 600 bytes the fixture holds back until released. */
  const held = new Map<string, () => void>();
  const hold = new Set<string>();
  const problems: string[] = [];
  let bundle: Uint8Array;

  async function send(res: ServerResponse, id: string, bytes: Uint8Array): Promise<void> {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
    const cut = hold.delete(id) ? bytes.length - 600 : bytes.length; // held once
    // In pieces, as a real store streams a file: the player must open and append as they come.
    for (let i = 0; i < cut; i += 8192) {
      if (!res.write(bytes.subarray(i, Math.min(i + 8192, cut))))
        await new Promise((r) => res.once('drain', r));
      await new Promise((r) => setImmediate(r));
    }
    if (cut < bytes.length) await new Promise<void>((r) => held.set(id, r));
    res.end(bytes.subarray(cut));
  }

  before(async () => {
    const r = await esbuild.build({
      entryPoints: [fileURLToPath(new URL('./clip-page.ts', import.meta.url))],
      bundle: true,
      format: 'esm',
      write: false,
      conditions: ['source'],
      target: ['chrome113'],
      logLevel: 'warning',
    });
    bundle = r.outputFiles[0]!.contents;
    server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      requests.push(`${req.method} ${u.pathname}${u.search}`);
      for (const [k, v] of Object.entries(APP_HEADERS)) res.setHeader(k, v);
      if (req.method === 'GET' && u.pathname === '/') {
        res.setHeader('content-type', 'text/html; charset=utf-8');
        res.end(
          '<!doctype html><html><head><meta name="viewport" content="width=device-width"><link rel="stylesheet" href="/app.css"><script type="module" src="/page.js"></script></head><body><main id="app"></main></body></html>',
        );
        return;
      }
      if (req.method === 'GET' && u.pathname === '/app.css') {
        res.setHeader('content-type', 'text/css');
        res.end(readFileSync(fileURLToPath(new URL('../../src/ui/app.css', import.meta.url))));
        return;
      }
      if (req.method === 'GET' && u.pathname === '/page.js') {
        res.setHeader('content-type', 'text/javascript');
        res.end(bundle);
        return;
      }
      const m = /^\/v1\/blobs\/(hdid_[a-z2-7]+)(?:\/([A-Za-z0-9_-]{22}))?$/.exec(u.pathname);
      if (m && req.method === 'GET' && !m[2]) {
        const from = Number(u.searchParams.get('from'));
        const to = Number(u.searchParams.get('to'));
        const kind = u.searchParams.get('kind');
        const blobs = [...store.values()]
          .map((s) => s.entry)
          .filter((e) => (!kind || e.kind === kind) && e.hr >= from && e.hr <= to);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ blobs }));
        return;
      }
      const s = m?.[2] ? store.get(m[2]) : undefined;
      if (s && req.method === 'GET') return void send(res, m![2]!, s.bytes);
      if (s && req.method === 'DELETE') {
        store.delete(m![2]!);
        res.statusCode = 204;
        res.end();
        return;
      }
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    chromium = await launchChromium();
    const ctx = await chromium.newContext({ timezoneId: 'UTC', viewport: { width: 390, height: 844 } });
    page = await ctx.newPage();
    page.on('console', (msg) => {
      if (/Content.Security.Policy|Refused to/i.test(msg.text())) problems.push(msg.text());
    });
    page.on('pageerror', (e) => problems.push(String(e)));
    await page.goto(url);
    await page.waitForFunction(() => window.__clipTest !== undefined, undefined, { timeout: 20_000 });
  });

  after(async () => {
    for (const r of held.values()) r();
    await chromium?.close();
    await new Promise((r) => server?.close(r));
  });

  let mp4: Uint8Array;
  let dev: Awaited<ReturnType<typeof device>>;
  let dk: string;
  let rkText: string;
  let ids: { good: string; bad: string; goodEvent: string; snap: string; insiderEvent: string };

  it('the page made a non-extractable reader key; the timeline lists the day, a forged record as an attack', async () => {
    const k = await page.evaluate(() => ({
      rk: window.__clipTest!.rk,
      ex: window.__clipTest!.extractable,
      pex: window.__clipTest!.privateExtractable,
    }));
    rkText = k.rk;
    assert.equal(k.ex, false);
    assert.equal(k.pex, false);
    dev = await device();
    mp4 = makeFmp4({ seconds: 4 });
    const clip = await seal(dev, k.rk, {
      kind: 'clip',
      camera: 'door',
      t0: T0,
      plaintext: mp4,
      maxChunkBytes: 4096,
    });
    const n = frames(clip.bytes);
    assert.ok(n >= 5, `chunks: ${n}`);
    const badClip = await seal(dev, k.rk, {
      kind: 'clip',
      camera: 'door',
      t0: T0 + 60_000,
      plaintext: mp4,
      maxChunkBytes: 4096,
    });
    badClip.bytes = tamperFrame(badClip.bytes, Math.floor(n * 0.75));
    const mallory = await insider();
    const shared = await seal(dev, k.rk, {
      kind: 'clip',
      camera: 'door',
      t0: T0 + 180_000,
      plaintext: mp4,
      maxChunkBytes: 4096,
      also: [mallory.rk],
    });
    shared.bytes = await forgeChunk(shared.bytes, dev.signer.publicKey, mallory, 2, mp4, (c) => {
      c.fill(0, 100, 400); // a changed picture inside a fragment
      return c;
    });
    const snap = await seal(dev, k.rk, { kind: 'snapshot', camera: 'door', t0: T0, plaintext: jpeg() });
    const thumb = Buffer.from(jpeg()).toString('base64');
    const rec = (t: number, clipId: string, extra: object = {}) =>
      utf8(
        JSON.stringify({ v: 1, type: 'motion', cam: 'door', t, t1: t + 4000, clip: clipId, thumb, ...extra }),
      );
    const goodEvent = await seal(dev, k.rk, {
      kind: EVENT_KIND,
      camera: 'door',
      t0: T0,
      plaintext: rec(T0, clip.entry.id, { snap: snap.entry.id }),
    });
    const badEvent = await seal(dev, k.rk, {
      kind: EVENT_KIND,
      camera: 'door',
      t0: T0 + 60_000,
      plaintext: utf8(
        JSON.stringify({
          v: 1,
          type: 'sound',
          cam: 'door',
          t: T0 + 60_000,
          t1: T0 + 64_000,
          clip: badClip.entry.id,
          thumb,
        }),
      ),
    });
    const forged = await seal(dev, k.rk, {
      kind: EVENT_KIND,
      camera: 'door',
      t0: T0 + 120_000,
      plaintext: rec(T0 + 120_000, clip.entry.id),
    });
    forged.bytes[forged.bytes.length - 3]! ^= 1;
    const insiderEvent = await seal(dev, k.rk, {
      kind: EVENT_KIND,
      camera: 'door',
      t0: T0 + 180_000,
      plaintext: rec(T0 + 180_000, shared.entry.id),
    });
    for (const s of [clip, badClip, shared, snap, goodEvent, badEvent, forged, insiderEvent])
      store.set(s.entry.id, s);
    ids = {
      good: clip.entry.id,
      bad: badClip.entry.id,
      goodEvent: goodEvent.entry.id,
      snap: snap.entry.id,
      insiderEvent: insiderEvent.entry.id,
    };
    hold.add(clip.entry.id);

    dk = encodeId('deviceKey', dev.signer.publicKey);
    await page.evaluate(
      ([d, key, day]) => window.__clipTest!.show(d!, key!, 'door', day!),
      [dev.id, dk, DAY],
    );
    await page.waitForFunction(
      () =>
        document.querySelectorAll('#events li.event').length === 3 &&
        document.querySelectorAll('#bad-blobs li').length === 1,
    );
    const listed = requests.find((r) => r.startsWith(`GET /v1/blobs/${dev.id}?`));
    const hr0 = Date.UTC(2026, 11, 4) / 3_600_000;
    assert.equal(listed, `GET /v1/blobs/${dev.id}?kind=event&from=${hr0}&to=${hr0 + 23}`);
    const bad = await page.locator('#bad-blobs li').first();
    assert.equal(await bad.getAttribute('data-code'), 'E_CLIP_CHUNK');
    assert.match((await bad.getAttribute('class')) ?? '', /\battack\b/);
    assert.match((await bad.textContent()) ?? '', /Possible attack/);
    // Newest first; the type filter.
    assert.deepEqual(await page.locator('#events li.event .event-time').allTextContents(), [
      '12:03:00',
      '12:01:00',
      '12:00:00',
    ]);
    await page.locator('input[data-type="sound"]').check();
    assert.deepEqual(
      await page
        .locator('#events li.event')
        .evaluateAll((l) => l.map((e) => (e as HTMLElement).dataset.type)),
      ['sound'],
    );
    await page.locator('input[data-type="sound"]').uncheck();
    await page.waitForFunction(
      () => document.querySelectorAll('canvas.thumb[data-drawn="true"]').length === 3,
    );
  });

  it('control: the untampered clip plays while it streams, unverified until its last part, then confirmed', async () => {
    await page.evaluate(() => {
      const w = window as unknown as { __trail: string[] };
      w.__trail = [];
      new MutationObserver((recs) => {
        for (const r of recs) if (w.__trail.at(-1) !== r.oldValue) w.__trail.push(r.oldValue ?? '');
      }).observe(document.getElementById('clip-status')!, {
        attributes: true,
        attributeFilter: ['data-state'],
        attributeOldValue: true,
      });
    });
    await page.locator(`#events li.event[data-id="${ids.goodEvent}"] button`).click();
    // Playing before the end: frames decoded while the fixture still holds the last part back.
    await page.waitForFunction(
      () => {
        const v = document.getElementById('clip') as HTMLVideoElement;
        return (
          v.getVideoPlaybackQuality().totalVideoFrames > 0 &&
          document.getElementById('clip-status')!.dataset.state === 'unconfirmed'
        );
      },
      undefined,
      { timeout: 30_000 },
    );
    assert.ok(held.has(ids.good), 'the last part is still held back');
    assert.equal(await page.locator('#clip-download').isHidden(), true, 'no download before it is confirmed');
    assert.match((await page.locator('#clip-status').textContent()) ?? '', /not verified yet/);
    held.get(ids.good)!();
    await page.waitForFunction(
      () => document.getElementById('clip-status')!.dataset.state === 'confirmed',
      undefined,
      { timeout: 30_000 },
    );
    const q = await page.evaluate(async () => {
      const v = document.getElementById('clip') as HTMLVideoElement;
      const a = document.getElementById('clip-download') as HTMLAnchorElement;
      return {
        frames: v.getVideoPlaybackQuality().totalVideoFrames,
        buffered: v.buffered.length ? v.buffered.end(v.buffered.length - 1) - v.buffered.start(0) : 0,
        name: a.download,
        hidden: a.hidden,
        trail: [
          ...(window as unknown as { __trail: string[] }).__trail,
          document.getElementById('clip-status')!.dataset.state,
        ],
      };
    });
    assert.ok(q.frames > 0, `frames ${q.frames}`);
    assert.ok(q.buffered >= 3.5, `buffered ${q.buffered} s`);
    assert.equal(q.hidden, false);
    assert.equal(q.name, 'hearth-door-20261204-120000.mp4');
    const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('#clip-download').click()]);
    assert.equal(dl.suggestedFilename(), 'hearth-door-20261204-120000.mp4');
    const file = readFileSync((await dl.path())!);
    assert.equal(
      createHash('sha256').update(file).digest('hex'),
      createHash('sha256').update(mp4).digest('hex'),
      'the download is the recorded file',
    );
    // Every state it went through: from nothing, loading, playing unverified, confirmed.
    assert.deepEqual(q.trail, ['idle', 'loading', 'unconfirmed', 'confirmed']);
    // A picture for the docs, refreshed only on request (tests never dirty the tree).
    if (process.env.HEARTH_SCREENSHOTS === '1')
      await page.screenshot({
        path: fileURLToPath(new URL('../../../../docs/img/viewer-timeline.png', import.meta.url)),
        fullPage: true,
      });
  });

  it('attack: one flipped byte in a late chunk stops playback with a visible warning', async () => {
    await page.evaluate(() => {
      (window as unknown as { __trail: string[] }).__trail.length = 0;
    });
    await page.locator('#events li.event[data-type="sound"] button').click();
    await page.waitForFunction(
      () => document.getElementById('clip-status')!.dataset.state === 'failed',
      undefined,
      { timeout: 30_000 },
    );
    const r = await page.evaluate(() => {
      const v = document.getElementById('clip') as HTMLVideoElement;
      const s = document.getElementById('clip-status')!;
      return {
        code: s.dataset.code,
        text: s.textContent,
        cls: s.className,
        src: v.getAttribute('src'),
        paused: v.paused,
        download: (document.getElementById('clip-download') as HTMLAnchorElement).hidden,
        alarm: document.documentElement.classList.contains('alarm'),
        trail: [...(window as unknown as { __trail: string[] }).__trail, s.dataset.state],
      };
    });
    assert.equal(r.code, 'E_CLIP_CHUNK');
    assert.match(r.text ?? '', /Possible attack \(E_CLIP_CHUNK\)/);
    assert.match(r.cls, /\battack\b/);
    assert.equal(r.src, null, 'the picture is cleared');
    assert.equal(r.paused, true);
    assert.equal(r.download, true, 'nothing to download');
    assert.equal(r.alarm, true);
    // It had started (the chunks before the flipped one opened), and never became confirmed.
    assert.deepEqual(r.trail.slice(-3), ['loading', 'unconfirmed', 'failed']);
    assert.deepEqual(problems, []);
  });

  it('attack by an insider: a chunk that authenticates but is not the device’s plays unverified, then stops at the digest', async () => {
    await page.evaluate(() => {
      (window as unknown as { __trail: string[] }).__trail.length = 0;
    });
    await page.locator(`#events li.event[data-id="${ids.insiderEvent}"] button`).click();
    await page.waitForFunction(
      () => document.getElementById('clip-status')!.dataset.state === 'failed',
      undefined,
      {
        timeout: 30_000,
      },
    );
    const r = await page.evaluate(() => ({
      code: document.getElementById('clip-status')!.dataset.code,
      text: document.getElementById('clip-status')!.textContent,
      src: document.getElementById('clip')!.getAttribute('src'),
      download: (document.getElementById('clip-download') as HTMLAnchorElement).hidden,
      trail: [
        ...(window as unknown as { __trail: string[] }).__trail,
        document.getElementById('clip-status')!.dataset.state,
      ],
    }));
    assert.equal(r.code, 'E_CLIP_DIGEST');
    assert.match(r.text ?? '', /Possible attack \(E_CLIP_DIGEST\)/);
    assert.equal(r.src, null);
    assert.equal(r.download, true);
    // Every chunk opened (the forged one too) and played unverified until the digest said no.
    assert.deepEqual(r.trail.slice(-3), ['loading', 'unconfirmed', 'failed']);
  });

  it('delete asks first; dismissed it keeps everything, accepted it deletes the event, its clip and snapshot', async () => {
    await page.locator(`#events li.event[data-id="${ids.goodEvent}"] button`).click();
    await page.waitForFunction(
      () => document.getElementById('clip-status')!.dataset.state === 'confirmed',
      undefined,
      { timeout: 30_000 },
    );
    const dels = () => requests.filter((x) => x.startsWith('DELETE'));
    page.once('dialog', (d) => void d.dismiss());
    await page.locator('#clip-delete').click();
    await page.waitForTimeout(200); // a dismissed dialog sends nothing; give a wrong request time to show
    assert.deepEqual(dels(), []);
    page.once('dialog', (d) => void d.accept());
    await page.locator('#clip-delete').click();
    await page.waitForFunction(() => document.querySelectorAll('#events li.event').length === 2);
    assert.deepEqual(
      dels().sort(),
      [ids.good, ids.snap, ids.goodEvent].map((id) => `DELETE /v1/blobs/${dev.id}/${id}`).sort(),
    );
    assert.equal(await page.locator('#player').isHidden(), true);
  });

  it('attack: a store that ends the clip cleanly before its last chunk → E_CLIP_TRUNCATED, stopped', async () => {
    const clip = await seal(dev, rkText, {
      kind: 'clip',
      camera: 'door',
      t0: T0 + 240_000,
      plaintext: mp4,
      maxChunkBytes: 4096,
    });
    // Drop the last frame: every byte served is genuine, and the length the store says is exact.
    let p = clipHeaderLength(clip.bytes)!;
    for (let i = 0; i < frames(clip.bytes) - 1; i++)
      p += 4 + new DataView(clip.bytes.buffer, p, 4).getUint32(0);
    clip.bytes = clip.bytes.slice(0, p);
    const ev = await seal(dev, rkText, {
      kind: EVENT_KIND,
      camera: 'door',
      t0: T0 + 240_000,
      plaintext: utf8(
        JSON.stringify({
          v: 1,
          type: 'motion',
          cam: 'door',
          t: T0 + 240_000,
          t1: T0 + 244_000,
          clip: clip.entry.id,
          thumb: '',
        }),
      ),
    });
    store.set(clip.entry.id, clip);
    store.set(ev.entry.id, ev);
    await page.evaluate(
      ([d, key, day]) => window.__clipTest!.show(d!, key!, 'door', day!),
      [dev.id, dk, DAY],
    );
    await page.locator(`#events li.event[data-id="${ev.entry.id}"] button`).click();
    await page.waitForFunction(
      () => document.getElementById('clip-status')!.dataset.state === 'failed',
      undefined,
      {
        timeout: 30_000,
      },
    );
    const r = await page.evaluate(() => ({
      code: document.getElementById('clip-status')!.dataset.code,
      text: document.getElementById('clip-status')!.textContent,
      src: document.getElementById('clip')!.getAttribute('src'),
      download: (document.getElementById('clip-download') as HTMLAnchorElement).hidden,
    }));
    assert.equal(r.code, 'E_CLIP_TRUNCATED');
    assert.match(r.text ?? '', /Possible attack \(E_CLIP_TRUNCATED\)/);
    assert.equal(r.src, null);
    assert.equal(r.download, true);
    assert.deepEqual(problems, []);
  });
});
