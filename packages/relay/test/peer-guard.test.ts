/**
 * Security review R6 (peer guard): IPv6 forms that embed a denied IPv4 address are refused, in
 * every spelling, by the relay's real PeerGuard (the class RelayServer consults for
 * CreatePermission, ChannelBind and Send). Control: the old guard, which knew only `::ffff:` and
 * `64:ff9b::` spelled one way, let the review's addresses through.
 */
import assert from 'node:assert/strict';
import { BlockList } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { embeddedV4s, ipv6Groups, PeerGuard } from '../src/server/peer-guard.js';

const guard = () => new PeerGuard({ allowLoopbackPeers: false, allowedPeerRanges: [], deniedPeerRanges: [] });
const RUNS = Number(process.env.HEARTH_FUZZ_RUNS ?? 2000);

/** The old guard's rule, kept here as the broken defence. */
function oldIsAllowed(address: string): boolean {
  const deny = new BlockList();
  for (const [a, p] of [
    ['127.0.0.0', 8],
    ['10.0.0.0', 8],
    ['192.168.0.0', 16],
    ['169.254.0.0', 16],
  ] as const)
    deny.addSubnet(a, p, 'ipv4');
  deny.addSubnet('::', 96, 'ipv6');
  const m = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m) return !deny.check(m[1]!, 'ipv4');
  return !deny.check(address, 'ipv6');
}

const REVIEW = ['::ffff:0:7f00:1', '2002:7f00:1::1', '2001:0:4136:e378:8000:63bf:80ff:fffe'];

const hex = (n: number) => n.toString(16);
/** Spellings of IPv6 forms that carry `v4` (four bytes). */
function forms(b: number[]): string[] {
  const [a, c, d, e] = b as [number, number, number, number];
  const hi = (a << 8) | c;
  const lo = (d << 8) | e;
  const dotted = `${a}.${c}.${d}.${e}`;
  return [
    `::ffff:${dotted}`,
    `::ffff:${hex(hi)}:${hex(lo)}`,
    `0:0:0:0:0:ffff:${hex(hi)}:${hex(lo)}`,
    `::ffff:0:${dotted}`,
    `::ffff:0:${hex(hi)}:${hex(lo)}`,
    `64:ff9b::${dotted}`,
    `64:ff9b::${hex(hi)}:${hex(lo)}`,
    `2002:${hex(hi)}:${hex(lo)}::1`,
    `2001:0:4136:e378:8000:63bf:${hex(hi ^ 0xffff)}:${hex(lo ^ 0xffff)}`,
    `2001::${hex(hi ^ 0xffff)}:${hex(lo ^ 0xffff)}`,
  ];
}

describe('peer guard: IPv6 forms of denied IPv4 addresses (review R6)', () => {
  it("the review's addresses are refused; the old guard allowed each (control)", () => {
    for (const a of REVIEW) {
      assert.equal(guard().isAllowed(a, 6), false, a);
      assert.equal(oldIsAllowed(a), true, `control: the old guard allowed ${a}`);
    }
  });

  it('fuzz: every form of an address in a denied range is refused; the same forms of a public one are not', () => {
    const g = guard();
    const denied = fc.oneof(
      fc.tuple(fc.constant(127), fc.nat(255), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(10), fc.nat(255), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(192), fc.constant(168), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(169), fc.constant(254), fc.nat(255), fc.nat(255)),
    );
    fc.assert(
      fc.property(denied, (b) => {
        for (const f of forms(b)) assert.equal(g.isAllowed(f, 6), false, f);
      }),
      { numRuns: RUNS },
    );
    for (const f of forms([93, 184, 216, 34]).filter((x) => !x.startsWith('2001:')))
      assert.equal(g.isAllowed(f, 6), true, f);
  });

  it('the IPv6 parser agrees with node:net on random addresses, and refuses garbage', () => {
    fc.assert(
      fc.property(fc.ipV6(), (a) => {
        const gs = ipv6Groups(a);
        assert.ok(gs && gs.length === 8, a);
        const bl = new BlockList();
        bl.addAddress(a, 'ipv6');
        const text = gs.map((x) => x.toString(16)).join(':');
        assert.ok(bl.check(text, 'ipv6'), `${a} → ${text}`);
        embeddedV4s(a);
      }),
      { numRuns: RUNS },
    );
    for (const bad of ['', ':::', '1::2::3', 'g::1', '1:2:3:4:5:6:7:8:9', '::1.2.3.256'])
      assert.equal(ipv6Groups(bad), undefined, bad);
    assert.equal(guard().isAllowed('zz::1', 6), false, 'unparseable: refused');
  });
});

describe('IPv6 loopback and allowLoopbackPeers', () => {
  const loop = () => new PeerGuard({ allowLoopbackPeers: true, allowedPeerRanges: [], deniedPeerRanges: [] });
  it('::1 is IPv6 loopback (not the compatible form of 0.0.0.1): allowed only when loopback peers are', () => {
    assert.deepEqual(embeddedV4s('::1'), []);
    assert.deepEqual(embeddedV4s('::'), []);
    for (const a of ['::1', '0:0:0:0:0:0:0:1', '::0:1']) {
      assert.equal(loop().isAllowed(a, 6), true, a);
      assert.equal(guard().isAllowed(a, 6), false, a);
    }
    // Still denied, loopback peers or not: the compatible and mapped forms of private addresses.
    for (const a of ['::10.0.0.1', '::ffff:10.0.0.1', '::ffff:192.168.1.1', '::'])
      assert.equal(loop().isAllowed(a, 6), false, a);
    // Without loopback peers, no form of 127/8.
    assert.equal(loop().isAllowed('::127.0.0.1', 6), false, 'deprecated compatible form: ::/96');
    assert.equal(guard().isAllowed('::127.0.0.1', 6), false);
    assert.equal(guard().isAllowed('::ffff:127.0.0.1', 6), false);
  });
});
