/**
 * The rendezvous hub: authenticates WebSocket connections by key, routes `send` frames by
 * cryptographic ID, tracks presence and manual-code lookup tags. Never parses, stores or logs `m`.
 */

import type { Logger } from '@hearth/node';
import {
  CLOSE,
  type ClientFrame,
  type CloseErrorCode,
  claimedDeviceId,
  closeCodeFor,
  decodeClientFrame,
  fromB64u,
  HearthError,
  type IceServer,
  MAX_PUSH_BODY_BYTES,
  newChallenge,
  type RendezvousErrorCode,
  type ServerFrame,
  type Signer,
  shortId,
  signServerProof,
  systemEnv,
  TokenBucket,
  VerificationError,
  verifyAuth,
} from '@hearth/protocol';
import type { WebSocket } from 'ws';
import type { ServerConfig } from './config.js';
import type { PushGateway } from './push.js';
import type { Store } from './store.js';

/** WebSocket close codes: defined with their registry codes in @hearth/protocol (`errors.ts`). */
export { CLOSE };

/** The message of each `error` frame code (the codes: `RENDEZVOUS_ERROR_CODES` in protocol). */
export const FRAME_ERRORS: { readonly [C in RendezvousErrorCode]: string } = {
  E_SCHEMA: 'frame does not match the protocol schema',
  E_DECODE: 'frame is not valid JSON text',
  E_TOO_LARGE: 'frame or routed message too large',
  E_BAD_STATE: 'frame not valid in this state (authenticate first, or wrong role)',
  E_OFFLINE: 'the target is not connected',
  E_CONGESTED: 'the target is not reading its messages',
  E_RATE_LIMITED: 'too many messages to this device; retry later',
  E_TAG_TAKEN: 'another device holds this lookup tag',
  E_AUTH: 'authentication failed',
  E_NO_SESSION: 'relay credentials are only for a viewer this device answers now',
  E_PUSH_ENDPOINT: 'the server does not send to this push endpoint',
  E_PUSH_GONE: 'the push service no longer knows this subscription',
  E_PUSH_FAILED: 'the push service did not take the notification',
};

/** Most bytes queued towards one connection before sends to it are refused. */
const MAX_BUFFERED = 4 * 1024 * 1024;

/** Most per-sender buckets kept for one device (the oldest goes first; strangers' total still caps). */
const MAX_SENDER_BUCKETS = 4096;

/** What the hub keeps for a connected device, to protect it from what others send it (review R3). */
interface DeviceGuard {
  /** Per sender key (`k:`) and sender address (`a:`). */
  senders: Map<string, TokenBucket>;
  /** All senders not on the device's allow list, together. */
  strangers: TokenBucket;
  /**
   * Frames the device may send beyond its own rate, earned one per message routed to it: its
   * replies to traffic that others provoked never get its connection closed.
   */
  credit: number;
  /** Viewer keys that routed a message to the device, and when last (a `relay` needs one). */
  recent: Map<string, number>;
  /** The device's `relay` requests (review R6). */
  relay: TokenBucket;
}

/** Most viewers remembered per device as having messaged it lately. */
const MAX_RECENT = 1024;

/** Relay credentials for one party of one session (a fresh random TURN username each). */
export interface RelayGrant {
  ice: IceServer[];
  /** ms since the epoch when they expire. */
  until: number;
}

interface Conn {
  ws: WebSocket;
  addr: string;
  challenge: string;
  state: 'hello' | 'authenticating' | 'ready' | 'closed';
  id?: string;
  role?: 'device' | 'viewer';
  tokens: number;
  lastRefill: number;
  bad: number;
  watching: Set<string>;
  tag?: string;
  authTimer?: NodeJS.Timeout;
  replaced?: boolean;
  /** When the last complete frame arrived (the idle sweep closes silent connections). */
  lastFrame: number;
  guard?: DeviceGuard;
}

export interface HubOptions {
  serverKey: string;
  /** The key behind `serverKey`: signs `ready.proof` for clients that pin it (review R15). */
  serverSigner: Signer;
  limits: ServerConfig['limits'];
  store: Store;
  log: Logger;
  /** ICE servers for everyone, in `ready`: STUN only (no credentials). */
  iceFor: (id: string) => IceServer[];
  /**
   * Fresh TURN credentials, minted only for a `relay` request of a device for a viewer it answers
   * (review R6); undefined when no relay is configured.
   */
  relayFor: () => RelayGrant | undefined;
  /** Sends devices' Web Push notifications (`push` frames); absent: they are refused. */
  push?: PushGateway;
  /** Test-only hooks (`@hearth/server/testing`); production passes none. */
  test?: HubTestHooks;
}

