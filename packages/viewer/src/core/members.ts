/**
 * The household screens' logic, DOM-free: the ACL as rows of people (with "pending" until the
 * device's access log shows the change and this viewer verified that entry), schedules and expiry
 * in words, the role templates (Family member, Babysitter, Guest) and the ACL updates that grant,
 * edit (revoke the old serial + add a new grant) and revoke.
 */
import { type LogEntry, schedWindowSchema } from '@hearth/protocol';
import type {
  AclStateV2,
  AclUpdateBody,
  GrantBody,
  InviteInfo,
  InviteTemplate,
  RoleV2,
  SchedWindow,
  ScopeV2,
} from '../net/household.js';

/** Said on every revoke. */
export const REVOKE_NOTE = 'Clips already downloaded cannot be recalled.';
export const DAY = 24 * 60 * 60 * 1000;

/** "verified by N of your devices". */
export function verifiedText(n: number): string {
  return `verified by ${n} of your devices`;
}

/** The red banner's text for a tampered log. */
export function tamperedText(code: string): string {
  return `Log tampered — possible attack (${code})`;
}

// ------------------------------------------------------------------ role templates

export type PresetId = 'family' | 'babysitter' | 'guest';

export interface RolePreset {
  id: PresetId;
  name: string;
  /** One line under the name. */
  summary: string;
  tmpl: InviteTemplate;
}

/** The three presets an owner picks from when inviting someone. */
export const ROLE_PRESETS: readonly RolePreset[] = [
  {
    id: 'family',
    name: 'Family member',
    summary: 'Live view, clips, snapshots and the timeline, any time.',
    tmpl: { role: 'member', scopes: ['live', 'clips', 'snapshots', 'timeline'] },
  },
  {
    id: 'babysitter',
    name: 'Babysitter',
    summary: 'Live view only, weekdays Mon–Fri 08:00–18:00.',
    tmpl: {
      role: 'member',
      scopes: ['live'],
      sched: [{ days: [1, 2, 3, 4, 5], from: '08:00', to: '18:00' }],
    },
  },
  {
    id: 'guest',
    name: 'Guest',
    summary: 'Live view for 24 hours, no history.',
    tmpl: { role: 'guest', scopes: ['live'], days: 1, floor: 'grant' },
  },
];

/** A preset's template, limited to `cams` when given (absent: every camera). */
export function presetTemplate(id: PresetId, cams?: string[]): InviteTemplate {
  const p = ROLE_PRESETS.find((x) => x.id === id);
  if (!p) throw new RangeError(`no preset ${id}`);
  const t: InviteTemplate = structuredClone(p.tmpl);
  if (cams?.length) t.cams = [...cams];
  return t;
}

/** The schedule editor's fields: any time, or one window (days, from, to) in the device's time. */
export interface ScheduleForm {
  any: boolean;
  /** 0 = Sunday … 6. */
  days: number[];
  /** `HH:MM`, device time; `to` before `from` runs past midnight, `00:00` is the end of the day. */
  from: string;
  to: string;
  /** Windows after the first, kept as they are (the editor shows one). */
  rest: SchedWindow[];
}

/** The editor's fields for a schedule (none: any time, with weekdays 08:00–18:00 ready to tick). */
export function scheduleForm(sched?: readonly SchedWindow[]): ScheduleForm {
  const [w, ...rest] = sched ?? [];
  if (!w) return { any: true, days: [1, 2, 3, 4, 5], from: '08:00', to: '18:00', rest: [] };
  return {
    any: false,
    days: [...w.days],
    from: w.from,
    to: w.to === '24:00' ? '00:00' : w.to,
    rest: structuredClone(rest),
  };
}

