/**
 * What an event leaves behind (issue 9): a snapshot of the trigger frame and a clip.
 *
 * - **Pre-roll.** Each camera with detection keeps its recent access units, from the latest
 *   keyframe at or before `preRollMs` ago (so a clip can start `preRollMs` before the trigger, on a
 *   keyframe), bounded in bytes.
 * - **Snapshot.** The trigger frame, not a later one: the units from the keyframe before the
 *   trigger up to the last unit that arrived by the trigger's time are decoded by a short-lived
 *   ffmpeg, which keeps that last picture as a JPEG. The analysis copy and the H.264 come out of the
 *   same ffmpeg, but the copy is late by ffmpeg's decode of it (measured: up to ~0.5 s), so the
 *   snapshot can be that much after the true trigger; still well before the start event, which
 *   comes minDuration later.
 * - **Clip.** Fragmented MP4, the H.264 copied (`-c:v copy`), never re-encoded: from the pre-roll's
 *   keyframe to `postRollMs` after the motion ends, at most `maxClipMs`.
 *
 * The ffmpegs get only H.264 bytes on stdin (no URL, no secret), are bounded by a timeout and an
 * output cap, and are killed by their own PID. A failed snapshot leaves the recording without one; a
 * failed clip is logged and dropped (nothing half-written is handed on).
 */
import type { AccessUnit } from '../media/annexb.js';
import { type MediaLogger, silentLogger } from '../media/errors.js';
import { annexB, ffmpegPipe, isJpeg } from '../media/still.js';

export interface RecorderOptions {
  /** Clip time before the trigger. Default 5000 ms. */
  readonly preRollMs?: number;
  /** Clip time after the motion ends. Default 5000 ms. */
  readonly postRollMs?: number;
  /** Longest clip. Default 120 000 ms. */
  readonly maxClipMs?: number;
  /**
   * How long before its start event a trigger frame can be (the detector's minDuration, plus its
   * gap): the pre-roll buffer keeps this much more. Default 2000 ms.
   */
  readonly leadMs?: number;
  /** Largest pre-roll buffer, and largest clip input. Default 64 MiB. */
  readonly maxBytes?: number;
  readonly ffmpegPath?: string;
  /** Kill a snapshot or mux after this long. Default 20 000 ms. */
  readonly timeoutMs?: number;
  readonly logger?: MediaLogger;
}

export interface EventRecording {
  readonly camera: string;
  readonly kind: 'motion' | 'sound';
  /** Wall-clock ms of the trigger frame. */
  readonly trigger: number;
  /** Wall-clock ms of the clip's first and last frames. */
  readonly start: number;
  readonly end: number;
  /** JPEG of the trigger frame, when its encode worked. */
  readonly snapshot: Uint8Array | undefined;
  /** Fragmented MP4. */
  readonly clip: Uint8Array;
  readonly frames: number;
  /** Cut at maxClipMs or maxBytes. */
  readonly truncated: boolean;
}

/** Estimated frame rate of a run of units (their arrival times), 1..120. */
export function frameRate(units: readonly AccessUnit[]): number {
  if (units.length < 2) return 25;
  const span = (units.at(-1) as AccessUnit).time - (units[0] as AccessUnit).time;
  const r = span > 0 ? ((units.length - 1) * 1000) / span : 25;
  return Math.min(120, Math.max(1, Math.round(r * 100) / 100));
}

const HEAD = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-threads', '1'];

/** The argv that keeps picture `index` (0-based, decode order) of an Annex-B input as a JPEG. */
export function snapshotArgs(index: number): string[] {
  return [
    ...HEAD,
    ...['-f', 'h264', '-i', 'pipe:0', '-an'],
    ...['-vf', `select=eq(n\\,${Math.max(0, Math.floor(index))})`, '-frames:v', '1'],
    ...['-q:v', '4', '-f', 'mjpeg', 'pipe:1'],
  ];
}

/** The argv that wraps an Annex-B input, copied, as fragmented MP4. */
export function clipArgs(fps: number): string[] {
  return [
    ...HEAD,
    ...['-fflags', '+genpts', '-f', 'h264', '-framerate', String(fps), '-i', 'pipe:0'],
    ...['-an', '-c:v', 'copy'],
    ...['-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', 'pipe:1'],
  ];
}

/** Units from the keyframe at or before `t` (perf ms) through the last that arrived by `t`. */
export function unitsUpTo(units: readonly AccessUnit[], t: number): AccessUnit[] {
  let last = -1;
  for (let i = 0; i < units.length; i++) if ((units[i] as AccessUnit).time <= t) last = i;
  if (last < 0) return [];
  let k = last;
  while (k >= 0 && !(units[k] as AccessUnit).keyframe) k--;
  return k < 0 ? [] : units.slice(k, last + 1);
}

/** Index of the latest keyframe that arrived at or before `t`, or -1. */
export function keyframeAtOrBefore(units: readonly AccessUnit[], t: number): number {
  let k = -1;
  for (let i = 0; i < units.length; i++) {
    const u = units[i] as AccessUnit;
    if (u.time > t) break;
    if (u.keyframe) k = i;
  }
  return k;
}

interface Capture {
  readonly kind: 'motion' | 'sound';
  readonly trigger: number;
  readonly triggerPerf: number;
  readonly units: AccessUnit[];
  bytes: number;
  stopAt: number | undefined;
  truncated: boolean;
  snapshot: Promise<Uint8Array | undefined>;
}

