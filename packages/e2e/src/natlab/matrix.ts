/**
 * NAT matrix: for each lab topology, a real WebRTC session between the two NAT sides, with the Hearth
 * relay (STUN + TURN UDP/TCP) in the public namespace:
 *
 * - `hearth`: the camera side is Hearth's agent media stack (`MediaHub`: ffmpeg testsrc → H.264 →
 *   werift) in the `agent` namespace (`matrix-agent.ts`); the viewer is Chromium in the `viewer`
 *   namespace making a recvonly offer (`matrix-page.ts`);
 * - `chromium`: the baseline, a plain Chromium-to-Chromium call (a second Chromium in the `agent`
 *   namespace sends a canvas track), same relay, same credentials, same signaling.
 *
 * Signaling is plain (a mailbox on the matrix server, `matrix-server.ts`) and non-trickle. For each
 * run it reports: connected or not, the selected candidate pair from the viewer's getStats (types and
 * protocol; for a relay candidate the protocol to the TURN server), and the time from "view" to the
 * first decoded frame.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ChromiumHandle,
  decodeTapFile,
  type LabProcess,
  launchChromium,
  NatLab,
  SERVER_IP,
  TOPOLOGIES,
  TOPOLOGY_NAMES,
  type TopologyName,
} from '@hearth/testkit';
import type { Page } from 'playwright-core';

const here = fileURLToPath(import.meta.url);
const fromSource = here.endsWith('.ts');
const PACKAGE_DIR = resolve(dirname(here), '..', '..');
const ext = fromSource ? '.ts' : '.js';
export const MATRIX_SERVER_SCRIPT = join(dirname(here), `matrix-server${ext}`);
export const MATRIX_AGENT_SCRIPT = join(dirname(here), `matrix-agent${ext}`);
export const MATRIX_HTTP_PORT = 8080;
export const MATRIX_RELAY_PORT = 3478;

/** Node command line for a matrix child script (absolute paths: it runs inside namespaces). */
export function matrixNodeArgs(script: string, args: readonly string[]): string[] {
  const pre = fromSource ? ['--conditions=source', '--import', 'tsx'] : [];
  return [...pre, script, ...args];
}

export type MatrixMode = 'hearth' | 'chromium';
/** What runs in the public namespace: the bare `RelayServer`, or the full Hearth server (`startServer`). */
export type MatrixStack = 'relay' | 'server';
export type PathKind = 'direct' | 'relay' | 'none';

export interface CandidateInfo {
  readonly type: 'host' | 'srflx' | 'prflx' | 'relay';
  readonly protocol: string;
  readonly relayProtocol: string | null;
  readonly address: string | null;
  readonly port: number;
}

export interface ViewerResult {
  readonly connected: boolean;
  readonly state: string;
  readonly ttffMs: number | null;
  readonly width: number | null;
  readonly height: number | null;
  readonly connectedMs: number | null;
  readonly gatherMs: number;
  readonly signalMs: number;
  readonly framesDecoded: number;
  /** Selected pair at the first frame, and `settleMs` later (ICE may switch to a better pair). */
  readonly firstPair: { local: CandidateInfo | null; remote: CandidateInfo | null } | null;
  readonly pair: { local: CandidateInfo | null; remote: CandidateInfo | null } | null;
  readonly localCandidates: readonly string[];
  readonly remoteCandidates: readonly string[];
}

export interface MatrixRun {
  readonly topology: TopologyName;
  readonly mode: MatrixMode;
  readonly connected: boolean;
  readonly path: PathKind;
  /** Transport of the viewer's leg: `udp`, or for a relay candidate the protocol to the TURN server. */
  readonly transport: string | null;
  /** e.g. `srflx → prflx` (viewer's local → remote candidate type), after the settle time. */
  readonly pair: string | null;
  /** Path and pair at the first frame (before ICE may have switched to a better pair). */
  readonly firstPath: PathKind;
  readonly firstPairText: string | null;
  readonly ttffMs: number | null;
  readonly connectedMs: number | null;
  readonly viewer?: ViewerResult;
  /** What the camera side saw (werift's selected pair for Hearth, Chromium's for the baseline). */
  readonly camera?: unknown;
  readonly error?: string;
}