/** The grant's `sched` from the editor's fields (undefined: any time), or what is wrong with them. */
export function scheduleOfForm(
  f: ScheduleForm,
): { ok: true; sched: SchedWindow[] | undefined } | { ok: false; error: string } {
  if (f.any) return { ok: true, sched: undefined };
  const days = [...new Set(f.days)].filter((d) => Number.isInteger(d) && d >= 0 && d <= 6).sort();
  if (!days.length) return { ok: false, error: 'Pick at least one day.' };
  const hhmm = /^([01]\d|2[0-3]):[0-5]\d$/;
  if (!hhmm.test(f.from) || !hhmm.test(f.to))
    return { ok: false, error: 'Times are hours and minutes, like 08:00.' };
  if (f.from === f.to) return { ok: false, error: 'The start and the end must differ.' };
  const w = { days, from: f.from, to: f.to === '00:00' ? '24:00' : f.to };
  const r = schedWindowSchema.safeParse(w);
  if (!r.success) return { ok: false, error: 'That schedule is not valid.' };
  return { ok: true, sched: [r.data, ...f.rest] };
}

/** Which preset a grant or template matches (undefined: a custom one). */
export function presetOf(t: {
  role: RoleV2;
  scopes: readonly ScopeV2[];
  sched?: SchedWindow[] | undefined;
}): PresetId | undefined {
  const key = (x: { role: RoleV2; scopes: readonly ScopeV2[]; sched?: SchedWindow[] | undefined }) =>
    JSON.stringify([x.role, [...x.scopes].sort(), x.sched ?? null]);
  return ROLE_PRESETS.find((p) => key(p.tmpl) === key(t))?.id;
}

/** Most grant serials ever used or revoked, + 1 (serials are never reused). */
export function nextSerial(state: AclStateV2): number {
  let max = 0;
  for (const s of state.revoked) max = Math.max(max, s);
  for (const g of grantBodies(state)) max = Math.max(max, g.serial);
  return max + 1;
}

/** The grant an approved invite (or an edit) makes for `sub` from a template, valid from `now`. */
export function grantFromTemplate(
  tmpl: InviteTemplate,
  o: { d: string; sub: string; now: number; serial: number; label?: string },
): GrantBody {
  const g: GrantBody = {
    d: o.d,
    sub: o.sub,
    role: tmpl.role,
    scopes: [...tmpl.scopes],
    nbf: o.now,
    exp: tmpl.days ? o.now + tmpl.days * DAY : null,
    serial: o.serial,
  };
  if (tmpl.cams?.length) g.cams = [...tmpl.cams];
  if (tmpl.groups?.length) g.groups = [...tmpl.groups];
  if (tmpl.sched?.length) g.sched = structuredClone(tmpl.sched);
  if (tmpl.floor === 'grant') g.floor = o.now;
  if (o.label) g.label = o.label.slice(0, 64);
  return g;
}

/** The template that re-creates a grant (for the edit form). */
export function templateOfGrant(g: GrantBody): InviteTemplate {
  const t: InviteTemplate = { role: g.role === 'guest' ? 'guest' : 'member', scopes: [...g.scopes] };
  if (g.cams) t.cams = [...g.cams];
  if (g.groups) t.groups = [...g.groups];
  if (g.sched) t.sched = structuredClone(g.sched);
  if (g.exp !== null) t.days = Math.max(1, Math.round((g.exp - g.nbf) / DAY));
  if (g.floor !== undefined) t.floor = 'grant';
  return t;
}

/** The next update's skeleton (version + 1). */
function update(state: AclStateV2): AclUpdateBody {
  return { d: state.d, ver: state.ver + 1, add: [], revoke: [] };
}

/** Revoke every grant of `sub` (it loses access at once; what it downloaded stays with it). */
export function revokeUpdate(state: AclStateV2, sub: string): AclUpdateBody {
  const u = update(state);
  u.revoke = grantBodies(state)
    .filter((g) => g.sub === sub)
    .map((g) => g.serial)
    .sort((a, b) => a - b);
  return u;
}

/**
 * The update that adds a signed grant; for an edit, it also revokes the person's old serials (a
 * grant is never changed in place: the old serial is revoked, and a new one added).
 */
export function grantUpdate(state: AclStateV2, signedGrant: unknown, replacesSub?: string): AclUpdateBody {
  const u = replacesSub ? revokeUpdate(state, replacesSub) : update(state);
  u.add = [signedGrant as AclUpdateBody['add'][number]];
  return u;
}

