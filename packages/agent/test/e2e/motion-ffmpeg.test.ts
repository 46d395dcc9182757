// Motion detection through real ffmpeg (issue 9): an 8 s H.264 clip (a grey scene; a white box
// crosses it from 3 s to 5.5 s) is a camera of the camera map with `motion:`. The same ffmpeg that
// copies its H.264 (no re-encode) also writes the small grayscale copy; the detector finds one
// event, starting at the box's first frame. Control: with a zone where the box never goes, the
// same clip gives none (so the event comes from what the camera saw). Every ffmpeg is killed by PID.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
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
  const hub = new MediaHub(parseCamerasYaml(yaml), { onCameraEvent: (e) => events.push(e) });
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
  const stats = hub.stats();
  await hub.close();
  return { events, stats, mode: src.mode, maxProcs };
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
      watch(cam('{minDuration: 1, cooldown: 30, fps: 4}'), 9500),
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
    assert.equal(control.maxProcs, 1);
  });
});
