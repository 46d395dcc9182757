/**
 * The rendezvous client core, shared by the agent (Node) and the viewer (browser). It does no I/O of
 * its own: it is handed a socket factory (each platform wires its WebSocket in a few lines), a
 * CryptoEnv (for the auth envelope and the retry jitter) and one retry schedule ({@link backoffDelay}).
 *
 * It runs the connection state machine:
 *
 * ```
 *   down ──start/retry──▶ connecting ──hello──▶ authenticating ──ready──▶ ready
 *     ▲                       │                       │                     │
 *     └──── close, handshake timeout, silent server, stop ◀─────────────────┘
 * ```
 *
 * - `hello` is answered with {@link createAuth} (proof of key possession bound to this server and
 *   this connection), once per connection; a second `hello` is ignored.
 * - Hello + auth must finish within `handshakeMs`, or the attempt is abandoned.
 * - Once ready it pings every `pingMs`; a server that has sent nothing for `deadAfterPings` ping
 *   intervals is a dead (half-open) connection: it is dropped and re-established.
 * - Every frame from the server is decoded with {@link decodeServerFrame}; a frame that does not
 *   decode, or a binary frame, is dropped and counted (`badFrames`). Before `ready`, only `hello`
 *   and `error` frames are acted on.
 * - After a connection ends (for any reason but {@link RendezvousCore.stop}) it reconnects after
 *   `backoffDelay(attempt, retry)`, jittered from the CryptoEnv; a `ready` resets the attempt count.
 *
 * The server is trusted for delivery only: `recv.m` is handed to the caller as it came, and the
 * caller authenticates it end to end.
 */
import { b64u } from './bytes.js';
import type { CryptoEnv } from './crypto/env.js';
import type { Signer } from './crypto/primitives.js';
import {
  type ClientFrame,
  createAuth,
  decodeServerFrame,
  type IceServer,
  type ServerFrame,
  verifyServerProof,
} from './rendezvous.js';
import { backoffDelay, envUnit, type RetrySchedule } from './retry.js';

/** What the core needs from one WebSocket connection. */
export interface RendezvousSocket {
  /** Send one text frame; false when the socket is not open. */
  send(text: string): boolean;
  /** Close (or, for a dead connection, cut) the socket. The core never hears from it again. */
  close(code: number, reason: string): void;
}

/** What a socket reports to the core. Calls after the core closed the socket are ignored. */
export interface RendezvousSocketEvents {
  /** A text frame arrived. */
  text(data: string): void;
  /** A binary frame arrived (never valid on the rendezvous). */
  binary(): void;
  /** The socket closed (or failed to open). */
  closed(code: number, reason: string): void;
}

/** Opens a new socket to the rendezvous and reports its events to `events`. */
export type RendezvousSocketFactory = (events: RendezvousSocketEvents) => RendezvousSocket;

/** Connection states. */
export type RendezvousStatus = 'connecting' | 'authenticating' | 'ready' | 'down';

type Frame<T extends ServerFrame['t']> = Extract<ServerFrame, { t: T }>;

/** Events of {@link RendezvousCore} and their payloads. */
export interface RendezvousCoreEvents {
  /** Authenticated: our ID and the ICE servers to use. */
  ready: Frame<'ready'>;
  /** A message routed to us (`from` is set by the server from the sender's authenticated connection). */
  recv: Frame<'recv'>;
  presence: Frame<'presence'>;
  'pair/found': Frame<'pair/found'>;
  /** Relay credentials for one session (review R6); already merged into {@link RendezvousCore.ice}. */
  relay: Frame<'relay'>;
  alert: Frame<'alert'>;
  /** The push service took a device's `push` (its `ref`). */
  'push/ok': Frame<'push/ok'>;
  /** Server error frame (e.g. a `send` that could not be delivered, with its `ref`). */
  error: Frame<'error'>;
  /** Connection state changes. */
  status: RendezvousStatus;
  /** A connection ended: the socket's close code, or ours when the core gave up on it. */
  disconnected: { code: number; reason: string; wasReady: boolean };
  /**
   * The server is not the one pinned (`offered` differs from `pinned`), or could not prove it holds
   * the key it named (`reason`). The core has stopped: nothing more is sent to this server.
   */
  'server-key-changed': { pinned: string | undefined; offered: string; reason: string };
}

/** Log sink; never receives message payloads or key material. */
export type RendezvousLog = (
  level: 'info' | 'warn' | 'error',
  msg: string,
  extra?: Record<string, unknown>,
) => void;

/** Timers (injectable so that tests drive time by hand). */
export interface RendezvousTimers {
  /** Run `fn` after `ms`. `background` timers must not keep a process alive on their own. */
  set(fn: () => void, ms: number, background: boolean): unknown;
  clear(handle: unknown): void;
}

