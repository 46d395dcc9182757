/**
 * The outbox (docs/events-contract.md §5): sealed blobs waiting for the server, in
 * `<dataDir>/outbox/`, and the uploader that drains it.
 *
 * - Each entry is two files: `<id>.blob` (the sealed bytes) and then `<id>.json` (its
 *   {@link OutboxMeta}); both are written atomically (tmp + fsync + rename + fsync of the
 *   directory), the meta last, so an entry exists exactly when its meta does. Opening the outbox
 *   removes what a crash left: tmp files, a blob without meta, a meta without blob, names that are
 *   not a blob ID.
 * - Bounded in bytes: adding an entry first drops the oldest until it fits (each drop logged with
 *   id, kind and camera); an entry larger than the whole bound is dropped itself.
 * - Oldest first: by the event's time, then clip, snapshot, event record (a viewer that finds an
 *   event record then finds its clip).
 * - The {@link Uploader} puts the oldest entry through a {@link BlobSink}, deleting it only after
 *   a successful put, with exponential backoff and jitter on failure. A new outbox over the same
 *   directory resumes where the last stopped.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { type Logger, silentLogger } from '@hearth/node';
import { writePrivateFile } from '../device/files.js';

/** What the outbox (and the server's listing) calls a blob's kind. */
export type OutboxKind = 'clip' | 'snapshot' | 'event';
const KIND_ORDER: Record<OutboxKind, number> = { clip: 0, snapshot: 1, event: 2 };

/** The clear facts of one sealed blob, stored next to it. */
export interface OutboxMeta {
  /** Blob ID, b64u of 16 bytes (also the file name). */
  readonly id: string;
  readonly kind: OutboxKind;
  /** `floor(t0 / 3 600 000)`: the coarse hour the server sees. */
  readonly hr: number;
  /** Bytes of the sealed blob. */
  readonly size: number;
  /** Hex SHA-256 of the sealed blob. */
  readonly sha256: string;
  /** Camera (local only: never sent in clear). */
  readonly cam: string;
  /** The event's trigger time, ms since the epoch (ordering, retention). */
  readonly t: number;
  /** User keys (`huk_…`) the blob is sealed to (the ticket's `readers`). */
  readonly readers?: readonly string[];
}

/** Where blobs go: the server's blob store through the agent's BlobClient (or a test's fake). */
export interface BlobSink {
  put(id: string, bytes: Uint8Array, meta: OutboxMeta): Promise<void>;
  delete(id: string): Promise<void>;
}

const ID = /^[A-Za-z0-9_-]{22}$/;
const MAX_META_BYTES = 16 * 1024;

