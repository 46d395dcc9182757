// TurnCore's pure handlers, driven directly: datagrams in, actions out, no sockets. The clock,
// randomness and the SSRF guard are injected; the hashes are the pure @noble ones.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  Attr,
  decodeErrorCode,
  decodeString,
  decodeStunMessage,
  decodeU32,
  decodeXorAddress,
  encodeChannelNumber,
  encodeRequestedTransport,
  encodeString,
  encodeStunMessage,
  encodeU32,
  encodeXorAddress,
  getAttribute,
  longTermKey,
  nobleStunCrypto,
  type StunAttribute,
  StunClass,
  type StunMessage,
  StunMethod,
  TRANSPORT_UDP,
  verifyIntegrity,
} from '../src/codec/index.js';
import { issueTurnCredentials, verifyTurnCredentials } from '../src/credentials.js';
import type { ClientLink } from '../src/server/allocation.js';
import { createMetrics } from '../src/server/metrics.js';
import { type RelayServerOptions, resolveOptions } from '../src/server/options.js';
import { type RelayAction, type RelayBind, TurnCore } from '../src/server/turn-core.js';
import { FakeClock } from './helpers/turn-client.js';

const here = dirname(fileURLToPath(import.meta.url));
const SECRET = 'core-secret';
const REALM = 'hearth.test';
const PEER = { family: 4 as const, address: '203.0.113.7', port: 40000 };
const DENIED_PEER = { family: 4 as const, address: '10.1.2.3', port: 40000 };

let seq = 0;
/** Deterministic "random" bytes: distinct per call, so tokens and transaction IDs differ. */
function fakeRandom(n: number): Uint8Array {
  seq++;
  return Uint8Array.from({ length: n }, (_, i) => (seq * 31 + i * 7) & 0xff);
}

function makeCore(
  extra: Partial<RelayServerOptions> = {},
  isPeerAllowed: (address: string) => boolean = (address) => !address.startsWith('10.'),
) {
  const clock = new FakeClock(1_800_000_000_000);
  const metrics = createMetrics();
  const opts = resolveOptions({
    realm: REALM,
    authSecret: SECRET,
    host: '127.0.0.1',
    externalAddress: '198.51.100.1',
    clock,
    ...extra,
  });
  const core = new TurnCore(
    opts,
    {
      crypto: nobleStunCrypto,
      randomBytes: fakeRandom,
      verifyRest: verifyTurnCredentials,
      // A stand-in guard (default: 10/8 is internal).
      isPeerAllowed,
    },
    metrics,
  );
  return { core, clock, metrics };
}

let nextPort = 50000;
function udpLink(): ClientLink {
  return { kind: 'udp', address: '192.0.2.10', port: nextPort++, family: 4, tcp: undefined };
}

/** A client as the core sees it: builds requests, keeps realm/nonce/key like a real one. */
class Client {
  nonce = '';
  key: Uint8Array | undefined;
  username: string;
  password: string;
  constructor(
    readonly core: TurnCore,
    readonly clock: FakeClock,
    readonly link: ClientLink = udpLink(),
    id = 'viewer-1',
  ) {
    const c = issueTurnCredentials({ secret: SECRET, id, ttlSeconds: 3600, nowMs: clock.now() });
    this.username = c.username;
    this.password = c.password;
  }

  encode(method: number, attrs: StunAttribute[], auth: boolean, tid = fakeRandom(12)): Uint8Array {
    const attributes = [...attrs];
    if (auth) {
      this.key ??= longTermKey(this.username, REALM, this.password, nobleStunCrypto);
      attributes.push(
        { type: Attr.Username, value: encodeString(this.username) },
        { type: Attr.Realm, value: encodeString(REALM) },
        { type: Attr.Nonce, value: encodeString(this.nonce) },
      );
    }
    return encodeStunMessage(
      { method, cls: StunClass.Request, transactionId: tid, attributes },
      { integrityKey: auth ? this.key : undefined, crypto: nobleStunCrypto, fingerprint: true },
    );
  }

  /** Send one datagram; returns the actions. */
  send(bytes: Uint8Array): RelayAction[] {
    return this.core.handleStun(bytes, this.link);
  }

  /** Unauthenticated first try, to learn the nonce (RFC 8489 §9.2). */
  learnNonce(): void {
    const r = reply(this.send(this.encode(StunMethod.Allocate, transportAttr(), false)));
    assert.equal(r.code, 401);
    this.nonce = decodeString(getAttribute(r.msg, Attr.Nonce)!, 763);
  }

