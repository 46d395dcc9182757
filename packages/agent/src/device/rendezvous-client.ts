/**
 * The agent's connection to the rendezvous server: the protocol's {@link RendezvousCore} (handshake,
 * heartbeat, the one retry schedule) over a `ws` WebSocket, with certificate pinning, re-emitted as
 * Node events for the device logic.
 */
import { EventEmitter } from 'node:events';
import { CertificatePinError, normalizeFingerprint, openWebSocket } from '@hearth/node';
import {
  type ClientFrame,
  ConfigError,
  type CryptoEnv,
  type IceServer,
  RendezvousCore,
  type RendezvousSocketFactory,
  type ServerKeyPin,
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
  /** Retry schedule (protocol's backoffDelay): first ceiling, doubling up to maxBackoffMs, jittered. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Ping interval (ms, default 25 000). A connection on which the server has sent nothing for two
   * intervals is considered dead (a silent half-open TCP connection) and is dropped and re-established.
   */
  heartbeatMs?: number;
  /** Drop a connection that is not authenticated (`ready`) within this long (ms). Default 20 000. */
  readyTimeoutMs?: number;
  /** Signs the auth proof and jitters retries. Default systemEnv (the auth proof needs the real clock). */
  env?: CryptoEnv;
  /** Hold the server to the key met at first contact (review R15). */
  serverKeyPin?: ServerKeyPin;
  /** Called for logging; never receives message payloads. */
  log?: (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => void;
}

/** A `ws` WebSocket for the core: size limits, handshake timeout, optional certificate pinning. */
export function wsSocketFactory(
  o: Pick<RendezvousClientOptions, 'url' | 'pinnedCertSha256' | 'insecure' | 'log'>,
): RendezvousSocketFactory {
  return (events) => {
    // @hearth/node's client: a pin is checked on the TLS socket, before any frame is read.
    const ws = openWebSocket(o.url, {
      maxPayload: 256 * 1024,
      handshakeTimeout: 10_000,
      ...(o.pinnedCertSha256 ? { pinnedCertSha256: o.pinnedCertSha256 } : {}),
      ...(o.insecure ? { insecure: true } : {}),
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) events.binary();
      else events.text(data.toString());
    });
    ws.on('close', (code, reason) => events.closed(code, reason.toString()));
    // Always listened to (an unhandled 'error' would throw); 'close' follows and drives the retry.
    ws.on('error', (e) => {
      if (e instanceof CertificatePinError)
        o.log?.('error', 'server certificate does not match the pinned fingerprint: possible attack');
      else o.log?.('warn', 'server connection error', { error: (e as Error).message });
    });
    return {
      send(text) {
        if (ws.readyState !== WebSocket.OPEN) return false;
        ws.send(text);
        return true;
      },
      close(code) {
        // The core gives up on this socket: no close handshake to wait for (it may be half-open).
        if (code === 1000 && ws.readyState === WebSocket.OPEN) ws.close(1000, 'bye');
        else ws.terminate();
      },
    };
  };
}

/**
 * Events: `ready` (ServerFrame 'ready'), `recv` (from, m), `alert` (frame), `presence`,
 * `pair/found`, `error-frame`, `push/ok` (frame), `disconnected` (code, reason), `server-key-changed` (pinned,
 * offered, reason: the client has stopped).
 */
export class RendezvousClient extends EventEmitter {
  readonly core: RendezvousCore;

  constructor(o: RendezvousClientOptions) {
    super();
    // A malformed pin, or a pin on ws://, is a configuration error now, not a failure per retry.
    if (o.pinnedCertSha256) {
      normalizeFingerprint(o.pinnedCertSha256);
      if (!o.url.startsWith('wss:'))
        throw new ConfigError('E_CONFIG', `a pinned certificate needs an https:// server URL, got ${o.url}`);
    }
    this.core = new RendezvousCore({
      socket: wsSocketFactory(o),
      signer: o.signer,
      role: o.role,
      env: o.env ?? systemEnv,
      retry: {
        ...(o.minBackoffMs !== undefined ? { baseMs: o.minBackoffMs } : {}),
        ...(o.maxBackoffMs !== undefined ? { maxMs: o.maxBackoffMs } : {}),
      },
      ...(o.heartbeatMs !== undefined ? { pingMs: o.heartbeatMs } : {}),
      handshakeMs: o.readyTimeoutMs ?? 20_000,
      ...(o.log ? { log: o.log } : {}),
      ...(o.serverKeyPin ? { serverKeyPin: o.serverKeyPin } : {}),
    });
    const c = this.core;
    c.on('server-key-changed', (e) => this.emit('server-key-changed', e));
    c.on('ready', (f) => this.emit('ready', f));
    c.on('recv', (f) => this.emit('recv', f.from, f.m));
    c.on('alert', (f) => this.emit('alert', f));
    c.on('presence', (f) => this.emit('presence', f));
    c.on('pair/found', (f) => this.emit('pair/found', f));
    c.on('error', (f) => this.emit('error-frame', f));
    c.on('push/ok', (f) => this.emit('push/ok', f));
    c.on('disconnected', (d) => this.emit('disconnected', d.code, d.reason));
  }

  /** The server's clock minus ours (ms), from the last `hello`; not authenticated (review R13). */
  get clockOffsetMs(): number | undefined {
    return this.core.clockOffsetMs;
  }

  /** ICE servers from the last `ready`. */
  get ice(): IceServer[] {
    return this.core.ice;
  }

  /** True while authenticated. */
  get connected(): boolean {
    return this.core.ready;
  }

  /** Connect (and keep reconnecting until {@link close}). */
  start(): void {
    this.core.start();
  }

  /** Send a frame; returns false when not connected. */
  send(frame: ClientFrame): boolean {
    return this.core.send(frame);
  }

  /** Route a message to a peer by its ID. */
  sendTo(to: string, m: unknown, ref?: string): boolean {
    return this.send(ref ? { t: 'send', to, m, ref } : { t: 'send', to, m });
  }

  /** Stop for good. */
  close(): void {
    this.core.stop();
  }
}