/** Direct where the lab's own hole-punch probe succeeds; relayed (over TCP when UDP is blocked) otherwise. */
export function expectedPath(t: TopologyName): { path: 'direct' | 'relay'; transport?: 'udp' | 'tcp' } {
  const e = TOPOLOGIES[t].expected;
  if (e.punch) return { path: 'direct', transport: 'udp' };
  return e.viewerUdp ? { path: 'relay', transport: 'udp' } : { path: 'relay', transport: 'tcp' };
}

/** Path from the viewer's selected pair: relayed if either candidate is a relay (or the TURN server). */
export function classifyPair(pair: ViewerResult['pair']): { path: PathKind; transport: string | null } {
  const l = pair?.local;
  const r = pair?.remote;
  if (!l || !r) return { path: 'none', transport: null };
  const relayed = l.type === 'relay' || r.type === 'relay' || r.address === SERVER_IP;
  const transport = l.type === 'relay' ? (l.relayProtocol ?? l.protocol) : l.protocol;
  return { path: relayed ? 'relay' : 'direct', transport: transport?.toLowerCase() ?? null };
}

function toRun(
  topology: TopologyName,
  mode: MatrixMode,
  v: ViewerResult | undefined,
  camera: unknown,
  error?: string,
): MatrixRun {
  const c = classifyPair(v?.pair ?? null);
  const f = classifyPair(v?.firstPair ?? null);
  const connected = v?.connected === true && v.ttffMs !== null;
  const text = (p: ViewerResult['pair'] | undefined): string | null =>
    p?.local && p.remote ? `${p.local.type} → ${p.remote.type}` : null;
  return {
    topology,
    mode,
    connected,
    path: connected ? c.path : 'none',
    transport: c.transport,
    pair: text(v?.pair),
    firstPath: connected ? f.path : 'none',
    firstPairText: text(v?.firstPair),
    ttffMs: v?.ttffMs ?? null,
    connectedMs: v?.connectedMs ?? null,
    ...(v ? { viewer: v } : {}),
    ...(camera !== undefined ? { camera } : {}),
    ...(error !== undefined ? { error } : {}),
  };
}

export interface MatrixOptions {
  readonly modes?: readonly MatrixMode[];
  /** Per-session timeout (signaling, connection, first frame). Default 20 s. */
  readonly timeoutMs?: number;
  /**
   * How long after the first frame to keep reading the selected pair while it is relayed (ICE may
   * switch to a better, direct pair once more checks succeed). Default 5000 ms; `runMatrixTopology`
   * defaults it to 10000 ms where the topology allows a direct path and 3000 ms elsewhere (the same
   * for both modes), so a slow switch on a loaded machine is still seen.
   */
  readonly settleMs?: number;
  /**
   * Start the camera (ffmpeg) before the offer, as for a camera already being watched, so that TTFF
   * compares with the baseline (whose canvas source is always running). Default true; false measures
   * a cold start (ffmpeg spawn + first keyframe included).
   */
  readonly warmCamera?: boolean;
  /** `relay` (default): a bare RelayServer; `server`: the full Hearth server with its embedded relay. */
  readonly stack?: MatrixStack;
  /** ICE transport policy of the viewer (`relay` forces TURN). Default `all`. */
  readonly viewerPolicy?: 'all' | 'relay';
  /** ICE transport policy of the agent (werift) in Hearth sessions. Default `all`. */
  readonly agentPolicy?: 'all' | 'relay';
  /** Keep a Hearth session streaming this long after its first frame before closing it. Default 0. */
  readonly streamMs?: number;
  readonly log?: (msg: string) => void;
}

const CHROMIUM_ARGS = [
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
];

/** A lab with the matrix server (relay + signaling) running in its public namespace. */
export class MatrixLab {
  private browsers: ChromiumHandle[] = [];
  private constructor(
    readonly lab: NatLab,
    readonly server: LabProcess,
    readonly dir: string,
    readonly topology: TopologyName,
  ) {}

