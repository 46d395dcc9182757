// Real ffmpeg: testsrc → CameraSource. Spawns ffmpeg; every process is killed by PID at the end.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  type AccessUnit,
  CameraSource,
  type MediaError,
  NAL,
  nalType,
  parseCameraSource,
  type RestartedEvent,
} from '../../src/media/index.js';
import { childPidsNamed } from './harness.js';

const sources: CameraSource[] = [];
after(async () => {
  await Promise.all(sources.map((s) => s.close()));
  for (const pid of await childPidsNamed('ffmpeg')) process.kill(pid, 'SIGKILL');
});

function make(src: string, opts: ConstructorParameters<typeof CameraSource>[2] = {}): CameraSource {
  const s = new CameraSource('cam', parseCameraSource('cam', src), {
    stopDelayMs: 300,
    backoffInitialMs: 100,
    ...opts,
  });
  sources.push(s);
  return s;
}

function nextUnits(s: CameraSource, n: number, timeoutMs = 10_000): Promise<AccessUnit[]> {
  return new Promise((resolve, reject) => {
    const got: AccessUnit[] = [];
    const t = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`only ${got.length}/${n} access units in ${timeoutMs} ms`));
    }, timeoutMs);
    const sub = s.subscribe((au) => {
      got.push(au);
      if (got.length === n) {
        clearTimeout(t);
        sub.unsubscribe();
        resolve(got);
      }
    });
  });
}

