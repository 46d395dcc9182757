/**
 * Full-stack NAT matrix: for each lab topology, every part is the shipped product.
 *
 * - `server` namespace (203.0.113.1): the real `hearth server` command (packages/cli/bin/hearth.js),
 *   self-signed TLS, built-in STUN/TURN relay on UDP and TCP 3478, serving the viewer app;
 * - `agent` namespace, behind the agent NAT: the real `hearth agent` command with an ffmpeg test-pattern
 *   camera, pinning the server's certificate (`--pin-cert`);
 * - `viewer` namespace, behind the viewer NAT: the viewer web app, served by that server, in Chromium.
 *
 * The browser pairs by typing the manual code the agent prints (SPAKE2+ through the rendezvous), then
 * clicks the camera on the home screen: a signed session (offer and answer signed end to end, ICE
 * servers and TURN credentials from the rendezvous's `ready`). Nothing is stubbed.
 *
 * Per topology it reports: connected or not, the path from the app's own status line
 * (`connected (direct)` / `connected (relayed)`) at the first frame and once settled, the selected
 * candidate pair read from the page's RTCPeerConnection (captured by an init script, since the app
 * does not expose it), the pairing time, and the time from the click on the camera to the first
 * video frame. The app is driven and read through the one viewer driver (@hearth/testkit's
 * viewer-driver.ts: openApp, pairByCode, clickCamera, hook, waitForState).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ChromiumHandle,
  clickCamera,
  hook,
  type LabProcess,
  launchChromium,
  NatLab,
  openApp,
  pairByCode,
  SERVER_IP,
  TOPOLOGIES,
  TOPOLOGY_NAMES,
  type TopologyName,
  type TopologySpec,
  waitForState,
} from '@hearth/testkit';
import type { Page } from 'playwright-core';

const here = fileURLToPath(import.meta.url);
/** The repository root (the hearth bin resolves workspace packages from here). */
export const REPO_ROOT = resolve(dirname(here), '..', '..', '..', '..');
/**
 * The real `hearth` command, found through the @hearth/cli package (a declared dependency, so the
 * graph check sees this edge): its bin/ sits next to the src/ or dist/ its entry resolves to.
 */
export const HEARTH_BIN = join(
  dirname(fileURLToPath(import.meta.resolve('@hearth/cli'))),
  '..',
  'bin',
  'hearth.js',
);
export const FULLSTACK_PORT = 8443;

export type AppPath = 'direct' | 'relayed';

export interface PairInfo {
  readonly local: string | null;
  readonly remote: string | null;
  /** Protocol of the local candidate (udp/tcp). */
  readonly protocol: string | null;
  /** For a local relay candidate: how the browser reaches the TURN server (udp/tcp/tls). */
  readonly relayProtocol: string | null;
  readonly remoteAddress: string | null;
}

export interface FullStackRun {
  readonly topology: TopologyName;
  /** The topology name, or `FullStackOptions.label` for a custom spec. */
  readonly label: string;
  /** The live view decoded frames and the frame count kept rising. */
  readonly connected: boolean;
  /** The app's status line at the first frame, and once settled. */
  readonly firstState: string | null;
  readonly state: string | null;
  /** From the settled status line. */
  readonly path: AppPath | null;
  /** The viewer's selected candidate pair (from getStats on the page's RTCPeerConnection), settled. */
  readonly pair: PairInfo | null;
  /** `local → remote` candidate types, e.g. `relay → srflx`. */
  readonly pairText: string | null;
  /** Transport of the viewer's leg: `udp`, or for a relay candidate the protocol to the TURN server. */
  readonly transport: string | null;
  /** From opening the app with the code typed to the camera list showing (SPAKE2+ pairing). */
  readonly pairingMs: number | null;
  /** From the click on the camera to the first video frame presented (the driver's `clickCamera`). */
  readonly ttffMs: number | null;
  readonly framesFirst: number;
  readonly framesLater: number;
  readonly startupMs: { server: number; agent: number };
  /** Warning and error lines the server and the agent logged (pino JSON on stderr, level ≥ warn). */
  readonly warnings: readonly string[];
  readonly error?: string;
  /** Tail of the server's and agent's output, on failure. */
  readonly logs?: { server: string; agent: string };
}

