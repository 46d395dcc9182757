// Pure checks of the NAT lab plans and browser flags: no root, no namespaces.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BASE_CHROMIUM_FLAGS,
  chromiumFlags,
  IF,
  MAX_IFNAME,
  NatLab,
  planLab,
  routerRuleset,
  TOPOLOGIES,
  TOPOLOGY_NAMES,
  type TopologySpec,
  validateTopology,
  voidRuleset,
} from '@hearth/testkit';

/** Every address the lab may use: TEST-NETs, RFC 1918 and the RFC 6598 carrier range. */
function isLabAddress(ip: string): boolean {
  const [a, b, c] = ip.split('.').map(Number);
  if (a === 192 && b === 0 && c === 2) return true; // TEST-NET-1 (void link)
  if (a === 203 && b === 0 && c === 113) return true; // TEST-NET-3 (public segment)
  if (a === 10 || (a === 192 && b === 168)) return true; // private LANs
  if (a === 100 && b !== undefined && b >= 64 && b < 128) return true; // CGNAT shared space
  return false;
}

test('every topology plans with short interface names, prefixed namespaces and lab-only addresses', () => {
  for (const name of TOPOLOGY_NAMES) {
    const plan = planLab(TOPOLOGIES[name], 'hlabcd');
    assert.ok(plan.namespaces.length >= 4, name);
    assert.equal(new Set(plan.namespaces).size, plan.namespaces.length, `${name}: duplicate namespaces`);
    for (const ns of plan.namespaces) assert.match(ns, /^hlabcd-[a-z0-9]+$/);
    for (const v of plan.veths) {
      for (const end of [v.a, v.b]) {
        assert.ok(end.name.length <= MAX_IFNAME, `${name}: ${end.name} too long`);
        assert.ok(plan.namespaces.includes(end.ns), `${name}: veth end in foreign namespace ${end.ns}`);
      }
    }
    for (const lines of plan.ipBatch.values()) {
      for (const line of lines) {
        for (const ip of line.match(/\d+\.\d+\.\d+\.\d+/g) ?? []) {
          assert.ok(isLabAddress(ip), `${name}: ${ip} in "${line}" is not a lab address`);
        }
      }
    }
    assert.deepEqual(Object.keys(plan.hosts).sort(), ['agent', 'server', 'viewer']);
    assert.equal(plan.hosts.server?.netns, plan.publicNs);
    // The public namespace's default route goes to the void (pitfall 2).
    assert.ok(plan.ipBatch.get(plan.publicNs)?.some((l) => l.startsWith('route add default via 192.0.2.2')));
    assert.ok(plan.nft.get(plan.voidNs)?.includes('policy drop'));
    // Every NAT router drops new inbound connections on its WAN side (pitfall 1).
    for (const r of Object.values(plan.routers)) {
      const rules = plan.nft.get(r.netns) ?? '';
      assert.match(rules, /chain input \{[^}]*iifname "wan" ct state new counter drop/);
    }
  }
});

test('router rulesets: eim masquerades, symmetric is fully random, udpBlocked keeps DNS only', () => {
  const eim = routerRuleset({ nat: 'eim' });
  assert.match(eim, new RegExp(`oifname "${IF.routerWan}" masquerade\\n`));
  assert.doesNotMatch(eim, /fully-random|udp dport/);
  assert.match(routerRuleset({ nat: 'symmetric' }), /masquerade fully-random/);
  assert.match(routerRuleset({ nat: 'eim', udpBlocked: true }), /iifname "lan" udp dport != 53 counter drop/);
  assert.match(voidRuleset(), /prerouting[\s\S]*policy drop/);
});

test('topology expectations are consistent with the NAT kinds', () => {
  for (const name of TOPOLOGY_NAMES) {
    const t = TOPOLOGIES[name];
    assert.equal(t.name, name);
    if (t.expected.punch) assert.ok(t.expected.punchVia, `${name}: punchVia`);
    if (t.expected.viewerMapping === 'symmetric' || t.expected.agentMapping === 'symmetric') {
      assert.equal(t.expected.punch, false, `${name}: a symmetric side behind port-restricted filtering`);
    }
  }
  assert.ok(TOPOLOGIES.viewerUdpBlocked.routers.some((r) => r.udpBlocked));
  assert.ok(TOPOLOGIES.doubleNatOneSide.routers.some((r) => r.upstream !== 'public'));
});

test('bad prefixes and topologies are rejected', () => {
  assert.throws(() => planLab(TOPOLOGIES.bothEim, 'Bad'), /bad lab prefix/);
  assert.throws(() => planLab(TOPOLOGIES.bothEim, 'a-b'), /bad lab prefix/);
  assert.throws(() => planLab(TOPOLOGIES.bothEim, 'waytoolongprefix'), /bad lab prefix/);
  const noViewer: TopologySpec = { ...TOPOLOGIES.bothEim, hosts: TOPOLOGIES.bothEim.hosts.slice(0, 1) };
  assert.throws(() => validateTopology(noViewer), /lacks host viewer/);
  const wrongNet: TopologySpec = {
    ...TOPOLOGIES.bothEim,
    hosts: [{ name: 'agent', segment: 'anat', ip: '192.168.9.10' }, ...TOPOLOGIES.bothEim.hosts.slice(1)],
  };
  assert.throws(() => planLab(wrongNet, 'hlabcd'), /not on anat/);
  const longName: TopologySpec = {
    ...TOPOLOGIES.bothEim,
    routers: [{ ...TOPOLOGIES.bothEim.routers[0]!, name: 'muchtoolong' }],
  };
  assert.throws(() => validateTopology(longName), /bad router name/);
});

test('chromium flags', () => {
  const flags = chromiumFlags();
  for (const f of BASE_CHROMIUM_FLAGS) assert.ok(flags.includes(f), f);
  assert.ok(flags.includes('--use-fake-ui-for-media-stream'));
  assert.ok(!flags.includes('--ignore-certificate-errors'));
  const more = chromiumFlags({
    ignoreCertificateErrors: true,
    allowLoopbackInPeerConnection: true,
    fakeMediaUi: false,
    args: ['--foo'],
  });
  assert.ok(more.includes('--ignore-certificate-errors'));
  assert.ok(more.includes('--allow-loopback-in-peer-connection'));
  assert.ok(!more.includes('--use-fake-ui-for-media-stream'));
  assert.equal(more.at(-1), '--foo');
  assert.throws(() => chromiumFlags({ args: ['--user-data-dir=/tmp/x'] }), /fresh profile/);
});

test('NatLab.available() explains itself', async () => {
  const a = await NatLab.available();
  if (!a.ok) assert.ok(a.reason && a.reason.length > 0);
  else assert.equal(a.reason, undefined);
});
