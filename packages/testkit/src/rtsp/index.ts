/**
 * A real RTSP server for tests and benchmarks: GStreamer's gst-rtsp-server (Debian
 * `gir1.2-gst-rtsp-server-1.0`, `python3-gi`, x264enc from gstreamer1.0-plugins-ugly) serving an
 * H.264 test pattern with a chosen GOP, optionally behind basic auth. The credentials reach the
 * Python process through its environment only, never its argv (/proc/PID/cmdline is world-readable).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type OnvifFixture, startOnvifFixture } from './onvif-server.js';

export { type OnvifFixture, type OnvifFixtureStats, startOnvifFixture } from './onvif-server.js';

/** The system Python (the one with python3-gi), not whatever `python3` is first on PATH. */
export const RTSP_PYTHON = '/usr/bin/python3';

export interface RtspServerOptions {
  /** Keyframe interval in seconds (x264enc key-int-max = gopSeconds × fps). Default 10. */
  readonly gopSeconds?: number;
  /** Default 15. */
  readonly fps?: number;
  /** `WxH`. Default `1280x720`. */
  readonly size?: string;
  /** Target bitrate, kbit/s. Default 2000. */
  readonly bitrateKbps?: number;
  /** Mount path. Default `/cam`. */
  readonly path?: string;
  /** Listen port. Default 0 (a free one). */
  readonly port?: number;
  /** Basic auth; passed to the server in its environment. */
  readonly auth?: { readonly user: string; readonly password: string };
  /** One encoder shared by every client (cheaper with several clients). Default false. */
  readonly shared?: boolean;
  /**
   * Send SPS/PPS in band before every keyframe (rtph264pay config-interval=-1), as many cameras do,
   * instead of once a second. Default false.
   */
  readonly parameterSetsEveryKeyframe?: boolean;
  /** Slices per picture (x264 `slices`), as multi-slice cameras send. Default: x264's choice. */
  readonly slices?: number;
  /** How long to wait for the ready line. Default 10 000 ms. */
  readonly readyTimeoutMs?: number;
  /**
   * Also serve an ONVIF device/media service (loopback HTTP) with these credentials; its
   * SetSynchronizationPoint really forces a keyframe in the encoder. See onvif-server.ts.
   */
  readonly onvif?: { readonly user: string; readonly password: string };
}

/** A keyframe the fixture's encoder emitted (from its `KEYFRAME` lines). */
export interface FixtureKeyframe {
  /** Frame index in its encoder. */
  readonly frame: number;
  /** Frames since that encoder's previous keyframe (0 for the first). */
  readonly gap: number;
  /** The first keyframe after a forced-keyframe request. */
  readonly forced: boolean;
  /** performance.now() when the line was read. */
  readonly at: number;
}

export interface RtspServerHandle {
  /** `rtsp://127.0.0.1:PORT/PATH`, without credentials. */
  readonly url: string;
  /** The URL with the credentials in its userinfo (for the code under test; do not log it). */
  readonly urlWithAuth: string;
  readonly pid: number;
  /** Keyframe interval in frames (gopSeconds × fps). */
  readonly keyInterval: number;
  /** Every keyframe emitted so far. */
  keyframes(): readonly FixtureKeyframe[];
  /** Keyframes forced so far (SIGUSR1 handled by the encoder process). */
  forcedRequests(): number;
  /** Asks the encoder for a keyframe now (what the ONVIF SetSynchronizationPoint does). */
  forceKeyframe(): void;
  /** The ONVIF service, when `onvif` was given. */
  readonly onvif: OnvifFixture | undefined;
  /** Stops the server (SIGTERM, then SIGKILL after 2 s) and waits for it to exit. */
  close(): Promise<void>;
}

