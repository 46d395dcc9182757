/**
 * Fuzzing the access log's decoders (src/tlog/): parseNote, parseCheckpoint, decodeLogEntry,
 * decodeProof, parseVerifierKey, the cosignature check (verifyCosignature / openCosigned), and the
 * viewer's LogMonitor on mutated updates. For each:
 *
 * - nothing but a ProtocolError (or, for verifiers, a typed HearthError) with a registered code of
 *   the decoder's own set escapes;
 * - the size limit comes first: an oversized input whose content is also invalid is E_TOO_LARGE
 *   (so the content was never looked at);
 * - encode then decode gives the value back, and whatever is accepted is the canonical encoding of
 *   what it decodes to (one byte string per value: a mutation never decodes to the same value);
 * - a mutated valid encoding is refused, or decodes to something that does not verify.
 *
 * RUNS (HEARTH_FUZZ_RUNS, default 100 000) inputs per synchronous decoder; the asynchronous ones
 * (Ed25519, SHA-256 through WebCrypto) get ASYNC_RUNS.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { b64std, concat, hex, utf8 } from '../src/bytes.js';
import { WebCryptoSigner } from '../src/crypto/primitives.js';
import { HearthError, isErrorCode, ProtocolError } from '../src/errors.js';
import {
  type Checkpoint,
  type CosignerKey,
  cosign,
  cosignerKey,
  decodeLogEntry,
  decodeProof,
  encodeLogEntry,
  encodeProof,
  encodeVerifierKey,
  formatCheckpoint,
  isKeyName,
  LOG_ENTRY_KINDS,
  type LogEntry,
  LogMonitor,
  type LogUpdate,
  LogWitness,
  leafHash,
  MAX_CHECKPOINT_CHARS,
  MAX_CHECKPOINT_EXTENSIONS,
  MAX_KEY_NAME,
  MAX_LOG_ENTRY_BYTES,
  MAX_NOTE_BYTES,
  MAX_PROOF_HASHES,
  MemoryLog,
  type Note,
  noteVerifier,
  openCheckpoint,
  openCosigned,
  parseCheckpoint,
  parseNote,
  parseVerifierKey,
  verifyCosignature,
  verifyInclusion,
} from '../src/tlog/index.js';
import {
  editsArb,
  mutate,
  RUNS,
  textInputs,
  valueOrHearthError,
  valueOrProtocolError,
} from './fuzz-helpers.js';

const ASYNC_RUNS = Math.max(50, Math.min(RUNS, 500));
/** Round trips of generated valid values (the hostile-input properties get the full RUNS). */
const TRIP_RUNS = Math.max(100, Math.min(RUNS, 10_000));
const te = new TextEncoder();
const BOM = new Uint8Array([0xef, 0xbb, 0xbf]);

/** `f()` is a value, or a ProtocolError whose (registered) code is one of `codes`. */
function decodes<T>(codes: readonly string[], f: () => T): T | ProtocolError {
  const r = valueOrProtocolError(f);
  if (r instanceof ProtocolError) {
    assert.ok(isErrorCode(r.code), `unregistered code ${r.code}`);
    assert.ok(codes.includes(r.code), `unexpected code ${r.code}: ${r.message}`);
  }
  return r;
}
async function verifies<T>(codes: readonly string[], f: () => Promise<T>): Promise<T | HearthError> {
  const r = await valueOrHearthError(f);
  if (r instanceof HearthError) {
    assert.ok(isErrorCode(r.code), `unregistered code ${r.code}`);
    assert.ok(codes.includes(r.code), `unexpected code ${r.code}: ${r.message}`);
  }
  return r;
}
const tooLarge = (f: () => unknown) => {
  const r = valueOrProtocolError(f);
  assert.ok(r instanceof ProtocolError && r.code === 'E_TOO_LARGE', `expected E_TOO_LARGE, got ${String(r)}`);
};

/** Content that every decoder refuses on its own (control characters, invalid UTF-8, lone surrogates). */
const junkText = (n: number) => '\u0000\ud800'.repeat(Math.ceil(n / 2)).slice(0, n);
const junkBytes = (n: number) => new Uint8Array(n).fill(0xff);
/** XOR a non-zero value into one byte of `b` (non-empty). */
const flip = (b: Uint8Array, at: number, v: number) => {
  const i = at % b.length;
  b[i] = b[i]! ^ (v || 1);
};

