// Builds every named topology, checks that the probes observe what the topology promises, that
// nothing leaves the lab, and that destroy() leaves nothing behind. Needs root, ip and nft.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  classifyLab,
  NatLab,
  OUTSIDE_IP,
  probeMapping,
  probeTcp,
  REGISTRY_DIR,
  startReflector,
  TOPOLOGIES,
  TOPOLOGY_NAMES,
} from '@hearth/testkit';
import { namespacesWithPrefix, pidAlive, rootLinks } from './helpers.js';

const avail = await NatLab.available();
const skip = avail.ok ? false : avail.reason;

for (const name of TOPOLOGY_NAMES) {
  test(`topology ${name}`, { skip, timeout: 120_000 }, async (t) => {
    const expected = TOPOLOGIES[name].expected;
    const rootBefore = rootLinks();
    const t0 = Date.now();
    const lab = await NatLab.create(name);
    t.diagnostic(`created ${lab.prefix} (${lab.namespaces.length} namespaces) in ${Date.now() - t0} ms`);
    let reflectorPid = 0;
    try {
      assert.deepEqual(rootLinks(), rootBefore, 'the lab added interfaces to the root namespace');
      assert.deepEqual(namespacesWithPrefix(lab.prefix).sort(), [...lab.namespaces].sort());
      const { server, agent, viewer } = lab.hosts;
      const refl = await startReflector(lab);
      reflectorPid = refl.process.pid;
      const c = await classifyLab(lab, refl);
      t.diagnostic(
        `observed ${JSON.stringify({ ...c, details: undefined })}; punch ${JSON.stringify(c.details.punch.a)}`,
      );

      await t.test('hosts reach the server', async () => {
        assert.equal(c.agentTcp, true, 'agent TCP');
        assert.equal(c.viewerTcp, true, 'viewer TCP');
        assert.equal(c.details.agentMapping.ok, true, 'agent UDP');
        assert.equal(c.viewerUdp, expected.viewerUdp, 'viewer UDP');
        // The server sees NATed hosts by their router's WAN address, never their private one.
        for (const m of [c.details.agentMapping, c.details.viewerMapping]) {
          for (const r of m.results) if (r.mapped) assert.match(r.mapped.ip, /^203\.0\.113\./);
        }
      });

      await t.test('mapping type matches the NAT kind', () => {
        assert.equal(c.agentMapping, expected.agentMapping);
        assert.equal(c.viewerMapping, expected.viewerMapping);
        const [a1, a2] = c.details.agentMapping.results;
        if (expected.agentMapping === 'eim') assert.deepEqual(a1?.mapped, a2?.mapped);
        if (expected.agentMapping === 'symmetric') assert.notEqual(a1?.mapped?.port, a2?.mapped?.port);
      });

      await t.test(`hole punch ${expected.punch ? 'succeeds' : 'fails'}`, () => {
        assert.equal(c.punch, expected.punch, JSON.stringify(c.details.punch));
        if (expected.punch) assert.equal(c.punchVia, expected.punchVia);
      });

      if (name === 'viewerUdpBlocked') {
        await t.test('viewer: UDP dropped except DNS, TCP works', () => {
          assert.equal(c.viewerMapping, 'blocked');
          assert.equal(c.viewerDns, true, 'UDP to port 53 must pass');
          assert.equal(c.viewerTcp, true);
        });
      }

      await t.test('nothing leaves the lab: traffic to the outside dies in the void', async () => {
        const before = await lab.voidDropCount();
        const [um, ut, sm] = await Promise.all([
          probeMapping(lab, agent, { ip: OUTSIDE_IP, ports: [3478] }, { timeoutMs: 600 }),
          probeTcp(lab, viewer, { ip: OUTSIDE_IP, port: 443 }, { timeoutMs: 800 }),
          probeMapping(lab, server, { ip: OUTSIDE_IP, ports: [3478] }, { timeoutMs: 600 }),
        ]);
        assert.equal(um.kind, 'blocked');
        assert.equal(sm.kind, 'blocked');
        assert.equal(ut.ok, false);
        assert.equal(ut.error, 'timeout', 'the void drops silently (no RST, no ICMP)');
        const after = await lab.voidDropCount();
        // UDP retries from agent and server plus TCP SYNs from the viewer all end up here.
        assert.ok(after - before >= 4, `void counted ${after - before} packets`);
      });
    } finally {
      await lab.destroy();
    }
    assert.deepEqual(namespacesWithPrefix(lab.prefix), [], 'namespaces left behind');
    assert.deepEqual(lab.pids, [], 'tracked processes left behind');
    assert.ok(reflectorPid > 0 && !pidAlive(reflectorPid), 'reflector still running');
    assert.equal(existsSync(join(REGISTRY_DIR, `${lab.prefix}.json`)), false, 'registry entry left behind');
    assert.deepEqual(rootLinks(), rootBefore);
  });
}
