/** The actions behind `hearth server`, `hearth agent` and `hearth demo`. */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type Agent,
  type CameraConfig,
  createMediaBackend,
  describePreflight,
  factoryReset,
  loadCamerasFile,
  loadTimeZone,
  type MediaBackendHandle,
  parseCamerasYaml,
  preflightMedia,
  startAgent,
} from '@hearth/agent';
import { pinnedFetch } from '@hearth/node';
import { describeError, type ErrorCode, HearthError } from '@hearth/protocol';
import { type HearthServer, loadServerConfig, startServer } from '@hearth/server';
import { pino } from 'pino';
import { forgetPairing, readPairing, renderPairing, showPairing } from './pairing-display.js';

type Opts = Record<string, unknown>;

/**
 * A failure the user can act on: a {@link HearthError} with a registered code (`E_USAGE`,
 * `E_CONFIG`, `E_FFMPEG`…), printed as `hearth: CODE: message`, with the exit status of
 * {@link exitCode}.
 */
export class CliError extends HearthError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
  }
}

/**
 * The process exit status of a failure: the one place where error codes become exit statuses.
 * A usage error (ours or the argument parser's) is 2; any other failure, coded or not, is 1.
 */
export function exitCode(code: unknown): number {
  return code === 'E_USAGE' ? 2 : 1;
}

function logger(level: unknown) {
  const lvl = typeof level === 'string' ? level : 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(lvl)) {
    throw new CliError(
      'E_USAGE',
      `--log-level must be one of trace, debug, info, warn, error (got ${JSON.stringify(lvl)})`,
    );
  }
  return pino({ level: lvl, base: undefined }, pino.destination(2));
}

