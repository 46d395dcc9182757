/**
 * The `motion` key of a camera in the camera map (issue 9):
 *
 *     cameras:
 *       door:
 *         source: rtsp://cam/stream
 *         motion:
 *           sensitivity: 0.6        # 0..1, default 0.5
 *           minDuration: 1          # seconds of motion before an event, default 1
 *           cooldown: 10            # seconds after an event before the next, default 10
 *           fps: 4                  # analysed frames per second, 1..10, default 4
 *           preRoll: 5              # clip seconds before the trigger (0..30), default 5
 *           postRoll: 5             # clip seconds after the motion ends (0..60), default 5
 *           maxLength: 120          # longest clip in seconds (5..600), default 120
 *           zones:                  # polygons in 0..1 frame coordinates; none = whole frame
 *             - [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]
 *
 * `motion: true` takes the defaults; `motion: false` or no key: no detection. Every bad value is a
 * MediaError('camera-motion') naming the camera and the field.
 */
import { redact } from '../media/cameras.js';
import { MediaError } from '../media/errors.js';
import { MOTION_DEFAULTS, type MotionConfig, type Zone, type ZonePoint } from './motion.js';

export const MAX_ZONES = 16;
export const MAX_ZONE_POINTS = 64;
const MOTION_KEYS = [
  'sensitivity',
  'minDuration',
  'cooldown',
  'fps',
  'zones',
  'preRoll',
  'postRoll',
  'maxLength',
] as const;

export function parseMotion(camera: string, raw: unknown): MotionConfig | undefined {
  const fail = (msg: string) => new MediaError('camera-motion', `camera "${camera}": motion: ${msg}`);
  if (raw === false || raw === null || raw === undefined) return undefined;
  if (raw === true) return MOTION_DEFAULTS;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw fail('must be true, false or a mapping');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!(MOTION_KEYS as readonly string[]).includes(k))
      throw fail(
        `unknown key ${JSON.stringify(redact(k.slice(0, 32)))} (allowed: ${MOTION_KEYS.join(', ')})`,
      );
  const num = (k: string, min: number, max: number, def: number): number => {
    const v = o[k];
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
      throw fail(`"${k}" must be a number from ${min} to ${max}`);
    return v;
  };
  const sensitivity = num('sensitivity', 0, 1, MOTION_DEFAULTS.sensitivity);
  const minDurationMs = Math.round(num('minDuration', 0, 600, MOTION_DEFAULTS.minDurationMs / 1000) * 1000);
  const cooldownMs = Math.round(num('cooldown', 0, 3600, MOTION_DEFAULTS.cooldownMs / 1000) * 1000);
  const fps = num('fps', 1, 10, MOTION_DEFAULTS.fps);
  if (!Number.isInteger(fps)) throw fail('"fps" must be a whole number');
  const s = (k: string, min: number, max: number, defMs: number) =>
    Math.round(num(k, min, max, defMs / 1000) * 1000);
  const preRollMs = s('preRoll', 0, 30, MOTION_DEFAULTS.preRollMs);
  const postRollMs = s('postRoll', 0, 60, MOTION_DEFAULTS.postRollMs);
  const maxClipMs = s('maxLength', 5, 600, MOTION_DEFAULTS.maxClipMs);
  const zones = o.zones === undefined ? [] : parseZones(o.zones, fail);
  return Object.freeze({
    sensitivity,
    minDurationMs,
    cooldownMs,
    fps,
    zones,
    preRollMs,
    postRollMs,
    maxClipMs,
  });
}

function parseZones(raw: unknown, fail: (m: string) => Error): Zone[] {
  if (!Array.isArray(raw)) throw fail('"zones" must be a list of polygons');
  if (raw.length > MAX_ZONES) throw fail(`at most ${MAX_ZONES} zones`);
  return raw.map((z, i) => {
    if (!Array.isArray(z) || z.length < 3 || z.length > MAX_ZONE_POINTS)
      throw fail(`zone ${i + 1} must be a list of 3 to ${MAX_ZONE_POINTS} [x, y] points`);
    return z.map((p): ZonePoint => {
      if (
        !Array.isArray(p) ||
        p.length !== 2 ||
        !p.every((c) => typeof c === 'number' && Number.isFinite(c) && c >= 0 && c <= 1)
      )
        throw fail(`zone ${i + 1}: each point is [x, y] with both from 0 to 1`);
      return [p[0] as number, p[1] as number];
    });
  });
}

/**
 * How long, and how much, a camera's recordings are kept (the camera map's `retention` key):
 *
 *     cameras:
 *       door:
 *         source: rtsp://cam/stream
 *         motion: true
 *         retention:
 *           days: 14              # keep at most this many days (0.01..3650), default 30
 *           bytes: 500 MiB        # and at most this much (a number of bytes, or with KB/MB/GB/TB
 *                                 # or KiB/MiB/GiB/TiB), default 2 GiB
 *
 * Both limits hold at once: the oldest recordings go first, in the outbox and on the server.
 */
export interface RetentionConfig {
  readonly days: number;
  readonly bytes: number;
}

export const RETENTION_DEFAULTS: RetentionConfig = Object.freeze({ days: 30, bytes: 2 * 1024 ** 3 });
/** Largest `bytes` accepted (1 PiB): beyond it, a typo. */
export const MAX_RETENTION_BYTES = 1024 ** 5;
const RETENTION_KEYS = ['days', 'bytes'] as const;
const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** Parse a camera's `retention` (undefined: the defaults). Throws MediaError('camera-retention'). */
export function parseRetention(camera: string, raw: unknown): RetentionConfig | undefined {
  const fail = (msg: string) => new MediaError('camera-retention', `camera "${camera}": retention: ${msg}`);
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw fail('must be a mapping with "days" and/or "bytes"');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!(RETENTION_KEYS as readonly string[]).includes(k))
      throw fail(
        `unknown key ${JSON.stringify(redact(k.slice(0, 32)))} (allowed: ${RETENTION_KEYS.join(', ')})`,
      );
  let days = RETENTION_DEFAULTS.days;
  if (o.days !== undefined) {
    const d = o.days;
    if (typeof d !== 'number' || !Number.isFinite(d) || d < 0.01 || d > 3650)
      throw fail('"days" must be a number from 0.01 to 3650');
    days = d;
  }
  let bytes = RETENTION_DEFAULTS.bytes;
  if (o.bytes !== undefined) bytes = parseBytes(o.bytes, fail);
  return Object.freeze({ days, bytes });
}

function parseBytes(v: unknown, fail: (m: string) => Error): number {
  const msg = '"bytes" must be a size from 1 MiB to 1 PiB: a number of bytes, or e.g. "500 MiB", "2 GB"';
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && v.length <= 32) {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$/i.exec(v);
    if (!m) throw fail(msg);
    n = Number(m[1]) * (UNITS[(m[2] ?? 'b').toLowerCase()] as number);
  } else throw fail(msg);
  if (!Number.isFinite(n) || n < 1024 ** 2 || n > MAX_RETENTION_BYTES) throw fail(msg);
  return Math.floor(n);
}
