/**
 * Turns a topology into a concrete plan: namespace names, veth pairs, `ip -batch` lines, sysctls and
 * nftables rulesets per namespace. Pure, so it can be unit-tested without root.
 */
import {
  type HostSpec,
  type NatKind,
  type RouterSpec,
  SERVER_IP,
  type TopologySpec,
  VOID_LINK,
  validateTopology,
} from './topologies.js';

/** A machine in the lab that tests run commands on. */
export interface LabHost {
  /** `server`, `agent`, `viewer`, ... */
  readonly name: string;
  /** Network namespace to run its processes in (`ip netns exec <netns> ...`). */
  readonly netns: string;
  /** Its address on its own segment (private behind a NAT, 203.0.113.1 for the server). */
  readonly ip: string;
}

export interface LabRouter {
  readonly name: string;
  readonly netns: string;
  readonly nat: NatKind;
  readonly udpBlocked: boolean;
  readonly wanIp: string;
  readonly lanIp: string;
  readonly upstream: string;
}

export interface VethPair {
  readonly a: { readonly ns: string; readonly name: string };
  readonly b: { readonly ns: string; readonly name: string };
}

export interface LabPlan {
  readonly prefix: string;
  /** Every namespace the lab creates, in creation order. */
  readonly namespaces: readonly string[];
  readonly publicNs: string;
  readonly voidNs: string;
  readonly veths: readonly VethPair[];
  /** `ip -n <ns> -batch -` input, per namespace. */
  readonly ipBatch: ReadonlyMap<string, readonly string[]>;
  /** `sysctl -w` assignments, per namespace. */
  readonly sysctls: ReadonlyMap<string, readonly string[]>;
  /** `nft -f -` input, per namespace. */
  readonly nft: ReadonlyMap<string, string>;
  readonly hosts: Readonly<Record<string, LabHost>>;
  readonly routers: Readonly<Record<string, LabRouter>>;
}

export const PREFIX_RE = /^[a-z][a-z0-9]{1,11}$/;
/** Linux IFNAMSIZ - 1. */
export const MAX_IFNAME = 15;

/** Names of interfaces inside the lab namespaces (created there directly, never in the root namespace). */
export const IF = {
  publicBridge: 'br-pub',
  publicToVoid: 'void0',
  voidToPublic: 'pub0',
  routerWan: 'wan',
  routerLan: 'lan',
  host: 'eth0',
  /** Bridge port, in the segment owner's namespace, for the node attached to it. */
  port: (node: string) => `p-${node}`,
} as const;

export const nsName = (prefix: string, node: string): string => `${prefix}-${node}`;

/** The /24 network part of an address, e.g. `192.168.1` for `192.168.1.10`. */
const net24 = (ip: string): string => ip.split('.').slice(0, 3).join('.');

export function routerRuleset(r: Pick<RouterSpec, 'nat' | 'udpBlocked'>): string {
  const masq = r.nat === 'symmetric' ? 'masquerade fully-random' : 'masquerade';
  const lines = [
    'table ip hearth_nat {',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "${IF.routerWan}" ${masq}`,
    '  }',
    '}',
    'table inet hearth_filter {',
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    // Pitfall 1: a home router drops unsolicited inbound traffic. Dropping it here, before conntrack
    // confirms the entry, keeps an early punch packet from occupying the tuple that masquerade would
    // otherwise reuse, which would make it pick a new port and break hole punching for the wrong reason.
    `    iifname "${IF.routerWan}" ct state new counter drop`,
    `    iifname "${IF.routerWan}" ct state invalid drop`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    iifname "${IF.routerWan}" ct state new counter drop`,
    `    iifname "${IF.routerWan}" ct state invalid drop`,
  ];
  if (r.udpBlocked) lines.push(`    iifname "${IF.routerLan}" udp dport != 53 counter drop`);
  lines.push('  }', '}');
  return `${lines.join('\n')}\n`;
}

/** Pitfall 2: the public namespace routes everything unknown here, where it is counted and dropped. */
export function voidRuleset(): string {
  return [
    'table inet hearth_void {',
    '  chain prerouting {',
    '    type filter hook prerouting priority raw; policy drop;',
    '    counter',
    '  }',
    '  chain output {',
    '    type filter hook output priority raw; policy drop;',
    '    counter',
    '  }',
    '}',
    '',
  ].join('\n');
}

const COMMON_SYSCTLS = [
  // IPv4 only: no link-local v6 candidates, no v6 paths around the NATs.
  'net.ipv6.conf.all.disable_ipv6=1',
  'net.ipv6.conf.default.disable_ipv6=1',
];

