// Motion detection through real ffmpeg (issue 9): an 8 s H.264 clip (a grey scene; a white box
// crosses it from 3 s to 5.5 s) is a camera of the camera map with `motion:`. The same ffmpeg that
// copies its H.264 (no re-encode) also writes the small grayscale copy; the detector finds one
// event, starting at the box's first frame. Control: with a zone where the box never goes, the
// same clip gives none (so the event comes from what the camera saw). Every ffmpeg is killed by PID.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { EventRecording } from '../../src/events/index.js';
import { type CameraEvent, MediaHub, parseCamerasYaml } from '../../src/media/index.js';
import { childPidsNamed } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'hearth-motion-'));
const clip = join(dir, 'door.mp4');
const hubs: MediaHub[] = [];
after(async () => {
  await Promise.all(hubs.map((h) => h.close()));
  for (const pid of await childPidsNamed('ffmpeg')) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function haveFfmpeg(): boolean {
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs the camera map `yaml` until `until` (content ms of the analysis copy); returns what it saw. */
async function watch(yaml: string, until: number) {
  const events: CameraEvent[] = [];
  const recordings: EventRecording[] = [];
  let recorded: () => void = () => {};
  const gotRecording = new Promise<void>((r) => {
    recorded = r;
  });
  const hub = new MediaHub(parseCamerasYaml(yaml), {
    onCameraEvent: (e) => events.push(e),
    onRecording: (r) => {
      recordings.push(r);
      recorded();
    },
  });
  hubs.push(hub);
  const src = hub.source('door');
  let maxProcs = 0;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no analysis frame at ${until} ms`)), until + 20_000);
    src.on('gray', (f) => {
      maxProcs = Math.max(maxProcs, hub.stats().ffmpegProcesses);
      if (f.t >= until) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  if (events.length > 0) await Promise.race([gotRecording, new Promise((r) => setTimeout(r, 15_000))]);
  const stats = hub.stats();
  await hub.close();
  return { events, recordings, stats, mode: src.mode, maxProcs };
}

describe('motion detection on a real camera stream', {
  skip: haveFfmpeg() ? false : 'ffmpeg not installed',
}, () => {
  it('one event from the box, in the same ffmpeg that copies the H.264; none with a zone it never enters', {
    timeout: 60_000,
  }, async () => {
    execFileSync('ffmpeg', [
      ...['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i'],
      "color=c=0x5a5a5a:s=320x180:r=10:d=8[bg];color=c=white:s=48x48:r=10[box];[bg][box]overlay=x='20+(t-3)*60':y=20:enable='between(t,3,5.5)':shortest=1",
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-bf', '0', '-pix_fmt', 'yuv420p', clip],
    ]);
    const cam = (motion: string) => `cameras:\n  door:\n    source: file:${clip}\n    motion: ${motion}\n`;
    const [seen, control] = await Promise.all([
      watch(cam('{minDuration: 1, cooldown: 30, fps: 4, preRoll: 2, postRoll: 1}'), 9500),
      // The box runs along the top (y 20..68 of 180); this zone is the bottom fifth.
      watch(cam('{minDuration: 1, cooldown: 30, fps: 4, zones: [[[0,0.8],[1,0.8],[1,1],[0,1]]]}'), 9500),
    ]);
    console.log(`events: ${JSON.stringify(seen.events)}; stats ${JSON.stringify(seen.stats.motion)}`);
    assert.equal(seen.mode, 'copy', 'the H.264 is copied, not re-encoded');
    assert.equal(seen.maxProcs, 1, 'one ffmpeg per camera: the analysis copy is its second output');
    const starts = seen.events.filter((e) => e.phase === 'start');
    assert.equal(starts.length, 1, JSON.stringify(seen.events));
    const s = starts[0] as CameraEvent;
    // Content time: the box appears at 3.0 s; at 4 frames a second its first frame is 3000 ms.
    assert.ok(s.t >= 3000 && s.t <= 3500, `start at ${s.t} ms of the stream`);
    assert.equal(s.camera, 'door');
    assert.equal(s.kind, 'motion');
    const end = seen.events.find((e) => e.phase === 'end');
    assert.ok(end && end.phase === 'end' && end.t >= 5000 && end.t <= 6500, JSON.stringify(end));
    assert.equal(seen.stats.motion.door?.events, 1);
    // Control: same clip, same detector, a zone the box never enters.
    assert.deepEqual(control.events, []);
    assert.deepEqual(control.recordings, []);
    assert.equal(control.maxProcs, 1);

    // The recording: a snapshot of the trigger frame and a clip with the H.264 copied.
    assert.equal(seen.recordings.length, 1);
    const rec = seen.recordings[0] as EventRecording;
    assert.equal(rec.camera, 'door');
    assert.ok(rec.snapshot, 'a snapshot');
    assert.ok(!rec.truncated);
    // The snapshot is from the trigger's moment, not the start event's (1 s later): the box is where
    // it is between 3.0 s (x 20..68) and 3.5 s (x 50..98), covering x 50..68, not where it is at 4.0 s
    // (x 80..128). The analysis copy lags the H.264 by ffmpeg's decode of it (up to ~0.5 s here).
    const gray = execFileSync(
      'ffmpeg',
      [
        '-hide_banner',
        '-loglevel',
        'error',
        '-f',
        'mjpeg',
        '-i',
        'pipe:0',
        '-f',
        'rawvideo',
        '-pix_fmt',
        'gray',
        'pipe:1',
      ],
      { input: Buffer.from(rec.snapshot) },
    );
    assert.equal(gray.length, 320 * 180);
    const mean = (x0: number, x1: number, y0: number, y1: number) => {
      let sum = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) sum += gray[y * 320 + x] as number;
      return sum / ((x1 - x0) * (y1 - y0));
    };
    const row = Array.from({ length: 320 }, (_, x) => (gray[40 * 320 + x] as number) > 200);
    const box = `${row.indexOf(true)}..${row.lastIndexOf(true)}`;
    assert.ok(mean(52, 66, 26, 60) > 200, `the box near its first position: it is at x ${box}`);
    assert.ok(mean(100, 128, 26, 60) < 140, `not where it is at the start event: it is at x ${box}`);
    // The clip: fragmented MP4, H.264, from the pre-roll's keyframe (≤ 1.0 s) to 1 s after the end.
    const mp4 = join(dir, 'event.mp4');
    writeFileSync(mp4, rec.clip);
    const probe = JSON.parse(
      execFileSync(
        'ffprobe',
        ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name', '-of', 'json', mp4],
        {
          encoding: 'utf8',
        },
      ),
    ) as { streams: { codec_name: string }[]; format: { duration: string } };
    assert.equal(probe.streams[0]?.codec_name, 'h264');
    const dur = Number(probe.format.duration);
    assert.ok(dur >= 5 && dur <= 8, `clip ${dur} s`);
    assert.ok(Buffer.from(rec.clip).includes(Buffer.from('moof')), 'fragmented');
    // Copied, not re-encoded: the clip's largest NAL unit (an IDR slice) is byte for byte in the source.
    const annexb = (f: string) =>
      execFileSync(
        'ffmpeg',
        [
          '-hide_banner',
          '-loglevel',
          'error',
          '-i',
          f,
          '-c:v',
          'copy',
          '-bsf:v',
          'h264_mp4toannexb',
          '-f',
          'h264',
          'pipe:1',
        ],
        {
          maxBuffer: 64 * 1024 * 1024,
        },
      );
    const nals = annexb(mp4)
      .toString('latin1')
      .split('\u0000\u0000\u0001')
      .sort((a, b) => b.length - a.length);
    assert.ok((nals[0]?.length ?? 0) > 500);
    assert.ok(
      annexb(clip)
        .toString('latin1')
        .includes(nals[0] as string),
      'the IDR slice is the source’s own bytes',
    );
  });
});
