/**
 * Grants and the ACL (threat model S6, S12): the device, not the server, decides who may do what.
 *
 * - The first viewer to pair becomes an **owner** (pairing.ts). An ACL has 1 to 8 owners, all equal:
 *   each has every scope on every camera and may sign any ACL update. Second owners are added
 *   (and an owner transferred: add B, remove A) by an update's `owners: {add, remove}`; there are
 *   no `role: 'owner'` grants (one list says who manages the ACL).
 * - An owner signs **grants**: `{d, sub, role, scopes, nbf, exp, serial}` plus the optional
 *   `cams`, `groups`, `sched`, `floor`, `label` (purpose `grant`).
 * - Owners change the ACL with signed **updates** (purpose `acl/update`): `{d, ver, add, revoke}`
 *   plus the optional `owners`, `recovery`, `groups`. `ver` must be exactly the device's current
 *   version + 1, so updates apply in order, once, and an old update can never be replayed to undo
 *   a revocation.
 * - The optional **recovery key** (a `huk_` key kept offline, e.g. printed) may sign only an
 *   update that replaces owners and/or sets a new recovery key (`E_RECOVERY_SCOPE` otherwise).
 * - {@link Acl.authorize} answers the one question: may this key do this, on this camera, now
 *   (in the device's time zone, for the schedules), on content made at `at` (the history floor)?
 */
import { z } from 'zod';
import { parseJson } from './canonical.js';
import type { CryptoEnv } from './crypto/env.js';
import type { Signer } from './crypto/primitives.js';
import { decodeEnvelope, describeZod, type Envelope, seal, verify } from './envelope.js';
import { AccessError, ProtocolError, VerificationError } from './errors.js';
import { decodeId, encodeId, isId, type UserKeyText } from './ids.js';

/** What a grant can allow. */
export const SCOPES = ['live', 'clips', 'snapshots', 'timeline', 'talk', 'ptz'] as const;
export type Scope = (typeof SCOPES)[number];
/**
 * Roles: `owner` (everything, manages the ACL: the ACL's `owners` list, never a grant), `member`
 * (household), `guest` (a member without history: nothing made before its grant began).
 */
export const ROLES = ['owner', 'member', 'guest'] as const;
export type Role = (typeof ROLES)[number];

/** Most grants an ACL holds, and most serials a single update may add or revoke. */
export const MAX_GRANTS = 256;
/** Most owners an ACL holds. */
export const MAX_OWNERS = 8;
/** Most camera groups an ACL holds. */
export const MAX_GROUPS = 32;
/** Most schedule windows in one grant. */
export const MAX_SCHED_WINDOWS = 8;
/** Longest grant label (characters). */
export const MAX_LABEL_CHARS = 64;

/** Camera and camera-group names. */
export const CAMERA_NAME_RE = /^[a-z0-9_-]{1,32}$/;

const userKeySchema = z.string().refine((s): boolean => isId('userKey', s), 'user key');
const deviceIdText = z.string().refine((s): boolean => isId('deviceId', s), 'device id');
const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const camName = z.string().regex(CAMERA_NAME_RE);
const groupName = z.string().regex(CAMERA_NAME_RE);
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/);

/** One schedule window: on `days` (0 = Sunday … 6), from `from` to `to` (local time, `to` excluded). */
export const schedWindowSchema = z
  .object({
    days: z.array(z.number().int().min(0).max(6)).min(1).max(7),
    from: hhmm,
    /** `to < from` crosses midnight (the part after midnight belongs to the day it started); `24:00` = end of day. */
    to: z.union([hhmm, z.literal('24:00')]),
  })
  .strict()
  .refine((w) => new Set(w.days).size === w.days.length, 'duplicate day')
  .refine((w) => w.from !== w.to, 'empty window (from = to)');
export type SchedWindow = z.infer<typeof schedWindowSchema>;