/** What a test may see and do inside a running hub (handed to {@link HubTestHooks.attach}). */
export interface HubTestAccess {
  /** IDs connected and authenticated. */
  online(): string[];
  /** Registered lookup tags → device ID (a copy). */
  tags(): Map<string, string>;
  /** Send a server frame to a connected ID, as the hub would; false when it is not connected. */
  inject(id: string, f: ServerFrame): boolean;
  /** Cut every connection without a close handshake (the clients see a dead network and reconnect). */
  dropAll(): void;
}

/**
 * Test-only hooks, in the spirit of tailscale's derpserver `fortest.go`: a test runs the real hub
 * and observes or steers it through these, instead of a fake server. Inert when absent.
 */
export interface HubTestHooks {
  /** Called once, at construction. */
  attach?(access: HubTestAccess): void;
  /**
   * Sees every decoded client frame (after the rate and size limits) before the hub acts on it;
   * returning false swallows it: the hub neither acts nor answers.
   */
  frame?(f: ClientFrame, from: { id?: string; role?: 'device' | 'viewer' }): boolean;
  /** A connection authenticated as `id`. */
  admitted?(id: string, role: 'device' | 'viewer'): void;
  /** ICE servers to hand out instead of `iceFor` (undefined: use iceFor). */
  ice?(id: string): IceServer[] | undefined;
  /**
   * Turn defences off, for the controls that show an attack test can fail: `inbound`, the
   * per-sender and strangers' caps on what reaches a device and the device's reply credit (R3);
   * `presence`, presence following the device's allow list (R5d); `relay`, TURN credentials only
   * by a device's `relay` request: with it off, every `ready` carries them, as before R6.
   */
  unguarded?: { inbound?: boolean; presence?: boolean; relay?: boolean };
}

export class Hub {
  private readonly all = new Set<Conn>();
  private readonly byId = new Map<string, Conn>();
  private readonly perAddr = new Map<string, number>();
  private readonly watchers = new Map<string, Set<Conn>>();
  private readonly tags = new Map<string, string>();
  /**
   * Each device's last `allow` list (viewer keys that hold a grant), kept while it is offline too:
   * presence goes only to these, and their messages skip the strangers' cap.
   */
  private readonly allowed = new Map<string, Set<string>>();
  private closing = false;
  private readonly idleSweep: NodeJS.Timeout;
  /** `pair/lookup` buckets per source address (`a:`) and per tag (`t:`), review R7. */
  private readonly lookups = new Map<string, TokenBucket>();
  /** Per device: when its last live impostor alert went, and the timer of the next one (R14). */
  private readonly alerts = new Map<string, { last: number; timer?: NodeJS.Timeout }>();

  constructor(private readonly o: HubOptions) {
    const idle = o.limits.idleTimeoutMs;
    this.idleSweep = setInterval(() => this.sweepIdle(), Math.max(50, Math.floor(idle / 4)));
    this.idleSweep.unref();
    o.test?.attach?.({
      online: () => [...this.byId.keys()],
      tags: () => new Map(this.tags),
      inject: (id, f) => {
        const c = this.byId.get(id);
        if (c?.state !== 'ready') return false;
        this.sendFrame(c, f);
        return true;
      },
      dropAll: () => {
        for (const c of this.all) c.ws.terminate();
      },
    });
  }

