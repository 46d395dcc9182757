/**
 * The browser's connection to the rendezvous server (`wss://<page host>/ws`).
 *
 * The protocol's RendezvousCore does the work (auth with the viewer key, role `viewer`; pings and
 * dead-connection detection; the one retry schedule); this wrapper wires the browser's WebSocket,
 * re-sends the presence watch list after each reconnect, and numbers `send` refs. It never sees media, and every
 * message it routes is authenticated end to end by its receiver: the server is trusted for
 * delivery only.
 */
import {
  type ClientFrame,
  type CryptoEnv,
  type IceServer,
  RendezvousCore,
  type RendezvousCoreEvents,
  type RendezvousSocketFactory,
  type RendezvousStatus,
  type Signer,
} from '@hearth/protocol';

export type { RendezvousStatus };

const WS_CONNECTING = 0;
const WS_OPEN = 1;

/** Events and their payloads. */
export type RendezvousEvents = Omit<RendezvousCoreEvents, 'disconnected'>;

/** The WebSocket constructor (injectable for tests). */
export type WebSocketCtor = new (url: string) => WebSocket;

/** Options of {@link RendezvousClient}. */
export interface RendezvousOptions {
  url: string;
  signer: Signer;
  env: CryptoEnv;
  WebSocketImpl?: WebSocketCtor;
  /** Ping interval (ms). Default 25 s. A server silent for two intervals is dropped and redialled. */
  pingMs?: number;
  /** How long hello+auth may take before the attempt is abandoned (ms). Default 15 s. */
  handshakeMs?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

type Listener<K extends keyof RendezvousEvents> = (e: RendezvousEvents[K]) => void;

/** A browser WebSocket for the core (text frames only). */
export function browserSocketFactory(url: string, Ctor?: WebSocketCtor): RendezvousSocketFactory {
  return (events) => {
    const ws = new (Ctor ?? globalThis.WebSocket)(url);
    ws.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data === 'string') events.text(ev.data);
      else events.binary();
    };
    ws.onclose = (ev: CloseEvent) => events.closed(ev.code, ev.reason);
    ws.onerror = () => {
      // onclose follows and schedules the retry.
    };
    return {
      send(text) {
        if (ws.readyState !== WS_OPEN) return false;
        ws.send(text);
        return true;
      },
      close(code, reason) {
        ws.onmessage = ws.onclose = ws.onerror = null;
        if (ws.readyState === WS_OPEN || ws.readyState === WS_CONNECTING) {
          try {
            ws.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason);
          } catch {
            ws.close();
          }
        }
      },
    };
  };
}

export class RendezvousClient {
  private readonly core: RendezvousCore;
  private readonly watched = new Set<string>();
  private refSeq = 0;

  constructor(o: RendezvousOptions) {
    this.core = new RendezvousCore({
      socket: browserSocketFactory(o.url, o.WebSocketImpl),
      signer: o.signer,
      role: 'viewer',
      env: o.env,
      retry: {
        ...(o.baseBackoffMs !== undefined ? { baseMs: o.baseBackoffMs } : {}),
        ...(o.maxBackoffMs !== undefined ? { maxMs: o.maxBackoffMs } : {}),
      },
      ...(o.pingMs !== undefined ? { pingMs: o.pingMs } : {}),
      ...(o.handshakeMs !== undefined ? { handshakeMs: o.handshakeMs } : {}),
      log: (level, msg, extra) => {
        if (level !== 'info') console.warn(`rendezvous: ${msg}`, extra ?? '');
      },
    });
    // Registered first, so the watch list is back before any other `ready` listener runs.
    this.core.on('ready', () => {
      if (this.watched.size) this.send({ t: 'watch', d: [...this.watched].slice(0, 256) });
    });
  }

  on<K extends keyof RendezvousEvents>(event: K, f: Listener<K>): () => void {
    return this.core.on(event, f as never);
  }

  /** ICE servers from the last `ready` (TURN credentials are short-lived: re-read per session). */
  get ice(): IceServer[] {
    return this.core.ice;
  }

  /** Whether relay credentials are held with time to live (see RendezvousCore.relayFresh). */
  relayFresh(): boolean {
    return this.core.relayFresh();
  }

  /** Resolves true at the next relay credentials, false after `timeoutMs`. */
  nextRelay(timeoutMs: number): Promise<boolean> {
    return this.core.nextRelay(timeoutMs);
  }

  /** Our ID as the server knows it (`huk_…`). */
  get id(): string | undefined {
    return this.core.id;
  }

  get status(): RendezvousStatus {
    return this.core.status;
  }

  /** Frames from the server that failed validation (dropped). */
  get badFrames(): number {
    return this.core.badFrames;
  }

  get ready(): boolean {
    return this.core.ready;
  }

  start(): void {
    this.core.start();
  }

  /** Reconnect now (e.g. the browser came back online), skipping the backoff wait. */
  nudge(): void {
    this.core.nudge();
  }

  stop(): void {
    this.core.stop();
  }

  /** Send a frame; false when not authenticated. */
  send(frame: ClientFrame): boolean {
    return this.core.send(frame);
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
}
