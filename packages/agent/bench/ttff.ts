/**
 * T1: time to first frame, viewer "view" (offer creation in the page) → first decoded frame
 * (requestVideoFrameCallback) in Chromium, werift ← ffmpeg testsrc, loopback, plain signaling.
 *
 * For each camera GOP (default 4 s and 10 s) the camera is kept warm by a background subscriber (as
 * when someone else is watching, or a recorder runs), so views land at random phases of the GOP. Rounds
 * alternate A (GOP cache on, the shipped behaviour) and B (cache off: wait for the camera's next
 * keyframe, as a plain relay does).
 *
 *   node --conditions=source --import tsx packages/agent/bench/ttff.ts [--sessions 20] [--gops 4,10]
 *        [--baseline 5] [--rounds 5] [--write]
 *
 * --sessions: cache-on sessions per GOP (≥ 20 for T1); --baseline: cache-off sessions per GOP
 * (0 to skip); --write: also write packages/agent/BENCH-RESULTS.md.
 *
 * The pieces (page server, browser, viewer page, ttffSample, summarize) live in
 * test/e2e/harness.ts so the signed-signaling variant (T2) can reuse them with its own SignalFn.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { MediaHub, parseCamerasYaml, type ViewerSession } from '../src/media/index.js';
import {
  childPidsNamed,
  launchBrowser,
  openViewerPage,
  startPageServer,
  summarize,
  type TtffSummary,
  ttffSample,
  type ViewResult,
} from '../test/e2e/harness.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '20' },
    gops: { type: 'string', default: '4,10' },
    baseline: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '5' },
    write: { type: 'boolean', default: false },
  },
});
const nOn = Number(values.sessions);
const nOff = Number(values.baseline);
const rounds = Math.max(1, Number(values.rounds));
const gops = String(values.gops)
  .split(',')
  .map(Number)
  .filter((g) => g > 0);

const yaml = `cameras:\n${gops.map((g) => `  gop${g}: testsrc?size=1280x720&fps=15&gop=${g}`).join('\n')}\n`;
const hub = new MediaHub(parseCamerasYaml(yaml), { source: { stopDelayMs: 2000 } });
const server = await startPageServer();
const browser = await launchBrowser();
const sessions = new Map<string, ViewerSession>();
let replayCache = true;
const summaries: TtffSummary[] = [];
const fmt = (x: number) => x.toFixed(0).padStart(6);

try {
  const viewer = await openViewerPage(
    browser.browser,
    server.url,
    async (camera, offer) => {
      const { answerSdp, session } = await hub.createViewerSession(camera, offer, { replayCache });
      sessions.set(session.id, session);
      return { answerSdp, sessionId: session.id };
    },
    async (id) => {
      await sessions.get(id)?.close();
      sessions.delete(id);
    },
  );
  for (const g of gops) {
    const camera = `gop${g}`;
    const keeper = hub.source(camera).subscribe(() => undefined); // keep the camera warm
    await hub.source(camera).waitForKeyframe(10_000);
    // warm-up view (first Chromium decoder start is slower)
    await ttffSample(viewer, camera, 0);
    const on: ViewResult[] = [];
    const off: ViewResult[] = [];
    for (let r = 0; r < rounds; r++) {
      const wantOn = Math.ceil((nOn * (r + 1)) / rounds) - on.length;
      const wantOff = Math.ceil((nOff * (r + 1)) / rounds) - off.length;
      replayCache = true;
      for (let i = 0; i < wantOn; i++) on.push(await ttffSample(viewer, camera, 700));
      replayCache = false;
      for (let i = 0; i < wantOff; i++) off.push(await ttffSample(viewer, camera, 700, g * 1000 + 10_000));
      process.stderr.write(
        `  ${camera} round ${r + 1}/${rounds}: ${on.length} cached, ${off.length} baseline\n`,
      );
    }
    replayCache = true;
    keeper.unsubscribe();
    summaries.push(summarize(`GOP ${g} s, GOP cache on`, on));
    if (off.length) summaries.push(summarize(`GOP ${g} s, cache off (baseline)`, off));
  }
} finally {
  await browser.close();
  await server.close();
  await hub.close();
  for (const pid of await childPidsNamed('ffmpeg')) process.kill(pid, 'SIGKILL');
}

const sh = (cmd: string, args: string[]): string => {
  try {
    return (
      execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .split('\n')[0]
        ?.trim() ?? ''
    );
  } catch {
    return 'unknown';
  }
};
const machine = `${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${sh('uname', ['-sr'])}, Node ${process.version}, ${sh('/usr/bin/chromium', ['--version'])}, ${sh('ffmpeg', ['-version']).split(' Copyright')[0]}`;
const date = new Date().toISOString();

console.log(`\nT1 time to first frame (ms), testsrc 1280x720@15, loopback, plain signaling — ${date}`);
console.log(machine);
console.log(
  'case                                   n   p50    p95    max | signal p50/p95 | connected p50/p95',
);
for (const s of summaries) {
  console.log(
    `${s.label.padEnd(36)} ${String(s.n).padStart(3)} ${fmt(s.ttff.p50)} ${fmt(s.ttff.p95)} ${fmt(s.ttff.max)} | ${fmt(s.signal.p50)} ${fmt(s.signal.p95)} | ${fmt(s.connected.p50)} ${fmt(s.connected.p95)}`,
  );
}
const cached = summaries.filter((s) => s.label.includes('cache on'));
const worstP95 = Math.max(...cached.map((s) => s.ttff.p95));
console.log(
  `\nworst p95 with the GOP cache: ${worstP95.toFixed(0)} ms (target ≤ 600 ms): ${worstP95 <= 600 ? 'MET' : 'NOT MET'}`,
);

if (values.write) {
  const rows = summaries
    .map(
      (s) =>
        `| ${s.label} | ${s.n} | ${s.ttff.p50.toFixed(0)} | ${s.ttff.p95.toFixed(0)} | ${s.ttff.max.toFixed(0)} | ${s.signal.p50.toFixed(0)} / ${s.signal.p95.toFixed(0)} | ${s.connected.p50.toFixed(0)} / ${s.connected.p95.toFixed(0)} |`,
    )
    .join('\n');
  const md = `# Agent media benchmarks

## T1: time to first frame (view → first decoded frame in Chromium)

- Date: ${date}
- Machine: ${machine}
- Command: \`node --conditions=source --import tsx packages/agent/bench/ttff.ts ${process.argv.slice(2).join(' ')}\`
- Setup: ffmpeg testsrc 1280x720 @ 15 fps, libx264 ultrafast/zerolatency baseline, fixed GOP; werift 0.24.4 →
  Chromium (headless, playwright-core) on 127.0.0.1 only; plain unsigned signaling through
  \`page.exposeFunction\`. The camera is kept warm (another subscriber), and each view starts after a random
  0–700 ms gap, so views land at random phases of the GOP. Rounds alternate A (GOP cache on) and B (cache
  off: wait for the camera's next keyframe, as a relay without a cache does), ${rounds} rounds.
- "view" = \`performance.now()\` before \`createOffer\` in the page; first frame = \`requestVideoFrameCallback\`.
  "signal" = view → answer applied (includes both sides' ICE gathering); "connected" = view → ICE/DTLS connected.

| Case | n | TTFF p50 ms | TTFF p95 ms | max ms | signal p50 / p95 ms | connected p50 / p95 ms |
|---|---|---|---|---|---|---|
${rows}

Worst p95 with the GOP cache: **${worstP95.toFixed(0)} ms** (target ≤ 600 ms whatever the GOP: ${worstP95 <= 600 ? 'met' : 'not met'}).
`;
  writeFileSync(new URL('../BENCH-RESULTS.md', import.meta.url), md);
  console.log('wrote packages/agent/BENCH-RESULTS.md');
}
