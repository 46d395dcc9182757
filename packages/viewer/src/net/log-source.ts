/**
 * What the access-log and members screens need of a device's log: fetch what is new, verify it,
 * and say what was verified. {@link MonitorLogSource} does it with the protocol's LogMonitor over
 * `log/get` (HouseholdApi.getLog), trusting the first checkpoint it sees (TOFU per session).
 *
 * The app uses {@link ClientLogSource}: the same view over net/log.ts's `LogClient`, which also
 * persists the verified checkpoint, cosigns it and checks the other owners' cosigned checkpoints
 * through the server's gossip (so "verified by N" counts the owner's devices, and a split view is
 * caught). MonitorLogSource stays as the dependency-free reference the tests compare against.
 */
import { decodeId, fromB64u, type LogEntry, LogMonitor } from '@hearth/protocol';
import type { IndexedEntry, LogStatus } from '../core/log-view.js';
import { type HouseholdApi, HouseholdError, type LogUpdateWire } from './household.js';
import type { LogClient } from './log.js';

/** The verified view of one device's log. */
export interface LogSnapshot {
  /** Undefined until the first update was checked. */
  status: LogStatus | undefined;
  /** Every entry verified in this session, oldest first. */
  entries: IndexedEntry[];
  /** Every tampered verdict seen (kept: a later honest update does not hide one). */
  alarms: { code: string; reason: string }[];
}

export interface LogSource {
  /** Fetch the device's new entries, verify them, and return the verified view. */
  refresh(deviceId: string): Promise<LogSnapshot>;
  /** The last snapshot (no network). */
  snapshot(deviceId: string): LogSnapshot | undefined;
}

/** Entries fetched a page at a time. */
const PAGE = 256;

/** Decode a `log/update` for the monitor (b64u → bytes). Throws ProtocolError for bad base64. */
export function wireToUpdate(w: LogUpdateWire) {
  return {
    checkpoint: w.cp,
    consistency: w.cons.map((c) => fromB64u(c, 64)),
    entries: {
      start: w.start,
      entries: w.entries.map((e) => fromB64u(e, 4096)),
      proofs: w.proofs.map((p) => p.map((x) => fromB64u(x, 64))),
    },
  };
}

