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

/** Embedded IPv4 of ::ffff:a.b.c.d and 64:ff9b::/96 (NAT64) forms, else undefined. */
function embeddedV4(addr: string): string | undefined {
  const m = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  if (m) return m[1];
  const h = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(addr);
  if (h) {
    const hi = Number.parseInt(h[1]!, 16);
    const lo = Number.parseInt(h[2]!, 16);
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return undefined;
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

  /** True when relaying to `address` is permitted. */
  isAllowed(address: string, family: 4 | 6): boolean {
    if (family === 6) {
      const v4 = embeddedV4(address);
      if (v4 !== undefined) return this.isAllowed(v4, 4);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.allow.check(address, type)) return true;
    return !this.deny.check(address, type);
  }
}