/** Close codes the core uses when it gives up on a connection itself (4000–4099: client-side). */
export const CLIENT_CLOSE = {
  /** stop(): the caller is done. */
  BYE: 1000,
  /** Hello + auth did not complete within handshakeMs. */
  HANDSHAKE_TIMEOUT: 4000,
  /** The server sent nothing for deadAfterPings ping intervals. */
  SILENT: 4004,
} as const;

/** Options of {@link RendezvousCore}. */
export interface RendezvousCoreOptions {
  /** Opens the socket (the platform's WebSocket, or a scripted fake in tests). */
  socket: RendezvousSocketFactory;
  signer: Signer;
  role: 'device' | 'viewer';
  /** Signs the auth envelope (its clock stamps it) and jitters the retry delays. */
  env: CryptoEnv;
  /** Reconnect schedule. Default {@link DEFAULT_RETRY} (500 ms doubling to 30 s). */
  retry?: RetrySchedule;
  /** Ping interval once ready (ms). Default 25 000. */
  pingMs?: number;
  /** Ping intervals without a word from the server before the connection counts as dead. Default 2. */
  deadAfterPings?: number;
  /** How long connect + hello + auth may take before the attempt is abandoned (ms). Default 15 000. */
  handshakeMs?: number;
  timers?: RendezvousTimers;
  log?: RendezvousLog;
  /** Pin the server key at first contact and hold the server to it (see {@link ServerKeyPin}). */
  serverKeyPin?: ServerKeyPin;
}

