/**
 * H.264 Annex-B parsing: start-code splitting into NAL units (incremental, bounded), grouping into
 * access units (ITU-T H.264 7.4.1.2.3), and the GOP cache that gives a new viewer a decodable start.
 */
import { MediaError } from './errors.js';

export const NAL = {
  SLICE: 1,
  IDR: 5,
  SEI: 6,
  SPS: 7,
  PPS: 8,
  AUD: 9,
  END_SEQ: 10,
  END_STREAM: 11,
  FILLER: 12,
} as const;

export const nalType = (nal: Uint8Array): number => (nal[0] ?? 0) & 0x1f;
export const isVcl = (t: number): boolean => t >= 1 && t <= 5;

export interface AnnexBParserOptions {
  /** Largest NAL unit accepted (bytes). Default 4 MiB. Larger input throws MediaError('nal-too-large'). */
  readonly maxNalBytes?: number;
}

const START = Buffer.from([0, 0, 1]);

/**
 * Incremental Annex-B splitter. `push(chunk)` returns the NAL units (without start codes and trailing
 * zero bytes) completed by this chunk; a NAL is complete once the next start code is seen, or on
 * `flush()`. Bytes before the first start code are discarded. Never throws anything but MediaError.
 */
export class AnnexBParser {
  private buf: Buffer = Buffer.alloc(0);
  /** Start of the current NAL payload in buf, or -1 if no start code seen yet. */
  private nalStart = -1;
  /** Where to resume searching for the next start code. */
  private scan = 0;
  private readonly maxNal: number;

  constructor(opts: AnnexBParserOptions = {}) {
    this.maxNal = opts.maxNalBytes ?? 4 * 1024 * 1024;
  }

  push(chunk: Uint8Array): Buffer[] {
    const out: Buffer[] = [];
    const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    const buf = this.buf;
    let i = this.scan;
    for (;;) {
      const sc = buf.indexOf(START, i);
      if (sc < 0) break;
      if (this.nalStart >= 0) this.emit(buf.subarray(this.nalStart, sc), out);
      this.nalStart = sc + 3;
      i = sc + 3;
    }
    if (this.nalStart < 0) {
      // No start code yet: keep only a possible partial start code.
      this.buf = buf.subarray(Math.max(0, buf.length - 2));
      this.scan = 0;
    } else {
      this.buf = buf.subarray(this.nalStart);
      this.nalStart = 0;
      this.scan = Math.max(0, this.buf.length - 2);
      if (this.buf.length > this.maxNal) {
        this.reset();
        throw new MediaError('nal-too-large', `NAL unit larger than ${this.maxNal} bytes`);
      }
    }
    return out;
  }

  /** Ends the stream: returns the last pending NAL, if any. */
  flush(): Buffer[] {
    const out: Buffer[] = [];
    if (this.nalStart >= 0) this.emit(this.buf.subarray(this.nalStart), out);
    this.reset();
    return out;
  }

  reset(): void {
    this.buf = Buffer.alloc(0);
    this.nalStart = -1;
    this.scan = 0;
  }

  private emit(nal: Buffer, out: Buffer[]): void {
    let end = nal.length;
    while (end > 0 && nal[end - 1] === 0) end--; // trailing_zero_8bits / 4-byte start code prefix
    if (end === 0) return;
    if (end > this.maxNal) {
      this.reset();
      throw new MediaError('nal-too-large', `NAL unit larger than ${this.maxNal} bytes`);
    }
    // Copy so a small NAL does not pin a large chunk.
    out.push(Buffer.from(nal.subarray(0, end)));
  }
}

export interface AccessUnit {
  readonly nals: readonly Buffer[];
  /** Contains an IDR slice. */
  readonly keyframe: boolean;
  /** Arrival time (performance.now() ms). */
  readonly time: number;
  readonly bytes: number;
}

/**
 * Groups NAL units into access units. An AU ends when an AUD (or NAL types 14–18) arrives after a
 * slice, or when a slice with first_mb_in_slice == 0 (a new picture) arrives; or on `flush()`.
 *
 * SPS, PPS and SEI after a slice are held until the next slice shows whether a new picture starts:
 * if it does, they open the new AU; if it continues the current picture (first_mb_in_slice > 0),
 * repeated SPS/PPS are dropped and SEI stays with the picture. ffmpeg's `dump_extra` inserts the
 * parameter sets before every keyframe *packet*, and a camera that sends one packet per slice gets
 * them between the slices of one IDR picture; cutting the AU there split the IDR in two and left
 * the browser without a decodable keyframe until the camera's next one (seen as a 10 s first frame
 * with a 10 s GOP).
 */
export class AccessUnitAssembler {
  private nals: Buffer[] = [];
  private hasVcl = false;
  private start = 0;
  /** SPS/PPS/SEI seen after a slice, waiting for the next slice to place them. */
  private held: Buffer[] = [];

  constructor(private readonly now: () => number = () => performance.now()) {}

