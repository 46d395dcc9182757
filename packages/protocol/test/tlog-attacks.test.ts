/**
 * Access-log attacks (S9): a hostile device or server, each caught with a typed error, each with a
 * control that shows the attack input is real (a broken verifier accepts it). Plus the Go
 * golang.org/x/mod/sumdb/note vector (PeterNeumann) and a transparency-dev cosignature/v1 key ID.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { b64std, fromB64std, hex, utf8 } from '../src/bytes.js';
import { ed25519Verify, WebCryptoSigner } from '../src/crypto/primitives.js';
import { VerificationError } from '../src/errors.js';
import {
  type CosignerKey,
  cosign,
  cosignerKey,
  cosignerKeyId,
  encodeLogEntry,
  LOG_CHECKS,
  type LogChecks,
  LogMonitor,
  type LogUpdate,
  type LogVerdict,
  LogWitness,
  logOrigin,
  MemoryLog,
  openCosigned,
  parseNote,
  parseVerifierKey,
  signNote,
  verifyConsistency,
} from '../src/tlog/index.js';

const code = (c: string) => (e: unknown) => e instanceof VerificationError && e.code === c;
const O = 'hearth/dev1';

async function log(n: number, signer?: WebCryptoSigner, tag = 'e') {
  const s = signer ?? (await WebCryptoSigner.generate());
  const l = new MemoryLog(O, s);
  for (let i = 0; i < n; i++) await l.append(utf8(`${tag}${i}`));
  return { l, s };
}

describe('tlog attacks', () => {
  it('fork: a larger tree not consistent is E_LOG_FORK (control: skipping consistency accepts)', async () => {
    const { l, s } = await log(4);
    const w = new LogWitness(O, s.publicKey);
    await w.advance(await l.signedCheckpoint(), []);
    const { l: other } = await log(6, s, 'x');
    const proof = await other.consistencyProof(4);
    await assert.rejects(w.advance(await other.signedCheckpoint(), proof), code('E_LOG_FORK'));
    const old = w.checkpoint!;
    const next = await other.checkpoint();
    assert.equal(await verifyConsistency(old.size, next.size, old.root, next.root, proof), false);
    const broken = new LogWitness(O, s.publicKey); // no prior state: consistency never checked
    await broken.advance(await other.signedCheckpoint(), []);
  });
  it('rollback: an older checkpoint is E_LOG_ROLLBACK (control: a fresh witness accepts it)', async () => {
    const { l, s } = await log(5);
    const w = new LogWitness(O, s.publicKey);
    await w.advance(await l.signedCheckpoint(), []);
    await assert.rejects(w.advance(await l.signedCheckpoint(3), []), code('E_LOG_ROLLBACK'));
    await new LogWitness(O, s.publicKey).advance(await l.signedCheckpoint(3), []);
  });
  it('dropped / altered entry is E_LOG_PROOF (control: the honest range passes)', async () => {
    const { l, s } = await log(6);
    const f = await l.fetch(0);
    await new LogWitness(O, s.publicKey).advance(await l.signedCheckpoint(), [], f);
    const dropped = { start: 0, entries: f.entries.slice(1), proofs: f.proofs.slice(1) };
    await assert.rejects(
      new LogWitness(O, s.publicKey).advance(await l.signedCheckpoint(), [], dropped),
      code('E_LOG_PROOF'),
    );
    const altered = { ...f, entries: [utf8('zz'), ...f.entries.slice(1)] };
    await assert.rejects(
      new LogWitness(O, s.publicKey).advance(await l.signedCheckpoint(), [], altered),
      code('E_LOG_PROOF'),
    );
  });
  it('checkpoint of another key is E_WRONG_SIGNER (control: the right key accepts)', async () => {
    const { l } = await log(2);
    const other = await WebCryptoSigner.generate();
    await assert.rejects(
      new LogWitness(O, other.publicKey).advance(await l.signedCheckpoint(), []),
      code('E_WRONG_SIGNER'),
    );
  });
  it('forged / replayed cosignature is E_BAD_SIGNATURE (control: genuine one counts)', async () => {
    const { l, s } = await log(3);
    const ws = await WebCryptoSigner.generate();
    const wk = await cosignerKey('hearth-witness/v1', ws.publicKey);
    const w = new LogWitness(O, s.publicKey);
    const note = await w.advanceAndCosign(
      await l.signedCheckpoint(),
      [],
      undefined,
      { name: wk.name, signer: ws },
      1700000000,
    );
    const ok = await openCosigned(note, O, s.publicKey, [wk]);
    assert.equal(ok.cosignatures.length, 1);
    assert.equal(ok.cosignatures[0]!.time, 1700000000);
    assert.equal((await openCosigned(note, O, s.publicKey, [])).cosignatures.length, 0);
    // replay onto a later checkpoint
    await l.append(utf8('more'));
    const line = note.slice(note.lastIndexOf('\u2014'));
    const replay = (await l.signedCheckpoint()) + line;
    await assert.rejects(openCosigned(replay, O, s.publicKey, [wk]), code('E_BAD_SIGNATURE'));
    // forged: another key's signature under the witness's name and key ID
    const forger = await WebCryptoSigner.generate();
    const fl = await cosign(await l.checkpoint(), wk.name, forger, 1);
    const raw = fromB64std(fl.trim().split(' ')[2]!);
    new DataView(raw.buffer).setUint32(0, wk.keyId, false);
    const forged = `${await l.signedCheckpoint()}\u2014 ${wk.name} ${b64std(raw)}\n`;
    await assert.rejects(openCosigned(forged, O, s.publicKey, [wk]), code('E_BAD_SIGNATURE'));
    // control: the forger's line does verify under the forger's own key
    const fk = await cosignerKey(wk.name, forger.publicKey);
    const own = `${await l.signedCheckpoint()}${fl}`;
    assert.equal((await openCosigned(own, O, s.publicKey, [fk])).cosignatures.length, 1);
    // control: a verifier that only matches name+key ID would count the replay
    assert.ok(parseNote(replay).signatures.some((x) => x.name === wk.name && x.keyId === wk.keyId));
  });
});

describe('tlog: Go / transparency-dev vectors', () => {
  const text =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
  const sig = 'x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=';
  it('sumdb/note PeterNeumann: key ID, signature, byte-exact signing from the Go seed', async () => {
    const v = await parseVerifierKey('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW');
    assert.equal(v.keyId, 0xc74f20a3);
    const raw = fromB64std(sig);
    assert.ok(await ed25519Verify(v.publicKey, utf8(text), raw.subarray(4)));
    assert.equal(await ed25519Verify(v.publicKey, utf8(`${text} `), raw.subarray(4)), false);
    const seed = fromB64std('AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz').subarray(1);
    const signer = await WebCryptoSigner.fromSeed(seed);
    assert.equal(
      await signNote(text, [{ name: 'PeterNeumann', signer }]),
      `${text}\n\u2014 PeterNeumann ${sig}\n`,
    );
  });
  it('transparency-dev cosignature/v1 key remora.n621.de+da77ade7 (type 0x04)', async () => {
    const k = fromB64std('BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2');
    assert.equal(k[0], 0x04);
    assert.equal(await cosignerKeyId('remora.n621.de', k.subarray(1)), 0xda77ade7);
  });
});

// ------------------------------------------------------------------ through the viewer's LogMonitor

/** A device's log of valid entries (the monitor decodes them), as the server relays it. */
async function deviceLog(deviceId: string, n: number, signer?: WebCryptoSigner, tag = 'f') {
  const s = signer ?? (await WebCryptoSigner.generate());
  const l = new MemoryLog(logOrigin(deviceId), s);
  for (let i = 0; i < n; i++)
    await l.append(
      encodeLogEntry({ v: 1, t: 1_700_000_000_000 + i, k: 'config/change', field: `${tag}${i}` }),
    );
  return { l, s };
}