export interface FullStackOptions {
  /** Time for pairing, and separately for the first frame. Default 60 s / 30 s. */
  readonly pairTimeoutMs?: number;
  readonly frameTimeoutMs?: number;
  /**
   * How long after the first frame to keep watching the status line while it is relayed (ICE may move
   * to a direct pair). Default: 10 s where the topology allows a direct path, 3 s elsewhere.
   */
  readonly settleMs?: number;
  /**
   * Keep Chromium's default of hiding host candidates behind mDNS names (as every real browser does).
   * Default true; false passes `--disable-features=WebRtcHideLocalIpsWithMdns` like the stand-in matrix.
   */
  readonly mdns?: boolean;
  readonly camera?: string;
  /** Build this spec instead of the named topology (the name is still used for expectations and reports). */
  readonly spec?: TopologySpec;
  /** Name to report a custom spec under. */
  readonly label?: string;
  readonly log?: (msg: string) => void;
}

/**
 * Not one of the lab's named topologies: `oneSymmetric` mirrored (the agent behind the symmetric NAT,
 * the viewer behind the EIM one). The hole punch fails for the same reason (the EIM side filters by
 * address and port), so it must relay too; here the relay is reached from the viewer's EIM side.
 */
export const AGENT_SYMMETRIC: TopologySpec = {
  ...TOPOLOGIES.oneSymmetric,
  description: 'agent behind a symmetric NAT, viewer behind an EIM NAT',
  routers: TOPOLOGIES.oneSymmetric.routers.map((r) => ({
    ...r,
    nat: r.name === 'anat' ? 'symmetric' : 'eim',
  })),
  expected: { agentMapping: 'symmetric', viewerMapping: 'eim', punch: false, viewerUdp: true },
};

/** Direct where the lab's own hole punch succeeds, relayed otherwise (as `expectedPath` in matrix.ts). */
export function expectedAppPath(t: TopologyName): { path: AppPath; transport: 'udp' | 'tcp' } {
  const e = TOPOLOGIES[t].expected;
  if (e.punch) return { path: 'direct', transport: 'udp' };
  return { path: 'relayed', transport: e.viewerUdp ? 'udp' : 'tcp' };
}

/** Runs in the page before the app: keeps every RTCPeerConnection the app creates (to read the selected pair). */
const INIT_SCRIPT = `(() => {
  const Orig = globalThis.RTCPeerConnection;
  if (!Orig || globalThis.__fsPcs) return;
  globalThis.__fsPcs = [];
  const Wrapped = function (...args) {
    const pc = new Orig(...args);
    globalThis.__fsPcs.push(pc);
    return pc;
  };
  Wrapped.prototype = Orig.prototype;
  Object.setPrototypeOf(Wrapped, Orig);
  globalThis.RTCPeerConnection = Wrapped;
})();`;

// In-page code is passed as strings: tsx (esbuild keepNames) would wrap named functions in a
// `__name(...)` helper that does not exist in the page.

/** The selected pair of the newest connected RTCPeerConnection on the page. */
const READ_PAIR = `(async () => {
  const pcs = globalThis.__fsPcs || [];
  const pc = [...pcs].reverse().find((p) => p.connectionState === 'connected');
  if (!pc) return null;
  const all = [...(await pc.getStats()).values()];
  const byId = new Map(all.map((s) => [s.id, s]));
  let pair;
  for (const s of all)
    if (s.type === 'transport' && typeof s.selectedCandidatePairId === 'string')
      pair = byId.get(s.selectedCandidatePairId);
  if (!pair) return null;
  const l = byId.get(pair.localCandidateId) || {};
  const r = byId.get(pair.remoteCandidateId) || {};
  const str = (v) => (typeof v === 'string' ? v : null);
  return {
    local: str(l.candidateType),
    remote: str(r.candidateType),
    protocol: str(l.protocol),
    relayProtocol: str(l.relayProtocol),
    remoteAddress: str(r.address),
  };
})()`;
const readPair = (page: Page): Promise<PairInfo | null> =>
  page.evaluate(READ_PAIR) as Promise<PairInfo | null>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const tail = (p: LabProcess | undefined): string => {
  if (!p) return '';
  const o = p.output();
  return `${o.stdout.slice(-1500)}\n--- stderr ---\n${o.stderr.slice(-2500)}`;
};

const stderrLines = (p: LabProcess | undefined, who: string): string[] =>
  p
    ? p
        .output()
        .stderr.split('\n')
        .filter((l) => l.trim().length > 0)
        .map((l) => `${who}: ${l.slice(0, 400)}`)
    : [];

