/**
 * Bad input against a live RelayServer (real sockets on 127.0.0.1), each refused with the right error
 * code and counted in `server.metrics`: wrong and foreign credentials, expired credentials, stale
 * nonces, per-identity and server-wide quotas, peers in configured denied ranges (requests and
 * indications), and fuzzed (mutated, truncated, extended) authenticated requests over UDP and TCP,
 * after which the server still serves and has counted no internal error.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  Attr,
  decodeErrorCode,
  decodeStunMessage,
  encodeRequestedTransport,
  encodeString,
  encodeStunMessage,
  getAttribute,
  StunClass,
  StunMethod,
} from '../src/codec/index.js';
import { issueTurnCredentials, type RelayServer, type RelayServerOptions } from '../src/index.js';
import { nodeStunCrypto } from '../src/server/node-crypto.js';
import { FakeClock, startTestRelay, TestTurnClient } from './helpers/turn-client.js';

const SECRET = 'bad-input-secret';
const FUZZ_RUNS = Number(process.env.RELAY_FUZZ_RUNS ?? 60_000) >= 60_000 ? 1500 : 300;
/** Error codes the server documents (README "STUN error responses sent"). */
const DOCUMENTED = new Set([400, 401, 403, 420, 437, 438, 440, 441, 442, 443, 486, 508]);

const startServer = (clock: FakeClock, extra: Partial<RelayServerOptions> = {}) =>
  startTestRelay(SECRET, { clock, ...extra });

const creds = (clock: FakeClock, id = 'viewer-1', secret = SECRET) =>
  issueTurnCredentials({ secret, id, ttlSeconds: 3600, nowMs: clock.now() });

async function withServer(
  extra: Partial<RelayServerOptions>,
  body: (s: { server: RelayServer; udpPort: number; tcpPort: number; clock: FakeClock }) => Promise<void>,
): Promise<void> {
  const clock = new FakeClock();
  const s = await startServer(clock, extra);
  try {
    await body({ ...s, clock });
  } finally {
    await s.server.close();
  }
}

describe('relay refuses bad credentials, and counts them', () => {
  it('wrong password and credentials signed with another secret: 401, counted as unauthorized', async () => {
    await withServer({}, async ({ server, udpPort, clock }) => {
      const c = await TestTurnClient.udp(udpPort);
      try {
        const before = server.metrics.unauthorized;
        const good = creds(clock);
        // The first (unauthenticated) request of each allocate() is a 401 challenge too.
        assert.equal((await c.allocate(good.username, 'not-the-password')).code, 401);
        const foreign = creds(clock, 'viewer-1', 'some-other-secret');
        assert.equal((await c.allocate(foreign.username, foreign.password)).code, 401);
        assert.ok(server.metrics.unauthorized >= before + 2, `unauthorized ${server.metrics.unauthorized}`);
        assert.equal(server.metrics.allocationsCreated, 0);
        assert.equal((await c.allocate(good.username, good.password)).code, 0, 'good credentials still work');
      } finally {
        c.close();
      }
    });
  });

  it('expired REST credentials: 401, counted as expiredCredentials', async () => {
    await withServer({}, async ({ server, udpPort, clock }) => {
      const c = await TestTurnClient.udp(udpPort);
      try {
        const old = issueTurnCredentials({
          secret: SECRET,
          id: 'x',
          ttlSeconds: 60,
          nowMs: clock.now() - 61_000,
        });
        assert.equal((await c.allocate(old.username, old.password)).code, 401);
        assert.equal(server.metrics.expiredCredentials, 1);
        assert.equal(server.metrics.allocationsCreated, 0);
      } finally {
        c.close();
      }
    });
  });

  it('stale nonce: 438 with a fresh NONCE, counted as staleNonce', async () => {
    await withServer({ nonceLifetime: 5 }, async ({ server, udpPort, clock }) => {
      const c = await TestTurnClient.udp(udpPort);
      try {
        const cr = creds(clock);
        assert.equal((await c.allocate(cr.username, cr.password)).code, 0);
        clock.advance(10_000);
        const r = await c.refresh(600);
        assert.equal(r.code, 438);
        assert.ok(getAttribute(r.msg, Attr.Nonce), 'new nonce offered');
        assert.equal(server.metrics.staleNonce, 1);
      } finally {
        c.close();
      }
    });
  });
});

