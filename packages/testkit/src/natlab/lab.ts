/**
 * NatLab: builds a NAT topology out of network namespaces, veth pairs, bridges and nftables, runs
 * processes inside it, and tears everything down again (by PID and by namespace name).
 *
 * Requires root, iproute2 (`ip`) and nftables (`nft`). Check `NatLab.available()` first.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type LabHost, type LabPlan, type LabRouter, PREFIX_RE, planLab } from './plan.js';
import {
  isAlive,
  killTree,
  procStartTime,
  type RunResult,
  run,
  runOk,
  runSyncQuiet,
  sleep,
  sleepSync,
} from './proc.js';
import { isTopologyName, TOPOLOGIES, type TopologyName, type TopologySpec, VOID_LINK } from './topologies.js';

export type { LabHost, LabRouter } from './plan.js';
export type { RunResult as ExecResult } from './proc.js';

/** Where each live lab records its owner, so a later run can tell stale leftovers from live labs. */
export const REGISTRY_DIR = '/run/hearth-natlab';
const IP = 'ip';
const NFT = 'nft';

export interface Availability {
  readonly ok: boolean;
  /** Why the lab cannot run here (for `t.skip(reason)`). */
  readonly reason?: string;
}

export interface NatLabOptions {
  /**
   * Namespace prefix (lowercase letters and digits, 2 to 12 chars). Every namespace is
   * `<prefix>-<node>`. Default: `hl` plus 4 random characters, unique on this machine.
   */
  readonly prefix?: string;
}

export interface ExecOptions {
  readonly timeoutMs?: number;
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Throw unless the command exits 0. */
  readonly check?: boolean;
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** `pipe` (default) captures output (see `output()` and `waitForLine()`); `inherit` shows it. */
  readonly stdio?: 'pipe' | 'inherit' | 'ignore';
}

export interface LabProcess {
  readonly pid: number;
  readonly host: LabHost;
  readonly child: ChildProcess;
  /** Settles when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Output captured so far (last 1 MiB of each stream). */
  output(): { stdout: string; stderr: string };
  /** Resolves with the first stdout line matching `re` (including lines already printed). */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM to the process group, then SIGKILL after `graceMs`; resolves once it has exited. */
  kill(graceMs?: number): Promise<void>;
}

interface RegistryRecord {
  prefix: string;
  topology: string;
  pid: number;
  startTime: string | undefined;
  namespaces: string[];
  createdAt: string;
}

export type LabHosts = Readonly<Record<'server' | 'agent' | 'viewer', LabHost>>;

const MAX_CAPTURE = 1 << 20;
const liveLabs = new Set<NatLab>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const lab of [...liveLabs]) lab.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      for (const lab of [...liveLabs]) lab.destroySync();
      process.removeListener(sig, onSignal);
      // Keep the default behaviour (die by the signal) unless someone else handles it.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

async function listNamespaces(): Promise<string[]> {
  const out = await run(IP, ['netns', 'list']);
  return parseNetnsList(out.stdout);
}

function parseNetnsList(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.length > 0);
}

/** `<prefix>-<node>` -> `<prefix>` (node names contain no dash). */
const labPrefixOf = (ns: string): string => ns.slice(0, Math.max(0, ns.lastIndexOf('-')));

function readRegistry(): RegistryRecord[] {
  let files: string[];
  try {
    files = readdirSync(REGISTRY_DIR).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const out: RegistryRecord[] = [];
  for (const f of files) {
    try {
      out.push(JSON.parse(readFileSync(join(REGISTRY_DIR, f), 'utf8')) as RegistryRecord);
    } catch {
      // half-written or foreign file: ignore
    }
  }
  return out;
}

const ownerAlive = (r: RegistryRecord): boolean =>
  r.pid > 0 && isAlive(r.pid) && procStartTime(r.pid) === r.startTime;

async function killNamespacePids(ns: string): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const r = await run(IP, ['netns', 'pids', ns], { timeoutMs: 5000 });
    const pids = r.stdout
      .split(/\s+/)
      .map(Number)
      .filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid);
    if (r.code !== 0 || pids.length === 0) return;
    for (const pid of pids) killTree(pid, 'SIGKILL');
    await sleep(50);
  }
}

