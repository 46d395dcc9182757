/**
 * The timeline's pure parts: a local calendar day as epoch bounds and as the coarse hour range the
 * blob store lists by (`hr = floor(t / 3 600 000)`), the event list model (what was listed, what
 * opened, what failed a check) and its filters, and a clip's download name. No DOM, no I/O.
 */
import { viewerAction } from '@hearth/protocol';
import type { EventRecord, EventType } from './event-record.js';

export const HOUR_MS = 3_600_000;

/** A day as `YYYY-MM-DD` (local calendar), or undefined when it is not one. */
export function parseDay(s: string): { y: number; m: number; d: number } | undefined {
  const r = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!r) return undefined;
  const [y, m, d] = [Number(r[1]), Number(r[2]), Number(r[3])];
  const t = new Date(y, m - 1, d);
  if (t.getFullYear() !== y || t.getMonth() !== m - 1 || t.getDate() !== d) return undefined;
  return { y, m, d };
}

/** The local day of `t` (ms) as `YYYY-MM-DD`. */
export function dayOf(t: number): string {
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** The day before or after (`delta` days), as `YYYY-MM-DD`. */
export function shiftDay(day: string, delta: number): string {
  const p = parseDay(day);
  if (!p) throw new RangeError(`not a day: ${day}`);
  return dayOf(new Date(p.y, p.m - 1, p.d + delta, 12).getTime());
}

/** Local midnight to the next local midnight, ms: `[start, end)` (23 or 25 hours across DST). */
export function dayBounds(day: string): { start: number; end: number } {
  const p = parseDay(day);
  if (!p) throw new RangeError(`not a day: ${day}`);
  return { start: new Date(p.y, p.m - 1, p.d).getTime(), end: new Date(p.y, p.m - 1, p.d + 1).getTime() };
}

/** The store's hours that overlap `[start, end)`: `from..to`, both inclusive. */
export function hourRange(start: number, end: number): { from: number; to: number } {
  if (!(end > start)) throw new RangeError('empty time range');
  return { from: Math.floor(start / HOUR_MS), to: Math.floor((end - 1) / HOUR_MS) };
}

/** `hourRange(dayBounds(day))`. */
export function dayHourRange(day: string): { from: number; to: number } {
  const b = dayBounds(day);
  return hourRange(b.start, b.end);
}

/** One listed event blob, as far as it got. */
export type EventItem =
  | { id: string; hr: number; state: 'loading' }
  | { id: string; hr: number; state: 'ok'; rec: EventRecord }
  | {
      id: string;
      hr: number;
      state: 'bad';
      code: string;
      /** A check failed that only an attacker makes fail (a forged or altered blob): shown, never hidden. */
      attack: boolean;
      message: string;
    };

/** What the list shows. */
export interface EventFilter {
  /** Event types to show; all when empty. */
  types: ReadonlySet<EventType>;
}

/**
 * The events of one camera on one day. Blobs are listed by hour for the whole device (the store
 * does not know camera names), opened one by one, and kept when the record is for this camera and
 * falls in the day. A blob that fails to open stays in the list as `bad`.
 */
export class EventList {
  private readonly items = new Map<string, EventItem>();
  constructor(
    readonly camera: string,
    readonly start: number,
    readonly end: number,
  ) {}

  /** The store listed these blobs (IDs already known keep their state). */
  listed(entries: readonly { id: string; hr: number }[]): void {
    for (const e of entries)
      if (!this.items.has(e.id)) this.items.set(e.id, { id: e.id, hr: e.hr, state: 'loading' });
  }

  /** A blob opened: its record. */
  opened(id: string, rec: EventRecord): void {
    const it = this.items.get(id);
    if (it) this.items.set(id, { id, hr: it.hr, state: 'ok', rec });
  }

  /** A blob failed to fetch or open (`code` a registered code; attack by its registry action). */
  failed(id: string, code: string, message: string): void {
    const it = this.items.get(id);
    if (it)
      this.items.set(id, {
        id,
        hr: it.hr,
        state: 'bad',
        code,
        attack: viewerAction(code) === 'attack',
        message,
      });
  }

  /** Forget a blob (deleted). */
  remove(id: string): void {
    this.items.delete(id);
  }

  /** Blobs still to open. */
  pending(): string[] {
    return [...this.items.values()].filter((i) => i.state === 'loading').map((i) => i.id);
  }

  /** True when some blob failed a check only an attacker makes fail. */
  get attacked(): boolean {
    return [...this.items.values()].some((i) => i.state === 'bad' && i.attack);
  }

  /**
   * What to show, newest first: this camera's records of the day that pass the filter, then (at the
   * end, never dropped) the blobs that could not be opened, and a count of those still loading.
   */
  view(f: EventFilter): {
    events: (EventItem & { state: 'ok' })[];
    bad: (EventItem & { state: 'bad' })[];
    loading: number;
  } {
    const events: (EventItem & { state: 'ok' })[] = [];
    const bad: (EventItem & { state: 'bad' })[] = [];
    let loading = 0;
    for (const i of this.items.values()) {
      if (i.state === 'loading') loading++;
      else if (i.state === 'bad') bad.push(i);
      else if (
        i.rec.cam === this.camera &&
        i.rec.t >= this.start &&
        i.rec.t < this.end &&
        (f.types.size === 0 || f.types.has(i.rec.type))
      )
        events.push(i);
    }
    events.sort((a, b) => b.rec.t - a.rec.t || (a.id < b.id ? -1 : 1));
    bad.sort((a, b) => b.hr - a.hr || (a.id < b.id ? -1 : 1));
    return { events, bad, loading };
  }
}

/** A download name: `hearth-<camera>-<YYYYMMDD>-<HHMMSS>.mp4` in local time; safe characters only. */
export function clipFileName(camera: string, t: number): string {
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  const cam = camera.replace(/[^a-z0-9_-]/gi, '_').slice(0, 32) || 'camera';
  return `hearth-${cam}-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}.mp4`;
}

/** `HH:MM:SS` local. */
export function clockTime(t: number): string {
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
