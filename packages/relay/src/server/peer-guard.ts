/**
 * SSRF guard: a TURN relay must not let clients reach the operator's internal network.
 * Peers in special-purpose ranges are refused (403) unless explicitly allowed.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { RelayConfigError } from '../codec/errors.js';

const DENY_V4: readonly [string, number][] = [
  ['0.0.0.0', 8], // "this network" / unspecified
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // CGNAT shared space
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata lives here)
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved + broadcast
];
const DENY_V6: readonly [string, number][] = [
  ['::', 96], // unspecified, loopback, deprecated IPv4-compatible
  ['fe80::', 10], // link-local
  ['fc00::', 7], // unique local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
  ['100::', 64], // discard-only
];

function addCidr(list: BlockList, cidr: string): void {
  const slash = cidr.lastIndexOf('/');
  const addr = slash === -1 ? cidr : cidr.slice(0, slash);
  const v4 = isIPv4(addr);
  if (!v4 && !isIPv6(addr)) throw new RelayConfigError(`bad CIDR ${cidr}`);
  const max = v4 ? 32 : 128;
  const prefix = slash === -1 ? max : Number(cidr.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new RelayConfigError(`bad CIDR ${cidr}`);
  list.addSubnet(addr, prefix, v4 ? 'ipv4' : 'ipv6');
}

/** The eight 16-bit groups of an IPv6 address (with `::` and a dotted-quad tail), or undefined. */
export function ipv6Groups(addr: string): number[] | undefined {
  let a = addr.toLowerCase();
  const pct = a.indexOf('%');
  if (pct >= 0) a = a.slice(0, pct); // zone index
  let tail: number[] = [];
  const q = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (q) {
    const b = q.slice(2, 6).map(Number);
    if (b.some((x) => x > 255)) return undefined;
    tail = [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!];
    a = q[1]!.endsWith('::') ? q[1]! : q[1]!.slice(0, -1);
  }
  const halves = a.split('::');
  if (halves.length > 2) return undefined;
  const parse = (t: string) => (t === '' ? [] : t.split(':'));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if ([...head, ...rest].some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return undefined;
  const known = head.length + rest.length + tail.length;
  if (halves.length === 1 ? known !== 8 : known > 7) return undefined;
  const zeros = Array(8 - known).fill(0);
  return [...head, ...zeros, ...rest]
    .map((g) => Number.parseInt(String(g), 16))
    .concat(tail)
    .slice(0, 8);
}

const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;

/**
 * Every IPv4 address an IPv6 address carries, by the forms that route to it (review R6): mapped
 * `::ffff:a.b.c.d`, SIIT `::ffff:0:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
 * `2002:AABB:CCDD::/48`, and Teredo `2001:0::/32` (server, and client XOR 0xffffffff).
 */
export function embeddedV4s(addr: string): string[] {
  const g = ipv6Groups(addr);
  if (!g) return [];
  const out: string[] = [];
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && g[5] === 0xffff) out.push(v4(g[6]!, g[7]!)); // mapped
  // Compatible `::a.b.c.d`, but not `::` and `::1` (RFC 4291 2.5.5.1): those are IPv6's own
  // unspecified and loopback addresses, judged as IPv6 (::/96 is denied unless allowed).
  if (zero(0, 6) && g[6] !== 0) out.push(v4(g[6]!, g[7]!));
  if (zero(0, 4) && g[4] === 0xffff && g[5] === 0) out.push(v4(g[6]!, g[7]!)); // SIIT
  if (g[0] === 0x64 && g[1] === 0xff9b) out.push(v4(g[6]!, g[7]!)); // NAT64 (well-known and local-use)
  if (g[0] === 0x2002) out.push(v4(g[1]!, g[2]!)); // 6to4
  if (g[0] === 0x2001 && g[1] === 0) out.push(v4(g[2]!, g[3]!), v4(g[6]! ^ 0xffff, g[7]! ^ 0xffff)); // Teredo
  return out;
}

/** Decides whether a peer address may be relayed to. */
export class PeerGuard {
  private readonly deny = new BlockList();
  private readonly allow = new BlockList();

