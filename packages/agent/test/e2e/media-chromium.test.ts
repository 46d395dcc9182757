// Real Chromium (playwright-core, /usr/bin/chromium) ← werift ← ffmpeg testsrc, on loopback only,
// with plain unsigned signaling through page.exposeFunction.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
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

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not installed`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MediaHub → Chromium', { skip }, () => {
  let hub: MediaHub;
  let server: PageServer;
  let browser: BrowserHandle;
  let viewer: ViewerPage;
  const sessions = new Map<string, ViewerSession>();

  before(async () => {
    const cams = parseCamerasYaml(
      // On-demand: these tests check that ffmpeg stops after the last viewer leaves.
      [
        'cameras:',
        '  front: { source: testsrc?size=640x360&fps=15&gop=2, mode: on-demand }',
        '  slow: { source: testsrc?size=640x360&fps=15&gop=10, mode: on-demand }',
        '',
      ].join('\n'),
    );
    hub = new MediaHub(cams, { source: { stopDelayMs: 500 } });
    server = await startPageServer();
    browser = await launchBrowser();
    viewer = await openViewerPage(
      browser.browser,
      server.url,
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
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await hub?.close();
    for (const pid of await childPidsNamed('ffmpeg')) process.kill(pid, 'SIGKILL');
  });

  it('decodes frames, and the count keeps increasing', async () => {
    const r = await viewer.view('front');
    assert.equal(r.width, 640);
    assert.equal(r.height, 360);
    const session = sessions.get(r.sessionId);
    assert.ok(session);
    assert.equal(session.peer.connectionState, 'connected');
    assert.match(session.peer.answerSdp, /^a=fingerprint:sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/m);
    assert.match(session.peer.answerSdp, /a=sendonly/);
    assert.match(session.peer.answerSdp, /packetization-mode=1/);
    assert.equal(session.peer.getLocalFingerprint()?.algorithm, 'sha-256');
    const pair = await session.peer.selectedCandidatePair();
    assert.ok(pair, 'selected pair');
    assert.equal(pair.local, 'host');
    assert.ok(['host', 'prflx'].includes(pair.remote), pair.remote);
    const n1 = await viewer.framesDecoded(r.sessionId);
    await sleep(1000);
    const n2 = await viewer.framesDecoded(r.sessionId);
    assert.ok(n1 > 0, `framesDecoded ${n1}`);
    assert.ok(n2 >= n1 + 5, `framesDecoded ${n1} → ${n2}`);
    await viewer.stop(r.sessionId);
    assert.equal(hub.stats().viewers.front, 0);
  });

  it('two sessions on one camera share exactly one ffmpeg', async () => {
    const a = await viewer.view('front');
    const b = await viewer.view('front');
    const st = hub.stats();
    assert.equal(st.viewers.front, 2);
    assert.equal(st.ffmpegProcesses, 1);
    const pids = await childPidsNamed('ffmpeg');
    assert.deepEqual(pids, [...st.ffmpegPids]);
    await sleep(500);
    assert.ok((await viewer.framesDecoded(a.sessionId)) > 0);
    assert.ok((await viewer.framesDecoded(b.sessionId)) > 0);
    await viewer.stop(a.sessionId);
    await viewer.stop(b.sessionId);
    assert.equal(hub.stats().viewers.front, 0);
    // ffmpeg stops stopDelayMs after the last viewer leaves
    for (let i = 0; i < 40 && hub.stats().ffmpegProcesses > 0; i++) await sleep(100);
    assert.equal(hub.stats().ffmpegProcesses, 0);
  });

  it('a new viewer of a warm long-GOP camera starts from the cached GOP, not the next keyframe', async () => {
    const warm = await viewer.view('slow'); // starts ffmpeg (GOP 10 s)
    await sleep(1500); // the next keyframe is ~8.5 s away now
    const r = await viewer.view('slow', 5000);
    const s = sessions.get(r.sessionId);
    assert.ok(s);
    const st = s.peer.stats();
    // Frames since the last keyframe were replayed at once (how many depends on how busy the machine
    // is; without the cache it would be 0 and the view would wait ~8.5 s for the next keyframe).
    assert.ok(st.replayedFrames >= 2, `replayed ${st.replayedFrames}`);
    assert.ok(st.keyframesSent >= 1);
    const n1 = await viewer.framesDecoded(r.sessionId);
    await sleep(700);
    const n2 = await viewer.framesDecoded(r.sessionId);
    assert.ok(n2 > n1, `live frames decoded after the replay (${n1} → ${n2})`);
    await viewer.stop(r.sessionId);
    await viewer.stop(warm.sessionId);
  });

  it('30 new viewers in a row of a long-GOP camera each decode from the cached keyframe: none loses it to a track not yet open', async () => {
    // libdatachannel reports `connected` before it opens the track; a queue started on `connected`
    // handed the replayed keyframe to a closed track in about one view in ten (T1 outliers of
    // 6-9 s at a 10 s GOP: the browser got the GOP's P-frames, lost 0, decoded 0, until the
    // camera's next keyframe). Sequential views make the race likely to show within 30.
    const warm = await viewer.view('slow');
    await sleep(1000);
    const src = hub.source('slow');
    let fromCache = 0;
    const problems: string[] = [];
    for (let i = 0; i < 30; i++) {
      const k0 = src.stats().keyframesIn;
      let id: string | undefined;
      try {
        id = (await viewer.view('slow', 5000)).sessionId;
      } catch (e) {
        problems.push(`view ${i + 1}: ${(e as Error).message}`);
      }
      const st = id ? sessions.get(id)?.peer.stats() : undefined;
      if (st && st.unitsLostNotOpen > 0) problems.push(`view ${i + 1}: ${st.unitsLostNotOpen} units lost`);
      if (id && src.stats().keyframesIn === k0) fromCache++; // decoded with no new camera keyframe
      if (id) await viewer.stop(id);
    }
    assert.deepEqual(problems, []);
    // Nearly every view fits between two of the camera's keyframes (10 s apart), so it can only
    // have decoded the replayed one.
    assert.ok(fromCache >= 20, `only ${fromCache} of 30 views decoded before a new camera keyframe`);
    await viewer.stop(warm.sessionId);
  });

  it('rejects unknown cameras and bad offers with typed errors', async () => {
    await assert.rejects(hub.createViewerSession('nope', 'v=0'), {
      reason: 'unknown-camera',
      code: 'E_NO_CAMERA',
    });
    await assert.rejects(hub.createViewerSession('front', 'garbage'), {
      reason: 'bad-offer',
      code: 'E_BAD_SDP',
    });
    for (let i = 0; i < 150 && hub.stats().ffmpegProcesses > 0; i++) await sleep(100);
    assert.equal(hub.stats().ffmpegProcesses, 0);
  });
});
