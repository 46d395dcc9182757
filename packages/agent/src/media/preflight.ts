/**
 * Start-up check of the media tools: can ffmpeg (and ffprobe, where a camera needs it) be run, and
 * does this ffmpeg have what the configured cameras need? Run once before the agent starts, so that
 * a machine without ffmpeg fails at once with what to install instead of answering viewers with a
 * stream that never comes.
 *
 * What each source kind needs (see ffmpeg-args.ts and camera-source.ts):
 *
 * - `testsrc`: ffmpeg, the `lavfi` input device, the `libx264` encoder (it is always encoded).
 * - `file:` / `rtsp://`: ffmpeg, and ffprobe (the codec is probed before each start, unless the
 *   caller fixes it with `sourceCodec`). H.264 is copied; anything else is transcoded with
 *   `libx264`, which is only known once probed: a missing libx264 is a warning for these.
 *
 * Only `-version`, `-encoders` and `-formats` are run: no camera URL (and so no credential) ever
 * reaches a command line here.
 */
import { execFile } from 'node:child_process';
import type { CameraConfig } from './cameras.js';

/** The encoder ffmpeg-args.ts uses whenever it transcodes (x264Args). */
export const H264_ENCODER = 'libx264';
/** The input device of the testsrc pattern (`-f lavfi`). */
export const TESTSRC_FORMAT = 'lavfi';

export interface PreflightOptions {
  /** Default `ffmpeg` (looked up in PATH). */
  readonly ffmpegPath?: string;
  /** Default `ffprobe`. */
  readonly ffprobePath?: string;
  /** Per spawned command. Default 5000 ms. */
  readonly timeoutMs?: number;
  /** Skip the ffprobe check (the codec of file/rtsp sources is given, as CameraSourceOptions.sourceCodec). */
  readonly sourceCodecKnown?: boolean;
}

/** A tool the cameras need that could not be run. */
export interface MissingTool {
  readonly tool: 'ffmpeg' | 'ffprobe';
  /** The command that was tried (a path or a bare name). */
  readonly path: string;
  /** Why: the errno code (`ENOENT`, `EACCES`), `timeout`, or `exit N`. */
  readonly reason: string;
  /** Cameras that cannot start without it. */
  readonly cameras: readonly string[];
}

/** What one camera lacks. */
export interface CameraPreflight {
  readonly camera: string;
  /** Blocking: the camera cannot start (`ffmpeg`, `ffprobe`, `libx264`, `lavfi`). */
  readonly missing: readonly string[];
  /** Not blocking: only some sources will work (e.g. no libx264, so only H.264 sources play). */
  readonly warnings: readonly string[];
}

export interface PreflightResult {
  /** True when no camera misses anything blocking. */
  readonly ok: boolean;
  /** First line of `ffmpeg -version`, when it ran. */
  readonly ffmpegVersion?: string;
  readonly tools: readonly MissingTool[];
  /** Encoders / formats that were looked for and are absent, with the cameras needing them. */
  readonly features: readonly {
    readonly kind: 'encoder' | 'format';
    readonly name: string;
    readonly cameras: readonly string[];
    readonly blocking: boolean;
  }[];
  readonly cameras: readonly CameraPreflight[];
}

/** Encoder names listed by `ffmpeg -hide_banner -encoders`. Pure. */
export function parseEncoders(text: string): Set<string> {
  return parseListing(text, /^\s*[VAS][A-Z.]{5}\s+(\S+)/);
}

/** Format (and device) names listed by `ffmpeg -hide_banner -formats`; `mov,mp4,…` are split. Pure. */
export function parseFormats(text: string): Set<string> {
  const out = new Set<string>();
  for (const n of parseListing(text, /^\s*[D ][E ]d?\s+(\S+)/))
    for (const part of n.split(',')) out.add(part);
  return out;
}

/** Lines after the ` ------` / ` --` separator, first column matched by `re`. */
function parseListing(text: string, re: RegExp): Set<string> {
  const out = new Set<string>();
  const lines = text.split(/\r?\n/);
  const sep = lines.findIndex((l) => /^\s*-{2,}\s*$/.test(l));
  for (const line of sep >= 0 ? lines.slice(sep + 1) : lines) {
    const m = re.exec(line);
    if (m?.[1]) out.add(m[1]);
  }
  return out;
}

interface RunResult {
  ok: boolean;
  stdout: string;
  reason: string;
}

function runTool(cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, windowsHide: true },
      (e, stdout) => {
        if (!e) return resolve({ ok: true, stdout: String(stdout), reason: '' });
        const err = e as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null };
        const reason =
          typeof err.code === 'string'
            ? err.code
            : err.killed || err.signal
              ? 'timeout'
              : `exit ${String(err.code ?? '?')}`;
        resolve({ ok: false, stdout: String(stdout ?? ''), reason });
      },
    );
  });
}

/** Whether `cmd -version` runs (one spawn, with a timeout): for a quick re-check at run time. */
export async function checkTool(cmd: string, timeoutMs = 3000): Promise<{ ok: boolean; reason: string }> {
  const r = await runTool(cmd, ['-hide_banner', '-version'], timeoutMs);
  return { ok: r.ok, reason: r.reason };
}