  /** Take a new WebSocket connection from `addr`. */
  accept(ws: WebSocket, addr: string) {
    const l = this.o.limits;
    const now = Date.now();
    const conn: Conn = {
      ws,
      addr,
      challenge: newChallenge(systemEnv),
      state: 'hello',
      tokens: l.messageBurst,
      lastRefill: now,
      bad: 0,
      watching: new Set(),
      lastFrame: now,
    };
    ws.on('error', (e) => this.o.log.debug?.({ addr, err: e.message }, 'websocket error'));
    ws.on('close', () => this.onClose(conn));
    this.all.add(conn);
    const n = (this.perAddr.get(addr) ?? 0) + 1;
    this.perAddr.set(addr, n);
    if (this.closing) return this.close(conn, 'E_SHUTDOWN', 'server shutting down');
    if (this.all.size > l.maxConnections) return this.close(conn, 'E_SERVER_FULL', 'server full');
    if (n > l.maxConnectionsPerAddress) {
      this.o.log.warn({ addr, count: n }, 'too many connections from one address');
      return this.close(conn, 'E_TOO_MANY_CONNECTIONS', 'too many connections from your address');
    }
    conn.authTimer = setTimeout(() => {
      if (conn.state !== 'ready') this.close(conn, 'E_TIMEOUT', 'authentication timeout');
    }, l.authTimeoutMs);
    ws.on('message', (data, isBinary) => {
      conn.lastFrame = Date.now();
      try {
        this.onMessage(conn, data as Buffer, isBinary);
      } catch (e) {
        this.o.log.error(
          { err: (e as Error).message, id: conn.id && shortId(conn.id) },
          'frame handler failed',
        );
        this.close(conn, 'E_INTERNAL', 'internal error');
      }
    });
    this.sendFrame(conn, { t: 'hello', v: 1, srv: this.o.serverKey, ch: conn.challenge, time: Date.now() });
  }

  /** Close every connection with 1001 (server shutdown). */
  shutdown() {
    this.closing = true;
    clearInterval(this.idleSweep);
    for (const a of this.alerts.values()) clearTimeout(a.timer);
    for (const c of [...this.all]) this.close(c, 'E_SHUTDOWN', 'server shutting down');
  }

  /** Close `conn` for `code` (sent as the close code protocol's `closeCodeFor` maps it to). */
  private close(conn: Conn, code: CloseErrorCode, reason: string) {
    if (conn.state === 'closed') return;
    this.detach(conn);
    conn.state = 'closed';
    try {
      conn.ws.close(closeCodeFor(code), reason);
    } catch {
      conn.ws.terminate();
    }
    // A peer that never answers the close handshake is cut off.
    setTimeout(() => conn.ws.terminate(), 5_000).unref();
  }

  private onClose(conn: Conn) {
    this.detach(conn);
    conn.state = 'closed';
    if (this.all.delete(conn)) {
      const n = (this.perAddr.get(conn.addr) ?? 1) - 1;
      if (n <= 0) this.perAddr.delete(conn.addr);
      else this.perAddr.set(conn.addr, n);
    }
  }

  /** Remove a connection from routing, presence and tags (idempotent). */
  private detach(conn: Conn) {
    clearTimeout(conn.authTimer);
    for (const d of conn.watching) this.unwatch(conn, d);
    conn.watching.clear();
    if (conn.state !== 'ready' || !conn.id) return;
    const id = conn.id;
    if (this.byId.get(id) === conn) this.byId.delete(id);
    if (conn.tag && this.tags.get(conn.tag) === id) this.tags.delete(conn.tag);
    conn.tag = undefined;
    if (conn.role === 'device') {
      try {
        this.o.store.deviceSeen(id, Date.now());
      } catch (e) {
        this.o.log.error({ err: (e as Error).message }, 'store write failed');
      }
      if (!conn.replaced) {
        this.presence(id, false);
        this.o.log.info({ device: shortId(id) }, 'device disconnected');
      }
    }
    conn.state = 'closed';
  }

  private sendFrame(conn: Conn, f: ServerFrame) {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    conn.ws.send(JSON.stringify(f));
  }

  private error(conn: Conn, code: RendezvousErrorCode, ref?: string, msg?: string) {
    this.sendFrame(conn, {
      t: 'error',
      code,
      msg: (msg ?? FRAME_ERRORS[code]).slice(0, 256),
      ...(ref ? { ref } : {}),
    });
  }

  /** A malformed or misplaced frame: tell the client, and close after too many. */
  private bad(conn: Conn, code: RendezvousErrorCode, msg?: string) {
    conn.bad++;
    if (conn.bad > this.o.limits.maxBadFrames) {
      this.o.log.warn(
        { addr: conn.addr, id: conn.id && shortId(conn.id) },
        'closing a connection that sent too many bad frames',
      );
      return this.close(conn, 'E_BAD_FRAMES', 'too many bad frames');
    }
    this.error(conn, code, undefined, msg);
  }

