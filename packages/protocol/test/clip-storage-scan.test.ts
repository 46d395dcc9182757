/**
 * Attack test "storage scan" (S5, format v2): whoever stores sealed blobs (the server's blob store,
 * a backup, a stolen disk) reads every byte of them. Seal blobs of the three kinds for a camera
 * "Nursery-Upstairs" at known exact times, write them as real files to a temp dir, read the files
 * back and scan every byte for the camera name (UTF-8, inside JSON, lower case, UTF-16, base64url
 * at each alignment) and the exact times (decimal, ISO 8601, 64-bit big-endian): none may appear.
 *
 * Control: the same blobs sealed with the broken defence (`__testOnly_clearMeta`, the v1 layout
 * with `cam`, `t0`, `t1` in the clear header): the same scan finds them, so the scan can fail.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { b64u } from '../src/bytes.js';
import { type BlobKind, openBlob, type ReaderKey, sealBlob, signReaderKey } from '../src/clip/index.js';
import { x25519KeyPairFromScalar } from '../src/still.js';
import { keys } from './fixtures.js';

const CAMERA = 'Nursery-Upstairs';
/** Exact times with every digit significant, so a decimal of them cannot appear by chance. */
const TIMES = [
  { t0: 1_764_851_234_567, t1: 1_764_851_263_891 },
  { t0: 1_764_853_017_203, t1: 1_764_853_049_777 },
  { t0: 1_764_899_999_001, t1: 1_764_900_012_345 },
];
const KINDS: BlobKind[] = ['clip', 'snapshot', 'event'];

type K = Awaited<ReturnType<typeof keys>>;
let k: K;
let rk: ReaderKey;
let x: Awaited<ReturnType<typeof x25519KeyPairFromScalar>>;
const dirs: string[] = [];

before(async () => {
  k = await keys();
  x = await x25519KeyPairFromScalar(new Uint8Array(32).fill(0x31));
  rk = await signReaderKey(k.owner, x.publicKey);
});
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Seal one blob per (kind, time), write each as a file named by its random ID; the directory. */
async function store(clearMeta: boolean): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-blob-scan-'));
  dirs.push(dir);
  for (const kind of KINDS)
    for (const { t0, t1 } of TIMES) {
      const plaintext = new TextEncoder().encode(`${kind} bytes `.repeat(9000)); // > 64 KiB: 2 chunks
      const { blob, header } = await sealBlob({
        device: k.device,
        kind,
        camera: CAMERA,
        t0,
        t1,
        recipients: [rk],
        plaintext,
        ...(clearMeta ? { __testOnly_clearMeta: true } : {}),
      });
      await writeFile(join(dir, header.id), blob);
    }
  return dir;
}

/** Every needle a reader of the bytes could look for, by what it would give away. */
function needles(): { what: string; bytes: Buffer }[] {
  const out: { what: string; bytes: Buffer }[] = [];
  const add = (what: string, b: Buffer | string) => out.push({ what, bytes: Buffer.from(b) });
  add('camera name (UTF-8)', CAMERA);
  add('camera name (JSON string)', JSON.stringify(CAMERA));
  add('camera name (JSON member)', `"cam":${JSON.stringify(CAMERA)}`);
  add('camera name (lower case)', CAMERA.toLowerCase());
  add('camera name (UTF-16LE)', Buffer.from(CAMERA, 'utf16le'));
  // base64url of the name at the three byte alignments, minus the edge characters that depend on
  // the neighbours.
  for (let pad = 0; pad < 3; pad++) {
    const enc = b64u(new TextEncoder().encode(`${'\0'.repeat(pad)}${CAMERA}`));
    add(`camera name (base64url, alignment ${pad})`, enc.slice(Math.ceil((pad * 4) / 3) + 1, -2));
  }
  for (const { t0, t1 } of TIMES)
    for (const t of [t0, t1]) {
      add(`exact time ${t} (decimal)`, String(t));
      add(`exact time ${t} (ISO 8601)`, new Date(t).toISOString());
      const be = Buffer.alloc(8);
      be.writeBigUInt64BE(BigInt(t));
      add(`exact time ${t} (u64 big-endian)`, be);
    }
  return out;
}

/** Read every file of `dir` and report which needles occur in which file. */
async function scan(dir: string): Promise<{ files: number; bytes: number; found: string[] }> {
  const found: string[] = [];
  const names = await readdir(dir);
  let bytes = 0;
  for (const name of names) {
    const data = await readFile(join(dir, name));
    bytes += data.length;
    for (const n of needles()) if (data.includes(n.bytes)) found.push(`${name}: ${n.what}`);
  }
  return { files: names.length, bytes, found };
}

describe('attack: storage scan of sealed blobs (camera name, exact times)', () => {
  it('blobs of every kind for "Nursery-Upstairs" at known times: the stored files hold neither the name nor the times', async () => {
    const dir = await store(false);
    const r = await scan(dir);
    assert.equal(r.files, KINDS.length * TIMES.length);
    assert.ok(r.bytes > r.files * 64 * 1024, 'the files hold the sealed content');
    assert.deepEqual(r.found, [], `found in the stored blobs:\n${r.found.join('\n')}`);
    // The files are real blobs: the reader opens each and gets the name and times back.
    const seen = new Set<string>();
    for (const name of await readdir(dir)) {
      const blob = new Uint8Array(await readFile(join(dir, name)));
      const got = await openBlob(blob, {
        pinnedDeviceKey: k.device.publicKey,
        reader: { userKey: rk.userKey, x25519: x },
        camera: CAMERA,
      });
      assert.equal(got.meta.cam, CAMERA);
      assert.equal(got.header.hr, Math.floor(got.meta.t0 / 3_600_000)); // the hour is all that is clear
      seen.add(`${got.header.kind} ${got.meta.t0} ${got.meta.t1}`);
    }
    assert.equal(seen.size, KINDS.length * TIMES.length);
  });

  it('control, metadata in the clear (the v1 layout): the same scan finds the name and every time', async () => {
    const dir = await store(true);
    const r = await scan(dir);
    assert.equal(r.files, KINDS.length * TIMES.length);
    const what = new Set(r.found.map((f) => f.slice(f.indexOf(': ') + 2)));
    assert.ok(what.has('camera name (UTF-8)'), `found: ${[...what].join(', ')}`);
    assert.ok(what.has('camera name (JSON member)'));
    for (const { t0, t1 } of TIMES) {
      assert.ok(what.has(`exact time ${t0} (decimal)`), `t0 ${t0}`);
      assert.ok(what.has(`exact time ${t1} (decimal)`), `t1 ${t1}`);
    }
    // In every file.
    assert.equal(new Set(r.found.map((f) => f.slice(0, f.indexOf(': ')))).size, r.files);
  });
});
