/**
 * T9: agent CPU per passthrough stream. A 1080p H.264 file at 4 Mbit/s is looped by one ffmpeg
 * (`-c copy`, no transcoding) into a MediaHub and fanned out to 1, then 4, Chromium viewers, with
 * the old stack (werift, test/support/werift-peer.ts) and the new one (libdatachannel) alternating
 * in the same run. CPU is this process's utime+stime from /proc/self/stat over the window (ffmpeg
 * and Chromium are other processes; ffmpeg's CPU is reported apart, from /proc/PID/stat).
 *
 *   node --conditions=source --import tsx packages/agent/bench/t9-cpu.ts [--seconds 60] [--rounds 1]
 *        [--viewers 1,4]
 *
 * Run in a loopback-only network namespace (both stacks then bind 127.0.0.1).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MediaHub, parseCamerasYaml, type ViewerSession } from '../src/media/index.js';
import type { PeerFactory } from '../src/media/webrtc.js';
import { launchBrowser, openViewerPage, startPageServer } from '../test/e2e/harness.js';
import { weriftPeerFactory } from '../test/support/werift-peer.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    rounds: { type: 'string', default: '1' },
    viewers: { type: 'string', default: '1,4' },
  },
});
const seconds = Number(values.seconds);
const rounds = Math.max(1, Number(values.rounds));
const viewerCounts = String(values.viewers).split(',').map(Number);
const TICK = 100; // USER_HZ on Linux

const dir = mkdtempSync(join(tmpdir(), 'hearth-t9-'));
const clip = join(dir, 'clip-1080p-4M.mp4');
process.stdout.write('encoding a 20 s 1080p H.264 clip at 4 Mbit/s… ');
execFileSync('ffmpeg', [
  ...['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=30'],
  ...['-t', '20', '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p'],
  ...['-b:v', '4M', '-maxrate', '4M', '-bufsize', '8M', '-g', '60', '-bf', '0', '-y', clip],
]);
console.log('done');

function cpuTicks(pid: number | 'self'): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return Number.NaN; // the process is gone (ffmpeg restarted): reported as n/a
  }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
}
function rssKiB(): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m?.[1] ?? 0);
}

const server = await startPageServer();
const browser = await launchBrowser();
interface Row {
  stack: string;
  viewers: number;
  agentCpu: number;
  ffmpegCpu: number;
  rssMiB: number;
  framesDecoded: number;
  restarts: number;
}
const rows: Row[] = [];

async function measure(stack: string, factory: PeerFactory | undefined, n: number): Promise<Row> {
  const hub = new MediaHub(parseCamerasYaml(`cameras:\n  cam: file:${clip}\n`), {
    source: { stopDelayMs: 500 },
    ...(factory ? { peerFactory: factory } : {}),
  });
  const sessions = new Map<string, ViewerSession>();
  const viewer = await openViewerPage(
    browser.browser,
    server.url,
    async (camera, offer) => {
      const { answerSdp, session } = await hub.createViewerSession(camera, offer);
      sessions.set(session.id, session);
      return { answerSdp, sessionId: session.id };
    },
    async (id) => {
      await sessions.get(id)?.close();
    },
  );
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await viewer.view('cam', 20_000)).sessionId);
  await new Promise((r) => setTimeout(r, 3000)); // settle past the GOP replay
  const ffPid = hub.stats().ffmpegPids[0];
  const a0 = cpuTicks('self');
  const f0 = ffPid ? cpuTicks(ffPid) : 0;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const wall = (performance.now() - t0) / 1000;
  const agentCpu = (cpuTicks('self') - a0) / TICK / wall;
  const ffmpegCpu = ffPid ? (cpuTicks(ffPid) - f0) / TICK / wall : Number.NaN;
  let decoded = 0;
  for (const id of ids) decoded += await viewer.framesDecoded(id);
  const restarts = hub.stats().cameras[0]?.restarts ?? 0;
  const row = {
    stack,
    viewers: n,
    agentCpu,
    ffmpegCpu,
    rssMiB: rssKiB() / 1024,
    framesDecoded: decoded,
    restarts,
  };
  for (const id of ids) await viewer.stop(id);
  await viewer.page.context().close();
  await hub.close();
  return row;
}

for (let r = 0; r < rounds; r++) {
  for (const n of viewerCounts) {
    // Alternate which stack goes first each round.
    const order: [string, PeerFactory | undefined][] =
      r % 2 === 0
        ? [
            ['werift 0.24', weriftPeerFactory],
            ['libdatachannel', undefined],
          ]
        : [
            ['libdatachannel', undefined],
            ['werift 0.24', weriftPeerFactory],
          ];
    for (const [stack, f] of order) {
      const row = await measure(stack, f, n);
      rows.push(row);
      console.log(
        `round ${r + 1} ${stack.padEnd(15)} viewers ${n}: agent ${(row.agentCpu * 100).toFixed(1)}% of a core, ffmpeg ${(row.ffmpegCpu * 100).toFixed(1)}%, RSS ${row.rssMiB.toFixed(0)} MiB, frames decoded ${row.framesDecoded}, ffmpeg restarts ${row.restarts}`,
      );
    }
  }
}

console.log(
  `\nT9 (${cpus().length}× ${cpus()[0]?.model ?? '?'}, ${seconds} s windows, median of ${rounds}):`,
);
console.log('| stack | viewers | agent CPU (% of a core) | per added viewer | ffmpeg CPU |');
console.log('|---|---|---|---|---|');
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
for (const stack of ['werift 0.24', 'libdatachannel']) {
  const by = (n: number) =>
    med(rows.filter((x) => x.stack === stack && x.viewers === n).map((x) => x.agentCpu));
  const first = viewerCounts[0] ?? 1;
  for (const n of viewerCounts) {
    const per = n === first ? '' : `${(((by(n) - by(first)) / (n - first)) * 100).toFixed(1)}%`;
    const ff = med(rows.filter((x) => x.stack === stack && x.viewers === n).map((x) => x.ffmpegCpu));
    console.log(`| ${stack} | ${n} | ${(by(n) * 100).toFixed(1)}% | ${per} | ${(ff * 100).toFixed(1)}% |`);
  }
}
await browser.close();
await server.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
