// An on-demand RTSP camera with ONVIF (the testkit's gst-rtsp-server fixture, 10 s GOP, plus its
// ONVIF device/media service that checks the UsernameToken digest and really forces a keyframe in
// the encoder) → MediaHub → real Chromium on loopback. A cold view makes the agent call
// SetSynchronizationPoint; the keyframe the agent starts from is the forced one, not the camera's
// scheduled one. Control: with a wrong ONVIF password the fixture refuses the request, nothing is
// forced, the agent logs the refusal, and the view still starts (from the camera's own keyframe).
//
// The camera's encoder keeps running between views, as a real camera's does: a warm camera on the
// same (shared) RTSP mount holds it.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  collectClosedPeers,
  type FixtureKeyframe,
  type RtspServerHandle,
  rtspServerAvailable,
  startRtspServer,
} from '@hearth/testkit';
import { MediaHub, parseCamerasYaml, type ViewerSession } from '../../src/media/index.js';
import {
  type BrowserHandle,
  CHROMIUM,
  childPidsNamed,
  launchBrowser,
  openViewerPage,
  type PageServer,
  startPageServer,
  type ViewerPage,
} from './harness.js';

const rtsp = rtspServerAvailable();
const skip = !existsSync(CHROMIUM) ? `${CHROMIUM} not installed` : rtsp === true ? false : rtsp;
const USER = 'installer';
const PASS = 'On:vif@Pass/w0rd';
const WRONG = 'not-the-password';

