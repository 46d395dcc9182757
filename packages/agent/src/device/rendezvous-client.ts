/**
 * The agent's connection to the rendezvous server: authenticates with the device key, reconnects
 * with jittered exponential backoff, and hands routed messages to the device logic.
 */
import { EventEmitter } from 'node:events';
import {
  CertificatePinError,
  normalizeFingerprint,
  type OpenWebSocketOptions,
  openWebSocket,
} from '@hearth/node';
import {
  type ClientFrame,
  ConfigError,
  createAuth,
  decodeServerFrame,
  type IceServer,
  type ServerFrame,
  type Signer,
  systemEnv,
} from '@hearth/protocol';
import WebSocket from 'ws';

/** Options of {@link RendezvousClient}. */
export interface RendezvousClientOptions {
  /** `ws://` or `wss://` URL of the server's `/ws` endpoint. */
  url: string;
  signer: Signer;
  role: 'device' | 'viewer';
  /** SHA-256 fingerprint (hex, any case, colons allowed) of a self-signed server certificate to pin. */
  pinnedCertSha256?: string;
  /** Accept any certificate (tests against a self-signed server without pinning). */
  insecure?: boolean;
  /** First retry delay (ms); doubles up to maxBackoffMs, with full jitter. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Ping interval (ms, default 25 000). A connection that has sent nothing for 2.5 intervals is
   * considered dead (a silent half-open TCP connection) and is dropped and re-established.
   */
  heartbeatMs?: number;
  /** Drop a connection that is not authenticated (`ready`) within this long (ms). Default 20 000. */
  readyTimeoutMs?: number;
  /** Called for logging; never receives message payloads. */
  log?: (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => void;
}

/**
 * Events: `ready` (ServerFrame 'ready'), `recv` (from, m), `alert` (frame), `presence`,
 * `pair/found`, `error-frame`, `disconnected` (code, reason).
 */
export class RendezvousClient extends EventEmitter {
  private ws: WebSocket | undefined;
  private attempt = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastSeen = 0;
  /** ICE servers from the last `ready`. */
  ice: IceServer[] = [];
  /** True while authenticated. */
  connected = false;

  private readonly wsOptions: OpenWebSocketOptions;

  constructor(private readonly o: RendezvousClientOptions) {
    super();
    this.wsOptions = {
      maxPayload: 256 * 1024,
      handshakeTimeout: 10_000,
      ...(o.pinnedCertSha256 ? { pinnedCertSha256: o.pinnedCertSha256 } : {}),
      ...(o.insecure ? { insecure: true } : {}),
    };
    // A malformed pin, or a pin on ws://, is a configuration error now, not a failure per retry.
    if (o.pinnedCertSha256) {
      normalizeFingerprint(o.pinnedCertSha256);
      if (!o.url.startsWith('wss:'))
        throw new ConfigError('E_CONFIG', `a pinned certificate needs an https:// server URL, got ${o.url}`);
    }
  }

  /** Connect (and keep reconnecting until {@link close}). */
  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Send a frame; returns false when not connected. */
  send(frame: ClientFrame): boolean {
    if (!this.ws || !this.connected || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Route a message to a peer by its ID. */
  sendTo(to: string, m: unknown, ref?: string): boolean {
    return this.send(ref ? { t: 'send', to, m, ref } : { t: 'send', to, m });
  }

  /** Stop for good. */
  close(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    this.ws?.close(1000, 'bye');
    this.ws = undefined;
    this.connected = false;
  }

  private log(level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>): void {
    this.o.log?.(level, msg, extra);
  }

  private connect(): void {
    if (this.stopped) return;
    // @hearth/node's client: a pin is checked on the TLS socket, before any frame is read.
    const ws = openWebSocket(this.o.url, this.wsOptions);
    this.ws = ws;
    const readyTimer = setTimeout(() => {
      if (this.ws === ws && !this.connected) {
        this.log('warn', 'the server did not complete authentication: reconnecting');
        ws.terminate();
      }
    }, this.o.readyTimeoutMs ?? 20_000);
    readyTimer.unref?.();
    ws.once('close', () => clearTimeout(readyTimer));
    ws.on('message', (data, isBinary) => {
      this.lastSeen = Date.now();
      if (isBinary) return;
      let f: ServerFrame;
      try {
        f = decodeServerFrame(data.toString());
      } catch (e) {
        this.log('warn', 'bad frame from server', { code: (e as { code?: string }).code });
        return;
      }
      void this.onFrame(ws, f);
    });
    ws.on('close', (code, reason) => {
      const was = this.connected;
      this.connected = false;
      clearInterval(this.heartbeat);
      if (this.ws === ws) this.ws = undefined;
      this.emit('disconnected', code, reason.toString());
      if (was) this.log('warn', 'disconnected from server', { code });
      this.schedule();
    });
    ws.on('error', (e) => {
      if (e instanceof CertificatePinError)
        this.log('error', 'server certificate does not match the pinned fingerprint: possible attack');
      else this.log('warn', 'server connection error', { error: (e as Error).message });
    });
  }

  private schedule(): void {
    if (this.stopped) return;
    const min = this.o.minBackoffMs ?? 500;
    const max = this.o.maxBackoffMs ?? 30_000;
    const cap = Math.min(max, min * 2 ** Math.min(this.attempt, 16));
    const delay = min / 2 + Math.random() * cap; // jitter spreads a reconnect storm
    this.attempt++;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  private startHeartbeat(ws: WebSocket): void {
    clearInterval(this.heartbeat);
    const every = this.o.heartbeatMs ?? 25_000;
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastSeen > every * 2.5) {
        this.log('warn', 'no word from the server: reconnecting');
        ws.terminate();
        return;
      }
      this.send({ t: 'ping' });
    }, every);
    this.heartbeat.unref?.();
  }

  private async onFrame(ws: WebSocket, f: ServerFrame): Promise<void> {
    switch (f.t) {
      case 'hello': {
        const env = await createAuth(this.o.signer, this.o.role, f, systemEnv);
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ t: 'auth', env }));
        return;
      }
      case 'ready':
        this.connected = true;
        this.attempt = 0;
        this.ice = f.ice;
        this.startHeartbeat(ws);
        this.emit('ready', f);
        return;
      case 'recv':
        this.emit('recv', f.from, f.m);
        return;
      case 'alert':
        this.emit('alert', f);
        return;
      case 'presence':
        this.emit('presence', f);
        return;
      case 'pair/found':
        this.emit('pair/found', f);
        return;
      case 'error':
        this.emit('error-frame', f);
        return;
      case 'pong':
        return;
    }
  }
}
