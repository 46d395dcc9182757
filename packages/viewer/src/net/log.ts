/**
 * The viewer's access-log client (docs/protocol.md "The access log"): pure logic over injected I/O.
 * For each device an owner watches, it fetches the log through the sealed channel (`log/get` →
 * `log/update`), verifies it with @hearth/protocol's LogMonitor against the checkpoint verified
 * last time, cosigns the verified checkpoint with the viewer's identity key (C2SP
 * `cosignature/v1`, cosigner name = the viewer's `huk_…` text), publishes it to the server's
 * witness gossip (`PUT /v1/log/<deviceId>/cosigned`) and checks the other owners' cosigned
 * checkpoints (`GET …`) against its own: a device showing two owners two histories is
 * `E_LOG_FORK`. The last verified checkpoint, the verified entries and the alarms persist through
 * a {@link LogStore} (in the app: {@link idbLogStore} over the viewer's IndexedDB).
 *
 * API for the log screen:
 *
 * ```ts
 * const logs = new LogClient({
 *   signer: identity.signer, keyText: identity.keyText,     // store/keys.ts
 *   send: (deviceId, m) => channelRequest(deviceId, m),      // sealed channel; resolves to the reply (log/update | log/error)
 *   store: idbLogStore(db),
 *   device: async (id) => { const d = await getDevice(db, id); return d && { deviceId: d.deviceId, deviceKey: d.deviceKey, witnesses: owners } },
 * });
 * const r: LogRefresh = await logs.refresh(deviceId);
 * r.verdict      // 'verified' | 'tampered' | 'unavailable'
 * r.entries      // every verified entry kept ({index, entry: LogEntry}), oldest first
 * r.verifiedBy   // huk texts of the other owners' devices vouching for this checkpoint ("verified by N")
 * r.alarms       // every tampered verdict seen (persisted): show the red "Log tampered" banner if any
 * logs.saved(deviceId)  // what is stored, without asking the device
 * ```
 *
 * `witnesses` are the user keys of the device's owners (the ACL's `owners`): only their
 * cosignatures count.
 */
import {
  addCosignature,
  blobAuthorization,
  blobBaseUrl,
  type CryptoEnv,
  cosign,
  cosignerKey,
  decodeCosignedList,
  decodeId,
  decodeLogUpdateWire,
  HearthError,
  LOG_CHECKS,
  type LogChecks,
  type LogEntry,
  type LogGet,
  LogMonitor,
  type LogTampered,
  logCosignedPath,
  logOrigin,
  openCheckpoint,
  parseCheckpoint,
  parseNote,
  type Signer,
  systemEnv,
  UnavailableError,
  utf8,
} from '@hearth/protocol';

/** Entries asked for per `log/get`. */
export const LOG_PAGE = 128;
/** Most pages read in one refresh (a bound on a device that never stops paging). */
export const MAX_LOG_PAGES = 256;
/** Most verified entries kept per device (the oldest are dropped first). */
export const MAX_SAVED_ENTRIES = 5000;
/** Most alarms kept per device. */
export const MAX_SAVED_ALARMS = 16;

/** A verified entry and its index in the log. */
export interface LoggedEntry {
  readonly index: number;
  readonly entry: LogEntry;
}

/** What is persisted per device. */
export interface SavedLog {
  readonly v: 1;
  /** The device-signed checkpoint note verified last (re-verified on load). */
  readonly note: string;
  readonly entries: readonly LoggedEntry[];
  readonly alarms: readonly LogTampered[];
  /** Witnesses that vouched for the last checkpoint. */
  readonly verifiedBy: readonly string[];
}

/** Where the client keeps each device's {@link SavedLog}. */
export interface LogStore {
  load(deviceId: string): Promise<SavedLog | undefined>;
  save(deviceId: string, s: SavedLog): Promise<void>;
}

/** A device as the log client needs it. */
export interface LogDevice {
  deviceId: string;
  /** `hdk_…`, pinned at pairing. */
  deviceKey: string;
  /** The owners' user keys (`huk_…`): their cosignatures count. The viewer's own is added. */
  witnesses?: readonly string[];
}

/** The fetch the gossip needs (the global one in the app). */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
) => Promise<{ status: number; text(): Promise<string> }>;

