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
  HearthError,
  type IceServer,
  newChallenge,
  type RendezvousErrorCode,
  type ServerFrame,
  shortId,
  systemEnv,
  VerificationError,
  verifyAuth,
} from '@hearth/protocol';
import type { WebSocket } from 'ws';
import type { ServerConfig } from './config.js';
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
  E_TAG_TAKEN: 'another device holds this lookup tag',
  E_AUTH: 'authentication failed',
};

/** Most bytes queued towards one connection before sends to it are refused. */
const MAX_BUFFERED = 4 * 1024 * 1024;

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
}

export interface HubOptions {
  serverKey: string;
  limits: ServerConfig['limits'];
  store: Store;
  log: Logger;
  /** ICE servers (with fresh credentials) for an authenticated ID. */
  iceFor: (id: string) => IceServer[];
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
}

export class Hub {
  private readonly all = new Set<Conn>();
  private readonly byId = new Map<string, Conn>();
  private readonly perAddr = new Map<string, number>();
  private readonly watchers = new Map<string, Set<Conn>>();
  private readonly tags = new Map<string, string>();
  private closing = false;

  constructor(private readonly o: HubOptions) {
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
    if (conn.tokens < 1) return false;
    conn.tokens -= 1;
    return true;
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
        void this.authenticate(conn, f.env);
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
      case 'pair/lookup':
        return this.sendFrame(conn, { t: 'pair/found', tag: f.tag, d: this.tags.get(f.tag) ?? null });
    }
  }

  private async authenticate(conn: Conn, env: unknown): Promise<void> {
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
      if (conn.state !== 'authenticating') return; // closed (timeout, shutdown) meanwhile
      this.admit(conn, r.id, r.role);
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

  /** A failed proof for a device ID: count it, and tell the device now if it is connected. */
  private impostor(deviceId: string, addr: string, code: string) {
    this.o.log.warn(
      { device: shortId(deviceId), addr, code },
      'failed attempt to connect as a device: possible attack',
    );
    try {
      const count = this.o.store.countImpostor(deviceId, Date.now());
      const live = this.byId.get(deviceId);
      if (live && live.role === 'device') {
        this.o.store.takeImpostors(deviceId);
        this.sendFrame(live, { t: 'alert', code: 'E_IMPOSTOR', count });
      }
    } catch (e) {
      this.o.log.error({ err: (e as Error).message }, 'store write failed');
    }
  }

  private admit(conn: Conn, id: string, role: 'device' | 'viewer') {
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
      ice = this.o.test?.ice?.(id) ?? this.o.iceFor(id);
    } catch (e) {
      this.o.log.error({ err: (e as Error).message }, 'cannot issue ICE credentials');
    }
    this.sendFrame(conn, { t: 'ready', id, ice, ...(impostors ? { impostors } : {}) });
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
    target.ws.send(text);
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
      const online = this.byId.get(d)?.role === 'device';
      this.sendFrame(conn, { t: 'presence', d, online });
    }
  }

  private unwatch(conn: Conn, d: string) {
    const set = this.watchers.get(d);
    set?.delete(conn);
    if (set?.size === 0) this.watchers.delete(d);
  }

  private presence(d: string, online: boolean) {
    for (const c of this.watchers.get(d) ?? []) this.sendFrame(c, { t: 'presence', d, online });
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