// ------------------------------------------------------------------ arbitraries

/** Characters that stress the line rules: ASCII, em dash, multi-byte, astral, Unicode spaces, BOM. */
const CHARS = [
  'a',
  'Z',
  '0',
  '.',
  '/',
  '-',
  ' ',
  '+',
  '=',
  '\u2014',
  '\u00e9',
  '\u20ac',
  '\u{1f600}',
  '\u2028',
  '\u00a0',
  '\u3000',
  '\ufeff',
  '\u007f',
  '\u0085',
];
const keyNameArb = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._/:-]{1,40}$/),
  fc.string({ unit: fc.constantFrom(...CHARS), minLength: 1, maxLength: 12 }).filter(isKeyName),
);
const lineArb = fc.string({ unit: fc.constantFrom(...CHARS), maxLength: 40 });
const noteTextArb = fc.array(lineArb, { minLength: 1, maxLength: 6 }).map((ls) => `${ls.join('\n')}\n`);
const sigArb = fc
  .record({
    name: keyNameArb,
    keyId: fc.integer({ min: 0, max: 0xffffffff }),
    signature: fc.uint8Array({ minLength: 1, maxLength: 80 }),
  })
  .map((r) => ({ ...r }));
const noteArb: fc.Arbitrary<Note> = fc
  .record({
    text: noteTextArb,
    signatures: fc.array(sigArb, { minLength: 1, maxLength: 16 }),
  })
  .map((r) => ({ ...r }));
/** Notes of at most 3 signatures, to mutate (most mutations land in the text or the first lines). */
const smallNoteArb = fc
  .record({ text: noteTextArb, signatures: fc.array(sigArb, { minLength: 1, maxLength: 3 }) })
  .map((r) => ({ ...r }));
const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
};
/** The one encoding of a note. */
const formatNote = (n: Note) =>
  `${n.text}\n${n.signatures.map((s) => `\u2014 ${s.name} ${b64std(concat(u32(s.keyId), s.signature))}\n`).join('')}`;

const hash32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const extArb = fc.stringMatching(/^[ -~]{1,40}$/);
const checkpointArb: fc.Arbitrary<Checkpoint> = fc
  .record({
    origin: keyNameArb,
    size: fc.oneof(fc.nat(1000), fc.maxSafeNat(), fc.constant(Number.MAX_SAFE_INTEGER)),
    root: hash32,
    extensions: fc.array(extArb, { maxLength: MAX_CHECKPOINT_EXTENSIONS }),
  })
  .map((r) => ({ ...r }));

