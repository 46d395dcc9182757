/**
 * Pure construction of the ffmpeg argv for each source kind, plus an ffprobe helper that decides
 * copy vs transcode. Output is always an H.264 Annex-B elementary stream on stdout (`-f h264 pipe:1`).
 *
 * - rtsp H.264: `-rtsp_transport tcp`, `-c:v copy` (no transcoding when the codec fits, T9), with
 *   `dump_extra` so SPS/PPS precede every keyframe even if the camera only sends them in its SDP.
 * - testsrc, and any non-H.264 source (e.g. H.265 cameras): libx264 ultrafast/zerolatency, constrained
 *   baseline, yuv420p, fixed GOP, no B-frames, no scene-cut keyframes.
 */
import { execFile } from 'node:child_process';
import { type CameraSourceSpec, redactText } from './cameras.js';
import { MediaError } from './errors.js';

export type FfmpegMode = 'copy' | 'transcode';

export interface FfmpegArgsOptions {
  /** Codec name of the source's first video stream as ffprobe reports it (e.g. `h264`, `hevc`). */
  readonly sourceCodec?: string;
  /** GOP (seconds) used when transcoding a non-testsrc source. Default 2. */
  readonly transcodeGopSeconds?: number;
  /** Frame rate assumed for the transcode GOP when the source's is unknown. Default 25. */
  readonly transcodeFps?: number;
  /** ffmpeg log level. Default `error`. */
  readonly logLevel?: 'quiet' | 'error' | 'warning' | 'info';
  /** RTSP connect/read timeout in seconds. Default 10. */
  readonly rtspTimeoutSeconds?: number;
  /**
   * A second output of the same process, for motion detection: `fps` grayscale frames a second of
   * `width` × `height`, raw, on fd 3 (`pipe:3`). The first output is unchanged (still `-c copy` for
   * H.264 cameras): there is no second connection to the camera.
   */
  readonly analysis?: AnalysisOutput;
}

export interface AnalysisOutput {
  readonly fps: number;
  readonly width: number;
  readonly height: number;
}

/** The analysis output's arguments (see {@link FfmpegArgsOptions.analysis}). */
export function analysisArgs(a: AnalysisOutput): string[] {
  for (const v of [a.fps, a.width, a.height])
    if (!Number.isInteger(v) || v < 1 || v > 4096) throw new MediaError('bad-option', 'bad analysis size');
  return [
    '-map',
    '0:v:0',
    '-an',
    '-sn',
    '-dn',
    '-vf',
    `fps=${a.fps},scale=${a.width}:${a.height}:flags=area,format=gray`,
    '-c:v',
    'rawvideo',
    '-f',
    'rawvideo',
    // Without it a frame waits in ffmpeg's 32 KiB output buffer (six frames: 1.5 s at 4 fps).
    '-flush_packets',
    '1',
    'pipe:3',
  ];
}

export interface FfmpegPlan {
  readonly mode: FfmpegMode;
  /** Arguments after the executable. Never holds credentials (/proc/PID/cmdline is world-readable). */
  readonly args: readonly string[];
  /**
   * For rtsp sources: an ffconcat list holding the URL (with its credentials), to write on ffmpeg's
   * stdin (`-f concat -i pipe:0`) and then close. Holds the camera credentials: never log it.
   */
  readonly stdin?: string;
}

/**
 * Review R12: the RTSP URL (with its credentials) never goes on a command line or into an
 * environment, both readable by any local user in /proc. ffmpeg reads it from its stdin instead, as
 * a one-entry ffconcat list; the RTSP options go in the list's `option` lines, which the concat
 * demuxer applies when it opens the URL.
 */
export const RTSP_CONCAT_INPUT = [
  '-f',
  'concat',
  '-safe',
  '0',
  '-protocol_whitelist',
  'pipe,rtsp,rtp,srtp,tcp,udp',
  '-i',
  'pipe:0',
] as const;

/** The ffconcat list naming one RTSP URL, quoted for av_get_token. Throws on a control character. */
export function rtspConcatList(url: string, timeoutUs: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(url))
    throw new MediaError('bad-url', 'rtsp URL holds a control character');
  const quoted = `'${url.replaceAll("'", "'\\''")}'`;
  return `ffconcat version 1.0\nfile ${quoted}\noption rtsp_transport tcp\noption timeout ${timeoutUs}\n`;
}

/** Copy only H.264 (anything else, including an unknown codec, is transcoded). testsrc is always encoded. */
export function decideMode(source: CameraSourceSpec, sourceCodec: string | undefined): FfmpegMode {
  if (source.kind === 'testsrc') return 'transcode';
  return sourceCodec?.toLowerCase() === 'h264' ? 'copy' : 'transcode';
}

export function x264Args(gopFrames: number, fps?: number): string[] {
  const g = String(Math.max(1, Math.round(gopFrames)));
  return [
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-tune',
    'zerolatency',
    '-profile:v',
    'baseline',
    '-level:v',
    '3.1',
    '-pix_fmt',
    'yuv420p',
    ...(fps ? ['-r', String(fps)] : []),
    '-g',
    g,
    '-keyint_min',
    g,
    '-sc_threshold',
    '0',
    '-bf',
    '0',
    // Annex-B output without global headers: x264 repeats SPS/PPS before every IDR.
    '-x264-params',
    `keyint=${g}:min-keyint=${g}:scenecut=0:repeat-headers=1`,
  ];
}

