/**
 * T5 benchmark: the same turnutils_uclient workload against @hearth/relay and coturn's turnserver,
 * alternating A/B rounds on loopback. Prints packets/s, server CPU (from /proc/<pid>/stat), loss,
 * and the ratios; then a 300 allocations x 1 Mbit/s loss run against both.
 *
 *   node --conditions=source --import tsx packages/relay/bench/relay-vs-coturn.ts [rounds]
 *
 * Every process is started here and killed by PID; only 127.0.0.1 is used.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeUdpPort, haveBinary, runUclient, startPeer, stopProcess } from '../test/helpers/coturn.js';

const SECRET = 'bench-secret';
const ROUNDS = Number(process.argv[2] ?? 5);
const here = dirname(fileURLToPath(import.meta.url));
const TICKS = 100; // USER_HZ on Linux

/** Main workload: 50 sessions, 1000 B, 1 ms pacing, no RTCP, channels. */
const MAIN = { m: 50, n: 1500, l: 1000, z: 1 };
/** Loss workload: 300 sessions x 1 Mbit/s (1000 B every 8 ms) for ~4 s. */
const LOSS = { m: 300, n: 500, l: 1000, z: 8 };

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
}

interface Server {
  name: string;
  proc: ChildProcess;
  port: number;
}

async function startHearth(): Promise<Server> {
  const proc = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', join(here, 'relay-process.ts'), SECRET],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error('relay did not start')), 20_000);
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) {
        clearTimeout(t);
        resolve(buf.split('\n')[0]!);
      }
    });
  });
  return { name: 'hearth', proc, port: (JSON.parse(line) as { udpPort: number }).udpPort };
}

async function startCoturn(): Promise<Server> {
  const port = await freeUdpPort();
  const proc = spawn(
    'turnserver',
    [
      '-n',
      '--listening-ip=127.0.0.1',
      '--relay-ip=127.0.0.1',
      `--listening-port=${port}`,
      '--use-auth-secret',
      `--static-auth-secret=${SECRET}`,
      '--realm=hearth.test',
      '--allow-loopback-peers',
      '--no-cli',
      '--no-tls',
      '--no-dtls',
      '--no-tcp-relay',
      '--min-port=40000',
      '--max-port=49999',
      '--no-stdout-log',
      '--log-file=/dev/null',
    ],
    { stdio: 'ignore' },
  );
  await new Promise((r) => setTimeout(r, 1000));
  if (proc.exitCode !== null) throw new Error('turnserver exited');
  return { name: 'coturn', proc, port };
}

interface Round {
  pps: number;
  cpuSeconds: number;
  ppcs: number;
  lossPct: number;
  sent: number;
  received: number;
}

async function round(server: Server, peerPort: number, w: typeof MAIN): Promise<Round> {
  const pid = server.proc.pid!;
  const c0 = cpuTicks(pid);
  const r = await runUclient(
    [
      '-c',
      '-W',
      SECRET,
      '-u',
      'bench',
      '-e',
      '127.0.0.1',
      '-r',
      String(peerPort),
      '-p',
      String(server.port),
      '-m',
      String(w.m),
      '-n',
      String(w.n),
      '-l',
      String(w.l),
      '-z',
      String(w.z),
      '127.0.0.1',
    ],
    120_000,
  );
  const cpuSeconds = (cpuTicks(pid) - c0) / TICKS;
  // Each echoed message crosses the relay twice (client->peer, peer->client).
  const relayed = r.sent + r.received;
  const transmit = Number(/Total transmit time is (\d+)/.exec(r.output)?.[1] ?? Number.NaN);
  return {
    pps: relayed / Math.max(1, transmit),
    cpuSeconds,
    ppcs: relayed / Math.max(cpuSeconds, 0.01),
    lossPct: r.sent > 0 ? (100 * (r.sent - r.received)) / r.sent : 100,
    sent: r.sent,
    received: r.received,
  };
}

