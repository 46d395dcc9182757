/**
 * The viewer's log monitor: for each paired device, the last checkpoint it verified, and a verdict on
 * each update the server relays (a signed checkpoint, the consistency proof from the last verified
 * size, the new entries with their inclusion proofs, and the cosigned checkpoints other devices of
 * the owner published). The viewer's log screen shows "log tampered" from a `tampered` verdict.
 *
 * Pure: no I/O, no clock, no storage (the caller persists `checkpoint(deviceId)` and passes it back
 * to `addDevice`). The checks are the ones of witness.ts and cosignature.ts; each tampering is a
 * typed error code:
 *
 * | attack by the server that relays the log               | verdict              |
 * |---------------------------------------------------------|----------------------|
 * | checkpoint not signed by the device key pinned at pairing | `E_WRONG_SIGNER`, `E_BAD_SIGNATURE` |
 * | checkpoint of another device's log                      | `E_BAD_BINDING`      |
 * | older checkpoint after a newer one (rollback)           | `E_LOG_ROLLBACK`     |
 * | another tree of the same size, or not an extension     | `E_LOG_FORK`         |
 * | a witness cosigned a checkpoint this one cannot extend or be extended by (split view) | `E_LOG_FORK` |
 * | an entry dropped, inserted, reordered or altered       | `E_LOG_PROOF`        |
 * | a forged or replayed cosignature of a known device     | `E_BAD_SIGNATURE`    |
 * | malformed note, checkpoint, entry; over a size limit   | `E_LOG_NOTE`, `E_LOG_CHECKPOINT`, `E_LOG_ENTRY`, `E_TOO_LARGE` (`attack: false`) |
 *
 * The state advances only on an `ok` verdict; a tampered update leaves it as it was, and the verdict
 * is also kept in `alarms(deviceId)` so that a later honest update does not hide it.
 */

import type { ErrorCode } from '../errors.js';
import { HearthError, isPossibleAttack, ProtocolError } from '../errors.js';
import type { Checkpoint } from './checkpoint.js';
import { logOrigin } from './checkpoint.js';
import { type CosignedCheckpoint, type CosignerKey, openCosigned } from './cosignature.js';
import { decodeLogEntry, type LogEntry } from './entry.js';
import {
  compareCheckpoints,
  type FetchedEntries,
  verifyAdvance,
  verifyEntries,
  verifyEntryRange,
} from './witness.js';

/** A cosigned checkpoint another of the owner's devices published (gossip), relayed by the server. */
export interface WitnessedCheckpoint {
  /** The checkpoint note, signed by the device and cosigned by the witness. */
  readonly note: string | Uint8Array;
  /** Consistency proof between this checkpoint and the update's (smaller size to larger). */
  readonly consistency: readonly Uint8Array[];
}

/** What the server relays for one device's log. */
export interface LogUpdate {
  /** The device's signed checkpoint note (cosignature lines of other devices may follow). */
  readonly checkpoint: string | Uint8Array;
  /** Consistency proof from the last verified size to the new size (empty on first contact). */
  readonly consistency: readonly Uint8Array[];
  /** The entries new since the last verified size (start there, end at the new size), with proofs. */
  readonly entries?: FetchedEntries;
  /** Cosigned checkpoints of other devices of the owner, each checked against this one. */
  readonly witnessed?: readonly WitnessedCheckpoint[];
}

/** The verdict on one update. */
export type LogVerdict =
  | {
      readonly ok: true;
      /** The verified tree size. */
      readonly size: number;
      /**
       * Names of the known witnesses (the owner's other devices) that vouch for this checkpoint: a
       * valid cosignature on it, or on a checkpoint at least as large proved to extend it.
       */
      readonly verifiedBy: readonly string[];
      readonly checkpoint: Checkpoint;
      /** The decoded new entries (empty when the update carried none). */
      readonly entries: readonly LogEntry[];
    }
  | {
      readonly ok: false;
      /** The error code of the check that failed. */
      readonly tampered: ErrorCode;
      readonly reason: string;
      /** True for a possible attack (a verification failure), false for malformed input. */
      readonly attack: boolean;
    };

/** A tampered verdict. */
export type LogTampered = Extract<LogVerdict, { ok: false }>;

/** The verdict on entries read again ({@link LogMonitor.read}). */
export type LogEntriesVerdict =
  | {
      readonly ok: true;
      /** The size of the verified checkpoint the entries were checked against. */
      readonly size: number;
      readonly start: number;
      readonly entries: readonly LogEntry[];
    }
  | LogTampered;

/**
 * The checks the monitor runs, by default those of witness.ts and cosignature.ts. Injectable so that
 * tests can show, with one check deliberately broken, that each attack test can fail.
 */
export interface LogChecks {
  readonly open: typeof openCosigned;
  readonly advance: typeof verifyAdvance;
  readonly entries: typeof verifyEntryRange;
  readonly compare: typeof compareCheckpoints;
  readonly inclusion: typeof verifyEntries;
}

/** The real checks. */
export const LOG_CHECKS: LogChecks = {
  open: openCosigned,
  advance: verifyAdvance,
  entries: verifyEntryRange,
  compare: compareCheckpoints,
  inclusion: verifyEntries,
};