/** Options of {@link LogClient}. */
export interface LogClientOptions {
  /** The viewer's identity signer and its `huk_…` text (the cosigner name). */
  signer: Signer;
  keyText: string;
  /** Send a message to the device through the sealed channel; resolves to its reply message. */
  send(deviceId: string, m: LogGet): Promise<unknown>;
  /** Server base URL (`https://host`, or the rendezvous `wss://host/ws`); default the page's origin. */
  server?: string;
  /** For the gossip; none: no gossip (a split view is then caught only by this viewer's own history). */
  fetch?: FetchLike;
  store?: LogStore;
  /** Look up a device not yet watched (its pinned key, its owners). */
  device?(deviceId: string): Promise<LogDevice | undefined>;
  env?: CryptoEnv;
  /** TEST ONLY: the monitor's checks (the controls that show an attack test can fail). */
  checks?: LogChecks;
  /** Entries asked for per `log/get` (default {@link LOG_PAGE}). */
  page?: number;
}

/** The outcome of one refresh. */
export interface LogRefresh {
  /** `verified`: all checks passed; `tampered`: one failed (see `tampered`); `unavailable`: no answer. */
  readonly verdict: 'verified' | 'tampered' | 'unavailable';
  /** The verified tree size. */
  readonly size: number;
  /** Every verified entry kept, oldest first. */
  readonly entries: readonly LoggedEntry[];
  /** How many entries this refresh verified. */
  readonly added: number;
  /** Other owners' devices (huk texts) that vouch for the checkpoint. */
  readonly verifiedBy: readonly string[];
  /** Every tampered verdict seen for this device (persisted), oldest first. */
  readonly alarms: readonly LogTampered[];
  /** This refresh's tampered verdict. */
  readonly tampered?: LogTampered;
  /** Why unavailable (`log/error` code, E_NO_SERVER…); a gossip failure that did not stop the check. */
  readonly error?: string;
  /** Whether this viewer's cosigned checkpoint reached the server. */
  readonly published: boolean;
}

interface Watched {
  device: LogDevice;
  key: Uint8Array;
  entries: LoggedEntry[];
  alarms: LogTampered[];
  verifiedBy: string[];
  note: string | undefined;
}

function tamperedOf(e: unknown): LogTampered {
  if (e instanceof HearthError) return { ok: false, tampered: e.code, reason: e.message, attack: false };
  throw e;
}

/** The access-log client of one viewer. */
export class LogClient {
  private readonly monitor: LogMonitor;
  private readonly watched = new Map<string, Watched>();
  private readonly env: CryptoEnv;
  /** Per device, the refresh running now (the next one waits for it). */
  private readonly running = new Map<string, Promise<unknown>>();
  private readonly page: number;

  constructor(private readonly o: LogClientOptions) {
    this.monitor = new LogMonitor(o.checks ?? LOG_CHECKS);
    this.env = o.env ?? systemEnv;
    this.page = o.page ?? LOG_PAGE;
  }

  /** Watch a device: load what was saved (its checkpoint is verified again with the pinned key). */
  async watch(d: LogDevice): Promise<void> {
    const key = decodeId('deviceKey', d.deviceKey);
    const names = [...new Set([...(d.witnesses ?? []), this.o.keyText])];
    const witnesses = await Promise.all(names.map((n) => cosignerKey(n, decodeId('userKey', n))));
    const saved = await this.o.store?.load(d.deviceId);
    let state: Awaited<ReturnType<typeof openCheckpoint>> | undefined;
    let note: string | undefined;
    if (saved?.v === 1) {
      try {
        state = await openCheckpoint(saved.note, logOrigin(d.deviceId), key);
        note = saved.note;
      } catch {
        state = undefined; // a damaged record: start again (trust on first use)
      }
    }
    this.monitor.addDevice(d.deviceId, key, witnesses, state);
    this.watched.set(d.deviceId, {
      device: d,
      key,
      entries: state ? [...(saved?.entries ?? [])] : [],
      alarms: [...(saved?.alarms ?? [])],
      verifiedBy: state ? [...(saved?.verifiedBy ?? [])] : [],
      note,
    });
  }

