/**
 * Device ⇄ viewer messages: every `m` a device and a viewer exchange inside rendezvous
 * `send {to, m}` / `recv {from, m}` frames. This module is their one schema, for both directions.
 *
 * On the wire, everything but the pre-pairing `pair/*` messages travels inside the sealed channel
 * (`channel.ts`): the rendezvous routes `chan/*` frames, and the messages below are their
 * plaintext. Each direction has one decoder that never throws and returns a typed result.
 *
 * | `t`               | direction       | fields                                                    |
 * |-------------------|-----------------|-----------------------------------------------------------|
 * | `pair/…`          | both            | the pairing module's messages (not sealed: PAKE)          |
 * | `chan/…`          | both            | the sealed channel (`channel.ts`)                         |
 * | `session/offer`   | viewer → device | `env`: offer envelope (session.ts createOffer)            |
 * | `session/ice`     | both            | `sid`, `c`: RTCIceCandidateInit or null                   |
 * | `session/close`   | viewer → device | `sid` (the user left the view)                            |
 * | `cameras`         | viewer → device | (none): asks for the camera list                          |
 * | `acl/get`         | viewer → device | (none): the owner asks for the ACL; `rp`: a recovery proof |
 * | `acl/update`      | viewer → device | `env`: owner-signed ACL update (grants.ts)                |
 * | `reader/key`      | viewer → device | `rk`: the viewer's signed reader key (clip/reader-key.ts) |
 * | `push/sub`        | viewer → device | `sub`: a Web Push subscription (webpush.ts)               |
 * | `log/get`         | viewer → device | `from`, `max`?, `wit`?: an owner reads the access log      |
 * | `session/answer`  | device → viewer | `env`: answer envelope (createAnswer)                     |
 * | `session/still`   | device → viewer | `sid`, `ct`: sealed JPEG (still.ts)                       |
 * | `session/refused` | device → viewer | `sid` (or '' when the offer had none), `code`             |
 * | `session/closed`  | device → viewer | `sid`, `code`                                             |
 * | `cameras`         | device → viewer | `list: [{name, online}]`, `role`?                         |
 * | `cameras/refused` | device → viewer | `code`                                                    |
 * | `acl`             | device → viewer | `state`: the ACL (grants.ts aclStateSchema)               |
 * | `acl/ok`          | device → viewer | `ver`: the version now in force                           |
 * | `acl/error`       | device → viewer | `code`                                                    |
 * | `reader/ok`       | device → viewer | (none): the reader key is stored                          |
 * | `reader/error`    | device → viewer | `code`                                                    |
 * | `push/ok`         | device → viewer | (none): the subscription is stored                        |
 * | `push/error`      | device → viewer | `code`                                                    |
 * | `invite/create`   | viewer → device | `env`: owner-signed `acl/invite` envelope (invite.ts)     |
 * | `invite/redeem`   | viewer → device | `id`, `proof`, `name`: the invitee redeems a link         |
 * | `invite/list`     | viewer → device | (none): an owner asks for the invites                     |
 * | `invite/deny`     | viewer → device | `id`: an owner refuses a request or cancels a link        |
 * | `invite/ok`       | device → viewer | `id`: the invite is stored / denied                       |
 * | `invite/error`    | device → viewer | `code`                                                    |
 * | `invite/pending`  | device → viewer | `id`: redeemed; waiting for an owner (grants nothing)     |
 * | `invite/request`  | device → viewer | `id`, `sub`, `name`: to owners, someone redeemed a link   |
 * | `invite/approved` | device → viewer | `id`: to the invitee, an owner granted its key access     |
 * | `invites`         | device → viewer | `list`: [InviteInfo] newest first, `more`?                |
 * | `log/update`      | device → viewer | `cp`, `cons`, `start`, `entries`, `proofs`, `wcons`? (tlog/wire.ts) |
 * | `log/error`       | device → viewer | `code`                                                    |
 *
 * Envelopes (`env`) are only decoded for shape here; their signatures are checked by session.ts
 * and grants.ts against the keys pinned at pairing.
 */
import { z } from 'zod';
import { MAX_READER_KEY_BYTES } from './clip/reader-key.js';
import { describeZod } from './envelope.js';
import { ProtocolError } from './errors.js';
import { aclStateSchema } from './grants.js';
import { isId } from './ids.js';
import { inviteIdSchema, inviteInfoSchema, inviteNameSchema, MAX_INVITES_LISTED } from './invite.js';
import { CAMERA_NAME } from './session.js';
import { STILL_CT_CHARS } from './still.js';
import { logGetSchema, logUpdateSchema } from './tlog/wire.js';
import { pushSubscriptionSchema } from './webpush.js';