function killNamespacePidsSync(ns: string): void {
  for (let i = 0; i < 20; i++) {
    const pids = runSyncQuiet(IP, ['netns', 'pids', ns])
      .split(/\s+/)
      .map(Number)
      .filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid);
    if (pids.length === 0) return;
    for (const pid of pids) killTree(pid, 'SIGKILL');
    sleepSync(50);
  }
}

async function deleteNamespaces(namespaces: readonly string[]): Promise<string[]> {
  const existing = new Set(await listNamespaces());
  const mine = namespaces.filter((n) => existing.has(n));
  await Promise.all(mine.map((n) => killNamespacePids(n)));
  const errors: string[] = [];
  // Sequential: `ip netns del` unmounts under /run/netns and is cheap.
  for (const n of mine) {
    const r = await run(IP, ['netns', 'del', n], { timeoutMs: 10_000 });
    if (r.code !== 0) errors.push(`${n}: ${r.stderr.trim()}`);
  }
  if (errors.length > 0) throw new Error(`could not delete namespaces: ${errors.join('; ')}`);
  return mine;
}

/** Waits until no interface in the namespace reports NO-CARRIER (veth peers come up asynchronously). */
async function waitForCarrier(ns: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = await runOk(IP, ['-n', ns, '-o', 'link', 'show']);
    const down = out
      .split('\n')
      .filter((l) => l.includes('NO-CARRIER') || /state (DOWN|LOWERLAYERDOWN)/.test(l));
    if (down.length === 0) return;
    if (Date.now() > deadline) throw new Error(`links in ${ns} still down: ${down.join(' | ')}`);
    await sleep(20);
  }
}

function randomPrefix(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return `hl${[...randomBytes(4)].map((b) => alphabet[b % alphabet.length]).join('')}`;
}

class LabProcessImpl implements LabProcess {
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stdout = '';
  private stderr = '';
  private done = false;
  private readonly lineWaiters = new Set<() => void>();

  constructor(
    readonly host: LabHost,
    readonly child: ChildProcess,
  ) {
    if (child.pid === undefined) throw new Error('child has no pid');
    this.pid = child.pid;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.stdout = (this.stdout + d).slice(-MAX_CAPTURE);
      for (const w of this.lineWaiters) w();
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-MAX_CAPTURE);
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.done = true;
        for (const w of this.lineWaiters) w();
        resolve({ code, signal });
      });
    });
  }

  output(): { stdout: string; stderr: string } {
    return { stdout: this.stdout, stderr: this.stderr };
  }

  waitForLine(re: RegExp, timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const line = this.stdout.split('\n').find((l) => re.test(l));
        if (line !== undefined) {
          finish();
          resolve(line);
        } else if (this.done) {
          finish();
          reject(
            new Error(`process ${this.pid} exited before printing ${re}; stderr: ${this.stderr.trim()}`),
          );
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re}; stderr: ${this.stderr.trim()}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.lineWaiters.delete(check);
      };
      this.lineWaiters.add(check);
      check();
    });
  }

  async kill(graceMs = 1500): Promise<void> {
    if (this.done) return;
    await killGracefully(this.pid, this.exited, graceMs);
  }
}

export class NatLab {
  readonly prefix: string;
  readonly topology: TopologySpec;
  readonly hosts: LabHosts;
  readonly routers: Readonly<Record<string, LabRouter>>;
  /** Every namespace this lab created. */
  readonly namespaces: readonly string[];
  readonly publicNs: string;
  readonly voidNs: string;
  private readonly procs = new Map<number, Killable>();
  private destroying: Promise<void> | undefined;
  private destroyed = false;

  private constructor(plan: LabPlan, spec: TopologySpec) {
    this.prefix = plan.prefix;
    this.topology = spec;
    const { server, agent, viewer } = plan.hosts;
    if (!server || !agent || !viewer) throw new Error('topology needs server, agent and viewer');
    this.hosts = { ...plan.hosts, server, agent, viewer };
    this.routers = plan.routers;
    this.namespaces = plan.namespaces;
    this.publicNs = plan.publicNs;
    this.voidNs = plan.voidNs;
  }