const stateToPath = (s: string | null): AppPath | null =>
  s === 'connected (direct)' ? 'direct' : s === 'connected (relayed)' ? 'relayed' : null;

/**
 * One topology, full stack, in a fresh lab that is destroyed afterwards (server, agent, ffmpeg and
 * Chromium are all killed by the lab, by PID and by namespace).
 */
export async function runFullStackTopology(
  topology: TopologyName,
  opts: FullStackOptions = {},
): Promise<FullStackRun> {
  const log = opts.log ?? (() => undefined);
  const camera = opts.camera ?? 'demo';
  const exp = expectedAppPath(topology);
  const settleMs = opts.settleMs ?? (exp.path === 'direct' ? 10_000 : 3000);
  const lab = await NatLab.create(opts.spec ?? topology);
  const dir = mkdtempSync(join(tmpdir(), 'hearth-fullstack-'));
  const env = { ...process.env, HEARTH_FROM_SOURCE: '1' };
  let server: LabProcess | undefined;
  let agent: LabProcess | undefined;
  let browser: ChromiumHandle | undefined;
  const startup = { server: 0, agent: 0 };
  const out = {
    connected: false,
    firstState: null as string | null,
    state: null as string | null,
    pair: null as PairInfo | null,
    pairingMs: null as number | null,
    ttffMs: null as number | null,
    framesFirst: 0,
    framesLater: 0,
  };
  const result = (error?: string): FullStackRun => {
    const pair = out.pair;
    const transport = pair
      ? pair.local === 'relay'
        ? (pair.relayProtocol ?? pair.protocol)
        : pair.protocol
      : null;
    return {
      topology,
      label: opts.label ?? topology,
      ...out,
      path: stateToPath(out.state),
      pairText: pair?.local && pair.remote ? `${pair.local} → ${pair.remote}` : null,
      transport: transport?.toLowerCase() ?? null,
      startupMs: startup,
      warnings: [...stderrLines(server, 'server'), ...stderrLines(agent, 'agent')],
      ...(error !== undefined ? { error, logs: { server: tail(server), agent: tail(agent) } } : {}),
    };
  };
  try {
    // 1. The real server, in the public namespace, with a self-signed certificate.
    let t = Date.now();
    server = lab.spawn(
      lab.hosts.server,
      process.execPath,
      [
        HEARTH_BIN,
        'server',
        '--data-dir',
        join(dir, 'server'),
        '--host',
        SERVER_IP,
        '--port',
        String(FULLSTACK_PORT),
        '--log-level',
        'warn',
      ],
      { env: { ...env, HEARTH_TLS: 'self-signed' }, cwd: REPO_ROOT },
    );
    const listening = await server.waitForLine(/Hearth server listening on https:\/\/\S+/, 120_000);
    const url = (listening.match(/listening on (https:\/\/\S+)/)?.[1] ?? '').replace(/\/$/, '');
    const certLine = await server.waitForLine(/TLS certificate SHA-256: [0-9a-fA-F:]+/, 10_000);
    const sha = certLine.match(/SHA-256: ([0-9a-fA-F:]+)/)?.[1] ?? '';
    startup.server = Date.now() - t;
    log(`${topology}: server ${url} (cert ${sha.slice(0, 16)}…) in ${startup.server} ms`);

    // 2. The real agent, behind the agent NAT, pinning the server's certificate.
    t = Date.now();
    const cameras = join(dir, 'cameras.yaml');
    writeFileSync(cameras, `cameras:\n  ${camera}: testsrc?size=640x360&fps=15&gop=2\n`);
    agent = lab.spawn(
      lab.hosts.agent,
      process.execPath,
      [
        HEARTH_BIN,
        'agent',
        '--server',
        url,
        '--cameras',
        cameras,
        '--pin-cert',
        sha,
        '--data-dir',
        join(dir, 'agent'),
        '--log-level',
        'warn',
      ],
      { env, cwd: REPO_ROOT },
    );
    // stdout is a pipe here, so the agent keeps its pairing secrets in a 0600 file (review R9).
    await agent.waitForLine(/hearth agent pairing --data-dir/, 120_000);
    const code = String(
      JSON.parse(readFileSync(join(dir, 'agent', 'pairing-secret.json'), 'utf8')).manualCode ?? '',
    );
    await agent.waitForLine(new RegExp(`^Agent hdid_\\S+ serving .*\\b${camera}\\b`), 30_000);
    startup.agent = Date.now() - t;
    log(`${topology}: agent up in ${startup.agent} ms, code ${code}`);

    // 3. The viewer app in Chromium behind the viewer NAT: pair by typing the code.
    browser = await launchChromium({
      netns: lab.hosts.viewer.netns,
      ignoreCertificateErrors: true,
      ...(opts.mdns === false ? { args: ['--disable-features=WebRtcHideLocalIpsWithMdns'] } : {}),
    });
    const ctx = await browser.newContext();
    await ctx.addInitScript({ content: INIT_SCRIPT });
    const page = await ctx.newPage();
    await openApp(page, `${url}/`, { timeoutMs: 30_000 });
    t = Date.now();
    await pairByCode(page, code, { camera, timeoutMs: opts.pairTimeoutMs ?? 60_000 });
    out.pairingMs = Date.now() - t;
    log(`${topology}: paired in ${out.pairingMs} ms`);

    // 4. Open the live view: click the camera, wait for the first frame.
    out.ttffMs = await clickCamera(page, camera, { timeoutMs: opts.frameTimeoutMs ?? 30_000 });
    const h0 = await hook(page);
    out.firstState = h0.state;
    out.framesFirst = h0.frames;
    if (out.ttffMs === null) {
      out.state = h0.state;
      return result(`no frame decoded: state ${h0.state}, error ${JSON.stringify(h0.error)}`);
    }
    log(`${topology}: first frame after ${Math.round(out.ttffMs)} ms, ${h0.state}`);

    // 5. Settle: the status line is re-read from getStats every 2 s; ICE may move to a direct pair.
    await waitForState(page, 'connected (direct)', { timeoutMs: settleMs }).catch(() => undefined);
    await sleep(1500);
    const h = await hook(page);
    out.state = h.state;
    out.framesLater = h.frames;
    out.pair = await readPair(page);
    out.connected = out.framesLater > out.framesFirst && h.state.startsWith('connected');
    log(
      `${topology}: ${h.state}, pair ${JSON.stringify(out.pair)}, frames ${out.framesFirst} → ${out.framesLater}`,
    );
    return result(out.connected ? undefined : `frames ${out.framesFirst} → ${out.framesLater}, ${h.state}`);
  } catch (e) {
    return result(e instanceof Error ? e.message : String(e));
  } finally {
    await browser?.close().catch(() => undefined);
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runFullStackMatrix(
  topologies: readonly TopologyName[] = TOPOLOGY_NAMES,
  opts: FullStackOptions = {},
): Promise<FullStackRun[]> {
  const runs: FullStackRun[] = [];
  for (const t of topologies) runs.push(await runFullStackTopology(t, opts));
  return runs;
}

export function formatFullStackRun(r: FullStackRun): string {
  const ms = (v: number | null): string => (v === null ? '-' : `${Math.round(v)} ms`);
  return [
    r.label.padEnd(17),
    r.connected ? 'connected' : 'FAILED   ',
    `state=${JSON.stringify(r.state)}`,
    `first=${JSON.stringify(r.firstState)}`,
    `pair=${r.pairText ?? '-'}/${r.transport ?? '-'}`,
    `pairing=${ms(r.pairingMs)}`,
    `ttff=${ms(r.ttffMs)}`,
    `frames=${r.framesFirst}→${r.framesLater}`,
    ...(r.error ? [`error=${r.error}`] : []),
  ].join(' ');
}

export function formatFullStackMarkdown(runs: readonly FullStackRun[]): string {
  const ms = (v: number | null): string => (v === null ? '-' : `${Math.round(v)} ms`);
  const lines = [
    '| Topology | Status line (settled) | At first frame | Viewer pair (getStats) | Pairing | TTFF (click → first frame) |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of runs) {
    const pair = r.pairText ? `${r.pairText}, ${r.transport ?? '?'}` : '-';
    lines.push(
      `| \`${r.label}\` | ${r.connected ? (r.state ?? '-') : `not connected (${r.state ?? '-'})`} | ${r.firstState ?? '-'} | ${pair} | ${ms(r.pairingMs)} | ${ms(r.ttffMs)} |`,
    );
  }
  return lines.join('\n');
}