/** The honest update from size `from` to size `to` of `l`. */
async function honest(l: MemoryLog, from: number, to = l.size): Promise<LogUpdate> {
  return {
    checkpoint: await l.signedCheckpoint(to),
    consistency: await l.consistencyProof(from, to),
    entries: await l.fetch(from, to),
  };
}

const tampered = (v: LogVerdict, c: string) => {
  assert.equal(v.ok, false, `expected ${c}, got ok`);
  if (!v.ok) assert.equal(v.tampered, c, v.reason);
  return v;
};
const ok = (v: LogVerdict, size: number) => {
  assert.ok(v.ok, v.ok ? '' : `${v.tampered}: ${v.reason}`);
  if (v.ok) assert.equal(v.size, size);
  return v as Extract<LogVerdict, { ok: true }>;
};

/** The real checks with one deliberately broken (the controls). */
const broken = (which: keyof LogChecks): LogChecks => ({ ...LOG_CHECKS, [which]: async () => {} });

const D = 'dev1';

/** A monitor of `D` that has verified `l` at `size`. */
async function monitorAt(
  l: MemoryLog,
  s: WebCryptoSigner,
  size: number,
  checks?: LogChecks,
  w: CosignerKey[] = [],
) {
  const m = new LogMonitor(checks);
  m.addDevice(D, s.publicKey, w);
  ok(await m.update(D, await honest(l, 0, size)), size);
  return m;
}

