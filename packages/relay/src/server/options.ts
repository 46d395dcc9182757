/** RelayServer options and their documented defaults. */
import { RelayConfigError } from '../codec/errors.js';

/** Source of time, in milliseconds. Inject a fake one in tests. */
export interface Clock {
  now(): number;
}

/** Wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** Options for {@link RelayServer.start}. Every field except `realm` has a default. */
export interface RelayServerOptions {
  /** REALM sent in 401 challenges (required). */
  realm: string;
  /** TURN REST shared secret (coturn `static-auth-secret`). At least one of authSecret/users is required. */
  authSecret?: string;
  /** Static long-term users (username -> password). Default none. */
  users?: Readonly<Record<string, string>>;
  /** Address to listen on for clients. Default '0.0.0.0'. */
  host?: string;
  /** UDP listening port; 0 picks a free one; null disables UDP. Default 3478. */
  udpPort?: number | null;
  /** TCP listening port (TURN over TCP); 0 picks one; null disables TCP. Default 3478. */
  tcpPort?: number | null;
  /** TLS listening port, used only with `tls`. Default 5349. */
  tlsPort?: number;
  /** PEM certificate and key; enables TURN over TLS. Default none. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Address relay sockets bind to (IPv4). Default: `host`, or '0.0.0.0' for a wildcard host. */
  relayHost?: string;
  /** Address advertised in XOR-RELAYED-ADDRESS. Default: `relayHost` (required if that is a wildcard). */
  externalAddress?: string;
  /** IPv6 relay bind address; enables REQUESTED-ADDRESS-FAMILY=IPv6. Default none (440 for IPv6). */
  relayHost6?: string;
  /** Advertised IPv6 relay address. Default `relayHost6`. */
  externalAddress6?: string;
  /**
   * SOFTWARE attribute value, sent on integrity-protected responses only (never on answers to
   * unauthenticated requests: review R6, reflection); '' to omit. Default 'hearth-relay'.
   */
  software?: string;
  /** Allocation lifetime when the client asks for less or nothing, seconds. Default 600 (RFC 8656). */
  defaultLifetime?: number;
  /** Cap on allocation lifetime, seconds. Default 3600 (RFC 8656). */
  maxLifetime?: number;
  /** Nonce validity, seconds; then 438 Stale Nonce. Default 600. */
  nonceLifetime?: number;
  /** Total allocations on this server; beyond: 508. Default 10000. */
  maxAllocations?: number;
  /** Allocations per identity (REST id part, or static username); beyond: 486. Default 20. */
  maxAllocationsPerUser?: number;
  /**
   * Allocations per client IP address, whatever the credentials (keys are free, and TURN
   * usernames are per session: review R6); beyond: 486. Default 32.
   */
  maxAllocationsPerIp?: number;
  /** Per-allocation relayed bytes/s (both directions, token bucket; 0 = unlimited). Default 5_000_000. */
  bytesPerSecond?: number;
  /** Token bucket depth in bytes. Default max(bytesPerSecond, 65536). */
  burstBytes?: number;
  /** Permissions per allocation; beyond: 508. Default 128. */
  maxPermissionsPerAllocation?: number;
  /** Channels per allocation; beyond: 508. Default 128. */
  maxChannelsPerAllocation?: number;
  /** Larger client packets are dropped and counted. Default 8192 bytes. */
  maxPacketSize?: number;
  /** Permit loopback peers (127/8, ::1). Default false. */
  allowLoopbackPeers?: boolean;
  /** CIDRs permitted even though they are in a denied range, e.g. ['10.0.0.0/8']. Default []. */
  allowedPeerRanges?: readonly string[];
  /** Extra CIDRs to deny. Default []. */
  deniedPeerRanges?: readonly string[];
  /**
   * Stop treating the relay's own addresses specially (review R6): its external, listen and relay
   * addresses (with a wildcard bind, every interface address) are then judged by the ranges above
   * alone, as before the fix. For tests' controls only. Default false: they are refused (403) as
   * peers, except a live allocation's relayed address (relay to relay), and except other ports of an
   * address the allow lists name explicitly (never the relay's own listening ports).
   */
  allowSelfPeers?: boolean;
  /** SO_RCVBUF/SO_SNDBUF for UDP sockets (kernel may cap). Default 4 MiB. */
  socketBufferSize?: number;
  /** Simultaneous TCP/TLS client connections. Default 10000. */
  maxTcpConnections?: number;
  /** Close TCP connections that have no allocation after this many ms. Default 30000. */
  tcpIdleTimeoutMs?: number;
  /** Drop relayed packets for a TCP client once this much is queued. Default 1 MiB. */
  maxTcpBufferedBytes?: number;
  /** Interval of the expiry sweep, ms (0 disables the timer; call sweep()). Default 1000. */
  sweepIntervalMs?: number;
  /** Time source. Default the wall clock. */
  clock?: Clock;
  /** REST username separator. Default ':'. */
  restSeparator?: string;
}