describe('on-demand RTSP camera with ONVIF: a cold view asks the camera for a keyframe', { skip }, () => {
  let server: RtspServerHandle;
  let hub: MediaHub;
  let page: PageServer;
  let browser: BrowserHandle;
  let viewer: ViewerPage;
  const sessions = new Map<string, ViewerSession>();
  const logged: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void =>
      void logged.push({ level, obj: obj as Record<string, unknown>, msg: msg ?? '' });

  before(async () => {
    server = await startRtspServer({
      gopSeconds: 10,
      fps: 15,
      size: '640x360',
      shared: true,
      auth: { user: USER, password: PASS },
      onvif: { user: USER, password: PASS },
    });
    const onvifUrl = server.onvif?.url;
    assert.ok(onvifUrl);
    const u = new URL(server.url);
    const src = `rtsp://\${RTSP_USER}:\${RTSP_PASS}@${u.host}${u.pathname}`;
    const cams = parseCamerasYaml(
      'cameras:\n' +
        `  holder: ${src}\n` +
        `  porch:\n    source: ${src}\n    mode: on-demand\n    onvif: ${onvifUrl}\n` +
        `  porch_bad:\n    source: ${src}\n    mode: on-demand\n` +
        `    onvif: {url: "${onvifUrl}", password: "\${WRONG_PASS}"}\n`,
      { env: { RTSP_USER: USER, RTSP_PASS: PASS, WRONG_PASS: WRONG } },
    );
    hub = new MediaHub(cams, {
      logger: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') },
    });
    page = await startPageServer();
    browser = await launchBrowser();
    viewer = await openViewerPage(
      browser.browser,
      page.url,
      async (camera, offer) => {
        const { answerSdp, session } = await hub.createViewerSession(camera, offer);
        sessions.set(session.id, session);
        return { answerSdp, sessionId: session.id };
      },
      async (id) => {
        await sessions.get(id)?.close();
        sessions.delete(id);
      },
    );
    // The camera's encoder runs (the warm camera reads it) before anyone views the on-demand ones.
    await hub.source('holder').waitForKeyframe(30_000);
  });

  after(async () => {
    await browser?.close();
    await page?.close();
    const open = hub?.stats().sessions.length ?? 0;
    if (open > 0) console.log(`# ${open} session(s) still open at the end (closed by hub.close)`);
    await hub?.close();
    await server?.close();
    for (const pid of await childPidsNamed('ffmpeg')) process.kill(pid, 'SIGKILL');
    await collectClosedPeers(); // else the process can linger after its last test (testkit native-gc.ts)
  });

  /** The fixture's most recent keyframe when the camera's source gets its first keyframe. */
  function fixtureKeyframeAtFirstAgentKeyframe(camera: string): Promise<FixtureKeyframe | undefined> {
    return new Promise((resolve) =>
      hub.source(camera).once('keyframe', () => resolve(server.keyframes().at(-1))),
    );
  }

  it('calls SetSynchronizationPoint (authenticated), and the view starts from the forced keyframe', async () => {
    const onvif = server.onvif;
    assert.ok(onvif);
    const s0 = onvif.stats();
    const forced0 = server.forcedRequests();
    assert.equal(hub.source('porch').running, false, 'on-demand: no ffmpeg before the view');
    const firstKey = fixtureKeyframeAtFirstAgentKeyframe('porch');

    const r = await viewer.view('porch', 25_000);
    assert.equal(r.width, 640);
    const s1 = onvif.stats();
    const sync = s1.synchronizationPoints - s0.synchronizationPoints;
    assert.ok(sync >= 1 && sync <= 3, `authenticated SetSynchronizationPoint calls: ${sync}`);
    assert.equal(s1.unauthorized, s0.unauthorized, 'every request authenticated');
    assert.equal(s1.wrongProfile, 0, 'the profile whose stream URI is ours (the main one, listed second)');
    assert.ok(server.forcedRequests() - forced0 >= 1, 'the encoder was asked for a keyframe');
    // Causality: when the agent got its first keyframe, the camera's latest keyframe was a forced one,
    // emitted off its GOP schedule (fewer frames after the previous keyframe than the GOP).
    const k = await firstKey;
    assert.ok(k, 'the fixture reported keyframes');
    assert.equal(
      k.forced,
      true,
      `the agent's first keyframe was the camera's scheduled one (${JSON.stringify(k)})`,
    );
    assert.ok(
      k.gap < server.keyInterval,
      `forced keyframe ${k.gap} frames after the previous (GOP ${server.keyInterval})`,
    );
    assert.deepEqual(hub.keyframeRequestStats('porch')?.failures, 0);
    const ok = logged.filter((l) => l.msg === 'ONVIF keyframe requested' && l.obj.camera === 'porch');
    assert.ok(ok.length >= 1);
    console.log(
      `# ttff ${r.ttffMs.toFixed(0)} ms, SetSynchronizationPoint ×${sync}, forced keyframe ${k.gap} frames after the previous (GOP ${server.keyInterval})`,
    );
    await viewer.stop(r.sessionId);
  });

  it('control: a wrong ONVIF password is refused, logged, nothing is forced, and the view still starts', async () => {
    const onvif = server.onvif;
    assert.ok(onvif);
    const s0 = onvif.stats();
    const forced0 = server.forcedRequests();
    const firstKey = fixtureKeyframeAtFirstAgentKeyframe('porch_bad');

    const r = await viewer.view('porch_bad', 25_000);
    assert.equal(r.width, 640, 'the view works without the keyframe request');
    const s1 = onvif.stats();
    assert.ok(s1.unauthorized - s0.unauthorized >= 1, 'the fixture refused the request');
    assert.equal(s1.synchronizationPoints, s0.synchronizationPoints, 'no authenticated request');
    assert.equal(server.forcedRequests(), forced0, 'no keyframe forced');
    const k = await firstKey;
    assert.equal(k?.forced, false, 'the view started from the camera’s own keyframe');
    assert.deepEqual(
      hub.keyframeRequestStats('porch_bad'),
      { requests: 1, failures: 1 },
      'no retry after a refusal',
    );
    const warn = logged.find(
      (l) => l.level === 'warn' && l.obj.camera === 'porch_bad' && l.obj.reason === 'onvif-unauthorized',
    );
    assert.ok(warn, 'the refusal is logged');
    await viewer.stop(r.sessionId);
  });

  it('never logs the credentials', () => {
    assert.ok(logged.length > 0);
    for (const l of logged) {
      const line = JSON.stringify(l);
      for (const s of [PASS, encodeURIComponent(PASS), WRONG]) assert.ok(!line.includes(s), line);
    }
  });
});
