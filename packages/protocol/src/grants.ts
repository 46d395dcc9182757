/**
 * Grants and the ACL (threat model S6, S12): the device, not the server, decides who may do what.
 *
 * - The first viewer to pair becomes the **owner** (pairing.ts); the owner has every scope.
 * - The owner signs **grants**: `{d, sub, role, scopes, nbf, exp, serial}` (purpose `grant`).
 * - The owner changes the ACL with signed **updates** (purpose `acl/update`): `{d, ver, add,
 *   revoke}`. `ver` must be exactly the device's current version + 1, so updates apply in order,
 *   once, and an old update can never be replayed to undo a revocation.
 * - {@link Acl.authorize} answers the one question: may this key do this, on this camera, now?
 */
import { z } from 'zod';
import { parseJson } from './canonical.js';
import type { CryptoEnv } from './crypto/env.js';
import type { Signer } from './crypto/primitives.js';
import { decodeEnvelope, describeZod, type Envelope, seal, verify } from './envelope.js';
import { AccessError, ProtocolError, VerificationError } from './errors.js';
import { decodeId, encodeId, isId, type UserKeyText } from './ids.js';

/** What a grant can allow. */
export const SCOPES = ['live', 'clips', 'talk', 'ptz'] as const;
export type Scope = (typeof SCOPES)[number];
/** Roles: `owner` (everything, manages the ACL), `member` (household), `guest` (time-limited). */
export const ROLES = ['owner', 'member', 'guest'] as const;
export type Role = (typeof ROLES)[number];

/** Most grants an ACL holds, and most serials a single update may add or revoke. */
export const MAX_GRANTS = 256;

const userKeySchema = z.string().refine((s): boolean => isId('userKey', s), 'user key');
const deviceIdText = z.string().refine((s): boolean => isId('deviceId', s), 'device id');
const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** Body of a `grant` envelope. */
export const grantSchema = z
  .object({
    d: deviceIdText,
    sub: userKeySchema,
    role: z.enum(['member', 'guest']),
    scopes: z.array(z.enum(SCOPES)).min(1).max(SCOPES.length),
    /** Optional camera restriction; absent means every camera of the device. */
    cams: z
      .array(z.string().regex(/^[a-z0-9_-]{1,32}$/))
      .max(64)
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
  .refine((g) => g.exp === null || g.exp > g.nbf, 'exp must follow nbf');
export type Grant = z.infer<typeof grantSchema>;

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
  })
  .strict();
export type AclUpdate = z.infer<typeof aclUpdateSchema>;

/** Owner: sign a grant. */
export async function signGrant(owner: Signer, grant: Grant, env: CryptoEnv): Promise<Envelope> {
  const r = grantSchema.safeParse(grant);
  if (!r.success) throw new ProtocolError('E_SCHEMA', `grant: ${describeZod(r.error)}`);
  return seal(owner, 'user', 'grant', r.data as unknown as Record<string, unknown>, env);
}

/** Owner: sign an ACL update. */
export async function signAclUpdate(
  owner: Signer,
  update: { d: string; ver: number; add: Envelope[]; revoke: number[] },
  env: CryptoEnv,
): Promise<Envelope> {
  return seal(
    owner,
    'user',
    'acl/update',
    { d: update.d, ver: update.ver, add: update.add as unknown as never[], revoke: update.revoke },
    env,
  );
}

/** Outcome of {@link Acl.authorize}. */
export type Decision = { allowed: true; role: Role; grant?: Grant } | { allowed: false; error: AccessError };

/** Persisted ACL state (what the device stores). */
export const aclStateSchema = z
  .object({
    d: deviceIdText,
    ver: z.number().int().nonnegative(),
    owner: userKeySchema,
    grants: z.array(z.unknown()).max(MAX_GRANTS),
    revoked: z.array(z.number().int().positive()).max(4096),
    /** Keys whose grants were revoked (so a refusal can say "revoked" rather than "no grant"). */
    revokedKeys: z.array(userKeySchema).max(4096),
  })
  .strict();
export type AclState = {
  d: string;
  ver: number;
  owner: string;
  grants: Envelope[];
  revoked: number[];
  revokedKeys: string[];
};

/** Largest persisted ACL or update accepted. */
export const MAX_ACL_BYTES = 512 * 1024;

/** The device's access-control list. Immutable: {@link Acl.apply} returns a new one. */
export class Acl {
  private constructor(
    readonly state: Readonly<AclState>,
    private readonly grants: ReadonlyMap<number, Grant>,
  ) {}

  /** A fresh ACL after the first pairing: one owner, no grants, version 0. */
  static create(deviceId: string, ownerKey: Uint8Array): Acl {
    return new Acl(
      { d: deviceId, ver: 0, owner: encodeId('userKey', ownerKey), grants: [], revoked: [], revokedKeys: [] },
      new Map(),
    );
  }