  static async create(
    topology: TopologyName,
    opts: { tap?: boolean; stack?: MatrixStack } = {},
  ): Promise<MatrixLab> {
    const lab = await NatLab.create(topology);
    const dir = mkdtempSync(join(tmpdir(), 'hearth-matrix-'));
    try {
      const args = ['--secret', randomBytes(16).toString('hex'), '--http', String(MATRIX_HTTP_PORT)];
      args.push('--port', String(MATRIX_RELAY_PORT), '--external', SERVER_IP);
      args.push('--metrics', join(dir, 'metrics.json'));
      if (opts.tap) args.push('--tap', join(dir, 'tap.bin'));
      if (opts.stack === 'server') args.push('--stack', 'server');
      const server = lab.spawn(
        lab.hosts.server,
        process.execPath,
        matrixNodeArgs(MATRIX_SERVER_SCRIPT, args),
        {
          cwd: PACKAGE_DIR,
        },
      );
      await server.waitForLine(/"event":"ready"/, 60_000);
      return new MatrixLab(lab, server, dir, topology);
    } catch (e) {
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  get pageUrl(): string {
    return `http://${SERVER_IP}:${MATRIX_HTTP_PORT}/`;
  }

  async browser(host: 'viewer' | 'agent'): Promise<ChromiumHandle> {
    const b = await launchChromium({ netns: this.lab.hosts[host].netns, args: CHROMIUM_ARGS });
    this.browsers.push(b);
    return b;
  }

  async openPage(b: ChromiumHandle): Promise<Page> {
    const page = await b.newPage();
    await page.goto(this.pageUrl, { timeout: 15_000 });
    return page;
  }

  /** Stops the server (which writes its tap and metrics files) and returns what it wrote. */
  async stopServer(): Promise<{ tap: Buffer | undefined; metrics: Record<string, number> | undefined }> {
    await this.server.kill(5000);
    const read = (f: string): Buffer | undefined => {
      try {
        return readFileSync(join(this.dir, f));
      } catch {
        return undefined;
      }
    };
    const m = read('metrics.json');
    return {
      tap: read('tap.bin'),
      metrics: m ? (JSON.parse(m.toString('utf8')) as Record<string, number>) : undefined,
    };
  }

  async destroy(): Promise<void> {
    for (const b of this.browsers) await b.close().catch(() => undefined);
    this.browsers = [];
    await this.lab.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const viewerEval = (page: Page, run: string, policy: 'all' | 'relay', timeoutMs: number, settleMs = 5000) =>
  page.evaluate(
    (a) => (globalThis as unknown as { runViewer(a: unknown): Promise<ViewerResult> }).runViewer(a),
    { run, policy, timeoutMs, settleMs },
  );

const closePage = async (page: Page): Promise<void> => {
  await page
    .evaluate(() => (globalThis as unknown as { closeAll(): void }).closeAll())
    .catch(() => undefined);
  await page
    .context()
    .close()
    .catch(() => undefined);
};

/** One Hearth session (agent media stack → Chromium viewer) in a running matrix lab. */
export async function runHearthSession(
  m: MatrixLab,
  viewer: ChromiumHandle,
  opts: MatrixOptions = {},
): Promise<MatrixRun> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const policy = opts.viewerPolicy ?? 'all';
  const run = `h${randomBytes(4).toString('hex')}`;
  const agentArgs = ['--server', `http://${SERVER_IP}:${MATRIX_HTTP_PORT}`, '--run', run];
  agentArgs.push('--timeout', String(timeoutMs), '--warm', opts.warmCamera === false ? '0' : '1');
  agentArgs.push('--policy', opts.agentPolicy ?? 'all');
  const agent = m.lab.spawn(
    m.lab.hosts.agent,
    process.execPath,
    matrixNodeArgs(MATRIX_AGENT_SCRIPT, agentArgs),
    {
      cwd: PACKAGE_DIR,
    },
  );
  let page: Page | undefined;
  try {
    await agent.waitForLine(/"event":"ready"/, 60_000);
    page = await m.openPage(viewer);
    const v = await viewerEval(page, run, policy, timeoutMs, opts.settleMs);
    let camera: unknown;
    try {
      const line = await agent.waitForLine(/"event":"(result|error)"/, timeoutMs);
      camera = JSON.parse(line);
    } catch (e) {
      camera = { error: e instanceof Error ? e.message : String(e) };
    }
    if (opts.streamMs) await new Promise((r) => setTimeout(r, opts.streamMs));
    return toRun(m.topology, 'hearth', v, camera);
  } catch (e) {
    return toRun(m.topology, 'hearth', undefined, agent.output(), e instanceof Error ? e.message : String(e));
  } finally {
    if (page) await closePage(page);
    await agent.kill(2000);
    // HEARTH_MATRIX_AGENT_LOG=DIR keeps each agent's stderr (with HEARTH_WEBRTC_LOG, the WebRTC log).
    const keep = process.env.HEARTH_MATRIX_AGENT_LOG;
    if (keep) writeFileSync(join(keep, `${m.topology}-${run}.log`), agent.output().stderr);
  }
}

/** One plain Chromium-to-Chromium session (the baseline) in a running matrix lab. */
export async function runChromiumSession(
  m: MatrixLab,
  viewer: ChromiumHandle,
  sender: ChromiumHandle,
  opts: MatrixOptions = {},
): Promise<MatrixRun> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const policy = opts.viewerPolicy ?? 'all';
  const run = `c${randomBytes(4).toString('hex')}`;
  let vpage: Page | undefined;
  let spage: Page | undefined;
  try {
    spage = await m.openPage(sender);
    vpage = await m.openPage(viewer);
    const sp = spage;
    const [s, v] = await Promise.all([
      sp.evaluate(
        (a) => (globalThis as unknown as { runSender(a: unknown): Promise<unknown> }).runSender(a),
        { run, timeoutMs },
      ),
      viewerEval(vpage, run, policy, timeoutMs, opts.settleMs),
    ]);
    return toRun(m.topology, 'chromium', v, s);
  } catch (e) {
    return toRun(m.topology, 'chromium', undefined, undefined, e instanceof Error ? e.message : String(e));
  } finally {
    if (vpage) await closePage(vpage);
    if (spage) await closePage(spage);
  }
}

/** Runs the requested modes on one topology, in a fresh lab that is destroyed afterwards. */
export async function runMatrixTopology(
  topology: TopologyName,
  opts: MatrixOptions = {},
): Promise<MatrixRun[]> {
  const modes = opts.modes ?? ['hearth', 'chromium'];
  const log = opts.log ?? (() => undefined);
  const m = await MatrixLab.create(topology, { stack: opts.stack ?? 'relay' });
  const out: MatrixRun[] = [];
  const o: MatrixOptions = {
    ...opts,
    settleMs: opts.settleMs ?? (expectedPath(topology).path === 'direct' ? 10_000 : 3000),
  };
  try {
    const viewer = await m.browser('viewer');
    for (const mode of modes) {
      const r =
        mode === 'hearth'
          ? await runHearthSession(m, viewer, o)
          : await runChromiumSession(m, viewer, await m.browser('agent'), o);
      log(formatRun(r));
      out.push(r);
    }
  } finally {
    await m.destroy();
  }
  return out;
}

export async function runNatMatrix(
  topologies: readonly TopologyName[] = TOPOLOGY_NAMES,
  opts: MatrixOptions = {},
): Promise<MatrixRun[]> {
  const out: MatrixRun[] = [];
  for (const t of topologies) out.push(...(await runMatrixTopology(t, opts)));
  return out;
}

export interface RelayCapture {
  readonly run: MatrixRun;
  /** Relayed payloads: `dir` 1 = relay → peer (as sent), 2 = relay → client (unwrapped). */
  readonly records: { dir: number; payload: Uint8Array }[];
  readonly metrics: Record<string, number> | undefined;
}

/**
 * A Hearth session forced through the relay (viewer `iceTransportPolicy: 'relay'`, and the agent's
 * too with `agentPolicy: 'relay'`) on `bothEim`, with the server's tap on; streams for `streamMs` after the first frame, then returns what the
 * relay forwarded.
 */
export async function captureRelayedSession(
  opts: { streamMs?: number; timeoutMs?: number; stack?: MatrixStack; agentPolicy?: 'all' | 'relay' } = {},
): Promise<RelayCapture> {
  const m = await MatrixLab.create('bothEim', { tap: true, stack: opts.stack ?? 'relay' });
  try {
    const viewer = await m.browser('viewer');
    const timeoutMs = opts.timeoutMs ?? 20_000;
    const run = await runHearthSession(m, viewer, {
      timeoutMs,
      viewerPolicy: 'relay',
      ...(opts.agentPolicy ? { agentPolicy: opts.agentPolicy } : {}),
      settleMs: 0,
      streamMs: opts.streamMs ?? 2000,
    });
    const { tap, metrics } = await m.stopServer();
    return { run, records: tap ? decodeTapFile(tap) : [], metrics };
  } finally {
    await m.destroy();
  }
}

const ms = (v: number | null): string => (v === null ? '-' : `${Math.round(v)} ms`);

export function formatRun(r: MatrixRun): string {
  const path = r.connected ? `${r.path}/${r.transport ?? '?'}` : 'FAILED';
  const first =
    r.connected && r.firstPairText !== r.pair
      ? ` (first frame: ${r.firstPath}, ${r.firstPairText ?? '?'})`
      : '';
  return `${r.topology.padEnd(17)} ${r.mode.padEnd(8)} ${path.padEnd(10)} ${(r.pair ?? '-').padEnd(16)} ttff ${ms(r.ttffMs)}${first}${r.error ? ` error: ${r.error}` : ''}`;
}

/** Share of runs of a mode that connected directly (no relay). */
export function directShare(runs: readonly MatrixRun[], mode: MatrixMode): number {
  const mine = runs.filter((r) => r.mode === mode);
  if (mine.length === 0) return Number.NaN;
  return mine.filter((r) => r.connected && r.path === 'direct').length / mine.length;
}

/** Markdown table: per topology, Hearth connected/path/pair/TTFF and the Chromium baseline's path. */
export function formatMatrixMarkdown(runs: readonly MatrixRun[]): string {
  const lines = [
    '| Topology | Expected | Hearth connected | Hearth path (viewer pair) | Hearth TTFF | Chromium↔Chromium path (viewer pair) | Chromium TTFF |',
    '|---|---|---|---|---|---|---|',
  ];
  const topologies = [...new Set(runs.map((r) => r.topology))];
  for (const t of topologies) {
    const h = runs.find((r) => r.topology === t && r.mode === 'hearth');
    const c = runs.find((r) => r.topology === t && r.mode === 'chromium');
    const e = expectedPath(t);
    const p = (r: MatrixRun | undefined): string => {
      if (!r) return '-';
      if (!r.connected) return 'not connected';
      const first =
        r.firstPath !== r.path ? `; first frame via ${r.firstPath} (${r.firstPairText ?? '?'})` : '';
      return `${r.path} ${r.transport?.toUpperCase() ?? ''} (${r.pair ?? '?'}${first})`;
    };
    lines.push(
      `| ${t} | ${e.path} ${e.transport?.toUpperCase() ?? ''} | ${h ? (h.connected ? 'yes' : 'no') : '-'} | ${p(h)} | ${ms(h?.ttffMs ?? null)} | ${p(c)} | ${ms(c?.ttffMs ?? null)} |`,
    );
  }
  return lines.join('\n');
}

const median = (xs: readonly number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

/** Markdown summary over several rounds: per topology and mode, connected/direct counts and median TTFF. */
export function formatMatrixSummary(runs: readonly MatrixRun[]): string {
  const lines = [
    '| Topology | Hearth connected | Hearth direct (first frame direct) | Hearth TTFF median (min–max) | Chromium connected | Chromium direct (first frame direct) | Chromium TTFF median (min–max) |',
    '|---|---|---|---|---|---|---|',
  ];
  const cell = (rs: readonly MatrixRun[]): string[] => {
    const n = rs.length;
    const t = rs.map((r) => r.ttffMs).filter((v): v is number => v !== null);
    const direct = rs.filter((r) => r.connected && r.path === 'direct').length;
    const firstDirect = rs.filter((r) => r.connected && r.firstPath === 'direct').length;
    const range = t.length > 0 ? ` (${Math.round(Math.min(...t))}–${Math.round(Math.max(...t))})` : '';
    return [
      `${rs.filter((r) => r.connected).length}/${n}`,
      `${direct}/${n} (${firstDirect}/${n})`,
      `${ms(median(t))}${range}`,
    ];
  };
  for (const t of [...new Set(runs.map((r) => r.topology))]) {
    const h = runs.filter((r) => r.topology === t && r.mode === 'hearth');
    const c = runs.filter((r) => r.topology === t && r.mode === 'chromium');
    lines.push(`| ${t} | ${[...cell(h), ...cell(c)].join(' | ')} |`);
  }
  return lines.join('\n');
}