describe('CameraSource with real ffmpeg', () => {
  it('testsrc yields an IDR with SPS/PPS, and the GOP cache starts with it', async () => {
    const s = make('testsrc?size=320x240&fps=15&gop=1');
    const aus = await nextUnits(s, 20);
    const first = aus.find((a) => a.keyframe);
    assert.ok(first, 'a keyframe within 20 frames at GOP 1 s');
    const types = first.nals.map(nalType);
    assert.ok(types.includes(NAL.SPS) && types.includes(NAL.PPS) && types.includes(NAL.IDR), types.join(','));
    assert.ok(types.indexOf(NAL.SPS) < types.indexOf(NAL.IDR));
    const snap = s.snapshot();
    assert.ok(snap.units.length >= 1);
    assert.equal(snap.units[0]?.keyframe, true);
    assert.match(s.profileLevelId() ?? '', /^42[0-9a-f]{2}1f$/);
    assert.equal(s.stats().mode, 'transcode');
    // stops after the last subscriber leaves (stopDelayMs 300)
    await once(s, 'stopped');
    assert.equal(s.running, false);
    assert.equal(s.pid, undefined);
  });

  it('restarts ffmpeg after it is killed, emits error and restarted, and frames resume', async () => {
    const s = make('testsrc?size=320x240&fps=15&gop=1');
    const errors: MediaError[] = [];
    s.on('error', (e) => errors.push(e));
    let count = 0;
    const sub = s.subscribe(() => {
      count++;
    });
    try {
      await s.waitForKeyframe(10_000);
      const pid1 = s.pid;
      assert.ok(pid1);
      // events.once() would reject on the 'error' event that precedes 'restarted'.
      const restarted = new Promise<[RestartedEvent]>((r) => s.once('restarted', (e) => r([e])));
      process.kill(pid1, 'SIGKILL');
      const [ev] = await restarted;
      assert.equal(ev.camera, 'cam');
      assert.ok(ev.pid && ev.pid !== pid1);
      assert.equal(errors[0]?.reason, 'ffmpeg-exited');
      assert.equal(errors[0]?.code, 'E_CAMERA_OFFLINE');
      assert.match(errors[0]?.message ?? '', /SIGKILL/);
      const before = count;
      await new Promise((r) => s.once('keyframe', r));
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(count > before + 2, `frames resumed (${count - before})`);
      assert.equal(s.stats().restarts, 1);
      assert.deepEqual(await childPidsNamed('ffmpeg'), [ev.pid]);
    } finally {
      sub.unsubscribe();
      await s.close();
    }
  });

  it('one ffmpeg however many subscribers', async () => {
    const s = make('testsrc?size=320x240&fps=15&gop=1');
    const subs = Array.from({ length: 4 }, () => s.subscribe(() => undefined));
    await s.waitForKeyframe(10_000);
    const pids = await childPidsNamed('ffmpeg');
    assert.equal(pids.length, 1);
    assert.equal(pids[0], s.pid);
    assert.equal(s.stats().subscribers, 4);
    for (const x of subs.slice(0, 3)) x.unsubscribe();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(s.running, true, 'one subscriber left keeps it running');
    subs[3]?.unsubscribe();
    await once(s, 'stopped');
    assert.deepEqual(await childPidsNamed('ffmpeg'), []);
  });

  it('file: an H.264 file is passed through (-c copy), anything else is transcoded to H.264', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hearth-file-'));
    try {
      const make2s = (name: string, codec: string[]) => {
        const f = join(dir, name);
        execFileSync('ffmpeg', [
          '-v',
          'error',
          '-f',
          'lavfi',
          '-i',
          'testsrc=size=320x240:rate=15',
          '-t',
          '2',
          ...codec,
          '-g',
          '15',
          '-y',
          f,
        ]);
        return f;
      };
      const h264 = make2s('h264.mp4', ['-c:v', 'libx264', '-pix_fmt', 'yuv420p']);
      const mpeg4 = make2s('mpeg4.mp4', ['-c:v', 'mpeg4']);
      for (const [file, mode] of [
        [h264, 'copy'],
        [mpeg4, 'transcode'],
      ] as const) {
        const s = make(`file:${file}`);
        const aus = await nextUnits(s, 10);
        const key = aus.find((a) => a.keyframe);
        assert.ok(key, `${mode}: a keyframe`);
        assert.ok(key.nals.map(nalType).includes(NAL.IDR), `${mode}: H.264 IDR out`);
        assert.equal(s.stats().mode, mode);
        await s.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('file: a looped H.264 file (copy) keeps producing past its end, on one ffmpeg', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hearth-loop-'));
    try {
      const f = join(dir, 'one-second.mp4');
      execFileSync('ffmpeg', [
        ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=15', '-t', '1'],
        ...['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-g', '15', '-y', f],
      ]);
      const s = make(`file:${f}`);
      // 15 frames per pass: 40 frames need the loop to work at least twice (the explicit
      // mp4toannexb filter used to stop the output after the first pass).
      const aus = await nextUnits(s, 40, 15_000);
      assert.ok(aus.filter((a) => a.keyframe).length >= 2, 'a keyframe on each pass');
      assert.equal(s.stats().mode, 'copy');
      assert.equal(s.stats().restarts, 0, 'no stall and restart needed');
      await s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a dead source reports a redacted error and keeps retrying with backoff', async () => {
    const logged: string[] = [];
    const capture = (obj: object, msg?: string): void => void logged.push(JSON.stringify(obj) + (msg ?? ''));
    const s = make('rtsp://alice:V3ryS3cret@127.0.0.1:1/nothing', {
      backoffInitialMs: 50,
      sourceCodec: 'h264',
      logger: { info: capture, warn: capture, error: capture, debug: capture },
    });
    const errors: MediaError[] = [];
    s.on('error', (e) => errors.push(e));
    const sub = s.subscribe(() => undefined);
    try {
      const deadline = Date.now() + 10_000;
      while (errors.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(errors.length >= 2, 'retried');
      for (const e of errors) {
        assert.ok(!e.message.includes('V3ryS3cret') && !e.message.includes('alice'), e.message);
      }
      assert.ok(logged.length > 0);
      for (const l of logged) assert.ok(!l.includes('V3ryS3cret') && !l.includes('alice'), l);
      assert.ok(
        logged.some((l) => l.includes('rtsp://***@127.0.0.1:1/nothing')),
        'redacted URL logged',
      );
    } finally {
      sub.unsubscribe();
      await s.close();
    }
  });
});
