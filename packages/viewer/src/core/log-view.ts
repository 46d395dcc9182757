/**
 * The access-log screen's logic, DOM-free: verified log entries as plain sentences, a filter, and
 * the screen's banner (verified by how many of the owner's devices, or tampered).
 */
import type { LogEntry } from '@hearth/protocol';
import { dateTimeText, tamperedText, verifiedText } from './members.js';

export type LogFilter = 'all' | 'viewing' | 'changes' | 'clips' | 'alerts';

export const LOG_FILTERS: readonly { id: LogFilter; name: string }[] = [
  { id: 'all', name: 'Everything' },
  { id: 'viewing', name: 'Viewing' },
  { id: 'changes', name: 'Access changes' },
  { id: 'clips', name: 'Clips' },
  { id: 'alerts', name: 'Alerts' },
];

/** A verified entry and its index in the log. */
export interface IndexedEntry {
  index: number;
  entry: LogEntry;
}

export interface LogRow {
  index: number;
  time: string;
  text: string;
  kind: LogEntry['k'];
  alert: boolean;
}

function filterOf(k: LogEntry['k']): LogFilter {
  if (k === 'live/start' || k === 'live/stop' || k === 'talk/start' || k === 'talk/stop') return 'viewing';
  if (k === 'clip/sealed') return 'clips';
  if (k === 'alert') return 'alerts';
  return 'changes';
}

/**
 * Rows, newest first. `nameOf` turns a log key hash into a person's name (the owner's label for
 * them, or "you"); an unknown hash shows as its first 8 digits.
 */
export function logRows(
  entries: readonly IndexedEntry[],
  filter: LogFilter,
  nameOf: (hash: string) => string | undefined,
  timeZone?: string,
): LogRow[] {
  const who = (h: string | undefined) => (h ? (nameOf(h) ?? `key ${h.slice(0, 8)}`) : 'someone');
  return entries
    .filter((x) => filter === 'all' || filterOf(x.entry.k) === filter)
    .sort((a, b) => b.index - a.index)
    .map(({ index, entry: e }) => ({
      index,
      time: dateTimeText(e.t, timeZone),
      text: entryText(e, who),
      kind: e.k,
      alert: e.k === 'alert' || (e.k === 'pair/attempt' && e.result !== 'ok'),
    }));
}

/** One entry as a sentence. */
export function entryText(e: LogEntry, who: (h: string | undefined) => string): string {
  switch (e.k) {
    case 'pair/attempt':
      return e.result === 'ok'
        ? `${who(e.viewer)} paired with this device`
        : `Pairing attempt refused (${e.result}${e.code ? `, ${e.code}` : ''})`;
    case 'acl/invite':
      return `${who(e.by)} made an invite`;
    case 'acl/request':
      return e.result === 'pending'
        ? `${who(e.subject)} asked to join with an invite`
        : `Invite request of ${who(e.subject)}: ${e.result}`;
    case 'acl/grant':
      return `${who(e.by)} gave ${who(e.subject)} access as ${e.role} (version ${e.ver})`;
    case 'acl/change':
      return `${who(e.by)} changed the access of ${who(e.subject)}${e.role ? ` (${e.role})` : ''} (version ${e.ver})`;
    case 'acl/revoke':
      return `${who(e.by)} revoked ${who(e.subject)} (version ${e.ver})`;
    case 'live/start':
      return `${who(e.viewer)} started watching ${e.camera} live (${e.path})`;
    case 'live/stop':
      return `${who(e.viewer)} stopped watching ${e.camera}${e.code ? ` (${e.code})` : ''}`;
    case 'clip/sealed':
      return `Clip on ${e.camera} sealed for ${e.recipients.length} key${e.recipients.length === 1 ? '' : 's'}: ${e.recipients.map((r) => who(r)).join(', ')}`;
    case 'talk/start':
      return `${who(e.viewer)} started talking on ${e.camera}`;
    case 'talk/stop':
      return `${who(e.viewer)} stopped talking on ${e.camera}`;
    case 'config/change':
      return `Setting ${e.field} changed${e.by ? ` by ${who(e.by)}` : ''}`;
    case 'update/installed':
      return `Software update ${e.version} installed`;
    case 'alert':
      return e.alert === 'impostor'
        ? `Alert: someone posed as a known key (${e.code})`
        : `Alert: possible attack on the device (${e.code})`;
  }
}

/** What the log monitor concluded, as the screen needs it. */
export type LogStatus =
  | { ok: true; size: number; verifiedBy: number }
  | { ok: false; code: string; reason: string };

/**
 * The banner: tampered (red) wins over any later honest update, else how many devices vouch;
 * `unavailable`: the log could not be fetched (the device's code), which is not an alarm.
 */
export function logBanner(
  status: LogStatus | undefined,
  alarms: readonly { code: string }[] = [],
  unavailable?: string,
): { alarm: boolean; text: string } {
  const bad = status && !status.ok ? status.code : alarms[0]?.code;
  if (bad) return { alarm: true, text: tamperedText(bad) };
  if (!status?.ok)
    return {
      alarm: false,
      text: unavailable ? `The access log could not be checked (${unavailable}).` : 'Checking the log…',
    };
  return {
    alarm: false,
    text: `${status.size} entr${status.size === 1 ? 'y' : 'ies'}, signed by the device · ${verifiedText(status.verifiedBy)}`,
  };
}
