/**
 * The timeline's pure parts (core/timeline.ts): a local day as the store's hour range (whole-hour
 * and DST days), the event list model (listed → opened or failed, per camera and day, failures
 * kept and flagged), the type filter, and the download name.
 */
process.env.TZ = 'Europe/Berlin'; // before any Date: DST days are 23 and 25 hours here

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EventRecord } from '../src/core/event-record.js';
import {
  clipFileName,
  dayBounds,
  dayHourRange,
  dayOf,
  EventList,
  HOUR_MS,
  hourRange,
  parseDay,
  shiftDay,
} from '../src/core/timeline.js';

describe('day → hour range', () => {
  it('a plain day is 24 store hours from local midnight', () => {
    const { start, end } = dayBounds('2026-12-04');
    assert.equal(start, Date.UTC(2026, 11, 3, 23)); // CET = UTC+1
    assert.equal(end - start, 24 * HOUR_MS);
    const r = dayHourRange('2026-12-04');
    assert.deepEqual(r, { from: start / HOUR_MS, to: start / HOUR_MS + 23 });
  });
  it('DST days: 23 hours in spring, 25 in autumn', () => {
    const spring = dayHourRange('2026-03-29');
    assert.equal(spring.to - spring.from + 1, 23);
    const autumn = dayHourRange('2026-10-25');
    assert.equal(autumn.to - autumn.from + 1, 25);
    // Consecutive days tile the hours with no gap and no overlap.
    assert.equal(dayHourRange('2026-10-26').from, autumn.to + 1);
    assert.equal(dayHourRange('2026-03-28').to, spring.from - 1);
  });
  it('partial hours at both ends are included', () => {
    assert.deepEqual(hourRange(HOUR_MS + 1, 3 * HOUR_MS - 1), { from: 1, to: 2 });
    assert.deepEqual(hourRange(HOUR_MS, 3 * HOUR_MS), { from: 1, to: 2 });
    assert.throws(() => hourRange(5, 5), RangeError);
  });
  it('parses only real days; shifts across months and DST', () => {
    for (const bad of ['2026-02-30', '2026-13-01', '26-01-01', '2026-1-1', '', '2026-01-01x'])
      assert.equal(parseDay(bad), undefined, bad);
    assert.deepEqual(parseDay('2024-02-29'), { y: 2024, m: 2, d: 29 });
    assert.equal(shiftDay('2026-03-01', -1), '2026-02-28');
    assert.equal(shiftDay('2026-03-28', 1), '2026-03-29');
    assert.equal(shiftDay('2026-03-29', 1), '2026-03-30');
    assert.equal(shiftDay('2026-12-31', 1), '2027-01-01');
    assert.equal(dayOf(dayBounds('2026-10-25').end - 1), '2026-10-25');
    assert.throws(() => dayBounds('nope'), RangeError);
  });
});

const rec = (o: Partial<EventRecord>): EventRecord => ({
  v: 1,
  type: 'motion',
  cam: 'door',
  t: 0,
  t1: 0,
  thumb: '',
  ...o,
});

describe('event list model', () => {
  const { start, end } = dayBounds('2026-12-04');
  const at = (m: number) => start + m * 60_000;

  it('keeps this camera and day only, newest first; filters by type', () => {
    const l = new EventList('door', start, end);
    l.listed([
      { id: 'a', hr: 1 },
      { id: 'b', hr: 1 },
      { id: 'c', hr: 2 },
      { id: 'd', hr: 2 },
      { id: 'e', hr: 3 },
    ]);
    assert.deepEqual(l.pending(), ['a', 'b', 'c', 'd', 'e']);
    assert.equal(l.view({ types: new Set() }).loading, 5);
    l.opened('a', rec({ t: at(10), type: 'motion' }));
    l.opened('b', rec({ t: at(30), type: 'sound' }));
    l.opened('c', rec({ t: at(20), cam: 'garden' })); // another camera of the device
    l.opened('d', rec({ t: end + 1 })); // in a listed hour, but the next day
    l.opened('e', rec({ t: at(5), type: 'motion' }));
    l.opened('zz', rec({})); // never listed: ignored
    const all = l.view({ types: new Set() });
    assert.deepEqual(
      all.events.map((e) => e.id),
      ['b', 'a', 'e'],
    );
    assert.equal(all.loading, 0);
    assert.deepEqual(
      l.view({ types: new Set(['motion']) }).events.map((e) => e.id),
      ['a', 'e'],
    );
    assert.deepEqual(
      l.view({ types: new Set(['sound']) }).events.map((e) => e.id),
      ['b'],
    );
    assert.deepEqual(
      l.view({ types: new Set(['motion', 'sound']) }).events.map((e) => e.id),
      ['b', 'a', 'e'],
    );
    l.remove('a');
    assert.deepEqual(
      l.view({ types: new Set() }).events.map((e) => e.id),
      ['b', 'e'],
    );
  });

  it('failures stay listed whatever the filter, attack codes flagged by the registry', () => {
    const l = new EventList('door', start, end);
    l.listed([
      { id: 'x', hr: 5 },
      { id: 'y', hr: 6 },
      { id: 'z', hr: 7 },
    ]);
    l.failed('x', 'E_CLIP_DIGEST', 'm');
    l.failed('y', 'E_NO_SERVER', 'm');
    assert.equal(l.attacked, true);
    const v = l.view({ types: new Set(['sound']) });
    assert.deepEqual(
      v.bad.map((b) => [b.id, b.attack]),
      [
        ['y', false],
        ['x', true],
      ],
    );
    assert.equal(v.loading, 1);
    // Listing again does not reset what is known.
    l.listed([{ id: 'x', hr: 5 }]);
    assert.equal(l.view({ types: new Set() }).bad.length, 2);
    const quiet = new EventList('door', start, end);
    quiet.listed([{ id: 'y', hr: 6 }]);
    quiet.failed('y', 'E_NOT_RECIPIENT', 'm');
    assert.equal(quiet.attacked, false);
  });

  it('download names are local time and safe', () => {
    const t = new Date(2026, 11, 4, 9, 5, 7).getTime();
    assert.equal(clipFileName('door', t), 'hearth-door-20261204-090507.mp4');
    assert.equal(clipFileName('../x y', t), 'hearth-___x_y-20261204-090507.mp4');
    assert.equal(clipFileName('', t), 'hearth-camera-20261204-090507.mp4');
  });
});
