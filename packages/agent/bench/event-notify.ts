/**
 * Event to notification (issue 9): the time from a camera event's `at` (the motion's start) to the
 * notification existing in the viewer's service worker, in two legs, through the real stack:
 *
 * 1. **agent → push service**: the real agent (startAgent) gets a camera event from its media; its
 *    PushNotifier encrypts the payload (RFC 8291, to a P-256 subscription key made here, as a
 *    browser's) and sends it through the real rendezvous server (startTestHub, Web Push with VAPID)
 *    to a loopback push service (startTestPushService), which records the POST. Stop: the POST is in
 *    (then decrypted here, to check it is this event).
 * 2. **push → notification**: the decrypted payload is handed to the viewer's real service worker
 *    in Debian's Chromium (the app served by the same server) with CDP
 *    `ServiceWorker.deliverPushMessage`, what Chromium does after it decrypted a push; stop: the
 *    notification exists (`registration.getNotifications({tag})`, polled every 2 ms in the page, so it is known to a few ms).
 *
 * Not included: a real push service's own delivery (FCM, Mozilla autopush, Apple), which is
 * outside our code and usually dominates; nor the browser's decryption (it is done here, timed apart).
 *
 *   node --conditions=source --import tsx packages/agent/bench/event-notify.ts [--events 20]
 *        [--media fake|hub] [--gap 200]
 *
 * `--media fake` (default): a media backend whose camera event is emitted here with `at` = now,
 * so leg 1 is the agent's and server's own time. `--media hub`: the real MediaHub with a motion
 * camera (a looping 720p file, a box moving 1.5 s of every 5 s; `minDuration` 1 s, `cooldown` 0):
 * `at` is the trigger frame's time, so leg 1 also holds the detection (≥ minDuration, by design),
 * printed apart. The per-camera push cooldown is set to 0 in both.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { b64u, fromB64u, openPushPayload, type PushReceiverKeys } from '@hearth/protocol';
import { startTestHub, startTestPushService } from '@hearth/server/testing';
import { chromiumAvailable, launchChromium } from '@hearth/testkit';
import type { MediaBackend } from '../src/device/sessions.js';
import { type Agent, startAgent } from '../src/index.js';
import type { CameraEvent } from '../src/media/hub.js';
import { parseCamerasYaml } from '../src/media/index.js';
import { createMediaBackend, type MediaBackendHandle } from '../src/media-backend.js';
import { connectViewer, fakeMedia, ITER, pairViewer, pins, until } from '../test/world.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '2' },
    media: { type: 'string', default: 'fake' },
    gap: { type: 'string', default: '200' },
  },
});
const N = Math.max(1, Number(values.events));
const WARMUP = Math.max(0, Number(values.warmup));
const mode = values.media === 'hub' ? 'hub' : 'fake';
const gapMs = Number(values.gap);

const avail = await chromiumAvailable();
if (!avail.ok) {
  console.error(`Chromium is needed: ${avail.reason}`);
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'hearth-event-notify-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- the camera events ----
type Emitted = { ev: CameraEvent; emittedAt: number };
const emitted: Emitted[] = [];
let emit: ((e: CameraEvent) => void) | undefined;
let backend: MediaBackendHandle | undefined;
let media: MediaBackend;
if (mode === 'fake') {
  media = {
    ...fakeMedia().media,
    onCameraEvent: (l) => {
      emit = (e) => {
        emitted.push({ ev: e, emittedAt: Date.now() });
        l(e);
      };
      return () => {};
    },
  };
} else {
  const clip = join(dir, 'motion-720p.mp4');
  process.stdout.write('encoding a 10 s 720p clip (a box moving from 1 s to 2.5 s and 6 s to 7.5 s)… ');
  execFileSync('ffmpeg', [
    ...['-hide_banner', '-loglevel', 'error'],
    ...['-f', 'lavfi', '-i', 'smptehdbars=size=1280x720:rate=15'],
    ...['-f', 'lavfi', '-i', 'color=c=white:size=160x160:rate=15'],
    '-filter_complex',
    "[0:v]noise=alls=6:allf=t[bg];[bg][1:v]overlay=x='100+mod(t-1,5)*500':y=280:enable='lt(mod(t-1,5),1.5)'[v]",
    ...['-map', '[v]', '-t', '10', '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'baseline'],
    ...['-pix_fmt', 'yuv420p', '-b:v', '2M', '-g', '30', '-bf', '0', '-y', clip],
  ]);
  console.log('done');
  backend = createMediaBackend({
    cameras: parseCamerasYaml(
      `cameras:\n  porch:\n    source: file:${clip}\n    motion:\n      minDuration: 1\n      cooldown: 0\n      preRoll: 1\n      postRoll: 1\n`,
    ),
    still: false,
  });
  const b = backend;
  media = {
    ...b,
    onCameraEvent: (l) =>
      b.onCameraEvent?.((e) => {
        if (e.phase === 'start') emitted.push({ ev: e, emittedAt: Date.now() });
        l(e);
      }) ?? (() => {}),
  };
}

// ---- the real stack ----
const srv = await startTestHub({ push: { allowInsecureLoopback: true } });
const svc = await startTestPushService();
const agent: Agent = await startAgent({
  dataDir: join(dir, 'agent'),
  serverUrl: srv.url,
  media,
  pairingIterations: ITER,
  minBackoffMs: 20,
  maxBackoffMs: 200,
  push: { cooldownMs: 0 },
  events: { upload: false },
});
const { loadOrCreateIdentity } = await import('../src/device/identity.js');
pins.set(agent.deviceId, (await loadOrCreateIdentity(join(dir, 'agent'))).signer.publicKey);
await until('pairing window', () => agent.pairing());
const owner = await connectViewer(srv.url);
await pairViewer(owner, agent.pairing()!, 'qr');

// a subscription as a browser makes it: a P-256 key pair and a 16-byte auth secret
const kp = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, [
  'deriveBits',
])) as CryptoKeyPair;
const jwk = await crypto.subtle.exportKey('jwk', kp.privateKey);
const publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey));
const auth = crypto.getRandomValues(new Uint8Array(16));
const keys: PushReceiverKeys = { privateKey: fromB64u(jwk.d as string), publicKey, auth };
owner.send(agent.deviceId, {
  t: 'push/sub',
  sub: { endpoint: svc.endpoint('bench'), p256dh: b64u(publicKey), auth: b64u(auth) },
});
const ok = await owner.next((m) => m.t === 'push/ok' || m.t === 'push/error');
if (ok.t !== 'push/ok') throw new Error(`push/sub refused: ${JSON.stringify(ok)}`);

// ---- Chromium with the viewer's service worker ----
const chromium = await launchChromium();
const ctx = await chromium.newContext();
await ctx.grantPermissions(['notifications'], { origin: srv.url });
const page = await ctx.newPage();
const cdp = await ctx.newCDPSession(page);
const registered = new Promise<string>((resolve) => {
  cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => {
    for (const reg of e.registrations)
      if (reg.scopeURL.startsWith(srv.url) && !reg.isDeleted) resolve(reg.registrationId);
  });
});
await cdp.send('ServiceWorker.enable');
await page.goto(srv.url);
await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
const registrationId = await registered;
// the worker claims the page on activate: from then on it is the active worker that gets pushes
await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: 10_000 });

/** Every POST, stamped as it arrives (a loop of its own, so a POST never waits for the browser leg). */
const arrivals: { at: number; body: Uint8Array; vapidError: string | undefined }[] = [];
let arrived: (() => void) | undefined;
let collecting = true;
void (async () => {
  while (collecting) {
    const p = await svc.next(3_600_000).catch(() => undefined);
    if (!p) continue;
    arrivals.push({ at: Date.now(), body: p.body, vapidError: p.vapidError });
    arrived?.();
  }
})();

