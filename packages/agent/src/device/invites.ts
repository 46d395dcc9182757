/**
 * The device's invites (household, issue 10; protocol: invite.ts and docs/protocol.md "Invites").
 *
 * - `invite/create {env}`: an owner's signed `acl/invite` is stored (at most 32 open), logged
 *   (`acl/invite`) and answered `invite/ok {id}`.
 * - `invite/redeem {id, proof, name}` from any key: the rate limits first (failed attempts per key
 *   and in all), then the ID and the proof together (one answer, `E_INVITE_UNKNOWN`, for an unknown
 *   ID and a wrong proof), then one-time (`E_INVITE_USED` for a second key) and expiry
 *   (`E_INVITE_EXPIRED`). A good redeem is persisted before the reply `invite/pending {id}`, and each
 *   owner with an open channel is told `invite/request {id, sub, name}`. It grants NOTHING: the key
 *   stays a stranger until an owner signs an `acl/update` with a grant for it.
 * - After every applied ACL update the agent calls {@link InviteStore.onAclApplied}: a request
 *   whose key now holds a grant is `approved`, logged, and the invitee (if connected) hears
 *   `invite/approved {id}`.
 * - `invite/list` and `invite/deny {id}`: owners only (others: `invite/error {code: 'E_NO_GRANT'}`).
 *
 * State: `<dataDir>/invites.json`, a private file (mode 0600, atomic writes), schema-checked and
 * every envelope re-verified on load: a damaged or altered file stops the start with an error that
 * names it. The device holds each invite's proof key (`pk`), never the link's secret.
 */
import { join } from 'node:path';
import {
  type Acl,
  ConfigError,
  checkInviteProof,
  type DeviceMessage,
  decodeId,
  decodeInvitesFile,
  type Envelope,
  fromB64u,
  HearthError,
  type InviteInfo,
  type InviteState,
  inviteInfoSchema,
  type LogEntry,
  logKeyHash,
  MAX_CLOSED_INVITES,
  MAX_INVITES_FILE_BYTES,
  MAX_INVITES_LISTED,
  MAX_MESSAGE_BYTES,
  MAX_OPEN_INVITES,
  TokenBucket,
  TokenBuckets,
  type VerifiedInvite,
  type ViewerMessage,
  verifyInvite,
} from '@hearth/protocol';
import { readPrivateFile, writePrivateFile } from './files.js';

/** The file's name in the data directory. */
export const INVITES_FILE = 'invites.json';

/** Where entries go in the device's access log (helper B's `AccessLog`); fire and forget. */
export interface InviteLogSink {
  append(entry: LogEntry): void;
}

/** Budgets of failed redeems (unknown ID or wrong proof). */
export interface InviteLimits {
  /** Failures one key may make in a row (default 5) … */
  perKeyBurst: number;
  /** … then one more every this many ms (default 60 000). */
  perKeyEveryMs: number;
  /** Failures all keys together may make in a row (default 60) … */
  totalBurst: number;
  /** … then one more every this many ms (default 1000). */
  totalEveryMs: number;
}
export const INVITE_LIMITS: InviteLimits = {
  perKeyBurst: 5,
  perKeyEveryMs: 60_000,
  totalBurst: 60,
  totalEveryMs: 1000,
};

/**
 * Checks the attack tests remove, one at a time, in their controls. TEST ONLY: not reachable from
 * the CLI or the config file.
 */
export type InviteCheck = 'owner' | 'proof' | 'one-time' | 'expiry' | 'rate-limit';

/** Options of {@link InviteStore.load}. */
export interface InviteStoreOptions {
  dataDir: string;
  deviceId: string;
  /** The device's ACL now (undefined while unpaired). */
  acl: () => Acl | undefined;
  /** Seal `m` to a viewer on its newest channel; false when it has none (not connected). */
  send: (to: string, m: DeviceMessage) => boolean;
  /** The clock (ms since the epoch): expiry, rate limits and the freshness of `acl/invite`. */
  now: () => number;
  /** The device's access log. */
  log?: InviteLogSink;
  limits?: Partial<InviteLimits>;
  /** TEST ONLY: skip these checks (the controls of the attack tests); read at each use. */
  unguardedForTests?: InviteCheck[];
}

