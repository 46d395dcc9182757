/**
 * `@hearth/server/testing`: the real rendezvous server for tests, with a test-only handle (in the
 * spirit of tailscale's derpserver `fortest.go`). Tests run this instead of a fake rendezvous, so
 * what they exercise is what ships: the real `hello`/`auth` check, routing, presence, lookup tags,
 * limits and close codes.
 *
 * ```ts
 * const hub = await startTestHub();             // real startServer on 127.0.0.1:0, temp data dir
 * hub.frames                                     // every client frame the hub decoded, by sender
 * hub.intercept = (f, from) => f.t !== 'ping';   // swallow frames before the hub acts on them
 * hub.inject(id, { t: 'alert', ... })            // send a server frame as the hub would
 * const dev = await hub.peer(signer, 'device');  // a scripted client on the protocol's RendezvousCore
 * ```
 *
 * Not for production: everything here listens on loopback only and keeps its state in a temp dir.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ClientFrame,
  deviceIdFromKey,
  encodeId,
  type IceServer,
  RendezvousCore,
  type RendezvousCoreOptions,
  type RendezvousSocketFactory,
  type ServerFrame,
  type Signer,
  systemEnv,
} from '@hearth/protocol';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import type { ServerConfig } from './config.js';
import type { HubTestAccess, HubTestHooks } from './hub.js';
import { type HearthServer, startServer } from './server.js';

/** One client frame as the hub decoded it. */
export interface TestHubFrame {
  /** The authenticated sender, or '?' before authentication. */
  from: string;
  role?: 'device' | 'viewer';
  frame: ClientFrame;
}

/** Options of {@link startTestHub}. */
export interface TestHubOptions {
  /** Serve the viewer app from this directory (default: the viewer package's dist/, as production). */
  webRoot?: string;
  /** Serve the viewer at all (default true). */
  serveViewer?: boolean;
  limits?: Partial<ServerConfig['limits']>;
  log?: Logger;
  /** Turn defences off, for controls (see `HubTestHooks.unguarded`). */
  unguarded?: HubTestHooks['unguarded'];
  /**
   * Run the built-in relay (UDP and TCP on free loopback ports, loopback peers allowed), so `relay`
   * frames carry real TURN credentials. Default off: `relay` frames then carry none.
   */
  relay?: boolean;
  /** Web Push options (e.g. `allowInsecureLoopback` for a loopback push service). */
  push?: Partial<ServerConfig['push']>;
}

/** A real hub on 127.0.0.1, and the levers a test may pull. */
export interface TestHub {
  /** `http://127.0.0.1:<port>` (the viewer app, when served, and `/ws`). */
  readonly url: string;
  /** `ws://127.0.0.1:<port>/ws`. */
  readonly wsUrl: string;
  /** The hub's key, as sent in `hello.srv`. */
  readonly serverKey: string;
  /** Every client frame the hub decoded, in order (also the ones `intercept` or `silent` swallowed). */
  readonly frames: TestHubFrame[];
  /** IDs that authenticated, in order. */
  readonly authenticated: string[];
  /** Call `f` with each ID as it authenticates (from now on); returns a function that stops it. */
  onAuthenticated(f: (id: string) => void): () => void;
  /** ICE servers handed out in `ready` (default none: the built-in relay is off). */
  ice: IceServer[];
  /** Swallow every client frame: the server goes silent, as on a half-open connection. */
  silent: boolean;
  /** Sees each client frame before the hub acts on it; return false to swallow it. */
  intercept:
    | ((f: ClientFrame, from: { id?: string; role?: 'device' | 'viewer' }) => boolean | undefined)
    | undefined;
  /** IDs connected and authenticated now. */
  online(): string[];
  /** Registered lookup tags → device ID (a snapshot). */
  readonly tags: Map<string, string>;
  /** Send a server frame to a connected ID, as the hub would. */
  inject(id: string, f: ServerFrame): boolean;
  /** Cut every connection without a close handshake (clients reconnect). */
  dropAll(): void;
  /** A scripted client for this hub (started; resolves once it is authenticated). */
  peer(signer: Signer, role: 'device' | 'viewer', o?: TestPeerOptions): Promise<TestPeer>;
  /** The running server (for its `close`, `port`, ...). */
  readonly server: HearthServer;
  /** The server's data directory (a temporary one, removed by `close`). */
  readonly dataDir: string;
  close(): Promise<void>;
}

