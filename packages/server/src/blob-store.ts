/**
 * Where the server keeps sealed blobs (docs/events-contract.md §4, docs/architecture.md "Blob
 * store"). The server only ever holds ciphertext: each blob is opaque bytes plus the device's
 * signed ticket (kind, coarse hour, size, SHA-256, reader and owner user keys).
 *
 * {@link BlobStore} has no file-system notions (no paths, no descriptors), so an S3-compatible
 * store can implement it: `put` streams into a staging object and makes it visible only when the
 * bytes match what the ticket promises (a multipart upload completed last, or a PUT with
 * `x-amz-checksum-sha256`), tickets are small objects beside the blobs, and `deleteAll` deletes
 * the device's prefix.
 *
 * {@link FileBlobStore}: `<dataDir>/blobs/<dev>/<id>` (the sealed bytes) and `<id>.ticket` (its
 * ticket), plus `.latest` (the ticket most recently accepted for the device: its owners may erase
 * the device's blobs). Every write goes to a temporary file, fsynced, renamed, and the directory
 * fsynced. Names are a device ID (`hdid_…`, checked) and 22-character b64u IDs (checked again
 * here, whatever the caller did), so no name can leave the device's directory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type BlobTicket,
  b64u,
  decodeBlobTicket,
  encodeBlobTicket,
  isBlobId,
  isId,
  ProtocolError,
  type StoredBlobKind,
  VerificationError,
} from '@hearth/protocol';

/** What the store knows of one blob (all of it from the ticket). */
export interface BlobMeta {
  id: string;
  kind: StoredBlobKind;
  hr: number;
  size: number;
  ticket: BlobTicket;
}

/** A listing filter: kind, and an inclusive range of hours. */
export interface BlobQuery {
  kind?: StoredBlobKind;
  from?: number;
  to?: number;
}

/** Bytes and count a device stores. */
export interface BlobStoreUsage {
  bytes: number;
  count: number;
}

/** Storage of sealed blobs and their tickets, by device ID and blob ID. */
export interface BlobStore {
  /**
   * Store `body` as blob `id` of `dev` with `ticket`. Reads at most `ticket.size + 1` bytes; the
   * blob becomes visible (to get, list, usage) only when the body is exactly `ticket.size` bytes
   * with SHA-256 `ticket.sha` (else VerificationError E_BLOB_DIGEST, and nothing is kept). An
   * existing blob of the same ID is replaced.
   */
  put(dev: string, id: string, ticket: BlobTicket, body: AsyncIterable<Uint8Array>): Promise<void>;
  /** The blob's bytes and metadata, or undefined. */
  get(dev: string, id: string): Promise<{ meta: BlobMeta; body: AsyncIterable<Uint8Array> } | undefined>;
  /** The blob's ticket, or undefined. */
  getTicket(dev: string, id: string): Promise<BlobTicket | undefined>;
  /** Replace the ticket of an existing blob (the caller checked `seq`); false when there is no such blob. */
  setTicket(dev: string, id: string, ticket: BlobTicket): Promise<boolean>;
  /** The ticket most recently stored for `dev` (by put or setTicket), kept after its blob is deleted. */
  latestTicket(dev: string): Promise<BlobTicket | undefined>;
  /** The device's blobs matching `q`, by hour then ID. */
  list(dev: string, q?: BlobQuery): Promise<BlobMeta[]>;
  /** Delete one blob and its ticket; false when there was none. */
  delete(dev: string, id: string): Promise<boolean>;
  /** Delete everything of `dev` (S8): blobs, tickets, the latest ticket, staging files. */
  deleteAll(dev: string): Promise<void>;
  usage(dev: string): Promise<BlobStoreUsage>;
}

/** Test-only switches of {@link FileBlobStore} (controls); production passes none. */
export interface FileBlobStoreTestHooks {
  /** Do not check names (device and blob IDs): the control of the path-traversal test. */
  uncheckedNames?: boolean;
}

const TICKET_SUFFIX = '.ticket';
const LATEST = '.latest';
const TMP_PREFIX = '.tmp-';