  /** Whether the lab can run here: root, and working `ip` and `nft` binaries. */
  static async available(): Promise<Availability> {
    if (process.platform !== 'linux') return { ok: false, reason: 'NAT lab needs Linux network namespaces' };
    if (process.getuid?.() !== 0)
      return { ok: false, reason: 'NAT lab needs root (network namespaces, nftables)' };
    try {
      const ipv = await run(IP, ['-V'], { timeoutMs: 5000 });
      if (ipv.code !== 0) return { ok: false, reason: '`ip -V` failed: install iproute2' };
    } catch {
      return { ok: false, reason: '`ip` not found: install iproute2' };
    }
    try {
      const nftv = await run(NFT, ['--version'], { timeoutMs: 5000 });
      if (nftv.code !== 0) return { ok: false, reason: '`nft --version` failed: install nftables' };
    } catch {
      return { ok: false, reason: '`nft` not found: install nftables (apt: nftables)' };
    }
    return { ok: true };
  }

  static async create(topology: TopologyName | TopologySpec, opts: NatLabOptions = {}): Promise<NatLab> {
    let spec: TopologySpec;
    if (typeof topology === 'string') {
      if (!isTopologyName(topology)) throw new Error(`unknown topology ${topology}`);
      spec = TOPOLOGIES[topology];
    } else {
      spec = topology;
    }
    const existing = await listNamespaces();
    const taken = new Set([...existing.map(labPrefixOf), ...readRegistry().map((r) => r.prefix)]);
    if (opts.prefix !== undefined && !PREFIX_RE.test(opts.prefix)) {
      throw new Error(`bad lab prefix ${JSON.stringify(opts.prefix)}: want ${PREFIX_RE}`);
    }
    let lab: NatLab | undefined;
    let plan: LabPlan | undefined;
    for (let attempt = 0; !lab; attempt++) {
      const prefix = opts.prefix ?? randomPrefix();
      const inUse = `lab prefix ${prefix} is in use (NatLab.cleanupStale('${prefix}') removes leftovers)`;
      if (taken.has(prefix)) {
        if (opts.prefix !== undefined) throw new Error(inUse);
        continue;
      }
      plan = planLab(spec, prefix);
      const candidate = new NatLab(plan, spec);
      // The registry file is created exclusively: this claims the prefix atomically across processes.
      if (candidate.register()) lab = candidate;
      else if (opts.prefix !== undefined || attempt > 20) throw new Error(inUse);
    }
    if (!plan) throw new Error('unreachable');
    try {
      await lab.build(plan);
    } catch (e) {
      await lab.destroy().catch(() => undefined);
      throw e;
    }
    return lab;
  }

  /**
   * Removes leftovers of crashed runs: kills every process inside the namespaces (by PID) and deletes
   * them. Without a prefix, only labs recorded in the registry whose owner process is gone. With a
   * prefix, every namespace named `<prefix>...-<node>`, except labs whose owner is still alive (unless
   * `force`). Returns the namespaces deleted.
   */
  static async cleanupStale(prefix?: string, opts: { force?: boolean } = {}): Promise<string[]> {
    const records = readRegistry();
    const byPrefix = new Map(records.map((r) => [r.prefix, r]));
    const all = await listNamespaces();
    const doomed: string[] = [];
    const doomedLabs = new Set<string>();
    const consider = (labPrefix: string): boolean => {
      const rec = byPrefix.get(labPrefix);
      if (rec && ownerAlive(rec) && !opts.force) return false;
      if (prefix === undefined) return rec !== undefined;
      return labPrefix.startsWith(prefix);
    };
    for (const ns of all) {
      const lp = labPrefixOf(ns);
      if (lp && consider(lp)) {
        doomed.push(ns);
        doomedLabs.add(lp);
      }
    }
    for (const rec of records) if (consider(rec.prefix)) doomedLabs.add(rec.prefix);
    const deleted = await deleteNamespaces(doomed);
    for (const lp of doomedLabs) rmSync(join(REGISTRY_DIR, `${lp}.json`), { force: true });
    for (const lab of [...liveLabs]) if (doomedLabs.has(lab.prefix)) lab.markDestroyed();
    return deleted;
  }

