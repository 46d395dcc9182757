/**
 * Full-stack NAT matrix from the command line (root; ip, nft, openssl, ffmpeg, /usr/bin/chromium):
 *
 *   node --conditions=source --import tsx packages/e2e/src/natlab/fullstack-cli.ts \
 *     [topology... | agentSymmetric] [--rounds N] [--no-mdns] [--json FILE]
 *
 * Each run is a fresh lab with the real `hearth server`, `hearth agent` and the viewer app in Chromium
 * (see fullstack.ts). Prints one line per run, then a markdown table per topology (path counts,
 * median pairing time and TTFF).
 */
import { writeFileSync } from 'node:fs';
import { arch, cpus } from 'node:os';
import { isTopologyName, TOPOLOGY_NAMES, type TopologyName } from '@hearth/testkit';
import {
  AGENT_SYMMETRIC,
  type FullStackOptions,
  type FullStackRun,
  formatFullStackRun,
  runFullStackTopology,
} from './fullstack.js';

const argv = process.argv.slice(2);
let rounds = 1;
let json: string | undefined;
let mdns = true;
const names: string[] = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i] ?? '';
  if (a === '--rounds') rounds = Number(argv[++i]);
  else if (a === '--json') json = argv[++i];
  else if (a === '--no-mdns') mdns = false;
  else names.push(a);
}
const cases: { label: string; topology: TopologyName; opts: FullStackOptions }[] = [];
for (const n of names.length > 0 ? names : [...TOPOLOGY_NAMES, 'agentSymmetric']) {
  if (n === 'agentSymmetric')
    cases.push({
      label: n,
      topology: 'oneSymmetric',
      opts: { spec: AGENT_SYMMETRIC, label: n },
    });
  else if (isTopologyName(n)) cases.push({ label: n, topology: n, opts: {} });
  else {
    process.stderr.write(`unknown topology ${n}\n`);
    process.exit(2);
  }
}

const runs: FullStackRun[] = [];
for (let r = 0; r < rounds; r++) {
  for (const c of cases) {
    const run = await runFullStackTopology(c.topology, { ...c.opts, mdns });
    runs.push(run);
    process.stdout.write(`${formatFullStackRun(run)}\n`);
  }
}

const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? null) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};
const ms = (v: number | null): string => (v === null ? '-' : `${Math.round(v)} ms`);
process.stdout.write(
  `\n${rounds} round(s), ${cpus().length} × ${cpus()[0]?.model ?? '?'} (${arch()}), ${new Date().toISOString().slice(0, 10)}\n\n`,
);
process.stdout.write(
  '| Topology | Connected | Status line (settled) | At first frame | Viewer pair | Pairing (median) | TTFF (median) |\n| --- | --- | --- | --- | --- | --- | --- |\n',
);
for (const c of cases) {
  const rs = runs.filter((r) => r.label === c.label);
  const count = (xs: (string | null)[]): string => {
    const m = new Map<string, number>();
    for (const x of xs) m.set(x ?? '-', (m.get(x ?? '-') ?? 0) + 1);
    return [...m].map(([k, n]) => `${k} ${n}/${rs.length}`).join(', ');
  };
  const ok = rs.filter((r) => r.connected).length;
  process.stdout.write(
    `| \`${c.label}\` | ${ok}/${rs.length} | ${count(rs.map((r) => r.state))} | ${count(rs.map((r) => r.firstState))} | ${count(rs.map((r) => (r.pairText ? `${r.pairText}, ${r.transport}` : null)))} | ${ms(median(rs.flatMap((r) => (r.pairingMs === null ? [] : [r.pairingMs]))))} | ${ms(median(rs.flatMap((r) => (r.ttffMs === null ? [] : [r.ttffMs]))))} |\n`,
  );
}
if (json) writeFileSync(json, JSON.stringify(runs, null, 2));