/** Options after defaults are applied. */
export type ResolvedOptions = Required<
  Omit<RelayServerOptions, 'authSecret' | 'tls' | 'relayHost6' | 'externalAddress6'>
> &
  Pick<RelayServerOptions, 'authSecret' | 'tls' | 'relayHost6' | 'externalAddress6'>;

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/** Applies defaults and validates. Throws RelayConfigError. */
export function resolveOptions(o: RelayServerOptions): ResolvedOptions {
  if (!o.realm) throw new RelayConfigError('realm is required');
  if (!o.authSecret && (!o.users || Object.keys(o.users).length === 0)) {
    throw new RelayConfigError('authSecret or users is required');
  }
  const host = o.host ?? '0.0.0.0';
  const relayHost = o.relayHost ?? (WILDCARDS.has(host) || host.includes(':') ? '0.0.0.0' : host);
  const externalAddress = o.externalAddress ?? relayHost;
  if (WILDCARDS.has(externalAddress)) {
    throw new RelayConfigError('externalAddress is required when relay sockets bind a wildcard address');
  }
  const bytesPerSecond = o.bytesPerSecond ?? 5_000_000;
  const r: ResolvedOptions = {
    realm: o.realm,
    authSecret: o.authSecret,
    users: o.users ?? {},
    host,
    udpPort: o.udpPort === undefined ? 3478 : o.udpPort,
    tcpPort: o.tcpPort === undefined ? 3478 : o.tcpPort,
    tlsPort: o.tlsPort ?? 5349,
    tls: o.tls,
    relayHost,
    externalAddress,
    relayHost6: o.relayHost6,
    externalAddress6: o.externalAddress6 ?? o.relayHost6,
    software: o.software ?? 'hearth-relay',
    defaultLifetime: o.defaultLifetime ?? 600,
    maxLifetime: o.maxLifetime ?? 3600,
    nonceLifetime: o.nonceLifetime ?? 600,
    maxAllocations: o.maxAllocations ?? 10_000,
    maxAllocationsPerUser: o.maxAllocationsPerUser ?? 20,
    maxAllocationsPerIp: o.maxAllocationsPerIp ?? 32,
    bytesPerSecond,
    burstBytes: o.burstBytes ?? Math.max(bytesPerSecond, 65_536),
    maxPermissionsPerAllocation: o.maxPermissionsPerAllocation ?? 128,
    maxChannelsPerAllocation: o.maxChannelsPerAllocation ?? 128,
    maxPacketSize: o.maxPacketSize ?? 8192,
    allowLoopbackPeers: o.allowLoopbackPeers ?? false,
    allowedPeerRanges: o.allowedPeerRanges ?? [],
    deniedPeerRanges: o.deniedPeerRanges ?? [],
    allowSelfPeers: o.allowSelfPeers ?? false,
    socketBufferSize: o.socketBufferSize ?? 4 * 1024 * 1024,
    maxTcpConnections: o.maxTcpConnections ?? 10_000,
    tcpIdleTimeoutMs: o.tcpIdleTimeoutMs ?? 30_000,
    maxTcpBufferedBytes: o.maxTcpBufferedBytes ?? 1024 * 1024,
    sweepIntervalMs: o.sweepIntervalMs ?? 1000,
    clock: o.clock ?? systemClock,
    restSeparator: o.restSeparator ?? ':',
  };
  if (r.defaultLifetime <= 0 || r.maxLifetime < r.defaultLifetime) {
    throw new RelayConfigError('need 0 < defaultLifetime <= maxLifetime');
  }
  if (r.maxPacketSize < 64 || r.maxPacketSize > 65_535)
    throw new RelayConfigError('maxPacketSize out of range');
  return r;
}