/** The default {@link BlobStore}: files under `<dataDir>/blobs`. One process owns the directory. */
export class FileBlobStore implements BlobStore {
  readonly root: string;
  /** Per device, the blobs it holds (loaded from disk on first use, then kept in step). */
  private readonly index = new Map<string, Promise<Map<string, BlobMeta>>>();
  /** Staging files being written now (a scan leaves these alone). */
  private readonly staging = new Set<string>();

  constructor(
    dataDir: string,
    private readonly test: FileBlobStoreTestHooks = {},
  ) {
    this.root = join(dataDir, 'blobs');
  }

  private devDir(dev: string): string {
    if (!this.test.uncheckedNames && !isId('deviceId', dev))
      throw new ProtocolError('E_BAD_ID', 'blob store: not a device ID');
    return join(this.root, dev);
  }

  private file(dev: string, id: string): string {
    if (!this.test.uncheckedNames && !isBlobId(id))
      throw new ProtocolError('E_BAD_ID', 'blob store: not a blob ID');
    return join(this.devDir(dev), id);
  }

  private async ensureDir(dev: string): Promise<string> {
    const d = this.devDir(dev);
    const made = await mkdir(d, { recursive: true, mode: 0o700 });
    if (made) await fsyncDir(this.root).catch(() => {});
    return d;
  }

  /**
   * The device's index. Only devices with a directory stay cached, so requests naming random
   * device IDs cost a failed readdir each and no memory.
   */
  private loadIndex(dev: string): Promise<Map<string, BlobMeta>> {
    let p = this.index.get(dev);
    if (!p) {
      const scanned = this.scan(dev);
      p = scanned.then((r) => r.blobs);
      this.index.set(dev, p);
      const drop = () => {
        if (this.index.get(dev) === p) this.index.delete(dev);
      };
      scanned.then((r) => {
        if (!r.exists) drop();
      }, drop);
    }
    return p;
  }

