/**
 * Hostile-input properties for the asynchronous decoders+verifiers (threat model S10, S4): signed
 * offers and answers, rendezvous auth proofs, persisted ACL state and ACL updates. Inputs are genuine
 * signed messages mutated on the wire, genuine signatures over hostile bodies, and random text. Each
 * must end in a value or a typed HearthError (ProtocolError, VerificationError, AccessError); never
 * another exception. And a mutated wire message must never verify unless it decodes to the original.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { b64u } from '../src/bytes.js';
import { canonicalize } from '../src/canonical.js';
import { fixedEnv } from '../src/crypto/env.js';
import { decodeEnvelope, type Envelope, encodeEnvelope, seal } from '../src/envelope.js';
import { HearthError } from '../src/errors.js';
import { Acl, SCOPES, signAclUpdate, signGrant, userKeyText } from '../src/grants.js';
import { encodeId } from '../src/ids.js';
import { createAuth, verifyAuth } from '../src/rendezvous.js';
import { createAnswer, createOffer, verifyAnswer, verifyOffer } from '../src/session.js';
import { fp, keys, sdpWith } from './fixtures.js';
import { editsArb, mutate, RUNS, textInputs, valueOrHearthError } from './fuzz-helpers.js';

type K = Awaited<ReturnType<typeof keys>>;
let k: K;
let offer: Awaited<ReturnType<typeof createOffer>>;
let answer: Envelope;
let hostileOffers: Envelope[] = [];
let hostileAnswers: Envelope[] = [];
let T: number;

/** Bodies that keep some genuine fields and replace others with hostile values. */
function hostileBodies(base: Record<string, unknown>, n: number): Record<string, unknown>[] {
  const hostile = fc.oneof(
    fc.string({ maxLength: 30 }),
    fc.integer(),
    fc.constant(null),
    fc.boolean(),
    fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }),
    fc.constant(sdpWith(fp(1), 'a=fingerprint:sha-256 00')),
  );
  const arb = fc
    .tuple(
      fc.subarray(Object.keys(base)),
      fc.dictionary(fc.constantFrom(...Object.keys(base), 'x'), hostile, { maxKeys: 2 }),
    )
    .map(([keep, over]) => {
      const b: Record<string, unknown> = {};
      for (const key of keep) b[key] = base[key];
      return { ...b, ...over };
    });
  return fc.sample(arb, { numRuns: n, seed: 42 });
}

before(async () => {
  k = await keys();
  T = k.env.now();
  offer = await createOffer(k.owner, { deviceId: k.deviceId, camera: 'door', sdp: sdpWith(fp(0xaa)) }, k.env);
  const vo = await verifyOffer(offer.envelope, { deviceId: k.deviceId, now: T });
  assert.ok(vo.ok);
  answer = await createAnswer(k.device, vo.body, sdpWith(fp(0xbb)), k.env);
  hostileOffers = await Promise.all(
    hostileBodies(offer.envelope.b, 200).map((b) =>
      seal(k.owner, 'user', 'session/offer', b, fixedEnv(9, T)),
    ),
  );
  hostileAnswers = await Promise.all(
    hostileBodies(answer.b, 200).map((b) => seal(k.device, 'device', 'session/answer', b, fixedEnv(9, T))),
  );
});

/** An accepted envelope must be byte-for-byte one that was really signed: the genuine one or one from the signed pool. */
function signedByUs(e: Envelope, genuine: Envelope, pool: Envelope[]): boolean {
  const c = canonicalize(e);
  return c === encodeEnvelope(genuine) || pool.some((p) => encodeEnvelope(p) === c);
}

/** Decode then verify; returns the envelope when accepted. */
async function accepted(
  x: string | Uint8Array | unknown,
  check: (e: Envelope) => Promise<{ ok: boolean; error?: unknown }>,
): Promise<Envelope | undefined> {
  const r = await valueOrHearthError(async () => {
    const e = decodeEnvelope(x);
    const v = await check(e);
    if (!v.ok) {
      assert.ok(v.error instanceof HearthError, `untyped rejection ${String(v.error)}`);
      throw v.error;
    }
    return e;
  });
  return r instanceof HearthError ? undefined : r;
}

function envelopeInputs(genuine: () => Envelope, hostile: () => Envelope[]): fc.Arbitrary<unknown> {
  const wire = fc.constant(null).map(() => encodeEnvelope(genuine()));
  return fc.oneof(
    { weight: 6, arbitrary: textInputs(wire) },
    { weight: 2, arbitrary: fc.nat().map((i) => hostile()[i % hostile().length]!) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.nat(), editsArb)
        .map(([i, e]) => mutate(encodeEnvelope(hostile()[i % hostile().length]!), e)),
    },
  );
}

