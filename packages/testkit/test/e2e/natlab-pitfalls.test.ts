// The two pitfalls recorded in the architecture brief, reproduced so a regression shows up here first.
// Needs root, ip and nft.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { holePunch, NatLab, probeMapping, startReflector } from '@hearth/testkit';

const avail = await NatLab.available();
const skip = avail.ok ? false : avail.reason;

test('pitfall 1: without the WAN-side drop of new inbound, hole punching breaks', {
  skip,
  timeout: 90_000,
}, async (t) => {
  const lab = await NatLab.create('bothEim');
  try {
    const refl = await startReflector(lab);
    const { agent, viewer } = lab.hosts;
    const tries = 3;
    const count = async (): Promise<number> => {
      let ok = 0;
      for (let i = 0; i < tries; i++)
        if ((await holePunch(lab, agent, viewer, refl, { timeoutMs: 2500 })).ok) ok++;
      return ok;
    };
    assert.equal(await count(), tries, 'with the rule every punch succeeds');
    // Early punches from the peer were dropped on the WAN side.
    const dropped = (await lab.routerDropCount('anat')) + (await lab.routerDropCount('vnat'));
    assert.ok(dropped > 0, 'no unsolicited inbound packet was dropped');
    for (const r of ['anat', 'vnat']) {
      await lab.exec(r, 'nft', ['flush', 'chain', 'inet', 'hearth_filter', 'input'], { check: true });
    }
    const without = await count();
    t.diagnostic(`without the rule: ${without}/${tries} punches succeeded`);
    assert.ok(without < tries, 'expected the early-punch conntrack entry to break at least one punch');
  } finally {
    await lab.destroy();
  }
});

test('pitfall 2: the public namespace routes unknown destinations into the void', {
  skip,
  timeout: 60_000,
}, async () => {
  const lab = await NatLab.create('bothEim');
  try {
    const { server, agent } = lab.hosts;
    // A private (unroutable) candidate: the route exists, so a relay's send does not fail with ENETUNREACH.
    const route = await lab.exec(server, 'ip', ['route', 'get', agent.ip], { check: true });
    assert.match(route.stdout, /via 192\.0\.2\.2 dev void0/);
    const before = await lab.voidDropCount();
    const m = await probeMapping(lab, server, { ip: agent.ip, ports: [3478] }, { timeoutMs: 500 });
    assert.equal(m.kind, 'blocked');
    assert.ok((await lab.voidDropCount()) > before, 'the packets should be counted in the void');
  } finally {
    await lab.destroy();
  }
});
