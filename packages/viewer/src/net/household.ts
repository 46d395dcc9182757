/**
 * The household client: a typed request/reply API over the viewer's sealed channel to one device,
 * for the members, invite and log screens. Every message travels inside the sealed channel
 * (protocol channel.ts), so the server sees none of it: not the ACL, the invite labels, the log.
 *
 * | request (viewer → device)      | reply (device → viewer)                         |
 * |--------------------------------|-------------------------------------------------|
 * | `acl/get`                      | `acl {state}` · `acl/error {code}`              |
 * | `acl/update {env}`             | `acl/ok {ver}` · `acl/error {code}`             |
 * | `invite/create {env}`          | `invite/ok {id}` · `invite/error {code}`        |
 * | `invite/list`                  | `invites {list}` · `invite/error {code}`        |
 * | `invite/deny {id}`             | `invite/ok {id}` · `invite/error {code}`        |
 * | `invite/redeem {id,proof,name}`| `invite/pending {id}` · `invite/error {code}`   |
 * | `log/get {from, max?, wit?}`   | `log/update {cp,cons,start,entries,proofs,wcons?}` · `log/error {code}` (`logRequest`, for net/log.ts) |
 *
 * and two messages the device sends unasked: `invite/request {id, sub, name}` (to owners) and
 * `invite/approved {id}` (to the invitee). Messages carry no request ID: a reply answers the oldest
 * request to that device that it can answer (the device handles one viewer's messages in order).
 */
import {
  type AclState,
  type AclUpdateInput,
  type CryptoEnv,
  type Envelope,
  type Grant,
  type InviteInfo,
  type LogGet,
  type Role,
  type Signer,
  signAclUpdate,
  signGrant,
} from '@hearth/protocol';

// ------------------------------------------------------------------ shapes (protocol owns them)

export {
  type InviteBody,
  type InviteInfo,
  type InviteState,
  type InviteTemplate,
  SCOPES as SCOPES_V2,
  type SchedWindow,
  type Scope as ScopeV2,
} from '@hearth/protocol';
/** Roles as the screens show them (owners are the ACL's `owners` list, never a grant). */
export type RoleV2 = Role;
/** Body of a `grant` envelope (protocol grants.ts). */
export type GrantBody = Grant;
/** The ACL as `acl {state}` sends it (protocol grants.ts; the device sends version 2 only). */
export type AclStateV2 = AclState;
/** Body of an `acl/update` envelope (protocol grants.ts). */
export type AclUpdateBody = AclUpdateInput;

/** `invite/request`: someone redeemed an open invite and waits for an owner. */
export interface InviteRequest {
  id: string;
  sub: string;
  name: string;
}

// ------------------------------------------------------------------ the API

/** A refusal by the device (its code), a timeout (`E_TIMEOUT`) or no channel (`E_OFFLINE`). */
export class HouseholdError extends Error {
  constructor(readonly code: string) {
    super(code);
    this.name = 'HouseholdError';
  }
}

/** What the household screens ask of a device. Every method rejects with a {@link HouseholdError}. */
export interface HouseholdApi {
  /** `acl/get` → the ACL (owners only). */
  /** `rp`: the recovery key's proof (a stranger recovering a lost phone; owners send none). */
  getAcl(deviceId: string, rp?: Envelope): Promise<AclStateV2>;
  /** `household/erase {env}` (owner-signed, S8): resolves once the device said it is erasing itself. */
  eraseHousehold(deviceId: string, env: Envelope): Promise<void>;
  /** `acl/update {env}` → the version now in force. */
  updateAcl(deviceId: string, env: Envelope): Promise<number>;
  /** `invite/create {env}` → the invite's ID. */
  createInvite(deviceId: string, env: Envelope): Promise<string>;
  /** `invite/list` → the device's invites. */
  listInvites(deviceId: string): Promise<InviteInfo[]>;
  /** `invite/deny {id}`. */
  denyInvite(deviceId: string, id: string): Promise<void>;
  /** `invite/redeem {id, proof, name}` → resolves once the request is pending with the owner. */
  redeemInvite(deviceId: string, r: { id: string; proof: string; name: string }): Promise<void>;
  /** `invite/request` pushes (owner side); returns the unsubscribe. */
  onInviteRequest(f: (deviceId: string, r: InviteRequest) => void): () => void;
  /** `invite/approved` pushes (invitee side). */
  onInviteApproved(f: (deviceId: string, id: string) => void): () => void;
}

/** A message from the device, as the channel delivers it. */
export type DeviceMsg = { t: string; [k: string]: unknown };