/** Body of a `grant` envelope. */
export const grantSchema = z
  .object({
    d: deviceIdText,
    sub: userKeySchema,
    role: z.enum(['member', 'guest']),
    scopes: z.array(z.enum(SCOPES)).min(1).max(SCOPES.length),
    /** Optional camera restriction; with `groups` absent too, every camera of the device. */
    cams: z.array(camName).max(64).optional(),
    /** Optional camera groups (names in the ACL's `groups` map). */
    groups: z.array(groupName).min(1).max(MAX_GROUPS).optional(),
    /** Optional weekly schedule, in the device's time zone; absent means always. */
    sched: z.array(schedWindowSchema).min(1).max(MAX_SCHED_WINDOWS).optional(),
    /** History floor (ms): nothing made before it is sealed for the subject. */
    floor: time.optional(),
    /** The owner's display name for the subject (travels only in the sealed channel). */
    label: z
      .string()
      .min(1)
      .max(MAX_LABEL_CHARS)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
      .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'control character')
      .optional(),
    nbf: time,
    exp: time.nullable(),
    serial: z
      .number()
      .int()
      .positive()
      .max(2 ** 31),
  })
  .strict()
  .refine((g) => new Set(g.scopes).size === g.scopes.length, 'duplicate scope')
  .refine((g) => g.exp === null || g.exp > g.nbf, 'exp must follow nbf')
  .refine((g) => !g.groups || new Set(g.groups).size === g.groups.length, 'duplicate group');
export type Grant = z.infer<typeof grantSchema>;

/** The ACL's camera groups: group name → camera names. */
export const groupsSchema = z
  .record(groupName, z.array(camName).max(64))
  .refine((g) => Object.keys(g).length <= MAX_GROUPS, `more than ${MAX_GROUPS} groups`);
export type Groups = Record<string, string[]>;

const ownersChangeSchema = z
  .object({
    add: z.array(userKeySchema).max(MAX_OWNERS).optional(),
    remove: z.array(userKeySchema).max(MAX_OWNERS).optional(),
  })
  .strict();

/** Body of an `acl/update` envelope. */
export const aclUpdateSchema = z
  .object({
    d: deviceIdText,
    ver: z
      .number()
      .int()
      .positive()
      .max(2 ** 31),
    /** New grants, each a full signed `grant` envelope (so it can also be shown to its subject). */
    add: z.array(z.unknown()).max(16),
    /** Serials to revoke. */
    revoke: z
      .array(
        z
          .number()
          .int()
          .positive()
          .max(2 ** 31),
      )
      .max(MAX_GRANTS),
    /** Owners to add and remove (remove first, then add). */
    owners: ownersChangeSchema.optional(),
    /** A new recovery key, or `null` to have none; absent: unchanged. */
    recovery: userKeySchema.nullable().optional(),
    /** The camera groups (replaces the whole map), or `null` for none; absent: unchanged. */
    groups: groupsSchema.nullable().optional(),
  })
  .strict();
export type AclUpdate = z.infer<typeof aclUpdateSchema>;

/** What an owner (or the recovery key) signs as an `acl/update`. */
export interface AclUpdateInput {
  d: string;
  ver: number;
  add: Envelope[];
  revoke: number[];
  owners?: { add?: string[]; remove?: string[] };
  recovery?: string | null;
  groups?: Groups | null;
}

/** Owner: sign a grant. */
export async function signGrant(owner: Signer, grant: Grant, env: CryptoEnv): Promise<Envelope> {
  const r = grantSchema.safeParse(grant);
  if (!r.success) throw new ProtocolError('E_SCHEMA', `grant: ${describeZod(r.error)}`);
  return seal(owner, 'user', 'grant', r.data as unknown as Record<string, unknown>, env);
}

/** Owner (or, for owner replacement only, the recovery key): sign an ACL update. */
export async function signAclUpdate(
  owner: Signer,
  update: AclUpdateInput,
  env: CryptoEnv,
): Promise<Envelope> {
  const body: Record<string, unknown> = {
    d: update.d,
    ver: update.ver,
    add: update.add as unknown as never[],
    revoke: update.revoke,
  };
  if (update.owners !== undefined) {
    const o: Record<string, string[]> = {};
    if (update.owners.add !== undefined) o.add = update.owners.add;
    if (update.owners.remove !== undefined) o.remove = update.owners.remove;
    body.owners = o;
  }
  if (update.recovery !== undefined) body.recovery = update.recovery;
  if (update.groups !== undefined) body.groups = update.groups;
  return seal(owner, 'user', 'acl/update', body, env);
}

