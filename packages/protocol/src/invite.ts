/**
 * Invites (household, issue 10): an owner lets someone join without a pairing window.
 *
 * ```
 * owner viewer                              device                                 invitee viewer
 *   s = 32 random bytes, id = inviteId(s), pk = inviteProofKey(s)
 *   invite/create {env: seal_owner('acl/invite', {d, id, pk, exp, tmpl, label?})}
 *   ───────────────────────────────────────▶ stores it (≤ 32 open), log acl/invite
 *   ◀── invite/ok {id}
 *   link = <viewer origin>/#/invite/b64u(canonical {v:1, d, dk, s, exp})  ───── (out of band) ────▶
 *                                                                    pins dk, opens a sealed channel
 *                                           ◀── invite/redeem {id, proof = HMAC(pk, V ‖ d), name}
 *                                    checks: rate limits, id + proof (one answer), exp, one-time
 *   ◀── invite/request {id, sub: V, name}   ──▶ invite/pending {id}  (grants NOTHING)
 *   acl/update adding a grant for V ──────▶ applies it; the invite is approved
 *                                           ──▶ invite/approved {id}
 * ```
 *
 * The secret `s` lives only in the link's fragment (`#…`), which browsers never send to a server;
 * the device holds only `pk` (it can check proofs, not make links). The proof binds the redeem to
 * the invitee's key and the device, so it cannot be replayed by another key or at another device.
 *
 * This module is pure: the link codec, the derivations, the owner-signed `acl/invite` envelope and
 * the list entry shape. The device's store is the agent's (device/invites.ts).
 */
import { z } from 'zod';
import { b64u, concat, constantTimeEqual, fromB64u, hex, utf8 } from './bytes.js';
import { canonicalize, parseJson } from './canonical.js';
import type { CryptoEnv } from './crypto/env.js';
import { hkdfSha256, hmacSha256, info, label, type Signer, sha256 } from './crypto/primitives.js';
import { decodeEnvelope, describeZod, type Envelope, seal, verify } from './envelope.js';
import { AccessError, ProtocolError, VerificationError } from './errors.js';
import { type Grant, SCOPES, schedWindowSchema } from './grants.js';
import { decodeId, deviceIdFromKey, encodeId, isId } from './ids.js';

/** Bytes of an invite secret. */
export const INVITE_SECRET_BYTES = 32;
/** Longest link payload (the b64u text after `#/invite/`). */
export const MAX_INVITE_PAYLOAD_CHARS = 512;
/** Longest whole link accepted by {@link decodeInviteLink}. */
export const MAX_INVITE_LINK_CHARS = 1024;
/** Longest an invite may stay open (ms): 30 days. */
export const MAX_INVITE_LIFETIME_MS = 30 * 24 * 3600_000;
/** Most open invites (open or requested, not expired) a device holds. */
export const MAX_OPEN_INVITES = 32;
/** Most entries an `invites` list carries. */
export const MAX_INVITES_LISTED = 64;
/** Longest invitee name and invite label (UTF-16 units). */
export const MAX_INVITE_NAME = 64;
/** The fragment route of an invite link. */
export const INVITE_ROUTE = '#/invite/';

/** Freshness window of an `acl/invite` envelope when the device receives it (as `acl/update`). */
export const INVITE_MAX_AGE_MS = 10 * 60_000;
export const INVITE_MAX_FUTURE_MS = 60_000;

const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const deviceIdText = z.string().refine((s): boolean => isId('deviceId', s), 'device id');
/** An invite ID: 32 lower-case hex digits. */
export const inviteIdSchema = z.string().regex(/^[0-9a-f]{32}$/);
/** b64u of 32 bytes. */
const b64u32 = z.string().regex(/^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/);
/** A display name: 1–64 characters, no control or format characters. */
export const inviteNameSchema = z
  .string()
  .min(1)
  .max(MAX_INVITE_NAME)
  .regex(/^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+$/u);
const camName = z.string().regex(/^[a-z0-9_-]{1,32}$/);
const unique = <T>(a: T[]) => new Set(a).size === a.length;

/** A schedule window of a template: exactly a grant's `sched` window (grants.ts), in the device's time zone. */
export const inviteSchedSchema = schedWindowSchema;

