/**
 * Hostile-input properties (threat model S10): the pairing message decoder, the QR payload parser and
 * the manual-code parser each get well over 100k random and mutated inputs. Each must return a value
 * or throw a ProtocolError: never another exception, never a hang.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { b64u, utf8 } from '../../src/bytes.js';
import { ERROR_CODES, type ErrorCode, ProtocolError } from '../../src/errors.js';
import {
  decodePairingMessage,
  encodeManualCode,
  encodePairingMessage,
  encodeQrPayload,
  type PairingMessage,
  parseManualCode,
  parseQrPayload,
} from '../../src/pairing/index.js';
import { editsArb, mutate, valueOrProtocolError } from '../fuzz-helpers.js';

const RUNS = Number(process.env.HEARTH_FUZZ_RUNS ?? 110_000);

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map(b64u);
const boxArb = fc.uint8Array({ minLength: 30, maxLength: 512 }).map(b64u);
const codes = Object.keys(ERROR_CODES) as ErrorCode[];

const messageArb: fc.Arbitrary<PairingMessage> = fc.oneof(
  fc.record({
    t: fc.constant('pair/start' as const),
    v: fc.constant(1 as const),
    method: fc.constantFrom('qr' as const, 'code' as const),
    shareP: bytes(65),
  }),
  fc.record({ t: fc.constant('pair/challenge' as const), shareV: bytes(65), confirmV: bytes(32) }),
  fc.record({ t: fc.constant('pair/confirm' as const), confirmP: bytes(32), box: boxArb }),
  fc.record({ t: fc.constant('pair/done' as const), box: boxArb }),
  fc.record(
    {
      t: fc.constant('pair/error' as const),
      code: fc.constantFrom(...codes),
      retryAt: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    },
    { requiredKeys: ['t', 'code'] },
  ),
);

describe('fuzz: decodePairingMessage', () => {
  it(`${RUNS} random and mutated inputs: a valid message or a ProtocolError`, () => {
    const input = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 1200 }),
      fc.json({ maxDepth: 3 }),
      messageArb.map((m) => JSON.stringify(m)),
      fc.tuple(messageArb, editsArb).map(([m, e]) => mutate(JSON.stringify(m), e)),
      fc.tuple(messageArb, editsArb).map(([m, e]) => utf8(mutate(JSON.stringify(m), e))),
    );
    fc.assert(
      fc.property(input, (x) => {
        const r = valueOrProtocolError(() => decodePairingMessage(x));
        if (!(r instanceof ProtocolError)) assert.equal(decodePairingMessage(encodePairingMessage(r)).t, r.t);
      }),
      { numRuns: RUNS },
    );
  });

  it('round trip: decode(encode(m)) = m', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const plain = { ...m }; // fast-check records have a null prototype
        assert.deepEqual(decodePairingMessage(encodePairingMessage(m)), plain);
        assert.deepEqual(decodePairingMessage(utf8(encodePairingMessage(m))), plain);
      }),
      { numRuns: 20_000 },
    );
  });

  it('limits: oversize input is E_TOO_LARGE; unknown fields and non-canonical base64url are refused', () => {
    assert.throws(
      () => decodePairingMessage(' '.repeat(1025)),
      (e) => (e as ProtocolError).code === 'E_TOO_LARGE',
    );
    assert.throws(
      () => decodePairingMessage(new Uint8Array(1025)),
      (e) => (e as ProtocolError).code === 'E_TOO_LARGE',
    );
    const ok = { t: 'pair/challenge', shareV: b64u(new Uint8Array(65)), confirmV: b64u(new Uint8Array(32)) };
    decodePairingMessage(JSON.stringify(ok));
    assert.throws(
      () => decodePairingMessage(JSON.stringify({ ...ok, x: 1 })),
      (e) => (e as ProtocolError).code === 'E_SCHEMA',
    );
    // 32 zero bytes end in 'A'; 'B' sets padding bits that canonical base64url leaves zero.
    assert.throws(
      () => decodePairingMessage(JSON.stringify({ ...ok, confirmV: `${ok.confirmV.slice(0, -1)}B` })),
      (e) => (e as ProtocolError).code === 'E_DECODE',
    );
    assert.throws(
      () => decodePairingMessage(JSON.stringify({ t: 'pair/error', code: 'E_NOPE' })),
      (e) => (e as ProtocolError).code === 'E_SCHEMA',
    );
  });
});

describe('fuzz: parseQrPayload', () => {
  const valid = fc
    .tuple(
      fc.constantFrom(
        'hearth.example',
        'a.b.c:8443',
        'localhost:1',
        'xn--bcher-kva.example',
        '[::1]:8443',
        '10.0.0.1',
      ),
      fc.stringMatching(/^hdid_[a-z2-7]{10,40}$/),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
    )
    .map(([server, deviceId, secret]) => encodeQrPayload({ server, deviceId, secret }));

  it(`${RUNS} random and mutated inputs: a payload or a ProtocolError`, () => {
    const input = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ unit: 'binary', maxLength: 100 }),
      fc.webUrl({ withFragments: true, withQueryParameters: true }),
      valid,
      fc.tuple(valid, editsArb).map(([s, e]) => mutate(s, e)),
      fc.tuple(valid, editsArb).map(([s, e]) => mutate(s, e)),
    );
    fc.assert(
      fc.property(input, (x) => {
        const r = valueOrProtocolError(() => parseQrPayload(x));
        if (!(r instanceof ProtocolError)) assert.deepEqual(parseQrPayload(encodeQrPayload(r)), r);
      }),
      { numRuns: RUNS },
    );
  });

  it('non-strings are E_SCHEMA', () => {
    for (const x of [undefined, null, 1, {}, []]) {
      assert.throws(
        () => parseQrPayload(x),
        (e) => (e as ProtocolError).code === 'E_SCHEMA',
      );
    }
  });
});

describe('fuzz: parseManualCode', () => {
  const valid = fc
    .tuple(fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{4}$/), fc.uint8Array({ minLength: 5, maxLength: 5 }))
    .map(([tag, secret]) => encodeManualCode({ tag, secret }));

  it(`${RUNS} random and mutated inputs: a code or a ProtocolError`, () => {
    const input = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.stringMatching(/^[0-9a-zA-Z -]{10,20}$/),
      fc.string({ unit: 'binary', maxLength: 40 }),
      valid,
      fc.tuple(valid, editsArb).map(([s, e]) => mutate(s, e)),
      fc.tuple(valid, editsArb).map(([s, e]) => mutate(s.toLowerCase(), e)),
    );
    fc.assert(
      fc.property(input, (x) => {
        const r = valueOrProtocolError(() => parseManualCode(x));
        if (!(r instanceof ProtocolError)) assert.deepEqual(parseManualCode(encodeManualCode(r)), r);
      }),
      { numRuns: RUNS },
    );
  });
});
