/**
 * Drives `probe-cli` inside a lab: a reflector in the server namespace, mapping and punch probes from
 * hosts behind the NATs, and a TCP reachability check. `classifyLab()` runs them all and returns what
 * was observed, in the same shape as a topology's `expected`.
 */
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LabHost, LabProcess, NatLab } from './lab.js';
import type { MappingKind } from './topologies.js';

const here = fileURLToPath(import.meta.url);
const fromSource = here.endsWith('.ts');
/** The probe script, next to this module (TypeScript under `--conditions=source`, JavaScript in dist). */
export const PROBE_SCRIPT = join(dirname(here), fromSource ? 'probe-cli.ts' : 'probe-cli.js');
/** Directory the probe runs in, so `--import tsx` resolves from the workspace. */
const PACKAGE_DIR = resolve(dirname(here), '..', '..');

/** The node command line that runs the probe script (absolute paths: it runs inside namespaces). */
export function probeCommand(args: readonly string[]): { cmd: string; args: string[]; cwd: string } {
  const pre = fromSource ? ['--import', 'tsx'] : [];
  return { cmd: process.execPath, args: [...pre, PROBE_SCRIPT, ...args], cwd: PACKAGE_DIR };
}

export const DEFAULT_PORTS = { udp: [3478, 3479] as const, dns: 53, tcp: 3480 } as const;

export interface Reflector {
  readonly host: LabHost;
  readonly ip: string;
  readonly udpPorts: readonly number[];
  readonly tcpPort: number;
  readonly httpPort: number | undefined;
  readonly process: LabProcess;
  stop(): Promise<void>;
}

export interface ReflectorOptions {
  readonly udpPorts?: readonly number[];
  readonly tcpPort?: number;
  /** Also serve a small HTML page (body text in `<h1 id="body">`, requester in `<p id="remote">`). */
  readonly httpPort?: number;
  readonly httpBody?: string;
}

/** Starts the reflector (UDP 3478, 3479 and 53, TCP 3480 by default) on a host, usually `server`. */
export async function startReflector(
  lab: NatLab,
  host: LabHost = lab.hosts.server,
  opts: ReflectorOptions = {},
): Promise<Reflector> {
  const udpPorts = opts.udpPorts ?? [...DEFAULT_PORTS.udp, DEFAULT_PORTS.dns];
  const tcpPort = opts.tcpPort ?? DEFAULT_PORTS.tcp;
  const args = ['serve', '--udp', udpPorts.join(','), '--tcp', String(tcpPort)];
  if (opts.httpPort !== undefined)
    args.push('--http', String(opts.httpPort), '--body', opts.httpBody ?? 'hearth');
  const c = probeCommand(args);
  const proc = lab.spawn(host, c.cmd, c.args, { cwd: c.cwd });
  try {
    await proc.waitForLine(/"event":"ready"/, 15_000);
  } catch (e) {
    await proc.kill();
    throw e;
  }
  return {
    host,
    ip: host.ip,
    udpPorts,
    tcpPort,
    httpPort: opts.httpPort,
    process: proc,
    stop: () => proc.kill(),
  };
}

async function runProbe<T>(
  lab: NatLab,
  host: LabHost,
  args: readonly string[],
  timeoutMs: number,
): Promise<T> {
  const c = probeCommand(args);
  const r = await lab.exec(host, c.cmd, c.args, { cwd: c.cwd, timeoutMs });
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`probe ${args[0]} on ${host.name} gave no result (exit ${r.code}): ${r.stderr.trim()}`);
  }
}

export interface Endpoint {
  readonly ip: string;
  readonly port: number;
}

export interface MappingResult {
  readonly ok: boolean;
  readonly kind: MappingKind | 'partial';
  readonly local: Endpoint;
  readonly results: readonly { port: number; mapped: Endpoint | null }[];
}

/** From one UDP socket on `host`, asks the reflector on each port for the mapped address. */
export function probeMapping(
  lab: NatLab,
  host: LabHost,
  target: { ip: string; ports: readonly number[] },
  opts: { timeoutMs?: number } = {},
): Promise<MappingResult> {
  const t = opts.timeoutMs ?? 1500;
  const args = ['mapping', '--server', target.ip, '--ports', target.ports.join(','), '--local-ip', host.ip];
  return runProbe<MappingResult>(lab, host, [...args, '--timeout', String(t)], t + 15_000);
}

