/**
 * Runs the NAT matrix and prints a line per run, then the Markdown table and the direct-share ratio.
 *
 *   node --conditions=source --import tsx packages/e2e/src/natlab/matrix-cli.ts [topology...]
 *        [--modes hearth,chromium] [--rounds N] [--cold] [--stack relay|server] [--json FILE]
 *
 * `--rounds N` repeats the whole matrix (fresh labs) and adds a summary table with per-topology
 * counts and median TTFF. `--cold` starts the camera's ffmpeg on the offer instead of before it.
 *
 * Needs root, ip, nft, ffmpeg and /usr/bin/chromium.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { isTopologyName, TOPOLOGY_NAMES, type TopologyName } from '@hearth/testkit';
import {
  directShare,
  formatMatrixMarkdown,
  formatMatrixSummary,
  type MatrixMode,
  type MatrixRun,
  type MatrixStack,
  runNatMatrix,
} from './matrix.js';

const argv = process.argv.slice(2);
let modes: MatrixMode[] = ['hearth', 'chromium'];
let jsonFile: string | undefined;
let rounds = 1;
let warmCamera = true;
let stack: MatrixStack = 'relay';
const topologies: TopologyName[] = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i] ?? '';
  if (a === '--modes') modes = (argv[++i] ?? '').split(',') as MatrixMode[];
  else if (a === '--json') jsonFile = argv[++i];
  else if (a === '--rounds') rounds = Math.max(1, Number(argv[++i] ?? 1));
  else if (a === '--cold') warmCamera = false;
  else if (a === '--stack') stack = argv[++i] === 'server' ? 'server' : 'relay';
  else if (isTopologyName(a)) topologies.push(a);
  else throw new Error(`unknown argument ${a} (topologies: ${TOPOLOGY_NAMES.join(', ')})`);
}
const t0 = Date.now();
console.log(
  `# ${new Date().toISOString()} ${cpus().length}x ${cpus()[0]?.model ?? '?'} node ${process.version}`,
);
const runs: MatrixRun[] = [];
for (let r = 1; r <= rounds; r++) {
  if (rounds > 1) console.log(`# round ${r}/${rounds}`);
  const these = await runNatMatrix(topologies.length > 0 ? topologies : TOPOLOGY_NAMES, {
    modes,
    warmCamera,
    stack,
    log: (l) => console.log(l),
  });
  console.log(`\n${formatMatrixMarkdown(these)}\n`);
  runs.push(...these);
}
if (rounds > 1) console.log(`${formatMatrixSummary(runs)}\n`);
const h = directShare(runs, 'hearth');
const c = directShare(runs, 'chromium');
const fmt = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
console.log(`direct share: hearth ${fmt(h)}, chromium ${fmt(c)}, ratio ${fmt(h / c)}`);
console.log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
if (jsonFile) writeFileSync(jsonFile, JSON.stringify(runs, null, 2));