interface Invite {
  id: string;
  env: Envelope;
  /** The owner who signed it. */
  by: string;
  exp: number;
  pk: Uint8Array;
  tmpl: VerifiedInvite['body']['tmpl'];
  label?: string;
  state: Exclude<InviteState, 'expired'>;
  t: number;
  sub?: string;
  name?: string;
  at?: number;
}

/**
 * A per-key and a total budget of failed redeems: token buckets (protocol bucket.ts), refilled one
 * failure per `…EveryMs`; an attempt is charged before its first await and given back when its
 * proof is good.
 */
class FailureBudget {
  private readonly total: TokenBucket;
  private readonly keys: TokenBuckets;
  constructor(l: InviteLimits, now: number) {
    this.total = new TokenBucket(1000 / l.totalEveryMs, l.totalBurst, now);
    this.keys = new TokenBuckets(1000 / l.perKeyEveryMs, l.perKeyBurst, 4096);
  }
  /** True when `key` (or everyone) has no failure left. */
  spent(key: string, now: number): boolean {
    return !this.total.ready(now) || !this.keys.get(key, now).ready(now);
  }
  charge(key: string, now: number): void {
    this.keys.take(key, now);
    this.total.take(now);
  }
  /** Give back a charge (the attempt turned out not to be a failure). */
  refund(key: string, now: number): void {
    this.keys.get(key, now).give();
    this.total.give();
  }
}

type InviteMessage = Extract<
  ViewerMessage,
  { t: 'invite/create' | 'invite/redeem' | 'invite/list' | 'invite/deny' }
>;

/** The device's invites: store, checks and messages. */
export class InviteStore {
  private readonly byId: Map<string, Invite>;
  private readonly budget: FailureBudget;
  /** A proof key for unknown IDs, so that an unknown ID costs the same work as a wrong proof. */
  private readonly dummyKey = globalThis.crypto.getRandomValues(new Uint8Array(32));

  private constructor(
    private readonly o: InviteStoreOptions,
    invites: Invite[],
  ) {
    this.byId = new Map(invites.map((i) => [i.id, i]));
    this.budget = new FailureBudget({ ...INVITE_LIMITS, ...o.limits }, o.now());
  }

  /** Path of the invites file. */
  static path(dataDir: string): string {
    return join(dataDir, INVITES_FILE);
  }

  /**
   * Load `<dataDir>/invites.json` (none: no invites). A file that is not private, not JSON, off the
   * schema, or holds an envelope that does not verify (altered) throws ConfigError naming the file.
   */
  static async load(o: InviteStoreOptions): Promise<InviteStore> {
    const path = InviteStore.path(o.dataDir);
    const raw = readPrivateFile(path, MAX_INVITES_FILE_BYTES);
    if (!raw) return new InviteStore(o, []);
    const invites: Invite[] = [];
    try {
      const file = decodeInvitesFile(new Uint8Array(raw));
      for (const s of file.invites) {
        // Signature and body only: who is an owner is checked when the invite is used.
        const v = await verifyInvite(s.env, {
          deviceId: o.deviceId,
          now: o.now(),
          isOwner: () => true,
          stored: true,
        });
        invites.push(toInvite(v, s));
      }
    } catch (e) {
      const why = e instanceof HearthError ? `${e.code}: ${e.message}` : String(e);
      throw new ConfigError('E_CONFIG', `${path} is not a valid invites file (${why})`, { cause: e });
    }
    return new InviteStore(o, invites);
  }

  /** The invites, as an owner would list them (newest first). */
  list(): InviteInfo[] {
    const now = this.o.now();
    return [...this.byId.values()].sort((a, b) => b.t - a.t).map((i) => info(i, now));
  }

  /** Handle an invite message from `from` (the key the server authenticated); `reply` seals the answer. */
  async onMessage(from: string, m: InviteMessage, reply: (m: DeviceMessage) => void): Promise<void> {
    switch (m.t) {
      case 'invite/create':
        return reply(await this.create(from, m.env));
      case 'invite/redeem':
        return reply(await this.redeem(from, m.id, m.proof, m.name));
      case 'invite/list':
        return reply(this.listFor(from));
      case 'invite/deny':
        return reply(this.deny(from, m.id));
    }
  }

  private guarded(c: InviteCheck): boolean {
    return !this.o.unguardedForTests?.includes(c);
  }

