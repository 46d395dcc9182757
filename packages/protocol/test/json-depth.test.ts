/**
 * Review R5a: JSON nested deeper than MAX_JSON_DEPTH is refused with a typed error (E_TOO_LARGE)
 * before it is parsed, by both of the protocol's JSON parsers; anything within the limit parses
 * exactly as JSON.parse does, and brackets inside strings never count. Control: what the limit
 * keeps out, a 9 000-level value, overflows the stack of `JSON.stringify`, which the server runs
 * on every routed message.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { checkJsonDepth, MAX_JSON_DEPTH, parseJson } from '../src/canonical.js';
import { ProtocolError } from '../src/errors.js';
import { parseJsonLimited } from '../src/pairing/messages.js';

const RUNS = Number(process.env.HEARTH_FUZZ_RUNS ?? 2000);
const deep = (n: number, open = '[', close = ']') => open.repeat(n) + close.repeat(n);
const nestedObj = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
const tooLarge = (e: unknown) => e instanceof ProtocolError && e.code === 'E_TOO_LARGE';

describe('JSON nesting limit (review R5a)', () => {
  it('at the limit parses; one deeper is E_TOO_LARGE, in arrays, objects and both parsers', () => {
    assert.deepEqual(parseJson(deep(MAX_JSON_DEPTH), 1 << 20), JSON.parse(deep(MAX_JSON_DEPTH)));
    assert.ok(parseJson(nestedObj(MAX_JSON_DEPTH), 1 << 20));
    for (const text of [deep(MAX_JSON_DEPTH + 1), nestedObj(MAX_JSON_DEPTH + 1), deep(9000)]) {
      assert.throws(() => parseJson(text, 1 << 20), tooLarge);
      assert.throws(() => parseJsonLimited(text, 1 << 20, 'pairing message'), tooLarge);
    }
  });

  it('brackets inside strings (escaped quotes included) do not count', () => {
    const s = JSON.stringify({ s: `${'['.repeat(500)}\\"${'{'.repeat(500)}` });
    assert.deepEqual(parseJson(s, 1 << 20), JSON.parse(s));
  });

  it('fuzz: any JSON value parses as JSON.parse does when within the limit, and is refused (typed) when not', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 12 }), fc.integer({ min: 0, max: 80 }), (v, wrap) => {
        let text = JSON.stringify(v);
        for (let i = 0; i < wrap; i++) text = i % 2 ? `{"k":${text}}` : `[${text}]`;
        let depth: number;
        try {
          const parsed = JSON.parse(text);
          const measure = (x: unknown): number =>
            x !== null && typeof x === 'object'
              ? 1 + Math.max(0, ...Object.values(x as object).map(measure))
              : 0;
          depth = measure(parsed);
          if (depth <= MAX_JSON_DEPTH) assert.deepEqual(parseJson(text, 1 << 22), parsed);
          else assert.throws(() => parseJson(text, 1 << 22), tooLarge);
        } catch (e) {
          if (e instanceof assert.AssertionError) throw e;
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('fuzz: arbitrary text gives a value or a ProtocolError, never anything else', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('[', ']', '{', '}', '"', '\\', 'a', ':', ',', '1') }),
        (t) => {
          try {
            checkJsonDepth(t);
            parseJson(t, 1 << 20);
          } catch (e) {
            assert.ok(e instanceof ProtocolError, String(e));
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('control: without the limit, a 9 000-level value overflows JSON.stringify (as the hub routing it did)', () => {
    const v = JSON.parse(deep(9000));
    assert.throws(() => JSON.stringify({ t: 'recv', m: v }), RangeError);
  });
});
