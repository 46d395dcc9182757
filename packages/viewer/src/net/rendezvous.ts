/**
 * The browser's connection to the rendezvous server (`wss://<page host>/ws`).
 *
 * Authenticates with the viewer key (createAuth, role `viewer`), keeps the connection alive with
 * pings, reconnects with jittered exponential backoff, re-sends the presence watch list after each
 * reconnect, and hands every validated server frame to listeners. It never sees media, and every
 * message it routes is authenticated end to end by its receiver: the server is trusted for
 * delivery only.
 */
import {
  type ClientFrame,
  type CryptoEnv,
  createAuth,
  decodeServerFrame,
  type IceServer,
  type ServerFrame,
  type Signer,
} from '@hearth/protocol';
import { backoffDelay } from '../core/backoff.js';

const WS_CONNECTING = 0;
const WS_OPEN = 1;

type Frame<T extends ServerFrame['t']> = Extract<ServerFrame, { t: T }>;

/** Events and their payloads. */
export interface RendezvousEvents {
  /** Authenticated: `ready` frame (our ID and the ICE servers to use). */
  ready: Frame<'ready'>;
  /** A message routed to us. */
  recv: Frame<'recv'>;
  presence: Frame<'presence'>;
  'pair/found': Frame<'pair/found'>;
  alert: Frame<'alert'>;
  /** Server error frame (e.g. a `send` that could not be delivered, with its `ref`). */
  error: Frame<'error'>;
  /** Connection state changes. */
  status: RendezvousStatus;
}
export type RendezvousStatus = 'connecting' | 'authenticating' | 'ready' | 'down';

/** The WebSocket constructor (injectable for tests). */
export type WebSocketCtor = new (url: string) => WebSocket;

/** Options of {@link RendezvousClient}. */
export interface RendezvousOptions {
  url: string;
  signer: Signer;
  env: CryptoEnv;
  WebSocketImpl?: WebSocketCtor;
  /** Ping interval (ms). Default 25 s. */
  pingMs?: number;
  /** How long hello+auth may take before the attempt is abandoned (ms). Default 15 s. */
  handshakeMs?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

type Listener<K extends keyof RendezvousEvents> = (e: RendezvousEvents[K]) => void;

export class RendezvousClient {
  private ws: WebSocket | undefined;
  private attempt = 0;
  private stopped = true;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly listeners = new Map<keyof RendezvousEvents, Set<(e: never) => void>>();
  private readonly watched = new Set<string>();
  private refSeq = 0;
  /** ICE servers from the last `ready` (TURN credentials are short-lived: re-read per session). */
  ice: IceServer[] = [];
  /** Our ID as the server knows it (`huk_…`). */
  id: string | undefined;
  status: RendezvousStatus = 'down';
  /** Frames from the server that failed validation (dropped). */
  badFrames = 0;

  constructor(private readonly o: RendezvousOptions) {}

  on<K extends keyof RendezvousEvents>(event: K, f: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(f as (e: never) => void);
    const live = set;
    return () => live.delete(f as (e: never) => void);
  }

  private emit<K extends keyof RendezvousEvents>(event: K, e: RendezvousEvents[K]): void {
    for (const f of this.listeners.get(event) ?? []) {
      try {
        (f as Listener<K>)(e);
      } catch (err) {
        console.error('rendezvous listener failed', err);
      }
    }
  }

  get ready(): boolean {
    return this.status === 'ready';
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Reconnect now (e.g. the browser came back online), skipping the backoff wait. */
  nudge(): void {
    if (this.stopped || this.status !== 'down') return;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.teardown();
    this.setStatus('down');
  }

  /** Send a frame; false when not authenticated. */
  send(frame: ClientFrame): boolean {
    if (this.status !== 'ready' || !this.ws || this.ws.readyState !== WS_OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Route `m` to a device; returns the `ref` the server echoes in an error frame, or undefined if not sent. */
  sendTo(to: string, m: unknown): string | undefined {
    const ref = `r${++this.refSeq}`;
    return this.send({ t: 'send', to, m, ref }) ? ref : undefined;
  }

  /** Add devices to the presence watch list (kept across reconnects). */
  watch(ids: Iterable<string>): void {
    for (const id of ids) this.watched.add(id);
    if (this.ready && this.watched.size) this.send({ t: 'watch', d: [...this.watched].slice(0, 256) });
  }

  private setStatus(s: RendezvousStatus): void {
    if (this.status === s) return;
    this.status = s;
    this.emit('status', s);
  }

  private connect(): void {
    this.teardown();
    this.setStatus('connecting');
    const Ctor = this.o.WebSocketImpl ?? globalThis.WebSocket;
    let ws: WebSocket;
    try {
      ws = new Ctor(this.o.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.handshakeTimer = setTimeout(() => ws.close(4000, 'handshake timeout'), this.o.handshakeMs ?? 15_000);
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws !== ws) return;
      if (typeof ev.data !== 'string') {
        this.badFrames++;
        return;
      }
      let f: ServerFrame;
      try {
        f = decodeServerFrame(ev.data);
      } catch {
        this.badFrames++;
        return;
      }
      void this.onFrame(ws, f);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.teardown();
      this.setStatus('down');
      if (!this.stopped) this.scheduleReconnect();
    };
    ws.onerror = () => {
      // onclose follows and schedules the retry.
    };
  }

  private async onFrame(ws: WebSocket, f: ServerFrame): Promise<void> {
    switch (f.t) {
      case 'hello': {
        if (this.status !== 'connecting') return;
        this.setStatus('authenticating');
        const env = await createAuth(this.o.signer, 'viewer', f, this.o.env);
        if (this.ws === ws && ws.readyState === WS_OPEN) ws.send(JSON.stringify({ t: 'auth', env }));
        return;
      }
      case 'ready':
        if (this.status !== 'authenticating') return;
        clearTimeout(this.handshakeTimer);
        this.attempt = 0;
        this.ice = f.ice;
        this.id = f.id;
        this.setStatus('ready');
        this.pingTimer = setInterval(() => this.send({ t: 'ping' }), this.o.pingMs ?? 25_000);
        if (this.watched.size) this.send({ t: 'watch', d: [...this.watched].slice(0, 256) });
        this.emit('ready', f);
        return;
      case 'pong':
        return;
      default:
        if (this.status !== 'ready' && f.t !== 'error') return;
        this.emit(f.t, f as never);
    }
  }

  private scheduleReconnect(): void {
    clearTimeout(this.retryTimer);
    const delay = backoffDelay(this.attempt++, {
      baseMs: this.o.baseBackoffMs ?? 500,
      maxMs: this.o.maxBackoffMs ?? 30_000,
    });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private teardown(): void {
    clearTimeout(this.handshakeTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState === WS_OPEN || ws.readyState === WS_CONNECTING) ws.close(1000);
    }
  }
}
