// Real ffmpeg, no WebRTC: warm cameras run with no subscriber and always hold a keyframe; on-demand
// cameras run only while subscribed. Every ffmpeg is killed by PID at the end.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { MediaHub, NAL, nalType, parseCamerasYaml } from '../../src/media/index.js';
import { createMediaBackend, type MediaBackendHandle } from '../../src/media-backend.js';
import { childPidsNamed } from './harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers) await c().catch(() => undefined);
  for (const pid of await childPidsNamed('ffmpeg')) process.kill(pid, 'SIGKILL');
});

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const YAML = [
  'cameras:',
  '  nursery: testsrc?size=320x240&fps=15&gop=2',
  '  porch:',
  '    source: testsrc?size=320x240&fps=15&gop=2',
  '    mode: on-demand',
  '',
].join('\n');

describe('warm and on-demand cameras (real ffmpeg)', () => {
  it('a warm camera runs with no subscriber and its GOP cache holds a keyframe; an on-demand one runs only while subscribed', async () => {
    const hub = new MediaHub(parseCamerasYaml(YAML), { source: { stopDelayMs: 300, backoffInitialMs: 100 } });
    closers.push(() => hub.close());
    const warm = hub.source('nursery');
    const cold = hub.source('porch');
    assert.equal(warm.cameraMode, 'warm');
    assert.equal(cold.cameraMode, 'on-demand');

    // Warm: running without any viewer, and a keyframe (with SPS/PPS) is cached.
    await warm.waitForKeyframe(15_000);
    assert.equal(warm.subscriberCount, 0);
    assert.equal(warm.running, true);
    const snap = warm.snapshot();
    assert.equal(snap.units[0]?.keyframe, true);
    const types = snap.units[0]?.nals.map(nalType) ?? [];
    assert.ok(types.includes(NAL.SPS) && types.includes(NAL.IDR), types.join(','));

    // On-demand: nothing runs until a subscriber comes.
    assert.equal(cold.running, false);
    assert.equal(cold.pid, undefined);
    assert.deepEqual(await childPidsNamed('ffmpeg'), [warm.pid]);
    const st = hub.stats();
    assert.equal(st.ffmpegProcesses, 1);
    assert.deepEqual(
      st.cameras.map((c) => [c.camera, c.cameraMode, c.running]),
      [
        ['nursery', 'warm', true],
        ['porch', 'on-demand', false],
      ],
    );

    const sub = cold.subscribe(() => undefined);
    await cold.waitForKeyframe(15_000);
    assert.equal(cold.running, true);
    assert.equal(hub.stats().ffmpegProcesses, 2);
    sub.unsubscribe();
    await once(cold, 'stopped');
    assert.equal(cold.running, false);

    // A warm camera's subscribers come and go; it keeps running well past stopDelayMs.
    const wpid = warm.pid;
    const wsub = warm.subscribe(() => undefined);
    wsub.unsubscribe();
    await sleep(1000);
    assert.equal(warm.running, true);
    assert.equal(warm.pid, wpid);
    assert.ok(warm.snapshot().units[0]?.keyframe, 'still a keyframe in the cache');
    assert.deepEqual(await childPidsNamed('ffmpeg'), [wpid]);

    await hub.close();
    assert.equal(warm.running, false);
    assert.deepEqual(await childPidsNamed('ffmpeg'), []);
  });

  it('a warm camera whose ffmpeg dies is restarted with no viewer, and caches a keyframe again', async () => {
    const hub = new MediaHub(parseCamerasYaml('cameras:\n  cam: testsrc?size=320x240&fps=15&gop=1\n'), {
      source: { backoffInitialMs: 100 },
    });
    closers.push(() => hub.close());
    const src = hub.source('cam');
    const errors: string[] = [];
    src.on('error', (e) => errors.push(e.reason));
    await src.waitForKeyframe(15_000);
    const pid1 = src.pid;
    assert.ok(pid1);
    const restarted = new Promise<void>((r) => src.once('restarted', () => r()));
    process.kill(pid1, 'SIGKILL');
    await restarted;
    assert.deepEqual(errors, ['ffmpeg-exited']);
    await until('a keyframe after the restart', () => src.snapshot().units[0]?.keyframe === true);
    assert.ok(src.pid && src.pid !== pid1);
    assert.equal(src.subscriberCount, 0);
    assert.equal(src.stats().restarts, 1);
    await hub.close();
    assert.deepEqual(await childPidsNamed('ffmpeg'), []);
  });

  it('createMediaBackend starts warm cameras without a viewer; close() stops them', async () => {
    let media: MediaBackendHandle | undefined = createMediaBackend({ cameras: parseCamerasYaml(YAML) });
    closers.push(() => media?.close() ?? Promise.resolve());
    const m = media;
    await m.hub.source('nursery').waitForKeyframe(15_000);
    const st = m.stats();
    assert.equal(st.ffmpegProcesses, 1);
    assert.deepEqual(st.viewers, { nursery: 0, porch: 0 });
    assert.deepEqual(m.cameras(), [
      { name: 'nursery', online: true },
      { name: 'porch', online: true },
    ]);
    await m.close();
    media = undefined;
    assert.deepEqual(await childPidsNamed('ffmpeg'), []);
  });
});