  constructor(opts: {
    allowLoopbackPeers: boolean;
    allowedPeerRanges: readonly string[];
    deniedPeerRanges: readonly string[];
  }) {
    for (const [a, p] of DENY_V4) this.deny.addSubnet(a, p, 'ipv4');
    for (const [a, p] of DENY_V6) this.deny.addSubnet(a, p, 'ipv6');
    for (const c of opts.deniedPeerRanges) addCidr(this.deny, c);
    if (opts.allowLoopbackPeers) {
      this.allow.addSubnet('127.0.0.0', 8, 'ipv4');
      this.allow.addSubnet('::1', 128, 'ipv6');
    }
    for (const c of opts.allowedPeerRanges) addCidr(this.allow, c);
  }

  /** True when the operator's allow list (allowLoopbackPeers, allowedPeerRanges) names `address`. */
  isExplicitlyAllowed(address: string, family: 4 | 6): boolean {
    return this.allow.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }

  /** True when relaying to `address` is permitted. */
  isAllowed(address: string, family: 4 | 6): boolean {
    if (family === 6) {
      // An IPv6 form that reaches a denied IPv4 address is denied, whatever its spelling.
      for (const inner of embeddedV4s(address)) if (!this.isAllowed(inner, 4)) return false;
      if (ipv6Groups(address) === undefined) return false;
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.allow.check(address, type)) return true;
    return !this.deny.check(address, type);
  }
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

/** One entry of `os.networkInterfaces()`, as far as {@link ownAddresses} reads it. */
export interface InterfaceAddress {
  readonly address: string;
  readonly family: string | number;
}

/**
 * The relay's own IP addresses (review R6): the advertised external addresses, the bound listen and
 * relay addresses, and, when any of those binds a wildcard, every address of the machine's
 * interfaces (`os.networkInterfaces()`, passed in by the caller).
 */
export function ownAddresses(
  o: {
    host: string;
    relayHost: string;
    externalAddress: string;
    relayHost6?: string | undefined;
    externalAddress6?: string | undefined;
  },
  interfaces: Readonly<Record<string, readonly InterfaceAddress[] | undefined>>,
): string[] {
  const out = new Set<string>();
  const bound = [o.host, o.relayHost, o.relayHost6].filter((h): h is string => h !== undefined);
  for (const a of [...bound, o.externalAddress, o.externalAddress6]) {
    if (a !== undefined && !WILDCARD_HOSTS.has(a)) out.add(a);
  }
  if (bound.some((h) => WILDCARD_HOSTS.has(h))) {
    for (const list of Object.values(interfaces)) {
      for (const i of list ?? []) out.add(i.address.split('%')[0]!);
    }
  }
  return [...out];
}

/** How a peer address relates to the relay's own addresses. */
export type SelfMatch = 'no' | 'direct' | 'embedded';

/**
 * The relay's own addresses as peers (review R6): a TURN client must not use the relay to reach the
 * relay itself (its listeners, or any other service on its host), except another live allocation's
 * relayed transport address, which is how two relayed clients of this relay talk.
 */
export class SelfGuard {
  private readonly v4 = new Set<string>();
  private readonly v6 = new BlockList();
  /** Ports the relay listens on (UDP, TCP, TLS), filled in as they bind. */
  readonly listenPorts = new Set<number>();

  constructor(addresses: readonly string[]) {
    for (const a of addresses) {
      if (isIPv4(a)) this.v4.add(a);
      else if (isIPv6(a)) {
        this.v6.addAddress(a, 'ipv6');
        // An IPv6 interface address that embeds an IPv4 one (e.g. ::ffff:a.b.c.d) covers it too.
        for (const inner of embeddedV4s(a)) this.v4.add(inner);
      }
    }
  }

  /** `direct`: one of the relay's addresses; `embedded`: an IPv6 form that carries one of its IPv4 addresses. */
  match(address: string, family: 4 | 6): SelfMatch {
    if (family === 4) return this.v4.has(address) ? 'direct' : 'no';
    try {
      if (this.v6.check(address, 'ipv6')) return 'direct';
    } catch {
      return 'no';
    }
    for (const inner of embeddedV4s(address)) if (this.v4.has(inner)) return 'embedded';
    return 'no';
  }
}
