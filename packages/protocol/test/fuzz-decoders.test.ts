/**
 * Hostile-input properties for the synchronous decoders of the protocol core (threat model S10):
 * each gets RUNS (default 100 000) random and mutated inputs and must return a value or throw a
 * ProtocolError; never another exception, never a hang. Pairing decoders: pairing/fuzz.test.ts.
 * Set HEARTH_FUZZ_RUNS to change the count.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { b32, b64u, fromB32, fromB64u, fromHex, hex } from '../src/bytes.js';
import { canonicalize, parseJson } from '../src/canonical.js';
import { fixedEnv } from '../src/crypto/env.js';
import { WebCryptoSigner } from '../src/crypto/primitives.js';
import {
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
  MAX_ENVELOPE_BYTES,
  PURPOSES,
  seal,
} from '../src/envelope.js';
import { ProtocolError } from '../src/errors.js';
import {
  aclStateSchema,
  aclStateV1Schema,
  aclUpdateSchema,
  grantSchema,
  groupsSchema,
  schedWindowSchema,
} from '../src/grants.js';
import { decodeId, deviceIdFromKey, encodeId, ID_KINDS, type IdKind } from '../src/ids.js';
import {
  decodeBoxPayload,
  deviceIdentitySchema,
  parseLookupTag,
  viewerIdentitySchema,
} from '../src/pairing/index.js';
import {
  decodeClientFrame,
  decodeServerFrame,
  RENDEZVOUS_ALERT_CODES,
  RENDEZVOUS_ERROR_CODES,
} from '../src/rendezvous.js';
import { extractFingerprints, sdpFingerprint } from '../src/sdp.js';
import { answerBodySchema, offerBodySchema } from '../src/session.js';
import { decodeStillCiphertext, STILL_CT_BYTES, STILL_CT_CHARS, stillMessageSchema } from '../src/still.js';
import { fp, sdpWith } from './fixtures.js';
import { editsArb, mutate, RUNS, textInputs, valueOrProtocolError } from './fuzz-helpers.js';

const te = new TextEncoder();
const kinds = Object.keys(ID_KINDS) as IdKind[];
const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
// Pools of valid IDs (deriving one per input would spend most of the run on SHA-256).
const seeds = Array.from({ length: 64 }, (_, i) => new Uint8Array(32).fill(i));
const deviceIdArb = fc.constantFrom(...seeds.map((k) => deviceIdFromKey(k)));
const userKeyArb = fc.constantFrom(...seeds.map((k) => encodeId('userKey', k)));
const fpArb = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((b) => [...b].map((x) => x.toString(16).padStart(2, '0').toUpperCase()).join(':'));
const sdpArb = fpArb.map((f) => sdpWith(f));
const b64Arb = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map(b64u);

describe('fuzz: bytes decoders (base64url, base32, hex)', () => {
  it(`${RUNS} inputs each: bytes or a ProtocolError`, () => {
    const valid = fc.uint8Array({ maxLength: 80 });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 120 }),
          valid.map(b64u),
          fc.tuple(valid.map(b64u), editsArb).map(([s, e]) => mutate(s, e)),
        ),
        fc.nat(100),
        (s, max) => {
          const r = valueOrProtocolError(() => fromB64u(s, max));
          if (!(r instanceof ProtocolError))
            assert.ok(r.length <= Math.ceil((Math.ceil((max * 4) / 3) * 3) / 4));
        },
      ),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 120 }),
          valid.map(b32),
          fc.tuple(valid.map(b32), editsArb).map(([s, e]) => mutate(s, e)),
        ),
        (s) => {
          valueOrProtocolError(() => fromB32(s));
        },
      ),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 120 }),
          valid.map(hex),
          fc.tuple(valid.map(hex), editsArb).map(([s, e]) => mutate(s, e)),
        ),
        (s) => {
          const r = valueOrProtocolError(() => fromHex(s));
          if (!(r instanceof ProtocolError)) assert.equal(hex(r), s.toLowerCase());
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: decodeId', () => {
  it(`${RUNS} inputs: the payload (canonical text only) or a ProtocolError E_BAD_ID`, () => {
    const valid = fc
      .tuple(fc.constantFrom(...kinds), key32)
      .map(([kind, k]) => (kind === 'deviceId' ? deviceIdFromKey(k) : encodeId(kind, k)));
    const input = fc.oneof(
      fc.anything({ maxDepth: 1 }),
      fc.string({ maxLength: 100 }),
      valid,
      fc.tuple(valid, editsArb).map(([s, e]) => mutate(s, e)),
      fc.tuple(valid, editsArb).map(([s, e]) => mutate(s, e)),
      fc
        .tuple(fc.constantFrom('hdid_', 'hdk_', 'huk_', 'hsk_'), fc.stringMatching(/^[a-z2-7]{0,70}$/))
        .map(([p, s]) => p + s),
    );
    fc.assert(
      fc.property(fc.constantFrom(...kinds), input, (kind, text) => {
        const r = valueOrProtocolError(() => decodeId(kind, text));
        if (r instanceof ProtocolError) assert.equal(r.code, 'E_BAD_ID');
        else assert.equal(encodeId(kind, r), text);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: parseJson', () => {
  it(`${RUNS} inputs with random limits: a value or a ProtocolError`, () => {
    const valid = fc.json({ maxDepth: 2 });
    fc.assert(
      fc.property(textInputs(valid, 200), fc.nat(300), (x, max) => {
        const r = valueOrProtocolError(() => parseJson(x, max));
        if (r instanceof ProtocolError) assert.ok(['E_TOO_LARGE', 'E_DECODE'].includes(r.code));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: decodeEnvelope', () => {
  let pool: string[] = [];
  before(async () => {
    const env = fixedEnv(3);
    const signer = await WebCryptoSigner.fromSeed(new Uint8Array(32).fill(3));
    const bodies = fc.sample(
      fc.dictionary(
        fc.string({ maxLength: 8 }),
        fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null)),
        { maxKeys: 4 },
      ),
      { numRuns: 40, seed: 1 },
    );
    pool = await Promise.all(
      bodies.map(async (b, i) =>
        encodeEnvelope(
          await seal(signer, i % 2 ? 'user' : 'device', PURPOSES[i % PURPOSES.length]!, { ...b }, env),
        ),
      ),
    );
  });

  it(`${RUNS} inputs (text, bytes, parsed objects): an envelope or a ProtocolError`, () => {
    const valid = fc.nat().map((i) => pool[i % pool.length]!);
    const input = fc.oneof(
      textInputs(valid),
      fc.tuple(valid, editsArb).map(([s, e]) => {
        try {
          return JSON.parse(mutate(s, e)) as unknown;
        } catch {
          return null;
        }
      }),
      fc.anything({ maxDepth: 2 }),
    );
    fc.assert(
      fc.property(input, (x) => {
        const r = valueOrProtocolError(() => decodeEnvelope(x));
        if (!(r instanceof ProtocolError)) {
          assert.deepEqual(decodeEnvelope(encodeEnvelope(r as Envelope)), r);
          assert.ok(canonicalize(r).length <= MAX_ENVELOPE_BYTES);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: SDP fingerprint extraction', () => {
  it(`${RUNS} inputs: fingerprints or a ProtocolError, for both extractFingerprints and sdpFingerprint`, () => {
    const lines = fc.array(
      fc.oneof(
        fpArb.map((f) => `a=fingerprint:sha-256 ${f}`),
        fc.constantFrom(
          'a=fingerprint:sha-1 AA:BB',
          'a=fingerprint:SHA-256 ',
          'a=fingerprint:',
          'a=fingerprint:sha-512 00',
          'm=video 9',
          'v=0',
        ),
        fc.string({ maxLength: 60 }).map((s) => `a=fingerprint:${s}`),
        fc.string({ maxLength: 40 }),
      ),
      { maxLength: 8 },
    );
    const input = fc.oneof(
      sdpArb,
      fc.tuple(sdpArb, editsArb).map(([s, e]) => mutate(s, e)),
      lines.map((l) => l.join('\r\n')),
      lines.map((l) => l.join('\n')),
      fc.string({ maxLength: 300 }),
    );
    fc.assert(
      fc.property(input, (s) => {
        const all = valueOrProtocolError(() => extractFingerprints(s));
        const one = valueOrProtocolError(() => sdpFingerprint(s));
        if (!(all instanceof ProtocolError) && all.length > 0 && !(one instanceof ProtocolError))
          assert.deepEqual(one, all[0]);
      }),
      { numRuns: RUNS },
    );
    assert.throws(
      () => extractFingerprints(`${'x'.repeat(32 * 1024)}\n`),
      (e) => (e as ProtocolError).code === 'E_TOO_LARGE',
    );
    assert.equal(sdpFingerprint(sdpWith(fp(1))).value, fp(1));
  });
});

/** A zod schema used as a decoder: a value or a ProtocolError E_SCHEMA (as the verifiers map it). */
function schemaDecoder<T>(schema: {
  safeParse(x: unknown): { success: true; data: T } | { success: false };
}) {
  return (x: unknown): T => {
    const r = schema.safeParse(x);
    if (!r.success) throw new ProtocolError('E_SCHEMA', 'schema');
    return r.data;
  };
}