/** Close everything on the first Ctrl-C / SIGTERM; a second one exits at once. */
function onStop(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (sig: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write(`\n${sig}: stopping…\n`);
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    stop().then(
      () => process.exit(process.exitCode ?? 0),
      (e) => {
        process.stderr.write(`hearth: error while stopping: ${(e as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

async function serverCmd(o: Opts): Promise<void> {
  const log = logger(o.logLevel);
  const flags: Record<string, unknown> = {};
  for (const k of ['dataDir', 'host', 'port', 'publicUrl', 'tlsCert', 'tlsKey'])
    if (o[k] !== undefined) flags[k] = o[k];
  if (o.relay === false) flags.relay = false;
  const acme: Record<string, unknown> = {};
  if (o.acmeHostname !== undefined) acme.hostname = o.acmeHostname;
  if (o.acmeEmail !== undefined) acme.email = o.acmeEmail;
  if (o.acmeDirectory !== undefined) acme.directoryUrl = o.acmeDirectory;
  if (o.tls !== undefined || Object.keys(acme).length)
    flags.tls = {
      ...(o.tls !== undefined ? { mode: o.tls } : {}),
      ...(Object.keys(acme).length ? { acme } : {}),
    };
  const cfg = loadServerConfig({
    ...(typeof o.config === 'string' ? { file: o.config } : {}),
    env: process.env,
    flags,
  });
  const server = await startServer(cfg, { log });
  printServer(server);
  onStop(() => server.close());
}

function printServer(s: HearthServer): void {
  const out = process.stdout;
  out.write(`Hearth server listening on ${s.url}\n`);
  out.write(`  server key: ${s.serverKey}\n`);
  if (s.tlsMode === 'acme')
    out.write('  TLS certificate: from ACME, renewed automatically (agents need no --pin-cert)\n');
  else if (s.certSha256)
    out.write(
      `  TLS certificate SHA-256: ${s.certSha256}\n  (${s.tlsMode === 'self-signed' ? 'self-signed: browsers will warn; ' : ''}agents: --pin-cert ${s.certSha256})\n`,
    );
  if (s.relay)
    out.write(
      `  STUN/TURN relay: udp ${s.relay.udpPort}, tcp ${s.relay.tcpPort}${s.relay.tlsPort !== undefined ? `, tls ${s.relay.tlsPort}` : ''}\n`,
    );
}

/** ffmpeg/ffprobe to run: `--ffmpeg`/`--ffprobe`, else HEARTH_FFMPEG/HEARTH_FFPROBE, else PATH. */
interface MediaTools {
  ffmpegPath?: string;
  ffprobePath?: string;
}

function mediaTools(o: Opts): MediaTools {
  const pick = (flag: unknown, env: string | undefined) =>
    typeof flag === 'string' && flag !== '' ? flag : env ? env : undefined;
  const ffmpegPath = pick(o.ffmpeg, process.env.HEARTH_FFMPEG);
  const ffprobePath = pick(o.ffprobe, process.env.HEARTH_FFPROBE);
  return { ...(ffmpegPath ? { ffmpegPath } : {}), ...(ffprobePath ? { ffprobePath } : {}) };
}

/**
 * Before anything starts: can ffmpeg (and ffprobe) run, with what the cameras need? Otherwise stop
 * with what to install, rather than print a pairing code for a camera that can never play.
 */
async function preflight(cameras: CameraConfig[], tools: MediaTools, log: ReturnType<typeof logger>) {
  const r = await preflightMedia(cameras, tools);
  for (const c of r.cameras) for (const w of c.warnings) log.warn({ camera: c.camera }, `ffmpeg lacks ${w}`);
  if (!r.ok)
    throw new CliError(
      'E_FFMPEG',
      describePreflight(r, { ffmpeg: '--ffmpeg <path>', ffprobe: '--ffprobe <path>' }),
    );
  log.debug({ ffmpeg: r.ffmpegVersion }, 'media preflight passed');
}

async function startAgentWith(o: {
  server: string;
  dataDir: string;
  cameras: CameraConfig[];
  pinCert?: string;
  insecure?: boolean;
  acceptServerKey?: string;
  log: ReturnType<typeof logger>;
  loopback?: boolean;
  tools: MediaTools;
  /** The camera map's `timeZone:` (grant schedules); undefined: the system's. */
  timeZone?: string;
}): Promise<{ agent: Agent; media: MediaBackendHandle }> {
  // The running agent and media; replaced when an owner erases the household (a new device).
  const held = {} as { agent: Agent; media: MediaBackendHandle };
  const erase = async () => {
    process.stdout.write(
      'An owner erased this household: erasing the device (server first, then its data)…\n',
    );
    await held.agent.close();
    await held.media.close();
    try {
      const r = await factoryReset({
        dataDir: o.dataDir,
        serverUrl: o.server,
        ...(o.pinCert ? { fetch: pinnedFetch(o.pinCert) as unknown as typeof fetch } : {}),
      });
      process.stdout.write(
        `Erased device ${r.deviceId} and its data on the server. Starting again as a new device.\n`,
      );
    } catch (e) {
      process.stderr.write(
        `hearth: ${(e as HearthError).code ?? 'E_INTERNAL'}: the erase failed (${(e as Error).message}); nothing local was deleted, restarting the same device\n`,
      );
    }
    Object.assign(held, await startOnce());
  };
  const startOnce = () => startAgentOnce(o, () => void erase());
  Object.assign(held, await startOnce());
  return held;
}

async function startAgentOnce(
  o: Parameters<typeof startAgentWith>[0],
  onErase: () => void,
): Promise<{ agent: Agent; media: MediaBackendHandle }> {
  const { cameras } = o;
  if (cameras.length === 0) throw new CliError('E_CONFIG', 'the camera map lists no cameras');
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const media = createMediaBackend({
    cameras,
    log: o.log,
    source: o.tools,
    ...(o.loopback ? { bindAddress: '127.0.0.1' } : {}),
  });
  const agent = await startAgent({
    dataDir: o.dataDir,
    serverUrl: o.server,
    media,
    log: o.log,
    ...(o.timeZone ? { timeZone: o.timeZone } : {}),
    ...(o.pinCert ? { pinnedCertSha256: o.pinCert } : {}),
    ...(o.insecure ? { insecure: true } : {}),
    onPairingWindow: (info) => showPairing(info, o.dataDir),
    onErase,
    ...(o.acceptServerKey ? { acceptServerKey: o.acceptServerKey } : {}),
    onEvent: (e) => {
      if (e.kind === 'pairing-window-closed') forgetPairing(o.dataDir);
      if (e.kind === 'server-key-changed') {
        // Like ssh's "REMOTE HOST IDENTIFICATION HAS CHANGED": stop, say why and what to do.
        process.stderr.write(
          `hearth: E_SERVER_KEY_CHANGED: ${o.server} ${e.reason}.\n` +
            `  pinned at first contact: ${e.pinned ?? '(none)'}\n  offered now:             ${e.offered}\n` +
            '  This is a possible attack (someone else answering at that address). If you reinstalled the\n' +
            `  server, check its key (hearth server prints it) and run the agent once with --accept-server-key ${e.offered}\n`,
        );
        process.exitCode = 1;
        process.kill(process.pid, 'SIGTERM');
      }
    },
  });
  process.stdout.write(`Agent ${agent.deviceId} serving ${cameras.map((c) => c.name).join(', ')}\n`);
  if (!agent.pairing()) process.stdout.write('  Already paired: open the viewer on a paired browser.\n');
  return { agent, media };
}

async function agentCmd(o: Opts): Promise<void> {
  const log = logger(o.logLevel);
  for (const k of ['server', 'cameras'])
    if (typeof o[k] !== 'string')
      throw new CliError('E_USAGE', `hearth agent needs --${k} (see hearth agent --help)`);
  const server = String(o.server);
  if (!/^https?:\/\/[^/]+/.test(server))
    throw new CliError('E_USAGE', `--server must be an http(s) URL (got ${JSON.stringify(server)})`);
  const cameras = loadCamerasFile(String(o.cameras));
  const timeZone = loadTimeZone(String(o.cameras));
  const tools = mediaTools(o);
  if (cameras.length > 0) await preflight(cameras, tools, log);
  const held = await startAgentWith({
    server,
    dataDir: resolve(String(o.dataDir)),
    cameras,
    tools,
    ...(timeZone ? { timeZone } : {}),
    ...(typeof o.pinCert === 'string' ? { pinCert: o.pinCert } : {}),
    ...(o.insecure ? { insecure: true } : {}),
    ...(typeof o.acceptServerKey === 'string' ? { acceptServerKey: o.acceptServerKey } : {}),
    log,
  });
  onStop(async () => {
    await held.agent.close();
    await held.media.close();
    forgetPairing(resolve(String(o.dataDir))); // a restart draws new secrets
  });
}

/** `hearth agent pairing`: show the open pairing window's QR, link and code again (review R9). */
async function agentPairingCmd(o: Opts): Promise<void> {
  const dataDir = resolve(String(o.dataDir));
  const info = readPairing(dataDir);
  if (!info)
    throw new CliError(
      'E_PAIRING_CLOSED',
      `no pairing window is open for the agent in ${dataDir} (it is paired, the window expired, or the agent is not running)`,
    );
  renderPairing(info);
}

async function demoCmd(o: Opts): Promise<void> {
  const log = logger(o.logLevel);
  const dataDir = resolve(String(o.dataDir));
  const gop = Number(o.gop);
  if (!Number.isFinite(gop) || gop <= 0 || gop > 60)
    throw new CliError('E_USAGE', '--gop must be a number of seconds in (0, 60]');
  const cameras = parseCamerasYaml(`cameras:\n  demo: testsrc?size=1280x720&fps=15&gop=${gop}\n`);
  const tools = mediaTools(o);
  // Before the server starts: no pairing code is printed for a camera that cannot play.
  await preflight(cameras, tools, log);
  const cfg = loadServerConfig({
    env: process.env,
    // Relay on ephemeral ports: the demo must start even where coturn already holds 3478.
    flags: {
      dataDir: join(dataDir, 'server'),
      host: '127.0.0.1',
      port: o.port,
      relay: { udpPort: 0, tcpPort: 0 },
    },
  });
  const server = await startServer(cfg, { log });
  let held: { agent: Agent; media: MediaBackendHandle } | undefined;
  try {
    process.stdout.write(
      `\nHearth demo\n  Open ${server.url}/ in a browser, choose "Pair a camera" and type the code below.\n`,
    );
    held = await startAgentWith({
      server: server.url,
      dataDir: join(dataDir, 'agent'),
      cameras,
      log,
      loopback: true,
      tools,
    });
    process.stdout.write(`  Stop with Ctrl-C. Start over (new device, new owner): delete ${dataDir}\n`);
  } catch (e) {
    await server.close();
    throw e;
  }
  onStop(async () => {
    await held?.agent.close();
    await held?.media.close();
    await server.close();
  });
}

/** `hearth agent reset`: the factory reset (S8), server first, then the data directory. */
async function agentResetCmd(o: Opts): Promise<void> {
  const dataDir = resolve(String(o.dataDir ?? '.hearth/agent'));
  if (o.yes !== true)
    throw new CliError(
      'E_USAGE',
      `this erases the device in ${dataDir} (its key, access list and recordings) and its recordings on the server; nothing can be recovered. Run again with --yes`,
    );
  const localOnly = o.localOnly === true;
  if (!localOnly && typeof o.server !== 'string')
    throw new CliError(
      'E_USAGE',
      'agent reset needs --server <url> (or --local-only to leave the server copy)',
    );
  const r = await factoryReset({
    dataDir,
    localOnly,
    ...(typeof o.server === 'string' ? { serverUrl: o.server } : {}),
    ...(typeof o.pinCert === 'string' ? { fetch: pinnedFetch(o.pinCert) as unknown as typeof fetch } : {}),
  });
  process.stdout.write(
    `Reset device ${r.deviceId}: ${r.serverErased ? 'its recordings on the server are erased; ' : 'the server was not contacted (its copy stays until an owner erases it); '}removed ${r.removed.length ? r.removed.join(', ') : 'nothing'} from ${dataDir}.\nThe next start makes a new device: pair it again.\n`,
  );
}

/** Run one command; print failures as `hearth: CODE: message` and exit with {@link exitCode}. */
export async function run(
  cmd: 'server' | 'agent' | 'agent-pairing' | 'agent-reset' | 'demo',
  o: Opts,
): Promise<void> {
  try {
    if (cmd === 'server') await serverCmd(o);
    else if (cmd === 'agent') await agentCmd(o);
    else if (cmd === 'agent-pairing') await agentPairingCmd(o);
    else if (cmd === 'agent-reset') await agentResetCmd(o);
    else await demoCmd(o);
  } catch (e) {
    const code = (e as { code?: unknown } | null)?.code;
    process.stderr.write(`hearth: ${describeError(e)}\n`);
    // An error without a registered code is unexpected: its stack helps the report.
    if (!(e instanceof HearthError)) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
    process.exit(exitCode(code));
  }
}