describe('fuzz: verifyOffer', () => {
  it(`${RUNS} mutated and hostile offers: accepted only if genuinely signed, else a typed error`, async () => {
    await fc.assert(
      fc.asyncProperty(
        envelopeInputs(
          () => offer.envelope,
          () => hostileOffers,
        ),
        async (x) => {
          const e = await accepted(x, (env) => verifyOffer(env, { deviceId: k.deviceId, now: T }));
          if (e) assert.ok(signedByUs(e, offer.envelope, hostileOffers), 'a modified offer verified');
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: verifyAnswer', () => {
  it(`${RUNS} mutated and hostile answers: accepted only if genuinely signed, else a typed error`, async () => {
    await fc.assert(
      fc.asyncProperty(
        envelopeInputs(
          () => answer,
          () => hostileAnswers,
        ),
        async (x) => {
          const e = await accepted(x, (env) =>
            verifyAnswer(env, {
              pinnedDeviceKey: k.device.publicKey,
              sid: offer.sid,
              offerDigest: offer.digest,
              now: T,
            }),
          );
          if (e) assert.ok(signedByUs(e, answer, hostileAnswers), 'a modified answer verified');
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: verifyAuth', () => {
  let auth: Envelope;
  let srv: string;
  const ch = b64u(new Uint8Array(32).fill(5));
  before(async () => {
    srv = encodeId('serverKey', new Uint8Array(32).fill(9));
    auth = await createAuth(k.device, 'device', { srv, ch }, k.env);
  });
  it(`${RUNS} mutated proofs: the genuine identity or a typed error`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(textInputs(fc.constant(null).map(() => encodeEnvelope(auth))), fc.anything({ maxDepth: 2 })),
        async (x) => {
          const raw =
            typeof x === 'string'
              ? (() => {
                  try {
                    return JSON.parse(x) as unknown;
                  } catch {
                    return x;
                  }
                })()
              : x;
          const r = await valueOrHearthError(() =>
            verifyAuth(raw, { serverKey: srv, challenge: ch, now: T }),
          );
          if (!(r instanceof HearthError)) assert.equal(r.id, k.deviceId);
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: Acl.load and Acl.apply', () => {
  let state: string;
  let stateV1: string;
  let acl: Acl;
  let update: Envelope;
  before(async () => {
    const g = (serial: number) => ({
      d: k.deviceId,
      sub: userKeyText(k.member.publicKey),
      role: 'member' as const,
      scopes: ['live' as const, 'clips' as const],
      groups: ['outside'],
      sched: [{ days: [1, 2, 3, 4, 5], from: '22:00', to: '06:30' }],
      floor: T - 1000,
      label: 'Sam',
      nbf: T,
      exp: T + 3_600_000,
      serial,
    });
    acl = await Acl.create(k.deviceId, k.owner.publicKey).apply(
      await signAclUpdate(
        k.owner,
        {
          d: k.deviceId,
          ver: 1,
          add: [await signGrant(k.owner, g(1), k.env)],
          revoke: [],
          recovery: userKeyText(k.recovery.publicKey),
          groups: { outside: ['door', 'garden'] },
        },
        k.env,
      ),
      T,
    );
    state = JSON.stringify(acl.toJSON());
    const { owners, ...v1 } = acl.toJSON();
    stateV1 = JSON.stringify({ ...v1, owner: owners[0], recovery: undefined, groups: undefined });
    update = await signAclUpdate(
      k.owner,
      {
        d: k.deviceId,
        ver: 2,
        add: [await signGrant(k.owner, g(2), k.env)],
        revoke: [1],
        owners: { add: [userKeyText(k.owner2.publicKey)] },
        groups: { outside: ['door'] },
      },
      k.env,
    );
  });

  it(`Acl.load (v1 state): ${RUNS} mutated state files: an ACL or a typed error`, async () => {
    await fc.assert(
      fc.asyncProperty(textInputs(fc.constant(null).map(() => stateV1)), async (x) => {
        await valueOrHearthError(() => Acl.load(x, T));
      }),
      { numRuns: RUNS },
    );
  });

  it(`Acl.authorize: ${RUNS} random keys, scopes, times, cameras, time zones: a decision, never a throw`, () => {
    const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Pacific/Chatham'];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constant(k.member.publicKey),
          fc.constant(userKeyText(k.member.publicKey)),
          fc.constant(k.owner.publicKey),
          fc.string({ maxLength: 70 }),
          fc.uint8Array({ maxLength: 40 }),
        ),
        fc.constantFrom(...SCOPES),
        fc.integer({ min: 0, max: 2 ** 53 - 1 }),
        fc.option(fc.string({ maxLength: 34 }), { nil: undefined }),
        fc.option(fc.integer({ min: 0, max: 2 ** 53 - 1 }), { nil: undefined }),
        fc.constantFrom(...zones),
        (key, scope, now, cam, at, tz) => {
          const d = acl.withTimeZone(tz).authorize(key, scope, now, cam, at === undefined ? {} : { at });
          assert.equal(typeof d.allowed, 'boolean');
        },
      ),
      { numRuns: RUNS },
    );
  });

  it(`Acl.load: ${RUNS} mutated state files: an ACL or a typed error`, async () => {
    await fc.assert(
      fc.asyncProperty(textInputs(fc.constant(null).map(() => state)), async (x) => {
        await valueOrHearthError(() => Acl.load(x, T));
      }),
      { numRuns: RUNS },
    );
  });

  it(`Acl.apply: ${RUNS} mutated updates: a new ACL only for the genuine update, else a typed error`, async () => {
    await fc.assert(
      fc.asyncProperty(textInputs(fc.constant(null).map(() => encodeEnvelope(update))), async (x) => {
        const r = await valueOrHearthError(async () => acl.apply(decodeEnvelope(x), T));
        if (!(r instanceof HearthError)) assert.equal(r.state.ver, 2);
      }),
      { numRuns: RUNS },
    );
  });
});