/** What the owner means to grant once the invitee's request is approved (the viewer builds the grant). */
export const inviteTemplateSchema = z
  .object({
    role: z.enum(['member', 'guest']),
    scopes: z.array(z.enum(SCOPES)).min(1).max(SCOPES.length).refine(unique, 'duplicate scope'),
    cams: z.array(camName).max(64).refine(unique, 'duplicate camera').optional(),
    groups: z.array(camName).max(16).refine(unique, 'duplicate group').optional(),
    sched: z.array(inviteSchedSchema).min(1).max(8).optional(),
    /** How long the grant will be valid, in days (absent: no expiry). */
    days: z.number().int().min(1).max(3650).optional(),
    /** `'grant'`: no history from before the grant; null or absent: no history floor. */
    floor: z.literal('grant').nullable().optional(),
  })
  .strict();
export type InviteTemplate = z.infer<typeof inviteTemplateSchema>;

/** Body of an owner-signed `acl/invite` envelope. */
export const inviteBodySchema = z
  .object({
    d: deviceIdText,
    /** {@link inviteId} of the secret. */
    id: inviteIdSchema,
    /** {@link inviteProofKey} of the secret, b64u: the device checks proofs with it. */
    pk: b64u32,
    /** Last moment the link may be redeemed (ms since the epoch, exclusive). */
    exp: time,
    tmpl: inviteTemplateSchema,
    /** The owner's name for the invite ("Babysitter"); only the device and owners see it. */
    label: inviteNameSchema.optional(),
  })
  .strict();
export type InviteBody = z.infer<typeof inviteBodySchema>;

/** States of an invite, as the device lists them. */
export const INVITE_STATES = ['open', 'requested', 'approved', 'denied', 'expired'] as const;
export type InviteState = (typeof INVITE_STATES)[number];

/** One entry of the device's `invites` list. */
export const inviteInfoSchema = z
  .object({
    id: inviteIdSchema,
    exp: time,
    state: z.enum(INVITE_STATES),
    label: inviteNameSchema.optional(),
    /** The invitee's key, once redeemed. */
    sub: z
      .string()
      .refine((s): boolean => isId('userKey', s), 'user key')
      .optional(),
    /** The invitee's own name for itself, once redeemed. */
    name: inviteNameSchema.optional(),
    tmpl: inviteTemplateSchema,
  })
  .strict();
export type InviteInfo = z.infer<typeof inviteInfoSchema>;

// ------------------------------------------------------------------ derivations

/** The invite's ID: the first 16 bytes of SHA-256("hearth/v1/invite/id" ‖ s), in hex. */
export async function inviteId(secret: Uint8Array): Promise<string> {
  checkSecret(secret);
  return hex((await sha256(concat(utf8(label('invite/id')), secret))).subarray(0, 16));
}

/** The key the device checks proofs with: HKDF-SHA-256(s, salt empty, info "hearth/v1/invite/proof"). */
export async function inviteProofKey(secret: Uint8Array): Promise<Uint8Array> {
  checkSecret(secret);
  return hkdfSha256(secret, new Uint8Array(0), info('invite/proof'), 32);
}

function proofInput(viewerKey: Uint8Array, deviceId: string): Uint8Array {
  if (viewerKey.length !== 32) throw new RangeError('viewer key must be 32 bytes');
  return concat(viewerKey, utf8(deviceId));
}

/** The invitee's proof: b64u(HMAC-SHA-256(inviteProofKey(s), viewerKey ‖ UTF-8(deviceId))). */
export async function inviteProof(
  secret: Uint8Array,
  viewerKey: Uint8Array,
  deviceId: string,
): Promise<string> {
  return b64u(await hmacSha256(await inviteProofKey(secret), proofInput(viewerKey, deviceId)));
}

/**
 * Device side: is `proof` the proof of `viewerKey` for the invite whose proof key is `proofKey`?
 * Constant time in the proof's contents; a malformed proof is false, never a throw.
 */
export async function checkInviteProof(
  proofKey: Uint8Array,
  proof: unknown,
  viewerKey: Uint8Array,
  deviceId: string,
): Promise<boolean> {
  const want = await hmacSha256(proofKey, proofInput(viewerKey, deviceId));
  // A malformed proof is compared as zeros, so that its shape does not change the work done.
  const wellFormed = typeof proof === 'string' && b64u32.safeParse(proof).success;
  const got = wellFormed ? fromB64u(proof as string, 32) : new Uint8Array(32);
  return constantTimeEqual(want, got) && wellFormed;
}

function checkSecret(secret: Uint8Array): void {
  if (!(secret instanceof Uint8Array) || secret.length !== INVITE_SECRET_BYTES)
    throw new RangeError(`invite secret must be ${INVITE_SECRET_BYTES} bytes`);
}

// ------------------------------------------------------------------ the link

/** What an invite link carries (its payload, before base64url). */
export const inviteLinkSchema = z
  .object({
    v: z.literal(1),
    d: deviceIdText,
    dk: z.string().refine((s): boolean => isId('deviceKey', s), 'device key'),
    s: b64u32,
    exp: time,
  })
  .strict();