/** Add or remove an owner (a second owner has every right; the ACL keeps at least one). */
export function ownersUpdate(
  state: AclStateV2,
  change: { add?: string[]; remove?: string[] },
): AclUpdateBody {
  const u = update(state);
  u.owners = {};
  if (change.add?.length) u.owners.add = [...change.add];
  if (change.remove?.length) u.owners.remove = [...change.remove];
  return u;
}

/** Make a member or guest an owner: it joins `owners`, and its grants go (an owner needs none). */
export function promoteUpdate(state: AclStateV2, sub: string): AclUpdateBody {
  return { ...revokeUpdate(state, sub), owners: { add: [sub] } };
}

/**
 * Hand the device over in one signed update: `to` becomes an owner (its grants go) and `me` stops
 * being one. The device checks the update against the owners before it, so `me` may still sign it;
 * `keep`, a grant for `me` signed by `me` now, lets the old owner stay on as a member (grants signed
 * by an owner who is later removed stay valid).
 */
export function transferUpdate(state: AclStateV2, to: string, me: string, keep?: unknown): AclUpdateBody {
  if (to === me) throw new RangeError('transfer: to yourself');
  const u: AclUpdateBody = { ...revokeUpdate(state, to), owners: { add: [to], remove: [me] } };
  if (keep !== undefined) u.add = [keep as AclUpdateBody['add'][number]];
  return u;
}

/** Set the ACL's camera groups (name → cameras) to `groups`; none left: `null`. */
export function groupsUpdate(
  state: AclStateV2,
  groups: Readonly<Record<string, readonly string[]>>,
): AclUpdateBody {
  const g: Record<string, string[]> = Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, [...v]]));
  return { ...update(state), groups: Object.keys(g).length ? g : null };
}

/** What is wrong with a new group `name` of `cams` (undefined: nothing). */
export function groupProblem(
  name: string,
  cams: readonly string[],
  existing: Readonly<Record<string, readonly string[]>> | undefined,
): string | undefined {
  if (!/^[a-z0-9_-]{1,32}$/.test(name)) return 'A group name is 1–32 lowercase letters, digits, - or _.';
  if (name === '__proto__' || name === 'constructor' || name === 'prototype')
    return 'That name is reserved: pick another.';
  if (existing && Object.hasOwn(existing, name)) return 'There is a group with that name already.';
  if (!cams.length) return 'Pick at least one camera.';
  if (Object.keys(existing ?? {}).length >= 32) return 'A device holds at most 32 groups.';
  return undefined;
}

/** Set (or clear) the recovery key. */
export function recoveryUpdate(state: AclStateV2, recovery: string | null): AclUpdateBody {
  return { ...update(state), recovery };
}

// ------------------------------------------------------------------ rows

/** The grant bodies of an ACL state (the device verified their signatures before sending them). */
export function grantBodies(state: AclStateV2): GrantBody[] {
  return state.grants.map((e) => e.b as unknown as GrantBody);
}

/** A change this viewer made and has not yet seen verified in the log. */
export interface PendingChange {
  sub: string;
  /** The ACL version the change made. */
  ver: number;
  kind: 'grant' | 'revoke';
}

/** A row of the members list. */
export interface MemberRow {
  sub: string;
  /** The owner's label, or a short form of the key. */
  name: string;
  role: RoleV2;
  you: boolean;
  /** 'pending': not yet in a verified log entry; 'revoking': revoked here, not yet logged. */
  status: 'verified' | 'pending' | 'revoking';
  scopes: ScopeV2[];
  /** "All cameras", "front-door, garden", "Group: outside". */
  where: string;
  when: string;
  until: string;
  expired: boolean;
  serials: number[];
  grant?: GrantBody;
  preset?: PresetId;
}

export interface RowOptions {
  me: string;
  now: number;
  /** The log's name of a key (logKeyHash of its bytes); computed by the caller (async). */
  hashOf: (key: string) => string | undefined;
  /** Entries of the device's log this viewer verified. */
  logged: readonly LogEntry[];
  pending?: readonly PendingChange[];
  /** Time zone for dates (default: the browser's). */
  timeZone?: string;
}

/** Short name for a key: `huk_abcd…`. */
export function shortKey(k: string): string {
  return k.length > 12 ? `${k.slice(0, 10)}…` : k;
}