function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function byAge(a: OutboxMeta, b: OutboxMeta): number {
  return a.t - b.t || KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function parseMeta(text: string, id: string): OutboxMeta | undefined {
  try {
    const m = JSON.parse(text) as Record<string, unknown>;
    const nat = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    if (
      m.id !== id ||
      !(m.kind === 'clip' || m.kind === 'snapshot' || m.kind === 'event') ||
      !nat(m.hr) ||
      !nat(m.size) ||
      !nat(m.t) ||
      typeof m.sha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(m.sha256) ||
      typeof m.cam !== 'string' ||
      m.cam.length > 64 ||
      (m.readers !== undefined &&
        (!Array.isArray(m.readers) || !m.readers.every((r) => typeof r === 'string')))
    )
      return undefined;
    return m as unknown as OutboxMeta;
  } catch {
    return undefined;
  }
}

export interface OutboxOptions {
  /** The outbox directory (created 0700). */
  readonly dir: string;
  /** Most bytes of sealed blobs held. Default 1 GiB. */
  readonly maxBytes?: number;
  readonly log?: Logger;
}

export class Outbox {
  readonly dir: string;
  readonly maxBytes: number;
  private readonly log: Logger;
  private readonly entries = new Map<string, OutboxMeta>();
  private total = 0;
  private listeners: (() => void)[] = [];
  /** Entries dropped for the bound since the start (stats, tests). */
  dropped = 0;

  constructor(o: OutboxOptions) {
    this.dir = o.dir;
    this.maxBytes = o.maxBytes ?? 1024 ** 3;
    this.log = o.log ?? silentLogger;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.recover();
  }

  /** Clean what a crash left and load the complete entries. */
  private recover(): void {
    const names = fs.readdirSync(this.dir);
    const blobs = new Set<string>();
    const metas = new Set<string>();
    let cleaned = 0;
    for (const n of names) {
      const m = /^([A-Za-z0-9_-]{22})\.(blob|json)$/.exec(n);
      if (m?.[2] === 'blob') blobs.add(m[1] as string);
      else if (m?.[2] === 'json') metas.add(m[1] as string);
      else {
        // tmp files of an interrupted write (`.<name>.<pid>.<rand>.tmp`), and anything else.
        fs.rmSync(join(this.dir, n), { force: true, recursive: true });
        cleaned++;
      }
    }
    for (const id of metas) {
      let meta: OutboxMeta | undefined;
      if (blobs.has(id)) {
        const text = fs.readFileSync(join(this.dir, `${id}.json`));
        meta = text.length <= MAX_META_BYTES ? parseMeta(text.toString('utf8'), id) : undefined;
        if (meta) {
          const st = fs.statSync(join(this.dir, `${id}.blob`));
          if (st.size !== meta.size) meta = undefined;
        }
      }
      if (meta) {
        this.entries.set(id, meta);
        this.total += meta.size;
      } else {
        this.unlinkEntry(id);
        cleaned++;
      }
    }
    for (const id of blobs)
      if (!this.entries.has(id)) {
        this.unlinkEntry(id);
        cleaned++;
      }
    if (cleaned) this.log.info({ dir: this.dir, cleaned }, 'outbox: removed what an interrupted write left');
    this.enforceBound(0);
  }

  /** Entries, oldest first. */
  list(): OutboxMeta[] {
    return [...this.entries.values()].sort(byAge);
  }

  get bytes(): number {
    return this.total;
  }

  get count(): number {
    return this.entries.size;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Read an entry's sealed bytes, checked against its meta (size, SHA-256); undefined if gone or damaged. */
  read(id: string): Uint8Array | undefined {
    const meta = this.entries.get(id);
    if (!meta) return undefined;
    let b: Buffer;
    try {
      b = fs.readFileSync(join(this.dir, `${id}.blob`));
    } catch {
      this.log.warn({ id, kind: meta.kind, cam: meta.cam }, 'outbox: a blob is missing: dropped');
      this.remove(id);
      return undefined;
    }
    if (b.length !== meta.size || sha256Hex(b) !== meta.sha256) {
      this.log.warn(
        { id, kind: meta.kind, cam: meta.cam },
        'outbox: a blob no longer matches its meta: dropped',
      );
      this.remove(id);
      return undefined;
    }
    return new Uint8Array(b.buffer, b.byteOffset, b.length);
  }

  /**
   * Add a sealed blob. Drops the oldest entries first until it fits (each logged); a blob larger
   * than the whole bound is not kept (logged). Returns its meta, or undefined when not kept.
   */
  add(m: Omit<OutboxMeta, 'size' | 'sha256'>, bytes: Uint8Array): OutboxMeta | undefined {
    if (!ID.test(m.id)) throw new RangeError('outbox: not a blob ID');
    if (this.entries.has(m.id)) throw new RangeError('outbox: this ID is already there');
    const meta: OutboxMeta = { ...m, size: bytes.length, sha256: sha256Hex(bytes) };
    if (bytes.length > this.maxBytes) {
      this.dropped++;
      this.log.warn(
        { id: m.id, kind: m.kind, cam: m.cam, bytes: bytes.length, maxBytes: this.maxBytes },
        'outbox: blob larger than the whole outbox: dropped',
      );
      return undefined;
    }
    this.enforceBound(bytes.length);
    writePrivateFile(join(this.dir, `${m.id}.blob`), bytes);
    writePrivateFile(join(this.dir, `${m.id}.json`), JSON.stringify(meta));
    this.entries.set(m.id, meta);
    this.total += meta.size;
    for (const l of this.listeners) l();
    return meta;
  }

  /** Remove an entry (uploaded, or expired). */
  remove(id: string): OutboxMeta | undefined {
    const meta = this.entries.get(id);
    if (!meta) return undefined;
    this.entries.delete(id);
    this.total -= meta.size;
    this.unlinkEntry(id);
    return meta;
  }

  /** Called after each add (the uploader's wake-up). */
  onAdd(l: () => void): void {
    this.listeners.push(l);
  }

  private enforceBound(incoming: number): void {
    if (this.total + incoming <= this.maxBytes) return;
    for (const meta of this.list()) {
      if (this.total + incoming <= this.maxBytes) break;
      this.remove(meta.id);
      this.dropped++;
      this.log.warn(
        { id: meta.id, kind: meta.kind, cam: meta.cam, bytes: meta.size, maxBytes: this.maxBytes },
        'outbox full: dropped the oldest blob',
      );
    }
  }

  private unlinkEntry(id: string): void {
    // Meta first: without it the entry is gone, whatever a crash leaves of the blob.
    fs.rmSync(join(this.dir, `${id}.json`), { force: true });
    fs.rmSync(join(this.dir, `${id}.blob`), { force: true });
  }
}

export interface UploaderOptions {
  /** First retry delay and its cap (ms). Defaults 1000 / 300 000. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** 0..1 (tests: fixed jitter). Default Math.random. */
  readonly random?: () => number;
  readonly log?: Logger;
  /** Called after each successful put (the local index of what the server holds). */
  readonly onUploaded?: (meta: OutboxMeta) => void;
}

/**
 * Drains an {@link Outbox} through a {@link BlobSink}, oldest first, one blob at a time. On a
 * failed put it waits `min(max, min·2^n)`, with jitter (×0.5..1), and tries the same blob again.
 */
export class Uploader {
  private sink: BlobSink | undefined;
  private running = false;
  private closed = false;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private readonly log: Logger;
  /** Failed puts since the start (stats, tests). */
  failures = 0;
  uploaded = 0;

  constructor(
    private readonly outbox: Outbox,
    private readonly o: UploaderOptions = {},
  ) {
    this.log = o.log ?? silentLogger;
    // A new blob starts an idle uploader; one waiting out a backoff keeps waiting.
    outbox.onAdd(() => {
      if (!this.running && !this.closed) void this.run();
    });
  }

  /** Set (or clear) the sink; a set sink starts draining. */
  setSink(sink: BlobSink | undefined): void {
    this.sink = sink;
    this.kick();
  }

  /** Start draining now (or retry at once, cutting a backoff short: e.g. the server is back). */
  kick(): void {
    if (this.closed) return;
    if (this.wake) {
      const w = this.wake;
      this.wake = undefined;
      w();
      return;
    }
    if (!this.running) void this.run();
  }

  /** Resolves once the outbox is empty, or when there is no sink (tests, shutdown). */
  idle(): Promise<void> {
    if (!this.running && (this.outbox.count === 0 || !this.sink)) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    this.wake = undefined;
    this.settle();
  }

  private settle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }

  private async run(): Promise<void> {
    this.running = true;
    let attempt = 0;
    try {
      while (!this.closed) {
        const sink = this.sink;
        const next = this.outbox.list()[0];
        if (!sink || !next) break;
        const bytes = this.outbox.read(next.id);
        if (!bytes) continue; // dropped meanwhile, or damaged (read() removed it)
        try {
          await sink.put(next.id, bytes, next);
          attempt = 0;
          this.uploaded++;
          this.o.onUploaded?.(next);
          this.outbox.remove(next.id);
        } catch (e) {
          this.failures++;
          const min = this.o.minBackoffMs ?? 1000;
          const max = this.o.maxBackoffMs ?? 300_000;
          const delay =
            Math.min(max, min * 2 ** Math.min(attempt, 30)) * (0.5 + 0.5 * (this.o.random ?? Math.random)());
          attempt++;
          this.log.warn(
            { id: next.id, kind: next.kind, attempt, retryMs: Math.round(delay), err: (e as Error).message },
            'upload failed: retrying',
          );
          await new Promise<void>((r) => {
            this.wake = r;
            // Not unref'd: a pending retry is work to do (close() clears it).
            this.timer = setTimeout(r, delay);
          });
          this.wake = undefined;
          if (this.timer) clearTimeout(this.timer);
        }
      }
    } finally {
      this.running = false;
      this.settle();
    }
  }
}