function scriptPath(): string {
  // Next to this module in src/; from dist/ the script is still in src/.
  for (const rel of ['./rtsp-server.py', '../../src/rtsp/rtsp-server.py']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error('rtsp-server.py not found');
}

/** True when the system Python can load GstRtspServer (else a reason to skip). */
export function rtspServerAvailable(): true | string {
  try {
    execFileSync(
      RTSP_PYTHON,
      ['-c', "import gi; gi.require_version('GstRtspServer','1.0'); from gi.repository import GstRtspServer"],
      { stdio: 'ignore', timeout: 10_000 },
    );
    return true;
  } catch {
    return `${RTSP_PYTHON} cannot load GstRtspServer (python3-gi, gir1.2-gst-rtsp-server-1.0)`;
  }
}

/** Starts the RTSP fixture and resolves once it listens. */
export async function startRtspServer(o: RtspServerOptions = {}): Promise<RtspServerHandle> {
  const args = [
    scriptPath(),
    '--port',
    String(o.port ?? 0),
    '--path',
    o.path ?? '/cam',
    '--fps',
    String(o.fps ?? 15),
    '--gop-seconds',
    String(o.gopSeconds ?? 10),
    '--size',
    o.size ?? '1280x720',
    '--bitrate',
    String(o.bitrateKbps ?? 2000),
    ...(o.shared ? ['--shared'] : []),
    ...(o.parameterSetsEveryKeyframe ? ['--sps-every-keyframe'] : []),
    ...(o.slices ? ['--slices', String(Math.max(1, Math.min(16, Math.round(o.slices))))] : []),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.HEARTH_RTSP_USER;
  delete env.HEARTH_RTSP_PASS;
  if (o.auth) {
    env.HEARTH_RTSP_USER = o.auth.user;
    env.HEARTH_RTSP_PASS = o.auth.password;
  }
  const proc: ChildProcess = spawn(RTSP_PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  const pid = proc.pid;
  let stderr = '';
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (d: string) => {
    stderr = (stderr + d).slice(-2000);
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const kill = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null || pid === undefined) return;
    process.kill(pid, 'SIGTERM');
    const t = setTimeout(() => {
      if (proc.exitCode === null && proc.signalCode === null) process.kill(pid, 'SIGKILL');
    }, 2000);
    await exited;
    clearTimeout(t);
  };
  const keyframes: FixtureKeyframe[] = [];
  let forced = 0;
  let lineBuf = '';
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (d: string) => {
    lineBuf += d;
    let nl = lineBuf.indexOf('\n');
    while (nl >= 0) {
      const line = lineBuf.slice(0, nl);
      lineBuf = lineBuf.slice(nl + 1);
      const k = /^KEYFRAME frame=(\d+) gap=(\d+) forced=([01])$/.exec(line);
      if (k) {
        keyframes.push({
          frame: Number(k[1]),
          gap: Number(k[2]),
          forced: k[3] === '1',
          at: performance.now(),
        });
      }
      const f = /^FORCED (\d+)/.exec(line);
      if (f) forced = Number(f[1]);
      nl = lineBuf.indexOf('\n');
    }
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const t = setTimeout(
      () => fail(new Error('RTSP server: no ready line in time')),
      o.readyTimeoutMs ?? 10_000,
    );
    const fail = (e: Error): void => {
      clearTimeout(t);
      void kill().then(() => reject(e));
    };
    proc.once('error', (e) => fail(e));
    const onExit = (code: number | null, sig: NodeJS.Signals | null): void =>
      fail(new Error(`RTSP server exited (${sig ?? code}) before ready: ${stderr.trim().slice(-500)}`));
    proc.once('exit', onExit);
    proc.stdout?.on('data', (d: string) => {
      out += d;
      const m = /^READY (rtsp:\/\/\S+)$/m.exec(out);
      if (m?.[1]) {
        clearTimeout(t);
        proc.off('exit', onExit);
        resolve(m[1]);
      }
    });
  });
  if (pid === undefined) throw new Error('RTSP server has no PID');
  const u = new URL(url);
  if (o.auth) {
    u.username = encodeURIComponent(o.auth.user);
    u.password = encodeURIComponent(o.auth.password);
  }
  const forceKeyframe = (): void => {
    if (proc.exitCode === null && proc.signalCode === null) process.kill(pid, 'SIGUSR1');
  };
  let onvif: OnvifFixture | undefined;
  if (o.onvif) {
    try {
      onvif = await startOnvifFixture({ ...o.onvif, rtspUrl: url, onSynchronizationPoint: forceKeyframe });
    } catch (e) {
      await kill();
      throw e;
    }
  }
  return {
    url,
    urlWithAuth: u.toString(),
    pid,
    keyInterval: Math.max(1, Math.round((o.gopSeconds ?? 10) * (o.fps ?? 15))),
    keyframes: () => [...keyframes],
    forcedRequests: () => forced,
    forceKeyframe,
    onvif,
    close: async () => {
      await onvif?.close();
      await kill();
    },
  };
}