  /** What is kept for `deviceId` (no request): size, entries, alarms. */
  saved(deviceId: string): Omit<LogRefresh, 'verdict' | 'added' | 'published'> | undefined {
    const w = this.watched.get(deviceId);
    if (!w) return undefined;
    return {
      size: this.monitor.checkpoint(deviceId)?.size ?? 0,
      entries: [...w.entries],
      verifiedBy: [...w.verifiedBy],
      alarms: [...w.alarms],
    };
  }

  private async get(deviceId: string): Promise<Watched> {
    let w = this.watched.get(deviceId);
    if (!w) {
      const d = await this.o.device?.(deviceId);
      if (!d) throw new RangeError(`device ${deviceId} is not watched`);
      await this.watch(d);
      w = this.watched.get(deviceId)!;
    }
    return w;
  }

  /**
   * Fetch, verify, cosign and publish; check the other owners' cosigned checkpoints. Never throws
   * for what the device or the server sent (a tampered or unavailable verdict); throws RangeError
   * for a device it cannot watch. One refresh at a time per device: two racing would both
   * advance from the same verified size, and the second would then look like a fork (a false
   * "Log tampered"), and two first ones would both start watching it.
   */
  refresh(deviceId: string): Promise<LogRefresh> {
    const prev = this.running.get(deviceId) ?? Promise.resolve();
    const run = prev.then(
      () => this.refreshNow(deviceId),
      () => this.refreshNow(deviceId),
    );
    this.running.set(
      deviceId,
      run.catch(() => undefined),
    );
    return run;
  }

  private async refreshNow(deviceId: string): Promise<LogRefresh> {
    const w = await this.get(deviceId);
    let gossipError: string | undefined;
    const others = async (): Promise<string[] | undefined> => {
      try {
        return await this.fetchOthers(w);
      } catch (e) {
        gossipError = e instanceof HearthError ? e.code : 'E_NO_SERVER';
        return undefined;
      }
    };
    let witnessed = (await others()) ?? [];
    const first = await this.round(w, witnessed);
    if (first.verdict !== 'verified') return { ...first, ...(gossipError ? { error: gossipError } : {}) };
    const published = await this.publish(w).catch((e) => {
      gossipError = e instanceof HearthError ? e.code : 'E_NO_SERVER';
      return false;
    });
    // A first publication opens the gossip to this viewer: check the others' notes now.
    if (published && witnessed.length === 0) {
      witnessed = (await others()) ?? [];
      if (witnessed.length) {
        const second = await this.round(w, witnessed);
        if (second.verdict !== 'verified') return { ...second, published };
        return { ...second, added: first.added + second.added, published };
      }
    }
    return { ...first, published, ...(gossipError ? { error: gossipError } : {}) };
  }

  /** One verification pass: page through `log/get` from the verified size to the device's. */
  private async round(w: Watched, witnessed: readonly string[]): Promise<LogRefresh> {
    const id = w.device.deviceId;
    const wit: number[] = witnessed.map((n) => parseCheckpoint(parseNote(n).text).size);
    let added = 0;
    let verifiedBy: readonly string[] = w.verifiedBy;
    const result = (verdict: LogRefresh['verdict'], extra: Partial<LogRefresh> = {}): LogRefresh => ({
      verdict,
      size: this.monitor.checkpoint(id)?.size ?? 0,
      entries: [...w.entries],
      added,
      verifiedBy: [...verifiedBy],
      alarms: [...w.alarms],
      published: false,
      ...extra,
    });
    const alarm = async (t: LogTampered) => {
      w.alarms.push(t);
      if (w.alarms.length > MAX_SAVED_ALARMS) w.alarms.shift();
      await this.save(w);
      return result('tampered', { tampered: t });
    };
    for (let page = 0; page < MAX_LOG_PAGES; page++) {
      const from = this.monitor.checkpoint(id)?.size ?? 0;
      let reply: unknown;
      try {
        reply = await this.o.send(id, { t: 'log/get', from, max: this.page, ...(wit.length ? { wit } : {}) });
      } catch (e) {
        return result('unavailable', { error: e instanceof HearthError ? e.code : 'E_NO_SERVER' });
      }
      const r = reply as { t?: unknown; code?: unknown };
      if (r?.t === 'log/error')
        return result('unavailable', { error: typeof r.code === 'string' ? r.code : 'E_SCHEMA' });
      let update: ReturnType<typeof decodeLogUpdateWire>;
      try {
        update = decodeLogUpdateWire(reply, witnessed);
      } catch (e) {
        return alarm(tamperedOf(e));
      }
      const v = await this.monitor.update(id, update);
      if (!v.ok) return alarm(v);
      const start = update.entries?.start ?? from;
      for (let i = 0; i < v.entries.length; i++) w.entries.push({ index: start + i, entry: v.entries[i]! });
      if (w.entries.length > MAX_SAVED_ENTRIES) w.entries.splice(0, w.entries.length - MAX_SAVED_ENTRIES);
      added += v.entries.length;
      verifiedBy = v.verifiedBy.filter((n) => n !== this.o.keyText);
      w.verifiedBy = [...verifiedBy];
      w.note =
        typeof update.checkpoint === 'string'
          ? update.checkpoint
          : new TextDecoder().decode(update.checkpoint);
      await this.save(w);
      if (v.entries.length < this.page || v.size === from) break;
    }
    return result('verified');
  }

