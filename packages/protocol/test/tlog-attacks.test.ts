/**
 * Access-log attacks (S9): a hostile device or server, each caught with a typed error, each with a
 * control that shows the attack input is real (a broken verifier accepts it). Plus the Go
 * golang.org/x/mod/sumdb/note vector (PeterNeumann) and a transparency-dev cosignature/v1 key ID.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { b64std, fromB64std, utf8 } from '../src/bytes.js';
import { ed25519Verify, WebCryptoSigner } from '../src/crypto/primitives.js';
import { VerificationError } from '../src/errors.js';
import {
  cosign,
  cosignerKey,
  cosignerKeyId,
  LogWitness,
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