/**
 * The members list: owners first, then members and guests. A row is "pending" until the device's
 * log holds a verified grant/change entry for that person at (or after) the version this viewer's
 * own change made; an owner is also verified by its logged pairing.
 */
export function memberRows(state: AclStateV2, o: RowOptions): MemberRow[] {
  const minVer = new Map<string, number>();
  for (const p of o.pending ?? []) minVer.set(p.sub, Math.max(minVer.get(p.sub) ?? 0, p.ver));
  const logged = (sub: string, kinds: readonly string[]): boolean => {
    const h = o.hashOf(sub);
    if (!h) return false;
    const need = minVer.get(sub) ?? 0;
    return o.logged.some((e) => {
      if (e.k === 'pair/attempt')
        return kinds.includes(e.k) && e.result === 'ok' && e.viewer === h && need === 0;
      return kinds.includes(e.k) && 'subject' in e && e.subject === h && 'ver' in e && e.ver >= need;
    });
  };
  const rows: MemberRow[] = [];
  for (const sub of state.owners) {
    rows.push({
      sub,
      name: sub === o.me ? 'You' : shortKey(sub),
      role: 'owner',
      you: sub === o.me,
      status: logged(sub, ['acl/grant', 'acl/change', 'pair/attempt']) ? 'verified' : 'pending',
      scopes: ['live', 'clips', 'snapshots', 'timeline', 'talk', 'ptz'],
      where: 'All cameras',
      when: 'Any time',
      until: 'No end date',
      expired: false,
      serials: [],
    });
  }
  const bySub = new Map<string, GrantBody[]>();
  for (const g of grantBodies(state)) bySub.set(g.sub, [...(bySub.get(g.sub) ?? []), g]);
  const order: Record<RoleV2, number> = { owner: 0, member: 1, guest: 2 };
  const subs = [...bySub.keys()].sort((a, b) => {
    const ga = bySub.get(a)![0]!;
    const gb = bySub.get(b)![0]!;
    return order[ga.role] - order[gb.role] || ga.serial - gb.serial;
  });
  for (const sub of subs) {
    const gs = bySub.get(sub)!;
    const g = gs[gs.length - 1]!;
    rows.push({
      sub,
      name: g.label ?? (sub === o.me ? 'You' : shortKey(sub)),
      role: g.role,
      you: sub === o.me,
      status: logged(sub, ['acl/grant', 'acl/change']) ? 'verified' : 'pending',
      scopes: [...g.scopes],
      where: whereText(g),
      when: scheduleText(g.sched),
      until: untilText(g.exp, o.now, o.timeZone),
      expired: g.exp !== null && o.now >= g.exp,
      serials: gs.map((x) => x.serial),
      grant: g,
      ...(presetOf(g) ? { preset: presetOf(g)! } : {}),
    });
  }
  // Revocations this viewer made that the log does not show yet.
  for (const p of o.pending ?? []) {
    if (p.kind !== 'revoke' || bySub.has(p.sub)) continue;
    if (logged(p.sub, ['acl/revoke'])) continue;
    rows.push({
      sub: p.sub,
      name: shortKey(p.sub),
      role: 'member',
      you: false,
      status: 'revoking',
      scopes: [],
      where: '',
      when: '',
      until: '',
      expired: false,
      serials: [],
    });
  }
  return rows;
}

/** Drop the pending changes the log now shows (call after each verified log update). */
export function settlePending(
  pending: readonly PendingChange[],
  logged: readonly LogEntry[],
  hashOf: (key: string) => string | undefined,
): PendingChange[] {
  return pending.filter((p) => {
    const h = hashOf(p.sub);
    const kinds = p.kind === 'revoke' ? ['acl/revoke'] : ['acl/grant', 'acl/change'];
    return !logged.some(
      (e) => kinds.includes(e.k) && 'subject' in e && e.subject === h && 'ver' in e && e.ver >= p.ver,
    );
  });
}

function whereText(g: GrantBody): string {
  const parts: string[] = [];
  if (g.cams?.length) parts.push(g.cams.join(', '));
  if (g.groups?.length) parts.push(`${g.groups.length === 1 ? 'Group' : 'Groups'}: ${g.groups.join(', ')}`);
  return parts.length ? parts.join('; ') : 'All cameras';
}