/**
 * A lost-phone recovery starts with a stranger's `acl/get {rp}`: this proof, signed by the recovery
 * key, names the device and the asking viewer's key, so the device answers that one viewer the ACL
 * (its version and owners, which the recovery update must name) and no one else. 10 minutes fresh.
 */
export async function signRecoveryProof(
  recovery: Signer,
  p: { d: string; vk: string },
  env: CryptoEnv,
): Promise<Envelope> {
  return seal(recovery, 'user', 'acl/recover', { d: p.d, vk: p.vk }, env);
}

const recoveryProofSchema = z.object({ d: deviceIdText, vk: userKeySchema }).strict();

/**
 * An owner's request to erase the household (S8): the device erases its data on the server, then
 * everything local, and starts again as a new device. Fresh for 2 minutes; names the device.
 */
export async function signEraseRequest(owner: Signer, p: { d: string }, env: CryptoEnv): Promise<Envelope> {
  return seal(owner, 'user', 'device/erase', { d: p.d }, env);
}

const eraseRequestSchema = z.object({ d: deviceIdText }).strict();

/** Outcome of {@link Acl.authorize}. */
export type Decision = { allowed: true; role: Role; grant?: Grant } | { allowed: false; error: AccessError };

const stateCommon = {
  d: deviceIdText,
  ver: z.number().int().nonnegative(),
  grants: z.array(z.unknown()).max(MAX_GRANTS),
  revoked: z.array(z.number().int().positive()).max(4096),
  /** Keys whose grants were revoked (so a refusal can say "revoked" rather than "no grant"). */
  revokedKeys: z.array(userKeySchema).max(4096),
};

/** Persisted ACL state, version 2 (what the device stores, and what `acl` sends an owner). */
export const aclStateSchema = z
  .object({
    ...stateCommon,
    owners: z.array(userKeySchema).min(1).max(MAX_OWNERS),
    recovery: userKeySchema.optional(),
    groups: groupsSchema.optional(),
  })
  .strict()
  .refine((s) => new Set(s.owners).size === s.owners.length, 'duplicate owner')
  .refine((s) => s.recovery === undefined || !s.owners.includes(s.recovery), 'recovery key is an owner');
/** Persisted ACL state, version 1 (one owner); {@link Acl.load} converts it. */
export const aclStateV1Schema = z.object({ ...stateCommon, owner: userKeySchema }).strict();
export type AclState = {
  d: string;
  ver: number;
  owners: string[];
  grants: Envelope[];
  revoked: number[];
  revokedKeys: string[];
  recovery?: string;
  groups?: Groups;
};

/** Largest persisted ACL or update accepted. */
export const MAX_ACL_BYTES = 512 * 1024;

/** A defence of the ACL that a test may turn off (the controls of the attack tests). */
export type AclGuard = 'signer' | 'version' | 'recovery-scope' | 'last-owner' | 'schedule' | 'floor';

/** Options of {@link Acl.create} and {@link Acl.load}. */
export interface AclOptions {
  /** The device's IANA time zone, for grant schedules. Default `UTC`. */
  timeZone?: string;
  /**
   * TEST ONLY: defences turned off, so that each attack test's control can show the attack
   * succeeding without them. Never set by the agent; kept by apply() and withTimeZone().
   */
  unguardedForTests?: readonly AclGuard[];
}

/** What changed between two ACLs ({@link Acl.diff}), for the access log. */
export interface AclDiff {
  /** Subjects that had no grant and now have one. */
  granted: { sub: string; role: Role }[];
  /** Subjects whose grants changed (a re-grant: a serial revoked and/or another added). */
  changed: { sub: string; role: Role }[];
  /** Subjects that lost their last grant. */
  revoked: string[];
  ownersAdded: string[];
  ownersRemoved: string[];
  recoveryChanged: boolean;
  groupsChanged: boolean;
}

