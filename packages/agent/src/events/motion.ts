/**
 * Motion detection on a small grayscale copy of a camera's stream (issue 9). Pure: frames in,
 * events out, no I/O and no clock (each frame carries its content time, so a test replays a clip
 * and gets the same events every time).
 *
 * Per frame:
 * 1. Against a running background (an exponential moving average of earlier frames, so slow light
 *    changes are absorbed), a pixel has changed when it differs by more than `pixelThreshold`.
 * 2. The frame shows motion when the changed share of the pixels inside the zones (the whole frame
 *    without zones) reaches `areaThreshold`. When nearly the whole frame changed at once
 *    (`GLOBAL_CHANGE`: a light switched, the camera's IR mode flipped) it is not motion: the
 *    background restarts from that frame.
 * 3. An event starts when motion lasted `minDurationMs` (gaps up to `gapMs` allowed); its time is
 *    that of the first motion frame (the trigger frame users ask for, not a later one). It ends
 *    after `endQuietMs` without motion. After the end, nothing starts for `cooldownMs`.
 *
 * Both thresholds follow `sensitivity` (0..1; higher finds smaller and fainter movement).
 */

/** A point in 0..1 frame coordinates (x right, y down). */
export type ZonePoint = readonly [number, number];
/** A polygon of at least 3 points, in 0..1 coordinates. */
export type Zone = readonly ZonePoint[];

export interface MotionConfig {
  /** 0..1, default 0.5. */
  readonly sensitivity: number;
  /** Polygons to watch; empty = the whole frame. */
  readonly zones: readonly Zone[];
  /** Motion must last this long to start an event. Default 1000 ms. */
  readonly minDurationMs: number;
  /** No new event this long after one ended. Default 10 000 ms. */
  readonly cooldownMs: number;
  /** Analysed frames per second. Default 4. */
  readonly fps: number;
  /** The event's clip: this long before the trigger (from a keyframe). Default 5000 ms. */
  readonly preRollMs: number;
  /** ...until this long after the motion ends. Default 5000 ms. */
  readonly postRollMs: number;
  /** ...at most this long. Default 120 000 ms. */
  readonly maxClipMs: number;
}

export const MOTION_DEFAULTS: MotionConfig = {
  sensitivity: 0.5,
  zones: [],
  minDurationMs: 1000,
  cooldownMs: 10_000,
  fps: 4,
  preRollMs: 5000,
  postRollMs: 5000,
  maxClipMs: 120_000,
};

/** Size of the analysed grayscale copy (any aspect is scaled to it; zones are relative). */
export const ANALYSIS_WIDTH = 96;
export const ANALYSIS_HEIGHT = 54;

/** A share of changed pixels above this is a global change (lighting), not motion. */
export const GLOBAL_CHANGE = 0.85;

export interface GrayFrame {
  readonly width: number;
  readonly height: number;
  /** width × height luma bytes, row by row. */
  readonly data: Uint8Array;
  /** Content time of the frame, ms. */
  readonly t: number;
}

export type MotionEvent =
  | { readonly type: 'start'; readonly t: number; readonly score: number }
  | { readonly type: 'end'; readonly t: number; readonly startedAt: number; readonly peak: number };

export interface MotionTuning {
  readonly pixelThreshold: number;
  readonly areaThreshold: number;
  /** Background adaptation per frame (0..1). */
  readonly alpha: number;
  /** Longest gap inside one run of motion. */
  readonly gapMs: number;
  /** Quiet time that ends an event. */
  readonly endQuietMs: number;
}

/** Thresholds for a sensitivity: 0 → 48 grey levels and 2.1 % of the area; 1 → 8 levels and 0.1 %. */
export function tuningFor(sensitivity: number): MotionTuning {
  const s = Math.min(1, Math.max(0, sensitivity));
  return {
    pixelThreshold: Math.round(8 + (1 - s) * 40),
    areaThreshold: 0.001 + (1 - s) * 0.02,
    alpha: 0.08,
    gapMs: 1000,
    endQuietMs: 2000,
  };
}