/** The next event POST (clip-ready pushes are skipped), its arrival time and its decrypted payload. */
async function nextEventPush(): Promise<{ at: number; decryptMs: number; payload: Record<string, unknown> }> {
  for (;;) {
    while (arrivals.length === 0) await new Promise<void>((r) => (arrived = r));
    const p = arrivals.shift()!;
    if (p.vapidError) throw new Error(`VAPID: ${p.vapidError}`);
    const d0 = performance.now();
    const payload = (await openPushPayload(p.body, keys)) as Record<string, unknown>;
    const decryptMs = performance.now() - d0;
    if (payload.clip === undefined) return { at: p.at, decryptMs, payload };
  }
}

interface Sample {
  leg1: number;
  detect: number;
  leg2: number;
  decrypt: number;
}
const samples: Sample[] = [];
let lostDeliveries = 0;
await page.evaluate(() => {
  const w = window as unknown as { __hearthPushes: number[] };
  w.__hearthPushes = [];
  navigator.serviceWorker.addEventListener('message', (e: MessageEvent) => {
    const d = e.data as { t?: string; payload?: { t?: number } };
    if (d?.t === 'hearth/push' && typeof d.payload?.t === 'number') w.__hearthPushes.push(d.payload.t);
  });
});
for (let i = 0; i < WARMUP + N; i++) {
  if (mode === 'fake') {
    await sleep(gapMs);
    emit?.({ camera: 'porch', kind: 'motion', phase: 'start', at: Date.now(), t: i * 1000, score: 0.2 });
  }
  const push = await nextEventPush();
  const e = emitted.find((x) => Math.round(x.ev.at) === push.payload.t);
  if (!e) throw new Error(`a push for no event: ${JSON.stringify(push.payload)}`);
  const cam = String(push.payload.cam);
  const tag = `hearth-${cam}-${push.payload.t}`;
  // The worker shows the notification and posts the payload to the open app (its toast) in
  // parallel. The page waits for that message (no IPC), then polls getNotifications every 2 ms:
  // polled from the start, the polls delayed or lost the worker's push now and then.
  const wait = (ms: number) =>
    page.evaluate(
      async ({ tag, t, ms }) => {
        const w = window as unknown as { __hearthPushes?: number[] };
        const end = Date.now() + ms;
        while (!w.__hearthPushes?.includes(t) && Date.now() < end) await new Promise((r) => setTimeout(r, 1));
        const reg = await navigator.serviceWorker.ready;
        while (Date.now() < end) {
          if ((await reg.getNotifications({ tag })).length > 0) return Date.now();
          await new Promise((r) => setTimeout(r, 2));
        }
        return undefined;
      },
      { tag, t: Number(push.payload.t), ms },
    );
  let lost = 0;
  let d0 = 0;
  let shownAt: number | undefined;
  while (shownAt === undefined) {
    if (lost > 3) throw new Error(`no notification ${tag} after ${lost} deliveries`);
    const shownP = wait(5_000);
    d0 = Date.now();
    await cdp.send('ServiceWorker.deliverPushMessage', {
      origin: `${srv.url}/`,
      registrationId,
      data: JSON.stringify(push.payload),
    });
    shownAt = await shownP;
    if (shownAt === undefined) {
      lost++;
      const seen = await page.evaluate(
        async ({ tag, t }) => ({
          message: (window as unknown as { __hearthPushes: number[] }).__hearthPushes.includes(t),
          notification: (await (await navigator.serviceWorker.ready).getNotifications({ tag })).length > 0,
        }),
        { tag, t: Number(push.payload.t) },
      );
      console.log(`  a delivery of ${tag} showed nothing in 5 s: ${JSON.stringify(seen)}`);
    }
  }
  lostDeliveries += lost;
  const s: Sample = {
    leg1: push.at - e.ev.at,
    detect: e.emittedAt - e.ev.at,
    leg2: shownAt - d0,
    decrypt: push.decryptMs,
  };
  const label = i < WARMUP ? `warmup ${i + 1}` : `event ${i - WARMUP + 1}`;
  console.log(
    `${label.padEnd(9)}: at → push POST ${s.leg1.toFixed(0)} ms${mode === 'hub' ? ` (of which detection ${s.detect.toFixed(0)} ms)` : ''}, decrypt ${s.decrypt.toFixed(1)} ms, deliver → notification ${s.leg2.toFixed(0)} ms${lost ? ` (after ${lost} lost deliveries, 5 s each)` : ''}`,
  );
  if (i >= WARMUP) samples.push(s);
}

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? Number.NaN;
};
const line = (name: string, xs: number[]) =>
  `| ${name} | ${q(xs, 0.5).toFixed(0)} | ${q(xs, 0.95).toFixed(0)} | ${Math.min(...xs).toFixed(0)} | ${Math.max(...xs).toFixed(0)} |`;