  private ownerOnly(from: string): boolean {
    return !this.guarded('owner') || this.o.acl()?.isOwner(from) === true;
  }

  private async create(from: string, raw: unknown): Promise<DeviceMessage> {
    if (!this.ownerOnly(from)) return { t: 'invite/error', code: 'E_NO_GRANT' };
    const now = this.o.now();
    let v: VerifiedInvite;
    try {
      v = await verifyInvite(raw, {
        deviceId: this.o.deviceId,
        now,
        isOwner: (k) => !this.guarded('owner') || this.o.acl()?.isOwner(k) === true,
      });
    } catch (e) {
      return { t: 'invite/error', code: e instanceof HearthError ? e.code : 'E_INTERNAL' };
    }
    const by = await logKeyHash(decodeId('userKey', v.by));
    // From here to the write, no await: one message at a time changes the store.
    if (this.byId.has(v.body.id)) return { t: 'invite/ok', id: v.body.id }; // a retry
    const open = [...this.byId.values()].filter((i) => isOpen(i, now)).length;
    if (open >= MAX_OPEN_INVITES) return { t: 'invite/error', code: 'E_RATE_LIMITED' };
    const before = new Map(this.byId);
    this.byId.set(v.body.id, toInvite(v, { state: 'open', t: now }));
    this.prune(now);
    try {
      this.save();
    } catch (e) {
      this.byId.clear();
      for (const [k, i] of before) this.byId.set(k, i);
      throw e;
    }
    this.o.log?.append({ v: 1, t: now, k: 'acl/invite', invite: v.body.id, by, exp: v.body.exp });
    return { t: 'invite/ok', id: v.body.id };
  }

  private async redeem(from: string, id: string, proof: string, name: string): Promise<DeviceMessage> {
    const now = this.o.now();
    if (this.guarded('rate-limit') && this.budget.spent(from, now))
      return { t: 'invite/error', code: 'E_RATE_LIMITED' };
    // Charged before the first await (so that attempts sent at once cannot all pass the check
    // above), given back if the proof is good.
    this.budget.charge(from, now);
    let viewerKey: Uint8Array;
    try {
      viewerKey = decodeId('userKey', from);
    } catch {
      return { t: 'invite/error', code: 'E_INVITE_UNKNOWN' };
    }
    const inv = this.byId.get(id);
    // The same work for an unknown ID and for a wrong proof, and the same answer.
    const good = await checkInviteProof(inv?.pk ?? this.dummyKey, proof, viewerKey, this.o.deviceId);
    const known = inv !== undefined && this.o.acl()?.isOwner(inv.by) === true;
    if (!known || (!good && this.guarded('proof'))) return { t: 'invite/error', code: 'E_INVITE_UNKNOWN' };
    this.budget.refund(from, now);
    const subject = await logKeyHash(viewerKey);
    const t = this.o.now();
    const entry = (result: 'pending' | 'used' | 'expired') =>
      this.o.log?.append({ v: 1, t, k: 'acl/request', invite: id, subject, result });
    // From here to the write, no await: of two keys redeeming at once, one wins.
    if (inv.sub === from) {
      // The same invitee again (its reply was lost): the same answer, nothing changes.
      if (inv.state === 'requested') return { t: 'invite/pending', id };
      if (inv.state === 'approved') return { t: 'invite/approved', id };
    }
    if (inv.state !== 'open' && this.guarded('one-time')) {
      entry('used');
      return { t: 'invite/error', code: 'E_INVITE_USED' };
    }
    if (t >= inv.exp && this.guarded('expiry')) {
      entry('expired');
      return { t: 'invite/error', code: 'E_INVITE_EXPIRED' };
    }
    inv.state = 'requested';
    inv.sub = from;
    inv.name = name;
    inv.at = t;
    try {
      this.save(); // one-time: persisted before the reply
    } catch (e) {
      inv.state = 'open';
      delete inv.sub;
      delete inv.name;
      delete inv.at;
      throw e;
    }
    entry('pending');
    const acl = this.o.acl();
    if (acl) for (const owner of acl.owners) this.o.send(owner, { t: 'invite/request', id, sub: from, name });
    return { t: 'invite/pending', id };
  }

