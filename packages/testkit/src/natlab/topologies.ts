/**
 * Declarative NAT lab topologies. Pure data: nothing here touches the system.
 *
 * Every topology has a public segment (203.0.113.0/24, TEST-NET-3) owned by the `public` namespace,
 * which is also the `server` host (203.0.113.1) and the ISP router for the segment. Its default route
 * points at the `void` namespace (192.0.2.2, TEST-NET-1 /30), which counts and drops everything.
 * NAT routers sit with their WAN on an upstream segment (public, or a carrier router's LAN) and own a
 * private LAN segment behind them. Hosts sit on one segment each.
 */

/** How a NAT router maps inside endpoints to WAN ports. */
export type NatKind = 'eim' | 'symmetric';

/** What the mapping probe observes from a host: */
export type MappingKind =
  /** Same mapped address and port towards two destinations (endpoint-independent mapping). */
  | 'eim'
  /** A different mapped port per destination (address/port-dependent mapping). */
  | 'symmetric'
  /** The mapped address is the host's own address: no NAT on the path. */
  | 'none'
  /** No UDP answer at all. */
  | 'blocked';

export interface RouterSpec {
  /** Node name: lowercase letters/digits, at most 8 characters (it ends up in interface names). */
  readonly name: string;
  readonly nat: NatKind;
  /** Drop all UDP forwarded from the LAN except DNS (port 53): a TCP-only network. */
  readonly udpBlocked?: boolean;
  /** Segment the WAN side is attached to: `public` or the name of another (carrier) router. */
  readonly upstream: string;
  /** WAN address on the upstream segment. */
  readonly wanIp: string;
  /** LAN gateway address; the LAN is its /24. */
  readonly lanIp: string;
}

export interface HostSpec {
  /** Host name, e.g. `agent` or `viewer` (lowercase letters/digits, at most 8 characters). */
  readonly name: string;
  /** Segment the host is attached to: `public` or a router name. */
  readonly segment: string;
  readonly ip: string;
}

/** What the lab's own probes must observe on this topology (asserted by the testkit's e2e tests). */
export interface TopologyExpectations {
  readonly agentMapping: MappingKind;
  readonly viewerMapping: MappingKind;
  /** A UDP hole punch between agent and viewer, rendezvous through the server, succeeds. */
  readonly punch: boolean;
  /** Which candidate the punch succeeds on, when it does. */
  readonly punchVia?: 'local' | 'public';
  /** The viewer can exchange UDP with the server (non-DNS port). */
  readonly viewerUdp: boolean;
}

export interface TopologySpec {
  readonly name: TopologyName;
  readonly description: string;
  readonly routers: readonly RouterSpec[];
  /** Hosts besides `server`, which is always the public namespace itself. */
  readonly hosts: readonly HostSpec[];
  readonly expected: TopologyExpectations;
}

export const PUBLIC_SUBNET = '203.0.113.0/24';
export const SERVER_IP = '203.0.113.1';
export const VOID_LINK = { publicIp: '192.0.2.1', voidIp: '192.0.2.2', prefixLen: 30 } as const;
/** A TEST-NET-2 address that exists nowhere in the lab: traffic to it must die in the void. */
export const OUTSIDE_IP = '198.51.100.1';

export const TOPOLOGY_NAMES = [
  'sameLan',
  'bothEim',
  'oneSymmetric',
  'bothSymmetric',
  'viewerUdpBlocked',
  'doubleNatOneSide',
] as const;
export type TopologyName = (typeof TOPOLOGY_NAMES)[number];

const agentNat = (nat: NatKind): RouterSpec => ({
  name: 'anat',
  nat,
  upstream: 'public',
  wanIp: '203.0.113.10',
  lanIp: '192.168.1.1',
});
const viewerNat = (nat: NatKind, udpBlocked = false): RouterSpec => ({
  name: 'vnat',
  nat,
  udpBlocked,
  upstream: 'public',
  wanIp: '203.0.113.20',
  lanIp: '192.168.2.1',
});
const agentHost: HostSpec = { name: 'agent', segment: 'anat', ip: '192.168.1.10' };
const viewerHost: HostSpec = { name: 'viewer', segment: 'vnat', ip: '192.168.2.10' };

