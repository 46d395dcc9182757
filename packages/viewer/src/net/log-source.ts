/**
 * What the access-log and members screens need of a device's log: fetch what is new, verify it,
 * and say what was verified. {@link ClientLogSource} gives it from net/log.ts's `LogClient`, which
 * verifies with the protocol's LogMonitor, persists the verified checkpoint, cosigns it and checks
 * the other owners' cosigned checkpoints through the server's gossip (so "verified by N" counts
 * the owner's devices, and a split view is caught).
 */
import type { IndexedEntry, LogStatus } from '../core/log-view.js';
import { HouseholdError } from './household.js';
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