export type InviteLinkPayload = z.infer<typeof inviteLinkSchema>;

/** A decoded invite link. */
export interface InviteLink extends InviteLinkPayload {
  /** The viewer origin before `/#/invite/`, or '' when only the fragment was given. */
  origin: string;
  /** The secret's 32 bytes. */
  secret: Uint8Array;
  /** The device's raw public key (to pin for the sealed channel). */
  deviceKey: Uint8Array;
}

const ORIGIN_RE = /^https?:\/\/[^/?#\s@\\]{1,253}$/;

/** `origin` when it is a canonical http(s) origin (scheme and host lower case, no default port), else undefined. */
function canonicalOrigin(origin: string): string | undefined {
  if (!ORIGIN_RE.test(origin)) return undefined;
  try {
    const u = new URL(`${origin}/`);
    return u.origin === origin && u.username === '' && u.password === '' ? origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Build an invite link `<origin>/#/invite/<payload>`. Raises RangeError for a malformed origin or
 * secret, ProtocolError E_SCHEMA for a malformed payload field.
 */
export function encodeInviteLink(
  origin: string,
  p: { d: string; deviceKey: Uint8Array; secret: Uint8Array; exp: number },
): string {
  checkSecret(p.secret);
  const payload = {
    v: 1 as const,
    d: p.d,
    dk: encodeId('deviceKey', p.deviceKey),
    s: b64u(p.secret),
    exp: p.exp,
  };
  const r = inviteLinkSchema.safeParse(payload);
  if (!r.success) throw new ProtocolError('E_SCHEMA', `invite link: ${describeZod(r.error)}`);
  if (deviceIdFromKey(p.deviceKey) !== p.d)
    throw new ProtocolError('E_SCHEMA', 'invite link: the device ID is not the device key’s');
  const text = b64u(utf8(canonicalize(r.data)));
  if (text.length > MAX_INVITE_PAYLOAD_CHARS) throw new ProtocolError('E_TOO_LARGE', 'invite link too long');
  const o = canonicalOrigin(origin.endsWith('/') ? origin.slice(0, -1) : origin);
  if (!o) throw new RangeError('invite link: origin must be a canonical http(s)://host[:port]');
  return `${o}/${INVITE_ROUTE}${text}`;
}

/**
 * Decode an invite link: the whole URL, or only its fragment (`#/invite/…`, as a viewer's router
 * sees it). Strict: canonical payload only, the device ID must be the device key's. Raises
 * ProtocolError only: E_TOO_LARGE, E_DECODE (not an invite link, bad base64url or JSON),
 * E_UNSUPPORTED (another version), E_SCHEMA.
 */
export function decodeInviteLink(input: unknown): InviteLink {
  if (typeof input !== 'string') throw new ProtocolError('E_DECODE', 'invite link: not a string');
  if (input.length > MAX_INVITE_LINK_CHARS) throw new ProtocolError('E_TOO_LARGE', 'invite link too long');
  const m = /^(?:(https?:\/\/[^/?#\s@\\]{1,253})\/)?#\/invite\/([A-Za-z0-9_-]{1,512})$/.exec(input);
  if (!m) throw new ProtocolError('E_DECODE', 'not a Hearth invite link');
  const origin = m[1] ?? '';
  if (m[1] !== undefined && !canonicalOrigin(m[1]))
    throw new ProtocolError('E_DECODE', 'invite link: malformed origin');
  const text = m[2]!;
  let bytes: Uint8Array;
  try {
    bytes = fromB64u(text, 384);
  } catch {
    throw new ProtocolError('E_DECODE', 'invite link: payload is not base64url');
  }
  if (b64u(bytes) !== text)
    throw new ProtocolError('E_DECODE', 'invite link: payload is not canonical base64url');
  const raw = parseJson(bytes, 384);
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && (raw as { v?: unknown }).v !== 1)
    throw new ProtocolError('E_UNSUPPORTED', 'invite link: unsupported version');
  const r = inviteLinkSchema.safeParse(raw);
  if (!r.success) throw new ProtocolError('E_SCHEMA', `invite link: ${describeZod(r.error)}`);
  if (!constantTimeEqual(utf8(canonicalize(r.data)), bytes))
    throw new ProtocolError('E_SCHEMA', 'invite link: payload is not canonical JSON');
  const deviceKey = decodeId('deviceKey', r.data.dk);
  if (deviceIdFromKey(deviceKey) !== r.data.d)
    throw new ProtocolError('E_SCHEMA', 'invite link: the device ID is not the device key’s');
  const secret = fromB64u(r.data.s, 32);
  return { ...r.data, origin, secret, deviceKey };
}

// ------------------------------------------------------------------ the acl/invite envelope

/** Decode an invite body (strict). Raises ProtocolError E_SCHEMA. */
export function decodeInviteBody(b: unknown): InviteBody {
  const r = inviteBodySchema.safeParse(b);
  if (!r.success) throw new ProtocolError('E_SCHEMA', `acl/invite body: ${describeZod(r.error)}`);
  return r.data;
}

/** Owner: sign an invite body (purpose `acl/invite`). Raises ProtocolError E_SCHEMA for a bad body. */
export async function signInvite(owner: Signer, body: InviteBody, env: CryptoEnv): Promise<Envelope> {
  const b = decodeInviteBody(body);
  return seal(owner, 'user', 'acl/invite', b as unknown as Record<string, unknown>, env);
}

/** What {@link verifyInvite} checks against. */
export interface VerifyInviteOptions {
  deviceId: string;
  /** Receiver's clock. */
  now: number;
  /** Is this `huk_` key an owner of the device now? */
  isOwner: (key: string) => boolean;
  /**
   * A stored invite (re-checked on load): signature and body only, no freshness window and no
   * expiry check. Default false: a fresh envelope from the owner (10 min / 60 s, not expired, at
   * most 30 days ahead).
   */
  stored?: boolean;
}

/** A verified invite. */
export interface VerifiedInvite {
  body: InviteBody;
  /** The owner who signed it (`huk_…`). */
  by: string;
  envelope: Envelope;
}

/**
 * Verify an `acl/invite` envelope: a user signature that verifies, by an owner (E_WRONG_SIGNER),
 * for this device (E_BAD_BINDING), fresh (E_STALE), a strict body (E_SCHEMA); unless `stored`, the
 * invite must not be expired (E_INVITE_EXPIRED) nor open longer than 30 days (E_SCHEMA). Throws a
 * typed error (VerificationError, AccessError or ProtocolError).
 */
export async function verifyInvite(input: unknown, o: VerifyInviteOptions): Promise<VerifiedInvite> {
  const e = decodeEnvelope(input);
  const r = await verify(e, {
    purpose: 'acl/invite',
    signerKind: 'user',
    body: inviteBodySchema,
    now: o.stored ? e.t : o.now,
    maxAgeMs: INVITE_MAX_AGE_MS,
    maxFutureMs: INVITE_MAX_FUTURE_MS,
  });
  if (!r.ok) throw r.error;
  if (!o.isOwner(r.signerText))
    throw new VerificationError('E_WRONG_SIGNER', 'invite not signed by an owner');
  const b = r.body;
  if (b.d !== o.deviceId) throw new VerificationError('E_BAD_BINDING', 'invite is for another device');
  if (!o.stored) {
    if (b.exp <= o.now) throw new AccessError('E_INVITE_EXPIRED', 'the invite is already expired');
    if (b.exp > o.now + MAX_INVITE_LIFETIME_MS)
      throw new ProtocolError('E_SCHEMA', 'an invite may stay open at most 30 days');
  }
  return { body: b, by: r.signerText, envelope: e };
}

/** What an owner's viewer makes with {@link makeInvite}. */
export interface MadeInvite {
  /** The link to hand to the invitee (holds the secret in its fragment). */
  link: string;
  id: string;
  /** The signed `acl/invite` envelope, for `invite/create {env}`. */
  env: Envelope;
}

/**
 * Owner side: draw a secret, sign the invite and build the link. Send `{t: 'invite/create', env}`
 * to the device, then show the link (QR) once the device answers `invite/ok`.
 */
export async function makeInvite(
  o: {
    owner: Signer;
    deviceId: string;
    deviceKey: Uint8Array;
    origin: string;
    exp: number;
    tmpl: InviteTemplate;
    label?: string;
  },
  env: CryptoEnv,
): Promise<MadeInvite> {
  const secret = env.random(INVITE_SECRET_BYTES);
  const id = await inviteId(secret);
  const pk = b64u(await inviteProofKey(secret));
  const body: InviteBody = {
    d: o.deviceId,
    id,
    pk,
    exp: o.exp,
    tmpl: o.tmpl,
    ...(o.label !== undefined ? { label: o.label } : {}),
  };
  const e = await signInvite(o.owner, body, env);
  const link = encodeInviteLink(o.origin, { d: o.deviceId, deviceKey: o.deviceKey, secret, exp: o.exp });
  return { link, id, env: e };
}

/** A grant as {@link grantFromInvite} builds it (grants v2 fields included when the template has them). */
export type InviteGrant = Grant & {
  groups?: string[];
  sched?: z.infer<typeof inviteSchedSchema>[];
  floor?: number;
  label?: string;
};

/**
 * Owner side, on approval: the grant body the template describes for the request's key, valid from
 * `now` (`days` → `exp`, `floor: 'grant'` → no history before `now`). Sign it with `signGrant` and
 * send it in an `acl/update`. The v2 fields (`groups`, `sched`, `floor`, `label`) need grants v2.
 */
export function grantFromInvite(
  tmpl: InviteTemplate,
  o: { d: string; sub: string; serial: number; now: number; label?: string },
): InviteGrant {
  return {
    d: o.d,
    sub: o.sub,
    role: tmpl.role,
    scopes: [...tmpl.scopes],
    ...(tmpl.cams ? { cams: [...tmpl.cams] } : {}),
    ...(tmpl.groups ? { groups: [...tmpl.groups] } : {}),
    ...(tmpl.sched ? { sched: tmpl.sched.map((w) => ({ ...w, days: [...w.days] })) } : {}),
    ...(tmpl.floor === 'grant' ? { floor: o.now } : {}),
    ...(o.label !== undefined ? { label: o.label } : {}),
    nbf: o.now,
    exp: tmpl.days !== undefined ? o.now + tmpl.days * 86_400_000 : null,
    serial: o.serial,
  };
}

/** Invitee side: the `invite/redeem` message for a decoded link, from the viewer's key. */
export async function inviteRedeemMessage(
  link: Pick<InviteLink, 'd' | 'secret'>,
  viewerKey: Uint8Array,
  name: string,
): Promise<{ t: 'invite/redeem'; id: string; proof: string; name: string }> {
  const n = inviteNameSchema.safeParse(name);
  if (!n.success) throw new ProtocolError('E_SCHEMA', `invite name: ${describeZod(n.error)}`);
  return {
    t: 'invite/redeem',
    id: await inviteId(link.secret),
    proof: await inviteProof(link.secret, viewerKey, link.d),
    name: n.data,
  };
}

// ------------------------------------------------------------------ the device's store file

/** Most closed invites (approved, denied, expired) a device keeps for the list. */
export const MAX_CLOSED_INVITES = 32;
/** Largest invites file (`<dataDir>/invites.json`) read. */
export const MAX_INVITES_FILE_BYTES = 512 * 1024;

const userKeyText = z.string().refine((s): boolean => isId('userKey', s), 'user key');

/** One invite as the device stores it. `expired` is never stored: it is an open invite past `exp`. */
export const storedInviteSchema = z
  .object({
    /** The owner-signed `acl/invite` envelope (re-verified on load). */
    env: z.record(z.string(), z.unknown()),
    state: z.enum(['open', 'requested', 'approved', 'denied']),
    /** When the device stored it. */
    t: time,
    /** The invitee's key and name, and when it redeemed. */
    sub: userKeyText.optional(),
    name: inviteNameSchema.optional(),
    at: time.optional(),
  })
  .strict()
  .refine(
    (i) => (i.sub === undefined) === (i.name === undefined) && (i.sub === undefined) === (i.at === undefined),
    'sub, name and at go together',
  )
  .refine(
    (i) => (i.state === 'open' ? i.sub === undefined : i.state === 'denied' || i.sub !== undefined),
    'the state and the invitee disagree',
  );
export type StoredInvite = z.infer<typeof storedInviteSchema>;

/** The device's invites file. */
export const invitesFileSchema = z
  .object({
    v: z.literal(1),
    invites: z.array(storedInviteSchema).max(MAX_OPEN_INVITES + MAX_CLOSED_INVITES),
  })
  .strict();
export type InvitesFile = z.infer<typeof invitesFileSchema>;

/**
 * Decode the device's invites file (shape only; the agent re-verifies each envelope). Raises
 * ProtocolError: E_TOO_LARGE, E_DECODE, E_SCHEMA (also for an ID twice).
 */
export function decodeInvitesFile(input: string | Uint8Array): InvitesFile {
  const r = invitesFileSchema.safeParse(parseJson(input, MAX_INVITES_FILE_BYTES));
  if (!r.success) throw new ProtocolError('E_SCHEMA', `invites file: ${describeZod(r.error)}`);
  const ids = r.data.invites.map((i) => (i.env.b as { id?: unknown } | undefined)?.id);
  if (new Set(ids).size !== ids.length) throw new ProtocolError('E_SCHEMA', 'invites file: an invite twice');
  return r.data;
}
