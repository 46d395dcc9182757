/**
 * The device side of pairing (threat model S2, F10): one {@link PairingGuard} (window, attempt
 * budgets, backoff), the verifier records of the current window, and one {@link DevicePairing} per
 * viewer that talks to us.
 *
 * ```
 * open()  ── fresh QR secret + manual code ──▶ createPairingRecord (w0, L) ──▶ secrets wiped
 *         ── pair/register {tag} ──▶ server (E_TAG_TAKEN ⇒ draw a new manual code, register again)
 *         ── onWindow({qrUrl, manualCode, expiresAt})  (shown on the device's console only)
 *
 * recv {from, pair/start}    ──▶ DevicePairing(from).receive ──▶ guard.charge ──▶ pair/challenge
 * recv {from, pair/confirm}  ──▶ DevicePairing(from).receive ──▶ guard.complete ──▶ onPaired ──▶ pair/done
 *                                 any error ──▶ pair/error {code, retryAt?}
 * ```
 *
 * - The guard's snapshot (counters, window, owner flag) is written to `stateFile` after every step
 *   (pairing-state.ts; schema in protocol), so a restart (or a crash an attacker provokes) does not
 *   refill the attempt budget: a window that is still open after a restart keeps its counters, locks
 *   and closing time; only its secrets are new, because they were never written down.
 * - The window's secrets (pairing-window.ts) live only as the display strings of {@link PairingInfo}
 *   while the window is open; the byte arrays are wiped at once, and everything is dropped when the
 *   window closes. Nothing secret is logged, persisted or sent anywhere.
 * - The window opens on first start while the device has no owner, and again only through
 *   {@link PairingHost.open}: the "physical action" on the device (the protocol has no owner-signed
 *   re-open message yet).
 */
import {
  AccessError,
  type AttemptPolicy,
  type CryptoEnv,
  DevicePairing,
  encodeId,
  HearthError,
  InternalError,
  isLogCode,
  LimitError,
  type LogEntry,
  PairingGuard,
  type PairingGuardSnapshot,
  type PairingMessage,
  type PairingMethod,
  type PairingRole,
  ProtocolError,
  pairingErrorMessage,
  type Signer,
  validatePairingMessage,
} from '@hearth/protocol';
import { keyHashOf, type LogSink } from './access-log.js';

type PairAttemptEntry = Extract<LogEntry, { k: 'pair/attempt' }>;

import { loadPairingState, savePairingState } from './pairing-state.js';
import { drawManualCode, type PairingInfo, PairingWindow, wipeRecord } from './pairing-window.js';

export { loadPairingState, PAIRING_STATE_FILE, pairingStatePath } from './pairing-state.js';
export type { PairingInfo } from './pairing-window.js';

/** A viewer that completed pairing. */
export interface PairedViewer {
  /** `huk_…` text of the viewer's identity key. */
  viewer: string;
  viewerKey: Uint8Array;
  role: PairingRole;
  method: PairingMethod;
  /** Short label both sides derive (audit log, UI). */
  sessionId: string;
}

/** Events the host reports (no secrets in any of them). */
export type PairingEvent =
  | { kind: 'pairing-window-opened'; expiresAt: number; role: PairingRole; resumed: boolean }
  | { kind: 'pairing-window-closed'; reason: string }
  | { kind: 'pairing-code-renewed'; reason: 'tag-taken' }
  | { kind: 'pairing-attempt'; viewer: string; method: PairingMethod; remaining: number }
  | { kind: 'pairing-failed'; viewer: string; code: string; method?: PairingMethod; remaining?: number }
  | { kind: 'paired'; viewer: string; role: PairingRole; method: PairingMethod; sessionId: string };