/** Is `tz` an IANA time zone this runtime knows? */
export function isTimeZone(tz: unknown): tz is string {
  if (typeof tz !== 'string' || tz.length === 0 || tz.length > 64) return false;
  try {
    localTime(0, tz);
    return true;
  } catch {
    return false;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/** Local weekday (0 = Sunday) and minute of the day of `ms` in `tz` (throws RangeError for an unknown zone). */
export function localTime(ms: number, tz: string): { day: number; minute: number } {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    if (formatters.size >= 64) formatters.clear();
    formatters.set(tz, f);
  }
  let day = -1;
  let hour = 0;
  let minute = 0;
  for (const p of f.formatToParts(ms)) {
    if (p.type === 'weekday') day = WEEKDAYS[p.value] ?? -1;
    else if (p.type === 'hour') hour = Number(p.value) % 24;
    else if (p.type === 'minute') minute = Number(p.value);
  }
  if (day < 0) throw new RangeError('weekday not found');
  return { day, minute: hour * 60 + minute };
}

const minutes = (t: string): number => Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5));

/** Is `now` inside one of `sched`'s windows, in `tz`? (No schedule: always.) */
export function inSchedule(sched: readonly SchedWindow[] | undefined, now: number, tz: string): boolean {
  if (!sched) return true;
  const { day, minute } = localTime(now, tz);
  const yesterday = (day + 6) % 7;
  for (const w of sched) {
    const from = minutes(w.from);
    const to = minutes(w.to);
    if (from < to) {
      if (w.days.includes(day) && minute >= from && minute < to) return true;
    } else if ((w.days.includes(day) && minute >= from) || (w.days.includes(yesterday) && minute < to)) {
      return true;
    }
  }
  return false;
}

/** Scopes a grant made before `snapshots` and `timeline` existed gets with `clips`. */
const CLIPS_IMPLIES: readonly Scope[] = ['snapshots', 'timeline'];

/**
 * Does `g` name `scope`? A grant that names neither `snapshots` nor `timeline` (every grant made
 * before they existed) has them with `clips`, as before: one scope then covered all three blobs.
 */
export function grantHasScope(g: Grant, scope: Scope): boolean {
  if (g.scopes.includes(scope)) return true;
  return (
    CLIPS_IMPLIES.includes(scope) &&
    g.scopes.includes('clips') &&
    !g.scopes.some((s) => CLIPS_IMPLIES.includes(s))
  );
}

/** The history floor of a grant: `floor`; for a guest at least `nbf` (a guest has no history). */
export function effectiveFloor(g: Grant): number | undefined {
  if (g.role === 'guest') return Math.max(g.floor ?? g.nbf, g.nbf);
  return g.floor;
}

function keyText(key: Uint8Array | string): string | undefined {
  try {
    return typeof key === 'string' ? encodeId('userKey', decodeId('userKey', key)) : encodeId('userKey', key);
  } catch {
    return undefined;
  }
}

function checkTimeZone(tz: string): string {
  if (!isTimeZone(tz)) throw new ProtocolError('E_SCHEMA', 'time zone: not an IANA time zone');
  return tz;
}

/** The device's access-control list. Immutable: {@link Acl.apply} returns a new one. */
export class Acl {
  private constructor(
    readonly state: Readonly<AclState>,
    private readonly grants: ReadonlyMap<number, Grant>,
    /** The device's time zone (grant schedules). */
    readonly timeZone: string,
    private readonly off: ReadonlySet<AclGuard> = new Set(),
  ) {}

  /** A fresh ACL after the first pairing: one owner, no grants, version 0. */
  static create(deviceId: string, ownerKey: Uint8Array, o: AclOptions = {}): Acl {
    return new Acl(
      {
        d: deviceId,
        ver: 0,
        owners: [encodeId('userKey', ownerKey)],
        grants: [],
        revoked: [],
        revokedKeys: [],
      },
      new Map(),
      checkTimeZone(o.timeZone ?? 'UTC'),
      new Set(o.unguardedForTests ?? []),
    );
  }

