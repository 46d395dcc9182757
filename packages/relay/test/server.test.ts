import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  Attr,
  decodeChannelData,
  decodeStunMessage,
  decodeU32,
  decodeXorAddress,
  getAttribute,
  StunClass,
  StunMethod,
  verifyIntegrity,
} from '../src/codec/index.js';
import { issueTurnCredentials, RelayServer, type RelayServerOptions } from '../src/index.js';
import { nodeStunCrypto } from '../src/server/node-crypto.js';
import { FakeClock, startTestRelay, TestPeer, TestTurnClient } from './helpers/turn-client.js';

const SECRET = 'test-secret';

const startServer = (clock: FakeClock, extra: Partial<RelayServerOptions> = {}) =>
  startTestRelay(SECRET, { clock, ...extra });

function creds(clock: FakeClock, id = 'viewer-1', ttlSeconds = 3600) {
  return issueTurnCredentials({ secret: SECRET, id, ttlSeconds, nowMs: clock.now() });
}

describe('RelayServer over real sockets', () => {
  const clock = new FakeClock();
  let server: RelayServer;
  let udpPort: number;
  let tcpPort: number;
  const cleanup: { close(): void }[] = [];

  before(async () => {
    ({ server, udpPort, tcpPort } = await startServer(clock));
  });
  after(async () => {
    for (const c of cleanup) c.close();
    await server.close();
  });

  async function client(kind: 'udp' | 'tcp' = 'udp') {
    const c = kind === 'udp' ? await TestTurnClient.udp(udpPort) : await TestTurnClient.tcp(tcpPort);
    cleanup.push(c);
    return c;
  }
  async function peer() {
    const p = await TestPeer.create();
    cleanup.push(p);
    return p;
  }

  it('answers Binding with XOR-MAPPED-ADDRESS', async () => {
    const c = await client();
    const r = await c.request(StunMethod.Binding, [], false);
    assert.equal(r.code, 0);
    const mapped = decodeXorAddress(getAttribute(r.msg, Attr.XorMappedAddress)!, r.msg.transactionId);
    assert.deepEqual(mapped, { family: 4, address: '127.0.0.1', port: c.localPort });
  });

  it('challenges with 401 + REALM + NONCE, refuses a wrong password (401)', async () => {
    const c = await client();
    const r = await c.allocate(creds(clock).username, 'wrong-password');
    assert.equal(r.code, 401);
    assert.ok(getAttribute(r.msg, Attr.Realm));
    assert.ok(getAttribute(r.msg, Attr.Nonce));
  });

  it('refuses expired REST credentials (401) and counts them', async () => {
    const c = await client();
    const old = issueTurnCredentials({
      secret: SECRET,
      id: 'x',
      ttlSeconds: 60,
      nowMs: clock.now() - 120_000,
    });
    const before = server.metrics.expiredCredentials;
    const r = await c.allocate(old.username, old.password);
    assert.equal(r.code, 401);
    assert.equal(server.metrics.expiredCredentials, before + 1);
  });

  it('allocates, relays Send/Data indications and ChannelData both ways (UDP)', async () => {
    const c = await client();
    const p = await peer();
    const cr = creds(clock);
    const a = await c.allocate(cr.username, cr.password);
    assert.equal(a.code, 0, 'allocate succeeds');
    assert.ok(verifyIntegrity(a.msg, c.key!, nodeStunCrypto), 'success response is integrity-protected');
    const relayed = c.relayed(a);
    assert.equal(relayed.address, '127.0.0.1');
    assert.equal(decodeU32(getAttribute(a.msg, Attr.Lifetime)!), 600);

    // Without a permission, nothing reaches the peer.
    c.sendIndication(p.address, Buffer.from('no-permission'));
    assert.ok(await p.expectSilence(200));

    assert.equal((await c.createPermission(p.address)).code, 0);
    c.sendIndication(p.address, Buffer.from('hello peer'));
    const got = await p.next();
    assert.equal(got.data.toString(), 'hello peer');
    assert.equal(got.port, relayed.port, 'peer sees the relayed port');

    p.sendTo(relayed.port, Buffer.from('hello client'));
    const ind = decodeStunMessage(await c.nextPacket());
    assert.equal(ind.method, StunMethod.Data);
    assert.equal(ind.cls, StunClass.Indication);
    assert.equal(Buffer.from(getAttribute(ind, Attr.Data)!).toString(), 'hello client');
    assert.deepEqual(decodeXorAddress(getAttribute(ind, Attr.XorPeerAddress)!, ind.transactionId), p.address);

    assert.equal((await c.channelBind(0x4001, p.address)).code, 0);
    c.sendChannelData(0x4001, Buffer.from('via channel'));
    assert.equal((await p.next()).data.toString(), 'via channel');
    p.sendTo(relayed.port, Buffer.from('back via channel'));
    const cd = decodeChannelData(await c.nextPacket());
    assert.equal(cd.channel, 0x4001);
    assert.equal(Buffer.from(cd.data).toString(), 'back via channel');

    // Unbound channel: dropped and counted.
    const dropped = server.metrics.channelDataDropped;
    c.sendChannelData(0x4002, Buffer.from('nowhere'));
    assert.ok(await p.expectSilence(200));
    assert.equal(server.metrics.channelDataDropped, dropped + 1);

    // A second Allocate on the same 5-tuple is a mismatch.
    assert.equal((await c.allocate(cr.username, cr.password)).code, 437);
  });

  it('relays over TURN-over-TCP with padded ChannelData', async () => {
    const c = await client('tcp');
    const p = await peer();
    const cr = creds(clock, 'tcp-user');
    const a = await c.allocate(cr.username, cr.password);
    assert.equal(a.code, 0);
    const relayed = c.relayed(a);
    assert.equal((await c.channelBind(0x4abc, p.address)).code, 0);
    c.sendChannelData(0x4abc, Buffer.from('odd-size!'));
    assert.equal((await p.next()).data.toString(), 'odd-size!');
    p.sendTo(relayed.port, Buffer.from('12345'));
    const cd = decodeChannelData(await c.nextPacket(), { stream: true });
    assert.equal(Buffer.from(cd.data).toString(), '12345');
    assert.equal(cd.frameSize, 12);
  });

  it('expires permissions (300 s) and allocations; Refresh extends; injectable clock', async () => {
    const c = await client();
    const p = await peer();
    const cr = creds(clock, 'expiry-user', 86_400);
    const a = await c.allocate(cr.username, cr.password);
    assert.equal(a.code, 0);
    const relayed = c.relayed(a);
    assert.equal((await c.createPermission(p.address)).code, 0);

    clock.advance(301_000);
    const before = server.metrics.permissionDropped;
    p.sendTo(relayed.port, Buffer.from('late'));
    assert.ok(await c.expectSilence(300));
    assert.equal(server.metrics.permissionDropped, before + 1);

    // Nonce outlived (600 s default)? not yet: 301 s. Refresh to 600 s from now.
    const r = await c.refresh(600);
    assert.equal(r.code, 0);
    clock.advance(500_000); // t = 801 s: past the original 600 s expiry, within the refreshed one
    server.sweep();
    // The nonce is now stale: the client must retry with the new nonce.
    const stale = await c.refresh(600);
    assert.equal(stale.code, 438);
    c.nonce = Buffer.from(getAttribute(stale.msg, Attr.Nonce)!).toString();
    assert.equal((await c.refresh(600)).code, 0, 'allocation survived the original lifetime');
    clock.advance(601_000);
    const count = server.allocationCount;
    server.sweep();
    assert.equal(server.allocationCount, count - 1);
    c.nonce = Buffer.from(getAttribute((await c.refresh(600)).msg, Attr.Nonce)!).toString();
    assert.equal((await c.refresh(600)).code, 437, 'expired allocation is gone');
  });

  it('Refresh with LIFETIME 0 deletes the allocation', async () => {
    const c = await client();
    const cr = creds(clock, 'deleter');
    assert.equal((await c.allocate(cr.username, cr.password)).code, 0);
    const r = await c.refresh(0);
    assert.equal(r.code, 0);
    assert.equal(decodeU32(getAttribute(r.msg, Attr.Lifetime)!), 0);
    assert.equal((await c.refresh(600)).code, 437);
  });

  it('rejects REQUESTED-TRANSPORT TCP with 442 and unknown required attributes with 420', async () => {
    const c = await client();
    const cr = creds(clock, 'transport');
    assert.equal((await c.allocate(cr.username, cr.password, [], 6)).code, 442);
    assert.equal((await c.allocate(cr.username, cr.password)).code, 0);
    const u = await c.request(StunMethod.Binding, [{ type: 0x7777, value: new Uint8Array(4) }], false);
    assert.equal(u.code, 420);
    assert.deepEqual([...getAttribute(u.msg, Attr.UnknownAttributes)!], [0x77, 0x77]);
  });

  it('counts garbage and oversized packets, then keeps serving', async () => {
    const before = { ...server.metrics };
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const junk = [
      Buffer.alloc(0),
      Buffer.from([0xff]),
      randomBytes(19),
      Buffer.concat([Buffer.from([0, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42]), randomBytes(12), randomBytes(3)]),
      Buffer.concat([
        Buffer.from([0, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42]),
        randomBytes(12),
        Buffer.from([0, 6, 0, 9]),
      ]),
      Buffer.from([0x40, 0x01, 0xff, 0xff, 1, 2, 3]),
      randomBytes(20_000),
      Buffer.from([0xc0, 0, 0, 0]),
    ];
    for (let i = 0; i < 200; i++) junk.push(randomBytes(1 + (i % 300)));
    for (const j of junk) s.send(j, udpPort, '127.0.0.1');
    // TCP: a non-STUN stream is dropped and the connection closed.
    const t = connect(tcpPort, '127.0.0.1');
    await new Promise<void>((r) => t.once('connect', () => r()));
    t.on('error', () => {});
    t.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await new Promise<void>((r) => t.once('close', () => r()));
    await new Promise((r) => setTimeout(r, 200));
    s.close();
    const m = server.metrics;
    const dropped =
      m.malformedDropped - before.malformedDropped + m.oversizedDropped - before.oversizedDropped;
    assert.ok(dropped >= 5, `garbage counted (${dropped})`);
    assert.equal(m.oversizedDropped - before.oversizedDropped >= 1, true);
    assert.equal(m.internalErrors, 0);
    const c = await client();
    assert.equal((await c.request(StunMethod.Binding, [], false)).code, 0, 'still serving');
  });
});