describe('relay quotas', () => {
  it('per identity: 486; server-wide: 508; both counted as quotaRejected', async () => {
    await withServer({ maxAllocationsPerUser: 1, maxAllocations: 2 }, async ({ server, udpPort, clock }) => {
      const cs = await Promise.all([0, 1, 2, 3].map(() => TestTurnClient.udp(udpPort)));
      try {
        const [a, b, c, d] = cs as [TestTurnClient, TestTurnClient, TestTurnClient, TestTurnClient];
        const alice = creds(clock, 'alice');
        assert.equal((await a.allocate(alice.username, alice.password)).code, 0);
        assert.equal(
          (await b.allocate(alice.username, alice.password)).code,
          486,
          'second allocation of alice',
        );
        assert.equal(server.metrics.quotaRejected, 1);
        const bob = creds(clock, 'bob');
        assert.equal((await c.allocate(bob.username, bob.password)).code, 0);
        const carol = creds(clock, 'carol');
        assert.equal((await d.allocate(carol.username, carol.password)).code, 508, 'server full');
        assert.equal(server.metrics.quotaRejected, 2);
        assert.equal(server.metrics.allocationsActive, 2);
      } finally {
        for (const c of cs) c.close();
      }
    });
  });
});

describe('relay denied peer ranges', () => {
  it('configured deniedPeerRanges: 403 for CreatePermission and ChannelBind, indications dropped; counted', async () => {
    await withServer({ deniedPeerRanges: ['203.0.113.0/24'] }, async ({ server, udpPort, clock }) => {
      const c = await TestTurnClient.udp(udpPort);
      try {
        const cr = creds(clock);
        assert.equal((await c.allocate(cr.username, cr.password)).code, 0);
        const denied = { family: 4 as const, address: '203.0.113.7', port: 9 };
        assert.equal((await c.createPermission(denied)).code, 403);
        assert.equal((await c.channelBind(0x4001, denied)).code, 403);
        assert.equal(server.metrics.forbiddenPeer, 2);
        const before = server.metrics.forbiddenPeer + server.metrics.permissionDropped;
        c.sendIndication(denied, Buffer.from('hello'));
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(server.metrics.relayedToPeer, 0);
        assert.equal(server.metrics.forbiddenPeer + server.metrics.permissionDropped, before + 1);
        // Outside the denied range, the same allocation still works.
        assert.equal((await c.createPermission({ family: 4, address: '198.51.100.7', port: 9 })).code, 0);
      } finally {
        c.close();
      }
    });
  });
});

