/**
 * PairingGuard: the device's pairing window and attempt budget (threat model S2, F10).
 *
 * - The window is open only after {@link PairingGuard.open}: on first start while the device has no
 *   owner, or when the owner or a physical action on the device re-opens it. It closes by itself after
 *   `windowMs` (default 10 minutes) and after the first successful pairing.
 * - Each method has its own budget (defaults: `qr` 20 attempts, `code` 5). An attempt is charged when
 *   the device answers `pair/start` with its challenge, because from then on the peer can test one
 *   guess (the challenge carries confirmV). Success does not refund it; it closes the window.
 * - After `freeAttempts` charged attempts, each further one must wait `baseDelayMs · 2^k` (capped at
 *   `maxDelayMs`) after the previous one; early attempts get LimitError E_RATE_LIMITED with `retryAt`.
 * - Once a method's budget is spent, that method is locked (LimitError E_LOCKED) until the window is
 *   re-opened. The other method keeps its own budget.
 * - Counters are observable ({@link PairingGuard.snapshot}) so the agent can report and log them, and
 *   the snapshot can be persisted and restored so a restart does not refill the budget.
 */
import type { CryptoEnv } from '../crypto/env.js';
import { AccessError, type ErrorCode, LimitError } from '../errors.js';
import type { PairingMethod, PairingRole } from './messages.js';
import type { PairingState } from './state.js';

/** Attempt budget and backoff for one method. */
export interface AttemptPolicy {
  /** Charged attempts allowed per window. */
  maxAttempts: number;
  /** Attempts allowed back to back before the backoff starts. */
  freeAttempts: number;
  /** First backoff delay, in ms; doubles with each further attempt. */
  baseDelayMs: number;
  /** Upper bound of the backoff delay, in ms. */
  maxDelayMs: number;
}

/** Default pairing window: 10 minutes. */
export const DEFAULT_WINDOW_MS = 10 * 60 * 1000;
/** Default budgets. */
export const DEFAULT_ATTEMPT_POLICIES: Readonly<Record<PairingMethod, Readonly<AttemptPolicy>>> = {
  qr: { maxAttempts: 20, freeAttempts: 3, baseDelayMs: 1000, maxDelayMs: 60_000 },
  code: { maxAttempts: 5, freeAttempts: 2, baseDelayMs: 2000, maxDelayMs: 60_000 },
};

/** Counters of one method in the current window. */
export interface MethodCounters {
  /** Attempts charged (challenges sent). */
  attempts: number;
  /** Charged attempts reported as failed (wrong secret, tampering, aborted mid-way). */
  failures: number;
  /** Attempts left before the method locks. */
  remaining: number;
  /** Budget spent: further attempts get E_LOCKED until re-opened. */
  locked: boolean;
  /** Earliest time of the next attempt (ms since epoch), or 0 when there is no wait. */
  retryAt: number;
  /** Time of the last charged attempt (ms since epoch), or 0. */
  lastAttemptAt: number;
}

/** Why the window is closed. */
export type CloseReason = 'never-opened' | 'expired' | 'paired' | 'closed';

/** Observable, JSON-able state of the guard. */
export interface PairingGuardSnapshot {
  open: boolean;
  /** When the current or last window opened (ms), or 0. */
  openedAt: number;
  /** When it closes or closed (ms), or 0. */
  closesAt: number;
  closeReason: CloseReason | undefined;
  /** Role the next successful pairing gets. */
  role: PairingRole;
  /** True once an owner has paired. */
  hasOwner: boolean;
  /** Successful pairings since the guard was created or restored. */
  paired: number;
  methods: Record<PairingMethod, MethodCounters>;
}

/** Options for {@link PairingGuard}. */
export interface PairingGuardOptions {
  env: CryptoEnv;
  /** Window length in ms (default {@link DEFAULT_WINDOW_MS}). */
  windowMs?: number;
  /** Budgets per method (defaults {@link DEFAULT_ATTEMPT_POLICIES}). */
  policies?: Partial<Record<PairingMethod, AttemptPolicy>>;
  /** Whether the device already has an owner (then re-opened windows pair members by default). */
  hasOwner?: boolean;
  /** Restore a persisted snapshot (counters, window, owner flag): a snapshot, or a decoded state file. */
  restore?: PairingState;
}

interface Counters {
  attempts: number;
  failures: number;
  lastAttemptAt: number;
}

const METHODS: readonly PairingMethod[] = ['qr', 'code'];

function checkPolicy(p: AttemptPolicy): AttemptPolicy {
  const ok =
    Number.isSafeInteger(p.maxAttempts) &&
    p.maxAttempts >= 1 &&
    Number.isSafeInteger(p.freeAttempts) &&
    p.freeAttempts >= 0 &&
    p.baseDelayMs >= 0 &&
    p.maxDelayMs >= p.baseDelayMs;
  if (!ok) throw new RangeError('invalid attempt policy');
  return { ...p };
}

/** The device's pairing window and attempt limits. One per device, shared by all pairing sessions. */
export class PairingGuard {
  private readonly env: CryptoEnv;
  private readonly windowMs: number;
  private readonly policies: Record<PairingMethod, AttemptPolicy>;
  private openedAt = 0;
  private closesAt = 0;
  private closedReason: CloseReason | undefined = 'never-opened';
  private role: PairingRole;
  private hasOwner: boolean;
  private paired = 0;
  private counters: Record<PairingMethod, Counters> = { qr: fresh(), code: fresh() };