const keyHash = fc.uint8Array({ minLength: 16, maxLength: 16 }).map(hex);
const camera = fc.stringMatching(/^[a-z0-9_-]{1,32}$/);
const int = fc.oneof(fc.nat(1000), fc.maxSafeNat());
const errCode = fc.stringMatching(/^E_[A-Z0-9_]{1,20}$/);
const path = fc.constantFrom('direct' as const, 'relayed' as const);
const role = fc.constantFrom('owner' as const, 'member' as const, 'guest' as const);
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
/** Drop the keys whose value is undefined (optional fields left out). */
const clean = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
const base = { v: fc.constant(1 as const), t: int };
const entryArb: fc.Arbitrary<LogEntry> = fc
  .oneof(
    fc.record({
      ...base,
      k: fc.constant('pair/attempt' as const),
      result: fc.constantFrom(
        'ok' as const,
        'bad-confirmation' as const,
        'locked' as const,
        'closed' as const,
        'error' as const,
      ),
      viewer: opt(keyHash),
      code: opt(errCode),
    }),
    fc.record({ ...base, k: fc.constant('acl/invite' as const), invite: keyHash, by: keyHash, exp: int }),
    fc.record({
      ...base,
      k: fc.constant('acl/request' as const),
      invite: keyHash,
      subject: keyHash,
      result: fc.constantFrom(
        'pending' as const,
        'approved' as const,
        'denied' as const,
        'used' as const,
        'expired' as const,
      ),
    }),
    fc.record({
      ...base,
      k: fc.constant('acl/grant' as const),
      subject: keyHash,
      by: keyHash,
      ver: int,
      role,
    }),
    fc.record({
      ...base,
      k: fc.constant('acl/change' as const),
      subject: keyHash,
      by: keyHash,
      ver: int,
      role: opt(role),
    }),
    fc.record({ ...base, k: fc.constant('acl/revoke' as const), subject: keyHash, by: keyHash, ver: int }),
    fc.record({
      ...base,
      k: fc.constant('live/start' as const),
      viewer: keyHash,
      camera,
      sid: keyHash,
      path,
    }),
    fc.record({
      ...base,
      k: fc.constant('live/stop' as const),
      viewer: keyHash,
      camera,
      sid: keyHash,
      path,
      code: opt(errCode),
    }),
    fc.record({
      ...base,
      k: fc.constant('clip/sealed' as const),
      camera,
      clip: keyHash,
      epoch: int,
      recipients: fc.uniqueArray(keyHash, { minLength: 1, maxLength: 32 }).map((a) => [...a].sort()),
    }),
    fc.record({ ...base, k: fc.constant('talk/start' as const), viewer: keyHash, camera, sid: keyHash }),
    fc.record({ ...base, k: fc.constant('talk/stop' as const), viewer: keyHash, camera, sid: keyHash }),
    fc.record({
      ...base,
      k: fc.constant('config/change' as const),
      field: fc.stringMatching(/^[a-z0-9_.-]{1,64}$/),
      by: opt(keyHash),
    }),
    fc.record({
      ...base,
      k: fc.constant('update/installed' as const),
      version: fc.stringMatching(/^[0-9A-Za-z.+-]{1,64}$/),
      digest: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(hex),
    }),
    fc.record({
      ...base,
      k: fc.constant('alert' as const),
      alert: fc.constantFrom('impostor' as const, 'possible-attack' as const),
      code: errCode,
      peer: opt(keyHash),
    }),
  )
  .map((e) => clean(e) as LogEntry);

// ------------------------------------------------------------------ signed-note parser

describe('tlog fuzz: parseNote', () => {
  const codes = ['E_LOG_NOTE', 'E_TOO_LARGE'];
  it(`round trip: ${TRIP_RUNS} notes, as text and as UTF-8 bytes`, () => {
    fc.assert(
      fc.property(noteArb, (n) => {
        const s = formatNote(n);
        assert.deepEqual(parseNote(s), n);
        assert.deepEqual(parseNote(te.encode(s)), n);
      }),
      { numRuns: TRIP_RUNS },
    );
  });
  it(`${RUNS} random and mutated inputs: a note that is the one encoding of itself, or E_LOG_NOTE / E_TOO_LARGE`, () => {
    const inputs = fc.oneof(
      textInputs(smallNoteArb.map(formatNote)),
      noteArb.map((n) => concat(BOM, te.encode(formatNote(n)))), // regression: a BOM was dropped
      noteArb.map((n) => formatNote(n).replace(/\n\u2014/, '\n\u2014 ')),
      noteArb.map((n) => formatNote(n).replace(/\n$/, '\r\n')),
    );
    fc.assert(
      fc.property(inputs, (input) => {
        const r = decodes(codes, () => parseNote(input));
        if (r instanceof ProtocolError) return;
        if (typeof input === 'string') assert.equal(formatNote(r), input);
        else if (input instanceof Uint8Array) assert.equal(hex(te.encode(formatNote(r))), hex(input));
        else assert.fail('accepted something that is neither text nor bytes');
      }),
      { numRuns: RUNS },
    );
  });
  it('size limit first: oversized text or bytes is E_TOO_LARGE whatever it contains', () => {
    for (const n of [MAX_NOTE_BYTES + 1, 4 * MAX_NOTE_BYTES, 64 << 20]) {
      tooLarge(() => parseNote(junkBytes(n)));
      tooLarge(() => parseNote(junkText(n)));
    }
    // within the limit in UTF-16 units, past it in UTF-8 bytes
    tooLarge(() => parseNote(`${'\u20ac'.repeat(MAX_NOTE_BYTES / 2)}\n\n\u2014 a AAAAAAA=\n`));
    // regression: a leading BOM is kept, not dropped (the note differs from the one without it)
    const plain = '\u0061\n\n\u2014 a AAAAAAA=\n';
    assert.equal(parseNote(concat(BOM, utf8(plain))).text, '\ufeffa\n');
  });
});

