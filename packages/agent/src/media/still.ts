/**
 * The still a viewer sees while its live stream connects: a JPEG of the camera's latest cached
 * keyframe (SPS + PPS + IDR, as Annex-B, piped into a short-lived ffmpeg). One JPEG per camera per
 * keyframe, however many viewers ask (they share the encode). Sized to fit the sealed still
 * (`MAX_STILL_JPEG_BYTES` in @hearth/protocol): a ladder of widths and qualities, first fit wins.
 *
 * The ffmpeg gets no secrets and no source URL (only the H.264 bytes on stdin), is bounded by a
 * timeout and an output cap, and is killed by its own PID. Every failure ends in `undefined`:
 * the still is a nicety, never a reason for a session to fail.
 */
import { spawn } from 'node:child_process';
import { MAX_STILL_JPEG_BYTES } from '@hearth/protocol';
import type { AccessUnit, GopSnapshot } from './annexb.js';
import { type MediaLogger, silentLogger } from './errors.js';

/** One rung of the size ladder: output width (at most the source's) and JPEG quality (2 best … 31). */
export interface StillRung {
  readonly width: number;
  readonly q: number;
}

/** Default ladder: try the sharpest first, shrink until the JPEG fits. */
export const STILL_LADDER: readonly StillRung[] = [
  { width: 640, q: 5 },
  { width: 640, q: 9 },
  { width: 480, q: 12 },
  { width: 320, q: 15 },
  { width: 240, q: 24 },
];

export interface StillMakerOptions {
  readonly ffmpegPath?: string;
  /** Kill an encode after this long (ms). Default 4000. */
  readonly timeoutMs?: number;
  /** Largest JPEG accepted. Default MAX_STILL_JPEG_BYTES (the sealed still's limit). */
  readonly maxBytes?: number;
  readonly ladder?: readonly StillRung[];
  readonly logger?: MediaLogger;
}

/** What a still needs from a camera source. */
export interface StillSource {
  snapshot(): GopSnapshot;
  waitForKeyframe(timeoutMs: number): Promise<void>;
}

const START_CODE = Buffer.from([0, 0, 0, 1]);

/** A keyframe access unit as an Annex-B byte stream. */
export function annexB(au: AccessUnit): Buffer {
  const parts: Buffer[] = [];
  for (const n of au.nals) parts.push(START_CODE, n);
  return Buffer.concat(parts);
}

/** The ffmpeg arguments of one encode (no secrets, no URL: the H.264 comes on stdin). */
export function stillArgs(r: StillRung): string[] {
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'error',
    '-threads',
    '1',
    '-f',
    'h264',
    '-i',
    'pipe:0',
    '-an',
    '-frames:v',
    '1',
    '-vf',
    `scale=w='2*trunc(min(${Math.floor(r.width)},iw)/2)':h=-2`,
    '-q:v',
    String(Math.floor(r.q)),
    '-f',
    'mjpeg',
    'pipe:1',
  ];
}

/**
 * Runs ffmpeg with `args` on `input` (its stdin) and resolves with its stdout. Rejects (its message
 * prefixed with `label`) on a timeout, a non-zero exit or an output over `cap`; kills it by its PID.
 */
export function ffmpegPipe(
  args: readonly string[],
  input: Buffer,
  o: { ffmpegPath?: string; timeoutMs: number; cap: number; label: string },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn(o.ffmpegPath ?? 'ffmpeg', [...args], { stdio: ['pipe', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    let n = 0;
    let done = false;
    const finish = (e: Error | undefined, v?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (e && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      if (e) reject(e);
      else resolve(v as Buffer);
    };
    const timer = setTimeout(() => finish(new Error(`${o.label}: ffmpeg timed out`)), o.timeoutMs);
    timer.unref();
    p.on('error', (e) => finish(e));
    p.stdin.on('error', () => undefined); // EPIPE when ffmpeg exits early: the exit code says why
    p.stdout.on('data', (c: Buffer) => {
      n += c.length;
      if (n > o.cap) return finish(new Error(`${o.label}: ffmpeg output over the cap`));
      out.push(c);
    });
    p.on('close', (code) => {
      if (code !== 0) return finish(new Error(`${o.label}: ffmpeg exited with ${code}`));
      finish(undefined, Buffer.concat(out));
    });
    p.stdin.end(input);
  });
}

/** Run one ffmpeg encode of `h264` with rung `r`. Rejects on a timeout, a non-zero exit or an output over `cap`. */
export function encodeJpeg(
  h264: Buffer,
  r: StillRung,
  o: { ffmpegPath?: string; timeoutMs?: number; cap: number },
): Promise<Buffer> {
  return ffmpegPipe(stillArgs(r), h264, {
    ...(o.ffmpegPath ? { ffmpegPath: o.ffmpegPath } : {}),
    timeoutMs: o.timeoutMs ?? 4000,
    cap: o.cap,
    label: 'still',
  });
}

/** True for a complete JPEG (SOI at the start, EOI at the end). */
export function isJpeg(b: Uint8Array): boolean {
  const n = b.length;
  return n >= 4 && b[0] === 0xff && b[1] === 0xd8 && b[n - 2] === 0xff && b[n - 1] === 0xd9;
}

/** JPEGs of the cameras' latest keyframes, one encode per keyframe. */
export class StillMaker {
  private readonly cache = new Map<string, { key: AccessUnit; jpeg: Promise<Uint8Array | undefined> }>();
  private readonly log: MediaLogger;
  /** ffmpeg encodes run so far (tests, stats). */
  encodes = 0;

  constructor(private readonly o: StillMakerOptions = {}) {
    this.log = o.logger ?? silentLogger;
  }

  /**
   * A JPEG of `camera`'s latest cached keyframe, or undefined (no keyframe within `waitMs`, ffmpeg
   * failed, or no rung fits). Never rejects.
   */
  async still(camera: string, source: StillSource, waitMs = 0): Promise<Uint8Array | undefined> {
    try {
      let kf = source.snapshot().units[0];
      if (!kf && waitMs > 0) {
        await source.waitForKeyframe(waitMs).catch(() => undefined);
        kf = source.snapshot().units[0];
      }
      if (!kf?.keyframe) return undefined;
      const hit = this.cache.get(camera);
      if (hit && hit.key === kf) return await hit.jpeg;
      const jpeg = this.make(camera, kf);
      this.cache.set(camera, { key: kf, jpeg });
      return await jpeg;
    } catch {
      return undefined;
    }
  }

  private async make(camera: string, kf: AccessUnit): Promise<Uint8Array | undefined> {
    const max = Math.min(this.o.maxBytes ?? MAX_STILL_JPEG_BYTES, MAX_STILL_JPEG_BYTES);
    const h264 = annexB(kf);
    for (const r of this.o.ladder ?? STILL_LADDER) {
      this.encodes++;
      let jpeg: Buffer;
      try {
        jpeg = await encodeJpeg(h264, r, {
          ...(this.o.ffmpegPath ? { ffmpegPath: this.o.ffmpegPath } : {}),
          ...(this.o.timeoutMs !== undefined ? { timeoutMs: this.o.timeoutMs } : {}),
          cap: 4 * max,
        });
      } catch (e) {
        this.log.warn({ camera, code: 'still-failed' }, (e as Error).message);
        return undefined;
      }
      if (!isJpeg(jpeg)) {
        this.log.warn({ camera, code: 'still-failed' }, 'still: ffmpeg output is not a JPEG');
        return undefined;
      }
      if (jpeg.length <= max) return new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.length);
    }
    this.log.info({ camera }, 'still: no rung of the ladder fits the size limit');
    return undefined;
  }
}
