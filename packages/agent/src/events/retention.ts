/**
 * Retention (the camera map's `retention: {days, bytes}`): the local index of what the server
 * holds (`<dataDir>/uploaded.json`, so the agent can delete it there later), and the plan of what
 * to delete: per camera, newest first, everything older than `days` or past `bytes` (counting the
 * outbox and the server together).
 */
import { join } from 'node:path';
import { ConfigError, parseJson } from '@hearth/protocol';
import { readPrivateFile, writePrivateFile } from '../device/files.js';
import { RETENTION_DEFAULTS, type RetentionConfig } from './config.js';
import type { OutboxKind, OutboxMeta } from './outbox.js';

/** One blob the server holds, as the agent remembers it. */
export interface StoredBlob {
  readonly id: string;
  readonly kind: OutboxKind;
  readonly cam: string;
  readonly t: number;
  readonly size: number;
  readonly hr: number;
}

/** Most blobs remembered; past it the oldest are forgotten (and logged by the caller). */
export const MAX_INDEX_ENTRIES = 200_000;

/** `<dataDir>/uploaded.json`: the blobs put to the server and not deleted since. */
export class UploadedIndex {
  private readonly entries = new Map<string, StoredBlob>();
  private constructor(private readonly path: string) {}

  static load(dataDir: string): UploadedIndex {
    const idx = new UploadedIndex(join(dataDir, 'uploaded.json'));
    const raw = readPrivateFile(idx.path, 64 * 1024 * 1024);
    if (raw) {
      const j = parseJson(new Uint8Array(raw), 64 * 1024 * 1024) as { v?: unknown; blobs?: unknown };
      if (j?.v !== 1 || !Array.isArray(j.blobs))
        throw new ConfigError('E_CONFIG', `${idx.path} is not an index of uploaded blobs`);
      for (const b of j.blobs as StoredBlob[])
        if (typeof b?.id === 'string' && typeof b.cam === 'string' && Number.isSafeInteger(b.t))
          idx.entries.set(b.id, b);
    }
    return idx;
  }

  list(): StoredBlob[] {
    return [...this.entries.values()];
  }

  get count(): number {
    return this.entries.size;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  add(m: OutboxMeta): StoredBlob[] {
    this.entries.set(m.id, { id: m.id, kind: m.kind, cam: m.cam, t: m.t, size: m.size, hr: m.hr });
    const forgotten: StoredBlob[] = [];
    if (this.entries.size > MAX_INDEX_ENTRIES)
      for (const b of this.list().sort((a, b) => a.t - b.t)) {
        if (this.entries.size <= MAX_INDEX_ENTRIES) break;
        this.entries.delete(b.id);
        forgotten.push(b);
      }
    this.save();
    return forgotten;
  }

  remove(id: string): boolean {
    if (!this.entries.delete(id)) return false;
    this.save();
    return true;
  }

  private save(): void {
    writePrivateFile(this.path, JSON.stringify({ v: 1, blobs: this.list() }));
  }
}

/**
 * Which of `items` (the outbox's and the server's, of every camera) to delete at `now`: per
 * camera, newest first, keep while younger than `days` and within `bytes`; the rest goes.
 */
export function retentionPlan(
  items: readonly { id: string; cam: string; t: number; size: number }[],
  rule: (camera: string) => RetentionConfig | undefined,
  now: number,
): string[] {
  const byCam = new Map<string, { id: string; t: number; size: number }[]>();
  for (const i of items) {
    const l = byCam.get(i.cam) ?? [];
    l.push(i);
    byCam.set(i.cam, l);
  }
  const out: string[] = [];
  for (const [cam, list] of byCam) {
    const r = rule(cam) ?? RETENTION_DEFAULTS;
    const oldest = now - r.days * 86_400_000;
    list.sort((a, b) => b.t - a.t || (a.id < b.id ? -1 : 1));
    let bytes = 0;
    for (const i of list) {
      bytes += i.size;
      if (i.t < oldest || bytes > r.bytes) out.push(i.id);
    }
  }
  return out;
}
