/**
 * One ffmpeg process per camera, however many viewers. A `warm` source runs from {@link CameraSource.start}
 * until {@link CameraSource.close}, subscribers or not, so its GOP cache always holds the latest
 * keyframe. An `on-demand` source (the default of this class; the camera map defaults to warm) is
 * reference-counted: started by the first subscriber, stopped `stopDelayMs` after the last one leaves. Parses the Annex-B output into access
 * units, keeps the latest GOP for fast first frames, restarts ffmpeg with exponential backoff when it
 * dies or stalls, and reports that through `error` and `restarted` events. Credentials never reach a
 * log line or an error: ffmpeg's stderr is scrubbed with {@link redactText}, and the argv is never logged.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { type GrayFrame, GrayFrameReader } from '../events/motion.js';
import {
  type AccessUnit,
  AccessUnitAssembler,
  AnnexBParser,
  GopCache,
  type GopCacheOptions,
  type GopSnapshot,
} from './annexb.js';
import { type CameraMode, type CameraSourceSpec, redactText } from './cameras.js';
import { MediaError, type MediaLogger, silentLogger } from './errors.js';
import { type AnalysisOutput, buildFfmpegArgs, type FfmpegMode, probeCodec } from './ffmpeg-args.js';

export interface CameraSourceOptions {
  /**
   * `warm`: keep ffmpeg running from {@link CameraSource.start} to close, with or without
   * subscribers. `on-demand`: run only while subscribed (plus `stopDelayMs`). Default `on-demand`.
   */
  readonly cameraMode?: CameraMode;
  readonly ffmpegPath?: string;
  readonly ffprobePath?: string;
  /** On-demand sources: keep ffmpeg running this long after the last subscriber leaves. Default 5000 ms. */
  readonly stopDelayMs?: number;
  /** Restart backoff. Default 250 ms doubling up to 10 s, reset on the first keyframe after a restart. */
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /** Kill and restart ffmpeg when it produces no output for this long. Default 15000 ms. */
  readonly stallTimeoutMs?: number;
  readonly gopCache?: GopCacheOptions;
  readonly maxNalBytes?: number;
  readonly logger?: MediaLogger;
  /** Skip ffprobe and assume this codec for file/rtsp sources (e.g. from config). */
  readonly sourceCodec?: string;
  /**
   * rtsp sources: run ffmpeg at `-loglevel info` and emit `playing` when it has analysed the stream
   * (its `Input #0` line). Only from then on does ffmpeg pass packets on (`-fflags nobuffer` drops
   * those read while probing), so a keyframe requested from the camera earlier is lost.
   */
  readonly detectPlaying?: boolean;
  /**
   * Also decode a small grayscale copy in the same ffmpeg (a second output on fd 3), emitted as
   * `gray` frames: for motion detection, without a second connection to the camera.
   */
  readonly analysis?: AnalysisOutput;
}

export type AccessUnitListener = (au: AccessUnit) => void;

export interface SourceSubscription {
  /** The cached GOP at the moment of subscribing; the listener then gets every later AU. */
  readonly snapshot: GopSnapshot;
  unsubscribe(): void;
}

export interface RestartedEvent {
  readonly camera: string;
  readonly attempt: number;
  readonly pid: number | undefined;
}

export interface CameraSourceStats {
  readonly camera: string;
  readonly running: boolean;
  readonly cameraMode: CameraMode;
  readonly pid: number | undefined;
  readonly mode: FfmpegMode | undefined;
  readonly subscribers: number;
  readonly restarts: number;
  readonly framesIn: number;
  readonly keyframesIn: number;
  readonly gop: { frames: number; bytes: number; truncated: boolean };
  readonly profileLevelId: string | undefined;
  /** Frames of the analysis copy so far (0 without one). */
  readonly analysisFrames: number;
}

interface Events {
  au: [AccessUnit];
  started: [{ camera: string; pid: number | undefined; mode: FfmpegMode }];
  restarted: [RestartedEvent];
  error: [MediaError];
  stopped: [{ camera: string }];
  keyframe: [AccessUnit];
  playing: [{ camera: string }];
  /** A frame of the analysis copy (see {@link CameraSourceOptions.analysis}); its `t` is content time. */
  gray: [GrayFrame];
}