  private async save(w: Watched): Promise<void> {
    if (!this.o.store || !w.note) return;
    await this.o.store.save(w.device.deviceId, {
      v: 1,
      note: w.note,
      entries: [...w.entries],
      alarms: [...w.alarms],
      verifiedBy: [...w.verifiedBy],
    });
  }

  private base(): string {
    return blobBaseUrl(this.o.server ?? globalThis.location.origin);
  }

  private async request(
    method: 'GET' | 'PUT',
    path: string,
    body?: string,
  ): Promise<{ status: number; text: string }> {
    const f = this.o.fetch!;
    const bytes = body === undefined ? undefined : utf8(body);
    const authorization = await blobAuthorization(this.o.signer, 'user', method, path, bytes, this.env);
    const r = await f(`${this.base()}${path}`, {
      method,
      headers: { authorization, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body } : {}),
    });
    return { status: r.status, text: await r.text() };
  }

  /** Cosign the last verified checkpoint and publish it. */
  private async publish(w: Watched): Promise<boolean> {
    const cp = this.monitor.checkpoint(w.device.deviceId);
    if (!this.o.fetch || !cp || !w.note) return false;
    const line = await cosign(cp, this.o.keyText, this.o.signer, Math.floor(this.env.now() / 1000));
    const note = addCosignature(w.note, line);
    const r = await this.request(
      'PUT',
      logCosignedPath(w.device.deviceId),
      JSON.stringify({ note, key: this.o.keyText, dk: w.device.deviceKey }),
    );
    return r.status === 204;
  }

  /**
   * The other owners' cosigned notes from the gossip: parsed, carrying a signature line of a known
   * witness other than this viewer (the monitor verifies them), at most 16.
   */
  private async fetchOthers(w: Watched): Promise<string[]> {
    if (!this.o.fetch) return [];
    const r = await this.request('GET', logCosignedPath(w.device.deviceId));
    if (r.status === 403) return []; // nothing published by this viewer yet
    if (r.status !== 200) throw new UnavailableError('E_NO_SERVER', `gossip answered ${r.status}`);
    const names = new Set((w.device.witnesses ?? []).filter((n) => n !== this.o.keyText));
    const out: string[] = [];
    for (const { note } of decodeCosignedList(r.text).list) {
      try {
        const sigs = parseNote(note).signatures;
        parseCheckpoint(parseNote(note).text);
        if (sigs.some((s) => names.has(s.name)) && !sigs.some((s) => s.name === this.o.keyText))
          out.push(note);
      } catch {
        // not a note: the monitor would only call it malformed
      }
    }
    return out.slice(0, 16);
  }
}

/** A {@link LogStore} over the viewer's IndexedDB (`keys` store, key `log/<deviceId>`). */
export function idbLogStore(db: {
  get<T>(store: 'keys', key: IDBValidKey): Promise<T | undefined>;
  put(store: 'keys', value: unknown, key?: IDBValidKey): Promise<void>;
}): LogStore {
  return {
    load: (id) => db.get<SavedLog>('keys', `log/${id}`),
    save: (id, s) => db.put('keys', s, `log/${id}`),
  };
}