/** Random objects built from plausible and hostile values for the given field names. */
function objectsWith(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> {
  const hostile = fc.oneof(
    fc.anything({ maxDepth: 1 }),
    fc.string({ maxLength: 40 }),
    fc.integer(),
    fc.double(),
    fc.constant(null),
  );
  const entries = Object.entries(fields).map(
    ([k, a]) => [k, fc.oneof({ weight: 4, arbitrary: a }, { weight: 1, arbitrary: hostile })] as const,
  );
  return fc.oneof(
    fc.record(Object.fromEntries(entries), { requiredKeys: [] }),
    fc.record(Object.fromEntries(entries)),
    fc
      .tuple(
        fc.record(Object.fromEntries(entries)),
        fc.string({ maxLength: 6 }),
        fc.anything({ maxDepth: 0 }),
      )
      .map(([o, k, v]) => ({ ...o, [k]: v })),
    fc.anything({ maxDepth: 2 }),
  );
}

const hhmmArb = fc.oneof(
  fc
    .tuple(fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 61 }))
    .map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`),
  fc.constantFrom('24:00', '8:00', '', '00:00'),
  fc.string({ maxLength: 6 }),
);
const schedArb = objectsWith({
  days: fc.array(fc.integer({ min: -1, max: 8 }), { maxLength: 8 }),
  from: hhmmArb,
  to: hhmmArb,
});
const groupsArb = fc.oneof(
  fc.dictionary(
    fc.stringMatching(/^[a-z0-9_-]{0,34}$/),
    fc.array(fc.stringMatching(/^[a-z0-9_-]{0,34}$/), { maxLength: 3 }),
    { maxKeys: 34 },
  ),
  fc.anything({ maxDepth: 2 }),
);

describe('fuzz: session, grant and ACL body schemas', () => {
  const sid = b64Arb(16);
  const bodies: [string, (x: unknown) => unknown, fc.Arbitrary<unknown>][] = [
    [
      'session/offer body',
      schemaDecoder(offerBodySchema),
      objectsWith({
        d: deviceIdArb,
        cam: fc.stringMatching(/^[a-z0-9_-]{0,34}$/),
        sid,
        sdp: sdpArb,
        sk: b64Arb(32),
      }),
    ],
    [
      'session/answer body',
      schemaDecoder(answerBodySchema),
      objectsWith({ d: deviceIdArb, sid, o: b64Arb(32), sdp: sdpArb, sk: b64Arb(32) }),
    ],
    [
      'grant body',
      schemaDecoder(grantSchema),
      objectsWith({
        d: deviceIdArb,
        sub: userKeyArb,
        role: fc.constantFrom('member', 'guest', 'owner'),
        scopes: fc.array(fc.constantFrom('live', 'clips', 'snapshots', 'timeline', 'talk', 'ptz', 'root'), {
          maxLength: 7,
        }),
        cams: fc.array(fc.stringMatching(/^[a-z0-9_-]{0,34}$/), { maxLength: 3 }),
        groups: fc.array(fc.stringMatching(/^[a-z0-9_-]{0,34}$/), { maxLength: 3 }),
        sched: fc.array(schedArb, { maxLength: 9 }),
        floor: fc.integer({ min: -1, max: 2 ** 53 }),
        label: fc.string({ maxLength: 70 }),
        nbf: fc.integer({ min: -1, max: 2 ** 53 }),
        exp: fc.option(fc.integer({ min: -1, max: 2 ** 53 })),
        serial: fc.integer({ min: -1, max: 2 ** 32 }),
      }),
    ],
    [
      'acl/update body',
      schemaDecoder(aclUpdateSchema),
      objectsWith({
        d: deviceIdArb,
        ver: fc.integer({ min: -1, max: 2 ** 32 }),
        add: fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 3 }),
        revoke: fc.array(fc.integer(), { maxLength: 5 }),
        owners: objectsWith({
          add: fc.array(userKeyArb, { maxLength: 9 }),
          remove: fc.array(userKeyArb, { maxLength: 3 }),
        }),
        recovery: fc.option(userKeyArb),
        groups: fc.option(groupsArb),
      }),
    ],
    ['schedule window', schemaDecoder(schedWindowSchema), schedArb],
    ['camera groups', schemaDecoder(groupsSchema), groupsArb],
    [
      'persisted ACL state',
      schemaDecoder(aclStateSchema),
      objectsWith({
        d: deviceIdArb,
        ver: fc.integer(),
        owners: fc.array(userKeyArb, { maxLength: 9 }),
        recovery: userKeyArb,
        groups: groupsArb,
        grants: fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 3 }),
        revoked: fc.array(fc.integer(), { maxLength: 5 }),
        revokedKeys: fc.array(userKeyArb, { maxLength: 2 }),
      }),
    ],
    [
      'persisted ACL state (v1)',
      schemaDecoder(aclStateV1Schema),
      objectsWith({
        d: deviceIdArb,
        ver: fc.integer(),
        owner: userKeyArb,
        grants: fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 3 }),
        revoked: fc.array(fc.integer(), { maxLength: 5 }),
        revokedKeys: fc.array(userKeyArb, { maxLength: 2 }),
      }),
    ],
  ];
  for (const [name, decode, arb] of bodies) {
    it(`${name}: ${RUNS} random and hostile objects: a value or E_SCHEMA`, () => {
      fc.assert(
        fc.property(arb, (x) => {
          valueOrProtocolError(() => decode(x));
        }),
        { numRuns: RUNS },
      );
    });
  }
});

describe('fuzz: rendezvous frame decoders', () => {
  const id = fc.oneof(deviceIdArb, userKeyArb);
  const serverFrames = fc.oneof(
    fc.record({
      t: fc.constant('hello'),
      v: fc.constant(1),
      srv: key32.map((k) => encodeId('serverKey', k)),
      ch: b64Arb(32),
    }),
    fc.record({
      t: fc.constant('ready'),
      id,
      ice: fc.array(
        fc.record({
          urls: fc.array(fc.constantFrom('stun:a', 'turn:b?transport=udp', 'turns:c:443'), {
            minLength: 1,
            maxLength: 3,
          }),
          username: fc.string({ maxLength: 10 }),
        }),
        { maxLength: 2 },
      ),
    }),
    fc.record({
      t: fc.constant('recv'),
      from: id,
      m: fc.json({ maxDepth: 2 }).map((s) => JSON.parse(s) as unknown),
    }),
    fc.record({ t: fc.constant('presence'), d: deviceIdArb, online: fc.boolean() }),
    fc.record({
      t: fc.constant('relay'),
      peer: id,
      ice: fc.array(
        fc.record({
          urls: fc.array(fc.constantFrom('stun:a:1', 'turn:a:1?transport=udp', 'turns:a:5349'), {
            minLength: 1,
            maxLength: 3,
          }),
          username: fc.string({ maxLength: 30 }),
          credential: fc.string({ maxLength: 30 }),
        }),
        { maxLength: 3 },
      ),
      until: fc.nat(),
    }),
    fc.record({
      t: fc.constant('pair/found'),
      tag: fc.stringMatching(/^[0-9A-Z]{4}$/),
      d: fc.option(deviceIdArb),
    }),
    fc.record({ t: fc.constant('alert'), code: fc.constantFrom(...RENDEZVOUS_ALERT_CODES), count: fc.nat() }),
    fc.record({
      t: fc.constant('error'),
      code: fc.constantFrom(...RENDEZVOUS_ERROR_CODES),
      msg: fc.string({ maxLength: 20 }),
    }),
    fc.record({ t: fc.constant('push/ok'), ref: fc.string({ minLength: 1, maxLength: 8 }) }),
    fc.constant({ t: 'pong' }),
  );
  const clientFrames = fc.oneof(
    fc.record({ t: fc.constant('auth'), env: fc.nat().map((n) => ({ v: 1, n })) }),
    fc.record({
      t: fc.constant('send'),
      to: id,
      m: fc.json({ maxDepth: 2 }).map((s) => JSON.parse(s) as unknown),
      ref: fc.string({ maxLength: 8 }),
    }),
    fc.record({ t: fc.constant('watch'), d: fc.array(deviceIdArb, { maxLength: 3 }) }),
    fc.record({ t: fc.constant('pair/register'), tag: fc.option(fc.stringMatching(/^[0-9A-Z]{4}$/)) }),
    fc.record({ t: fc.constant('pair/lookup'), tag: fc.stringMatching(/^[0-9A-Z]{4}$/) }),
    fc.record({ t: fc.constant('relay'), v: id, ref: fc.string({ maxLength: 8 }) }),
    fc.record({
      t: fc.constant('push'),
      ref: fc.string({ minLength: 1, maxLength: 8 }),
      endpoint: fc.constantFrom('https://push.example/a', 'https://fcm.googleapis.com/fcm/send/x'),
      body: fc.uint8Array({ minLength: 1, maxLength: 200 }).map(b64u),
      ttl: fc.nat(86_400),
      urgency: fc.constantFrom('very-low', 'low', 'normal', 'high'),
    }),
    fc.constant({ t: 'ping' }),
  );
  for (const [name, decode, frames] of [
    ['decodeServerFrame', decodeServerFrame, serverFrames],
    ['decodeClientFrame', decodeClientFrame, clientFrames],
  ] as const) {
    it(`${name}: ${RUNS} random and mutated frames: a frame or a ProtocolError`, () => {
      fc.assert(
        fc.property(textInputs((frames as fc.Arbitrary<unknown>).map((f) => JSON.stringify(f))), (x) => {
          const r = valueOrProtocolError(() => decode(x));
          // JSON text, not deepEqual: `m` is opaque and may hold -0, which JSON cannot carry.
          if (!(r instanceof ProtocolError))
            assert.equal(JSON.stringify(decode(JSON.stringify(r))), JSON.stringify(r));
        }),
        { numRuns: RUNS },
      );
    });
  }
});

describe('fuzz: pairing box payloads and lookup tags', () => {
  const viewerBox = fc.record({ viewerKey: b64Arb(32), sig: b64Arb(64) }).map((o) => JSON.stringify(o));
  const deviceBox = fc
    .record({ deviceKey: b64Arb(32), sig: b64Arb(64), role: fc.constantFrom('owner', 'member', 'guest') })
    .map((o) => JSON.stringify(o));
  it(`decodeBoxPayload (viewer and device identity): ${RUNS} inputs each: a payload or a ProtocolError`, () => {
    for (const [arb, schema] of [
      [viewerBox, viewerIdentitySchema],
      [deviceBox, deviceIdentitySchema],
    ] as const) {
      fc.assert(
        fc.property(textInputs(arb), (x) => {
          const bytes = typeof x === 'string' ? te.encode(x) : x;
          valueOrProtocolError(() => decodeBoxPayload(bytes, schema, 'box'));
        }),
        { numRuns: RUNS },
      );
    }
  });

  it(`parseLookupTag: ${RUNS} inputs: a 4-character tag or a ProtocolError`, () => {
    const valid = fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{4}$/);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything({ maxDepth: 0 }),
          fc.string({ maxLength: 20 }),
          valid,
          fc.tuple(valid, editsArb).map(([s, e]) => mutate(s.toLowerCase(), e)),
        ),
        (x) => {
          const r = valueOrProtocolError(() => parseLookupTag(x));
          if (!(r instanceof ProtocolError)) assert.match(r, /^[0-9A-HJKMNP-TV-Z]{4}$/);
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: session/still decoders (message schema, ciphertext)', () => {
  // One genuine-size ciphertext, mutated (drawing 48 KiB per input would spend the run on random bytes).
  const ct = b64u(new Uint8Array(STILL_CT_BYTES).map((_, i) => (i * 131) & 0xff));
  const long = Math.max(100, Math.floor(RUNS / 10));
  it(`decodeStillCiphertext: ${RUNS} short and ${long} full-size mutated inputs: ${STILL_CT_BYTES} bytes or a ProtocolError`, () => {
    const check = (x: unknown) => {
      const r = valueOrProtocolError(() => decodeStillCiphertext(x));
      if (!(r instanceof ProtocolError)) assert.equal(r.length, STILL_CT_BYTES);
      else assert.ok(['E_DECODE', 'E_TOO_LARGE'].includes(r.code), r.code);
    };
    fc.assert(fc.property(fc.oneof(fc.anything({ maxDepth: 1 }), fc.string({ maxLength: 200 })), check), {
      numRuns: RUNS,
    });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(fc.constant(ct), editsArb).map(([s, e]) => mutate(s, e)),
          fc.integer({ min: -4, max: 4 }).map((d) => 'A'.repeat(STILL_CT_CHARS + d)),
        ),
        check,
      ),
      { numRuns: long },
    );
  });

  it(`session/still schema: ${long} random and hostile objects: a value or E_SCHEMA`, () => {
    const decode = schemaDecoder(stillMessageSchema);
    fc.assert(
      fc.property(
        objectsWith({
          t: fc.constant('session/still'),
          sid: b64Arb(16),
          ct: fc.oneof(
            fc.constant(ct),
            fc.tuple(fc.constant(ct), editsArb).map(([s, e]) => mutate(s, e)),
          ),
        }),
        (x) => {
          const r = valueOrProtocolError(() => decode(x));
          if (!(r instanceof ProtocolError)) assert.equal(r.ct.length, STILL_CT_CHARS);
        },
      ),
      { numRuns: long },
    );
  });
});