/** Most alarms kept per device (the oldest are dropped first). */
export const MAX_LOG_ALARMS = 16;
/** Most witnessed checkpoints checked per update. */
export const MAX_WITNESSED = 16;

interface DeviceLog {
  readonly origin: string;
  readonly publicKey: Uint8Array;
  readonly witnesses: readonly CosignerKey[];
  state: Checkpoint | undefined;
  readonly alarms: LogTampered[];
}

/** The last verified checkpoint of each paired device's log, and verdicts on what the server relays. */
export class LogMonitor {
  private readonly devices = new Map<string, DeviceLog>();
  constructor(private readonly checks: LogChecks = LOG_CHECKS) {}

  /**
   * Watch `deviceId`'s log, signed by `publicKey` (the device key pinned at pairing); `witnesses` are
   * the cosigner keys of the owner's other devices; `state` the checkpoint verified last time (none:
   * trust on first use).
   */
  addDevice(
    deviceId: string,
    publicKey: Uint8Array,
    witnesses: readonly CosignerKey[] = [],
    state?: Checkpoint,
  ): void {
    const origin = logOrigin(deviceId);
    if (state && state.origin !== origin) throw new RangeError('saved checkpoint is of another log');
    this.devices.set(deviceId, {
      origin,
      publicKey: publicKey.slice(),
      witnesses: [...witnesses],
      state,
      alarms: [],
    });
  }

  /** The last verified checkpoint of `deviceId` (undefined before the first, or for an unknown device). */
  checkpoint(deviceId: string): Checkpoint | undefined {
    return this.devices.get(deviceId)?.state;
  }

  /** The tampered verdicts seen for `deviceId`, oldest first (at most MAX_LOG_ALARMS). */
  alarms(deviceId: string): readonly LogTampered[] {
    return [...(this.devices.get(deviceId)?.alarms ?? [])];
  }

  /**
   * Verify an update of `deviceId`'s log. Never throws for anything the server sent (a typed error
   * becomes a `tampered` verdict); throws RangeError for a device never added.
   */
  async update(deviceId: string, u: LogUpdate): Promise<LogVerdict> {
    const d = this.devices.get(deviceId);
    if (!d) throw new RangeError(`no log watched for device ${deviceId}`);
    let verdict: LogVerdict;
    try {
      verdict = await this.check(d, u);
    } catch (e) {
      if (!(e instanceof HearthError)) throw e; // a bug, not tampering
      verdict = { ok: false, tampered: e.code, reason: e.message, attack: isPossibleAttack(e) };
    }
    if (verdict.ok) d.state = verdict.checkpoint;
    else this.alarm(d, verdict);
    return verdict;
  }

  /**
   * Verify entries the viewer reads again (its log screen after a restart, a page of older entries):
   * any range `fetched.start`.. of the last verified checkpoint, each with its inclusion proof in it,
   * so none of the range is dropped, reordered, altered or inserted. Never throws for what the server
   * sent; throws RangeError for a device with no verified checkpoint yet (call `update` first).
   */
  async read(deviceId: string, fetched: FetchedEntries): Promise<LogEntriesVerdict> {
    const d = this.devices.get(deviceId);
    const state = d?.state;
    if (!d || !state)
      throw new RangeError(`no verified checkpoint of device ${deviceId} to read entries against`);
    try {
      await this.checks.inclusion(state, fetched);
      return {
        ok: true,
        size: state.size,
        start: fetched.start,
        entries: fetched.entries.map(decodeLogEntry),
      };
    } catch (e) {
      if (!(e instanceof HearthError)) throw e;
      const v = { ok: false, tampered: e.code, reason: e.message, attack: isPossibleAttack(e) } as const;
      this.alarm(d, v);
      return v;
    }
  }

  private alarm(d: DeviceLog, v: LogTampered): void {
    d.alarms.push(v);
    if (d.alarms.length > MAX_LOG_ALARMS) d.alarms.shift();
  }

  private async check(d: DeviceLog, u: LogUpdate): Promise<LogVerdict> {
    const c = this.checks;
    const opened = await c.open(u.checkpoint, d.origin, d.publicKey, d.witnesses);
    const cp = opened.checkpoint;
    await c.advance(d.state, cp, u.consistency);
    let entries: LogEntry[] = [];
    if (u.entries) {
      await c.entries(cp, u.entries, d.state?.size ?? 0);
      entries = u.entries.entries.map(decodeLogEntry);
    }
    const verifiedBy = new Set(opened.cosignatures.map((s) => s.cosigner.name));
    const witnessed = u.witnessed ?? [];
    if (witnessed.length > MAX_WITNESSED)
      throw new ProtocolError('E_TOO_LARGE', `more than ${MAX_WITNESSED} witnessed checkpoints`);
    for (const w of witnessed) {
      const other: CosignedCheckpoint = await c.open(w.note, d.origin, d.publicKey, d.witnesses);
      // Any two checkpoints the device key signed must be one history: a split view is a fork.
      await c.compare(cp, other.checkpoint, w.consistency);
      if (other.checkpoint.size >= cp.size)
        for (const s of other.cosignatures) verifiedBy.add(s.cosigner.name);
    }
    return { ok: true, size: cp.size, verifiedBy: [...verifiedBy].sort(), checkpoint: cp, entries };
  }
}
