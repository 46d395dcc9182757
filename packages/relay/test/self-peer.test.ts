/**
 * Security review R6 ("deny the relay's own addresses"): a TURN client may not use the relay to reach
 * the relay itself. Its external address, its listen and relay addresses (with a wildcard bind, every
 * interface address) and their IPv6 forms are refused with 403 as peers of CreatePermission and
 * ChannelBind, and Send indications to them are dropped; port-aware, so another live allocation's
 * relayed address on this relay still works (two relayed clients talk so). Every exchange is a real
 * TURN client against the real RelayServer on loopback. Control: with `allowSelfPeers` (the defence
 * off) the same requests succeed, and a Binding request sent through the relay to its own listener
 * comes back to the client (the relay loops into itself).
 */
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { after, describe, it } from 'node:test';
import {
  Attr,
  decodeChannelData,
  decodeStunMessage,
  decodeXorAddress,
  encodeRequestedAddressFamily,
  encodeStunMessage,
  getAttribute,
  StunClass,
  StunMethod,
  type TransportAddress,
} from '../src/codec/index.js';
import { issueTurnCredentials, type RelayServer, type RelayServerOptions } from '../src/index.js';
import { ownAddresses, SelfGuard } from '../src/server/peer-guard.js';
import { startTestRelay, TestPeer, TestTurnClient } from './helpers/turn-client.js';

const SECRET = 'self-peer-secret';
/** Advertised external address: TEST-NET-3, in no denied range, on no interface of the test machine. */
const EXTERNAL = '203.0.113.9';

const open: { close(): void }[] = [];
const servers: RelayServer[] = [];
after(async () => {
  for (const c of open) c.close();
  for (const s of servers) await s.close();
});

async function relay(opts: Partial<RelayServerOptions>) {
  const r = await startTestRelay(SECRET, opts);
  servers.push(r.server);
  return r;
}

async function allocated(udpPort: number, family: 4 | 6 = 4, id = 'viewer') {
  const c = await TestTurnClient.udp(udpPort);
  open.push(c);
  const cr = issueTurnCredentials({ secret: SECRET, id, ttlSeconds: 600 });
  const extra =
    family === 6 ? [{ type: Attr.RequestedAddressFamily, value: encodeRequestedAddressFamily(6) }] : [];
  const a = await c.allocate(cr.username, cr.password, extra);
  assert.equal(a.code, 0, 'allocate');
  return { c, relayed: c.relayed(a) };
}

const binding = () =>
  encodeStunMessage({
    method: StunMethod.Binding,
    cls: StunClass.Request,
    transactionId: new Uint8Array(12).fill(7),
    attributes: [],
  });

/** The relay's own addresses on a loopback relay with an advertised external address and IPv6 relaying. */
async function ownAddressCodes(allowSelfPeers: boolean) {
  const { server, udpPort, tcpPort } = await relay({
    externalAddress: EXTERNAL,
    relayHost6: '::1',
    externalAddress6: '::1',
    allowSelfPeers,
  });
  const v4 = await allocated(udpPort, 4);
  const v6 = await allocated(udpPort, 6, 'viewer6');
  const cases: [string, TestTurnClient, TransportAddress][] = [
    ['external address', v4.c, { family: 4, address: EXTERNAL, port: 40_000 }],
    ['external address, UDP listening port', v4.c, { family: 4, address: EXTERNAL, port: udpPort }],
    [
      'listen address 127.0.0.1, UDP listening port',
      v4.c,
      { family: 4, address: '127.0.0.1', port: udpPort },
    ],
    [
      'listen address 127.0.0.1, TCP listening port',
      v4.c,
      { family: 4, address: '127.0.0.1', port: tcpPort },
    ],
    ['IPv4-mapped external address', v6.c, { family: 6, address: `::ffff:${EXTERNAL}`, port: 40_000 }],
    ['IPv4-mapped loopback', v6.c, { family: 6, address: '::ffff:127.0.0.1', port: udpPort }],
    ['IPv4-mapped loopback, hex', v6.c, { family: 6, address: '::ffff:7f00:1', port: 40_000 }],
    ['IPv6 relay address ::1, UDP listening port', v6.c, { family: 6, address: '::1', port: udpPort }],
  ];
  const codes: Record<string, { perm: number; chan: number }> = {};
  let ch = 0x4000;
  for (const [label, c, peer] of cases) {
    codes[label] = {
      perm: (await c.createPermission(peer)).code,
      chan: (await c.channelBind(ch++, peer)).code,
    };
  }
  return { codes, server, udpPort, v4 };
}