  private listFor(from: string): DeviceMessage {
    if (!this.ownerOnly(from)) return { t: 'invite/error', code: 'E_NO_GRANT' };
    // Newest first, as many as fit in one message.
    const list: InviteInfo[] = [];
    let size = 64;
    let more = false;
    for (const i of this.list()) {
      const n = JSON.stringify(i).length + 1;
      if (list.length >= MAX_INVITES_LISTED || size + n > MAX_MESSAGE_BYTES - 1024) {
        more = true;
        break;
      }
      list.push(i);
      size += n;
    }
    return { t: 'invites', list, ...(more ? { more } : {}) };
  }

  private deny(from: string, id: string): DeviceMessage {
    if (!this.ownerOnly(from)) return { t: 'invite/error', code: 'E_NO_GRANT' };
    const inv = this.byId.get(id);
    if (!inv) return { t: 'invite/error', code: 'E_INVITE_UNKNOWN' };
    if (inv.state === 'approved') return { t: 'invite/error', code: 'E_INVITE_USED' };
    if (inv.state === 'denied') return { t: 'invite/ok', id };
    const sub = inv.sub;
    inv.state = 'denied';
    this.save();
    if (sub)
      void logKeyHash(decodeId('userKey', sub)).then((subject) =>
        this.o.log?.append({
          v: 1,
          t: this.o.now(),
          k: 'acl/request',
          invite: id,
          subject,
          result: 'denied',
        }),
      );
    return { t: 'invite/ok', id };
  }

  /**
   * Call after the agent applied an ACL update: every request whose key now holds a grant is
   * approved (persisted, logged) and its invitee, if connected, hears `invite/approved {id}`.
   * Returns the IDs approved.
   */
  async onAclApplied(acl: Acl): Promise<string[]> {
    const done: Invite[] = [];
    for (const i of this.byId.values())
      if (i.state === 'requested' && i.sub && acl.roleOf(i.sub) !== undefined) {
        i.state = 'approved';
        done.push(i);
      }
    if (done.length === 0) return [];
    this.save();
    const t = this.o.now();
    for (const i of done) {
      const sub = i.sub as string;
      this.o.send(sub, { t: 'invite/approved', id: i.id });
      const subject = await logKeyHash(decodeId('userKey', sub));
      this.o.log?.append({ v: 1, t, k: 'acl/request', invite: i.id, subject, result: 'approved' });
    }
    return done.map((i) => i.id);
  }

  /** Keep every open invite and the newest MAX_CLOSED_INVITES closed ones. */
  private prune(now: number): void {
    const closed = [...this.byId.values()].filter((i) => !isOpen(i, now)).sort((a, b) => b.t - a.t);
    for (const i of closed.slice(MAX_CLOSED_INVITES)) this.byId.delete(i.id);
  }

  private save(): void {
    const invites = [...this.byId.values()].map((i) => ({
      env: i.env,
      state: i.state,
      t: i.t,
      ...(i.sub !== undefined ? { sub: i.sub, name: i.name, at: i.at } : {}),
    }));
    writePrivateFile(InviteStore.path(this.o.dataDir), JSON.stringify({ v: 1, invites }));
  }
}

function isOpen(i: Invite, now: number): boolean {
  return i.state === 'requested' || (i.state === 'open' && now < i.exp);
}

function toInvite(
  v: VerifiedInvite,
  s: { state: Invite['state']; t: number; sub?: string; name?: string; at?: number },
): Invite {
  return {
    id: v.body.id,
    env: v.envelope,
    by: v.by,
    exp: v.body.exp,
    pk: fromB64u(v.body.pk, 32),
    tmpl: v.body.tmpl,
    ...(v.body.label !== undefined ? { label: v.body.label } : {}),
    state: s.state,
    t: s.t,
    ...(s.sub !== undefined ? { sub: s.sub, name: s.name, at: s.at } : {}),
  };
}

function info(i: Invite, now: number): InviteInfo {
  const state: InviteState = i.state === 'open' && now >= i.exp ? 'expired' : i.state;
  const out: InviteInfo = {
    id: i.id,
    exp: i.exp,
    state,
    tmpl: i.tmpl,
    ...(i.label !== undefined ? { label: i.label } : {}),
    ...(i.sub !== undefined ? { sub: i.sub } : {}),
    ...(i.name !== undefined ? { name: i.name } : {}),
  };
  return inviteInfoSchema.parse(out);
}