function stats(xs: number[]): { median: number; p95: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return { median: q(0.5), p95: q(0.95) };
}

async function main(): Promise<void> {
  if (!haveBinary('turnserver') || !haveBinary('turnutils_uclient') || !haveBinary('turnutils_peer')) {
    console.log('SKIP: coturn (turnserver, turnutils_uclient, turnutils_peer) not installed');
    return;
  }
  const peerPort = await freeUdpPort();
  const peer = await startPeer(peerPort);
  const hearth = await startHearth();
  const coturn = await startCoturn();
  const results: Record<string, Round[]> = { hearth: [], coturn: [] };
  const deadline = Date.now() + 10 * 60_000;
  try {
    console.log(
      `# ${new Date().toISOString()} ${cpus().length}x ${cpus()[0]?.model ?? '?'} node ${process.version}`,
    );
    console.log(
      `# main workload: uclient -c -m ${MAIN.m} -n ${MAIN.n} -l ${MAIN.l} -z ${MAIN.z}, ${ROUNDS} A/B rounds`,
    );
    for (let i = 0; i < ROUNDS && Date.now() < deadline; i++) {
      const order = i % 2 === 0 ? [hearth, coturn] : [coturn, hearth];
      for (const s of order) {
        const r = await round(s, peerPort, MAIN);
        results[s.name]!.push(r);
        console.log(
          `round ${i + 1} ${s.name.padEnd(6)} ${r.pps.toFixed(0).padStart(7)} pkt/s  cpu ${r.cpuSeconds.toFixed(2)} s  ` +
            `${r.ppcs.toFixed(0).padStart(7)} pkt/cpu-s  loss ${r.lossPct.toFixed(3)}% (${r.received}/${r.sent})`,
        );
      }
    }
    const summary: Record<string, Record<string, { median: number; p95: number }>> = {};
    for (const name of ['hearth', 'coturn']) {
      const rs = results[name]!;
      summary[name] = {
        pps: stats(rs.map((r) => r.pps)),
        cpu: stats(rs.map((r) => r.cpuSeconds)),
        ppcs: stats(rs.map((r) => r.ppcs)),
        loss: stats(rs.map((r) => r.lossPct)),
      };
      const s = summary[name]!;
      console.log(
        `${name.padEnd(6)} median ${s.pps!.median.toFixed(0)} pkt/s (p95 ${s.pps!.p95.toFixed(0)}), ` +
          `cpu median ${s.cpu!.median.toFixed(2)} s (p95 ${s.cpu!.p95.toFixed(2)}), ` +
          `${s.ppcs!.median.toFixed(0)} pkt/cpu-s, loss median ${s.loss!.median.toFixed(3)}% (p95 ${s.loss!.p95.toFixed(3)}%)`,
      );
    }
    const h = summary.hearth!;
    const c = summary.coturn!;
    console.log(`ratio hearth/coturn packets/s (median): ${(h.pps!.median / c.pps!.median).toFixed(3)}`);
    console.log(
      `ratio hearth/coturn packets per CPU-second (median): ${(h.ppcs!.median / c.ppcs!.median).toFixed(3)}`,
    );

    console.log(
      `# loss workload: ${LOSS.m} allocations x ~1 Mbit/s (uclient -c -m ${LOSS.m} -n ${LOSS.n} -l ${LOSS.l} -z ${LOSS.z})`,
    );
    for (const s of [hearth, coturn]) {
      if (Date.now() > deadline) break;
      const r = await round(s, peerPort, LOSS);
      console.log(
        `loss300 ${s.name.padEnd(6)} loss ${r.lossPct.toFixed(3)}% (${r.received}/${r.sent}), ` +
          `${r.pps.toFixed(0)} pkt/s, cpu ${r.cpuSeconds.toFixed(2)} s`,
      );
    }
  } finally {
    await stopProcess(hearth.proc);
    await stopProcess(coturn.proc);
    await stopProcess(peer);
  }
}

await main();
