// Retention (`retention: {days, bytes}` per camera): the camera-map parser (clear errors, fuzzed),
// the plan (per camera, newest kept, older than days or past bytes deleted), and the pipeline
// applying it to the outbox (local drop) and to the index of uploaded blobs (deleted on the server
// through the sink, forgotten only once the delete succeeded). Also: no reader keys, no sealing
// (logged once).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Logger } from '@hearth/node';
import { type CryptoEnv, type ReaderKey, signReaderKey, systemEnv, WebCryptoSigner } from '@hearth/protocol';
import fc from 'fast-check';
import { parseRetention, RETENTION_DEFAULTS } from '../src/events/config.js';
import type { BlobSink } from '../src/events/outbox.js';
import { EventPipeline } from '../src/events/pipeline.js';
import type { EventRecording } from '../src/events/recorder.js';
import { retentionPlan } from '../src/events/retention.js';
import { MediaError, parseCamerasYaml } from '../src/media/index.js';

const root = mkdtempSync(join(tmpdir(), 'hearth-retention-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `d${++n}`);
const DAY = 86_400_000;

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

describe('retention config', () => {
  it('parses days and bytes with units; absent means the defaults', () => {
    assert.equal(parseRetention('door', undefined), undefined);
    assert.deepEqual(parseRetention('door', {}), RETENTION_DEFAULTS);
    assert.deepEqual(RETENTION_DEFAULTS, { days: 30, bytes: 2 * 1024 ** 3 });
    assert.deepEqual(parseRetention('door', { days: 7, bytes: '500 MiB' }), {
      days: 7,
      bytes: 500 * 1024 ** 2,
    });
    assert.deepEqual(parseRetention('door', { bytes: '2GB' }), { days: 30, bytes: 2e9 });
    assert.deepEqual(parseRetention('door', { bytes: 5_000_000 }), { days: 30, bytes: 5_000_000 });
    const cams = parseCamerasYaml(
      'cameras:\n  door:\n    source: testsrc\n    motion: true\n    retention: {days: 3, bytes: 1 GiB}\n',
    );
    assert.deepEqual(cams[0]?.retention, { days: 3, bytes: 1024 ** 3 });
  });
  it('refuses bad values naming the camera and the field', () => {
    for (const [v, re] of [
      [true, /must be a mapping/],
      [{ days: 0 }, /"days" must be a number from 0.01 to 3650/],
      [{ days: '7' }, /"days"/],
      [{ bytes: '12 parsecs' }, /"bytes" must be a size/],
      [{ bytes: 10 }, /"bytes" must be a size/],
      [{ keep: 1 }, /unknown key "keep" \(allowed: days, bytes\)/],
    ] as const) {
      assert.throws(
        () => parseRetention('door', v),
        (e: unknown) =>
          e instanceof MediaError &&
          e.reason === 'camera-retention' &&
          /camera "door": retention: /.test(e.message) &&
          re.test(e.message),
        JSON.stringify(v),
      );
    }
  });
  it('fuzz: any value is a config or a camera-retention error, never anything else', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue({ maxDepth: 3 }),
          fc.record({
            days: fc.oneof(fc.double(), fc.string()),
            bytes: fc.oneof(fc.double(), fc.string({ maxLength: 40 })),
          }),
        ),
        (v) => {
          try {
            const r = parseRetention('cam', v);
            if (r) {
              assert.ok(r.days >= 0.01 && r.days <= 3650);
              assert.ok(Number.isSafeInteger(r.bytes) && r.bytes >= 1024 ** 2);
            }
          } catch (e) {
            assert.ok(e instanceof MediaError && e.reason === 'camera-retention', String(e));
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('retention plan', () => {
  it('per camera: newest kept; older than days, or past bytes, deleted', () => {
    const now = 100 * DAY;
    const items = [
      { id: 'a-old', cam: 'a', t: now - 10 * DAY, size: 1 },
      { id: 'a-new', cam: 'a', t: now - DAY, size: 1 },
      { id: 'b-1', cam: 'b', t: now - 3, size: 600 },
      { id: 'b-2', cam: 'b', t: now - 2, size: 600 },
      { id: 'b-3', cam: 'b', t: now - 1, size: 600 },
    ];
    const rule = (c: string) => (c === 'a' ? { days: 5, bytes: 1e9 } : { days: 30, bytes: 1300 });
    assert.deepEqual(retentionPlan(items, rule, now).sort(), ['a-old', 'b-1']);
  });
});

async function reader(): Promise<ReaderKey> {
  const s = await WebCryptoSigner.generate();
  return signReaderKey(s, new Uint8Array(32).fill(3));
}

const rec = (t: number): EventRecording => ({
  camera: 'door',
  kind: 'motion',
  trigger: t + 0.25, // the recorder's wall times are fractional (performance.now())
  start: t - 0.5,
  end: t + 1000.75,
  snapshot: undefined,
  clip: new Uint8Array(2000).fill(1),
  frames: 5,
  truncated: false,
});

describe('pipeline retention', () => {
  it('drops from the outbox and deletes on the server through the sink; a failed delete is retried', async () => {
    const device = await WebCryptoSigner.generate();
    const rk = await reader();
    let now = 10 * DAY;
    const env: CryptoEnv = { ...systemEnv, now: () => now };
    const deleted: string[] = [];
    let failDeletes = 1;
    const sink: BlobSink = {
      put: async () => {},
      delete: async (id) => {
        if (failDeletes-- > 0) throw new Error('server down');
        deleted.push(id);
      },
    };
    const dataDir = fresh();
    const p = new EventPipeline({
      dataDir,
      device,
      env,
      recipients: () => [rk],
      retention: () => ({ days: 2, bytes: 1e9 }),
      sink,
      minBackoffMs: 1,
      retentionEveryMs: 0,
    });
    const first = await p.handle(rec(now));
    await p.idle();
    assert.equal(p.uploaded.count, 2, 'clip and event record uploaded');
    // Three days later, offline (no sink): a new event, queued locally.
    p.setSink(undefined);
    now += 3 * DAY;
    // The old ones are due, but there is no sink to delete them with: they stay in the index.
    await p.handle(rec(now - 5 * DAY)); // a late one, already past retention: dropped from the outbox
    assert.equal(p.outbox.count, 0);
    assert.equal(p.uploaded.count, 2);
    // Back online: the sink's return runs retention; its first delete fails, the next run retries it.
    p.setSink(sink);
    const r1 = await p.applyRetention();
    const r2 = await p.applyRetention();
    assert.equal(failDeletes, -2, 'three deletes: the first failed, then both succeeded');
    assert.ok(r1.remote + r2.remote >= 1);
    assert.deepEqual(deleted.sort(), [first?.clip?.id, first?.event?.id].sort());
    assert.equal(p.uploaded.count, 0);
    p.close();
    // The index survives a restart.
    const q = new EventPipeline({ dataDir, device, env, recipients: () => [rk], retentionEveryMs: 0 });
    assert.equal(q.uploaded.count, 0);
    q.close();
  });

  it('restart-safe: a new pipeline over the same directory uploads what the last one sealed', async () => {
    const device = await WebCryptoSigner.generate();
    const rk = await reader();
    const dataDir = fresh();
    const a = new EventPipeline({ dataDir, device, recipients: () => [rk], retentionEveryMs: 0 });
    const sealed = await a.handle(rec(Date.now()));
    await a.idle();
    assert.equal(a.outbox.count, 2, 'no sink: the blobs wait');
    a.close();
    const puts: string[] = [];
    const b = new EventPipeline({
      dataDir,
      device,
      recipients: () => [rk],
      retentionEveryMs: 0,
      sink: { put: async (id) => void puts.push(id), delete: async () => {} },
    });
    await b.idle();
    assert.deepEqual(
      puts,
      [sealed?.clip?.id, sealed?.event?.id],
      'oldest first: the clip, then its event record',
    );
    assert.equal(b.outbox.count, 0);
    assert.equal(b.uploaded.count, 2);
    b.close();
  });

  it('no reader keys: nothing sealed, logged once', async () => {
    const { log, lines } = recordingLog();
    const p = new EventPipeline({
      dataDir: fresh(),
      device: await WebCryptoSigner.generate(),
      recipients: () => [],
      log,
      retentionEveryMs: 0,
    });
    assert.equal(await p.handle(rec(Date.now())), undefined);
    assert.equal(await p.handle(rec(Date.now())), undefined);
    assert.equal(p.outbox.count, 0);
    assert.equal(p.skipped, 2);
    assert.equal(lines.filter((l) => l.msg.includes('no viewer with clips access')).length, 1);
    p.close();
  });
});
