/**
 * The device's reader keys (docs/events-contract.md §3): one X25519 key per user key, registered
 * by the viewer over the sealed channel (`reader/key`), kept in `<dataDir>/readers.json` (a private
 * file, written atomically). New blobs of a camera are sealed to the keys of the users whose grant
 * allows `clips` on that camera at that moment; a key whose grant lapsed stays stored (the grant
 * may come back) but gets nothing new.
 *
 * Clips are sealed to `clips` holders, snapshots to `snapshots` holders, event records to
 * `timeline` holders (grants.ts: a grant naming neither of the last two has them with `clips`),
 * each only for content made at or after the grant's history floor.
 *
 * A key is accepted only from a user whose grant allows `clips`, `snapshots` or `timeline` now, only when it is signed by
 * that very user key (E_WRONG_SIGNER otherwise: no registering a key for someone else), and only
 * when its signature verifies (E_BAD_SIGNATURE).
 */
import { join } from 'node:path';
import {
  AccessError,
  type Acl,
  ConfigError,
  decodeReaderKey,
  encodeReaderKey,
  HearthError,
  LimitError,
  MAX_CLIP_RECIPIENTS,
  parseJson,
  type ReaderKey,
  type Scope,
  verifyReaderKey,
} from '@hearth/protocol';
import { readPrivateFile, writePrivateFile } from '../device/files.js';

/** The scopes whose blobs are sealed to reader keys: clips, snapshots, event records (the timeline). */
export const SEALED_SCOPES = ['clips', 'snapshots', 'timeline'] as const;
export type SealedScope = (typeof SEALED_SCOPES)[number];

/** Most keys stored (one per user key; the ACL's grants bound it already). */
export const MAX_READER_KEYS = 1024;

export function readersPath(dataDir: string): string {
  return join(dataDir, 'readers.json');
}

export class ReaderKeyStore {
  private constructor(
    private readonly path: string,
    private readonly keys: Map<string, ReaderKey>,
    private readonly scope: Scope,
  ) {}

  /**
   * Load `<dataDir>/readers.json` (none yet: empty). Each key's signature is checked again; a
   * damaged file is refused (ConfigError) rather than silently emptied.
   */
  static async load(
    dataDir: string,
    o: {
      /**
       * TEST ONLY: check this scope instead of `clips` (the control of the reader-key tests: a
       * store that checks the wrong scope lets a member without `clips` read recordings).
       */
      scopeForTests?: Scope;
    } = {},
  ): Promise<ReaderKeyStore> {
    const path = readersPath(dataDir);
    const raw = readPrivateFile(path);
    const keys = new Map<string, ReaderKey>();
    if (raw) {
      try {
        const j = parseJson(new Uint8Array(raw), 1024 * 1024) as { v?: unknown; keys?: unknown };
        if (j?.v !== 1 || !Array.isArray(j.keys) || j.keys.length > MAX_READER_KEYS)
          throw new ConfigError('E_CONFIG', 'not a reader-key list');
        for (const t of j.keys) {
          const rk = decodeReaderKey(t);
          await verifyReaderKey(rk);
          keys.set(rk.userKey, rk);
        }
      } catch (e) {
        if (e instanceof HearthError)
          throw new ConfigError(e.code, `${path} is not a valid reader-key file: ${e.message}`, { cause: e });
        throw e;
      }
    }
    return new ReaderKeyStore(path, keys, o.scopeForTests ?? 'clips');
  }

  get size(): number {
    return this.keys.size;
  }

  get(userKey: string): ReaderKey | undefined {
    return this.keys.get(userKey);
  }

  /**
   * Register `rkText` (an encoded reader key) sent by `from`. Throws a HearthError with the code
   * to answer in `reader/error`: E_NO_GRANT / E_SCOPE / E_GRANT_EXPIRED… (the ACL's answer for `clips`),
   * E_SCHEMA / E_DECODE / E_BAD_ID (not a reader key), E_WRONG_SIGNER (signed by another user
   * key), E_BAD_SIGNATURE, E_TOO_LARGE (the store is full).
   */
  async register(from: string, rkText: string, acl: Acl | undefined, now: number): Promise<ReaderKey> {
    if (!acl) throw new AccessError('E_NO_GRANT', 'the device is not paired');
    // The grant first: a stranger learns nothing about its key's validity.
    // Any of the sealed scopes (clips, snapshots, timeline) needs a reader key.
    let d = acl.authorize(from, this.scope, now);
    for (const s of this.scope === 'clips' ? SEALED_SCOPES : []) {
      if (d.allowed) break;
      d = acl.authorize(from, s, now);
    }
    if (!d.allowed) throw d.error;
    const rk = decodeReaderKey(rkText);
    await verifyReaderKey(rk, from);
    if (!this.keys.has(rk.userKey) && this.keys.size >= MAX_READER_KEYS)
      throw new LimitError('E_TOO_LARGE', 'too many reader keys');
    const next = new Map(this.keys);
    next.set(rk.userKey, rk);
    this.save(next); // on disk before the viewer hears `reader/ok`
    this.keys.set(rk.userKey, rk);
    return rk;
  }

  /** Forget a user's key (e.g. the user left the ACL). */
  remove(userKey: string): boolean {
    if (!this.keys.has(userKey)) return false;
    const next = new Map(this.keys);
    next.delete(userKey);
    this.save(next);
    this.keys.delete(userKey);
    return true;
  }

  /**
   * The keys to seal a new blob of `camera` to: those of users whose grant allows `o.scope`
   * (default `clips`) on it at `now` (schedules included) for content made at `o.at` (the history
   * floor) — the owners always — sorted by user key, at most {@link MAX_CLIP_RECIPIENTS}.
   */
  recipients(
    acl: Acl | undefined,
    camera: string,
    now: number,
    o: { scope?: SealedScope; at?: number } = {},
  ): ReaderKey[] {
    if (!acl) return [];
    const scope = this.scope === 'clips' ? (o.scope ?? 'clips') : this.scope;
    const opts = o.at !== undefined ? { at: o.at } : {};
    const out: ReaderKey[] = [];
    for (const [k, rk] of [...this.keys].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (acl.authorize(k, scope, now, camera, opts).allowed) out.push(rk);
      if (out.length >= MAX_CLIP_RECIPIENTS) break;
    }
    return out;
  }

  private save(keys: Map<string, ReaderKey>): void {
    writePrivateFile(
      this.path,
      JSON.stringify({ v: 1, keys: [...keys.values()].map((rk) => JSON.parse(encodeReaderKey(rk))) }),
    );
  }
}
