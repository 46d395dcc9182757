/** Property tests: decoders return a value or throw a typed RelayError, never anything else. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  Attr,
  decodeChannelData,
  decodeStunMessage,
  decodeXorAddress,
  encodeChannelData,
  encodeStunMessage,
  encodeXorAddress,
  getAttribute,
  nobleStunCrypto,
  RelayError,
  type StunClass,
  streamFrameSize,
  verifyIntegrity,
} from '../src/codec/index.js';
import { nodeStunCrypto } from '../src/server/node-crypto.js';
import { RFC5769_REQUEST, RFC5769_REQUEST_LTC, RFC5769_RESPONSE_V4, RFC5769_RESPONSE_V6 } from './vectors.js';

const RUNS = Number(process.env.RELAY_FUZZ_RUNS ?? 60_000);

function onlyTyped(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch (e) {
    if (e instanceof RelayError && typeof e.code === 'string') return true;
    throw e;
  }
}

const seeds = [RFC5769_REQUEST, RFC5769_RESPONSE_V4, RFC5769_RESPONSE_V6, RFC5769_REQUEST_LTC];

/** A valid seed with a few bytes flipped, truncated, or extended. */
const mutated = fc
  .tuple(
    fc.constantFrom(...seeds),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.integer({ min: -8, max: 8 }),
    fc.boolean(),
  )
  .map(([seed, flips, resize, fixLen]) => {
    let b = seed.slice();
    for (const [pos, val] of flips) b[pos % b.length] = val;
    if (resize < 0) b = b.subarray(0, Math.max(0, b.length + resize));
    else if (resize > 0) b = Uint8Array.from([...b, ...new Uint8Array(resize).fill(resize)]);
    if (fixLen && b.length >= 4) {
      const len = Math.max(0, b.length - 20);
      b[2] = len >> 8;
      b[3] = len & 0xff;
    }
    return b;
  });

/** Random header-shaped bytes so the decoder gets past the first checks more often. */
const stunShaped = fc
  .tuple(
    fc.integer({ min: 0, max: 0x3fff }),
    fc.uint8Array({ minLength: 12, maxLength: 12 }),
    fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 40 })), {
      maxLength: 8,
    }),
  )
  .map(([type, tid, attrs]) => {
    const body: number[] = [];
    for (const [t, v] of attrs) {
      body.push(t >> 8, t & 0xff, v.length >> 8, v.length & 0xff, ...v);
      while (body.length % 4) body.push(0);
    }
    return Uint8Array.from([
      type >> 8,
      type & 0xff,
      body.length >> 8,
      body.length & 0xff,
      0x21,
      0x12,
      0xa4,
      0x42,
      ...tid,
      ...body,
    ]);
  });

describe('STUN decoder properties', () => {
  it(`random bytes (${RUNS} runs): value or typed error`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => onlyTyped(() => decodeStunMessage(b))),
      { numRuns: RUNS },
    );
  });

  it(`mutated RFC 5769 messages (${RUNS} runs): value or typed error, integrity never throws`, () => {
    fc.assert(
      fc.property(mutated, (b) =>
        onlyTyped(() => {
          const m = decodeStunMessage(b);
          verifyIntegrity(m, new Uint8Array(16), nobleStunCrypto);
          const x = getAttribute(m, Attr.XorMappedAddress);
          if (x) decodeXorAddress(x, m.transactionId);
        }),
      ),
      { numRuns: RUNS },
    );
  });

  it(`STUN-shaped random messages (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(stunShaped, (b) => onlyTyped(() => decodeStunMessage(b))),
      { numRuns: RUNS },
    );
  });

  it('encode/decode round trip with integrity and fingerprint', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xfff }),
        fc.constantFrom<StunClass>(0, 1, 2, 3),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.array(
          fc.tuple(
            fc.integer({ min: 0, max: 0xffff }).filter((t) => t !== 0x0008 && t !== 0x001c && t !== 0x8028),
            fc.uint8Array({ maxLength: 64 }),
          ),
          { maxLength: 10 },
        ),
        fc.option(fc.uint8Array({ minLength: 1, maxLength: 32 }), { nil: undefined }),
        fc.boolean(),
        (method, cls, tid, attrs, key, fingerprint) => {
          const attributes = attrs.map(([type, value]) => ({ type, value }));
          const out = encodeStunMessage(
            { method, cls, transactionId: tid, attributes },
            { integrityKey: key, crypto: nodeStunCrypto, fingerprint },
          );
          const m = decodeStunMessage(out);
          assert.equal(m.method, method);
          assert.equal(m.cls, cls);
          assert.deepEqual([...m.transactionId], [...tid]);
          assert.equal(m.attributes.length, attributes.length);
          m.attributes.forEach((a, i) => {
            assert.equal(a.type, attributes[i]!.type);
            assert.deepEqual([...a.value], [...attributes[i]!.value]);
          });
          assert.equal(m.hasFingerprint, fingerprint);
          if (key) assert.ok(verifyIntegrity(m, key, nodeStunCrypto));
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('XOR address round trip (IPv4 and IPv6)', () => {
    const v4 = fc.ipV4().map((address) => ({ family: 4 as const, address }));
    const v6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => {
      const g: string[] = [];
      for (let i = 0; i < 16; i += 2) g.push(((b[i]! << 8) | b[i + 1]!).toString(16));
      return { family: 6 as const, address: g.join(':') };
    });
    fc.assert(
      fc.property(
        fc.oneof(v4, v6),
        fc.integer({ min: 0, max: 65535 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        (a, port, tid) => {
          const enc = encodeXorAddress({ ...a, port }, tid);
          const dec = decodeXorAddress(enc, tid);
          assert.equal(dec.port, port);
          assert.deepEqual([...encodeXorAddress(dec, tid)], [...enc]);
        },
      ),
      { numRuns: 5_000 },
    );
  });
});

describe('ChannelData decoder properties', () => {
  it(`random bytes (${RUNS} runs), datagram and stream modes`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.boolean(), (b, stream) =>
        onlyTyped(() => {
          decodeChannelData(b, { stream });
          streamFrameSize(b);
        }),
      ),
      { numRuns: RUNS },
    );
  });

  it(`mutated frames (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0x4000, max: 0x7fff }),
        fc.uint8Array({ maxLength: 64 }),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: -4, max: 4 }),
        (ch, data, pos, val, resize) => {
          let f = encodeChannelData(ch, data, { pad: true });
          f[pos % f.length] = val;
          if (resize < 0) f = f.subarray(0, Math.max(0, f.length + resize));
          else f = Uint8Array.from([...f, ...new Uint8Array(resize)]);
          return (
            onlyTyped(() => decodeChannelData(f, { stream: true })) && onlyTyped(() => decodeChannelData(f))
          );
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('round trip', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0x4000, max: 0x7fff }),
        fc.uint8Array({ maxLength: 300 }),
        fc.boolean(),
        (ch, data, pad) => {
          const f = encodeChannelData(ch, data, { pad });
          const d = decodeChannelData(f, { stream: pad });
          assert.equal(d.channel, ch);
          assert.deepEqual([...d.data], [...data]);
          assert.equal(d.frameSize, f.length);
        },
      ),
      { numRuns: 5_000 },
    );
  });
});