  push(nal: Buffer): AccessUnit | undefined {
    const t = nalType(nal);
    if (t === NAL.END_SEQ || t === NAL.END_STREAM || t === NAL.FILLER) return undefined;
    if (!this.hasVcl) {
      if (this.nals.length === 0) this.start = this.now();
      this.nals.push(nal);
      if (isVcl(t)) this.hasVcl = true;
      return undefined;
    }
    if (t === NAL.SPS || t === NAL.PPS || t === NAL.SEI) {
      if (this.held.length < 64) this.held.push(nal);
      return undefined;
    }
    let done: AccessUnit | undefined;
    // first_mb_in_slice is ue(v); it is 0 exactly when the first bit after the NAL header is 1.
    const newPicture = t === NAL.AUD || (t >= 14 && t <= 18) || (isVcl(t) && ((nal[1] ?? 0) & 0x80) !== 0);
    if (newPicture) {
      done = this.take();
      this.start = this.now();
      this.nals = [...this.held, nal];
      this.hasVcl = isVcl(t);
    } else {
      // Another slice of the same picture (or a NAL type that never starts one): keep SEI, drop
      // repeated parameter sets.
      for (const h of this.held) if (nalType(h) === NAL.SEI) this.nals.push(h);
      this.nals.push(nal);
    }
    this.held = [];
    return done;
  }

  flush(): AccessUnit | undefined {
    this.held = [];
    if (this.hasVcl) return this.take();
    this.nals = [];
    return undefined;
  }

  private take(): AccessUnit {
    const nals = this.nals;
    this.nals = [];
    this.hasVcl = false;
    let bytes = 0;
    let keyframe = false;
    for (const n of nals) {
      bytes += n.length;
      if (nalType(n) === NAL.IDR) keyframe = true;
    }
    return { nals, keyframe, time: this.start, bytes };
  }
}

/** `profile-level-id` (6 hex digits) from an SPS NAL unit, or undefined if too short. */
export function profileLevelIdFromSps(sps: Uint8Array): string | undefined {
  if (sps.length < 4 || nalType(sps) !== NAL.SPS) return undefined;
  return [sps[1], sps[2], sps[3]].map((b) => (b ?? 0).toString(16).padStart(2, '0')).join('');
}

export interface GopCacheOptions {
  /** Max bytes held. Default 8 MiB. */
  readonly maxBytes?: number;
  /** Max access units held. Default 900 (60 s at 15 fps). */
  readonly maxFrames?: number;
}

export interface GopSnapshot {
  /** Access units from the last IDR (with SPS/PPS in front), in order. Empty if no IDR seen yet. */
  readonly units: readonly AccessUnit[];
  /**
   * True when the GOP outgrew the cache: only its keyframe is held, and a viewer must skip live
   * frames until the next keyframe (it shows the keyframe meanwhile).
   */
  readonly truncated: boolean;
}

/**
 * Keeps the latest GOP: everything from the last IDR. Remembers the latest SPS/PPS and puts them in
 * front of a keyframe that lacks them, so the cached start is always decodable. Bounded in bytes and
 * frames: past either bound only the keyframe is kept (`truncated`).
 */
export class GopCache {
  private units: AccessUnit[] = [];
  private bytes = 0;
  private truncated = false;
  private sps: Buffer | undefined;
  private pps: Buffer | undefined;
  private readonly maxBytes: number;
  private readonly maxFrames: number;

  constructor(opts: GopCacheOptions = {}) {
    this.maxBytes = opts.maxBytes ?? 8 * 1024 * 1024;
    this.maxFrames = opts.maxFrames ?? 900;
  }

  /** Adds an AU; returns the AU as it should be forwarded (keyframes get SPS/PPS prepended if needed). */
  push(au: AccessUnit): AccessUnit {
    let hasSps = false;
    let hasPps = false;
    for (const n of au.nals) {
      const t = nalType(n);
      if (t === NAL.SPS) {
        this.sps = n;
        hasSps = true;
      } else if (t === NAL.PPS) {
        this.pps = n;
        hasPps = true;
      }
    }
    if (au.keyframe) {
      let unit = au;
      if ((!hasSps && this.sps) || (!hasPps && this.pps)) {
        const head: Buffer[] = [];
        if (!hasSps && this.sps) head.push(this.sps);
        if (!hasPps && this.pps) head.push(this.pps);
        const nals = [...head, ...au.nals];
        unit = { ...au, nals, bytes: au.bytes + head.reduce((a, b) => a + b.length, 0) };
      }
      this.units = [unit];
      this.bytes = unit.bytes;
      this.truncated = false;
      return unit;
    }
    if (this.units.length === 0 || this.truncated) return au; // no IDR yet, or over the bound
    if (this.bytes + au.bytes > this.maxBytes || this.units.length + 1 > this.maxFrames) {
      this.units = this.units.slice(0, 1);
      this.bytes = this.units[0]?.bytes ?? 0;
      this.truncated = true;
      return au;
    }
    this.units.push(au);
    this.bytes += au.bytes;
    return au;
  }

  snapshot(): GopSnapshot {
    return { units: this.units.slice(), truncated: this.truncated };
  }

  clear(): void {
    this.units = [];
    this.bytes = 0;
    this.truncated = false;
  }

  /** profile-level-id of the latest SPS seen, if any. */
  profileLevelId(): string | undefined {
    return this.sps ? profileLevelIdFromSps(this.sps) : undefined;
  }

  get size(): { frames: number; bytes: number; truncated: boolean } {
    return { frames: this.units.length, bytes: this.bytes, truncated: this.truncated };
  }
}
