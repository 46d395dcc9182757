/**
 * The viewer's reader key (store/reader-key.ts) and opening of small sealed blobs (clips/open.ts,
 * clips/latest.ts) with real keys and real sealed bytes: persisted and signed; verified in full
 * before use; every check that an attacker could make fail is reported as an attack.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  decodeReaderKey,
  encodeId,
  openBlob,
  type UserKeyText,
  utf8,
  verifyReaderKey,
  WebCryptoSigner,
} from '@hearth/protocol';
import { latestPictures } from '../src/clips/latest.js';
import { type BlobContext, describeFailure, openSmallBlob } from '../src/clips/open.js';
import { HOUR_MS } from '../src/core/timeline.js';
import { loadOrCreateReaderKey, type ReaderKeyHandle } from '../src/store/reader-key.js';
import { device, EVENT_KIND, mapApi, type Stored, seal } from './fixtures/blobs.js';

function keysDb() {
  const rows = new Map<IDBValidKey, unknown>();
  return {
    rows,
    get: async <T>(_s: string, k: IDBValidKey) => rows.get(k) as T | undefined,
    add: async (_s: string, v: unknown, k?: IDBValidKey) => {
      if (rows.has(k!)) throw new Error('ConstraintError');
      rows.set(k!, v);
    },
    put: async (_s: string, v: unknown, k?: IDBValidKey) => void rows.set(k!, v),
  };
}

let me: { signer: WebCryptoSigner; keyText: UserKeyText };
let rk: ReaderKeyHandle;
before(async () => {
  const signer = await WebCryptoSigner.generate();
  me = { signer, keyText: encodeId('userKey', signer.publicKey) as UserKeyText };
  rk = (await loadOrCreateReaderKey(keysDb(), me))!;
});

describe('reader key', () => {
  it('is X25519, non-extractable, signed by the identity, and stays the same across loads', async () => {
    const db = keysDb();
    const a = (await loadOrCreateReaderKey(db, me))!;
    assert.equal(a.extractable, false);
    assert.equal(a.reader.x25519.privateKey.extractable, false);
    assert.equal(a.reader.x25519.privateKey.algorithm.name, 'X25519');
    const parsed = decodeReaderKey(a.rk);
    await verifyReaderKey(parsed, me.keyText);
    assert.deepEqual(parsed.x25519, a.reader.x25519.publicKey);
    const b = (await loadOrCreateReaderKey(db, me))!;
    assert.equal(b.rk, a.rk);
    assert.equal(db.rows.size, 1);
  });
  it('remembers which devices stored it', async () => {
    const db = keysDb();
    const a = (await loadOrCreateReaderKey(db, me))!;
    assert.equal(a.acked('hdid_x'), false);
    await a.markAcked('hdid_x');
    assert.equal((await loadOrCreateReaderKey(db, me))!.acked('hdid_x'), true);
  });
  it('a second tab that lost the race uses the winner’s key', async () => {
    const db = keysDb();
    const first = (await loadOrCreateReaderKey(db, me))!;
    // The other tab read "no key" before the first one stored its key; its `add` then fails.
    let reads = 0;
    const racing = {
      ...db,
      get: <T>(s: string, k: IDBValidKey) => (reads++ === 0 ? Promise.resolve(undefined) : db.get<T>(s, k)),
    };
    const second = (await loadOrCreateReaderKey(racing, me))!;
    assert.equal(second.rk, first.rk);
  });
});

describe('opening small blobs', () => {
  const T = 1_765_000_000_000;
  const record = (o: Record<string, unknown>) =>
    utf8(
      JSON.stringify({ v: 1, type: 'motion', cam: 'door', t: T, t1: T + 5000, thumb: btoa('thumb'), ...o }),
    );
  let dev: Awaited<ReturnType<typeof device>>;
  let ctx: (store: Map<string, Stored>) => BlobContext;
  before(async () => {
    dev = await device();
    ctx = (store) => ({
      api: mapApi(store),
      dev: dev.id,
      pinnedDeviceKey: dev.signer.publicKey,
      reader: rk.reader,
    });
  });
  const attackCode = async (p: Promise<unknown>) => {
    const f = describeFailure(
      await p.then(
        () => assert.fail('opened'),
        (e) => e,
      ),
    );
    return [f.code, f.attack];
  };

  it('opens a record sealed to our reader key, with its metadata', async () => {
    const s = await seal(dev, rk.rk, { kind: EVENT_KIND, camera: 'door', t0: T, plaintext: record({}) });
    const r = await openSmallBlob(ctx(new Map([[s.entry.id, s]])), s.entry.id, 'event');
    assert.equal(JSON.parse(new TextDecoder().decode(r.plaintext)).cam, 'door');
    assert.deepEqual(r.meta, { cam: 'door', t0: T, t1: T + 10_000 });
  });
  it('attack: a flipped byte in a chunk → E_CLIP_CHUNK, never the plaintext', async () => {
    const s = await seal(dev, rk.rk, { kind: EVENT_KIND, camera: 'door', t0: T, plaintext: record({}) });
    s.bytes[s.bytes.length - 20]! ^= 1;
    assert.deepEqual(await attackCode(openSmallBlob(ctx(new Map([[s.entry.id, s]])), s.entry.id, 'event')), [
      'E_CLIP_CHUNK',
      true,
    ]);
  });
  it('attack: a blob signed by another device key → E_WRONG_SIGNER', async () => {
    const other = await device();
    const s = await seal(other, rk.rk, { kind: EVENT_KIND, camera: 'door', t0: T, plaintext: record({}) });
    assert.deepEqual(await attackCode(openSmallBlob(ctx(new Map([[s.entry.id, s]])), s.entry.id, 'event')), [
      'E_WRONG_SIGNER',
      true,
    ]);
  });
  it('attack: the server serves another of the device’s blobs under a listed ID → E_BAD_BINDING', async () => {
    const a = await seal(dev, rk.rk, { kind: EVENT_KIND, camera: 'door', t0: T, plaintext: record({}) });
    const b = await seal(dev, rk.rk, {
      kind: EVENT_KIND,
      camera: 'door',
      t0: T,
      plaintext: record({ type: 'sound' }),
    });
    const store = new Map([[a.entry.id, { ...b, entry: a.entry }]]);
    assert.deepEqual(await attackCode(openSmallBlob(ctx(store), a.entry.id, 'event')), [
      'E_BAD_BINDING',
      true,
    ]);
    // Control: the swapped blob itself is genuine (protocol opens it); only the ID binding catches it.
    await openBlob(b.bytes, { pinnedDeviceKey: dev.signer.publicKey, deviceId: dev.id, reader: rk.reader });
    // …or a snapshot where an event record was listed.
    const snap = await seal(dev, rk.rk, {
      kind: 'snapshot',
      camera: 'door',
      t0: T,
      plaintext: new Uint8Array(9),
    });
    assert.deepEqual(
      await attackCode(openSmallBlob(ctx(new Map([[snap.entry.id, snap]])), snap.entry.id, 'event')),
      ['E_BAD_BINDING', true],
    );
  });
  it('a blob not sealed to us is "not shared", not an attack', async () => {
    const stranger = await loadOrCreateReaderKey(keysDb(), me);
    const s = await seal(dev, stranger!.rk, {
      kind: EVENT_KIND,
      camera: 'door',
      t0: T,
      plaintext: record({}),
    });
    assert.deepEqual(await attackCode(openSmallBlob(ctx(new Map([[s.entry.id, s]])), s.entry.id, 'event')), [
      'E_NOT_RECIPIENT',
      false,
    ]);
  });
  it('home tiles: the newest verified record per camera, its snapshot when it has one', async () => {
    const store = new Map<string, Stored>();
    const put = (s: Stored) => store.set(s.entry.id, s);
    const now = T + 2 * HOUR_MS;
    const snap = await seal(dev, rk.rk, {
      kind: 'snapshot',
      camera: 'door',
      t0: T,
      plaintext: utf8('SNAP-door'),
    });
    put(snap);
    put(
      await seal(dev, rk.rk, {
        kind: EVENT_KIND,
        camera: 'door',
        t0: T - HOUR_MS,
        plaintext: record({ t: T - HOUR_MS, t1: T - HOUR_MS, thumb: btoa('old') }),
      }),
    );
    put(
      await seal(dev, rk.rk, {
        kind: EVENT_KIND,
        camera: 'door',
        t0: T,
        plaintext: record({ snap: snap.entry.id }),
      }),
    );
    put(
      await seal(dev, rk.rk, {
        kind: EVENT_KIND,
        camera: 'garden',
        t0: T,
        plaintext: record({ cam: 'garden', thumb: btoa('garden') }),
      }),
    );
    // A forged newest record for the garden (tampered): ignored, the verified one is used.
    const forged = await seal(dev, rk.rk, {
      kind: EVENT_KIND,
      camera: 'garden',
      t0: T + HOUR_MS,
      plaintext: record({ cam: 'garden', t: T + HOUR_MS, t1: T + HOUR_MS, thumb: btoa('forged') }),
    });
    forged.bytes[forged.bytes.length - 1]! ^= 1;
    put(forged);
    const fromB64 = (s: string) => utf8(atob(s));
    const m = await latestPictures(ctx(store), ['door', 'garden', 'yard'], now, fromB64);
    assert.deepEqual(Object.fromEntries([...m].map(([k, v]) => [k, new TextDecoder().decode(v)])), {
      door: 'SNAP-door',
      garden: 'garden',
    });
  });
});