  request(method: number, attrs: StunAttribute[], tid?: Uint8Array): RelayAction[] {
    if (!this.nonce) this.learnNonce();
    return this.send(this.encode(method, attrs, true, tid));
  }

  /** Allocate and complete the relay bind on `port`: returns the success response. */
  allocate(port = 61000): { msg: StunMessage; bind: RelayBind } {
    const bind = bindOf(this.request(StunMethod.Allocate, transportAttr()));
    const done = this.core.relayBound(bind, port);
    assert.ok(done, 'allocation still live');
    const r = reply(done.actions);
    assert.equal(r.code, 0);
    return { msg: r.msg, bind };
  }
}

function transportAttr(): StunAttribute[] {
  return [{ type: Attr.RequestedTransport, value: encodeRequestedTransport(TRANSPORT_UDP) }];
}

function peerAttr(p: typeof PEER, tid: Uint8Array): StunAttribute {
  return { type: Attr.XorPeerAddress, value: encodeXorAddress(p, tid) };
}

/** The single send-client action's message and its error code (0 = success). */
function reply(actions: RelayAction[]): { msg: StunMessage; code: number; data: Uint8Array } {
  const sends = actions.filter((a) => a.type === 'send-client');
  assert.equal(sends.length, 1, `one reply expected, got ${JSON.stringify(actions.map((a) => a.type))}`);
  const data = (sends[0] as Extract<RelayAction, { type: 'send-client' }>).data;
  const msg = decodeStunMessage(data);
  const e = getAttribute(msg, Attr.ErrorCode);
  return { msg, code: e ? decodeErrorCode(e).code : 0, data };
}

function bindOf(actions: RelayAction[]): RelayBind {
  assert.deepEqual(
    actions.map((a) => a.type),
    ['bind-relay'],
  );
  return (actions[0] as Extract<RelayAction, { type: 'bind-relay' }>).bind;
}

function types(actions: RelayAction[]): string[] {
  return actions.map((a) => a.type);
}