/** Largest device⇄viewer message (its canonical JSON, the channel's plaintext), in bytes. */
export const MAX_MESSAGE_BYTES = 66 * 1024;

const sid = z.string().regex(/^[A-Za-z0-9_-]{22}$/);
const code = z.string().regex(/^[A-Z0-9_]{1,64}$/);
/** An envelope, shape-checked later by decodeEnvelope (its size is bounded by the message's). */
const env = z
  .unknown()
  .refine((v): boolean => typeof v === 'object' && v !== null && !Array.isArray(v), 'envelope object');

/** A trickled ICE candidate (RTCIceCandidateInit as JSON), or null for end-of-candidates. */
export const iceCandidateSchema = z
  .object({
    candidate: z.string().max(1024),
    sdpMid: z.string().max(64).nullable().optional(),
    sdpMLineIndex: z.number().int().min(0).max(64).nullable().optional(),
    usernameFragment: z.string().max(256).nullable().optional(),
  })
  .strict()
  .nullable();
export type IceCandidate = z.infer<typeof iceCandidateSchema>;

const sessionIce = z.object({ t: z.literal('session/ice'), sid, c: iceCandidateSchema }).strict();

/** Messages a viewer sends to a device. */
export const viewerMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('session/offer'), env }).strict(),
  sessionIce,
  z.object({ t: z.literal('session/close'), sid }).strict(),
  z.object({ t: z.literal('cameras') }).strict(),
  /**
   * Ask the device to have the server issue relay (TURN) credentials to this viewer before its
   * offer (review R6). No reply from the device: the server sends them, in a `relay` frame.
   */
  z.object({ t: z.literal('relay/ask') }).strict(),
  /** `rp`: a stranger's recovery proof (grants.ts signRecoveryProof); owners send none. */
  z.object({ t: z.literal('acl/get'), rp: env.optional() }).strict(),
  z.object({ t: z.literal('acl/update'), env }).strict(),
  /**
   * Register the viewer's reader key (`encodeReaderKey(signReaderKey(…))`): the device seals new
   * blobs to it while the viewer's grant allows `clips`. Decoded and verified by the device.
   */
  z.object({ t: z.literal('reader/key'), rk: z.string().min(1).max(MAX_READER_KEY_BYTES) }).strict(),
  /** Send me notifications at this Web Push subscription (its keys never reach the server). */
  z.object({ t: z.literal('push/sub'), sub: pushSubscriptionSchema }).strict(),
  /** Invites (invite.ts): an owner creates, lists and denies them; anyone may redeem a link. */
  z.object({ t: z.literal('invite/create'), env }).strict(),
  z
    .object({
      t: z.literal('invite/redeem'),
      id: inviteIdSchema,
      proof: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
      name: inviteNameSchema,
    })
    .strict(),
  z.object({ t: z.literal('invite/list') }).strict(),
  z.object({ t: z.literal('invite/deny'), id: inviteIdSchema }).strict(),
  /** An owner reads the access log (tlog/wire.ts); anyone else gets `log/error {code: 'E_NO_GRANT'}`. */
  logGetSchema,
  /** An owner erases the household (grants.ts signEraseRequest): the device resets itself (S8). */
  z.object({ t: z.literal('household/erase'), env }).strict(),
]);
export type ViewerMessage = z.infer<typeof viewerMessageSchema>;

/** A camera as the device lists it. */
export const cameraEntrySchema = z
  .object({ name: z.string().regex(CAMERA_NAME), online: z.boolean() })
  .strict();

/** Messages a device sends to a viewer. */
export const deviceMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('session/answer'), env }).strict(),
  sessionIce,
  z.object({ t: z.literal('session/still'), sid, ct: z.string().min(1).max(STILL_CT_CHARS) }).strict(),
  z.object({ t: z.literal('session/refused'), sid: z.union([sid, z.literal('')]), code }).strict(),
  z.object({ t: z.literal('session/closed'), sid, code }).strict(),
  z
    .object({
      t: z.literal('cameras'),
      list: z.array(cameraEntrySchema).max(64),
      role: z.enum(['owner', 'member', 'guest']).optional(),
    })
    .strict(),
  z.object({ t: z.literal('cameras/refused'), code }).strict(),
  z.object({ t: z.literal('acl'), state: aclStateSchema }).strict(),
  z.object({ t: z.literal('acl/ok'), ver: z.number().int().nonnegative() }).strict(),
  z.object({ t: z.literal('acl/error'), code }).strict(),
  z.object({ t: z.literal('reader/ok') }).strict(),
  z.object({ t: z.literal('reader/error'), code }).strict(),
  z.object({ t: z.literal('push/ok') }).strict(),
  z.object({ t: z.literal('push/error'), code }).strict(),
  z.object({ t: z.literal('invite/ok'), id: inviteIdSchema }).strict(),
  z.object({ t: z.literal('invite/error'), code }).strict(),
  z.object({ t: z.literal('invite/pending'), id: inviteIdSchema }).strict(),
  z
    .object({
      t: z.literal('invite/request'),
      id: inviteIdSchema,
      sub: z.string().refine((k): boolean => isId('userKey', k), 'user key'),
      name: inviteNameSchema,
    })
    .strict(),
  z.object({ t: z.literal('invite/approved'), id: inviteIdSchema }).strict(),
  z
    .object({
      t: z.literal('invites'),
      list: z.array(inviteInfoSchema).max(MAX_INVITES_LISTED),
      /** True when older entries did not fit in one message. */
      more: z.boolean().optional(),
    })
    .strict(),
  logUpdateSchema,
  z.object({ t: z.literal('log/error'), code }).strict(),
  z.object({ t: z.literal('household/erasing') }).strict(),
  z.object({ t: z.literal('household/error'), code }).strict(),
]);
export type DeviceMessage = z.infer<typeof deviceMessageSchema>;