describe('tlog attacks: a hostile server relaying the log to the viewer (LogMonitor)', () => {
  it('honest updates pass: first contact, then an extension with its new entries', async () => {
    const { l, s } = await deviceLog(D, 7);
    const m = await monitorAt(l, s, 4);
    const v = ok(await m.update(D, await honest(l, 4)), 7);
    assert.deepEqual(
      v.entries.map((e) => (e.k === 'config/change' ? e.field : '')),
      ['f4', 'f5', 'f6'],
    );
    assert.deepEqual(v.verifiedBy, []);
    assert.equal(m.checkpoint(D)!.size, 7);
    assert.deepEqual(m.alarms(D), []);
  });

  it('same-size fork: another tree of equal size signed by the device key is E_LOG_FORK (control: without the check it is accepted)', async () => {
    const { l, s } = await deviceLog(D, 4);
    const { l: fork } = await deviceLog(D, 4, s, 'x'); // the device key signed a second history
    const m = await monitorAt(l, s, 4);
    const v = tampered(
      await m.update(D, { checkpoint: await fork.signedCheckpoint(), consistency: [] }),
      'E_LOG_FORK',
    );
    assert.equal(v.ok || v.attack, true);
    assert.equal(hex(m.checkpoint(D)!.root), hex((await l.checkpoint()).root), 'state unchanged');
    const weak = await monitorAt(l, s, 4, broken('advance'));
    ok(await weak.update(D, { checkpoint: await fork.signedCheckpoint(), consistency: [] }), 4);
  });

  it('equivocation seen by a witness: a fresh viewer shown tree B while another device cosigned tree A of the same size is E_LOG_FORK (controls: no witness, or no comparison, accepts B)', async () => {
    const { l, s } = await deviceLog(D, 4);
    const { l: fork } = await deviceLog(D, 4, s, 'x');
    const ws = await WebCryptoSigner.generate();
    const wk = await cosignerKey('hearth-viewer/phone', ws.publicKey);
    // The owner's phone verified and cosigned tree A.
    const phone = new LogWitness(logOrigin(D), s.publicKey);
    const cosignedA = await phone.advanceAndCosign(
      await l.signedCheckpoint(),
      [],
      undefined,
      { name: wk.name, signer: ws },
      1_700_000_000,
    );
    // The server shows the owner's laptop (first contact) tree B, and relays the phone's gossip.
    const b: LogUpdate = {
      checkpoint: await fork.signedCheckpoint(),
      consistency: [],
      entries: await fork.fetch(0),
    };
    const laptop = new LogMonitor();
    laptop.addDevice(D, s.publicKey, [wk]);
    tampered(
      await laptop.update(D, { ...b, witnessed: [{ note: cosignedA, consistency: [] }] }),
      'E_LOG_FORK',
    );
    assert.equal(laptop.checkpoint(D), undefined);
    // controls: without the gossip B is accepted (trust on first use); with the comparison broken too
    const alone = new LogMonitor();
    alone.addDevice(D, s.publicKey, [wk]);
    ok(await alone.update(D, b), 4);
    const weak = new LogMonitor(broken('compare'));
    weak.addDevice(D, s.publicKey, [wk]);
    ok(await weak.update(D, { ...b, witnessed: [{ note: cosignedA, consistency: [] }] }), 4);
    // honest: the phone's cosignature on the same tree vouches for it
    const fine = new LogMonitor();
    fine.addDevice(D, s.publicKey, [wk]);
    const v = ok(
      await fine.update(D, { ...(await honest(l, 0)), witnessed: [{ note: cosignedA, consistency: [] }] }),
      4,
    );
    assert.deepEqual(v.verifiedBy, [wk.name]);
  });

  it('equivocation across sizes: the witness cosigned a larger tree of another history is E_LOG_FORK (control: the real extension is verifiedBy the witness)', async () => {
    const { l, s } = await deviceLog(D, 6);
    const { l: fork } = await deviceLog(D, 6, s, 'x');
    const ws = await WebCryptoSigner.generate();
    const wk = await cosignerKey('hearth-viewer/phone', ws.publicKey);
    const cosign6 = async (log: MemoryLog) =>
      new LogWitness(logOrigin(D), s.publicKey).advanceAndCosign(
        await log.signedCheckpoint(),
        [],
        undefined,
        { name: wk.name, signer: ws },
        1,
      );
    const m = new LogMonitor();
    m.addDevice(D, s.publicKey, [wk]);
    // Viewer is shown fork@4; the witness saw l@6. The best the server can offer is fork's own proof.
    const u = {
      ...(await honest(fork, 0, 4)),
      witnessed: [{ note: await cosign6(l), consistency: await fork.consistencyProof(4, 6) }],
    };
    tampered(await m.update(D, u), 'E_LOG_FORK');
    const good = new LogMonitor();
    good.addDevice(D, s.publicKey, [wk]);
    const v = ok(
      await good.update(D, {
        ...(await honest(l, 0, 4)),
        witnessed: [{ note: await cosign6(l), consistency: await l.consistencyProof(4, 6) }],
      }),
      4,
    );
    assert.deepEqual(v.verifiedBy, [wk.name]);
  });

  it('reordered entries are E_LOG_PROOF (control: without the inclusion check the reordering is shown)', async () => {
    const { l, s } = await deviceLog(D, 8);
    const m = await monitorAt(l, s, 3);
    const h = await honest(l, 3);
    const e = [...h.entries!.entries];
    [e[1], e[2]] = [e[2]!, e[1]!];
    const swapped = { ...h, entries: { ...h.entries!, entries: e } };
    tampered(await m.update(D, swapped), 'E_LOG_PROOF');
    const p = [...h.entries!.proofs];
    [p[1], p[2]] = [p[2]!, p[1]!];
    tampered(await m.update(D, { ...h, entries: { start: 3, entries: e, proofs: p } }), 'E_LOG_PROOF');
    const weak = await monitorAt(l, s, 3, broken('entries'));
    const v = ok(await weak.update(D, swapped), 8);
    assert.deepEqual(
      v.entries.map((x) => (x.k === 'config/change' ? x.field : '')),
      ['f3', 'f5', 'f4', 'f6', 'f7'],
    );
    ok(await m.update(D, h), 8);
  });

  it('an inserted entry is E_LOG_PROOF, added or in place of one (control: without the check it is shown)', async () => {
    const { l, s } = await deviceLog(D, 6);
    const m = await monitorAt(l, s, 2);
    const h = await honest(l, 2);
    const fake = encodeLogEntry({ v: 1, t: 1, k: 'config/change', field: 'planted' });
    const f = h.entries!;
    const added = {
      start: 2,
      entries: [...f.entries.slice(0, 2), fake, ...f.entries.slice(2)],
      proofs: [...f.proofs.slice(0, 2), f.proofs[1]!, ...f.proofs.slice(2)],
    };
    tampered(await m.update(D, { ...h, entries: added }), 'E_LOG_PROOF');
    const replaced = { ...f, entries: [...f.entries.slice(0, 3), fake] };
    tampered(await m.update(D, { ...h, entries: replaced }), 'E_LOG_PROOF');
    const weak = await monitorAt(l, s, 2, broken('entries'));
    assert.ok(
      ok(await weak.update(D, { ...h, entries: replaced }), 6).entries.some(
        (x) => x.k === 'config/change' && x.field === 'planted',
      ),
    );
  });

  it('a dropped entry is E_LOG_PROOF, at the end, in the middle or at the start (control: without the check it is hidden)', async () => {
    const { l, s } = await deviceLog(D, 6);
    const m = await monitorAt(l, s, 2);
    const h = await honest(l, 2);
    const f = h.entries!;
    const drop = (i: number, start = 2) => ({
      ...h,
      entries: {
        start,
        entries: f.entries.filter((_, j) => j !== i),
        proofs: f.proofs.filter((_, j) => j !== i),
      },
    });
    tampered(await m.update(D, drop(3)), 'E_LOG_PROOF');
    tampered(await m.update(D, drop(1)), 'E_LOG_PROOF');
    tampered(await m.update(D, drop(0, 3)), 'E_LOG_PROOF'); // claims the range starts after the hidden one
    const weak = await monitorAt(l, s, 2, broken('entries'));
    assert.equal(ok(await weak.update(D, drop(1)), 6).entries.length, 3);
  });

  it('rollback: an older genuine checkpoint after a newer one is E_LOG_ROLLBACK (controls: broken check or a fresh viewer accepts it)', async () => {
    const { l, s } = await deviceLog(D, 7);
    const m = await monitorAt(l, s, 7);
    const old = { checkpoint: await l.signedCheckpoint(5), consistency: [] };
    tampered(await m.update(D, old), 'E_LOG_ROLLBACK');
    assert.equal(m.checkpoint(D)!.size, 7);
    ok(await (await monitorAt(l, s, 7, broken('advance'))).update(D, old), 5);
    const fresh = new LogMonitor();
    fresh.addDevice(D, s.publicKey);
    ok(await fresh.update(D, old), 5);
  });

  it("another device's checkpoint is E_BAD_BINDING (control: the monitor of that device accepts it)", async () => {
    const { l, s } = await deviceLog(D, 3);
    const { l: l2, s: s2 } = await deviceLog('dev2', 3);
    const m = await monitorAt(l, s, 3);
    const theirs = await honest(l2, 3);
    tampered(await m.update(D, theirs), 'E_BAD_BINDING');
    // also when the device key signed it (a device with a second log): the origin decides
    const { l: same } = await deviceLog('dev2', 3, s);
    tampered(
      await m.update(D, { checkpoint: await same.signedCheckpoint(), consistency: [] }),
      'E_BAD_BINDING',
    );
    await assert.rejects(
      new LogWitness(logOrigin(D), s.publicKey).advance(await l2.signedCheckpoint(), []),
      code('E_BAD_BINDING'),
    );
    const m2 = new LogMonitor();
    m2.addDevice('dev2', s2.publicKey);
    ok(await m2.update('dev2', await honest(l2, 0)), 3);
  });

  it('a checkpoint signed by a wrong key is E_WRONG_SIGNER, a bad signature E_BAD_SIGNATURE (control: the right key accepts)', async () => {
    const { l, s } = await deviceLog(D, 3);
    const mallory = await WebCryptoSigner.generate();
    const forged = new MemoryLog(logOrigin(D), mallory);
    for (let i = 0; i < 3; i++) await forged.append(l.entry(i));
    await forged.append(encodeLogEntry({ v: 1, t: 9, k: 'config/change', field: 'planted' }));
    const m = new LogMonitor();
    m.addDevice(D, s.publicKey);
    tampered(await m.update(D, await honest(forged, 0)), 'E_WRONG_SIGNER');
    // the device's signature bytes on another text
    const real = await l.signedCheckpoint();
    const sigLine = real.slice(real.lastIndexOf('\u2014'));
    const other = (await forged.signedCheckpoint()).replace(/\u2014[^\n]*\n$/, sigLine);
    tampered(await m.update(D, { checkpoint: other, consistency: [] }), 'E_BAD_SIGNATURE');
    assert.equal(m.checkpoint(D), undefined);
    const fooled = new LogMonitor();
    fooled.addDevice(D, mallory.publicKey); // control: pinned to the key that did sign it
    ok(await fooled.update(D, await honest(forged, 0)), 4);
    ok(await m.update(D, await honest(l, 0)), 3);
  });

  it('a forged cosignature of a known witness is E_BAD_SIGNATURE (control: the genuine one counts)', async () => {
    const { l, s } = await deviceLog(D, 3);
    const ws = await WebCryptoSigner.generate();
    const wk = await cosignerKey('hearth-viewer/phone', ws.publicKey);
    const forger = await WebCryptoSigner.generate();
    const cp = await l.checkpoint();
    const line = await cosign(cp, wk.name, forger, 5);
    const raw = fromB64std(line.trim().split(' ')[2]!);
    new DataView(raw.buffer).setUint32(0, wk.keyId, false);
    const m = new LogMonitor();
    m.addDevice(D, s.publicKey, [wk]);
    tampered(
      await m.update(D, {
        checkpoint: `${await l.signedCheckpoint()}\u2014 ${wk.name} ${b64std(raw)}\n`,
        consistency: [],
      }),
      'E_BAD_SIGNATURE',
    );
    const genuine = `${await l.signedCheckpoint()}${await cosign(cp, wk.name, ws, 5)}`;
    assert.deepEqual(ok(await m.update(D, { checkpoint: genuine, consistency: [] }), 3).verifiedBy, [
      wk.name,
    ]);
  });

  it('alarms stay after a later honest update; malformed input is tampered but not an attack', async () => {
    const { l, s } = await deviceLog(D, 5);
    const m = await monitorAt(l, s, 5);
    const v = tampered(await m.update(D, { checkpoint: 'not a note', consistency: [] }), 'E_LOG_NOTE');
    assert.equal(!v.ok && v.attack, false);
    tampered(
      await m.update(D, { checkpoint: await l.signedCheckpoint(2), consistency: [] }),
      'E_LOG_ROLLBACK',
    );
    await l.append(encodeLogEntry({ v: 1, t: 2, k: 'config/change', field: 'later' }));
    ok(await m.update(D, await honest(l, 5)), 6);
    assert.deepEqual(
      m.alarms(D).map((a) => [a.tampered, a.attack]),
      [
        ['E_LOG_NOTE', false],
        ['E_LOG_ROLLBACK', true],
      ],
    );
    await assert.rejects(m.update('nobody', await honest(l, 0)), RangeError);
  });

  it("reading older entries again: any range checked against the verified checkpoint; reordered, altered or another tree's entries are E_LOG_PROOF (control: without the inclusion check they are shown)", async () => {
    const { l, s } = await deviceLog(D, 9);
    const m = await monitorAt(l, s, 9);
    const page = await l.fetch(3, 9);
    const first3 = { start: 3, entries: page.entries.slice(0, 3), proofs: page.proofs.slice(0, 3) };
    const r = await m.read(D, first3);
    assert.ok(r.ok);
    if (r.ok)
      assert.deepEqual(
        r.entries.map((e) => (e.k === 'config/change' ? e.field : '')),
        ['f3', 'f4', 'f5'],
      );
    const swapped = { ...first3, entries: [first3.entries[1]!, first3.entries[0]!, first3.entries[2]!] };
    const bad = await m.read(D, swapped);
    assert.equal(!bad.ok && bad.tampered, 'E_LOG_PROOF');
    // entries of the same size from another tree, each with its own valid proof there
    const { l: fork } = await deviceLog(D, 9, s, 'x');
    const other = await fork.fetch(3, 9);
    const r2 = await m.read(D, {
      start: 3,
      entries: other.entries.slice(0, 3),
      proofs: other.proofs.slice(0, 3),
    });
    assert.equal(!r2.ok && r2.tampered, 'E_LOG_PROOF');
    assert.deepEqual(
      m.alarms(D).map((a) => a.tampered),
      ['E_LOG_PROOF', 'E_LOG_PROOF'],
    );
    const weak = await monitorAt(l, s, 9, broken('inclusion'));
    assert.ok((await weak.read(D, swapped)).ok);
    const fresh = new LogMonitor();
    fresh.addDevice(D, s.publicKey);
    await assert.rejects(fresh.read(D, first3), RangeError);
  });
});