export const TOPOLOGIES: Readonly<Record<TopologyName, TopologySpec>> = {
  sameLan: {
    name: 'sameLan',
    description: 'agent and viewer on the same home LAN behind one EIM NAT',
    routers: [{ name: 'home', nat: 'eim', upstream: 'public', wanIp: '203.0.113.10', lanIp: '192.168.1.1' }],
    hosts: [
      { name: 'agent', segment: 'home', ip: '192.168.1.10' },
      { name: 'viewer', segment: 'home', ip: '192.168.1.11' },
    ],
    // No hairpinning on the router: the punch succeeds on the LAN (host) candidate.
    expected: { agentMapping: 'eim', viewerMapping: 'eim', punch: true, punchVia: 'local', viewerUdp: true },
  },
  bothEim: {
    name: 'bothEim',
    description: 'agent and viewer behind two different EIM NATs',
    routers: [agentNat('eim'), viewerNat('eim')],
    hosts: [agentHost, viewerHost],
    expected: { agentMapping: 'eim', viewerMapping: 'eim', punch: true, punchVia: 'public', viewerUdp: true },
  },
  oneSymmetric: {
    name: 'oneSymmetric',
    description: 'agent behind an EIM NAT, viewer behind a symmetric NAT',
    routers: [agentNat('eim'), viewerNat('symmetric')],
    hosts: [agentHost, viewerHost],
    // The EIM side filters by address and port (conntrack), so symmetric + port-restricted fails.
    expected: { agentMapping: 'eim', viewerMapping: 'symmetric', punch: false, viewerUdp: true },
  },
  bothSymmetric: {
    name: 'bothSymmetric',
    description: 'agent and viewer behind two symmetric NATs: only a relay works',
    routers: [agentNat('symmetric'), viewerNat('symmetric')],
    hosts: [agentHost, viewerHost],
    expected: { agentMapping: 'symmetric', viewerMapping: 'symmetric', punch: false, viewerUdp: true },
  },
  viewerUdpBlocked: {
    name: 'viewerUdpBlocked',
    description: 'agent behind an EIM NAT, viewer on a TCP-only network (UDP dropped except DNS)',
    routers: [agentNat('eim'), viewerNat('eim', true)],
    hosts: [agentHost, viewerHost],
    expected: { agentMapping: 'eim', viewerMapping: 'blocked', punch: false, viewerUdp: false },
  },
  doubleNatOneSide: {
    name: 'doubleNatOneSide',
    description: 'agent behind a home NAT behind a carrier-grade NAT (both EIM), viewer behind an EIM NAT',
    routers: [
      { name: 'cgn', nat: 'eim', upstream: 'public', wanIp: '203.0.113.30', lanIp: '100.64.0.1' },
      { name: 'anat', nat: 'eim', upstream: 'cgn', wanIp: '100.64.0.10', lanIp: '192.168.1.1' },
      viewerNat('eim'),
    ],
    hosts: [agentHost, viewerHost],
    expected: { agentMapping: 'eim', viewerMapping: 'eim', punch: true, punchVia: 'public', viewerUdp: true },
  },
};

export function isTopologyName(name: string): name is TopologyName {
  return (TOPOLOGY_NAMES as readonly string[]).includes(name);
}

const NODE_NAME = /^[a-z][a-z0-9]{0,7}$/;
const RESERVED = new Set(['public', 'void', 'server']);

/** Checks a topology for the invariants the lab relies on; throws with a readable message. */
export function validateTopology(spec: TopologySpec): void {
  const seen = new Set<string>();
  const segments = new Set<string>(['public']);
  for (const r of spec.routers) {
    if (!NODE_NAME.test(r.name) || RESERVED.has(r.name)) throw new Error(`bad router name ${r.name}`);
    if (seen.has(r.name)) throw new Error(`duplicate node ${r.name}`);
    if (!segments.has(r.upstream)) throw new Error(`router ${r.name}: unknown upstream ${r.upstream}`);
    seen.add(r.name);
    segments.add(r.name);
  }
  const names = spec.hosts.map((h) => h.name);
  for (const h of spec.hosts) {
    if (!NODE_NAME.test(h.name) || RESERVED.has(h.name)) throw new Error(`bad host name ${h.name}`);
    if (seen.has(h.name)) throw new Error(`duplicate node ${h.name}`);
    if (!segments.has(h.segment)) throw new Error(`host ${h.name}: unknown segment ${h.segment}`);
    seen.add(h.name);
  }
  for (const required of ['agent', 'viewer']) {
    if (!names.includes(required)) throw new Error(`topology ${spec.name} lacks host ${required}`);
  }
}

/**
 * Topologies where the agent's WebRTC stack cannot connect today, with the reason. The NAT matrix
 * tests mark Hearth's run there `todo` (reported, not failing) and keep asserting the baseline.
 *
 * viewerUdpBlocked: Chromium sends its connectivity checks over TURN/TCP with an ICE-CONTROLLING
 * tiebreaker of 0, and libjuice 1.7 (inside node-datachannel 0.33) rejects a zero tiebreaker with
 * STUN 400 ("Controlling and controlled attributes mismatch"), so Chromium's checks never succeed
 * (libjuice issue #355, fix proposed in PR #356). Seen here with Chromium 156.
 */
export const KNOWN_AGENT_FAILURES: Readonly<Partial<Record<string, string>>> = {
  viewerUdpBlocked:
    'libjuice rejects the zero ICE tiebreaker Chromium sends over TURN/TCP (libjuice #355); a viewer without UDP cannot reach the agent until node-datachannel ships the fix',
};