  private takeToken(conn: Conn): boolean {
    const l = this.o.limits;
    const now = Date.now();
    conn.tokens = Math.min(
      l.messageBurst,
      conn.tokens + ((now - conn.lastRefill) / 1000) * l.messagesPerSecond,
    );
    conn.lastRefill = now;
    if (conn.tokens >= 1) {
      conn.tokens -= 1;
      return true;
    }
    // A device's replies are paid for by the messages that provoked them (review R3).
    if (conn.guard && conn.guard.credit >= 1 && !this.o.test?.unguarded?.inbound) {
      conn.guard.credit -= 1;
      return true;
    }
    return false;
  }

  /**
   * Close authenticated connections that sent no complete frame for `limits.idleTimeoutMs` (clients
   * ping every 25 s), and so also one that trickles a frame byte by byte (review R5b).
   */
  private sweepIdle() {
    const now = Date.now();
    const idle = this.o.limits.idleTimeoutMs;
    for (const c of this.all) {
      if (c.state === 'ready' && now - c.lastFrame > idle) {
        this.o.log.info({ addr: c.addr, id: c.id && shortId(c.id) }, 'closing an idle connection');
        this.close(c, 'E_TIMEOUT', 'idle timeout');
      }
    }
  }

  /**
   * May `from` send one more message to the device behind `target`? Per sender key and address,
   * and, for senders the device has not allowed, all of them together (review R3).
   */
  private admitInbound(from: Conn, target: Conn): boolean {
    const g = target.guard;
    if (!g || this.o.test?.unguarded?.inbound) return true;
    const l = this.o.limits;
    const now = Date.now();
    const bucket = (k: string) => {
      let b = g.senders.get(k);
      if (!b) {
        if (g.senders.size >= MAX_SENDER_BUCKETS) g.senders.delete(g.senders.keys().next().value as string);
        b = new TokenBucket(l.inboundPerSenderPerSecond, l.inboundPerSenderBurst, now);
        g.senders.set(k, b);
      }
      return b;
    };
    if (!bucket(`k:${from.id}`).take(now)) return false;
    if (this.allowed.get(target.id!)?.has(from.id!)) return true;
    if (!bucket(`a:${from.addr}`).take(now)) return false;
    return g.strangers.take(now);
  }

  private onMessage(conn: Conn, data: Buffer, isBinary: boolean) {
    if (conn.state === 'closed') return;
    if (!this.takeToken(conn)) {
      this.o.log.warn(
        { addr: conn.addr, id: conn.id && shortId(conn.id) },
        'closing a connection over its message rate',
      );
      return this.close(conn, 'E_RATE_LIMITED', 'message rate limit exceeded');
    }
    if (isBinary) return this.bad(conn, 'E_SCHEMA', 'binary frames are not accepted');
    if (data.length > this.o.limits.maxFrameBytes) return this.bad(conn, 'E_TOO_LARGE');
    let f: ClientFrame;
    try {
      f = decodeClientFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } catch (e) {
      const code = (e as { code?: string }).code;
      const known = code === 'E_TOO_LARGE' || code === 'E_DECODE' ? code : 'E_SCHEMA';
      return this.bad(conn, known, e instanceof HearthError ? e.message : undefined);
    }
    if (this.o.test?.frame && !this.o.test.frame(f, { id: conn.id, role: conn.role })) return;
    if (conn.state !== 'ready') {
      if (conn.state === 'hello' && f.t === 'auth') {
        conn.state = 'authenticating';
        void this.authenticate(conn, f.env, f.cn);
        return;
      }
      if (f.t === 'ping') return this.sendFrame(conn, { t: 'pong' });
      return this.bad(
        conn,
        'E_BAD_STATE',
        conn.state === 'authenticating' ? 'authentication in progress' : 'authenticate first',
      );
    }
    switch (f.t) {
      case 'auth':
        return this.bad(conn, 'E_BAD_STATE', 'already authenticated');
      case 'ping':
        return this.sendFrame(conn, { t: 'pong' });
      case 'send':
        return this.route(conn, f.to, f.m, f.ref);
      case 'watch':
        return this.watch(conn, f.d);
      case 'pair/register':
        return this.register(conn, f.tag);
      case 'allow':
        return this.allow(conn, f.k);
      case 'relay':
        return this.relay(conn, f.v, f.ref);
      case 'push':
        return this.push(conn, f);
      case 'pair/lookup':
        if (!this.mayLookUp(conn.addr, f.tag)) return this.error(conn, 'E_RATE_LIMITED');
        return this.sendFrame(conn, { t: 'pair/found', tag: f.tag, d: this.tags.get(f.tag) ?? null });
    }
  }

