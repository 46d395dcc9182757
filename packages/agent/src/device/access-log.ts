/**
 * The device's access log (threat model S9): an append-only, tamper-evident record of who paired,
 * who was granted or lost access, who watched live, and to whom each clip was sealed. The Merkle
 * tree, checkpoints and entry format are @hearth/protocol's `tlog/`; this module is the storage and
 * the device side of `log/get` → `log/update`.
 *
 * On disk, under `<dataDir>/log/` (mode 0700, files 0600):
 *
 * - `entries`: one record per leaf, `u32 big-endian length || leaf data` (an entry's canonical
 *   JSON, at most MAX_LOG_ENTRY_BYTES), appended and fsynced before the hash;
 * - `hashes`: the 32-byte RFC 6962 leaf hash of each record, in order (a cache of the tree's
 *   leaves; rebuilt from `entries` when it disagrees).
 *
 * Crash safety: a record cut short by a crash (a length prefix with fewer bytes after it, a
 * length out of range, or a last record that is not a valid entry, as a zero-filled block after a
 * power cut leaves it) is truncated away on open, so a torn tail never becomes a leaf; an entry is
 * a leaf only once its record is on disk. The log is only as safe as the data directory: whoever
 * can rewrite these files (or holds the device key) can rewrite history, and that is what the
 * owners' viewers catch (their verified checkpoints and the server's witness gossip: a dropped,
 * reordered or rolled-back entry is `E_LOG_FORK` / `E_LOG_ROLLBACK` / `E_LOG_PROOF` there).
 *
 * Other modules append through {@link LogSink} (fire-and-forget): `append` never throws to its
 * caller; a failure is logged and reported through `onError`.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir, type Logger, silentLogger } from '@hearth/node';
import {
  type Acl,
  b64u,
  CachedTree,
  decodeId,
  decodeLogEntry,
  encodeLogEntry,
  encodeProofWire,
  type LogEntry,
  type LogUpdateWire,
  leafHash,
  logKeyHash,
  logOrigin,
  MAX_LOG_ENTRY_BYTES,
  MAX_LOG_PAGE,
  MAX_MESSAGE_BYTES,
  type Signer,
  signCheckpoint,
  utf8,
} from '@hearth/protocol';

/**
 * How other agent modules add to the access log: fire-and-forget, never throws. An entry may be
 * given as a promise (its key hashes are computed asynchronously): it still takes its place in
 * the order of the calls.
 */
export interface LogSink {
  append(entry: LogEntry | Promise<LogEntry>): void;
}

/** Entries per `log/update` when `log/get` names no `max`. */
export const DEFAULT_LOG_PAGE = 64;
/** Room left in a `log/update` for the channel's framing. */
const MESSAGE_MARGIN = 1024;

export function accessLogDir(dataDir: string): string {
  return join(dataDir, 'log');
}

function openPrivate(path: string): number {
  const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  if (process.platform !== 'win32') fs.fchmodSync(fd, 0o600);
  return fd;
}

function readAll(fd: number): Buffer {
  const size = fs.fstatSync(fd).size;
  const buf = Buffer.alloc(size);
  let off = 0;
  while (off < size) {
    const n = fs.readSync(fd, buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}

function writeAt(fd: number, data: Uint8Array, pos: number): void {
  let off = 0;
  while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, pos + off);
}

function isEntry(data: Uint8Array): boolean {
  try {
    decodeLogEntry(data);
    return true;
  } catch {
    return false;
  }
}

/** Split the entries file into records; `end` is where the last whole record ends. */
function parseRecords(buf: Buffer): { records: Uint8Array[]; ends: number[] } {
  const records: Uint8Array[] = [];
  const ends: number[] = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt32BE(off);
    if (len === 0 || len > MAX_LOG_ENTRY_BYTES || off + 4 + len > buf.length) break;
    records.push(new Uint8Array(buf.subarray(off + 4, off + 4 + len)));
    off += 4 + len;
    ends.push(off);
  }
  return { records, ends };
}

/** Options of {@link AccessLog.open}. */
export interface AccessLogOptions {
  dataDir: string;
  deviceId: string;
  /** The device key: checkpoints are signed with it. */
  signer: Signer;
  log?: Logger;
  /** Told of every append that failed (the entry is lost; the log stays as it was). */
  onError?: (e: Error, entry: LogEntry | undefined) => void;
}

/** The device's access log on disk. */
export class AccessLog implements LogSink {
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly origin: string;
  private readonly tree: CachedTree;
  private readonly log: Logger;