/**
 * Checks ffmpeg (and ffprobe where needed) for `cameras`. Never throws for a missing tool: the
 * result says what is missing, per camera. Spawns `ffmpeg -version`, `-encoders` (and `-formats`
 * with a testsrc camera) and `ffprobe -version` (with a file/rtsp camera) in parallel, each with
 * a timeout.
 */
export async function preflightMedia(
  cameras: readonly CameraConfig[],
  opts: PreflightOptions = {},
): Promise<PreflightResult> {
  const ffmpeg = opts.ffmpegPath ?? 'ffmpeg';
  const ffprobe = opts.ffprobePath ?? 'ffprobe';
  const timeout = opts.timeoutMs ?? 5000;
  const testsrc = cameras.filter((c) => c.source.kind === 'testsrc').map((c) => c.name);
  const probed = cameras.filter((c) => c.source.kind !== 'testsrc').map((c) => c.name);
  const all = cameras.map((c) => c.name);
  const needProbe = probed.length > 0 && !opts.sourceCodecKnown;

  const [version, encoders, formats, probe] = await Promise.all([
    runTool(ffmpeg, ['-hide_banner', '-version'], timeout),
    runTool(ffmpeg, ['-hide_banner', '-encoders'], timeout),
    testsrc.length ? runTool(ffmpeg, ['-hide_banner', '-formats'], timeout) : undefined,
    needProbe ? runTool(ffprobe, ['-hide_banner', '-version'], timeout) : undefined,
  ]);

  const tools: MissingTool[] = [];
  const features: PreflightResult['features'][number][] = [];
  const missing = new Map<string, string[]>(all.map((n) => [n, []]));
  const warnings = new Map<string, string[]>(all.map((n) => [n, []]));
  const add = (m: Map<string, string[]>, names: readonly string[], what: string) => {
    for (const n of names) m.get(n)?.push(what);
  };

  const ffmpegRuns = version.ok && encoders.ok;
  if (!ffmpegRuns) {
    tools.push({
      tool: 'ffmpeg',
      path: ffmpeg,
      reason: version.ok ? encoders.reason : version.reason,
      cameras: all,
    });
    add(missing, all, 'ffmpeg');
  } else {
    const enc = parseEncoders(encoders.stdout);
    if (!enc.has(H264_ENCODER)) {
      if (testsrc.length) {
        features.push({ kind: 'encoder', name: H264_ENCODER, cameras: testsrc, blocking: true });
        add(missing, testsrc, H264_ENCODER);
      }
      if (probed.length) {
        features.push({ kind: 'encoder', name: H264_ENCODER, cameras: probed, blocking: false });
        add(warnings, probed, `${H264_ENCODER} (only H.264 sources can play)`);
      }
    }
    if (formats && testsrc.length) {
      const fmt = formats.ok ? parseFormats(formats.stdout) : new Set<string>();
      if (!fmt.has(TESTSRC_FORMAT)) {
        features.push({ kind: 'format', name: TESTSRC_FORMAT, cameras: testsrc, blocking: true });
        add(missing, testsrc, TESTSRC_FORMAT);
      }
    }
  }
  if (probe && !probe.ok) {
    tools.push({ tool: 'ffprobe', path: ffprobe, reason: probe.reason, cameras: probed });
    add(missing, probed, 'ffprobe');
  }

  const perCamera = all.map((camera) => ({
    camera,
    missing: missing.get(camera) ?? [],
    warnings: warnings.get(camera) ?? [],
  }));
  const firstLine = version.ok ? version.stdout.split('\n')[0]?.trim() : undefined;
  return {
    ok: perCamera.every((c) => c.missing.length === 0),
    ...(firstLine ? { ffmpegVersion: firstLine } : {}),
    tools,
    features,
    cameras: perCamera,
  };
}

const quoteList = (names: readonly string[]) => names.map((n) => `"${n}"`).join(', ');
const cams = (names: readonly string[]) => `camera${names.length === 1 ? '' : 's'} ${quoteList(names)}`;

/**
 * One line saying what is missing and what to install, for a failed preflight (empty when ok).
 * `pathOption` names how the user can point at another binary (e.g. `--ffmpeg <path>`).
 */
export function describePreflight(
  r: PreflightResult,
  pathOption?: { ffmpeg?: string; ffprobe?: string },
): string {
  const parts: string[] = [];
  for (const t of r.tools) {
    const what = t.reason === 'ENOENT' ? 'was not found' : `cannot be run (${t.reason})`;
    const other = pathOption?.[t.tool] ? `, or give its path with ${pathOption[t.tool]}` : '';
    parts.push(
      `${t.tool} ${t.path === t.tool ? '' : `(${t.path}) `}${what}, and ${cams(t.cameras)} need${t.cameras.length === 1 ? 's' : ''} it. Install ffmpeg (it includes ffprobe; Debian/Ubuntu: sudo apt install ffmpeg)${other}`,
    );
  }
  for (const f of r.features.filter((x) => x.blocking)) {
    const why =
      f.kind === 'encoder'
        ? `the ${f.name} encoder (H.264), which ${cams(f.cameras)} need${f.cameras.length === 1 ? 's' : ''} to encode video`
        : `the ${f.name} input device, which ${cams(f.cameras)} need${f.cameras.length === 1 ? 's' : ''} for the test pattern`;
    parts.push(
      `this ffmpeg lacks ${why}. Install an ffmpeg built with ${f.name} (Debian/Ubuntu: sudo apt install ffmpeg)`,
    );
  }
  return parts.join('; ');
}