  /**
   * Load persisted state (version 2, or version 1 `{owner}`, converted). Every grant envelope's
   * signature is checked again (a tampered grant is refused, not trusted); grants signed by an
   * owner since removed stay valid (the household keeps its grants across an owner transfer).
   */
  static async load(input: string | Uint8Array, now: number, o: AclOptions = {}): Promise<Acl> {
    const tz = checkTimeZone(o.timeZone ?? 'UTC');
    const raw = parseJson(input, MAX_ACL_BYTES) as Record<string, unknown> | null;
    let st: Omit<AclState, 'grants'> & { grants: unknown[] };
    if (raw !== null && typeof raw === 'object' && !Array.isArray(raw) && 'owner' in raw) {
      const r = aclStateV1Schema.safeParse(raw);
      if (!r.success) throw new ProtocolError('E_SCHEMA', `acl state (v1): ${describeZod(r.error)}`);
      const { owner, ...rest } = r.data;
      st = { ...rest, owners: [owner] };
    } else {
      const r = aclStateSchema.safeParse(raw);
      if (!r.success) throw new ProtocolError('E_SCHEMA', `acl state: ${describeZod(r.error)}`);
      st = r.data as typeof st;
    }
    const grants = new Map<number, Grant>();
    const envs: Envelope[] = [];
    for (const rawGrant of st.grants) {
      const e = decodeEnvelope(rawGrant);
      const issuer = keyText(e.k);
      if (!issuer) throw new VerificationError('E_WRONG_SIGNER', 'grant is not signed by a user key');
      const g = await verifyGrant(e, [issuer], st.d, now, true);
      if (grants.has(g.serial)) throw new ProtocolError('E_SCHEMA', `acl state: serial ${g.serial} twice`);
      grants.set(g.serial, g);
      envs.push(e);
    }
    return new Acl({ ...st, grants: envs }, grants, tz, new Set(o.unguardedForTests ?? []));
  }

  /** The same ACL evaluated in another time zone (IANA name). */
  withTimeZone(tz: string): Acl {
    return new Acl(this.state, this.grants, checkTimeZone(tz), this.off);
  }

  /** Serialise for storage (always version 2). */
  toJSON(): AclState {
    const s = this.state;
    return {
      d: s.d,
      ver: s.ver,
      owners: [...s.owners],
      grants: [...s.grants],
      revoked: [...s.revoked],
      revokedKeys: [...s.revokedKeys],
      ...(s.recovery !== undefined ? { recovery: s.recovery } : {}),
      ...(s.groups !== undefined
        ? { groups: Object.fromEntries(Object.entries(s.groups).map(([k, v]) => [k, [...v]])) }
        : {}),
    };
  }

  /** The owners' key texts (`huk_…`), oldest first. */
  get owners(): string[] {
    return [...this.state.owners];
  }

  /** @deprecated an ACL has 1..8 owners: use {@link Acl.owners} / {@link Acl.isOwner}. The first owner's raw key. */
  get ownerKey(): Uint8Array {
    return decodeId('userKey', this.state.owners[0] as string);
  }

  /** The recovery key's text, if one is set. */
  get recoveryKey(): string | undefined {
    return this.state.recovery;
  }

  /** Is `key` (raw bytes or `huk_` text) an owner? */
  isOwner(key: Uint8Array | string): boolean {
    const t = keyText(key);
    return t !== undefined && this.state.owners.includes(t);
  }

  /** Live grants (not revoked), by serial. */
  get activeGrants(): Grant[] {
    return [...this.grants.values()];
  }

  /** The live (not revoked) grants of `key`, expired or not. */
  grantsOf(key: Uint8Array | string): Grant[] {
    const t = keyText(key);
    return t === undefined ? [] : this.activeGrants.filter((g) => g.sub === t);
  }

  /** `owner`, else the role of `key`'s live grants (`member` over `guest`), else undefined. */
  roleOf(key: Uint8Array | string): Role | undefined {
    if (this.isOwner(key)) return 'owner';
    const gs = this.grantsOf(key);
    if (gs.some((g) => g.role === 'member')) return 'member';
    return gs.length ? 'guest' : undefined;
  }

  /** The cameras of a group (empty for an unknown one). */
  group(name: string): readonly string[] {
    return this.state.groups && Object.hasOwn(this.state.groups, name) ? (this.state.groups[name] ?? []) : [];
  }

  /** Does `g` cover `camera`? (No `cams` and no `groups`: every camera.) */
  covers(g: Grant, camera: string): boolean {
    if (!g.cams && !g.groups) return true;
    if (g.cams?.includes(camera)) return true;
    return (g.groups ?? []).some((n) => this.group(n).includes(camera));
  }