// ------------------------------------------------------------------ checkpoint body

describe('tlog fuzz: parseCheckpoint', () => {
  const codes = ['E_LOG_CHECKPOINT', 'E_TOO_LARGE'];
  it(`round trip: ${TRIP_RUNS} checkpoints`, () => {
    fc.assert(
      fc.property(checkpointArb, (cp) => assert.deepEqual(parseCheckpoint(formatCheckpoint(cp)), cp)),
      { numRuns: TRIP_RUNS },
    );
  });
  it(`${RUNS} random and mutated bodies: a checkpoint whose body is exactly the input, or E_LOG_CHECKPOINT / E_TOO_LARGE`, () => {
    const valid = checkpointArb.map(formatCheckpoint);
    const inputs = fc.oneof(
      textInputs(valid),
      checkpointArb.map((cp) => formatCheckpoint(cp).replace(/\n(\d+)\n/, '\n0$1\n')),
      checkpointArb.map((cp) => formatCheckpoint(cp).replace(/=\n/, '\n')),
      checkpointArb.map((cp) => `${formatCheckpoint(cp)}\n`),
      checkpointArb.map((cp) => `${formatCheckpoint(cp)}ext\r\n`),
      fc.constant(`o\n${Number.MAX_SAFE_INTEGER + 1}\n${b64std(new Uint8Array(32))}\n`),
    );
    fc.assert(
      fc.property(inputs, (input) => {
        const r = decodes(codes, () => parseCheckpoint(input as string));
        if (!(r instanceof ProtocolError)) assert.equal(formatCheckpoint(r), input);
      }),
      { numRuns: RUNS },
    );
  });
  it('size limit first: an oversized body is E_TOO_LARGE whatever it contains', () => {
    for (const n of [MAX_CHECKPOINT_CHARS + 1, 64 << 20]) tooLarge(() => parseCheckpoint(junkText(n)));
  });
});

// ------------------------------------------------------------------ log entries

describe('tlog fuzz: decodeLogEntry', () => {
  const codes = ['E_DECODE', 'E_LOG_ENTRY', 'E_TOO_LARGE'];
  it(`round trip: ${TRIP_RUNS} entries of every kind`, () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(entryArb, (e) => {
        seen.add(e.k);
        assert.deepEqual(decodeLogEntry(encodeLogEntry(e)), e);
      }),
      { numRuns: TRIP_RUNS },
    );
    assert.deepEqual([...seen].sort(), [...LOG_ENTRY_KINDS].sort());
  });
  it(`${RUNS} random, mutated and non-canonical inputs: an entry whose canonical bytes are the input, or a typed error`, () => {
    const valid = entryArb.map((e) => new TextDecoder().decode(encodeLogEntry(e)));
    const inputs = fc.oneof(
      textInputs(valid).map((x) => (typeof x === 'string' ? te.encode(x) : x)),
      textInputs(valid), // strings: not bytes, refused
      entryArb.map((e) => concat(BOM, encodeLogEntry(e))), // regression: accepted before
      entryArb.map((e) => te.encode(JSON.stringify(e, null, 1))),
      entryArb.map((e) => te.encode(JSON.stringify(Object.fromEntries(Object.entries(e).reverse())))),
      entryArb.map((e) => te.encode(` ${new TextDecoder().decode(encodeLogEntry(e))}`)),
      entryArb.map((e) => te.encode(JSON.stringify({ ...e, t: `${e.t}` }))),
    );
    fc.assert(
      fc.property(inputs, (input) => {
        const r = decodes(codes, () => decodeLogEntry(input));
        if (!(r instanceof ProtocolError)) assert.equal(hex(encodeLogEntry(r)), hex(input as Uint8Array));
      }),
      { numRuns: RUNS },
    );
  });
  it('size limit first: oversized bytes are E_TOO_LARGE whatever they contain', () => {
    for (const n of [MAX_LOG_ENTRY_BYTES + 1, 64 << 20]) tooLarge(() => decodeLogEntry(junkBytes(n)));
    const bom = concat(BOM, encodeLogEntry({ v: 1, t: 1, k: 'config/change', field: 'x' }));
    const r = valueOrProtocolError(() => decodeLogEntry(bom));
    assert.ok(r instanceof ProtocolError, 'regression: a BOM before the canonical JSON is refused');
  });
  it(`${ASYNC_RUNS} mutated leaves of a real log: refused, or another leaf hash that fails the inclusion proof`, async () => {
    const s = await WebCryptoSigner.generate();
    const entries = fc.sample(entryArb, { numRuns: 8, seed: 7 });
    const l = new MemoryLog('hearth/fuzz', s);
    for (const e of entries) await l.append(encodeLogEntry(e));
    const cp = await l.checkpoint();
    await fc.assert(
      fc.asyncProperty(fc.nat(7), editsArb, async (i, edits) => {
        const orig = l.entry(i);
        const m = te.encode(mutate(new TextDecoder().decode(orig), edits));
        const r = decodes(codes, () => decodeLogEntry(m));
        const ok = await verifyInclusion(i, cp.size, await leafHash(m), await l.inclusionProof(i), cp.root);
        if (hex(m) === hex(orig)) assert.ok(ok);
        else
          assert.equal(
            ok,
            false,
            `mutated entry ${r instanceof ProtocolError ? '(refused)' : '(decoded)'} verifies`,
          );
      }),
      { numRuns: ASYNC_RUNS },
    );
  });
});