console.log(
  `\nevent → notification (${cpus().length}× ${cpus()[0]?.model ?? '?'}, media ${mode}, N = ${samples.length}, after ${WARMUP} warm-up):`,
);
console.log('| leg | p50 ms | p95 ms | min | max |');
console.log('|---|---|---|---|---|');
if (mode === 'hub')
  console.log(
    line(
      'detection (at → event emitted)',
      samples.map((s) => s.detect),
    ),
  );
if (mode === 'hub')
  console.log(
    line(
      'event emitted → push service has the POST',
      samples.map((s) => s.leg1 - s.detect),
    ),
  );
console.log(
  line(
    'at → push service has the POST',
    samples.map((s) => s.leg1),
  ),
);
console.log(
  line(
    'payload decryption (here; the browser does it)',
    samples.map((s) => s.decrypt),
  ),
);
console.log(
  line(
    'deliverPushMessage → notification exists',
    samples.map((s) => s.leg2),
  ),
);
console.log(
  line(
    'sum (leg 1 + leg 2)',
    samples.map((s) => s.leg1 + s.leg2),
  ),
);
console.log(
  `CDP deliveries that showed nothing within 5 s (re-delivered; the sample is the one that showed): ${lostDeliveries}`,
);
console.log("(a real push service's own delivery time is not included)");

collecting = false;
await chromium.close();
await agent.close();
owner.client.close();
await backend?.close();
await srv.close();
await svc.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