  /**
   * Is `e` the recovery key's proof ({@link signRecoveryProof}) for this device and the viewer
   * `from`? E_WRONG_SIGNER when the ACL has no recovery key or another key signed it.
   */
  async checkRecoveryProof(e: Envelope, from: string, now: number): Promise<void> {
    const rk = this.state.recovery;
    if (rk === undefined || keyText(e.k) !== rk)
      throw new VerificationError('E_WRONG_SIGNER', 'not signed by the recovery key');
    const r = await verify(e, {
      purpose: 'acl/recover',
      signerKind: 'user',
      expectedSigner: decodeId('userKey', rk),
      body: recoveryProofSchema,
      now,
      maxAgeMs: 10 * 60_000,
      maxFutureMs: 60_000,
    });
    if (!r.ok) throw r.error;
    if (r.body.d !== this.state.d || r.body.vk !== from)
      throw new VerificationError('E_BAD_BINDING', 'recovery proof is for another device or viewer');
  }

  /**
   * Is `e` a current owner's fresh request to erase this device ({@link signEraseRequest})?
   * E_WRONG_SIGNER for anyone else, E_BAD_BINDING for another device, E_STALE when old.
   */
  async checkEraseRequest(e: Envelope, now: number): Promise<void> {
    const signer = keyText(e.k);
    if (signer === undefined || !this.state.owners.includes(signer))
      throw new VerificationError('E_WRONG_SIGNER', 'an erase request must be signed by an owner');
    const r = await verify(e, {
      purpose: 'device/erase',
      signerKind: 'user',
      expectedSigner: decodeId('userKey', signer),
      body: eraseRequestSchema,
      now,
      maxAgeMs: 2 * 60_000,
      maxFutureMs: 30_000,
    });
    if (!r.ok) throw r.error;
    if (r.body.d !== this.state.d)
      throw new VerificationError('E_BAD_BINDING', 'erase request is for another device');
  }

  /**
   * Apply a signed update. The signer must be a current owner (any update) or the recovery key
   * (only owner replacement and a new recovery key: E_RECOVERY_SCOPE); anyone else is
   * E_WRONG_SIGNER. Also refuses an update for another device (E_BAD_BINDING), out of order
   * (E_STALE_ACL), that would leave no owner (E_LAST_OWNER) or more than 8, or with an invalid
   * grant inside (each must be signed by a current owner).
   */
  async apply(e: Envelope, now: number): Promise<Acl> {
    const signer = keyText(e.k);
    const byOwner = signer !== undefined && (this.state.owners.includes(signer) || this.off.has('signer'));
    const byRecovery = !byOwner && signer !== undefined && signer === this.state.recovery;
    if (!byOwner && !byRecovery)
      throw new VerificationError(
        'E_WRONG_SIGNER',
        'ACL update is not signed by an owner or the recovery key',
      );
    const r = await verify(e, {
      purpose: 'acl/update',
      signerKind: 'user',
      expectedSigner: decodeId('userKey', signer as string),
      body: aclUpdateSchema,
      now,
      maxAgeMs: 10 * 60_000,
      maxFutureMs: 60_000,
    });
    if (!r.ok) throw r.error;
    const u = r.body;
    if (u.d !== this.state.d)
      throw new VerificationError('E_BAD_BINDING', 'ACL update is for another device');
    if (u.ver !== this.state.ver + 1 && !this.off.has('version'))
      throw new AccessError('E_STALE_ACL', `ACL update version ${u.ver}, device is at ${this.state.ver}`);
    if (
      !this.off.has('recovery-scope') &&
      byRecovery &&
      (u.add.length > 0 || u.revoke.length > 0 || u.groups !== undefined)
    )
      throw new AccessError(
        'E_RECOVERY_SCOPE',
        'the recovery key may only replace owners and set a new recovery key',
      );
    // Owners: remove, then add (in that order, so that "add B, remove A" is a transfer).
    const remove = new Set(u.owners?.remove ?? []);
    const owners = this.state.owners.filter((k) => !remove.has(k));
    for (const k of u.owners?.add ?? []) if (!owners.includes(k)) owners.push(k);
    if (owners.length === 0 && !this.off.has('last-owner'))
      throw new AccessError('E_LAST_OWNER', 'the ACL must keep at least one owner');
    if (owners.length > MAX_OWNERS)
      throw new ProtocolError('E_SCHEMA', `ACL would have more than ${MAX_OWNERS} owners`);
    const recovery = u.recovery === undefined ? this.state.recovery : (u.recovery ?? undefined);
    if (recovery !== undefined && owners.includes(recovery))
      throw new ProtocolError('E_SCHEMA', 'the recovery key cannot also be an owner');
    const groups = u.groups === undefined ? this.state.groups : (u.groups ?? undefined);

    const grants = new Map(this.grants);
    const envs = new Map<number, Envelope>();
    for (const ge of this.state.grants) envs.set((ge.b as { serial: number }).serial, ge);
    const revoked = new Set(this.state.revoked);
    const revokedKeys = new Set(this.state.revokedKeys);
    for (const s of u.revoke) {
      revoked.add(s);
      const gone = grants.get(s);
      if (gone) revokedKeys.add(gone.sub);
      grants.delete(s);
      envs.delete(s);
    }
    for (const raw of u.add) {
      const ge = decodeEnvelope(raw);
      // Signed by an owner of the ACL the update applies to (not by one it adds).
      const issuers = this.off.has('signer') ? [ge.k] : this.state.owners;
      const g = await verifyGrant(ge, issuers, this.state.d, now, true);
      if (revoked.has(g.serial))
        throw new AccessError('E_GRANT_REVOKED', `grant serial ${g.serial} was revoked and cannot be reused`);
      if (grants.has(g.serial))
        throw new ProtocolError('E_SCHEMA', `grant serial ${g.serial} already in use`);
      grants.set(g.serial, g);
      envs.set(g.serial, ge);
      revokedKeys.delete(g.sub);
    }
    if (grants.size > MAX_GRANTS)
      throw new ProtocolError('E_SCHEMA', `ACL would hold more than ${MAX_GRANTS} grants`);
    return new Acl(
      {
        d: this.state.d,
        ver: u.ver,
        owners,
        grants: [...envs.values()],
        revoked: [...revoked].sort((a, b) => a - b),
        revokedKeys: [...revokedKeys].slice(-4096),
        ...(recovery !== undefined ? { recovery } : {}),
        ...(groups !== undefined ? { groups } : {}),
      },
      grants,
      this.timeZone,
      this.off,
    );
  }