  /**
   * Load persisted state. Grant envelopes are re-verified against the owner key (a tampered
   * state file is refused, not trusted).
   */
  static async load(input: string | Uint8Array, now: number): Promise<Acl> {
    const r = aclStateSchema.safeParse(parseJson(input, MAX_ACL_BYTES));
    if (!r.success) throw new ProtocolError('E_SCHEMA', `acl state: ${describeZod(r.error)}`);
    const owner = decodeId('userKey', r.data.owner);
    const grants = new Map<number, Grant>();
    const envs: Envelope[] = [];
    for (const raw of r.data.grants) {
      const e = decodeEnvelope(raw);
      const g = await verifyGrant(e, owner, r.data.d, now, true);
      grants.set(g.serial, g);
      envs.push(e);
    }
    return new Acl({ ...r.data, grants: envs }, grants);
  }

  /** Serialise for storage. */
  toJSON(): AclState {
    return {
      ...this.state,
      grants: [...this.state.grants],
      revoked: [...this.state.revoked],
      revokedKeys: [...this.state.revokedKeys],
    };
  }

  /** The owner's raw public key. */
  get ownerKey(): Uint8Array {
    return decodeId('userKey', this.state.owner);
  }

  /** Live grants (not revoked), by serial. */
  get activeGrants(): Grant[] {
    return [...this.grants.values()];
  }

  /**
   * Apply an owner-signed update. Refuses anything not signed by the owner
   * (VerificationError), for another device (E_BAD_BINDING), out of order (AccessError
   * E_STALE_ACL), or with an invalid grant inside.
   */
  async apply(e: Envelope, now: number): Promise<Acl> {
    const r = await verify(e, {
      purpose: 'acl/update',
      signerKind: 'user',
      expectedSigner: this.ownerKey,
      body: aclUpdateSchema,
      now,
      maxAgeMs: 10 * 60_000,
      maxFutureMs: 60_000,
    });
    if (!r.ok) throw r.error;
    const u = r.body;
    if (u.d !== this.state.d)
      throw new VerificationError('E_BAD_BINDING', 'ACL update is for another device');
    if (u.ver !== this.state.ver + 1)
      throw new AccessError('E_STALE_ACL', `ACL update version ${u.ver}, device is at ${this.state.ver}`);
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
      const g = await verifyGrant(ge, this.ownerKey, this.state.d, now, true);
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
        owner: this.state.owner,
        grants: [...envs.values()],
        revoked: [...revoked].sort((a, b) => a - b),
        revokedKeys: [...revokedKeys].slice(-4096),
      },
      grants,
    );
  }

  /** Keys that no longer hold any grant after `next` replaces this ACL (to close their sessions). */
  dropped(next: Acl, now: number): string[] {
    const before = new Set(this.activeGrants.filter((g) => inTime(g, now)).map((g) => g.sub));
    const after = new Set(next.activeGrants.filter((g) => inTime(g, now)).map((g) => g.sub));
    return [...before].filter((k) => !after.has(k) && k !== next.state.owner);
  }

  /** The keys that hold a grant at `now`: the owner, then every member whose grant is in time. */
  holders(now: number): string[] {
    const subs = this.activeGrants.filter((g) => inTime(g, now)).map((g) => g.sub);
    return [...new Set([this.state.owner, ...subs])];
  }

  /** May `key` (raw bytes or `huk_` text) do `scope` on `camera` at time `now`? */
  authorize(key: Uint8Array | string, scope: Scope, now: number, camera?: string): Decision {
    let text: string;
    try {
      if (typeof key === 'string') {
        decodeId('userKey', key);
        text = key;
      } else {
        text = encodeId('userKey', key);
      }
    } catch {
      return { allowed: false, error: new AccessError('E_NO_GRANT', 'not a user key') };
    }
    if (text === this.state.owner) return { allowed: true, role: 'owner' };
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
      if (!g.scopes.includes(scope) || (camera !== undefined && g.cams && !g.cams.includes(camera))) {
        best = new AccessError('E_SCOPE', `grant does not cover ${scope}${camera ? ` on ${camera}` : ''}`);
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
 * Verify a grant envelope against the owner's key and the device. Grant envelopes have no
 * freshness window (they are long-lived statements); replay is prevented by the ACL version and
 * serials instead. `allowExpired` keeps expired grants loadable (authorize() refuses them).
 */
export async function verifyGrant(
  e: Envelope,
  ownerKey: Uint8Array,
  deviceId: string,
  now: number,
  allowExpired = false,
): Promise<Grant> {
  const r = await verify(e, {
    purpose: 'grant',
    signerKind: 'user',
    expectedSigner: ownerKey,
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