describe('TurnCore (pure handlers, no sockets)', () => {
  it('answers Binding with the XOR-MAPPED-ADDRESS of the client link', () => {
    const { core, clock } = makeCore();
    const c = new Client(core, clock);
    const r = reply(c.send(c.encode(StunMethod.Binding, [], false)));
    assert.equal(r.code, 0);
    assert.deepEqual(decodeXorAddress(getAttribute(r.msg, Attr.XorMappedAddress)!, r.msg.transactionId), {
      family: 4,
      address: c.link.address,
      port: c.link.port,
    });
  });

  it('401: no integrity gets a challenge with REALM and NONCE, and binds nothing', () => {
    const { core, clock, metrics } = makeCore();
    const c = new Client(core, clock);
    const actions = c.send(c.encode(StunMethod.Allocate, transportAttr(), false));
    assert.deepEqual(types(actions), ['send-client']);
    const r = reply(actions);
    assert.equal(r.code, 401);
    assert.equal(decodeString(getAttribute(r.msg, Attr.Realm)!, 763), REALM);
    assert.ok(getAttribute(r.msg, Attr.Nonce));
    assert.equal(metrics.unauthorized, 1);
    assert.equal(core.allocationCount, 0);
  });

  it('401: a wrong password is refused, and so is a forged nonce', () => {
    const { core, clock, metrics } = makeCore();
    const c = new Client(core, clock);
    c.learnNonce();
    c.password = 'not-the-password';
    assert.equal(reply(c.request(StunMethod.Allocate, transportAttr())).code, 401);
    const d = new Client(core, clock);
    d.learnNonce();
    // Same expiry, MAC flipped: the nonce is the server's only state, so it must not be forgeable.
    const [exp, mac] = d.nonce.split('.');
    d.nonce = `${exp}.${mac!.slice(0, -1)}${mac!.endsWith('0') ? '1' : '0'}`;
    assert.equal(reply(d.request(StunMethod.Allocate, transportAttr())).code, 438);
    assert.equal(core.allocationCount, 0);
    assert.ok(metrics.unauthorized >= 3);
  });

  it('438: a nonce past its lifetime gets Stale Nonce with a fresh one that then works', () => {
    const { core, clock, metrics } = makeCore({ nonceLifetime: 5 });
    const c = new Client(core, clock);
    c.learnNonce();
    clock.advance(6000);
    const r = reply(c.request(StunMethod.Allocate, transportAttr()));
    assert.equal(r.code, 438);
    assert.equal(metrics.staleNonce, 1);
    c.nonce = decodeString(getAttribute(r.msg, Attr.Nonce)!, 763);
    bindOf(c.request(StunMethod.Allocate, transportAttr()));
  });

  it('allocates: bind-relay, then the signed success response with the relayed address and lifetime', () => {
    const { core, clock, metrics } = makeCore();
    const c = new Client(core, clock);
    const tid = fakeRandom(12);
    const bind = bindOf(c.request(StunMethod.Allocate, transportAttr(), tid));
    assert.equal(bind.mode.kind, 'any');
    assert.equal(bind.host, '127.0.0.1');
    assert.equal(core.allocationCount, 1);
    assert.equal(bind.allocation.ready, false);
    // A retransmission while the socket is still binding gets nothing (and no second allocation).
    assert.deepEqual(c.request(StunMethod.Allocate, transportAttr(), tid), []);
    const done = core.relayBound(bind, 61000)!;
    const r = reply(done.actions);
    assert.equal(r.code, 0);
    assert.ok(verifyIntegrity(r.msg, c.key!, nobleStunCrypto), 'response carries our MESSAGE-INTEGRITY');
    assert.deepEqual(decodeXorAddress(getAttribute(r.msg, Attr.XorRelayedAddress)!, r.msg.transactionId), {
      family: 4,
      address: '198.51.100.1',
      port: 61000,
    });
    assert.equal(decodeU32(getAttribute(r.msg, Attr.Lifetime)!), 600);
    assert.equal(core.udpAllocation(c.link.address, c.link.port), bind.allocation);
    // A retransmission now gets the cached answer, byte for byte.
    assert.deepEqual(reply(c.request(StunMethod.Allocate, transportAttr(), tid)).data, r.data);
    // A new Allocate on the same 5-tuple: 437.
    assert.equal(reply(c.request(StunMethod.Allocate, transportAttr())).code, 437);
    assert.equal(metrics.allocationsCreated, 1);
  });

  it('508 when the relay socket cannot be bound; the allocation is gone', () => {
    const { core, clock } = makeCore();
    const c = new Client(core, clock);
    const bind = bindOf(c.request(StunMethod.Allocate, transportAttr()));
    const actions = core.relayBindFailed(bind);
    assert.deepEqual(types(actions), ['close-relay', 'send-client']);
    assert.equal(reply(actions).code, 508);
    assert.equal(core.allocationCount, 0);
    assert.equal(core.udpAllocation(c.link.address, c.link.port), undefined);
  });

  it('486 past the per-identity quota, 508 past the server-wide one', () => {
    const { core, clock, metrics } = makeCore({ maxAllocationsPerUser: 1, maxAllocations: 2 });
    new Client(core, clock, udpLink(), 'alice').allocate();
    const again = new Client(core, clock, udpLink(), 'alice');
    assert.equal(reply(again.request(StunMethod.Allocate, transportAttr())).code, 486);
    new Client(core, clock, udpLink(), 'bob').allocate();
    const third = new Client(core, clock, udpLink(), 'carol');
    assert.equal(reply(third.request(StunMethod.Allocate, transportAttr())).code, 508);
    assert.equal(metrics.quotaRejected, 2);
    assert.equal(core.allocationCount, 2);
  });

  it('refreshes: a new lifetime, capped; lifetime 0 deletes and closes the relay socket', () => {
    const { core, clock } = makeCore();
    const c = new Client(core, clock);
    const { bind } = c.allocate();
    clock.advance(100_000);
    const r = reply(c.request(StunMethod.Refresh, [{ type: Attr.Lifetime, value: encodeU32(99_999) }]));
    assert.equal(r.code, 0);
    assert.equal(decodeU32(getAttribute(r.msg, Attr.Lifetime)!), 3600);
    assert.equal(bind.allocation.expiresAt, clock.now() + 3_600_000);
    const del = c.request(StunMethod.Refresh, [{ type: Attr.Lifetime, value: encodeU32(0) }]);
    assert.deepEqual(types(del), ['close-relay', 'send-client']);
    assert.equal(reply(del).code, 0);
    assert.equal(core.allocationCount, 0);
    // Refresh without an allocation: 437.
    assert.equal(reply(c.request(StunMethod.Refresh, [])).code, 437);
  });

  it('441: another user cannot refresh, permit or bind on an allocation it does not own', () => {
    const { core, clock } = makeCore();
    const link = udpLink();
    new Client(core, clock, link, 'alice').allocate();
    const mallory = new Client(core, clock, link, 'mallory');
    const tid = fakeRandom(12);
    assert.equal(reply(mallory.request(StunMethod.Refresh, [])).code, 441);
    assert.equal(reply(mallory.request(StunMethod.CreatePermission, [peerAttr(PEER, tid)], tid)).code, 441);
  });

  it('CreatePermission: installs a permission; 403 for a denied peer, counted, nothing installed', () => {
    const { core, clock, metrics } = makeCore();
    const c = new Client(core, clock);
    const { bind } = c.allocate();
    let tid = fakeRandom(12);
    assert.equal(reply(c.request(StunMethod.CreatePermission, [peerAttr(PEER, tid)], tid)).code, 0);
    assert.equal(bind.allocation.permissions.get(PEER.address)?.expiresAt, clock.now() + 300_000);
    tid = fakeRandom(12);
    const denied = c.request(StunMethod.CreatePermission, [peerAttr(DENIED_PEER, tid)], tid);
    assert.equal(reply(denied).code, 403);
    assert.equal(metrics.forbiddenPeer, 1);
    assert.equal(bind.allocation.permissions.has(DENIED_PEER.address), false);
    // No XOR-PEER-ADDRESS: 400.
    assert.equal(reply(c.request(StunMethod.CreatePermission, [])).code, 400);
  });

  it('control: with a guard that allows everything, the same internal peer gets a permission', () => {
    // Shows the 403 above comes from the injected guard: break it and the attack goes through.
    const { core, clock } = makeCore({}, () => true);
    const c = new Client(core, clock);
    const { bind } = c.allocate();
    const tid = fakeRandom(12);
    assert.equal(reply(c.request(StunMethod.CreatePermission, [peerAttr(DENIED_PEER, tid)], tid)).code, 0);
    assert.equal(bind.allocation.permissions.has(DENIED_PEER.address), true);
  });

  it('ChannelBind: binds a channel (with its permission); one channel per peer and peer per channel', () => {
    const { core, clock } = makeCore();
    const c = new Client(core, clock);
    const { bind } = c.allocate();
    const a = bind.allocation;
    const chanAttrs = (n: number, p: typeof PEER, tid: Uint8Array) => [
      { type: Attr.ChannelNumber, value: encodeChannelNumber(n) },
      peerAttr(p, tid),
    ];
    let tid = fakeRandom(12);
    assert.equal(reply(c.request(StunMethod.ChannelBind, chanAttrs(0x4000, PEER, tid), tid)).code, 0);
    const ch = a.channels.get(0x4000)!;
    assert.equal(ch.peerAddress, PEER.address);
    assert.equal(ch.peerPort, PEER.port);
    assert.equal(ch.permission, a.permissions.get(PEER.address), 'channel shares the permission object');
    assert.equal(a.peerChannels.get(PEER.address)?.get(PEER.port), ch);
    // Same channel to another peer: 400. Same peer on another channel: 400.
    tid = fakeRandom(12);
    const other = { ...PEER, port: PEER.port + 1 };
    assert.equal(reply(c.request(StunMethod.ChannelBind, chanAttrs(0x4000, other, tid), tid)).code, 400);
    tid = fakeRandom(12);
    assert.equal(reply(c.request(StunMethod.ChannelBind, chanAttrs(0x4001, PEER, tid), tid)).code, 400);
    // A number outside 0x4000-0x4fff: 400. A denied peer: 403.
    tid = fakeRandom(12);
    assert.equal(reply(c.request(StunMethod.ChannelBind, chanAttrs(0x3fff, other, tid), tid)).code, 400);
    tid = fakeRandom(12);
    assert.equal(
      reply(c.request(StunMethod.ChannelBind, chanAttrs(0x4002, DENIED_PEER, tid), tid)).code,
      403,
    );
    assert.equal(a.channels.size, 1);
    // Re-binding the same pair refreshes it.
    clock.advance(60_000);
    tid = fakeRandom(12);
    assert.equal(reply(c.request(StunMethod.ChannelBind, chanAttrs(0x4000, PEER, tid), tid)).code, 0);
    assert.equal(ch.expiresAt, clock.now() + 600_000);
  });

  it('Send indication: a send-peer action only with a permission, and never to a denied peer', () => {
    const { core, clock, metrics } = makeCore();
    const c = new Client(core, clock);
    const { bind } = c.allocate();
    const indication = (p: typeof PEER) => {
      const tid = fakeRandom(12);
      return encodeStunMessage({
        method: StunMethod.Send,
        cls: StunClass.Indication,
        transactionId: tid,
        attributes: [peerAttr(p, tid), { type: Attr.Data, value: Uint8Array.of(1, 2, 3) }],
      });
    };
    assert.deepEqual(c.send(indication(PEER)), []);
    assert.equal(metrics.permissionDropped, 1);
    const tid = fakeRandom(12);
    reply(c.request(StunMethod.CreatePermission, [peerAttr(PEER, tid)], tid));
    const sent = c.send(indication(PEER));
    assert.deepEqual(types(sent), ['send-peer']);
    const s = sent[0] as Extract<RelayAction, { type: 'send-peer' }>;
    assert.equal(s.allocation, bind.allocation);
    assert.equal(s.address, PEER.address);
    assert.equal(s.port, PEER.port);
    assert.deepEqual([...s.data], [1, 2, 3]);
    assert.deepEqual(c.send(indication(DENIED_PEER)), []);
    assert.equal(metrics.forbiddenPeer, 1);
  });

  it('420 for an unknown comprehension-required attribute, 400 for an unknown method', () => {
    const { core, clock } = makeCore();
    const c = new Client(core, clock);
    const r = reply(
      c.send(c.encode(StunMethod.Binding, [{ type: 0x7f00, value: new Uint8Array(4) }], false)),
    );
    assert.equal(r.code, 420);
    assert.equal(reply(c.send(c.encode(0x0fe, [], false))).code, 400);
  });

  it('drops undecodable input without an answer', () => {
    const { core, clock, metrics } = makeCore();
    const c = new Client(core, clock);
    assert.deepEqual(c.send(Uint8Array.of(0, 1, 0, 0, 1, 2, 3)), []);
    assert.equal(metrics.malformedDropped, 1);
  });

  it('sweep expires allocations (closing the relay socket) and EVEN-PORT reservations', () => {
    const { core, clock, metrics } = makeCore();
    const c = new Client(core, clock);
    const evenPort = { type: Attr.EvenPort, value: Uint8Array.of(0x80) };
    const bind = bindOf(c.request(StunMethod.Allocate, [...transportAttr(), evenPort]));
    assert.deepEqual(bind.mode, { kind: 'even', reserve: true });
    const done = core.relayBound(bind, 62000, true)!;
    assert.ok(done.token);
    const token = getAttribute(reply(done.actions).msg, Attr.ReservationToken);
    assert.equal(token?.length, 8);
    // The token allocates once (mode 'reserved'), then is spent: 508.
    const d = new Client(core, clock);
    const useToken = [...transportAttr(), { type: Attr.ReservationToken, value: token! }];
    assert.deepEqual(bindOf(d.request(StunMethod.Allocate, useToken)).mode, {
      kind: 'reserved',
      token: done.token,
    });
    const e = new Client(core, clock);
    assert.equal(reply(e.request(StunMethod.Allocate, useToken)).code, 508);
    // A second reservation is left to expire.
    const f = new Client(core, clock);
    const fb = bindOf(f.request(StunMethod.Allocate, [...transportAttr(), evenPort]));
    const left = core.relayBound(fb, 62002, true)!.token!;
    clock.advance(31_000);
    assert.deepEqual(core.sweep(), [{ type: 'drop-reservation', token: left }]);
    clock.advance(600_000);
    const expired = core.sweep();
    assert.equal(expired.filter((a) => a.type === 'close-relay').length, 3);
    assert.equal(core.allocationCount, 0);
    assert.equal(metrics.allocationsExpired, 3);
  });

  it('an allocation over TCP: closing the connection ends it; expiry ends the connection', () => {
    const { core, clock } = makeCore();
    const stream = { allocation: undefined };
    const link: ClientLink = { kind: 'tcp', address: '192.0.2.20', port: 45000, family: 4, tcp: stream };
    const c = new Client(core, clock, link);
    const { bind } = c.allocate();
    assert.equal(stream.allocation, bind.allocation);
    assert.deepEqual(types(core.clientClosed(link)), ['close-relay']);
    assert.equal(stream.allocation, undefined);
    assert.equal(core.allocationCount, 0);
    const link2: ClientLink = { ...link, port: 45001, tcp: { allocation: undefined } };
    new Client(core, clock, link2).allocate();
    clock.advance(601_000);
    assert.deepEqual(types(core.sweep()), ['close-client', 'close-relay']);
  });

  it('relayBound after the allocation went away returns nothing (the shell closes its socket)', () => {
    const { core, clock } = makeCore();
    const c = new Client(core, clock);
    const bind = bindOf(c.request(StunMethod.Allocate, transportAttr()));
    assert.deepEqual(types(core.closeAll()), ['close-relay']);
    assert.equal(core.relayBound(bind, 61000), undefined);
  });

  it('imports no node: modules (the handlers stay pure)', () => {
    for (const f of ['turn-core.ts', 'allocation.ts', 'options.ts', 'metrics.ts']) {
      const src = readFileSync(join(here, '../src/server', f), 'utf8');
      assert.ok(!/from ['"]node:/.test(src), `${f} imports node:`);
    }
  });
});