const defaultTimers: RendezvousTimers = {
  set(fn, ms, background) {
    const h = setTimeout(fn, ms);
    // Node: a heartbeat or handshake timer alone must not keep the process alive (browsers: a number).
    if (background) (h as { unref?: () => void }).unref?.();
    return h;
  },
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

type Listener<K extends keyof RendezvousCoreEvents> = (e: RendezvousCoreEvents[K]) => void;

interface Live {
  sock: RendezvousSocket | undefined;
  /** Ping ticks since the server last sent anything. */
  silentTicks: number;
  /** This connection's hello and our nonce, for the server's proof in `ready` (R15). */
  hello?: { srv: string; ch: string; cn: string };
}

/**
 * Where a client keeps the server key it met first (trust on first use, as ssh's known_hosts).
 * With one, the core accepts a server only if it names that key in `hello` and proves it holds it
 * in `ready`; on a mismatch it stops and reports `server-key-changed` (review R15).
 */
export interface ServerKeyPin {
  get(): string | undefined;
  set(key: string): void;
}

/** Relay credentials closer than this to expiry are not used for a new session (ms). */
export const RELAY_MARGIN_MS = 60_000;

/** One rendezvous connection, kept up until {@link stop}. */
export class RendezvousCore {
  private live: Live | undefined;
  private attempt = 0;
  private clockOffset: number | undefined;
  private stopped = true;
  private retryTimer: unknown;
  private pingTimer: unknown;
  private handshakeTimer: unknown;
  private readonly listeners = new Map<keyof RendezvousCoreEvents, Set<(e: never) => void>>();
  private readonly timers: RendezvousTimers;
  /** ICE servers from the last `ready`: STUN only, since the server gives TURN to nobody unasked. */
  private readyIce: IceServer[] = [];
  /** The newest relay credentials (server frame `relay`, review R6) and when they expire. */
  private relayIce: { ice: IceServer[]; until: number } | undefined;
  /** Our ID as the server knows it (`hdid_…` or `huk_…`), from the last `ready`. */
  id: string | undefined;
  status: RendezvousStatus = 'down';
  /** Frames from the server that failed validation (dropped). */
  badFrames = 0;
  /** Connections opened so far (for tests and diagnostics). */
  connects = 0;

  constructor(private readonly o: RendezvousCoreOptions) {
    this.timers = o.timers ?? defaultTimers;
  }

  /**
   * The ICE servers to use now: `ready`'s, plus the relay credentials of the last `relay` frame
   * while they have more than {@link RELAY_MARGIN_MS} to live (TURN credentials are short-lived:
   * re-read per session).
   */
  get ice(): IceServer[] {
    if (!this.relayFresh()) return this.readyIce;
    return [...this.readyIce, ...this.relayIce!.ice].slice(0, 8);
  }

  /**
   * Wait for relay credentials: resolves true at the next `relay` frame (or an `error` frame with
   * `ref`, false), false after `timeoutMs` or when the connection ends. Never rejects.
   */
  nextRelay(timeoutMs: number, ref?: string): Promise<boolean> {
    return new Promise((resolve) => {
      const offs: (() => void)[] = [];
      let timer: unknown;
      const done = (v: boolean) => {
        for (const off of offs) off();
        this.timers.clear(timer);
        resolve(v);
      };
      offs.push(this.on('relay', () => done(true)));
      offs.push(this.on('disconnected', () => done(false)));
      if (ref !== undefined) offs.push(this.on('error', (f) => f.ref === ref && done(false)));
      timer = this.timers.set(() => done(false), timeoutMs, true);
    });
  }

  /** Whether relay credentials are held with at least `marginMs` (default RELAY_MARGIN_MS) to live. */
  relayFresh(marginMs = RELAY_MARGIN_MS): boolean {
    return this.relayIce !== undefined && this.relayIce.until - this.o.env.now() > marginMs;
  }

  /** Subscribe; returns the unsubscribe function. */
  on<K extends keyof RendezvousCoreEvents>(event: K, f: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(f as (e: never) => void);
    const live = set;
    return () => live.delete(f as (e: never) => void);
  }

  private emit<K extends keyof RendezvousCoreEvents>(event: K, e: RendezvousCoreEvents[K]): void {
    for (const f of [...(this.listeners.get(event) ?? [])]) {
      try {
        (f as Listener<K>)(e);
      } catch (err) {
        this.log('error', 'a rendezvous listener failed', { event, err: (err as Error)?.message });
      }
    }
  }

  private log(level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>): void {
    try {
      this.o.log?.(level, msg, extra);
    } catch {
      // A broken log sink must not break the connection.
    }
  }

  /** True while authenticated. */
  /**
   * The server's clock minus this client's (ms), from the last `hello` (ignoring its transit time);
   * undefined when the server sent no time. Not authenticated: for warnings, never for freshness.
   */
  get clockOffsetMs(): number | undefined {
    return this.clockOffset;
  }

  get ready(): boolean {
    return this.status === 'ready';
  }

  /** Connect, and keep reconnecting until {@link stop}. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Reconnect now if down and waiting to retry (e.g. the browser came back online). */
  nudge(): void {
    if (this.stopped || this.status !== 'down') return;
    this.timers.clear(this.retryTimer);
    this.connect();
  }

  /** The server is not the pinned one: say so, and stop (nothing more goes to it). */
  private keyChanged(pinned: string | undefined, offered: string, reason: string): void {
    this.log('error', `server key changed: ${reason}: possible attack`, { pinned, offered });
    this.stop();
    this.emit('server-key-changed', { pinned, offered, reason });
  }

  /** Stop for good: close the connection, cancel every timer. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.timers.clear(this.retryTimer);
    this.end(CLIENT_CLOSE.BYE, 'bye', true);
  }

  /** Send a frame; false when not authenticated (nothing is queued). */
  send(frame: ClientFrame): boolean {
    const sock = this.live?.sock;
    if (this.status !== 'ready' || !sock) return false;
    return sock.send(JSON.stringify(frame));
  }

  private setStatus(s: RendezvousStatus): void {
    if (this.status === s) return;
    this.status = s;
    this.emit('status', s);
  }

  private connect(): void {
    if (this.stopped) return;
    this.end(CLIENT_CLOSE.BYE, 'reconnecting', true);
    this.setStatus('connecting');
    const live: Live = { sock: undefined, silentTicks: 0 };
    this.live = live;
    this.connects++;
    this.handshakeTimer = this.timers.set(
      () => {
        if (this.live !== live || this.status === 'ready') return;
        this.log('warn', 'the server did not complete authentication in time: reconnecting');
        this.end(CLIENT_CLOSE.HANDSHAKE_TIMEOUT, 'handshake timeout');
      },
      this.o.handshakeMs ?? 15_000,
      true,
    );
    const events: RendezvousSocketEvents = {
      text: (data) => {
        if (this.live !== live) return;
        live.silentTicks = 0;
        let f: ServerFrame;
        try {
          f = decodeServerFrame(data);
        } catch (e) {
          this.badFrames++;
          this.log('warn', 'bad frame from the server', { code: (e as { code?: string }).code });
          return;
        }
        void this.onFrame(live, f);
      },
      binary: () => {
        if (this.live !== live) return;
        live.silentTicks = 0;
        this.badFrames++;
      },
      closed: (code, reason) => {
        if (this.live !== live) return;
        this.live = undefined; // the socket is gone: nothing to close
        this.end(code, reason);
      },
    };
    try {
      live.sock = this.o.socket(events);
    } catch (e) {
      this.log('warn', 'cannot open a connection to the server', { err: (e as Error)?.message });
      if (this.live === live) this.end(CLIENT_CLOSE.BYE, 'cannot connect');
    }
  }

  private async onFrame(live: Live, f: ServerFrame): Promise<void> {
    switch (f.t) {
      case 'hello': {
        if (this.status !== 'connecting') return;
        const pinned = this.o.serverKeyPin?.get();
        if (pinned !== undefined && pinned !== f.srv)
          return this.keyChanged(pinned, f.srv, 'the server names another key than the one pinned');
        this.setStatus('authenticating');
        const cn = b64u(this.o.env.random(16));
        live.hello = { srv: f.srv, ch: f.ch, cn };
        let env: unknown;
        // Review R13: the server's time tells this client's own drift. The proof is stamped with
        // the server's time: it is bound to this connection's random challenge, so its timestamp
        // proves nothing more, and a client without a real-time clock can still log in.
        const offset = f.time === undefined ? undefined : f.time - this.o.env.now();
        this.clockOffset = offset;
        const stamp: CryptoEnv =
          offset === undefined
            ? this.o.env
            : { random: (n) => this.o.env.random(n), now: () => this.o.env.now() + offset };
        try {
          env = await createAuth(this.o.signer, this.o.role, f, stamp);
        } catch (e) {
          this.log('error', 'cannot sign the auth proof', { err: (e as Error)?.message });
          if (this.live === live) this.end(CLIENT_CLOSE.HANDSHAKE_TIMEOUT, 'cannot authenticate');
          return;
        }
        if (this.live === live) live.sock?.send(JSON.stringify({ t: 'auth', env, cn } satisfies ClientFrame));
        return;
      }
      case 'ready':
        if (this.status !== 'authenticating') return;
        if (this.o.serverKeyPin && live.hello) {
          const h = live.hello;
          const ok = await verifyServerProof(h.srv, { ch: h.ch, cn: h.cn, id: f.id, proof: f.proof });
          if (this.live !== live || this.status !== 'authenticating') return;
          const pinned = this.o.serverKeyPin.get();
          if (!ok)
            return this.keyChanged(pinned, h.srv, 'the server did not prove it holds the key it named');
          if (pinned === undefined) {
            this.o.serverKeyPin.set(h.srv);
            this.log('info', 'pinned the server key at first contact', { serverKey: h.srv });
          }
        }
        this.timers.clear(this.handshakeTimer);
        this.attempt = 0;
        this.readyIce = f.ice;
        this.relayIce = undefined; // minted for the last connection's sessions
        this.id = f.id;
        this.setStatus('ready');
        this.schedulePing(live);
        this.emit('ready', f);
        return;
      case 'pong':
        return;
      case 'relay':
        if (this.status !== 'ready') return;
        this.relayIce = { ice: f.ice, until: f.until };
        this.emit('relay', f);
        return;
      default:
        if (this.status !== 'ready' && f.t !== 'error') return;
        this.emit(f.t, f as never);
    }
  }

  private schedulePing(live: Live): void {
    const every = this.o.pingMs ?? 25_000;
    const deadAfter = Math.max(1, this.o.deadAfterPings ?? 2);
    this.pingTimer = this.timers.set(
      () => {
        if (this.live !== live || this.status !== 'ready') return;
        if (live.silentTicks >= deadAfter) {
          this.log('warn', 'no word from the server: reconnecting');
          this.end(CLIENT_CLOSE.SILENT, 'server silent');
          return;
        }
        live.silentTicks++;
        this.send({ t: 'ping' });
        this.schedulePing(live);
      },
      every,
      true,
    );
  }

  /**
   * End the current connection (if any): close its socket unless it is already gone, report it,
   * and schedule the next attempt unless stopped or `quiet` (a new attempt follows at once).
   */
  private end(code: number, reason: string, quiet = false): void {
    this.timers.clear(this.handshakeTimer);
    this.timers.clear(this.pingTimer);
    const live = this.live;
    this.live = undefined;
    const wasReady = this.status === 'ready';
    const hadSocket = live !== undefined || this.status !== 'down';
    if (live?.sock) {
      try {
        live.sock.close(code, reason);
      } catch {
        // already closing
      }
    }
    if (hadSocket) {
      if (wasReady) this.log('warn', 'disconnected from the server', { code });
      this.setStatus('down');
      this.emit('disconnected', { code, reason, wasReady });
    }
    if (!quiet && !this.stopped) this.scheduleRetry();
  }

  private scheduleRetry(): void {
    this.timers.clear(this.retryTimer);
    const delay = backoffDelay(this.attempt++, { ...this.o.retry, random: () => envUnit(this.o.env) });
    this.retryTimer = this.timers.set(() => this.connect(), delay, false);
  }
}