  private constructor(
    private readonly o: AccessLogOptions,
    private readonly entriesFd: number,
    private readonly hashesFd: number,
    private readonly data: Uint8Array[],
    private readonly leaves: Uint8Array[],
    private entriesEnd: number,
    /** Bytes cut from a torn tail on open (0: none). */
    readonly truncated: number,
  ) {
    this.origin = logOrigin(o.deviceId);
    this.log = o.log ?? silentLogger;
    this.tree = new CachedTree(leaves);
  }

  /** Open (or create) `<dataDir>/log/`, cutting a torn tail and rebuilding the hash file if needed. */
  static async open(o: AccessLogOptions): Promise<AccessLog> {
    const dir = accessLogDir(o.dataDir);
    ensurePrivateDir(dir);
    const efd = openPrivate(join(dir, 'entries'));
    const hfd = openPrivate(join(dir, 'hashes'));
    try {
      const buf = readAll(efd);
      const { records, ends } = parseRecords(buf);
      // A last record that is not an entry is what a crash leaves when the length went to disk and
      // the data did not (zeros): cut it, as the other torn tails.
      if (records.length && !isEntry(records[records.length - 1]!)) {
        records.pop();
        ends.pop();
      }
      const end = ends.at(-1) ?? 0;
      if (end < buf.length) {
        fs.ftruncateSync(efd, end);
        fs.fsyncSync(efd);
      }
      const leaves = await Promise.all(records.map((r) => leafHash(r)));
      const want = Buffer.concat(leaves);
      const have = readAll(hfd);
      if (!have.equals(want)) {
        fs.ftruncateSync(hfd, 0);
        writeAt(hfd, want, 0);
        fs.fsyncSync(hfd);
        if (have.length !== 0 || want.length !== 0)
          (o.log ?? silentLogger).warn(
            { entries: records.length, hashes: Math.floor(have.length / 32) },
            'access log: hash file rebuilt from the entries',
          );
      }
      const log = new AccessLog(o, efd, hfd, records, leaves, end, buf.length - end);
      if (log.truncated)
        log.log.warn({ bytes: log.truncated }, 'access log: cut a torn tail (a crash during an append)');
      return log;
    } catch (e) {
      fs.closeSync(efd);
      fs.closeSync(hfd);
      throw e;
    }
  }

  /** Number of entries. */
  get size(): number {
    return this.leaves.length;
  }

  /** The leaf data of entry `index` (tests, the agent's own use). */
  entry(index: number): Uint8Array {
    const d = this.data[index];
    if (!d) throw new RangeError('no such entry');
    return d.slice();
  }

  /**
   * Append an entry; resolves to its index, or -1 when it could not be written (logged and
   * reported through `onError`). Appends are serialised, in call order. Never rejects.
   */
  append(entry: LogEntry | Promise<LogEntry>): Promise<number> {
    if (this.closed) {
      Promise.resolve(entry).catch(() => undefined);
      return Promise.resolve(-1);
    }
    let made: LogEntry | undefined;
    const p = this.chain.then(async () => {
      made = await entry;
      return this.write(made);
    });
    this.chain = p.catch(() => undefined);
    return p.catch((e: Error) => {
      this.log.error({ err: e.message, k: made?.k }, 'access log: could not append an entry');
      try {
        this.o.onError?.(e, made);
      } catch {
        // the reporter's failure is not the log's
      }
      return -1;
    });
  }

  private async write(entry: LogEntry): Promise<number> {
    const data = encodeLogEntry(entry);
    const h = await leafHash(data);
    const rec = new Uint8Array(4 + data.length);
    new DataView(rec.buffer).setUint32(0, data.length, false);
    rec.set(data, 4);
    const at = this.entriesEnd;
    try {
      writeAt(this.entriesFd, rec, at);
      fs.fsyncSync(this.entriesFd);
    } catch (e) {
      // Leave no half record behind for the next append to follow.
      try {
        fs.ftruncateSync(this.entriesFd, at);
      } catch {}
      throw e;
    }
    this.entriesEnd = at + rec.length;
    writeAt(this.hashesFd, h, this.leaves.length * 32);
    fs.fsyncSync(this.hashesFd);
    this.data.push(data);
    this.leaves.push(h);
    return this.leaves.length - 1;
  }

  /** Wait for the appends queued so far. */
  async flush(): Promise<void> {
    await this.chain.catch(() => undefined);
  }