const PRIMARY_OUTPUT = ['-an', '-sn', '-dn', '-f', 'h264', '-flush_packets', '1', 'pipe:1'];

/** Builds the ffmpeg argv (without the executable) for a source. Pure: no I/O. */
export function buildFfmpegArgs(source: CameraSourceSpec, opts: FfmpegArgsOptions = {}): FfmpegPlan {
  const common = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', opts.logLevel ?? 'error'];
  const mode = decideMode(source, opts.sourceCodec);
  const OUTPUT = [...PRIMARY_OUTPUT, ...(opts.analysis ? analysisArgs(opts.analysis) : [])];
  const tFps = opts.transcodeFps ?? 25;
  const tGop = (opts.transcodeGopSeconds ?? 2) * tFps;
  switch (source.kind) {
    case 'testsrc': {
      const input = `testsrc=size=${source.width}x${source.height}:rate=${source.fps}`;
      return {
        mode,
        args: [
          ...common,
          '-re',
          '-f',
          'lavfi',
          '-i',
          input,
          ...x264Args(source.fps * source.gopSeconds),
          ...OUTPUT,
        ],
      };
    }
    case 'file': {
      const input = ['-re', '-stream_loop', '-1', '-i', `file:${source.path}`];
      // No explicit h264_mp4toannexb: the raw h264 muxer inserts it by itself, and an explicit one
      // stops the output at the first loop ("a non-NULL packet sent after an EOF", ffmpeg 5.1).
      const codec = mode === 'copy' ? ['-c:v', 'copy'] : x264Args(tGop, tFps);
      return { mode, args: [...common, ...input, '-map', '0:v:0', ...codec, ...OUTPUT] };
    }
    case 'rtsp': {
      const timeoutUs = String(Math.round((opts.rtspTimeoutSeconds ?? 10) * 1e6));
      const input = ['-fflags', 'nobuffer', '-flags', 'low_delay', ...RTSP_CONCAT_INPUT];
      const codec =
        mode === 'copy' ? ['-c:v', 'copy', '-bsf:v', 'dump_extra=freq=keyframe'] : x264Args(tGop, tFps);
      return {
        mode,
        args: [...common, ...input, '-map', '0:v:0', ...codec, ...OUTPUT],
        stdin: rtspConcatList(source.secretUrl(), timeoutUs),
      };
    }
  }
}

/** ffprobe argv (and, for rtsp, its stdin: see FfmpegPlan.stdin) that prints the first video stream's codec name. Pure. */
export function buildProbePlan(
  source: CameraSourceSpec,
  timeoutSeconds = 10,
): { readonly args: string[]; readonly stdin?: string } | undefined {
  const common = [
    '-v',
    'error',
    '-select_streams',
    'v:0',
    '-show_entries',
    'stream=codec_name',
    '-of',
    'csv=p=0',
  ];
  switch (source.kind) {
    case 'testsrc':
      return undefined;
    case 'file':
      return { args: [...common, `file:${source.path}`] };
    case 'rtsp':
      return {
        args: [...common, ...RTSP_CONCAT_INPUT],
        stdin: rtspConcatList(source.secretUrl(), String(Math.round(timeoutSeconds * 1e6))),
      };
  }
}

/** The probe's argv alone (see buildProbePlan). */
export function buildProbeArgs(source: CameraSourceSpec, timeoutSeconds = 10): string[] | undefined {
  return buildProbePlan(source, timeoutSeconds)?.args;
}

export interface ProbeOptions {
  readonly ffprobePath?: string;
  readonly timeoutMs?: number;
}

/**
 * Detects the source's video codec with ffprobe (`h264`, `hevc`, ...). Returns undefined for testsrc.
 * Throws MediaError('probe-failed') with ffprobe's (redacted) complaint.
 */
export async function probeCodec(
  source: CameraSourceSpec,
  opts: ProbeOptions = {},
): Promise<string | undefined> {
  const timeoutMs = opts.timeoutMs ?? 12_000;
  const plan = buildProbePlan(source, Math.max(1, timeoutMs / 1000 - 1));
  if (!plan) return undefined;
  const secrets = source.kind === 'rtsp' ? source.secrets() : [];
  return new Promise((resolve, reject) => {
    const child = execFile(
      opts.ffprobePath ?? 'ffprobe',
      plan.args,
      { timeout: timeoutMs, maxBuffer: 64 * 1024 },
      (e, stdout, stderr) => {
        const codec = String(stdout).trim().split(/\s+/)[0];
        if (e || !codec) {
          const why = redactText(String(stderr).trim().split('\n').slice(-2).join(' | '), secrets).slice(
            0,
            300,
          );
          reject(
            new MediaError(
              'probe-failed',
              `ffprobe could not read ${source.display}${why ? `: ${why}` : ''}`,
            ),
          );
          return;
        }
        resolve(codec);
      },
    );
    child.stdin?.on('error', () => {});
    child.stdin?.end(plan.stdin ?? '');
  });
}
