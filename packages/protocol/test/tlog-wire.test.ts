// The access log on the wire (tlog/wire.ts): `log/get` / `log/update` through messages.ts, the
// decoder into the monitor's LogUpdate, and the gossip bodies. Fuzzed: only ProtocolError, of the
// decoder's own codes; what is accepted round-trips.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { b64u } from '../src/bytes.js';
import { WebCryptoSigner } from '../src/crypto/primitives.js';
import { deviceIdFromKey, encodeId } from '../src/ids.js';
import { decodeDeviceMessage, decodeViewerMessage } from '../src/messages.js';
import {
  addCosignature,
  cosign,
  cosignerKey,
  decodeCosignedBody,
  decodeCosignedList,
  decodeLogUpdateWire,
  encodeLogEntry,
  encodeProofWire,
  LogMonitor,
  type LogUpdateWire,
  logOrigin,
  MAX_COSIGNED_NOTE_BYTES,
  MAX_LOG_PAGE,
  MemoryLog,
  parseCheckpoint,
  parseNote,
} from '../src/tlog/index.js';
import { editsArb, mutate, RUNS } from './fuzz-helpers.js';

const ASYNC_RUNS = Math.max(200, Math.floor(RUNS / 200));

async function world(n = 5) {
  const signer = await WebCryptoSigner.generate();
  const deviceId = deviceIdFromKey(signer.publicKey);
  const log = new MemoryLog(logOrigin(deviceId), signer);
  for (let i = 0; i < n; i++)
    await log.append(encodeLogEntry({ v: 1, t: i, k: 'alert', alert: 'possible-attack', code: 'E_REPLAY' }));
  const wire = async (from: number, size = log.size, wit: number[] = []): Promise<LogUpdateWire> => {
    const f = await log.fetch(from, size);
    return {
      t: 'log/update',
      cp: await log.signedCheckpoint(size),
      cons: encodeProofWire(await log.consistencyProof(from, size)),
      start: from,
      entries: f.entries.map((e) => b64u(e)),
      proofs: f.proofs.map(encodeProofWire),
      ...(wit.length
        ? {
            wcons: await Promise.all(
              wit.map(async (w) =>
                encodeProofWire(await log.consistencyProof(Math.min(w, size), Math.max(w, size))),
              ),
            ),
          }
        : {}),
    };
  };
  return { signer, deviceId, log, wire };
}

const CODES = new Set(['E_TOO_LARGE', 'E_DECODE', 'E_SCHEMA']);