  /** Keys that hold access now but not after `next` replaces this ACL (to close their sessions). */
  dropped(next: Acl, now: number): string[] {
    const after = new Set(next.holders(now));
    return this.holders(now).filter((k) => !after.has(k));
  }

  /** What `next` changes compared with this ACL (for the access log). */
  diff(next: Acl): AclDiff {
    const before = new Map<string, Grant[]>();
    const after = new Map<string, Grant[]>();
    for (const g of this.grants.values()) before.set(g.sub, [...(before.get(g.sub) ?? []), g]);
    for (const g of next.grants.values()) after.set(g.sub, [...(after.get(g.sub) ?? []), g]);
    const granted: AclDiff['granted'] = [];
    const changed: AclDiff['changed'] = [];
    const revoked: string[] = [];
    const role = (gs: Grant[]): Role => (gs.some((g) => g.role === 'member') ? 'member' : 'guest');
    const subs = [...new Set([...before.keys(), ...after.keys()])].sort();
    for (const sub of subs) {
      const b = before.get(sub) ?? [];
      const a = after.get(sub) ?? [];
      const bs = new Set(b.map((g) => g.serial));
      const as = new Set(a.map((g) => g.serial));
      const same = bs.size === as.size && [...bs].every((s) => as.has(s));
      if (same) continue;
      if (b.length === 0) granted.push({ sub, role: role(a) });
      else if (a.length === 0) revoked.push(sub);
      else changed.push({ sub, role: role(a) });
    }
    const ownersAdded = next.state.owners.filter((k) => !this.state.owners.includes(k));
    const ownersRemoved = this.state.owners.filter((k) => !next.state.owners.includes(k));
    const groupsText = (a: Acl) => JSON.stringify(a.state.groups ?? null);
    return {
      granted,
      changed,
      revoked,
      ownersAdded,
      ownersRemoved,
      recoveryChanged: this.state.recovery !== next.state.recovery,
      groupsChanged: groupsText(this) !== groupsText(next),
    };
  }