  private async authenticate(conn: Conn, env: unknown, cn?: string): Promise<void> {
    const log = this.o.log;
    try {
      const r = await verifyAuth(env, {
        serverKey: this.o.serverKey,
        challenge: conn.challenge,
        now: Date.now(),
        // No replay cache (review R2): the proof is bound to this connection's own random
        // challenge, so it cannot be used on another connection; a shared cache only let a
        // flood of proofs stamped in the future block every login.
      });
      const proof = cn ? await signServerProof(this.o.serverSigner, conn.challenge, cn, r.id) : undefined;
      if (conn.state !== 'authenticating') return; // closed (timeout, shutdown) meanwhile
      this.admit(conn, r.id, r.role, proof);
    } catch (e) {
      if (conn.state === 'closed') return;
      const code = e instanceof HearthError ? e.code : 'E_INTERNAL';
      const claimed = e instanceof VerificationError ? claimedDeviceId(env) : undefined;
      if (claimed) this.impostor(claimed, conn.addr, code);
      else log.info({ addr: conn.addr, code }, 'authentication failed');
      this.error(conn, 'E_AUTH', undefined, `authentication failed (${code})`);
      this.close(conn, 'E_AUTH', 'authentication failed');
    }
  }

  /**
   * May `addr` look up `tag` now? Per source address and per tag (review R7): a sweep of the tag
   * space from one address runs at `lookupsPerMinute`, not at the message rate.
   */
  private mayLookUp(addr: string, tag: string): boolean {
    const l = this.o.limits;
    const now = Date.now();
    const take = (k: string, perMinute: number, burst: number) => {
      let b = this.lookups.get(k);
      if (!b) {
        if (this.lookups.size >= 65_536) this.lookups.delete(this.lookups.keys().next().value as string);
        b = new TokenBucket(perMinute / 60, burst, now);
        this.lookups.set(k, b);
      }
      return b.take(now);
    };
    return (
      take(`a:${addr}`, l.lookupsPerMinute, l.lookupBurst) &&
      take(`t:${tag}`, l.lookupsPerTagPerMinute, l.lookupsPerTagPerMinute)
    );
  }

  /** A failed proof for a device ID: count it, and tell the device now if it is connected. */
  private impostor(deviceId: string, addr: string, code: string) {
    this.o.log.warn(
      { device: shortId(deviceId), addr, code },
      'failed attempt to connect as a device: possible attack',
    );
    try {
      this.o.store.countImpostor(deviceId, Date.now());
      this.alertSoon(deviceId);
    } catch (e) {
      this.o.log.error({ err: (e as Error).message }, 'store write failed');
    }
  }

  /**
   * Tell a connected device of the failed attempts counted for it: at once if the last alert is
   * older than `limits.alertIntervalMs`, else once that much time has passed, with everything
   * counted meanwhile in one count (review R14: a flood of attempts is one alert a minute).
   */
  private alertSoon(deviceId: string) {
    const a = this.alerts.get(deviceId) ?? { last: 0 };
    this.alerts.set(deviceId, a);
    if (a.timer) return; // one is already due
    const send = () => {
      a.timer = undefined;
      const live = this.byId.get(deviceId);
      if (live?.role !== 'device' || live.state !== 'ready') return; // told at its next ready
      try {
        const count = this.o.store.takeImpostors(deviceId);
        if (!count) return;
        a.last = Date.now();
        this.sendFrame(live, { t: 'alert', code: 'E_IMPOSTOR', count });
      } catch (e) {
        this.o.log.error({ err: (e as Error).message }, 'store write failed');
      }
    };
    const wait = a.last + this.o.limits.alertIntervalMs - Date.now();
    if (wait <= 0) return send();
    a.timer = setTimeout(send, wait);
    a.timer.unref();
    if (this.alerts.size > this.o.limits.maxConnections) {
      const [k, v] = this.alerts.entries().next().value as [string, { timer?: NodeJS.Timeout }];
      clearTimeout(v.timer);
      this.alerts.delete(k);
    }
  }