describe("relay's own addresses as peers (review R6)", () => {
  it('each own address, and its IPv4-mapped IPv6 forms, is refused with 403 (CreatePermission, ChannelBind)', async () => {
    const { codes, server } = await ownAddressCodes(false);
    for (const [label, r] of Object.entries(codes)) {
      assert.equal(r.perm, 403, `CreatePermission to ${label}`);
      assert.equal(r.chan, 403, `ChannelBind to ${label}`);
    }
    assert.ok(server.metrics.forbiddenPeer >= 2 * Object.keys(codes).length);
  });

  it('control: with the defence off (allowSelfPeers) the same requests succeed', async () => {
    const { codes } = await ownAddressCodes(true);
    // ::1 included: allowLoopbackPeers admits it (it is IPv6 loopback, not IPv4-compatible 0.0.0.1).
    assert.ok(codes['IPv6 relay address ::1, UDP listening port']);
    for (const [label, r] of Object.entries(codes)) {
      assert.equal(r.perm, 0, `control: CreatePermission to ${label} allowed`);
      assert.equal(r.chan, 0, `control: ChannelBind to ${label} allowed`);
    }
  });

  for (const defence of [true, false]) {
    it(
      defence
        ? "a Send indication into the relay's own listener is dropped (no loop)"
        : 'control: without the defence, a Binding sent through the relay to its own listener loops back',
      async () => {
        const { server, udpPort } = await relay({ allowSelfPeers: !defence });
        const { c, relayed } = await allocated(udpPort);
        // A permission for 127.0.0.1 (a loopback peer, allowed in this test relay) ...
        const p = await TestPeer.create();
        open.push(p);
        assert.equal((await c.createPermission(p.address)).code, 0);
        // ... then the relay is asked to send to its own STUN/TURN port.
        const forbidden = server.metrics.forbiddenPeer;
        c.sendIndication({ family: 4, address: '127.0.0.1', port: udpPort }, binding());
        if (defence) {
          assert.ok(await c.expectSilence(400), 'nothing comes back');
          assert.equal(server.metrics.forbiddenPeer, forbidden + 1);
        } else {
          const ind = decodeStunMessage(await c.nextPacket());
          assert.equal(ind.method, StunMethod.Data);
          const from = decodeXorAddress(getAttribute(ind, Attr.XorPeerAddress)!, ind.transactionId);
          assert.deepEqual(from, { family: 4, address: '127.0.0.1', port: udpPort }, 'from its own listener');
          const inner = decodeStunMessage(getAttribute(ind, Attr.Data)!);
          assert.equal(inner.cls, StunClass.SuccessResponse, 'the relay answered itself');
          const mapped = decodeXorAddress(getAttribute(inner, Attr.XorMappedAddress)!, inner.transactionId);
          assert.equal(mapped.port, relayed.port, 'seen from its own relay socket');
        }
      },
    );
  }

  it('wildcard bind: every interface address of the machine is refused; control allows them', async (t) => {
    const addrs = Object.values(networkInterfaces())
      .flat()
      .filter((i) => i && i.family === 'IPv4' && !i.internal)
      .map((i) => i!.address);
    t.diagnostic(
      `non-loopback IPv4 interface addresses: ${addrs.join(', ') || 'none (external address only)'}`,
    );
    for (const allowSelfPeers of [false, true]) {
      const { udpPort } = await relay({
        host: '0.0.0.0',
        externalAddress: EXTERNAL,
        allowLoopbackPeers: false,
        allowSelfPeers,
      });
      const { c } = await allocated(udpPort);
      for (const address of [...addrs, EXTERNAL]) {
        for (const port of [udpPort, 40_000]) {
          const code = (await c.createPermission({ family: 4, address, port })).code;
          assert.equal(
            code,
            allowSelfPeers ? 0 : 403,
            `${address}:${port}, allowSelfPeers=${allowSelfPeers}`,
          );
        }
      }
    }
  });

  it('two allocations on the same relay still exchange data (Send/Data and channels), port-aware', async () => {
    // Loopback peers denied: only the relay-to-relay rule lets A reach B's relayed address.
    const { server, udpPort } = await relay({ allowLoopbackPeers: false });
    const a = await allocated(udpPort, 4, 'a');
    const b = await allocated(udpPort, 4, 'b');
    assert.equal(a.relayed.address, '127.0.0.1');
    assert.equal((await a.c.createPermission(b.relayed)).code, 0, 'A -> B relayed address');
    assert.equal((await b.c.createPermission(a.relayed)).code, 0, 'B -> A relayed address');

    a.c.sendIndication(b.relayed, Buffer.from('a to b'));
    const ind = decodeStunMessage(await b.c.nextPacket());
    assert.equal(ind.method, StunMethod.Data);
    assert.equal(Buffer.from(getAttribute(ind, Attr.Data)!).toString(), 'a to b');
    assert.deepEqual(decodeXorAddress(getAttribute(ind, Attr.XorPeerAddress)!, ind.transactionId), a.relayed);

    assert.equal((await a.c.channelBind(0x4000, b.relayed)).code, 0);
    assert.equal((await b.c.channelBind(0x4001, a.relayed)).code, 0);
    a.c.sendChannelData(0x4000, Buffer.from('channel a to b'));
    const cd = decodeChannelData(await b.c.nextPacket());
    assert.equal(cd.channel, 0x4001);
    assert.equal(Buffer.from(cd.data).toString(), 'channel a to b');
    b.c.sendChannelData(0x4001, Buffer.from('channel b to a'));
    const back = decodeChannelData(await a.c.nextPacket());
    assert.equal(Buffer.from(back.data).toString(), 'channel b to a');

    // Same IP, other ports: refused (its listener, a non-relay port).
    assert.equal((await a.c.createPermission({ family: 4, address: '127.0.0.1', port: udpPort })).code, 403);
    assert.equal(
      (await a.c.channelBind(0x4002, { family: 4, address: '127.0.0.1', port: 40_000 })).code,
      403,
    );
    // With A's permission for 127.0.0.1 installed, a Send to another port of it is still dropped.
    const f0 = server.metrics.forbiddenPeer;
    a.c.sendIndication({ family: 4, address: '127.0.0.1', port: udpPort }, binding());
    assert.ok(await a.c.expectSilence(300));
    assert.equal(server.metrics.forbiddenPeer, f0 + 1);

    // B's allocation ends: its port is no longer a live relayed address.
    assert.equal((await b.c.refresh(0)).code, 0);
    const f1 = server.metrics.forbiddenPeer;
    a.c.sendChannelData(0x4000, Buffer.from('late'));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(server.metrics.forbiddenPeer, f1 + 1, 'the channel to the ended allocation is dropped');
    assert.equal((await a.c.createPermission(b.relayed)).code, 403);
  });

  it('ownAddresses: external, bound, and with a wildcard every interface address (zone stripped)', () => {
    const ifs = {
      lo: [
        { address: '127.0.0.1', family: 'IPv4' },
        { address: '::1', family: 'IPv6' },
      ],
      eth0: [{ address: 'fe80::1%eth0', family: 'IPv6' }],
    };
    const base = { host: '127.0.0.1', relayHost: '127.0.0.1', externalAddress: EXTERNAL };
    assert.deepEqual(ownAddresses(base, ifs).sort(), ['127.0.0.1', EXTERNAL].sort());
    assert.deepEqual(
      ownAddresses({ ...base, host: '0.0.0.0', relayHost: '0.0.0.0' }, ifs).sort(),
      ['127.0.0.1', '::1', EXTERNAL, 'fe80::1'].sort(),
    );
    const g = new SelfGuard(['10.0.0.5', '2001:db8::5']);
    assert.equal(g.match('10.0.0.5', 4), 'direct');
    assert.equal(g.match('10.0.0.6', 4), 'no');
    assert.equal(g.match('2001:db8:0:0::5', 6), 'direct');
    assert.equal(g.match('::ffff:10.0.0.5', 6), 'embedded');
    assert.equal(g.match('64:ff9b::a00:5', 6), 'embedded');
    assert.equal(g.match('2002:a00:5::1', 6), 'embedded');
    assert.equal(g.match('zz::1', 6), 'no');
  });
});