  constructor(opts: PairingGuardOptions) {
    this.env = opts.env;
    this.windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
    if (!(this.windowMs > 0)) throw new RangeError('windowMs must be positive');
    this.policies = {
      qr: checkPolicy(opts.policies?.qr ?? DEFAULT_ATTEMPT_POLICIES.qr),
      code: checkPolicy(opts.policies?.code ?? DEFAULT_ATTEMPT_POLICIES.code),
    };
    this.hasOwner = opts.hasOwner ?? false;
    this.role = this.hasOwner ? 'member' : 'owner';
    const r = opts.restore;
    if (r) {
      this.openedAt = r.openedAt;
      this.closesAt = r.closesAt;
      this.closedReason = r.open ? undefined : (r.closeReason ?? 'closed');
      this.role = r.role;
      this.hasOwner = r.hasOwner;
      this.paired = r.paired;
      for (const m of METHODS) {
        const c = r.methods[m];
        this.counters[m] = { attempts: c.attempts, failures: c.failures, lastAttemptAt: c.lastAttemptAt };
      }
    }
  }

  /**
   * Open (or re-open) the window: resets the counters and locks. Call it on first start while the
   * device has no owner, or when the owner or a physical action asks for it. `role` defaults to
   * 'owner' while there is no owner, else 'member'.
   */
  open(opts: { role?: PairingRole } = {}): void {
    const now = this.env.now();
    this.openedAt = now;
    this.closesAt = now + this.windowMs;
    this.closedReason = undefined;
    this.role = opts.role ?? (this.hasOwner ? 'member' : 'owner');
    this.counters = { qr: fresh(), code: fresh() };
  }

  /** Close the window now. */
  close(reason: CloseReason = 'closed'): void {
    if (this.isOpen()) this.closesAt = this.env.now();
    this.closedReason = reason;
  }

  /** Whether the window is open at the current time. */
  isOpen(): boolean {
    if (this.closedReason !== undefined) return false;
    if (this.env.now() >= this.closesAt) {
      this.closedReason = 'expired';
      return false;
    }
    return true;
  }

  /** Throw AccessError E_PAIRING_CLOSED if the window is closed. */
  assertOpen(): void {
    if (!this.isOpen()) throw new AccessError('E_PAIRING_CLOSED');
  }

  private retryAt(m: PairingMethod): number {
    const c = this.counters[m];
    const p = this.policies[m];
    if (c.attempts < p.freeAttempts || c.attempts === 0) return 0;
    const k = c.attempts - p.freeAttempts;
    const delay = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** Math.min(k, 40));
    return c.lastAttemptAt + delay;
  }

  /**
   * Check that an attempt with `method` may start now without charging it: AccessError
   * E_PAIRING_CLOSED, LimitError E_LOCKED or E_RATE_LIMITED (with retryAt).
   */
  check(method: PairingMethod): void {
    this.assertOpen();
    const c = this.counters[method];
    if (c.attempts >= this.policies[method].maxAttempts) {
      throw new LimitError(
        'E_LOCKED',
        `${method}: attempt budget spent; re-open the pairing window on the device`,
      );
    }
    const at = this.retryAt(method);
    if (at > this.env.now())
      throw new LimitError('E_RATE_LIMITED', `${method}: too many attempts; retry later`, at);
  }

  /** Check, then charge one attempt (call it right before sending the challenge). */
  charge(method: PairingMethod): void {
    this.check(method);
    const c = this.counters[method];
    c.attempts++;
    c.lastAttemptAt = this.env.now();
  }

  /** Record that a charged attempt failed (for the counters; the budget was already charged). */
  recordFailure(method: PairingMethod, _code?: ErrorCode): void {
    this.counters[method].failures++;
  }

  /**
   * Complete a successful pairing: the window must still be open; it then closes. Returns the role the
   * new viewer gets. Raises AccessError E_PAIRING_CLOSED when another session already completed or the
   * window expired meanwhile.
   */
  complete(_method: PairingMethod): PairingRole {
    this.assertOpen();
    const role = this.role;
    if (role === 'owner') this.hasOwner = true;
    this.paired++;
    this.close('paired');
    return role;
  }

  /** Observable, JSON-able state (persist it to keep the budget across restarts). */
  snapshot(): PairingGuardSnapshot {
    const open = this.isOpen();
    const methods = {} as Record<PairingMethod, MethodCounters>;
    for (const m of METHODS) {
      const c = this.counters[m];
      const max = this.policies[m].maxAttempts;
      methods[m] = {
        attempts: c.attempts,
        failures: c.failures,
        remaining: Math.max(0, max - c.attempts),
        locked: c.attempts >= max,
        retryAt: this.retryAt(m),
        lastAttemptAt: c.lastAttemptAt,
      };
    }
    return {
      open,
      openedAt: this.openedAt,
      closesAt: this.closesAt,
      closeReason: this.closedReason,
      role: this.role,
      hasOwner: this.hasOwner,
      paired: this.paired,
      methods,
    };
  }
}

function fresh(): Counters {
  return { attempts: 0, failures: 0, lastAttemptAt: 0 };
}
