/**
 * Motion-detection CPU per camera (issue 9). One 720p H.264 camera (a looping file) in a MediaHub,
 * without `motion:` (ffmpeg `-c copy` only) and with it (the same ffmpeg also decodes and writes
 * a 96×54 grayscale copy at `fps` on fd 3; the detector and the event recorder run here, in Node),
 * alternating round by round. CPU is utime+stime from /proc: the camera's ffmpeg (/proc/PID/stat),
 * this process (/proc/self/stat, all threads) and the children this process reaped in the window
 * (cutime+cstime: the recorder's snapshot and clip encodes). No viewers: a warm camera runs anyway.
 *
 *   node --conditions=source --import tsx packages/agent/bench/motion-cpu.ts [--seconds 60]
 *        [--rounds 1] [--fps 4]
 *
 * The clip: 20 s, 1280×720, 15 fps, x264 baseline 2 Mbit/s, GOP 2 s, SMPTE bars with temporal noise
 * (so it costs what a camera costs to decode) and a box that moves from 5 s to 9 s of each loop
 * (one motion event per loop).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type GrayFrame, MOTION_DEFAULTS, MotionDetector } from '../src/events/motion.js';
import { MediaHub, parseCamerasYaml } from '../src/media/index.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    rounds: { type: 'string', default: '1' },
    fps: { type: 'string', default: String(MOTION_DEFAULTS.fps) },
  },
});
const seconds = Number(values.seconds);
const rounds = Math.max(1, Number(values.rounds));
const fps = Number(values.fps);
const TICK = 100; // USER_HZ on Linux

const dir = mkdtempSync(join(tmpdir(), 'hearth-motion-cpu-'));
const clip = join(dir, 'clip-720p.mp4');
process.stdout.write('encoding a 20 s 720p 15 fps H.264 clip (2 Mbit/s, a box moving from 5 s to 9 s)… ');
execFileSync('ffmpeg', [
  ...['-hide_banner', '-loglevel', 'error'],
  ...['-f', 'lavfi', '-i', 'smptehdbars=size=1280x720:rate=15'],
  ...['-f', 'lavfi', '-i', 'color=c=white:size=160x160:rate=15'],
  '-filter_complex',
  "[0:v]noise=alls=6:allf=t[bg];[bg][1:v]overlay=x='100+(t-5)*250':y=280:enable='between(t,5,9)'[v]",
  ...['-map', '[v]', '-t', '20', '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'baseline'],
  ...['-pix_fmt', 'yuv420p', '-b:v', '2M', '-maxrate', '2M', '-bufsize', '4M', '-g', '30', '-bf', '0'],
  ...['-y', clip],
]);
console.log('done');

/** utime+stime (and cutime+cstime) in ticks; NaN once the process is gone. */
function ticks(pid: number | 'self'): { own: number; children: number } {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return { own: Number.NaN, children: Number.NaN };
  }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}