// ------------------------------------------------------------------ proofs

describe('tlog fuzz: decodeProof', () => {
  const codes = ['E_DECODE', 'E_TOO_LARGE'];
  it(`${TRIP_RUNS} proofs round trip; ${RUNS} random bytes and values decode or are E_DECODE / E_TOO_LARGE`, () => {
    fc.assert(
      fc.property(fc.array(hash32, { maxLength: MAX_PROOF_HASHES }), (p) =>
        assert.deepEqual(decodeProof(encodeProof(p)).map(hex), p.map(hex)),
      ),
      { numRuns: TRIP_RUNS },
    );
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 4000 }), fc.anything()), (b) => {
        const r = decodes(codes, () => decodeProof(b));
        if (!(r instanceof ProtocolError)) assert.equal(hex(encodeProof(r)), hex(b as Uint8Array));
      }),
      { numRuns: RUNS },
    );
  });
  it('size limit first: more than MAX_PROOF_HASHES hashes is E_TOO_LARGE, even at a bad length', () => {
    for (const n of [(MAX_PROOF_HASHES + 1) * 32, (MAX_PROOF_HASHES + 1) * 32 + 1, 64 << 20])
      tooLarge(() => decodeProof(junkBytes(n)));
  });
  it(`${ASYNC_RUNS} mutated inclusion and consistency proofs of a real log never verify`, async () => {
    const s = await WebCryptoSigner.generate();
    const l = new MemoryLog('hearth/fuzz', s);
    for (let i = 0; i < 21; i++) await l.append(utf8(`leaf ${i}`));
    await fc.assert(
      fc.asyncProperty(
        fc.nat(20),
        fc.integer({ min: 1, max: 21 }),
        fc.nat(),
        fc.nat(255),
        fc.nat(3),
        async (i, size, at, v, op) => {
          const idx = i % size;
          const cp = await l.checkpoint(size);
          const good = encodeProof(await l.inclusionProof(idx, size));
          const bad = good.slice();
          if (op === 0 && bad.length > 0) flip(bad, at, v);
          const mutated =
            op === 0 && bad.length > 0
              ? bad
              : op === 1
                ? good.subarray(0, Math.max(0, good.length - 32))
                : op === 2
                  ? concat(good, new Uint8Array(32))
                  : concat(new Uint8Array(32), good);
          if (hex(mutated) === hex(good)) return;
          const p = decodes(codes, () => decodeProof(mutated));
          if (p instanceof ProtocolError) return;
          const leaf = await leafHash(l.entry(idx));
          assert.equal(await verifyInclusion(idx, size, leaf, p, cp.root), false);
          // the same edit on a consistency proof from `idx + 1` to `size` (a witness advancing)
          const old = idx + 1;
          if (old >= size) return;
          const cgood = encodeProof(await l.consistencyProof(old, size));
          const cbad = cgood.slice();
          if (cbad.length === 0) return;
          flip(cbad, at, v);
          const w = new LogWitness('hearth/fuzz', s.publicKey, await l.checkpoint(old));
          const note = await l.signedCheckpoint(size);
          const r = await verifies(['E_LOG_FORK'], () => w.advance(note, decodeProof(cbad)));
          assert.ok(r instanceof HearthError, 'a mutated consistency proof verified');
        },
      ),
      { numRuns: ASYNC_RUNS },
    );
  });
});

