/**
 * Per-allocation state (RFC 8656 §2.2): relay socket, permissions, channels, bandwidth bucket.
 * No node: imports: the pure handlers (turn-core.ts) and the socket shell (relay-server.ts) share it.
 */
import type { TransportAddress } from '../codec/address.js';

/** RFC 8656 §9: permission lifetime, fixed at 300 s. */
export const PERMISSION_LIFETIME_MS = 300_000;
/** RFC 8656 §12: channel binding lifetime, fixed at 600 s. */
export const CHANNEL_LIFETIME_MS = 600_000;

/**
 * A TURN-over-TCP/TLS client connection as the handlers see it: the allocation it owns (RFC 8656 §7:
 * one per connection). The socket shell extends it with the socket and its reassembly buffer.
 */
export interface StreamClient {
  allocation: Allocation | undefined;
}

/** Where a client's packets come from and go back to. */
export interface ClientLink {
  readonly kind: 'udp' | 'tcp' | 'tls';
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
  /** The stream connection for TCP/TLS clients; undefined for UDP. */
  readonly tcp: StreamClient | undefined;
}

/** The relay socket of an allocation, as the shell uses it (a dgram socket fits). */
export interface RelaySocket {
  send(msg: Uint8Array, offset: number, length: number, port: number, address: string): void;
  close(): void;
}

/** Installed permission for one peer IP. */
export interface Permission {
  expiresAt: number;
}

/** A channel binding (RFC 8656 §12). */
export interface Channel {
  readonly number: number;
  readonly peerAddress: string;
  readonly peerPort: number;
  readonly peerFamily: 4 | 6;
  expiresAt: number;
  /** Permission of the peer IP, shared with `permissions` so the hot path needs one lookup. */
  permission: Permission;
  /**
   * The peer is one of the relay's own addresses (review R6): the data path checks again, per packet,
   * that it is still allowed (e.g. that the allocation it reached is still live).
   */
  readonly selfPeer: boolean;
}

/** One allocation. Fields are public and mutable for the server's hot path. */
export class Allocation {
  /** Set by the socket shell once the relay socket is bound; the handlers never touch it. */
  relaySocket: RelaySocket | undefined;
  relayed: TransportAddress | undefined;
  ready = false;
  closed = false;
  expiresAt: number;
  readonly permissions = new Map<string, Permission>();
  readonly channels = new Map<number, Channel>();
  /** peer IP -> peer port -> channel. */
  readonly peerChannels = new Map<string, Map<number, Channel>>();
  allocateResponse: Uint8Array | undefined;
  private tokens: number;
  private lastRefill: number;

  constructor(
    readonly link: ClientLink,
    readonly family: 4 | 6,
    readonly username: string,
    readonly identity: string,
    readonly key: Uint8Array,
    readonly allocateTid: string,
    expiresAt: number,
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.expiresAt = expiresAt;
    this.tokens = burst;
    this.lastRefill = now;
  }

  /** Token bucket: may `bytes` be relayed now? No allocation. */
  take(bytes: number, now: number): boolean {
    if (this.rate === 0) return true;
    if (now > this.lastRefill) {
      const t = this.tokens + ((now - this.lastRefill) * this.rate) / 1000;
      this.tokens = Math.min(t, this.burst);
      this.lastRefill = now;
    }
    if (this.tokens < bytes) return false;
    this.tokens -= bytes;
    return true;
  }

  /** Removes expired permissions and channels. */
  prune(now: number): void {
    for (const [ip, p] of this.permissions) if (p.expiresAt <= now) this.permissions.delete(ip);
    for (const [n, ch] of this.channels) {
      if (ch.expiresAt <= now) {
        this.channels.delete(n);
        const byPort = this.peerChannels.get(ch.peerAddress);
        byPort?.delete(ch.peerPort);
        if (byPort && byPort.size === 0) this.peerChannels.delete(ch.peerAddress);
      }
    }
  }
}