interface Row {
  motion: boolean;
  ffmpeg: number;
  node: number;
  children: number;
  grayFrames: number;
  events: number;
  recorded: number;
  restarts: number;
  mode: string;
}
const rows: Row[] = [];
const collected: GrayFrame[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measure(motion: boolean): Promise<Row> {
  const yaml = motion
    ? `cameras:\n  cam:\n    source: file:${clip}\n    motion:\n      fps: ${fps}\n`
    : `cameras:\n  cam: file:${clip}\n`;
  const hub = new MediaHub(parseCamerasYaml(yaml));
  const src = hub.source('cam');
  if (motion && collected.length === 0)
    src.on('gray', (f) => {
      if (collected.length < 400) collected.push({ ...f, data: Uint8Array.from(f.data) });
    });
  // settle: ffmpeg probed, spawned and streaming
  const end = Date.now() + 15_000;
  while (
    (hub.stats().ffmpegPids.length === 0 || (hub.stats().cameras[0]?.framesIn ?? 0) === 0) &&
    Date.now() < end
  )
    await sleep(100);
  await sleep(3000);
  const pid = hub.stats().ffmpegPids[0];
  const s0 = hub.stats();
  const f0 = pid ? ticks(pid).own : Number.NaN;
  const n0 = ticks('self');
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const wall = (performance.now() - t0) / 1000;
  const n1 = ticks('self');
  const f1 = pid ? ticks(pid).own : Number.NaN;
  const s1 = hub.stats();
  const m0 = s0.motion.cam;
  const m1 = s1.motion.cam;
  const row: Row = {
    motion,
    ffmpeg: (f1 - f0) / TICK / wall,
    node: (n1.own - n0.own) / TICK / wall,
    children: (n1.children - n0.children) / TICK / wall,
    grayFrames: (s1.cameras[0]?.analysisFrames ?? 0) - (s0.cameras[0]?.analysisFrames ?? 0),
    events: (m1?.events ?? 0) - (m0?.events ?? 0),
    recorded: (m1?.recorded ?? 0) - (m0?.recorded ?? 0),
    restarts: (s1.cameras[0]?.restarts ?? 0) - (s0.cameras[0]?.restarts ?? 0),
    mode: s1.cameras[0]?.mode ?? '?',
  };
  await hub.close();
  await sleep(500);
  return row;
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
for (let r = 0; r < rounds; r++) {
  for (const motion of r % 2 === 0 ? [false, true] : [true, false]) {
    const row = await measure(motion);
    rows.push(row);
    console.log(
      `round ${r + 1} ${motion ? 'motion   ' : 'no motion'}: ffmpeg ${pct(row.ffmpeg)}, node ${pct(row.node)}, reaped encodes ${pct(row.children)} of a core; gray frames ${row.grayFrames} (${(row.grayFrames / seconds).toFixed(2)}/s), events ${row.events}, clips ${row.recorded}, ffmpeg restarts ${row.restarts}, ffmpeg mode ${row.mode}`,
    );
  }
}

// The detector alone, on the frames the camera produced (a copy, so nothing else runs meanwhile).
let perFrameUs = Number.NaN;
if (collected.length > 0) {
  const reps = Math.max(1, Math.ceil(20_000 / collected.length));
  const t0 = performance.now();
  let events = 0;
  for (let i = 0; i < reps; i++) {
    const d = new MotionDetector({ ...MOTION_DEFAULTS, fps });
    collected.forEach((f, k) => {
      events += d.push({ ...f, t: (k * 1000) / fps }).length;
    });
  }
  perFrameUs = ((performance.now() - t0) * 1000) / (reps * collected.length);
  console.log(
    `detector alone: ${perFrameUs.toFixed(1)} µs per 96×54 frame (${reps * collected.length} frames, ${events} events), i.e. ${((perFrameUs * fps) / 1e4).toFixed(4)} % of a core at ${fps} fps`,
  );
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const pick = (m: boolean, k: 'ffmpeg' | 'node' | 'children') =>
  med(rows.filter((x) => x.motion === m).map((x) => x[k]));
console.log(
  `\nmotion CPU (${cpus().length}× ${cpus()[0]?.model ?? '?'}, ${seconds} s windows, median of ${rounds}, motion fps ${fps}):`,
);
console.log('| case | ffmpeg (% of a core) | node | reaped encodes | total |');
console.log('|---|---|---|---|---|');
for (const m of [false, true]) {
  const f = pick(m, 'ffmpeg');
  const n = pick(m, 'node');
  const c = pick(m, 'children');
  console.log(`| ${m ? 'motion' : 'no motion'} | ${pct(f)} | ${pct(n)} | ${pct(c)} | ${pct(f + n + c)} |`);
}
const df = pick(true, 'ffmpeg') - pick(false, 'ffmpeg');
const dn = pick(true, 'node') - pick(false, 'node');
const dc = pick(true, 'children') - pick(false, 'children');
console.log(`| delta | ${pct(df)} | ${pct(dn)} | ${pct(dc)} | ${pct(df + dn + dc)} |`);
rmSync(dir, { recursive: true, force: true });
process.exit(0);