/** An authenticated request (valid MESSAGE-INTEGRITY and FINGERPRINT) for the fuzzer to mutate. */
function seedRequests(c: TestTurnClient): Buffer[] {
  const auth = [
    { type: Attr.Username, value: encodeString(c.username) },
    { type: Attr.Realm, value: encodeString(c.realm) },
    { type: Attr.Nonce, value: encodeString(c.nonce) },
  ];
  const msg = (method: number, attrs: { type: number; value: Uint8Array }[]) =>
    Buffer.from(
      encodeStunMessage(
        { method, cls: StunClass.Request, transactionId: randomBytes(12), attributes: [...attrs, ...auth] },
        { integrityKey: c.key, crypto: nodeStunCrypto, fingerprint: true },
      ),
    );
  return [
    msg(StunMethod.Allocate, [{ type: Attr.RequestedTransport, value: encodeRequestedTransport(17) }]),
    msg(StunMethod.Refresh, []),
    msg(StunMethod.Binding, []),
  ];
}

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ kind: fc.constant('length' as const), value: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({ kind: fc.constant('attr' as const), at: fc.nat(), type: fc.integer({ min: 0, max: 0xffff }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(seed: Buffer, muts: readonly Mutation[]): Buffer {
  let b = Buffer.from(seed);
  for (const m of muts) {
    if (m.kind === 'flip' && b.length > 0)
      b[m.at % b.length] = ((b[m.at % b.length] as number) ^ m.bits) & 0xff;
    else if (m.kind === 'truncate') b = b.subarray(0, m.at % (b.length + 1));
    else if (m.kind === 'append') b = Buffer.concat([b, m.bytes]);
    else if (m.kind === 'length' && b.length >= 4) b.writeUInt16BE(m.value, 2);
    else if (m.kind === 'attr' && b.length >= 24)
      b.writeUInt16BE(m.type, 20 + 4 * (m.at % Math.floor((b.length - 20) / 4)));
  }
  return b;
}

describe('relay under fuzzed authenticated requests', () => {
  it('UDP: every answer is a well-formed STUN response with a documented code; nothing crashes', async () => {
    await withServer({}, async ({ server, udpPort, clock }) => {
      const c = await TestTurnClient.udp(udpPort);
      const raw = createSocket('udp4');
      await new Promise<void>((r) => raw.bind(0, '127.0.0.1', () => r()));
      const codes = new Map<number, number>();
      let answers = 0;
      let badAnswers = 0;
      raw.on('message', (m) => {
        answers++;
        try {
          const msg = decodeStunMessage(m);
          if (msg.cls === StunClass.ErrorResponse) {
            const ec = getAttribute(msg, Attr.ErrorCode);
            const code = ec ? decodeErrorCode(ec).code : -1;
            codes.set(code, (codes.get(code) ?? 0) + 1);
            if (!DOCUMENTED.has(code)) badAnswers++;
          } else if (msg.cls !== StunClass.SuccessResponse) badAnswers++;
        } catch {
          badAnswers++;
        }
      });
      try {
        const cr = creds(clock);
        assert.equal((await c.allocate(cr.username, cr.password)).code, 0);
        const seeds = seedRequests(c);
        const before = { ...server.metrics };
        let sent = 0;
        const cases = fc.sample(
          fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 })),
          { numRuns: FUZZ_RUNS, seed: 4242 },
        );
        for (const [i, muts] of cases) {
          raw.send(mutate(seeds[i] as Buffer, muts), udpPort, '127.0.0.1');
          sent++;
          if (sent % 100 === 0) await new Promise((r) => setTimeout(r, 20));
        }
        await new Promise((r) => setTimeout(r, 300));
        const m = server.metrics;
        const dropped = m.malformedDropped - before.malformedDropped;
        assert.equal(m.internalErrors, 0, 'no internal error');
        assert.equal(badAnswers, 0, `malformed or undocumented answers; codes ${JSON.stringify([...codes])}`);
        assert.ok(dropped > 0, 'malformed packets counted');
        assert.ok(answers + dropped <= sent + 1, 'at most one answer per request');
        assert.equal((await c.request(StunMethod.Binding, [], false)).code, 0, 'still serving');
        assert.equal((await c.refresh(600)).code, 0, 'the allocation survived');
      } finally {
        raw.close();
        c.close();
      }
    });
  });

  it('TCP: fuzzed streams never crash the server, connections are cleaned up, it keeps serving', async () => {
    await withServer({}, async ({ server, tcpPort, udpPort, clock }) => {
      const c = await TestTurnClient.udp(udpPort);
      try {
        const cr = creds(clock);
        assert.equal((await c.allocate(cr.username, cr.password)).code, 0);
        const seeds = seedRequests(c);
        const cases = fc.sample(
          fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 3 })),
          { numRuns: 40, seed: 7 },
        );
        for (const [i, muts] of cases) {
          const t = connect(tcpPort, '127.0.0.1');
          t.on('error', () => {});
          await new Promise<void>((r) => t.once('connect', () => r()));
          // A valid request first, then the mutated one, then a valid one again.
          t.write(Buffer.concat([seeds[2] as Buffer, mutate(seeds[i] as Buffer, muts), seeds[2] as Buffer]));
          await new Promise<void>((r) => {
            const done = setTimeout(() => {
              t.destroy();
              r();
            }, 300);
            t.once('close', () => {
              clearTimeout(done);
              r();
            });
          });
        }
        assert.equal(server.metrics.internalErrors, 0);
        assert.ok(
          server.metrics.tcpConnections <= 1,
          `TCP connections left open: ${server.metrics.tcpConnections}`,
        );
        assert.equal((await c.request(StunMethod.Binding, [], false)).code, 0, 'still serving');
      } finally {
        c.close();
      }
    });
  });
});