export function planLab(spec: TopologySpec, prefix: string): LabPlan {
  if (!PREFIX_RE.test(prefix)) throw new Error(`bad lab prefix ${JSON.stringify(prefix)}: want ${PREFIX_RE}`);
  validateTopology(spec);
  const ns = (node: string) => nsName(prefix, node);
  const publicNs = ns('pub');
  const voidNs = ns('void');
  const namespaces = [publicNs, voidNs];
  const veths: VethPair[] = [];
  const ipBatch = new Map<string, string[]>();
  const sysctls = new Map<string, string[]>();
  const nft = new Map<string, string>();
  const batch = (n: string): string[] => {
    let list = ipBatch.get(n);
    if (!list) {
      list = [];
      ipBatch.set(n, list);
    }
    return list;
  };

  // Segment name -> owner namespace, bridge, gateway address.
  const segments = new Map<string, { ns: string; bridge: string; gateway: string }>();
  segments.set('public', { ns: publicNs, bridge: IF.publicBridge, gateway: SERVER_IP });

  // Public namespace: the server host, the segment's bridge, and its default route into the void.
  sysctls.set(publicNs, [...COMMON_SYSCTLS, 'net.ipv4.ip_forward=1']);
  batch(publicNs).push(
    'link set lo up',
    `link add ${IF.publicBridge} type bridge forward_delay 0`,
    `addr add ${SERVER_IP}/24 dev ${IF.publicBridge}`,
    `link set ${IF.publicBridge} up`,
    `addr add ${VOID_LINK.publicIp}/${VOID_LINK.prefixLen} dev ${IF.publicToVoid}`,
    `link set ${IF.publicToVoid} up`,
    `route add default via ${VOID_LINK.voidIp} dev ${IF.publicToVoid}`,
  );
  veths.push({ a: { ns: publicNs, name: IF.publicToVoid }, b: { ns: voidNs, name: IF.voidToPublic } });
  sysctls.set(voidNs, [...COMMON_SYSCTLS, 'net.ipv4.ip_forward=0']);
  batch(voidNs).push(
    'link set lo up',
    `addr add ${VOID_LINK.voidIp}/${VOID_LINK.prefixLen} dev ${IF.voidToPublic}`,
    `link set ${IF.voidToPublic} up`,
  );
  nft.set(voidNs, voidRuleset());

  const attach = (node: string, nodeNs: string, ifname: string, segment: string, ip: string): void => {
    const seg = segments.get(segment);
    if (!seg) throw new Error(`unknown segment ${segment}`);
    if (net24(ip) !== net24(seg.gateway))
      throw new Error(`${node}: ${ip} is not on ${segment} (${seg.gateway}/24)`);
    const port = IF.port(node);
    veths.push({ a: { ns: nodeNs, name: ifname }, b: { ns: seg.ns, name: port } });
    batch(seg.ns).push(`link set ${port} master ${seg.bridge}`, `link set ${port} up`);
    batch(nodeNs).push(
      `addr add ${ip}/24 dev ${ifname}`,
      `link set ${ifname} up`,
      `route add default via ${seg.gateway} dev ${ifname}`,
    );
  };

  const routers: Record<string, LabRouter> = {};
  for (const r of spec.routers) {
    const rns = ns(r.name);
    namespaces.push(rns);
    sysctls.set(rns, [...COMMON_SYSCTLS, 'net.ipv4.ip_forward=1']);
    // The LAN bridge comes first so downstream nodes can attach to it.
    batch(rns).push(
      'link set lo up',
      `link add ${IF.routerLan} type bridge forward_delay 0`,
      `addr add ${r.lanIp}/24 dev ${IF.routerLan}`,
      `link set ${IF.routerLan} up`,
    );
    attach(r.name, rns, IF.routerWan, r.upstream, r.wanIp);
    segments.set(r.name, { ns: rns, bridge: IF.routerLan, gateway: r.lanIp });
    nft.set(rns, routerRuleset(r));
    routers[r.name] = {
      name: r.name,
      netns: rns,
      nat: r.nat,
      udpBlocked: r.udpBlocked ?? false,
      wanIp: r.wanIp,
      lanIp: r.lanIp,
      upstream: r.upstream,
    };
  }

  const hosts: Record<string, LabHost> = { server: { name: 'server', netns: publicNs, ip: SERVER_IP } };
  for (const h of spec.hosts as readonly HostSpec[]) {
    const hns = ns(h.name);
    namespaces.push(hns);
    sysctls.set(hns, [...COMMON_SYSCTLS]);
    batch(hns).push('link set lo up');
    attach(h.name, hns, IF.host, h.segment, h.ip);
    hosts[h.name] = { name: h.name, netns: hns, ip: h.ip };
  }

  for (const v of veths) {
    for (const end of [v.a, v.b]) {
      if (end.name.length > MAX_IFNAME) throw new Error(`interface name too long: ${end.name}`);
    }
  }
  return { prefix, namespaces, publicNs, voidNs, veths, ipBatch, sysctls, nft, hosts, routers };
}
