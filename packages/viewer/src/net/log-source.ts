/**
 * What the access-log and members screens need of a device's log: fetch what is new, verify it,
 * and say what was verified. {@link MonitorLogSource} does it with the protocol's LogMonitor over
 * `log/get` (HouseholdApi.getLog), trusting the first checkpoint it sees (TOFU per session).
 *
 * TODO(merge): the log helper's `LogClient` (net/log.ts) also cosigns and gossips checkpoints
 * through the server (so N of the owner's devices vouch for one history); adapt it to
 * {@link LogSource} and drop MonitorLogSource, or keep this as its offline fallback.
 */
import { decodeId, fromB64u, type LogEntry, LogMonitor } from '@hearth/protocol';
import type { IndexedEntry, LogStatus } from '../core/log-view.js';
import type { HouseholdApi, LogUpdateWire } from './household.js';

/** The verified view of one device's log. */
export interface LogSnapshot {
  status: LogStatus;
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

export class MonitorLogSource implements LogSource {
  private readonly monitor = new LogMonitor();
  private readonly views = new Map<string, LogSnapshot>();

  constructor(
    private readonly api: HouseholdApi,
    /** The device key pinned at pairing (`hdk_…`). */
    private readonly pinned: (deviceId: string) => string | undefined,
  ) {}

  snapshot(deviceId: string): LogSnapshot | undefined {
    return this.views.get(deviceId);
  }

  async refresh(deviceId: string): Promise<LogSnapshot> {
    let view = this.views.get(deviceId);
    if (!view) {
      const dk = this.pinned(deviceId);
      if (!dk) throw new RangeError('device not paired');
      this.monitor.addDevice(deviceId, decodeId('deviceKey', dk));
      view = { status: { ok: false, code: 'E_PENDING', reason: 'not fetched' }, entries: [], alarms: [] };
      this.views.set(deviceId, view);
    }
    for (let round = 0; round < 64; round++) {
      const from = this.monitor.checkpoint(deviceId)?.size ?? 0;
      const wire = await this.api.getLog(deviceId, from, PAGE);
      let verdict: Awaited<ReturnType<LogMonitor['update']>>;
      try {
        verdict = await this.monitor.update(deviceId, wireToUpdate(wire));
      } catch (e) {
        if (e instanceof RangeError) throw e;
        verdict = { ok: false, tampered: 'E_LOG_NOTE', reason: 'malformed update', attack: false };
      }
      if (!verdict.ok) {
        view.status = { ok: false, code: verdict.tampered, reason: verdict.reason };
        view.alarms.push({ code: verdict.tampered, reason: verdict.reason });
        return view;
      }
      verdict.entries.forEach((entry: LogEntry, i) => {
        view.entries.push({ index: from + i, entry });
      });
      view.status = { ok: true, size: verdict.size, verifiedBy: 1 + verdict.verifiedBy.length };
      if (verdict.entries.length === 0 || verdict.entries.length < PAGE) return view;
    }
    return view;
  }
}