/** Options of {@link PairingHost}. */
export interface PairingHostOptions {
  /** Device ID text (`hdid_…`). */
  deviceId: string;
  /** The device identity key. */
  signer: Signer;
  env: CryptoEnv;
  /** Rendezvous server base URL; its host goes into the QR payload. */
  serverUrl: string;
  /** Window length (ms). Default 10 minutes. */
  windowMs?: number;
  /** Attempt budgets (defaults: the protocol's). */
  policies?: Partial<Record<PairingMethod, AttemptPolicy>>;
  /** Where the guard snapshot is kept (mode 0600). Default: not persisted. */
  stateFile?: string;
  /** Send a pairing message to a viewer. */
  send(to: string, m: PairingMessage): void;
  /** Register (or with null, drop) the manual code's lookup tag at the rendezvous. */
  register(tag: string | null): void;
  /** Whether the device has an owner (an ACL). */
  isPaired(): boolean;
  /**
   * A viewer paired. Runs before `pair/done` is sent, so the ACL is in place when the viewer
   * learns it is paired. A throw is reported to the viewer as E_INTERNAL.
   */
  onPaired(v: PairedViewer): void | Promise<void>;
  /** A window opened, or its manual code changed: show the QR URL and the code. */
  onWindow?(info: PairingInfo): void;
  onEvent?(e: PairingEvent): void;
  /** A viewer that goes quiet mid-pairing is dropped after this long (ms). Default 60 s. */
  sessionTimeoutMs?: number;
  /** Most concurrent pairing sessions. Default 16. */
  maxSessions?: number;
  /** PBKDF2 iterations (tests only: the viewer must use the same). Default the protocol's. */
  iterations?: number;
  /**
   * The access log: `pair/attempt` for each pairing that succeeds or fails with a wrong code (the
   * guard bounds those); other failures (closed window, lock, timeout) at most one a minute, so a
   * stranger cannot fill the log.
   */
  log?: LogSink;
}

interface Session {
  dp: DevicePairing;
  method?: PairingMethod;
  timer: NodeJS.Timeout;
}