/** One camera's pre-roll and its recording in progress. */
export class EventRecorder {
  private readonly preRollMs: number;
  private readonly postRollMs: number;
  private readonly maxClipMs: number;
  private readonly leadMs: number;
  private readonly maxBytes: number;
  private readonly timeoutMs: number;
  private readonly log: MediaLogger;
  private ring: AccessUnit[] = [];
  private ringBytes = 0;
  private capture: Capture | undefined;
  /** Recordings handed on, and failures (stats, tests). */
  recorded = 0;
  failed = 0;

  constructor(
    readonly camera: string,
    private readonly onRecording: (r: EventRecording) => void,
    private readonly o: RecorderOptions = {},
  ) {
    this.preRollMs = o.preRollMs ?? 5000;
    this.postRollMs = o.postRollMs ?? 5000;
    this.maxClipMs = o.maxClipMs ?? 120_000;
    this.leadMs = o.leadMs ?? 2000;
    this.maxBytes = o.maxBytes ?? 64 * 1024 * 1024;
    this.timeoutMs = o.timeoutMs ?? 20_000;
    this.log = o.logger ?? silentLogger;
  }

  /** True while a clip is being recorded. */
  get recording(): boolean {
    return this.capture !== undefined;
  }

  /** Every access unit of the camera, in order. */
  push(au: AccessUnit): void {
    this.ring.push(au);
    this.ringBytes += au.bytes;
    this.trimRing(au.time);
    const c = this.capture;
    if (!c) return;
    const first = c.units[0];
    if (first && au.time - first.time > this.maxClipMs) c.truncated = true;
    else if (c.bytes + au.bytes > this.maxBytes) c.truncated = true;
    if (c.truncated || (c.stopAt !== undefined && au.time >= c.stopAt)) {
      this.finish();
      return;
    }
    c.units.push(au);
    c.bytes += au.bytes;
  }

  /** The detector's event start (`at`: wall ms of the trigger frame). */
  start(kind: 'motion' | 'sound', at: number): void {
    if (this.capture) return;
    const triggerPerf = performance.now() - (Date.now() - at);
    // From the latest keyframe at or before trigger − preRoll.
    const units = this.ring.slice(Math.max(0, keyframeAtOrBefore(this.ring, triggerPerf - this.preRollMs)));
    const bytes = units.reduce((a, u) => a + u.bytes, 0);
    this.capture = {
      kind,
      trigger: at,
      triggerPerf,
      units,
      bytes,
      stopAt: undefined,
      truncated: false,
      snapshot: this.snapshot(unitsUpTo(units, triggerPerf)),
    };
  }

  /** The detector's event end (`at`: wall ms of the last frame with motion). */
  end(at: number): void {
    const c = this.capture;
    if (!c) return;
    c.stopAt = performance.now() - (Date.now() - at) + this.postRollMs;
  }

  /** Drops the recording in progress (camera closing). */
  close(): void {
    this.capture = undefined;
    this.ring = [];
    this.ringBytes = 0;
  }

  private trimRing(now: number): void {
    // Keep from the latest keyframe at or before the horizon.
    const k = keyframeAtOrBefore(this.ring, now - this.preRollMs - this.leadMs);
    if (k > 0) this.dropRing(k);
    // Byte bound: drop whole GOPs from the front.
    while (this.ringBytes > this.maxBytes && this.ring.length > 1) {
      const next = this.ring.findIndex((u, i) => i > 0 && u.keyframe);
      this.dropRing(next > 0 ? next : this.ring.length - 1);
    }
  }

  private dropRing(n: number): void {
    for (const u of this.ring.splice(0, n)) this.ringBytes -= u.bytes;
  }

  private async snapshot(units: AccessUnit[]): Promise<Uint8Array | undefined> {
    if (units.length === 0) return undefined;
    try {
      const jpeg = await ffmpegPipe(snapshotArgs(units.length - 1), Buffer.concat(units.map(annexB)), {
        ...(this.o.ffmpegPath ? { ffmpegPath: this.o.ffmpegPath } : {}),
        timeoutMs: this.timeoutMs,
        cap: 4 * 1024 * 1024,
        label: 'snapshot',
      });
      return isJpeg(jpeg) ? new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.length) : undefined;
    } catch (e) {
      this.log.warn({ camera: this.camera, code: 'snapshot-failed' }, (e as Error).message);
      return undefined;
    }
  }

  private finish(): void {
    const c = this.capture;
    this.capture = undefined;
    if (!c) return;
    const units = c.units;
    const first = units.findIndex((u) => u.keyframe);
    const clipUnits = first < 0 ? [] : units.slice(first);
    if (clipUnits.length === 0) {
      this.failed++;
      this.log.warn({ camera: this.camera, code: 'clip-failed' }, 'clip: no keyframe to start from');
      return;
    }
    const wall = (perf: number) => Date.now() - (performance.now() - perf);
    void (async () => {
      try {
        const clip = await ffmpegPipe(clipArgs(frameRate(clipUnits)), Buffer.concat(clipUnits.map(annexB)), {
          ...(this.o.ffmpegPath ? { ffmpegPath: this.o.ffmpegPath } : {}),
          timeoutMs: this.timeoutMs,
          cap: 2 * this.maxBytes,
          label: 'clip',
        });
        const rec: EventRecording = {
          camera: this.camera,
          kind: c.kind,
          trigger: c.trigger,
          start: wall((clipUnits[0] as AccessUnit).time),
          end: wall((clipUnits.at(-1) as AccessUnit).time),
          snapshot: await c.snapshot,
          clip: new Uint8Array(clip.buffer, clip.byteOffset, clip.length),
          frames: clipUnits.length,
          truncated: c.truncated,
        };
        this.recorded++;
        this.onRecording(rec);
      } catch (e) {
        this.failed++;
        this.log.warn({ camera: this.camera, code: 'clip-failed' }, (e as Error).message);
      }
    })();
  }
}
