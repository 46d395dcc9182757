/**
 * The event-index record: the plaintext of a sealed blob of kind `event` (docs/events-contract.md
 * §2). One per event; it names the event's clip and snapshot blobs and carries a small thumbnail,
 * so a viewer can list a day of events by fetching only these small blobs.
 *
 * ```
 * record = canonicalJSON({v: 1, type, cam, t, t1, clip?, snap?, thumb, score?})
 *   type   "motion" | "sound"
 *   cam    camera name (session.ts CAMERA_NAME)
 *   t, t1  trigger time and end of the event, ms since the epoch (t ≤ t1)
 *   clip   blob ID of the clip (b64u of 16 bytes), snap: of the full snapshot
 *   thumb  standard base64 of a JPEG of at most 8 KiB (about 160×90)
 *   score  how much changed, per mille (0..1000): canonical JSON has integers only;
 *          the decoded {@link EventRecord.score} is that / 1000 (0..1)
 * ```
 *
 * At most {@link MAX_EVENT_RECORD_BYTES}; {@link decodeEventRecord} checks the size first, then a
 * strict schema, and throws only ProtocolError.
 */
import { z } from 'zod';
import { b64std, fromB64std } from '../bytes.js';
import { canonicalBytes, parseJson } from '../canonical.js';
import { describeZod } from '../envelope.js';
import { ProtocolError } from '../errors.js';
import { CAMERA_NAME } from '../session.js';

/** Largest encoded record. */
export const MAX_EVENT_RECORD_BYTES = 16 * 1024;
/** Largest thumbnail JPEG. */
export const MAX_EVENT_THUMB_BYTES = 8 * 1024;
/** Event types. */
export const EVENT_TYPES = ['motion', 'sound'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** One event, as the device records it and a viewer lists it. */
export interface EventRecord {
  v: 1;
  type: EventType;
  /** Camera name. */
  cam: string;
  /** Trigger time, ms since the epoch. */
  t: number;
  /** End of the event. */
  t1: number;
  /** Blob ID (b64u, 16 bytes) of the clip. */
  clip?: string;
  /** Blob ID of the full snapshot. */
  snap?: string;
  /** Standard base64 of a small JPEG (≤ {@link MAX_EVENT_THUMB_BYTES}). */
  thumb: string;
  /** 0..1, how much changed (carried in thousandths). */
  score?: number;
}

const time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const blobId = z
  .string()
  .length(22)
  .regex(/^[A-Za-z0-9_-]*$/);
const wireSchema = z
  .object({
    v: z.literal(1),
    type: z.enum(EVENT_TYPES),
    cam: z.string().regex(CAMERA_NAME),
    t: time,
    t1: time,
    clip: blobId.optional(),
    snap: blobId.optional(),
    thumb: z
      .string()
      .max(Math.ceil(MAX_EVENT_THUMB_BYTES / 3) * 4)
      .regex(/^[A-Za-z0-9+/=]*$/),
    score: z.number().int().min(0).max(1000).optional(),
  })
  .strict()
  .refine((r) => r.t1 >= r.t, 't1 before t');

/** Canonical JSON bytes of `r`. RangeError for a record the decoder would refuse (our bug). */
export function encodeEventRecord(r: EventRecord): Uint8Array {
  if (r.score !== undefined && !(Number.isFinite(r.score) && r.score >= 0 && r.score <= 1))
    throw new RangeError('event record: score must be 0..1');
  const wire = {
    v: 1,
    type: r.type,
    cam: r.cam,
    t: r.t,
    t1: r.t1,
    ...(r.clip !== undefined ? { clip: r.clip } : {}),
    ...(r.snap !== undefined ? { snap: r.snap } : {}),
    thumb: r.thumb,
    ...(r.score !== undefined ? { score: Math.round(r.score * 1000) } : {}),
  };
  const p = wireSchema.safeParse(wire);
  if (!p.success) throw new RangeError(`event record: ${describeZod(p.error)}`);
  checkThumb(r.thumb, (m) => new RangeError(m));
  const bytes = canonicalBytes(wire);
  if (bytes.length > MAX_EVENT_RECORD_BYTES) throw new RangeError('event record: too large');
  return bytes;
}

function checkThumb(thumb: string, fail: (m: string) => Error): void {
  let jpeg: Uint8Array;
  try {
    jpeg = fromB64std(thumb, MAX_EVENT_THUMB_BYTES);
  } catch (e) {
    throw fail(`event record: thumb: ${(e as Error).message}`);
  }
  if (jpeg.length > MAX_EVENT_THUMB_BYTES) throw fail('event record: thumb larger than 8 KiB');
}

/**
 * Decode a record (the opened plaintext of an `event` blob): E_TOO_LARGE past
 * {@link MAX_EVENT_RECORD_BYTES}, E_DECODE for bad JSON or base64, E_SCHEMA for anything else.
 */
export function decodeEventRecord(input: string | Uint8Array): EventRecord {
  const raw = parseJson(input, MAX_EVENT_RECORD_BYTES);
  const r = wireSchema.safeParse(raw);
  if (!r.success) throw new ProtocolError('E_SCHEMA', `event record: ${describeZod(r.error)}`);
  checkThumb(r.data.thumb, (m) => new ProtocolError('E_DECODE', m));
  const d = r.data;
  // `+ 0` turns a JSON `-0` (which the schema's `min(0)` admits) into 0, so a decoded record
  // encodes back to the same record.
  return {
    v: 1,
    type: d.type,
    cam: d.cam,
    t: d.t + 0,
    t1: d.t1 + 0,
    ...(d.clip !== undefined ? { clip: d.clip } : {}),
    ...(d.snap !== undefined ? { snap: d.snap } : {}),
    thumb: d.thumb,
    ...(d.score !== undefined ? { score: d.score / 1000 + 0 } : {}),
  };
}

/** The thumbnail field of a JPEG (standard base64). RangeError past 8 KiB. */
export function eventThumb(jpeg: Uint8Array): string {
  if (jpeg.length > MAX_EVENT_THUMB_BYTES) throw new RangeError('event record: thumbnail larger than 8 KiB');
  return b64std(jpeg);
}