/** Start the real server (hub, store, viewer files; no relay, no TLS) on 127.0.0.1:0. */
export async function startTestHub(o: TestHubOptions = {}): Promise<TestHub> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hearth-test-hub-'));
  let access: HubTestAccess | undefined;
  const frames: TestHubFrame[] = [];
  const authenticated: string[] = [];
  const peers = new Set<TestPeer>();
  const onAuth = new Set<(id: string) => void>();
  const state: Pick<TestHub, 'ice' | 'silent' | 'intercept'> = {
    ice: [],
    silent: false,
    intercept: undefined,
  };
  let server: HearthServer;
  try {
    server = await startServer(
      {
        dataDir,
        host: '127.0.0.1',
        port: 0,
        tls: { mode: 'off' },
        relay: o.relay ? { udpPort: 0, tcpPort: 0, allowLoopbackPeers: true } : { enabled: false },
        serveViewer: o.serveViewer ?? true,
        ...(o.webRoot ? { webRoot: o.webRoot } : {}),
        ...(o.limits ? { limits: o.limits } : {}),
        ...(o.push ? { push: o.push } : {}),
      },
      {
        ...(o.log ? { log: o.log } : {}),
        hubTestHooks: {
          ...(o.unguarded ? { unguarded: o.unguarded } : {}),
          attach: (a) => {
            access = a;
          },
          frame: (f, from) => {
            frames.push({ from: from.id ?? '?', ...(from.role ? { role: from.role } : {}), frame: f });
            if (state.silent) return false;
            return state.intercept?.(f, from) !== false;
          },
          admitted: (id) => {
            authenticated.push(id);
            for (const f of onAuth) f(id);
          },
          ice: () => state.ice,
        },
      },
    );
  } catch (e) {
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  const hub = access;
  if (!hub) throw new Error('the hub did not attach its test access');
  const wsUrl = `${server.url.replace(/^http/, 'ws')}/ws`;
  const handle: TestHub = {
    url: server.url,
    wsUrl,
    serverKey: server.serverKey,
    frames,
    authenticated,
    onAuthenticated(f) {
      onAuth.add(f);
      return () => onAuth.delete(f);
    },
    get ice() {
      return state.ice;
    },
    set ice(v) {
      state.ice = v;
    },
    get silent() {
      return state.silent;
    },
    set silent(v) {
      state.silent = v;
    },
    get intercept() {
      return state.intercept;
    },
    set intercept(v) {
      state.intercept = v;
    },
    online: () => hub.online(),
    get tags() {
      return hub.tags();
    },
    inject: (id, f) => hub.inject(id, f),
    dropAll: () => hub.dropAll(),
    async peer(signer, role, po = {}) {
      const p = testPeer(wsUrl, signer, role, po);
      peers.add(p);
      p.start();
      await p.whenReady();
      return p;
    },
    server,
    dataDir,
    async close() {
      for (const p of peers) p.stop();
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return handle;
}

/** A `ws` socket for the core (tests: plain ws:// on loopback). */
export function testSocketFactory(url: string): RendezvousSocketFactory {
  return (events) => {
    const ws = new WebSocket(url, { maxPayload: 256 * 1024 });
    ws.on('message', (data, isBinary) => (isBinary ? events.binary() : events.text(data.toString())));
    ws.on('close', (code, reason) => events.closed(code, reason.toString()));
    ws.on('error', () => {}); // 'close' follows
    return {
      send(text) {
        if (ws.readyState !== WebSocket.OPEN) return false;
        ws.send(text);
        return true;
      },
      close(code, reason) {
        if (code === 1000 && ws.readyState === WebSocket.OPEN) ws.close(1000, reason);
        else ws.terminate();
      },
    };
  };
}

/** Options of a {@link TestPeer}. */
export type TestPeerOptions = Partial<Omit<RendezvousCoreOptions, 'socket' | 'signer' | 'role'>>;

/** A scripted rendezvous client: the protocol's RendezvousCore over `ws`, with an inbox. */
export interface TestPeer {
  readonly core: RendezvousCore;
  /** Our ID (hdid_ for a device, huk_ for a viewer). */
  readonly id: string;
  /** Messages routed to us, oldest first (taken out by {@link next}). */
  readonly inbox: { from: string; m: unknown }[];
  /** Wait for (and take) the first message matching `pred`. */
  next(
    pred?: (m: unknown, from: string) => boolean,
    timeoutMs?: number,
  ): Promise<{ from: string; m: unknown }>;
  sendTo(to: string, m: unknown, ref?: string): boolean;
  /** Resolves when authenticated (at once if it is). */
  whenReady(timeoutMs?: number): Promise<void>;
  start(): void;
  stop(): void;
}

/** A scripted client for the server at `wsUrl` (not started). */
export function testPeer(
  wsUrl: string,
  signer: Signer,
  role: 'device' | 'viewer',
  o: TestPeerOptions = {},
): TestPeer {
  const core = new RendezvousCore({
    env: systemEnv,
    retry: { baseMs: 20, maxMs: 200 },
    ...o,
    socket: testSocketFactory(wsUrl),
    signer,
    role,
  });
  const inbox: { from: string; m: unknown }[] = [];
  const waiters = new Set<() => void>();
  const poke = () => {
    for (const w of [...waiters]) w();
  };
  core.on('recv', (f) => {
    inbox.push({ from: f.from, m: f.m });
    poke();
  });
  core.on('status', poke);
  const wait = <T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const v = probe();
        if (v === undefined) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(v);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`test peer ${role}: timed out waiting for ${what}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return {
    core,
    id: role === 'device' ? deviceIdFromKey(signer.publicKey) : encodeId('userKey', signer.publicKey),
    inbox,
    next(pred = () => true, timeoutMs = 10_000) {
      return wait(
        'a message',
        () => {
          const i = inbox.findIndex((x) => pred(x.m, x.from));
          return i >= 0 ? inbox.splice(i, 1)[0] : undefined;
        },
        timeoutMs,
      );
    },
    sendTo: (to, m, ref) => core.send(ref ? { t: 'send', to, m, ref } : { t: 'send', to, m }),
    whenReady: (timeoutMs = 10_000) =>
      wait('ready', () => (core.ready ? true : undefined), timeoutMs).then(() => {}),
    start: () => core.start(),
    stop: () => core.stop(),
  };
}

export { type ReceivedPush, startTestPushService, type TestPushService } from './test-push-service.js';