export const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/** Days in words, the week starting on Monday: "Mon–Fri", "Sat, Sun", "Every day". */
export function daysText(days: readonly number[]): string {
  const set = new Set(days);
  if (set.size === 7) return 'Every day';
  const week = [1, 2, 3, 4, 5, 6, 0].filter((d) => set.has(d));
  const runs: number[][] = [];
  for (const d of week) {
    const last = runs[runs.length - 1];
    const prev = last?.[last.length - 1];
    if (last && prev !== undefined && (prev + 1) % 7 === d && prev !== 0) last.push(d);
    else runs.push([d]);
  }
  return runs
    .map((r) =>
      r.length >= 3
        ? `${DAY_NAMES[r[0]!]}–${DAY_NAMES[r[r.length - 1]!]}`
        : r.map((d) => DAY_NAMES[d]).join(', '),
    )
    .join(', ');
}

/** A schedule in words: "Any time", "Mon–Fri 08:00–18:00", "Every day 22:00–06:00 (overnight)". */
export function scheduleText(sched: readonly SchedWindow[] | undefined): string {
  if (!sched?.length) return 'Any time';
  return sched
    .map((w) => `${daysText(w.days)} ${w.from}–${w.to}${w.to <= w.from ? ' (overnight)' : ''}`)
    .join('; ');
}

/** A date and time in words, in `timeZone` (default: the browser's). */
export function dateTimeText(t: number, timeZone?: string): string {
  return new Intl.DateTimeFormat('en-GB', {
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    ...(timeZone ? { timeZone } : {}),
  }).format(t);
}

/** When a grant ends: "No end date", "Until 5 Dec 2026, 21:40", "Expired 5 Dec 2026, 21:40". */
export function untilText(exp: number | null, now: number, timeZone?: string): string {
  if (exp === null) return 'No end date';
  return `${now >= exp ? 'Expired' : 'Until'} ${dateTimeText(exp, timeZone)}`;
}

/** What a list of scopes allows, in words. */
export function scopesText(scopes: readonly ScopeV2[]): string {
  const words: Record<ScopeV2, string> = {
    live: 'live view',
    clips: 'clips',
    snapshots: 'snapshots',
    timeline: 'timeline',
    talk: 'talk',
    ptz: 'move camera',
  };
  const s = scopes.map((x) => words[x]).join(', ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// ------------------------------------------------------------------ invites

/** An invite as the list shows it. */
export interface InviteRow {
  id: string;
  /** What the list says: "Open until …", "<name> asks to join", "Approved", … */
  text: string;
  state: InviteInfo['state'];
  /** Approve/deny buttons are shown. */
  actionable: boolean;
  label: string;
  what: string;
}

/** The device's invites, newest requests first; an open invite past `exp` reads as expired. */
export function inviteRows(list: readonly InviteInfo[], now: number, timeZone?: string): InviteRow[] {
  const rank: Record<InviteInfo['state'], number> = {
    requested: 0,
    open: 1,
    approved: 2,
    denied: 3,
    expired: 4,
  };
  return list
    .map((i): InviteRow => {
      const state = i.state === 'open' && now >= i.exp ? 'expired' : i.state;
      const who = i.name ? `“${i.name}”` : 'Someone';
      const text =
        state === 'requested'
          ? `${who} asks to join`
          : state === 'open'
            ? `Not used yet · link valid until ${dateTimeText(i.exp, timeZone)}`
            : state === 'approved'
              ? `Approved${i.name ? ` (${who})` : ''}`
              : state === 'denied'
                ? `Denied${i.name ? ` (${who})` : ''}`
                : 'Expired';
      const p = presetOf(i.tmpl);
      return {
        id: i.id,
        text,
        state,
        actionable: state === 'requested' && i.sub !== undefined,
        label: i.label ?? ROLE_PRESETS.find((x) => x.id === p)?.name ?? 'Invite',
        what: `${scopesText(i.tmpl.scopes)} · ${scheduleText(i.tmpl.sched)}${i.tmpl.days ? ` · ${i.tmpl.days * 24} h` : ''}`,
      };
    })
    .sort((a, b) => rank[a.state] - rank[b.state]);
}