  /** Read a device's directory: every blob with a valid ticket; staging files and orphans are removed. */
  private async scan(dev: string): Promise<{ blobs: Map<string, BlobMeta>; exists: boolean }> {
    const out = new Map<string, BlobMeta>();
    const d = this.devDir(dev);
    let names: string[];
    try {
      names = await readdir(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { blobs: out, exists: false };
      throw e;
    }
    const set = new Set(names);
    for (const n of names) {
      if (n.startsWith(TMP_PREFIX)) {
        // Left by a crash; not one being written now.
        if (!this.staging.has(join(d, n))) await unlink(join(d, n)).catch(() => {});
        continue;
      }
      if (!n.endsWith(TICKET_SUFFIX)) continue;
      const id = n.slice(0, -TICKET_SUFFIX.length);
      if (!isBlobId(id)) continue;
      const t = await this.readTicket(join(d, n));
      if (!t || t.id !== id || t.dev !== dev || !set.has(id)) {
        // A ticket without its blob (a crash between the two deletes) or unreadable: drop both.
        await unlink(join(d, n)).catch(() => {});
        await unlink(join(d, id)).catch(() => {});
        continue;
      }
      out.set(id, meta(t));
    }
    // Blobs without a ticket (a crash after the blob's rename, before the ticket's) are not visible.
    for (const n of names) if (isBlobId(n) && !out.has(n)) await unlink(join(d, n)).catch(() => {});
    return { blobs: out, exists: true };
  }

  private async readTicket(path: string): Promise<BlobTicket | undefined> {
    try {
      return decodeBlobTicket(await readFile(path));
    } catch {
      return undefined;
    }
  }

  async put(dev: string, id: string, ticket: BlobTicket, body: AsyncIterable<Uint8Array>): Promise<void> {
    const target = this.file(dev, id);
    const d = await this.ensureDir(dev);
    const tmp = join(d, `${TMP_PREFIX}${randomBytes(12).toString('hex')}`);
    this.staging.add(tmp);
    let ok = false;
    const fh = await open(tmp, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600).catch((e) => {
      this.staging.delete(tmp);
      throw e;
    });
    try {
      const h = createHash('sha256');
      let n = 0;
      for await (const chunk of body) {
        n += chunk.length;
        if (n > ticket.size)
          throw new VerificationError('E_BLOB_DIGEST', 'blob: body longer than its ticket says');
        h.update(chunk);
        await fh.write(chunk);
      }
      if (n !== ticket.size)
        throw new VerificationError('E_BLOB_DIGEST', 'blob: body shorter than its ticket says');
      if (b64u(h.digest()) !== ticket.sha)
        throw new VerificationError('E_BLOB_DIGEST', "blob: body's SHA-256 differs from its ticket");
      await fh.sync();
      await fh.close();
      await rename(tmp, target);
      await this.writeAtomic(`${target}${TICKET_SUFFIX}`, encodeBlobTicket(ticket), d);
      await this.writeAtomic(join(d, LATEST), encodeBlobTicket(ticket), d);
      await fsyncDir(d);
      ok = true;
      // After the files: a scan started now finds the blob, and an index already held gets it.
      (await this.loadIndex(dev)).set(id, meta(ticket));
    } finally {
      if (!ok) {
        await fh.close().catch(() => {});
        await unlink(tmp).catch(() => {});
      }
      this.staging.delete(tmp);
    }
  }

  /** Write `text` to `path` atomically (staging file in `dir`, fsync, rename). The caller fsyncs `dir`. */
  private async writeAtomic(path: string, text: string, dir: string): Promise<void> {
    const tmp = join(dir, `${TMP_PREFIX}${randomBytes(12).toString('hex')}`);
    this.staging.add(tmp);
    try {
      const fh = await open(tmp, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    } finally {
      this.staging.delete(tmp);
    }
  }

  async get(
    dev: string,
    id: string,
  ): Promise<{ meta: BlobMeta; body: AsyncIterable<Uint8Array> } | undefined> {
    const path = this.file(dev, id);
    const m = (await this.loadIndex(dev)).get(id);
    if (!m) return undefined;
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(path, 'r');
    } catch {
      return undefined;
    }
    return { meta: m, body: fh.createReadStream({ highWaterMark: 64 * 1024 }) };
  }

  async getTicket(dev: string, id: string): Promise<BlobTicket | undefined> {
    this.file(dev, id);
    return (await this.loadIndex(dev)).get(id)?.ticket;
  }

  async setTicket(dev: string, id: string, ticket: BlobTicket): Promise<boolean> {
    const target = this.file(dev, id);
    const idx = await this.loadIndex(dev);
    if (!idx.has(id)) return false;
    const d = this.devDir(dev);
    await this.writeAtomic(`${target}${TICKET_SUFFIX}`, encodeBlobTicket(ticket), d);
    await this.writeAtomic(join(d, LATEST), encodeBlobTicket(ticket), d);
    await fsyncDir(d);
    idx.set(id, meta(ticket));
    return true;
  }

  async latestTicket(dev: string): Promise<BlobTicket | undefined> {
    const t = await this.readTicket(join(this.devDir(dev), LATEST));
    return t?.dev === dev ? t : undefined;
  }

  async list(dev: string, q: BlobQuery = {}): Promise<BlobMeta[]> {
    this.devDir(dev);
    const out = [...(await this.loadIndex(dev)).values()].filter(
      (m) =>
        (q.kind === undefined || m.kind === q.kind) &&
        (q.from === undefined || m.hr >= q.from) &&
        (q.to === undefined || m.hr <= q.to),
    );
    return out.sort((a, b) => a.hr - b.hr || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async delete(dev: string, id: string): Promise<boolean> {
    const target = this.file(dev, id);
    const idx = await this.loadIndex(dev);
    const had = idx.delete(id);
    // Ticket first: a blob without a ticket is invisible, and removed at the next scan.
    await unlink(`${target}${TICKET_SUFFIX}`).catch(() => {});
    await unlink(target).catch(() => {});
    if (had) await fsyncDir(this.devDir(dev)).catch(() => {});
    return had;
  }

  async deleteAll(dev: string): Promise<void> {
    const d = this.devDir(dev);
    this.index.delete(dev);
    await rm(d, { recursive: true, force: true });
    await fsyncDir(this.root).catch(() => {});
  }

  async usage(dev: string): Promise<BlobStoreUsage> {
    this.devDir(dev);
    let bytes = 0;
    let count = 0;
    for (const m of (await this.loadIndex(dev)).values()) {
      bytes += m.size;
      count++;
    }
    return { bytes, count };
  }
}

function meta(t: BlobTicket): BlobMeta {
  return { id: t.id, kind: t.kind, hr: t.hr, size: t.size, ticket: t };
}

async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