/** Even-odd rule: is (x, y) inside the polygon? */
export function pointInZone(x: number, y: number, zone: Zone): boolean {
  let inside = false;
  for (let i = 0, j = zone.length - 1; i < zone.length; j = i++) {
    const [xi, yi] = zone[i] as ZonePoint;
    const [xj, yj] = zone[j] as ZonePoint;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** 1 for each pixel whose centre lies in a zone (all 1 without zones). */
export function zoneMask(width: number, height: number, zones: readonly Zone[]): Uint8Array {
  const m = new Uint8Array(width * height);
  if (zones.length === 0) return m.fill(1);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const px = (x + 0.5) / width;
      const py = (y + 0.5) / height;
      if (zones.some((z) => pointInZone(px, py, z))) m[y * width + x] = 1;
    }
  return m;
}

export class MotionDetector {
  readonly tuning: MotionTuning;
  private readonly mask: Uint8Array;
  private readonly maskCount: number;
  private bg: Float32Array | undefined;
  private runStart: number | undefined;
  private runScore = 0;
  private lastMotion = Number.NEGATIVE_INFINITY;
  private activeSince: number | undefined;
  private peak = 0;
  private cooldownUntil = Number.NEGATIVE_INFINITY;
  /** Changed share of the zone pixels in the last frame (for stats and tuning). */
  lastScore = 0;

  constructor(
    readonly config: MotionConfig,
    readonly width = ANALYSIS_WIDTH,
    readonly height = ANALYSIS_HEIGHT,
    tuning?: Partial<MotionTuning>,
  ) {
    this.tuning = { ...tuningFor(config.sensitivity), ...tuning };
    this.mask = zoneMask(width, height, config.zones);
    this.maskCount = this.mask.reduce((a, b) => a + b, 0);
  }

  /** True while an event is running. */
  get active(): boolean {
    return this.activeSince !== undefined;
  }

  /** Feeds one frame; returns the events it causes (none, a start, an end, or an end then nothing). */
  push(f: GrayFrame): MotionEvent[] {
    if (f.width !== this.width || f.height !== this.height || f.data.length !== this.width * this.height)
      throw new RangeError(`motion: frame is not ${this.width}x${this.height}`);
    const score = this.score(f.data);
    this.lastScore = score;
    const moving = this.maskCount > 0 && score >= this.tuning.areaThreshold && score < GLOBAL_CHANGE;
    const out: MotionEvent[] = [];
    if (moving && f.t < this.cooldownUntil) {
      // Cooling down: motion now does not count towards the next event.
      this.runStart = undefined;
    } else if (moving) {
      if (this.runStart === undefined || f.t - this.lastMotion > this.tuning.gapMs) {
        this.runStart = f.t;
        this.runScore = 0;
      }
      this.runScore = Math.max(this.runScore, score);
      this.lastMotion = f.t;
      if (this.activeSince !== undefined) this.peak = Math.max(this.peak, score);
      else if (f.t - this.runStart >= this.config.minDurationMs) {
        this.activeSince = this.runStart;
        this.peak = this.runScore;
        out.push({ type: 'start', t: this.runStart, score: this.runScore });
      }
    } else if (this.runStart !== undefined && f.t - this.lastMotion > this.tuning.gapMs) {
      this.runStart = undefined;
    }
    if (this.activeSince !== undefined && f.t - this.lastMotion >= this.tuning.endQuietMs) {
      out.push({ type: 'end', t: this.lastMotion, startedAt: this.activeSince, peak: this.peak });
      this.activeSince = undefined;
      this.runStart = undefined;
      this.cooldownUntil = this.lastMotion + this.config.cooldownMs;
    }
    return out;
  }

  /** Changed share of the zone pixels, then the background update. */
  private score(d: Uint8Array): number {
    const bg = this.bg;
    if (!bg) {
      this.bg = Float32Array.from(d);
      return 0;
    }
    const thr = this.tuning.pixelThreshold;
    let changed = 0;
    let changedAll = 0;
    for (let i = 0; i < d.length; i++) {
      const v = d[i] as number;
      const b = bg[i] as number;
      if (Math.abs(v - b) > thr) {
        changedAll++;
        if (this.mask[i]) changed++;
      }
    }
    if (changedAll / d.length >= GLOBAL_CHANGE) {
      // Lighting, not motion: start over from this frame.
      this.bg = Float32Array.from(d);
      return 1;
    }
    const a = this.tuning.alpha;
    for (let i = 0; i < d.length; i++) bg[i] = (bg[i] as number) + a * ((d[i] as number) - (bg[i] as number));
    return this.maskCount === 0 ? 0 : changed / this.maskCount;
  }
}

/**
 * Splits a raw gray byte stream (ffmpeg `-f rawvideo -pix_fmt gray`) into frames of width × height,
 * stamped by frame count (`index / fps`): content time, not arrival time.
 */
export class GrayFrameReader {
  private readonly size: number;
  private buf: Uint8Array;
  private fill = 0;
  private index = 0;

  constructor(
    readonly width: number,
    readonly height: number,
    readonly fps: number,
  ) {
    this.size = width * height;
    this.buf = new Uint8Array(this.size);
  }

  /** Frames completed by `chunk`. */
  push(chunk: Uint8Array): GrayFrame[] {
    const out: GrayFrame[] = [];
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(this.size - this.fill, chunk.length - off);
      this.buf.set(chunk.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === this.size) {
        out.push({
          width: this.width,
          height: this.height,
          data: this.buf,
          t: Math.round((this.index * 1000) / this.fps),
        });
        this.index++;
        this.buf = new Uint8Array(this.size);
        this.fill = 0;
      }
    }
    return out;
  }

  /** Drops a partial frame (a new ffmpeg process); time goes on from the last frame. */
  reset(): void {
    this.fill = 0;
  }
}