/** The device's pairing host. */
export class PairingHost {
  readonly guard: PairingGuard;
  private readonly sessions = new Map<string, Session>();
  private readonly chains = new Map<string, Promise<void>>();
  private win: PairingWindow | undefined;
  private preparing: Promise<unknown> = Promise.resolve();
  private expiry: NodeJS.Timeout | undefined;
  private tagRetries = 0;
  private disposed = false;
  private lastUncounted = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: PairingHostOptions) {
    const saved = o.stateFile ? loadPairingState(o.stateFile) : undefined;
    // The ACL is the truth about ownership: a device whose ACL is gone (reset, or a crash between
    // the pairing and saving the ACL) pairs an owner again.
    const paired = o.isPaired();
    const restore = saved && { ...saved, hasOwner: paired, role: paired ? saved.role : ('owner' as const) };
    this.guard = new PairingGuard({
      env: o.env,
      ...(o.windowMs !== undefined ? { windowMs: o.windowMs } : {}),
      ...(o.policies ? { policies: o.policies } : {}),
      hasOwner: paired,
      ...(restore ? { restore } : {}),
    });
    // A window granting 'owner' makes no sense once an owner exists (e.g. a crash right after the
    // first pairing): close it rather than hand out a second owner role.
    if (paired && this.guard.isOpen() && this.guard.snapshot().role === 'owner') this.guard.close('paired');
  }

  /**
   * Start: continue a window that was open before a restart (same counters and closing time, new
   * secrets), or open one if the device has no owner. Returns the window, if one is open.
   */
  async start(): Promise<PairingInfo | undefined> {
    if (this.guard.isOpen()) return this.prepare(true);
    if (!this.o.isPaired()) return this.open();
    this.persist();
    return undefined;
  }

  /**
   * Open a new window (resets the counters): first start, or the physical action on the device.
   * The role defaults to 'owner' while there is no owner, else 'member'.
   */
  async open(opts: { role?: PairingRole } = {}): Promise<PairingInfo> {
    this.abortAll();
    this.guard.open(opts.role ? { role: opts.role } : {});
    const info = await this.prepare(false);
    if (!info)
      throw new AccessError('E_PAIRING_CLOSED', 'the pairing window closed while it was being opened');
    return info;
  }

  /** The open window, if any. */
  info(): PairingInfo | undefined {
    if (!this.guard.isOpen()) {
      if (this.win) this.endWindow('expired');
      return undefined;
    }
    return this.win?.info;
  }

  /** The guard's counters (JSON-able; for logs and status). */
  snapshot(): PairingGuardSnapshot {
    return this.guard.snapshot();
  }

  /** Close the window now (e.g. the owner asked for it on the device). */
  close(reason = 'closed'): void {
    this.guard.close('closed');
    this.endWindow(reason);
  }

  /** The rendezvous connection is (re)authenticated: register the lookup tag again. */
  reregister(): void {
    if (this.win && this.guard.isOpen()) this.o.register(this.win.tag);
  }

  /** The server refused our lookup tag (E_TAG_TAKEN): draw a new manual code and register it. */
  async onTagTaken(): Promise<void> {
    await this.preparing;
    const w = this.win;
    if (!w || !this.guard.isOpen()) return;
    if (++this.tagRetries > 8) {
      this.o.onEvent?.({ kind: 'pairing-failed', viewer: '', code: 'E_TAG_TAKEN' });
      return;
    }
    const job = (async () => {
      const code = await drawManualCode(this.o);
      if (this.win !== w) {
        return wipeRecord(code.record);
      }
      w.replaceCode(code);
      this.o.register(w.tag);
      this.o.onEvent?.({ kind: 'pairing-code-renewed', reason: 'tag-taken' });
      this.o.onWindow?.(w.info);
    })();
    this.preparing = job.catch(() => undefined);
    await job;
  }

  /** A `pair/*` message from `from` (the server-authenticated sender). Never throws. */
  onMessage(from: string, m: unknown): Promise<void> {
    const prev = this.chains.get(from) ?? Promise.resolve();
    const next = prev.then(() => this.handle(from, m)).catch(() => undefined);
    this.chains.set(from, next);
    void next.then(() => {
      if (this.chains.get(from) === next) this.chains.delete(from);
    });
    return next;
  }

  /** Stop timers and drop in-flight sessions (agent shutdown). The window state stays persisted. */
  dispose(): void {
    this.disposed = true;
    clearTimeout(this.expiry);
    this.abortAll();
    this.persist();
    this.dropSecrets();
  }

  // ---------------------------------------------------------------- internals

  private async prepare(resumed: boolean): Promise<PairingInfo | undefined> {
    const prev = this.preparing; // one window at a time
    const job = (async () => {
      await prev;
      this.dropSecrets();
      let snap = undefined as PairingGuardSnapshot | undefined;
      const w = await PairingWindow.open(this.o, () => {
        snap = this.guard.snapshot();
        return snap.open ? snap.closesAt : undefined;
      });
      if (!w || !snap) return undefined;
      this.win = w;
      this.tagRetries = 0;
      this.persist();
      this.o.register(w.tag);
      this.armExpiry(snap.closesAt);
      this.o.onEvent?.({ kind: 'pairing-window-opened', expiresAt: snap.closesAt, role: snap.role, resumed });
      this.o.onWindow?.(w.info);
      return w.info;
    })();
    this.preparing = job.catch(() => undefined);
    return job;
  }

  private armExpiry(at: number): void {
    clearTimeout(this.expiry);
    if (this.disposed) return;
    // Timers cap at 2^31-1 ms; re-check on wake-up (the clock may be injected).
    const wait = Math.min(Math.max(0, at - this.o.env.now()) + 50, 2 ** 31 - 1);
    this.expiry = setTimeout(() => {
      if (!this.win) return;
      if (this.guard.isOpen()) this.armExpiry(this.guard.snapshot().closesAt);
      else this.endWindow('expired');
    }, wait);
    this.expiry.unref();
  }

  private endWindow(reason: string): void {
    clearTimeout(this.expiry);
    const had = this.win !== undefined;
    this.abortAll();
    this.dropSecrets();
    this.persist();
    if (had) {
      this.o.register(null);
      this.o.onEvent?.({ kind: 'pairing-window-closed', reason });
    }
  }

  private dropSecrets(): void {
    this.win?.wipe();
    this.win = undefined;
  }

  private abortAll(): void {
    for (const [from, s] of this.sessions) {
      s.dp.abort();
      clearTimeout(s.timer);
      this.sessions.delete(from);
    }
  }

  private persist(): void {
    if (this.o.stateFile) savePairingState(this.o.stateFile, this.guard.snapshot());
  }

  private drop(from: string): void {
    const s = this.sessions.get(from);
    if (!s) return;
    clearTimeout(s.timer);
    this.sessions.delete(from);
  }

  private remaining(method: PairingMethod | undefined): number | undefined {
    return method ? this.guard.snapshot().methods[method].remaining : undefined;
  }

  private async handle(from: string, raw: unknown): Promise<void> {
    await this.preparing;
    let msg: PairingMessage;
    try {
      msg = validatePairingMessage(raw);
    } catch (e) {
      if ((raw as { t?: unknown } | null)?.t !== 'pair/error') this.o.send(from, pairingErrorMessage(e));
      return;
    }
    let s = this.sessions.get(from);
    if (msg.t === 'pair/start') {
      if (s) {
        // A new start from the same viewer ends its previous run (counted if it was charged).
        s.dp.abort();
        this.drop(from);
        this.persist();
      }
      if (!this.win || !this.guard.isOpen()) {
        if (this.win) this.endWindow('expired');
        this.fail(from, new AccessError('E_PAIRING_CLOSED', 'the pairing window is closed'), msg.method);
        return;
      }
      if (this.sessions.size >= (this.o.maxSessions ?? 16)) {
        this.fail(
          from,
          new LimitError('E_RATE_LIMITED', 'too many pairings at once', this.o.env.now() + 5_000),
          msg.method,
        );
        return;
      }
      const dp = new DevicePairing({
        deviceId: this.o.deviceId,
        records: this.win.records,
        signer: this.o.signer,
        guard: this.guard,
        env: this.o.env,
      });
      const timer = setTimeout(() => {
        if (this.sessions.get(from)?.dp !== dp) return;
        dp.abort();
        this.drop(from);
        this.persist();
        this.logAttempt('error', from, 'E_TIMEOUT');
        this.o.onEvent?.({ kind: 'pairing-failed', viewer: from, code: 'E_TIMEOUT', method: msg.method });
      }, this.o.sessionTimeoutMs ?? 60_000);
      timer.unref();
      s = { dp, method: msg.method, timer };
      this.sessions.set(from, s);
    } else if (!s) {
      if (msg.t !== 'pair/error')
        this.o.send(from, pairingErrorMessage(new ProtocolError('E_BAD_STATE', 'no pairing in progress')));
      return;
    }
    const session = s;
    try {
      const step = await session.dp.receive(msg);
      this.persist();
      if (step.result) {
        const r = step.result;
        this.drop(from);
        const viewer = encodeId('userKey', r.viewerKey);
        // The guard closed the window (complete()); drop the records and the tag now.
        this.endWindow('paired');
        try {
          await this.o.onPaired({
            viewer,
            viewerKey: r.viewerKey,
            role: r.role,
            method: r.method,
            sessionId: r.sessionId,
          });
        } catch (e) {
          this.o.send(
            from,
            pairingErrorMessage(
              e instanceof HearthError ? e : new InternalError('E_INTERNAL', 'pairing could not be recorded'),
            ),
          );
          this.logAttempt('error', from, 'E_INTERNAL');
          this.o.onEvent?.({ kind: 'pairing-failed', viewer: from, code: 'E_INTERNAL', method: r.method });
          return;
        }
        for (const out of step.send) this.o.send(from, out);
        this.logAttempt('ok', viewer);
        this.o.onEvent?.({ kind: 'paired', viewer, role: r.role, method: r.method, sessionId: r.sessionId });
        return;
      }
      for (const out of step.send) this.o.send(from, out);
      if (msg.t === 'pair/start') {
        this.o.onEvent?.({
          kind: 'pairing-attempt',
          viewer: from,
          method: msg.method,
          remaining: this.remaining(msg.method) ?? 0,
        });
      }
    } catch (e) {
      this.drop(from);
      this.persist();
      if (msg.t === 'pair/error') {
        this.logAttempt('error', from, msg.code);
        this.o.onEvent?.({
          kind: 'pairing-failed',
          viewer: from,
          code: msg.code,
          ...this.methodInfo(session.method),
        });
        return;
      }
      this.fail(from, e, session.method);
    }
  }

  private methodInfo(method: PairingMethod | undefined): { method?: PairingMethod; remaining?: number } {
    if (!method) return {};
    return { method, remaining: this.remaining(method) ?? 0 };
  }

  /** Append a `pair/attempt` to the access log (never throws). */
  private logAttempt(
    result: 'ok' | 'bad-confirmation' | 'locked' | 'closed' | 'error',
    viewer?: string,
    code?: string,
  ): void {
    const sink = this.o.log;
    if (!sink) return;
    // Wrong codes are bounded by the guard's attempt budget; everything else a stranger could
    // repeat at will (a closed window, a lock, a malformed message) is logged once a minute.
    if (result !== 'ok' && result !== 'bad-confirmation') {
      const now = this.o.env.now();
      if (now - this.lastUncounted < 60_000) return;
      this.lastUncounted = now;
    }
    const t = this.o.env.now();
    sink.append(
      (async (): Promise<PairAttemptEntry> => {
        const e: PairAttemptEntry = { v: 1, t, k: 'pair/attempt', result };
        if (viewer?.startsWith('huk_')) e.viewer = await keyHashOf(viewer).catch(() => undefined);
        if (e.viewer === undefined) delete e.viewer;
        if (isLogCode(code) && result !== 'ok') e.code = code;
        return e;
      })(),
    );
  }

  private fail(from: string, e: unknown, method: PairingMethod | undefined): void {
    const m = pairingErrorMessage(e);
    this.logAttempt(
      m.code === 'E_BAD_CONFIRMATION'
        ? 'bad-confirmation'
        : m.code === 'E_LOCKED'
          ? 'locked'
          : m.code === 'E_PAIRING_CLOSED'
            ? 'closed'
            : 'error',
      from,
      m.code,
    );
    this.o.send(from, m);
    this.o.onEvent?.({ kind: 'pairing-failed', viewer: from, code: m.code, ...this.methodInfo(method) });
  }
}
