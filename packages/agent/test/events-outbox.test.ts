// The outbox and its uploader (src/events/outbox.ts) on real files: the byte bound drops the oldest
// (each drop logged with id, kind and camera), a new outbox over the same directory resumes, what a
// crash leaves (tmp files, a blob without meta, a meta without blob) is cleaned, and a failing sink
// is retried with backoff until it succeeds, the entry deleted only after the successful put.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Logger } from '@hearth/node';
import { type BlobSink, Outbox, type OutboxMeta, Uploader } from '../src/events/outbox.js';

const root = mkdtempSync(join(tmpdir(), 'hearth-outbox-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `o${++n}`);

function recordingLog() {
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const at =
    (level: string) =>
    (fields: object, msg?: string): void =>
      void lines.push({ level, fields: fields as Record<string, unknown>, msg: msg ?? '' });
  const log = {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
  } as unknown as Logger;
  return { log, lines };
}

const id = (i: number) => `${String(i).padStart(2, '0')}${'A'.repeat(20)}`;
const meta = (i: number, t = 1000 + i, kind: OutboxMeta['kind'] = 'clip') => ({
  id: id(i),
  kind,
  hr: 0,
  cam: 'door',
  t,
});

describe('outbox', () => {
  it('is bounded in bytes: the oldest go first, each drop logged with id, kind and camera', () => {
    const { log, lines } = recordingLog();
    const ob = new Outbox({ dir: fresh(), maxBytes: 2500, log });
    ob.add(meta(1), new Uint8Array(1000));
    ob.add(meta(2), new Uint8Array(1000));
    assert.equal(ob.bytes, 2000);
    ob.add(meta(3), new Uint8Array(1000));
    assert.deepEqual(
      ob.list().map((m) => m.id),
      [id(2), id(3)],
    );
    assert.equal(ob.bytes, 2000);
    const drop = lines.find((l) => l.msg.includes('dropped the oldest'));
    assert.deepEqual(
      { id: drop?.fields.id, kind: drop?.fields.kind, cam: drop?.fields.cam, level: drop?.level },
      { id: id(1), kind: 'clip', cam: 'door', level: 'warn' },
    );
    // Larger than the whole bound: not kept, nothing else dropped.
    assert.equal(ob.add(meta(4), new Uint8Array(3000)), undefined);
    assert.equal(ob.count, 2);
    assert.ok(lines.some((l) => l.msg.includes('larger than the whole outbox') && l.fields.id === id(4)));
    assert.equal(ob.dropped, 2);
    // Oldest by time, then clip before snapshot before event.
    const o2 = new Outbox({ dir: fresh() });
    o2.add(meta(10, 5, 'event'), new Uint8Array(1));
    o2.add(meta(11, 5, 'clip'), new Uint8Array(1));
    o2.add(meta(12, 4, 'snapshot'), new Uint8Array(1));
    assert.deepEqual(
      o2.list().map((m) => m.id),
      [id(12), id(11), id(10)],
    );
  });

  it('a new outbox over the same directory resumes; what a crash left is removed', () => {
    const dir = fresh();
    const a = new Outbox({ dir });
    a.add(meta(1), new Uint8Array([1, 2, 3]));
    a.add(meta(2), new Uint8Array([4, 5]));
    // A crash: a tmp file of an interrupted write, a blob whose meta never came, a meta whose blob
    // is gone, a blob of the wrong size.
    writeFileSync(join(dir, `.${id(3)}.blob.123.abcd.tmp`), 'partial');
    writeFileSync(join(dir, `${id(4)}.blob`), 'no meta');
    writeFileSync(
      join(dir, `${id(5)}.json`),
      JSON.stringify({ ...meta(5), size: 1, sha256: '0'.repeat(64) }),
    );
    writeFileSync(join(dir, `${id(2)}.blob`), 'longer than it was');
    const { log, lines } = recordingLog();
    const b = new Outbox({ dir, log });
    assert.deepEqual(
      b.list().map((m) => m.id),
      [id(1)],
    );
    assert.deepEqual(b.read(id(1)), new Uint8Array([1, 2, 3]));
    assert.deepEqual(readdirSync(dir).sort(), [`${id(1)}.blob`, `${id(1)}.json`]);
    assert.ok(lines.some((l) => l.msg.includes('interrupted write') && l.fields.cleaned === 5));
  });

  it('a blob damaged on disk after it was queued is dropped, not uploaded', async () => {
    const dir = fresh();
    const ob = new Outbox({ dir });
    ob.add(meta(1), new Uint8Array([1, 2, 3]));
    writeFileSync(join(dir, `${id(1)}.blob`), new Uint8Array([1, 2, 4]));
    assert.equal(ob.read(id(1)), undefined);
    assert.equal(ob.count, 0);
  });
});

describe('uploader', () => {
  it('retries a failing sink with backoff until it succeeds; deletes only after the put; oldest first', async () => {
    const ob = new Outbox({ dir: fresh() });
    ob.add(meta(2, 2000), new Uint8Array([2]));
    ob.add(meta(1, 1000), new Uint8Array([1]));
    let failuresLeft = 3;
    const puts: string[] = [];
    const presentAtPut: boolean[] = [];
    const sink: BlobSink = {
      async put(i) {
        presentAtPut.push(ob.has(i));
        if (failuresLeft > 0) {
          failuresLeft--;
          throw new Error('server down');
        }
        puts.push(i);
      },
      async delete() {},
    };
    const uploaded: string[] = [];
    const up = new Uploader(ob, {
      minBackoffMs: 1,
      maxBackoffMs: 4,
      random: () => 0,
      onUploaded: (m) => void uploaded.push(m.id),
    });
    up.setSink(sink);
    await up.idle();
    assert.deepEqual(puts, [id(1), id(2)]);
    assert.deepEqual(uploaded, [id(1), id(2)]);
    assert.equal(up.failures, 3);
    assert.ok(presentAtPut.every(Boolean), 'the entry is still there while its put runs');
    assert.equal(ob.count, 0);
    up.close();
  });

  it('without a sink blobs stay; a restart with a sink uploads what the last run left', async () => {
    const dir = fresh();
    const a = new Outbox({ dir });
    const upA = new Uploader(a);
    a.add(meta(1), new Uint8Array([1]));
    await upA.idle();
    assert.equal(a.count, 1);
    upA.close();
    const b = new Outbox({ dir });
    const got: string[] = [];
    const upB = new Uploader(b, { minBackoffMs: 1 });
    upB.setSink({ put: async (i) => void got.push(i), delete: async () => {} });
    await upB.idle();
    assert.deepEqual(got, [id(1)]);
    assert.deepEqual(readdirSync(dir), []);
    upB.close();
  });
});