// ------------------------------------------------------------------ verifier keys

describe('tlog fuzz: parseVerifierKey', () => {
  const codes = ['E_LOG_NOTE', 'E_TOO_LARGE'];
  const keyArb = fc.tuple(keyNameArb, hash32);
  it(`${ASYNC_RUNS} keys round trip; mutated and random texts parse to a key whose text is the input, or are refused`, async () => {
    await fc.assert(
      fc.asyncProperty(keyArb, async ([name, pk]) => {
        const v = await noteVerifier(name, pk);
        assert.deepEqual(await parseVerifierKey(encodeVerifierKey(v)), v);
      }),
      { numRuns: ASYNC_RUNS },
    );
    const valid = fc.constantFrom(
      'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
      'hearth/dev1+0a1b2c3d+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          textInputs(valid, 120),
          valid.map((k) => k.replace('c74f20a3', 'C74F20A3')),
          valid.map((k) => `${k}\n`),
          valid.map((k) => k.replace('+AR', '+Ah')),
        ),
        async (input) => {
          const r = await verifies(codes, () => parseVerifierKey(input as string));
          if (!(r instanceof HearthError)) assert.equal(encodeVerifierKey(r), input);
        },
      ),
      { numRuns: ASYNC_RUNS * 4 },
    );
  });
  it('size limit first: an oversized key text is E_TOO_LARGE whatever it contains', async () => {
    for (const n of [MAX_KEY_NAME + 81, 64 << 20]) {
      const r = await valueOrHearthError(() => parseVerifierKey(junkText(n)));
      assert.ok(r instanceof ProtocolError && r.code === 'E_TOO_LARGE', String(r));
    }
  });
});

// ------------------------------------------------------------------ cosignatures and signed checkpoints