export class CameraSource extends EventEmitter<Events> {
  readonly name: string;
  readonly spec: CameraSourceSpec;
  private readonly opts: CameraSourceOptions;
  private readonly log: MediaLogger;
  private readonly subs = new Set<AccessUnitListener>();
  private readonly gop: GopCache;
  private proc: ChildProcess | undefined;
  private stopTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private restarts = 0;
  private framesIn = 0;
  private keyframesIn = 0;
  private codec: string | undefined;
  private currentMode: FfmpegMode | undefined;
  private closed = false;
  private starting = false;
  private lastOutput = 0;
  /** A warm source after start(): runs with no subscriber. */
  private pinned = false;
  /** performance.now() when the running ffmpeg was spawned. */
  private spawnedAt = 0;
  /** The running ffmpeg has analysed its input (see {@link CameraSourceOptions.detectPlaying}). */
  private playingProc: ChildProcess | undefined;
  /** Splits the analysis output into frames; its clock runs on across restarts. */
  private readonly grayReader: GrayFrameReader | undefined;
  private grayFrames = 0;

  constructor(name: string, spec: CameraSourceSpec, opts: CameraSourceOptions = {}) {
    super();
    this.name = name;
    this.spec = spec;
    this.opts = opts;
    this.log = opts.logger ?? silentLogger;
    this.gop = new GopCache(opts.gopCache);
    this.codec = opts.sourceCodec;
    const a = opts.analysis;
    if (a) this.grayReader = new GrayFrameReader(a.width, a.height, a.fps);
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** How long the current ffmpeg has been running (ms), or undefined when none runs. */
  runningForMs(): number | undefined {
    return this.running ? performance.now() - this.spawnedAt : undefined;
  }

  /** ffmpeg runs and has analysed its input: from now on what the camera sends is passed on. */
  get playing(): boolean {
    return this.running && this.playingProc !== undefined && this.playingProc === this.proc;
  }

  /** warm or on-demand. */
  get cameraMode(): CameraMode {
    return this.opts.cameraMode ?? 'on-demand';
  }

  /**
   * Starts a warm source's ffmpeg and keeps it running (restarted with backoff when it fails) until
   * {@link close}. Does nothing for an on-demand source, or when already started.
   */
  start(): void {
    if (this.closed || this.cameraMode !== 'warm' || this.pinned) return;
    this.pinned = true;
    if (this.stopTimer) {
      clearTimeout(this.stopTimer);
      this.stopTimer = undefined;
    }
    if (!this.proc && !this.starting && !this.restartTimer) void this.launch();
  }

  /** ffmpeg should be running: someone is subscribed, or the source is warm and started. */
  private get wanted(): boolean {
    return !this.closed && (this.pinned || this.subs.size > 0);
  }

  get subscriberCount(): number {
    return this.subs.size;
  }

  /** profile-level-id of the stream's SPS, once seen. */
  profileLevelId(): string | undefined {
    return this.gop.profileLevelId();
  }

  /** Ffmpeg mode (copy/transcode) of the running or last process. */
  get mode(): FfmpegMode | undefined {
    return this.currentMode;
  }

  snapshot(): GopSnapshot {
    return this.gop.snapshot();
  }

  /** Subscribes to access units; starts ffmpeg if needed. The snapshot and the live feed do not overlap. */
  subscribe(listener: AccessUnitListener): SourceSubscription {
    if (this.closed) throw new MediaError('session-closed', `camera "${this.name}" is closed`);
    if (this.stopTimer) {
      clearTimeout(this.stopTimer);
      this.stopTimer = undefined;
    }
    const snapshot = this.gop.snapshot();
    this.subs.add(listener);
    if (!this.proc && !this.starting && !this.restartTimer) void this.launch();
    let done = false;
    return {
      snapshot,
      unsubscribe: () => {
        if (done) return;
        done = true;
        this.subs.delete(listener);
        if (!this.wanted) this.scheduleStop();
      },
    };
  }

  /** Resolves at the next keyframe with SPS (or at once if one is cached). */
  waitForKeyframe(timeoutMs: number): Promise<void> {
    if (this.gop.size.frames > 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off('keyframe', on);
        reject(new MediaError('source-timeout', `camera "${this.name}": no keyframe within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (): void => {
        clearTimeout(t);
        resolve();
      };
      this.once('keyframe', on);
    });
  }

  stats(): CameraSourceStats {
    return {
      camera: this.name,
      running: this.running,
      cameraMode: this.cameraMode,
      pid: this.pid,
      mode: this.currentMode,
      subscribers: this.subs.size,
      restarts: this.restarts,
      framesIn: this.framesIn,
      keyframesIn: this.keyframesIn,
      gop: this.gop.size,
      profileLevelId: this.gop.profileLevelId(),
      analysisFrames: this.grayFrames,
    };
  }

  /** Stops ffmpeg now and refuses new subscribers. */
  async close(): Promise<void> {
    this.closed = true;
    this.subs.clear();
    if (this.stopTimer) clearTimeout(this.stopTimer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.stopTimer = undefined;
    this.restartTimer = undefined;
    await this.stopProcess();
  }

  private scheduleStop(): void {
    if (this.stopTimer) clearTimeout(this.stopTimer);
    const delay = this.opts.stopDelayMs ?? 5000;
    this.stopTimer = setTimeout(() => {
      this.stopTimer = undefined;
      if (this.wanted) return;
      if (this.restartTimer) {
        clearTimeout(this.restartTimer);
        this.restartTimer = undefined;
      }
      void this.stopProcess().then(() => this.emit('stopped', { camera: this.name }));
    }, delay);
    this.stopTimer.unref?.();
  }

  private async stopProcess(): Promise<void> {
    this.clearStall();
    const p = this.proc;
    this.proc = undefined;
    this.gop.clear();
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(t);
    this.log.info({ camera: this.name, pid: p.pid }, 'ffmpeg stopped');
  }

  private emitError(e: MediaError): void {
    this.log.warn(
      { camera: this.name, code: e.code, reason: e.reason, err: e.message },
      'camera source error',
    );
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  private async launch(): Promise<void> {
    if (!this.wanted) return;
    this.starting = true;
    try {
      if (this.spec.kind !== 'testsrc' && this.codec === undefined) {
        this.codec = await probeCodec(
          this.spec,
          this.opts.ffprobePath ? { ffprobePath: this.opts.ffprobePath } : {},
        );
      }
    } catch (e) {
      this.starting = false;
      this.emitError(
        e instanceof MediaError ? e : new MediaError('probe-failed', `camera "${this.name}": probe failed`),
      );
      this.scheduleRestart();
      return;
    }
    this.starting = false;
    if (!this.wanted) return;
    const detect = this.opts.detectPlaying === true && this.spec.kind === 'rtsp';
    const plan = buildFfmpegArgs(this.spec, {
      ...(this.codec ? { sourceCodec: this.codec } : {}),
      ...(detect ? { logLevel: 'info' as const } : {}),
      ...(this.opts.analysis ? { analysis: this.opts.analysis } : {}),
    });
    this.currentMode = plan.mode;
    const secrets = this.spec.kind === 'rtsp' ? this.spec.secrets() : [];
    let proc: ChildProcess;
    try {
      proc = spawn(this.opts.ffmpegPath ?? 'ffmpeg', [...plan.args], {
        stdio: [
          plan.stdin === undefined ? 'ignore' : 'pipe',
          'pipe',
          'pipe',
          ...(this.grayReader ? (['pipe'] as const) : []),
        ],
      });
      if (plan.stdin !== undefined) {
        // The RTSP URL with its credentials, on stdin rather than argv (review R12).
        proc.stdin?.on('error', () => {});
        proc.stdin?.end(plan.stdin);
      }
    } catch (e) {
      this.emitError(
        new MediaError('ffmpeg-spawn', `camera "${this.name}": cannot start ffmpeg`, { cause: e }),
      );
      this.scheduleRestart();
      return;
    }
    this.proc = proc;
    this.spawnedAt = performance.now();
    const parser = new AnnexBParser(this.opts.maxNalBytes ? { maxNalBytes: this.opts.maxNalBytes } : {});
    const assembler = new AccessUnitAssembler();
    let stderrTail = '';
    let spawnError: Error | undefined;
    proc.on('error', (e) => {
      spawnError = e;
    });
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (d: string) => {
      stderrTail = (stderrTail + d).slice(-4096);
      if (detect && this.playingProc !== proc && this.proc === proc && /^Input #0/m.test(stderrTail)) {
        this.playingProc = proc;
        this.emit('playing', { camera: this.name });
      }
    });
    this.lastOutput = performance.now();
    proc.stdout?.on('data', (chunk: Buffer) => {
      if (this.proc !== proc) return;
      this.lastOutput = performance.now();
      let nals: Buffer[];
      try {
        nals = parser.push(chunk);
      } catch (e) {
        this.emitError(e instanceof MediaError ? e : new MediaError('nal-too-large', 'bad stream'));
        proc.kill('SIGKILL');
        return;
      }
      for (const nal of nals) {
        const au = assembler.push(nal);
        if (au) this.onAccessUnit(au);
      }
    });
    const gray = this.grayReader;
    if (gray) {
      gray.reset();
      const fd3 = proc.stdio[3] as NodeJS.ReadableStream | null | undefined;
      fd3?.on('error', () => {});
      fd3?.on('data', (chunk: Buffer) => {
        if (this.proc !== proc) return;
        for (const f of gray.push(chunk)) {
          this.grayFrames++;
          this.emit('gray', f);
        }
      });
    }
    this.armStall(proc);
    const isRestart = this.attempt > 0;
    this.log.info(
      { camera: this.name, source: this.spec.display, pid: proc.pid, mode: plan.mode },
      'ffmpeg started',
    );
    this.emit('started', { camera: this.name, pid: proc.pid, mode: plan.mode });
    if (isRestart) this.emit('restarted', { camera: this.name, attempt: this.attempt, pid: proc.pid });
    proc.once('close', (code, signal) => {
      if (this.proc !== proc) return; // stopped on purpose
      this.proc = undefined;
      this.clearStall();
      this.gop.clear();
      const why = redactText(stderrTail.trim().split('\n').slice(-3).join(' | '), secrets).slice(0, 400);
      const how = spawnError
        ? `could not start (${(spawnError as NodeJS.ErrnoException).code ?? 'error'})`
        : `exited (${signal ?? `code ${code}`})`;
      this.emitError(
        new MediaError(
          spawnError ? 'ffmpeg-spawn' : 'ffmpeg-exited',
          `camera "${this.name}": ffmpeg ${how}${why ? `: ${why}` : ''}`,
        ),
      );
      this.scheduleRestart();
    });
  }

  private onAccessUnit(au: AccessUnit): void {
    this.framesIn++;
    const out = this.gop.push(au);
    if (out.keyframe) {
      this.keyframesIn++;
      this.attempt = 0; // healthy again
      this.emit('keyframe', out);
    }
    this.emit('au', out);
    for (const l of this.subs) {
      try {
        l(out);
      } catch (e) {
        this.log.error({ camera: this.name, err: String(e) }, 'subscriber threw');
      }
    }
  }

  private scheduleRestart(): void {
    if (!this.wanted || this.restartTimer) return;
    const init = this.opts.backoffInitialMs ?? 250;
    const max = this.opts.backoffMaxMs ?? 10_000;
    const delay = Math.min(max, init * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt++;
    this.restarts++;
    this.log.info(
      { camera: this.name, attempt: this.attempt, delayMs: Math.round(delay) },
      'restarting ffmpeg',
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.launch();
    }, delay);
  }

  private armStall(proc: ChildProcess): void {
    const limit = this.opts.stallTimeoutMs ?? 15_000;
    this.clearStall();
    this.stallTimer = setInterval(
      () => {
        if (this.proc !== proc) return this.clearStall();
        if (performance.now() - this.lastOutput > limit) {
          this.log.warn({ camera: this.name, pid: proc.pid }, 'ffmpeg stalled; killing it');
          proc.kill('SIGKILL');
        }
      },
      Math.min(limit, 1000),
    );
    this.stallTimer.unref?.();
  }

  private clearStall(): void {
    if (this.stallTimer) clearInterval(this.stallTimer);
    this.stallTimer = undefined;
  }
}