describe('RelayServer policy', () => {
  it('enforces per-identity allocation quota with 486', async () => {
    const clock = new FakeClock();
    const { server, udpPort } = await startServer(clock, { maxAllocationsPerUser: 1 });
    const a = await TestTurnClient.udp(udpPort);
    const b = await TestTurnClient.udp(udpPort);
    try {
      const c1 = creds(clock, 'same-id');
      const c2 = issueTurnCredentials({
        secret: SECRET,
        id: 'same-id',
        ttlSeconds: 7200,
        nowMs: clock.now(),
      });
      assert.equal((await a.allocate(c1.username, c1.password)).code, 0);
      assert.equal((await b.allocate(c2.username, c2.password)).code, 486);
      assert.equal(server.metrics.quotaRejected, 1);
    } finally {
      a.close();
      b.close();
      await server.close();
    }
  });

  it('review R6: allocations per client IP are capped whatever the credentials (many throwaway usernames, one address); control: without the cap they all succeed', async () => {
    const clock = new FakeClock();
    const run = async (maxAllocationsPerIp: number) => {
      const { server, udpPort } = await startServer(clock, {
        maxAllocationsPerIp,
        maxAllocationsPerUser: 100,
      });
      const clients = await Promise.all(Array.from({ length: 6 }, () => TestTurnClient.udp(udpPort)));
      try {
        const codes: number[] = [];
        for (const [i, c] of clients.entries()) {
          const cr = creds(clock, `throwaway-${i}`);
          codes.push((await c.allocate(cr.username, cr.password)).code);
        }
        return codes;
      } finally {
        for (const c of clients) c.close();
        await server.close();
      }
    };
    assert.deepEqual(await run(4), [0, 0, 0, 0, 486, 486]);
    assert.deepEqual(await run(1000), [0, 0, 0, 0, 0, 0]);
  });

  it('drops traffic above the per-allocation byte rate', async () => {
    const clock = new FakeClock();
    const { server, udpPort } = await startServer(clock, { bytesPerSecond: 1000, burstBytes: 1000 });
    const c = await TestTurnClient.udp(udpPort);
    const p = await TestPeer.create();
    try {
      const cr = creds(clock);
      assert.equal((await c.allocate(cr.username, cr.password)).code, 0);
      assert.equal((await c.channelBind(0x4000, p.address)).code, 0);
      for (let i = 0; i < 5; i++) c.sendChannelData(0x4000, Buffer.alloc(400));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(server.metrics.relayedToPeer, 2);
      assert.equal(server.metrics.rateLimitedDropped, 3);
    } finally {
      c.close();
      p.close();
      await server.close();
    }
  });

  it('refuses loopback/private/link-local peers with 403 unless allowed', async () => {
    const clock = new FakeClock();
    const { server, udpPort } = await startServer(clock, {
      allowLoopbackPeers: false,
      allowedPeerRanges: ['10.1.0.0/16'],
    });
    const c = await TestTurnClient.udp(udpPort);
    try {
      const cr = creds(clock);
      assert.equal((await c.allocate(cr.username, cr.password)).code, 0);
      for (const address of [
        '127.0.0.1',
        '10.0.0.1',
        '192.168.1.1',
        '169.254.169.254',
        '0.0.0.0',
        '224.0.0.1',
      ]) {
        const r = await c.createPermission({ family: 4, address, port: 9 });
        assert.equal(r.code, 403, address);
      }
      assert.equal((await c.channelBind(0x4000, { family: 4, address: '127.0.0.1', port: 9 })).code, 403);
      assert.equal(
        (await c.createPermission({ family: 4, address: '10.1.2.3', port: 9 })).code,
        0,
        'allowed range',
      );
      assert.equal((await c.createPermission({ family: 4, address: '93.184.216.34', port: 9 })).code, 0);
      assert.equal((await c.createPermission({ family: 6, address: '2001:db8::1', port: 9 })).code, 443);
      assert.ok(server.metrics.forbiddenPeer >= 7);
    } finally {
      c.close();
      await server.close();
    }
  });

  it('accepts static long-term users too', async () => {
    const clock = new FakeClock();
    const { server, udpPort } = await startServer(clock, { users: { alice: 'pw' } });
    const c = await TestTurnClient.udp(udpPort);
    try {
      assert.equal((await c.allocate('alice', 'pw')).code, 0);
    } finally {
      c.close();
      await server.close();
    }
  });

  it('rejects bad configuration with a typed error', async () => {
    const s = new RelayServer();
    await assert.rejects(s.start({ realm: '' }), { code: 'E_CONFIG' });
    const t = new RelayServer();
    await assert.rejects(t.start({ realm: 'r', authSecret: 's', host: '0.0.0.0' }), { code: 'E_CONFIG' });
  });
});