/** The tree size a checkpoint note names (its second line), or undefined. */
function noteSize(note: string): number | undefined {
  const n = Number(note.split('\n', 3)[1]);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export class MonitorLogSource implements LogSource {
  private readonly monitor = new LogMonitor();
  private readonly views = new Map<string, LogSnapshot & { have: Map<number, LogEntry> }>();
  private readonly busy = new Map<string, Promise<LogSnapshot>>();

  constructor(
    private readonly api: HouseholdApi,
    /** The device key pinned at pairing (`hdk_…`). */
    private readonly pinned: (deviceId: string) => string | undefined,
    /** Entries asked for per `log/get` (1 to 256). */
    private readonly page = PAGE,
  ) {}

  snapshot(deviceId: string): LogSnapshot | undefined {
    return this.views.get(deviceId);
  }

  /**
   * First advance to the device's newest checkpoint (from the size verified last: its consistency
   * proof and the first page of new entries), then read the rest page by page, each entry checked
   * by its inclusion proof in that checkpoint. A page of a newer checkpoint stops the round (the
   * next refresh goes on from there).
   */
  refresh(deviceId: string): Promise<LogSnapshot> {
    // One refresh at a time per device: two racing would both advance from the same size, and the
    // second would then look like a fork.
    const run = (this.busy.get(deviceId) ?? Promise.resolve()).then(
      () => this.refreshNow(deviceId),
      () => this.refreshNow(deviceId),
    );
    this.busy.set(deviceId, run);
    return run;
  }

  private async refreshNow(deviceId: string): Promise<LogSnapshot> {
    let view = this.views.get(deviceId);
    if (!view) {
      const dk = this.pinned(deviceId);
      if (!dk) throw new RangeError('device not paired');
      this.monitor.addDevice(deviceId, decodeId('deviceKey', dk));
      view = {
        status: undefined,
        entries: [],
        alarms: [],
        have: new Map(),
      };
      this.views.set(deviceId, view);
    }
    const v = view;
    const tampered = (code: string, reason: string): LogSnapshot => {
      v.status = { ok: false, code, reason };
      v.alarms.push({ code, reason });
      return v;
    };
    const add = (start: number, entries: readonly LogEntry[]) => {
      entries.forEach((e, i) => {
        v.have.set(start + i, e);
      });
      v.entries = [...v.have].sort((a, b) => a[0] - b[0]).map(([index, entry]) => ({ index, entry }));
    };
    // 1. Advance.
    const verified = this.monitor.checkpoint(deviceId)?.size ?? 0;
    const wire = await this.api.getLog(deviceId, verified, this.page);
    const size = noteSize(wire.cp);
    let u: ReturnType<typeof wireToUpdate>;
    try {
      u = wireToUpdate(wire);
    } catch {
      return tampered('E_LOG_NOTE', 'malformed log update');
    }
    const covers =
      size !== undefined && u.entries.start === verified && verified + u.entries.entries.length === size;
    const verdict = await this.monitor.update(
      deviceId,
      covers ? u : { checkpoint: u.checkpoint, consistency: u.consistency },
    );
    if (!verdict.ok) return tampered(verdict.tampered, verdict.reason);
    v.status = { ok: true, size: verdict.size, verifiedBy: 1 + verdict.verifiedBy.length };
    if (covers) add(verified, verdict.entries);
    else if (u.entries.entries.length) {
      const r = await this.monitor.read(deviceId, u.entries);
      if (!r.ok) return tampered(r.tampered, r.reason);
      add(r.start, r.entries);
    }
    // 2. Read what is still missing, a page at a time, against that checkpoint.
    for (let round = 0; round < 64; round++) {
      let next = 0;
      while (v.have.has(next)) next++;
      if (next >= verdict.size) break;
      const page = await this.api.getLog(deviceId, next, this.page);
      if (noteSize(page.cp) !== verdict.size) break;
      let fetched: ReturnType<typeof wireToUpdate>['entries'];
      try {
        fetched = wireToUpdate(page).entries;
      } catch {
        return tampered('E_LOG_NOTE', 'malformed log update');
      }
      if (fetched.entries.length === 0) break;
      const r = await this.monitor.read(deviceId, fetched);
      if (!r.ok) return tampered(r.tampered, r.reason);
      add(r.start, r.entries);
    }
    return v;
  }
}

/** {@link LogSource} over the log client (net/log.ts): cosigning and gossip included. */
export class ClientLogSource implements LogSource {
  private readonly snaps = new Map<string, LogSnapshot>();

  constructor(private readonly client: Pick<LogClient, 'refresh'>) {}

  snapshot(deviceId: string): LogSnapshot | undefined {
    return this.snaps.get(deviceId);
  }

  /** Rejects with HouseholdError(code) when the log could not be fetched (not an alarm). */
  async refresh(deviceId: string): Promise<LogSnapshot> {
    const r = await this.client.refresh(deviceId);
    const before = this.snaps.get(deviceId);
    const snap: LogSnapshot = {
      status:
        r.verdict === 'verified'
          ? { ok: true, size: r.size, verifiedBy: 1 + r.verifiedBy.length }
          : r.verdict === 'tampered' && r.tampered
            ? { ok: false, code: r.tampered.tampered, reason: r.tampered.reason }
            : before?.status,
      entries: r.entries.map((e) => ({ index: e.index, entry: e.entry })),
      alarms: r.alarms.map((a) => ({ code: a.tampered, reason: a.reason })),
    };
    this.snaps.set(deviceId, snap);
    if (r.verdict === 'unavailable' && snap.alarms.length === 0)
      throw new HouseholdError(r.error ?? 'E_OFFLINE');
    return snap;
  }
}