  private admit(conn: Conn, id: string, role: 'device' | 'viewer', proof?: string) {
    clearTimeout(conn.authTimer);
    const prev = this.byId.get(id);
    if (prev && prev !== conn) {
      prev.replaced = true;
      this.o.log.info({ id: shortId(id) }, 'a newer connection replaces an existing one');
      this.close(prev, 'E_REPLACED', 'replaced by a newer connection');
    }
    conn.state = 'ready';
    conn.id = id;
    conn.role = role;
    this.byId.set(id, conn);
    if (role === 'device') {
      const l = this.o.limits;
      conn.guard = {
        senders: new Map(),
        strangers: new TokenBucket(l.strangersPerSecond, l.strangersBurst, Date.now()),
        credit: 0,
        recent: new Map(),
        relay: new TokenBucket(l.relayPerMinute / 60, l.relayBurst, Date.now()),
      };
    }
    let impostors = 0;
    if (role === 'device') {
      try {
        this.o.store.deviceSeen(id, Date.now());
        impostors = this.o.store.takeImpostors(id);
      } catch (e) {
        this.o.log.error({ err: (e as Error).message }, 'store write failed');
      }
    }
    let ice: IceServer[] = [];
    try {
      ice =
        this.o.test?.ice?.(id) ??
        (this.o.test?.unguarded?.relay
          ? [...this.o.iceFor(id), ...(this.o.relayFor()?.ice ?? [])].slice(0, 8)
          : this.o.iceFor(id));
    } catch (e) {
      this.o.log.error({ err: (e as Error).message }, 'cannot issue ICE credentials');
    }
    this.sendFrame(conn, {
      t: 'ready',
      id,
      ice,
      ...(impostors ? { impostors } : {}),
      ...(proof ? { proof } : {}),
    });
    this.o.test?.admitted?.(id, role);
    this.o.log.info({ id: shortId(id), role, ...(impostors ? { impostors } : {}) }, 'authenticated');
    if (role === 'device') this.presence(id, true);
  }

  private route(conn: Conn, to: string, m: unknown, ref?: string) {
    const target = this.byId.get(to);
    if (target?.state !== 'ready') return this.error(conn, 'E_OFFLINE', ref);
    const text = JSON.stringify({ t: 'recv', from: conn.id!, m } satisfies ServerFrame);
    if (Buffer.byteLength(text) > this.o.limits.maxFrameBytes) return this.error(conn, 'E_TOO_LARGE', ref);
    if (target.ws.bufferedAmount > MAX_BUFFERED) return this.error(conn, 'E_CONGESTED', ref);
    if (!this.admitInbound(conn, target)) return this.error(conn, 'E_RATE_LIMITED', ref);
    const g = target.guard;
    if (g) {
      g.credit = Math.min(this.o.limits.messageBurst, g.credit + 1);
      if (conn.role === 'viewer') {
        g.recent.delete(conn.id!);
        g.recent.set(conn.id!, Date.now());
        if (g.recent.size > MAX_RECENT) g.recent.delete(g.recent.keys().next().value as string);
      }
    }
    target.ws.send(text);
  }

  /**
   * A device asks for relay credentials for a session with viewer `v` (review R6). Granted only
   * when `v` is on the device's allow list and messaged it within `limits.relaySessionMs`, at most
   * `limits.relayPerMinute` per device; then both get fresh credentials, each its own username.
   * Nobody else is ever given TURN credentials, so throwaway keys cannot fill the relay.
   */
  private relay(conn: Conn, v: string, ref?: string) {
    if (conn.role !== 'device' || !conn.guard)
      return this.bad(conn, 'E_BAD_STATE', 'only devices ask for relay credentials');
    const d = conn.id!;
    const g = conn.guard;
    const now = Date.now();
    const seen = g.recent.get(v);
    if (!this.allowed.get(d)?.has(v) || seen === undefined || now - seen > this.o.limits.relaySessionMs)
      return this.error(conn, 'E_NO_SESSION', ref);
    const viewer = this.byId.get(v);
    if (viewer?.state !== 'ready' || viewer.role !== 'viewer') return this.error(conn, 'E_OFFLINE', ref);
    if (!g.relay.take(now)) return this.error(conn, 'E_RATE_LIMITED', ref);
    let forDevice: RelayGrant | undefined;
    let forViewer: RelayGrant | undefined;
    try {
      forDevice = this.o.relayFor();
      forViewer = this.o.relayFor();
    } catch (e) {
      this.o.log.error({ err: (e as Error).message }, 'cannot issue relay credentials');
    }
    const none: RelayGrant = { ice: [], until: now };
    const a = forDevice ?? none;
    const b = forViewer ?? none;
    this.sendFrame(conn, { t: 'relay', peer: v, ice: a.ice, until: a.until, ...(ref ? { ref } : {}) });
    this.sendFrame(viewer, { t: 'relay', peer: d, ice: b.ice, until: b.until });
  }

