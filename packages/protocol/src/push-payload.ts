/**
 * The plaintext of a Hearth Web Push notification (docs/protocol.md "Notifications"): its strict
 * schema, encoder and size-limited decoder. Its own module, on zod's small `zod/mini` build, so that
 * the viewer's service worker, which decodes every push, stays small (webpush.ts, the encryption,
 * is not part of it).
 */
import * as z from 'zod/mini';
import { utf8 } from './bytes.js';
import { parseJson } from './canonical.js';
import { ProtocolError } from './errors.js';

/** Largest payload JSON that fits one Hearth notification (PUSH_PLAINTEXT_BYTES − 1). */
export const MAX_PUSH_PAYLOAD_BYTES = 2983;
/** Largest base64 thumbnail a payload carries (it must fit {@link MAX_PUSH_PAYLOAD_BYTES} anyway). */
export const MAX_PUSH_THUMB_CHARS = 2800;

/**
 * A camera name: the same rule as `CAMERA_NAME` in session.ts (a test checks), repeated here so
 * that the service worker's bundle does not pull in the session module.
 */
export const PUSH_CAMERA_NAME = /^[a-z0-9_-]{1,32}$/;

/**
 * The plaintext of a Hearth notification. `thumb`: standard base64 of a small JPEG (shown as the
 * notification's image); `clip`: the blob ID of the sealed clip, present in the second notification
 * of an event, once the clip is sealed.
 */
export const pushPayloadSchema = /* @__PURE__ */ z.strictObject({
  v: z.literal(1),
  type: z.enum(['motion', 'sound']),
  cam: z.string().check(z.regex(PUSH_CAMERA_NAME)),
  t: z.number().check(z.int(), z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER)),
  thumb: z.optional(
    z
      .string()
      .check(
        z.minLength(4),
        z.maxLength(MAX_PUSH_THUMB_CHARS),
        z.regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/),
      ),
  ),
  clip: z.optional(z.string().check(z.regex(/^[A-Za-z0-9_-]{22}$/))),
});
export type PushPayload = z.infer<typeof pushPayloadSchema>;

const describe = (err: z.core.$ZodError): string =>
  err.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.code}`)
    .join('; ');

/** The payload's JSON bytes (keys in a fixed order). Raises ProtocolError. */
export function encodePushPayload(p: PushPayload): Uint8Array {
  const r = pushPayloadSchema.safeParse(p);
  if (!r.success) throw new ProtocolError('E_SCHEMA', `push payload: ${describe(r.error)}`);
  const q = r.data;
  const o: Record<string, unknown> = { v: 1, type: q.type, cam: q.cam, t: q.t };
  if (q.thumb !== undefined) o.thumb = q.thumb;
  if (q.clip !== undefined) o.clip = q.clip;
  const bytes = utf8(JSON.stringify(o));
  if (bytes.length > MAX_PUSH_PAYLOAD_BYTES)
    throw new ProtocolError('E_TOO_LARGE', `push payload larger than ${MAX_PUSH_PAYLOAD_BYTES} bytes`);
  return bytes;
}

/** Decode a payload (JSON bytes or text). Size limit first; raises ProtocolError only. */
export function decodePushPayload(input: string | Uint8Array): PushPayload {
  if (input.length > MAX_PUSH_PAYLOAD_BYTES)
    throw new ProtocolError('E_TOO_LARGE', `push payload larger than ${MAX_PUSH_PAYLOAD_BYTES} bytes`);
  const r = pushPayloadSchema.safeParse(parseJson(input, MAX_PUSH_PAYLOAD_BYTES));
  if (!r.success) throw new ProtocolError('E_SCHEMA', `push payload: ${describe(r.error)}`);
  return r.data;
}
