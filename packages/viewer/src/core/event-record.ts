/**
 * The event-index record: the plaintext of a `kind: 'event'` sealed blob (docs/events-contract.md
 * §2). LOCAL STAND-IN for protocol's `decodeEventRecord`, which another part of issue 9 adds; once
 * it lands, this file should re-export it. Same contract: size limit first, strict schema, never
 * throws anything but ProtocolError.
 */
import { CAMERA_NAME, ProtocolError, parseJson } from '@hearth/protocol';
import { z } from 'zod';

/** Largest encoded record. */
export const MAX_EVENT_RECORD_BYTES = 16 * 1024;
/** Largest thumbnail (the JPEG, before base64). */
const MAX_THUMB_BYTES = 8 * 1024;

const blobId = z.string().regex(/^[A-Za-z0-9_-]{22}$/);
const ms = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const schema = z
  .object({
    v: z.literal(1),
    type: z.enum(['motion', 'sound']),
    cam: z.string().regex(CAMERA_NAME),
    t: ms,
    t1: ms,
    clip: blobId.optional(),
    snap: blobId.optional(),
    thumb: z
      .string()
      .max(Math.ceil(MAX_THUMB_BYTES / 3) * 4)
      .regex(/^[A-Za-z0-9+/]*={0,2}$/),
    score: z.number().min(0).max(1).optional(),
  })
  .strict()
  .refine((r) => r.t1 >= r.t, 't1 before t');

export type EventType = 'motion' | 'sound';
export type EventRecord = z.infer<typeof schema>;

/** Decode a record: E_TOO_LARGE, E_DECODE or E_SCHEMA. */
export function decodeEventRecord(input: Uint8Array | string): EventRecord {
  const raw = parseJson(input, MAX_EVENT_RECORD_BYTES);
  const r = schema.safeParse(raw);
  if (!r.success) throw new ProtocolError('E_SCHEMA', 'event record: does not match the schema');
  return r.data;
}