  /** A host by name (`server`, `agent`, `viewer`, or any extra host of a custom topology). */
  host(name: string): LabHost {
    const h = (this.hosts as Readonly<Record<string, LabHost | undefined>>)[name];
    if (!h) throw new Error(`no host ${name} in ${this.topology.name}`);
    return h;
  }

  /**
   * Any node as a host-like handle, for running diagnostics: a host, a router (ip = its WAN address),
   * `pub` (the server) or `void`.
   */
  node(name: string): LabHost {
    const h = (this.hosts as Readonly<Record<string, LabHost | undefined>>)[name];
    if (h) return h;
    const r = this.routers[name];
    if (r) return { name, netns: r.netns, ip: r.wanIp };
    if (name === 'pub') return { ...this.hosts.server, name };
    if (name === 'void') return { name, netns: this.voidNs, ip: VOID_LINK.voidIp };
    throw new Error(`no node ${name} in ${this.topology.name}`);
  }

  /** PIDs of processes started through this lab that are still running. */
  get pids(): number[] {
    return [...this.procs.keys()];
  }

  /** Runs a command inside a host's namespace to completion. Never throws on exit status unless `check`. */
  async exec(
    host: LabHost | string,
    cmd: string,
    args: readonly string[] = [],
    opts: ExecOptions = {},
  ): Promise<RunResult> {
    const h = this.resolve(host);
    this.assertLive();
    const r = await run(IP, ['netns', 'exec', h.netns, cmd, ...args], {
      input: opts.input,
      timeoutMs: opts.timeoutMs,
      env: opts.env,
      cwd: opts.cwd,
      onSpawn: (child) => this.track(h, child, false),
    });
    if (opts.check && r.code !== 0) {
      const why = r.timedOut ? 'timed out' : `exited ${r.code ?? r.signal}`;
      throw new Error(`[${h.name}] ${cmd} ${args.join(' ')} ${why}: ${r.stderr.trim()}`);
    }
    return r;
  }