  /**
   * A device's Web Push notification: the gateway checks the endpoint and the device's budget and
   * POSTs it with VAPID; the answer goes back to the device with its `ref`.
   */
  private push(conn: Conn, f: Extract<ClientFrame, { t: 'push' }>) {
    if (conn.role !== 'device') return this.bad(conn, 'E_BAD_STATE', 'only devices send notifications');
    const gw = this.o.push;
    if (!gw) return this.error(conn, 'E_PUSH_FAILED', f.ref, 'this server does not send notifications');
    let body: Uint8Array;
    try {
      body = fromB64u(f.body, MAX_PUSH_BODY_BYTES);
    } catch {
      return this.bad(conn, 'E_DECODE', 'push body is not base64url');
    }
    const id = conn.id!;
    gw.send(id, { endpoint: f.endpoint, body, ttl: f.ttl, urgency: f.urgency }).then(
      (r) => {
        if (conn.state !== 'ready') return;
        if (r.ok) this.sendFrame(conn, { t: 'push/ok', ref: f.ref });
        else this.error(conn, r.code, f.ref);
      },
      (e) => {
        this.o.log.error({ err: (e as Error).message }, 'push failed');
        if (conn.state === 'ready') this.error(conn, 'E_PUSH_FAILED', f.ref);
      },
    );
  }

  /** A device's allow list: presence follows it, and its viewers skip the strangers' cap. */
  private allow(conn: Conn, keys: string[]) {
    if (conn.role !== 'device') return this.bad(conn, 'E_BAD_STATE', 'only devices send allow lists');
    const d = conn.id!;
    const before = this.allowed.get(d);
    const next = new Set(keys);
    this.allowed.delete(d); // re-inserted last: the oldest list goes first when over the bound
    this.allowed.set(d, next);
    if (this.allowed.size > this.o.limits.maxConnections)
      this.allowed.delete(this.allowed.keys().next().value as string);
    // Watchers who gain the device see it online; those who lose it see it gone.
    for (const c of this.watchers.get(d) ?? []) {
      const was = before?.has(c.id!) ?? false;
      const is = next.has(c.id!);
      if (is && !was) this.sendFrame(c, { t: 'presence', d, online: true });
      if (was && !is) this.sendFrame(c, { t: 'presence', d, online: false });
    }
  }

  /** Is `viewer` on device `d`'s allow list (may it see the device's presence)? */
  private mayWatch(viewer: Conn, d: string): boolean {
    if (this.o.test?.unguarded?.presence) return true;
    return this.allowed.get(d)?.has(viewer.id!) ?? false;
  }

  private watch(conn: Conn, ids: string[]) {
    const want = new Set(ids.slice(0, this.o.limits.maxWatch));
    for (const d of conn.watching) if (!want.has(d)) this.unwatch(conn, d);
    conn.watching = want;
    for (const d of want) {
      let set = this.watchers.get(d);
      if (!set) {
        set = new Set();
        this.watchers.set(d, set);
      }
      set.add(conn);
      // Presence follows the device's allow list (review R5d): anyone else sees it offline.
      const online = this.byId.get(d)?.role === 'device' && this.mayWatch(conn, d);
      this.sendFrame(conn, { t: 'presence', d, online });
    }
  }

  private unwatch(conn: Conn, d: string) {
    const set = this.watchers.get(d);
    set?.delete(conn);
    if (set?.size === 0) this.watchers.delete(d);
  }

  private presence(d: string, online: boolean) {
    for (const c of this.watchers.get(d) ?? [])
      if (this.mayWatch(c, d)) this.sendFrame(c, { t: 'presence', d, online });
  }

  private register(conn: Conn, tag: string | null) {
    if (conn.role !== 'device') return this.bad(conn, 'E_BAD_STATE', 'only devices register lookup tags');
    const id = conn.id!;
    if (tag !== null) {
      const holder = this.tags.get(tag);
      if (holder && holder !== id) return this.error(conn, 'E_TAG_TAKEN');
    }
    if (conn.tag && this.tags.get(conn.tag) === id) this.tags.delete(conn.tag);
    conn.tag = undefined;
    if (tag !== null) {
      this.tags.set(tag, id);
      conn.tag = tag;
    }
  }
}