  /** The signed checkpoint note of the log at `size` (default: now), signed with the device key. */
  async checkpoint(size = this.size): Promise<string> {
    return signCheckpoint(
      { origin: this.origin, size, root: await this.tree.root(0, size), extensions: [] },
      this.o.signer,
    );
  }

  /**
   * The answer to `log/get {from, max, wit}`: entries `from`.. (at most `max`, fewer when the
   * message would pass MAX_MESSAGE_BYTES), the checkpoint at the end of that page, the consistency
   * proof from `from` to it, and one consistency proof per `wit` size. A `from` beyond the log
   * (a viewer that verified more than the device now has: a rollback) gets the checkpoint of now
   * and no entries, for the viewer to see it. Throws RangeError only when even an empty page is
   * too large (the agent answers `log/error {code: 'E_TOO_LARGE'}`).
   */
  async update(from: number, max = DEFAULT_LOG_PAGE, wit: readonly number[] = []): Promise<LogUpdateWire> {
    await this.flush();
    const size = this.size;
    const tree = this.tree;
    const page = Math.max(0, Math.min(max, MAX_LOG_PAGE));
    let n = from > size ? 0 : Math.min(page, size - from);
    for (;;) {
      const end = from > size ? size : from + n;
      const start = from > size ? size : from;
      const entries: string[] = [];
      const proofs: string[][] = [];
      for (let i = start; i < end; i++) {
        entries.push(b64u(this.data[i]!));
        proofs.push(encodeProofWire(await tree.inclusion(i, end)));
      }
      const wcons: string[][] = [];
      for (const w of wit) {
        const [a, b] = w <= end ? [w, end] : [end, w];
        wcons.push(b > size ? [] : encodeProofWire(await tree.consistency(a, b)));
      }
      const m: LogUpdateWire = {
        t: 'log/update',
        cp: await this.checkpoint(end),
        cons: from > size ? [] : encodeProofWire(await tree.consistency(from, end)),
        start,
        entries,
        proofs,
        ...(wit.length ? { wcons } : {}),
      };
      if (JSON.stringify(m).length <= MAX_MESSAGE_BYTES - MESSAGE_MARGIN) return m;
      if (n === 0) throw new RangeError('log/update does not fit in a message');
      n = Math.floor(n / 2);
    }
  }

  /** Close the files (appends queued so far are written first). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flush();
    fs.closeSync(this.entriesFd);
    fs.closeSync(this.hashesFd);
  }
}

// ---------------------------------------------------------------- entry helpers

/** The log's name for a user key (`huk_…` text) or raw key bytes: logKeyHash of the raw key. */
export function keyHashOf(key: string | Uint8Array): Promise<string> {
  return logKeyHash(typeof key === 'string' ? decodeId('userKey', key) : key);
}

/** The log's name for an ID given as text (a session ID, a clip ID): logKeyHash of its UTF-8. */
export function idHashOf(id: string): Promise<string> {
  return logKeyHash(utf8(id));
}

/**
 * The log entries of an applied ACL update signed by `by` (user key text), at `t`, from the
 * protocol's `acl.diff`: a subject granted (owners added to the `owners` list included), changed
 * or revoked (owners removed included), and a `config/change` for the recovery key or the camera
 * groups.
 */
export async function aclLogEntries(prev: Acl, next: Acl, by: string, t: number): Promise<LogEntry[]> {
  const d = prev.diff(next);
  const byHash = await keyHashOf(by);
  const ver = next.state.ver;
  const subject = (k: string) => keyHashOf(k);
  const out: LogEntry[] = [];
  for (const g of d.granted)
    out.push({ v: 1, t, k: 'acl/grant', subject: await subject(g.sub), by: byHash, ver, role: g.role });
  for (const k of d.ownersAdded)
    out.push({ v: 1, t, k: 'acl/grant', subject: await subject(k), by: byHash, ver, role: 'owner' });
  for (const c of d.changed)
    out.push({ v: 1, t, k: 'acl/change', subject: await subject(c.sub), by: byHash, ver, role: c.role });
  for (const k of [...d.revoked, ...d.ownersRemoved])
    out.push({ v: 1, t, k: 'acl/revoke', subject: await subject(k), by: byHash, ver });
  if (d.recoveryChanged) out.push({ v: 1, t, k: 'config/change', field: 'acl.recovery', by: byHash });
  if (d.groupsChanged) out.push({ v: 1, t, k: 'config/change', field: 'acl.groups', by: byHash });
  return out;
}
