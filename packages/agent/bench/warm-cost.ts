/**
 * What keeping cameras warm costs: N warm RTSP cameras (the testkit's gst-rtsp-server fixture,
 * H.264, `-c copy` in the agent) in one MediaHub with no viewer for a while, then the agent's CPU
 * (this process: /proc/self/stat utime+stime) and each camera ffmpeg's CPU (/proc/PID/stat) and RSS.
 *
 *   node --conditions=source --import tsx packages/agent/bench/warm-cost.ts [--cameras 1]
 *        [--seconds 60] [--size 1920x1080] [--fps 15] [--bitrate 4000] [--gop 10]
 *
 * Every camera is its own RTSP session (its own ffmpeg, its own TCP stream) on one shared fixture
 * encoder, so the fixture's x264 cost does not grow with N. The fixture's CPU is printed for
 * information; it is not the agent's cost.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startRtspServer } from '@hearth/testkit';
import { MediaHub, parseCamerasYaml } from '../src/media/index.js';

const { values } = parseArgs({
  options: {
    cameras: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '60' },
    size: { type: 'string', default: '1920x1080' },
    fps: { type: 'string', default: '15' },
    bitrate: { type: 'string', default: '4000' },
    gop: { type: 'string', default: '10' },
  },
});
const n = Math.max(1, Number(values.cameras));
const seconds = Math.max(1, Number(values.seconds));
const CLK_TCK = 100; // getconf CLK_TCK on Linux/x86-64
const PAGE_KB = 4;

/** utime + stime in seconds, and RSS in MiB, of a process. */
function proc(pid: number | 'self'): { cpuS: number; rssMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the ")" of comm: state is field 3; utime 14, stime 15; rss 24 (pages).
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  const rssPages = Number(f[21]);
  return { cpuS: (utime + stime) / CLK_TCK, rssMiB: (rssPages * PAGE_KB) / 1024 };
}

const server = await startRtspServer({
  gopSeconds: Number(values.gop),
  fps: Number(values.fps),
  size: String(values.size),
  bitrateKbps: Number(values.bitrate),
  shared: true,
});
const u = new URL(server.url);
const yaml = `cameras:\n${Array.from({ length: n }, (_, i) => `  cam${i}: rtsp://${u.host}${u.pathname}`).join('\n')}\n`;
const rssBefore = proc('self').rssMiB;
const hub = new MediaHub(parseCamerasYaml(yaml));
try {
  // Warm-up: every camera has a keyframe cached (up to one GOP after its ffmpeg connects).
  await Promise.all(hub.cameraNames().map((c) => hub.source(c).waitForKeyframe(60_000)));
  const pids = hub.stats().ffmpegPids;
  const bytesIn = new Map<string, number>();
  for (const c of hub.cameraNames()) {
    // An 'au' listener is not a subscriber: the cameras stay viewer-less.
    hub.source(c).on('au', (au) => bytesIn.set(c, (bytesIn.get(c) ?? 0) + au.bytes));
  }
  const t0 = performance.now();
  const self0 = proc('self');
  const ff0 = pids.map((p) => proc(p));
  const srv0 = proc(server.pid);
  const frames0 = hub.stats().cameras.map((c) => c.framesIn);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const wall = (performance.now() - t0) / 1000;
  const self1 = proc('self');
  const ff1 = pids.map((p) => proc(p));
  const srv1 = proc(server.pid);
  const st = hub.stats();
  const pct = (a: number, b: number) => (((b - a) / wall) * 100).toFixed(1);
  const agentPct = pct(self0.cpuS, self1.cpuS);
  console.log(
    `warm-cost: ${n} camera(s), ${values.size} @ ${values.fps} fps, ${values.bitrate} kbit/s, GOP ${values.gop} s, no viewer, ${wall.toFixed(1)} s`,
  );
  console.log(`restarts during the run: ${st.cameras.reduce((a, c) => a + c.restarts, 0)}`);
  console.log(
    `agent (node) CPU ${agentPct}% of one core (${(Number(agentPct) / n).toFixed(1)}% per camera); RSS ${self1.rssMiB.toFixed(0)} MiB (${(self1.rssMiB - rssBefore).toFixed(0)} MiB more than before the hub)`,
  );
  let ffTotal = 0;
  st.cameras.forEach((c, i) => {
    const a = ff0[i];
    const b = ff1[i];
    if (!a || !b) return;
    const p = Number(pct(a.cpuS, b.cpuS));
    ffTotal += p;
    console.log(
      `  ${c.camera}: ffmpeg ${c.mode} CPU ${p.toFixed(1)}%, RSS ${b.rssMiB.toFixed(0)} MiB; ${((c.framesIn - (frames0[i] ?? 0)) / wall || 0).toFixed(1)} fps in, ${(((bytesIn.get(c.camera) ?? 0) * 8) / wall / 1000).toFixed(0)} kbit/s in; GOP cache now ${c.gop.frames} frames / ${(c.gop.bytes / 1024).toFixed(0)} KiB${c.gop.truncated ? ' (truncated)' : ''}`,
    );
  });
  const total = Number(agentPct) + ffTotal;
  console.log(
    `total agent + ffmpeg: ${total.toFixed(1)}% of one core, ${(total / n).toFixed(1)}% per camera; ffmpeg RSS ${(ff1.reduce((a, x) => a + x.rssMiB, 0) / n).toFixed(0)} MiB per camera`,
  );
  console.log(
    `(fixture encoder, not the agent: CPU ${pct(srv0.cpuS, srv1.cpuS)}%, RSS ${srv1.rssMiB.toFixed(0)} MiB)`,
  );
} finally {
  await hub.close();
  await server.close();
}