describe('tlog fuzz: cosignatures and signed checkpoints', () => {
  const O = 'hearth/fuzz';
  let s: WebCryptoSigner;
  let ws: WebCryptoSigner;
  let wk: CosignerKey;
  let l: MemoryLog;
  let cp: Checkpoint;
  let signed: string;
  let cosigned: string;
  const T = 1_700_000_000;
  before(async () => {
    s = await WebCryptoSigner.generate();
    ws = await WebCryptoSigner.generate();
    wk = await cosignerKey('hearth-viewer/phone', ws.publicKey);
    l = new MemoryLog(O, s);
    for (let i = 0; i < 5; i++)
      await l.append(encodeLogEntry({ v: 1, t: i, k: 'config/change', field: `f${i}` }));
    cp = await l.checkpoint();
    signed = await l.signedCheckpoint();
    cosigned = signed + (await cosign(cp, wk.name, ws, T));
  });

  it(`${ASYNC_RUNS} random cosignature lines of a known witness: refused with E_LOG_NOTE / E_BAD_SIGNATURE, never accepted`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 120 }),
          fc
            .tuple(
              fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
              fc.uint8Array({ minLength: 64, maxLength: 64 }),
            )
            .map(([t, sig]) => {
              const b = new Uint8Array(72);
              new DataView(b.buffer).setBigUint64(0, t, false);
              b.set(sig, 8);
              return b;
            }),
        ),
        async (signature) => {
          const r = await verifies(['E_LOG_NOTE', 'E_BAD_SIGNATURE'], () =>
            verifyCosignature(cp, { name: wk.name, keyId: wk.keyId, signature }, wk),
          );
          assert.ok(r instanceof HearthError, 'a random cosignature verified');
        },
      ),
      { numRuns: ASYNC_RUNS },
    );
  });

  it(`${ASYNC_RUNS} mutated cosigned notes: refused, or the same checkpoint with only the genuine cosignature counted`, async () => {
    const codes = [
      'E_LOG_NOTE',
      'E_LOG_CHECKPOINT',
      'E_TOO_LARGE',
      'E_BAD_SIGNATURE',
      'E_WRONG_SIGNER',
      'E_BAD_BINDING',
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(textInputs(fc.constant(cosigned)), fc.constant(concat(BOM, utf8(cosigned)))),
        async (input) => {
          const r = await verifies(codes, () => openCosigned(input, O, s.publicKey, [wk]));
          if (r instanceof HearthError) return;
          assert.deepEqual(r.checkpoint, cp);
          for (const c of r.cosignatures) assert.equal(c.time, T);
          const only = await verifies(codes, () => openCheckpoint(input, O, s.publicKey));
          assert.deepEqual(only, cp);
        },
      ),
      { numRuns: ASYNC_RUNS * 4 },
    );
  });

  it(`${ASYNC_RUNS} mutated updates through the viewer's LogMonitor: a verdict, never an exception; ok only for what the device signed`, async () => {
    const entries = await l.fetch(2);
    const honest: LogUpdate = {
      checkpoint: cosigned,
      consistency: await l.consistencyProof(2),
      entries,
    };
    const state = await l.checkpoint(2);
    const honestEntries = entries.entries.map(hex);
    const ed = (b: Uint8Array, at: number, v: number) => {
      const c = b.slice();
      if (c.length > 0) flip(c, at, v);
      return c;
    };
    await fc.assert(
      fc.asyncProperty(fc.nat(5), fc.nat(), fc.nat(255), editsArb, async (what, at, v, edits) => {
        const e = honest.entries!;
        const u: LogUpdate =
          what === 0
            ? { ...honest, checkpoint: mutate(cosigned, edits) }
            : what === 1
              ? {
                  ...honest,
                  consistency: honest.consistency.map((h, i) =>
                    i === at % honest.consistency.length ? ed(h, at, v) : h,
                  ),
                }
              : what === 2
                ? {
                    ...honest,
                    entries: {
                      ...e,
                      entries: e.entries.map((x, i) => (i === at % e.entries.length ? ed(x, at >> 3, v) : x)),
                    },
                  }
                : what === 3
                  ? {
                      ...honest,
                      entries: {
                        ...e,
                        proofs: e.proofs.map((p, i) =>
                          i === at % e.proofs.length ? p.map((h, j) => (j === 0 ? ed(h, at, v) : h)) : p,
                        ),
                      },
                    }
                  : what === 4
                    ? { ...honest, entries: { ...e, start: e.start + ((at % 5) - 2) } }
                    : { ...honest, witnessed: [{ note: mutate(cosigned, edits), consistency: [] }] };
        const m = new LogMonitor();
        m.addDevice('fuzz', s.publicKey, [wk], state);
        const verdict = await m.update('fuzz', u);
        if (!verdict.ok) {
          assert.ok(isErrorCode(verdict.tampered));
          assert.equal(m.checkpoint('fuzz'), state);
          return;
        }
        assert.deepEqual(verdict.checkpoint, cp);
        assert.deepEqual(u.entries!.entries.map(hex), honestEntries);
      }),
      { numRuns: ASYNC_RUNS },
    );
  });

  it(`${ASYNC_RUNS} mutated pages read again (LogMonitor.read): refused, or exactly the log's entries at those indices`, async () => {
    const page = await l.fetch(0);
    const all = page.entries.map(hex);
    await fc.assert(
      fc.asyncProperty(
        fc.nat(3),
        fc.nat(),
        fc.nat(255),
        fc.integer({ min: -2, max: 6 }),
        async (what, at, v, start) => {
          const i = at % page.entries.length;
          const ed = (b: Uint8Array) => {
            const c = b.slice();
            flip(c, at >> 3, v);
            return c;
          };
          const f =
            what === 0
              ? { ...page, entries: page.entries.map((x, j) => (j === i ? ed(x) : x)) }
              : what === 1
                ? {
                    ...page,
                    proofs: page.proofs.map((p, j) =>
                      j === i && p.length > 0 ? [ed(p[0]!), ...p.slice(1)] : p,
                    ),
                  }
                : what === 2
                  ? { ...page, start }
                  : { start, entries: page.entries.slice(i), proofs: page.proofs.slice(i) };
          const m = new LogMonitor();
          m.addDevice('fuzz', s.publicKey, [], cp);
          const r = await m.read('fuzz', f);
          if (!r.ok) {
            assert.ok(isErrorCode(r.tampered));
            return;
          }
          assert.deepEqual(f.entries.map(hex), all.slice(f.start, f.start + f.entries.length));
        },
      ),
      { numRuns: ASYNC_RUNS },
    );
  });
});