interface Pending {
  replies: readonly string[];
  resolve(m: DeviceMsg): void;
  reject(e: HouseholdError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** How long a request waits for its reply (ms). */
export const HOUSEHOLD_TIMEOUT_MS = 15_000;

/**
 * {@link HouseholdApi} over the sealed channel: `send` is `ViewerChannels.send`, and the app feeds
 * every message a device sends to {@link ChannelHouseholdApi.handle} (true: it was ours).
 */
export class ChannelHouseholdApi implements HouseholdApi {
  private readonly pending = new Map<string, Pending[]>();
  private readonly requestFns = new Set<(d: string, r: InviteRequest) => void>();
  private readonly approvedFns = new Set<(d: string, id: string) => void>();

  constructor(
    private readonly send: (deviceId: string, m: DeviceMsg) => boolean,
    private readonly timeoutMs = HOUSEHOLD_TIMEOUT_MS,
  ) {}

  /** The message types this client consumes. */
  static readonly TYPES: ReadonlySet<string> = new Set([
    'acl',
    'acl/ok',
    'acl/error',
    'invite/ok',
    'invite/error',
    'invites',
    'invite/pending',
    'invite/request',
    'invite/approved',
    'log/update',
    'log/error',
    'household/erasing',
    'household/error',
  ]);

  /** Feed a device's message; true when it was a household message (a reply or a push). */
  handle(deviceId: string, m: DeviceMsg): boolean {
    if (!ChannelHouseholdApi.TYPES.has(m.t)) return false;
    if (m.t === 'invite/request') {
      const r = { id: String(m.id), sub: String(m.sub), name: String(m.name ?? '') };
      for (const f of this.requestFns) f(deviceId, r);
      return true;
    }
    if (m.t === 'invite/approved') {
      for (const f of this.approvedFns) f(deviceId, String(m.id));
      return true;
    }
    const q = this.pending.get(deviceId) ?? [];
    const i = q.findIndex((p) => p.replies.includes(m.t));
    if (i < 0) return true; // a late reply after a timeout: ours, but nobody waits
    const [p] = q.splice(i, 1);
    clearTimeout(p!.timer);
    if (m.t.endsWith('/error'))
      p!.reject(new HouseholdError(typeof m.code === 'string' ? m.code : 'E_INTERNAL'));
    else p!.resolve(m);
    return true;
  }

  /** Fail every request waiting on `deviceId` (its channel was reset: replies will not come). */
  drop(deviceId: string): void {
    for (const p of this.pending.get(deviceId) ?? []) {
      clearTimeout(p.timer);
      p.reject(new HouseholdError('E_OFFLINE'));
    }
    this.pending.delete(deviceId);
  }

  private request(deviceId: string, m: DeviceMsg, replies: readonly string[]): Promise<DeviceMsg> {
    return new Promise((resolve, reject) => {
      const q = this.pending.get(deviceId) ?? [];
      const p: Pending = {
        replies,
        resolve,
        reject,
        timer: setTimeout(() => {
          const at = q.indexOf(p);
          if (at >= 0) q.splice(at, 1);
          reject(new HouseholdError('E_TIMEOUT'));
        }, this.timeoutMs),
      };
      q.push(p);
      this.pending.set(deviceId, q);
      if (!this.send(deviceId, m)) {
        clearTimeout(p.timer);
        q.splice(q.indexOf(p), 1);
        reject(new HouseholdError('E_OFFLINE'));
      }
    });
  }

  async getAcl(deviceId: string, rp?: Envelope): Promise<AclStateV2> {
    const m = await this.request(deviceId, rp ? { t: 'acl/get', rp } : { t: 'acl/get' }, [
      'acl',
      'acl/error',
    ]);
    return m.state as AclStateV2;
  }

  async eraseHousehold(deviceId: string, env: Envelope): Promise<void> {
    await this.request(deviceId, { t: 'household/erase', env }, ['household/erasing', 'household/error']);
  }

  async updateAcl(deviceId: string, env: Envelope): Promise<number> {
    const m = await this.request(deviceId, { t: 'acl/update', env }, ['acl/ok', 'acl/error']);
    return m.ver as number;
  }

  async createInvite(deviceId: string, env: Envelope): Promise<string> {
    const m = await this.request(deviceId, { t: 'invite/create', env }, ['invite/ok', 'invite/error']);
    return m.id as string;
  }

  async listInvites(deviceId: string): Promise<InviteInfo[]> {
    const m = await this.request(deviceId, { t: 'invite/list' }, ['invites', 'invite/error']);
    return m.list as InviteInfo[];
  }

  async denyInvite(deviceId: string, id: string): Promise<void> {
    await this.request(deviceId, { t: 'invite/deny', id }, ['invite/ok', 'invite/error']);
  }

  async redeemInvite(deviceId: string, r: { id: string; proof: string; name: string }): Promise<void> {
    await this.request(deviceId, { t: 'invite/redeem', ...r }, ['invite/pending', 'invite/error']);
  }

  /**
   * `log/get` as the log client (net/log.ts) sends it, `wit` included: resolves to the device's
   * reply, `log/update`, or `log/error` with the code of a refusal, of no channel (`E_OFFLINE`) or
   * of no answer (`E_TIMEOUT`), which the log client reports as "unavailable".
   */
  async logRequest(deviceId: string, m: LogGet): Promise<unknown> {
    try {
      return await this.request(deviceId, { ...m }, ['log/update', 'log/error']);
    } catch (e) {
      if (e instanceof HouseholdError) return { t: 'log/error', code: e.code };
      throw e;
    }
  }

  onInviteRequest(f: (deviceId: string, r: InviteRequest) => void): () => void {
    this.requestFns.add(f);
    return () => this.requestFns.delete(f);
  }

  onInviteApproved(f: (deviceId: string, id: string) => void): () => void {
    this.approvedFns.add(f);
    return () => this.approvedFns.delete(f);
  }
}

// ------------------------------------------------------------------ signing (owner side)

/** Sign a grant body with an owner's key (protocol's strict schema: a bad body is refused here). */
export function signGrantV2(signer: Signer, g: GrantBody, env: CryptoEnv): Promise<Envelope> {
  return signGrant(signer, g, env);
}

/** Sign an ACL update body. */
export function signAclUpdateV2(signer: Signer, u: AclUpdateBody, env: CryptoEnv): Promise<Envelope> {
  return signAclUpdate(signer, u, env);
}