describe('log messages', () => {
  it('log/get and log/update pass messages.ts in their direction only; limits hold', async () => {
    const w = await world();
    assert.ok(decodeViewerMessage({ t: 'log/get', from: 0 }).ok);
    assert.ok(decodeViewerMessage({ t: 'log/get', from: 3, max: MAX_LOG_PAGE, wit: [1, 2] }).ok);
    assert.ok(!decodeViewerMessage({ t: 'log/get', from: -1 }).ok);
    assert.ok(!decodeViewerMessage({ t: 'log/get', from: 0, max: MAX_LOG_PAGE + 1 }).ok);
    assert.ok(!decodeViewerMessage({ t: 'log/get', from: 0, wit: Array(17).fill(1) }).ok);
    assert.ok(!decodeViewerMessage({ t: 'log/get', from: 0, extra: 1 }).ok);
    const u = await w.wire(0);
    assert.ok(decodeDeviceMessage(u).ok);
    assert.ok(decodeDeviceMessage({ t: 'log/error', code: 'E_NO_GRANT' }).ok);
    assert.equal(decodeViewerMessage(u).ok, false, 'log/update is not a viewer message');
    assert.equal(decodeDeviceMessage({ t: 'log/get', from: 0 }).ok, false);
  });

  it('decodeLogUpdateWire feeds the monitor: a whole log, then pages, then a witness', async () => {
    const w = await world(9);
    const m = new LogMonitor();
    m.addDevice(w.deviceId, w.signer.publicKey);
    const v1 = await m.update(w.deviceId, decodeLogUpdateWire(await w.wire(0, 4)));
    assert.ok(v1.ok && v1.size === 4 && v1.entries.length === 4);
    const v2 = await m.update(w.deviceId, decodeLogUpdateWire(JSON.stringify(await w.wire(4, 9))));
    assert.ok(v2.ok && v2.size === 9);
    // A witness's cosigned note at size 6 with its consistency proof to 9.
    const other = await WebCryptoSigner.generate();
    const name = encodeId('userKey', other.publicKey);
    const note6 = await w.log.signedCheckpoint(6);
    const cp6 = parseCheckpoint(parseNote(note6).text);
    const cosigned = addCosignature(note6, await cosign(cp6, name, other, 1));
    const m2 = new LogMonitor();
    m2.addDevice(w.deviceId, w.signer.publicKey, [await cosignerKey(name, other.publicKey)]);
    const v3 = await m2.update(w.deviceId, decodeLogUpdateWire(await w.wire(0, 9, [6]), [cosigned]));
    assert.ok(v3.ok, JSON.stringify(v3));
    // A missing wcons is an empty proof: not a valid consistency between 6 and 9.
    const u = await w.wire(0, 9);
    const m3 = new LogMonitor();
    m3.addDevice(w.deviceId, w.signer.publicKey);
    const v4 = await m3.update(w.deviceId, decodeLogUpdateWire(u, [cosigned]));
    assert.ok(!v4.ok && v4.tampered === 'E_LOG_FORK');
  });

  it('decodeLogUpdateWire refuses non-canonical hashes and entries, and proofs not one per entry', async () => {
    const w = await world(3);
    const u = await w.wire(0);
    const expect = (m: unknown, code: string) =>
      assert.throws(
        () => decodeLogUpdateWire(m),
        (e: Error & { code?: string }) => e.code === code,
      );
    expect({ ...u, proofs: u.proofs.slice(1) }, 'E_SCHEMA');
    expect({ ...u, cons: ['A'.repeat(42) + 'B'] }, 'E_DECODE'); // non-canonical last character
    expect({ ...u, entries: [`${u.entries[0]}=`, ...u.entries.slice(1)] }, 'E_DECODE');
    expect({ ...u, extra: 1 }, 'E_SCHEMA');
    expect('x'.repeat(70 * 1024), 'E_TOO_LARGE');
    expect({ ...u, cp: 'x'.repeat(70 * 1024) }, 'E_TOO_LARGE');
    assert.ok(decodeLogUpdateWire(u));
  });

  it(`fuzz: decodeLogUpdateWire throws only ProtocolError of its codes (${RUNS} inputs)`, async () => {
    const w = await world(3);
    const u = JSON.stringify(await w.wire(1));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.json({ maxDepth: 3 }),
          fc.anything(),
          fc.tuple(fc.constant(u), editsArb).map(([s, e]) => mutate(s, e)),
          fc.tuple(fc.constant(u), editsArb).map(([s, e]) => {
            try {
              return JSON.parse(mutate(s, e)) as unknown;
            } catch {
              return s;
            }
          }),
        ),
        (input) => {
          try {
            decodeLogUpdateWire(input);
          } catch (e) {
            assert.ok(CODES.has((e as { code?: string }).code ?? ''), String(e));
            assert.equal((e as Error).constructor.name, 'ProtocolError');
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it(`fuzz: mutated updates never pass the monitor as the honest one with other entries (${ASYNC_RUNS} inputs)`, async () => {
    const w = await world(4);
    const honest = await w.wire(0);
    const honestEntries = JSON.stringify(honest.entries);
    await fc.assert(
      fc.asyncProperty(editsArb, async (edits) => {
        let m: unknown;
        try {
          m = JSON.parse(mutate(JSON.stringify(honest), edits));
        } catch {
          return;
        }
        let u: ReturnType<typeof decodeLogUpdateWire>;
        try {
          u = decodeLogUpdateWire(m);
        } catch (e) {
          assert.ok(CODES.has((e as { code?: string }).code ?? ''));
          return;
        }
        const mon = new LogMonitor();
        mon.addDevice(w.deviceId, w.signer.publicKey);
        const v = await mon.update(w.deviceId, u);
        if (v.ok) assert.equal(JSON.stringify((m as LogUpdateWire).entries), honestEntries);
      }),
      { numRuns: ASYNC_RUNS },
    );
  });
});

describe('gossip bodies', () => {
  it('decodeCosignedBody / decodeCosignedList: strict, with limits', async () => {
    const s = await WebCryptoSigner.generate();
    const body = {
      note: 'n\n\n— x AAAA\n',
      key: encodeId('userKey', s.publicKey),
      dk: encodeId('deviceKey', s.publicKey),
    };
    assert.deepEqual(decodeCosignedBody(JSON.stringify(body)), body);
    for (const bad of [
      { ...body, key: body.dk },
      { ...body, dk: body.key },
      { ...body, extra: 1 },
      { ...body, note: 'x'.repeat(MAX_COSIGNED_NOTE_BYTES + 1) },
    ])
      assert.throws(
        () => decodeCosignedBody(JSON.stringify(bad)),
        (e: Error & { code?: string }) => ['E_SCHEMA', 'E_TOO_LARGE'].includes(e.code ?? ''),
      );
    assert.deepEqual(decodeCosignedList('{"list":[{"note":"a"}]}'), { list: [{ note: 'a' }] });
    assert.throws(() => decodeCosignedList(JSON.stringify({ list: Array(17).fill({ note: 'a' }) })));
  });

  it(`fuzz: the gossip decoders throw only ProtocolError (${RUNS} inputs)`, async () => {
    const s = await WebCryptoSigner.generate();
    const valid = JSON.stringify({
      note: 'n\n',
      key: encodeId('userKey', s.publicKey),
      dk: encodeId('deviceKey', s.publicKey),
    });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.anything(),
          fc.tuple(fc.constant(valid), editsArb).map(([t, e]) => mutate(t, e)),
          fc.tuple(fc.constant('{"list":[{"note":"a"}]}'), editsArb).map(([t, e]) => mutate(t, e)),
        ),
        (input) => {
          for (const f of [decodeCosignedBody, decodeCosignedList])
            try {
              f(input);
            } catch (e) {
              assert.equal((e as Error).constructor.name, 'ProtocolError', String(e));
            }
        },
      ),
      { numRuns: Math.floor(RUNS / 2) },
    );
  });
});
