/**
 * Device ⇄ viewer messages, carried as `m` inside rendezvous `send {to, m}` / `recv {from, m}`.
 *
 * | `t`               | direction       | fields                                   |
 * |-------------------|-----------------|------------------------------------------|
 * | `pair/…`          | both            | the pairing module's messages            |
 * | `session/offer`   | viewer → device | `env`: offer envelope (createOffer)      |
 * | `session/answer`  | device → viewer | `env`: answer envelope (createAnswer)    |
 * | `session/still`   | device → viewer | `sid`, `ct`: sealed JPEG (protocol still.ts) |
 * | `session/ice`     | both            | `sid`, `c`: RTCIceCandidateInit or null  |
 * | `session/refused` | device → viewer | `sid`, `code` (AccessError code, …)      |
 * | `session/closed`  | device → viewer | `sid`, `code`                            |
 * | `session/close`   | viewer → device | `sid` (the user left the view)           |
 * | `cameras`         | viewer → device | (none): asks for the camera list         |
 * | `cameras`         | device → viewer | `list: [{name, online}]`, `role`?        |
 * | `cameras/refused` | device → viewer | `code`                                   |
 *
 * Everything from the device is parsed here against a schema with size limits before use (S10).
 * Unknown fields are dropped; unknown `t` values are ignored by the caller.
 */
import { CAMERA_NAME, STILL_CT_CHARS } from '@hearth/protocol';
import { z } from 'zod';

const sid = z.string().regex(/^[A-Za-z0-9_-]{22}$/);
const code = z.string().regex(/^[A-Z0-9_]{1,64}$/);

/** A trickled ICE candidate (RTCIceCandidateInit as JSON), or null for end-of-candidates. */
export const iceCandidateSchema = z
  .object({
    candidate: z.string().max(1024),
    sdpMid: z.string().max(64).nullable().optional(),
    sdpMLineIndex: z.number().int().min(0).max(64).nullable().optional(),
    usernameFragment: z.string().max(256).nullable().optional(),
  })
  .nullable();

/** Messages a device sends to a viewer (pairing messages are parsed by the pairing module). */
export const deviceMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('session/answer'), env: z.unknown() }),
  z.object({ t: z.literal('session/ice'), sid, c: iceCandidateSchema }),
  z.object({ t: z.literal('session/still'), sid, ct: z.string().min(1).max(STILL_CT_CHARS) }),
  z.object({ t: z.literal('session/refused'), sid: z.union([sid, z.literal('')]), code }),
  z.object({ t: z.literal('session/closed'), sid, code }),
  z.object({
    t: z.literal('cameras'),
    list: z.array(z.object({ name: z.string().regex(CAMERA_NAME), online: z.boolean() })).max(64),
    role: z.string().max(16).optional(),
  }),
  z.object({ t: z.literal('cameras/refused'), code }),
]);
export type DeviceMessage = z.infer<typeof deviceMessageSchema>;

/** A message from a device, classified. */
export type Incoming =
  | { kind: 'pair'; m: { t: string; [k: string]: unknown } }
  | { kind: 'device'; m: DeviceMessage }
  | { kind: 'invalid'; t?: string }
  | { kind: 'unknown'; t: string };

const KNOWN = new Set([
  'session/answer',
  'session/ice',
  'session/still',
  'session/refused',
  'session/closed',
  'cameras',
  'cameras/refused',
]);

/** Classify and validate `m` from a `recv` frame. Never throws. */
export function parseIncoming(m: unknown): Incoming {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return { kind: 'invalid' };
  const t = (m as { t?: unknown }).t;
  if (typeof t !== 'string' || t.length > 64) return { kind: 'invalid' };
  if (t.startsWith('pair/')) return { kind: 'pair', m: m as { t: string } };
  if (!KNOWN.has(t)) return { kind: 'unknown', t };
  const r = deviceMessageSchema.safeParse(m);
  return r.success ? { kind: 'device', m: r.data } : { kind: 'invalid', t };
}

/** Viewer → device: ask for the camera list. */
export const camerasRequest = (): { t: 'cameras' } => ({ t: 'cameras' });