export interface PunchSide {
  readonly ok: boolean;
  readonly role: string;
  readonly local: Endpoint;
  readonly mapped: Endpoint | null;
  readonly peer: { role: string; pub: Endpoint; local: Endpoint } | null;
  readonly via: 'local' | 'public' | null;
  readonly sent: number;
  readonly received: number;
}

export interface PunchResult {
  /** Both sides received a punch and an ack directly from the other. */
  readonly ok: boolean;
  readonly via: 'local' | 'public' | null;
  readonly a: PunchSide;
  readonly b: PunchSide;
}

/** Simultaneous UDP hole punch between two hosts, rendezvous through the reflector. */
export async function holePunch(
  lab: NatLab,
  a: LabHost,
  b: LabHost,
  reflector: Reflector,
  opts: { timeoutMs?: number; port?: number } = {},
): Promise<PunchResult> {
  const t = opts.timeoutMs ?? 4000;
  const session = randomBytes(6).toString('hex');
  const port = String(opts.port ?? reflector.udpPorts[0] ?? DEFAULT_PORTS.udp[0]);
  const run = (h: LabHost): Promise<PunchSide> =>
    runProbe<PunchSide>(
      lab,
      h,
      ['punch', '--server', reflector.ip, '--port', port, '--session', session, '--role', h.name].concat([
        '--local-ip',
        h.ip,
        '--timeout',
        String(t),
      ]),
      t + 15_000,
    );
  const [ra, rb] = await Promise.all([run(a), run(b)]);
  const ok = ra.ok && rb.ok;
  return { ok, via: ok ? ra.via : null, a: ra, b: rb };
}

export interface TcpResult {
  readonly ok: boolean;
  readonly banner?: string;
  readonly error?: string;
  readonly ms: number;
}

export function probeTcp(
  lab: NatLab,
  host: LabHost,
  target: { ip: string; port: number },
  opts: { timeoutMs?: number } = {},
): Promise<TcpResult> {
  const t = opts.timeoutMs ?? 2000;
  const args = ['tcp', '--host', target.ip, '--port', String(target.port), '--timeout', String(t)];
  return runProbe<TcpResult>(lab, host, args, t + 15_000);
}

export interface Classification {
  readonly agentMapping: MappingKind | 'partial';
  readonly viewerMapping: MappingKind | 'partial';
  readonly punch: boolean;
  readonly punchVia: 'local' | 'public' | null;
  readonly viewerUdp: boolean;
  readonly agentTcp: boolean;
  readonly viewerTcp: boolean;
  /** The viewer's UDP to port 53 works (the DNS exception of a UDP-blocking router). */
  readonly viewerDns: boolean;
  readonly details: {
    readonly agentMapping: MappingResult;
    readonly viewerMapping: MappingResult;
    readonly punch: PunchResult;
  };
}

/** Runs every probe on a lab's agent and viewer (starting a reflector on the server if none is given). */
export async function classifyLab(lab: NatLab, reflector?: Reflector): Promise<Classification> {
  const refl = reflector ?? (await startReflector(lab));
  try {
    const { agent, viewer } = lab.hosts;
    const target = { ip: refl.ip, ports: refl.udpPorts.filter((p) => p !== DEFAULT_PORTS.dns) };
    const tcpTarget = { ip: refl.ip, port: refl.tcpPort };
    const [am, vm, at, vt, dns] = await Promise.all([
      probeMapping(lab, agent, target),
      probeMapping(lab, viewer, target),
      probeTcp(lab, agent, tcpTarget),
      probeTcp(lab, viewer, tcpTarget),
      probeMapping(lab, viewer, { ip: refl.ip, ports: [DEFAULT_PORTS.dns] }),
    ]);
    const punch = await holePunch(lab, agent, viewer, refl);
    return {
      agentMapping: am.kind,
      viewerMapping: vm.kind,
      punch: punch.ok,
      punchVia: punch.via,
      viewerUdp: vm.ok,
      agentTcp: at.ok,
      viewerTcp: vt.ok,
      viewerDns: dns.ok,
      details: { agentMapping: am, viewerMapping: vm, punch },
    };
  } finally {
    if (!reflector) await refl.stop();
  }
}