  /** The keys that hold a grant at `now`: the owners, then every member whose grant is in time. */
  holders(now: number): string[] {
    const subs = this.activeGrants.filter((g) => inTime(g, now)).map((g) => g.sub);
    return [...new Set([...this.state.owners, ...subs])];
  }

  /**
   * May `key` (raw bytes or `huk_` text) do `scope` on `camera` at time `now` (schedules in the
   * device's time zone), on content made at `opts.at` (the history floor; give it whenever the
   * answer is about sealing a clip, snapshot or event)?
   */
  authorize(
    key: Uint8Array | string,
    scope: Scope,
    now: number,
    camera?: string,
    opts: { at?: number } = {},
  ): Decision {
    const text = keyText(key);
    if (text === undefined) return { allowed: false, error: new AccessError('E_NO_GRANT', 'not a user key') };
    if (this.state.owners.includes(text)) return { allowed: true, role: 'owner' };
    let best: AccessError = new AccessError('E_NO_GRANT');
    for (const g of this.grants.values()) {
      if (g.sub !== text) continue;
      if (now < g.nbf) {
        best = new AccessError('E_GRANT_NOT_YET_VALID');
        continue;
      }
      if (g.exp !== null && now >= g.exp) {
        best = new AccessError('E_GRANT_EXPIRED');
        continue;
      }
      if (!grantHasScope(g, scope) || (camera !== undefined && !this.covers(g, camera))) {
        best = new AccessError('E_SCOPE', `grant does not cover ${scope}${camera ? ` on ${camera}` : ''}`);
        continue;
      }
      if (!this.off.has('schedule') && !inSchedule(g.sched, now, this.timeZone)) {
        best = new AccessError('E_OUTSIDE_SCHEDULE', `outside the grant's hours (${this.timeZone})`);
        continue;
      }
      const floor = effectiveFloor(g);
      if (opts.at !== undefined && floor !== undefined && opts.at < floor && !this.off.has('floor')) {
        best = new AccessError('E_HISTORY_FLOOR', 'made before the grant lets its holder see');
        continue;
      }
      return { allowed: true, role: g.role, grant: g };
    }
    if (best.code === 'E_NO_GRANT' && this.state.revokedKeys.includes(text))
      best = new AccessError('E_GRANT_REVOKED');
    return { allowed: false, error: best };
  }
}

function inTime(g: Grant, now: number): boolean {
  return now >= g.nbf && (g.exp === null || now < g.exp);
}

/**
 * Verify a grant envelope: signed by `issuers` (one owner key, or any of a list of raw keys or
 * `huk_` texts; another signer is E_WRONG_SIGNER), for this device. Grant envelopes have no
 * freshness window (they are long-lived statements); replay is prevented by the ACL version and
 * serials instead. `allowExpired` keeps expired grants loadable (authorize() refuses them).
 */
export async function verifyGrant(
  e: Envelope,
  issuers: Uint8Array | readonly (Uint8Array | string)[],
  deviceId: string,
  now: number,
  allowExpired = false,
): Promise<Grant> {
  const list = issuers instanceof Uint8Array ? [issuers] : issuers;
  const allowed = new Set(list.map((k) => keyText(k)).filter((k): k is string => k !== undefined));
  const signer = keyText(e.k);
  if (signer === undefined || !allowed.has(signer))
    throw new VerificationError('E_WRONG_SIGNER', 'grant is not signed by an owner');
  const r = await verify(e, {
    purpose: 'grant',
    signerKind: 'user',
    expectedSigner: decodeId('userKey', signer),
    body: grantSchema,
    now: e.t, // a grant's own timestamp is checked below against nbf/exp, not a short window
  });
  if (!r.ok) throw r.error;
  const g = r.body as Grant;
  if (g.d !== deviceId) throw new VerificationError('E_BAD_BINDING', 'grant is for another device');
  if (!allowExpired && g.exp !== null && now >= g.exp) throw new AccessError('E_GRANT_EXPIRED');
  return g;
}

/** Text of a user key, for building grants. */
export function userKeyText(key: Uint8Array): UserKeyText {
  return encodeId('userKey', key);
}