/** Message types per direction (for the docs sync test and for classifying unknown types). */
export const VIEWER_MESSAGE_TYPES = [
  'session/offer',
  'session/ice',
  'session/close',
  'cameras',
  'relay/ask',
  'acl/get',
  'acl/update',
  'reader/key',
  'push/sub',
  'invite/create',
  'invite/redeem',
  'invite/list',
  'invite/deny',
  'log/get',
  'household/erase',
] as const satisfies readonly ViewerMessage['t'][];
export const DEVICE_MESSAGE_TYPES = [
  'session/answer',
  'session/ice',
  'session/still',
  'session/refused',
  'session/closed',
  'cameras',
  'cameras/refused',
  'acl',
  'acl/ok',
  'acl/error',
  'reader/ok',
  'reader/error',
  'push/ok',
  'push/error',
  'invite/ok',
  'invite/error',
  'invite/pending',
  'invite/request',
  'invite/approved',
  'invites',
  'log/update',
  'log/error',
  'household/erasing',
  'household/error',
] as const satisfies readonly DeviceMessage['t'][];

/** Result of a message decoder: a typed message, or why not (never a throw). */
export type Decoded<M> =
  | { ok: true; m: M }
  | {
      ok: false;
      error: ProtocolError;
      /** The message's `t`, when it had a short string one. */
      t?: string;
      /** True when `t` is well formed but not a type this direction knows (drop it quietly). */
      unknown?: boolean;
    };

function decodeWith<M>(schema: z.ZodType<M>, known: readonly string[], m: unknown, what: string): Decoded<M> {
  if (typeof m !== 'object' || m === null || Array.isArray(m))
    return { ok: false, error: new ProtocolError('E_SCHEMA', `${what}: not an object`) };
  const t = (m as { t?: unknown }).t;
  if (typeof t !== 'string' || t.length > 64)
    return { ok: false, error: new ProtocolError('E_SCHEMA', `${what}: no message type`) };
  if (!known.includes(t))
    return {
      ok: false,
      t,
      unknown: true,
      error: new ProtocolError('E_UNSUPPORTED', `${what}: unknown type`),
    };
  let size: number;
  try {
    size = JSON.stringify(m).length;
  } catch {
    return { ok: false, t, error: new ProtocolError('E_SCHEMA', `${what}: not JSON`) };
  }
  if (size > MAX_MESSAGE_BYTES)
    return {
      ok: false,
      t,
      error: new ProtocolError('E_TOO_LARGE', `${what} larger than ${MAX_MESSAGE_BYTES}`),
    };
  const r = schema.safeParse(m);
  if (!r.success)
    return { ok: false, t, error: new ProtocolError('E_SCHEMA', `${t}: ${describeZod(r.error)}`) };
  return { ok: true, m: r.data };
}

/** Device side: decode a message from a viewer (the plaintext of a `chan/msg`). Never throws. */
export function decodeViewerMessage(m: unknown): Decoded<ViewerMessage> {
  return decodeWith(viewerMessageSchema, VIEWER_MESSAGE_TYPES, m, 'viewer message');
}

/** Viewer side: decode a message from a device (the plaintext of a `chan/msg`). Never throws. */
export function decodeDeviceMessage(m: unknown): Decoded<DeviceMessage> {
  return decodeWith(deviceMessageSchema, DEVICE_MESSAGE_TYPES, m, 'device message');
}

/** Viewer → device: ask for the camera list. */
export const camerasRequest = (): { t: 'cameras' } => ({ t: 'cameras' });