  /** Starts a long-running command inside a host's namespace. The lab kills it on destroy(). */
  spawn(
    host: LabHost | string,
    cmd: string,
    args: readonly string[] = [],
    opts: SpawnOptions = {},
  ): LabProcess {
    const h = this.resolve(host);
    this.assertLive();
    const stdio = opts.stdio ?? 'pipe';
    const child = spawn(IP, ['netns', 'exec', h.netns, cmd, ...args], {
      detached: true,
      stdio: ['ignore', stdio, stdio],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    const proc = this.track(h, child, true);
    if (!proc) throw new Error(`could not start ${cmd} in ${h.netns}`);
    return proc;
  }

  /** Packets the void namespace has dropped (everything routed "off the box" ends there). */
  async voidDropCount(): Promise<number> {
    const out = await runOk(IP, [
      'netns',
      'exec',
      this.voidNs,
      NFT,
      '-j',
      'list',
      'table',
      'inet',
      'hearth_void',
    ]);
    return sumCounters(out);
  }

  /** Packets dropped by a NAT router's rules (unsolicited inbound, blocked UDP). */
  async routerDropCount(router: string): Promise<number> {
    const r = this.routers[router];
    if (!r) throw new Error(`no router ${router}`);
    const out = await runOk(IP, [
      'netns',
      'exec',
      r.netns,
      NFT,
      '-j',
      'list',
      'table',
      'inet',
      'hearth_filter',
    ]);
    return sumCounters(out);
  }

  /** Kills every process started in the lab (by PID) and deletes every namespace it created. Idempotent. */
  destroy(): Promise<void> {
    this.destroying ??= this.doDestroy();
    return this.destroying;
  }

  /** Synchronous teardown for exit and signal handlers. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const pid of this.procs.keys()) killTree(pid, 'SIGKILL');
    const existing = new Set(parseNetnsList(runSyncQuiet(IP, ['netns', 'list'])));
    for (const ns of this.namespaces) {
      if (!existing.has(ns)) continue;
      killNamespacePidsSync(ns);
      runSyncQuiet(IP, ['netns', 'del', ns]);
    }
    this.unregister();
  }

  private async doDestroy(): Promise<void> {
    if (this.destroyed) return;
    const procs = [...this.procs.values()];
    await Promise.all(procs.map((p) => p.kill(1000)));
    try {
      await deleteNamespaces(this.namespaces);
    } finally {
      this.destroyed = true;
      this.unregister();
    }
  }

  private markDestroyed(): void {
    this.destroyed = true;
    this.destroying ??= Promise.resolve();
    liveLabs.delete(this);
  }

  /** Claims the prefix by creating its registry file exclusively; false if it already exists. */
  private register(): boolean {
    mkdirSync(REGISTRY_DIR, { recursive: true });
    const rec: RegistryRecord = {
      prefix: this.prefix,
      topology: this.topology.name,
      pid: process.pid,
      startTime: procStartTime(process.pid),
      namespaces: [...this.namespaces],
      createdAt: new Date().toISOString(),
    };
    try {
      writeFileSync(join(REGISTRY_DIR, `${this.prefix}.json`), `${JSON.stringify(rec)}\n`, { flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
    liveLabs.add(this);
    installExitHandlers();
    return true;
  }

  private unregister(): void {
    rmSync(join(REGISTRY_DIR, `${this.prefix}.json`), { force: true });
    liveLabs.delete(this);
  }

  private async build(plan: LabPlan): Promise<void> {
    for (const ns of plan.namespaces) await runOk(IP, ['netns', 'add', ns]);
    // veths are created directly inside the lab namespaces: nothing ever appears in the root namespace.
    // Explicit, lab-unique ifindexes: when both ends of a veth get the same ifindex in their own
    // namespaces, the kernel treats the carrier change as non-urgent and delays it by a second.
    const vethLines = plan.veths.map(
      (v, i) =>
        `link add ${v.a.name} netns ${v.a.ns} index ${100 + 2 * i} type veth ` +
        `peer name ${v.b.name} netns ${v.b.ns} index ${101 + 2 * i}`,
    );
    await runOk(IP, ['-batch', '-'], { input: `${vethLines.join('\n')}\n` });
    await Promise.all(
      [...plan.ipBatch].map(([ns, lines]) =>
        runOk(IP, ['-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n` }),
      ),
    );
    await Promise.all(
      [...plan.sysctls].map(([ns, kv]) => runOk(IP, ['netns', 'exec', ns, 'sysctl', '-q', '-w', ...kv])),
    );
    await Promise.all(
      [...plan.nft].map(([ns, rules]) => runOk(IP, ['netns', 'exec', ns, NFT, '-f', '-'], { input: rules })),
    );
    await Promise.all(plan.namespaces.map((ns) => waitForCarrier(ns)));
  }

  private resolve(host: LabHost | string): LabHost {
    if (typeof host !== 'string') return host;
    const h = (this.hosts as Readonly<Record<string, LabHost | undefined>>)[host];
    return h ?? this.node(host);
  }

  private assertLive(): void {
    if (this.destroyed || this.destroying) throw new Error(`lab ${this.prefix} is destroyed`);
  }

  private track(host: LabHost, child: ChildProcess, keep: boolean): LabProcessImpl | undefined {
    if (child.pid === undefined) return undefined;
    const pid = child.pid;
    let entry: Killable;
    let proc: LabProcessImpl | undefined;
    if (keep) {
      proc = new LabProcessImpl(host, child);
      entry = proc;
    } else {
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      entry = { kill: (graceMs = 1500) => killGracefully(pid, exited, graceMs) };
    }
    this.procs.set(pid, entry);
    child.on('exit', () => {
      if (this.procs.get(pid) === entry) this.procs.delete(pid);
    });
    return proc;
  }
}

interface Killable {
  kill(graceMs?: number): Promise<void>;
}

async function killGracefully(pid: number, exited: Promise<unknown>, graceMs: number): Promise<void> {
  killTree(pid, 'SIGTERM');
  const t = sleep(graceMs).then(() => 'timeout' as const);
  if ((await Promise.race([exited, t])) === 'timeout') {
    killTree(pid, 'SIGKILL');
    await Promise.race([exited, sleep(2000)]);
  }
}

function sumCounters(nftJson: string): number {
  let total = 0;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      const c = o.counter as { packets?: unknown } | undefined;
      if (c && typeof c === 'object' && typeof c.packets === 'number') total += c.packets;
      for (const x of Object.values(o)) walk(x);
    }
  };
  walk(JSON.parse(nftJson));
  return total;
}
