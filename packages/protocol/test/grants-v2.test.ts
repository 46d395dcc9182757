/**
 * Grants v2 (issue 10, threat model S6, S12): several equal owners, owner transfer, a recovery key
 * that may only replace owners, camera groups, schedules in the device's time zone, a history
 * floor (a guest sees nothing from before its grant), the new scopes, v1 state loading. Every
 * escalation attempt is refused with its code, and each defence has a control: the same request
 * made by someone allowed to make it (or with the rule's input removed) succeeds.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { HearthError } from '../src/errors.js';
import {
  Acl,
  type AclUpdateInput,
  type Grant,
  signAclUpdate,
  signGrant,
  userKeyText,
} from '../src/grants.js';
import { keys } from './fixtures.js';

type K = Awaited<ReturnType<typeof keys>>;
let k: K;
let T: number;
before(async () => {
  k = await keys();
  T = k.env.now();
});

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const txt = (s: { publicKey: Uint8Array }) => userKeyText(s.publicKey);
function grant(over: Partial<Grant> = {}): Grant {
  return {
    d: k.deviceId,
    sub: txt(k.member),
    role: 'member',
    scopes: ['live'],
    nbf: T,
    exp: T + 30 * DAY,
    serial: 1,
    ...over,
  };
}
type Signer = K['owner'];
async function update(
  by: Signer,
  u: Partial<AclUpdateInput> & { ver: number },
  grants: Grant[] = [],
  issuer = by,
) {
  const add = await Promise.all(grants.map((g) => signGrant(issuer, g, k.env)));
  return signAclUpdate(by, { d: k.deviceId, add, revoke: [], ...u }, k.env);
}
const code = (d: ReturnType<Acl['authorize']>) => (d.allowed ? 'allowed' : d.error.code);
const rejectsWith = (p: () => Promise<unknown>, c: string) =>
  assert.rejects(p, (x) => (x as HearthError).code === c || assert.fail(`${(x as HearthError).code} ≠ ${c}`));

/** An ACL with two owners (owner, owner2), a recovery key and one member grant. */
async function household(): Promise<Acl> {
  const acl0 = Acl.create(k.deviceId, k.owner.publicKey);
  return acl0.apply(
    await update(k.owner, { ver: 1, owners: { add: [txt(k.owner2)] }, recovery: txt(k.recovery) }, [grant()]),
    T,
  );
}

describe('ACL v2: owners', () => {
  it('a second owner has every right and may sign any update (grants, revocations); isOwner/owners/roleOf', async () => {
    const acl = await household();
    assert.deepEqual(acl.owners, [txt(k.owner), txt(k.owner2)]);
    assert.ok(acl.isOwner(k.owner2.publicKey) && acl.isOwner(txt(k.owner)));
    assert.ok(!acl.isOwner(k.member.publicKey) && !acl.isOwner('garbage'));
    assert.equal(acl.roleOf(k.owner2.publicKey), 'owner');
    assert.equal(acl.roleOf(k.member.publicKey), 'member');
    assert.equal(acl.roleOf(k.stranger.publicKey), undefined);
    assert.deepEqual(
      acl.grantsOf(k.member.publicKey).map((g) => g.serial),
      [1],
    );
    for (const s of ['live', 'clips', 'snapshots', 'timeline', 'talk', 'ptz'] as const)
      assert.equal(code(acl.authorize(k.owner2.publicKey, s, T, 'any', { at: 0 })), 'allowed');
    // owner2 signs a grant and a revocation of owner's grant
    const acl2 = await acl.apply(
      await update(k.owner2, { ver: 2, revoke: [1] }, [grant({ serial: 2, sub: txt(k.stranger) })]),
      T,
    );
    assert.equal(code(acl2.authorize(k.stranger.publicKey, 'live', T)), 'allowed');
    assert.equal(code(acl2.authorize(k.member.publicKey, 'live', T)), 'E_GRANT_REVOKED');
    assert.deepEqual(acl.dropped(acl2, T), [txt(k.member)]);
  });

  it('ATTACK: a member signs an update adding a grant → E_WRONG_SIGNER (control: an owner signing the same is applied)', async () => {
    const acl = await household();
    const g = grant({ serial: 5, sub: txt(k.member), scopes: ['live', 'talk', 'ptz'] });
    await rejectsWith(async () => acl.apply(await update(k.member, { ver: 2 }, [g]), T), 'E_WRONG_SIGNER');
    // the member's own grant envelope inside an owner-signed update: E_WRONG_SIGNER too
    await rejectsWith(
      async () => acl.apply(await update(k.owner, { ver: 2 }, [g], k.member), T),
      'E_WRONG_SIGNER',
    );
    const ok = await acl.apply(await update(k.owner, { ver: 2 }, [g]), T);
    assert.equal(code(ok.authorize(k.member.publicKey, 'ptz', T)), 'allowed');
  });

  it("ATTACK: a member's forged revocation of an owner → E_WRONG_SIGNER (control: an owner may remove the other)", async () => {
    const acl = await household();
    await rejectsWith(
      async () => acl.apply(await update(k.member, { ver: 2, owners: { remove: [txt(k.owner)] } }), T),
      'E_WRONG_SIGNER',
    );
    // a stranger adding itself as an owner, likewise
    await rejectsWith(
      async () => acl.apply(await update(k.stranger, { ver: 2, owners: { add: [txt(k.stranger)] } }), T),
      'E_WRONG_SIGNER',
    );
    const ok = await acl.apply(await update(k.owner2, { ver: 2, owners: { remove: [txt(k.owner)] } }), T);
    assert.deepEqual(ok.owners, [txt(k.owner2)]);
    assert.equal(code(ok.authorize(k.owner.publicKey, 'live', T)), 'E_NO_GRANT');
    assert.deepEqual(acl.dropped(ok, T), [txt(k.owner)]);
    // the removed owner can no longer sign anything
    await rejectsWith(async () => ok.apply(await update(k.owner, { ver: 3 }), T), 'E_WRONG_SIGNER');
  });

  it('ATTACK: a replayed old ACL update → E_STALE_ACL (control: the next version applies)', async () => {
    const acl0 = Acl.create(k.deviceId, k.owner.publicKey);
    const addOwner2 = await update(k.owner, { ver: 1, owners: { add: [txt(k.owner2)] } });
    const acl1 = await acl0.apply(addOwner2, T);
    const acl2 = await acl1.apply(await update(k.owner, { ver: 2, owners: { remove: [txt(k.owner2)] } }), T);
    await rejectsWith(() => acl2.apply(addOwner2, T), 'E_STALE_ACL');
    assert.deepEqual(acl2.owners, [txt(k.owner)]);
    const acl3 = await acl2.apply(await update(k.owner, { ver: 3, owners: { add: [txt(k.owner2)] } }), T);
    assert.ok(acl3.isOwner(k.owner2.publicKey));
  });

  it('ATTACK: removing the last owner → E_LAST_OWNER (control: removing one of two is applied)', async () => {
    const solo = Acl.create(k.deviceId, k.owner.publicKey);
    await rejectsWith(
      async () => solo.apply(await update(k.owner, { ver: 1, owners: { remove: [txt(k.owner)] } }), T),
      'E_LAST_OWNER',
    );
    const two = await household();
    await rejectsWith(
      async () =>
        two.apply(await update(k.owner, { ver: 2, owners: { remove: [txt(k.owner), txt(k.owner2)] } }), T),
      'E_LAST_OWNER',
    );
    const one = await two.apply(await update(k.owner, { ver: 2, owners: { remove: [txt(k.owner2)] } }), T);
    assert.deepEqual(one.owners, [txt(k.owner)]);
  });

  it('owner transfer: one update adds B and removes A; grants A signed stay valid', async () => {
    const acl = await household();
    const moved = await acl.apply(
      await update(k.owner, {
        ver: 2,
        owners: { add: [txt(k.stranger)], remove: [txt(k.owner), txt(k.owner2)] },
      }),
      T,
    );
    assert.deepEqual(moved.owners, [txt(k.stranger)]);
    assert.equal(code(moved.authorize(k.member.publicKey, 'live', T)), 'allowed');
    const back = await Acl.load(JSON.stringify(moved.toJSON()), T);
    assert.equal(code(back.authorize(k.member.publicKey, 'live', T)), 'allowed');
    assert.deepEqual(back.owners, [txt(k.stranger)]);
    const d = acl.diff(moved);
    assert.deepEqual(d.ownersAdded, [txt(k.stranger)]);
    assert.deepEqual(d.ownersRemoved, [txt(k.owner), txt(k.owner2)]);
  });

  it('more than 8 owners, a duplicate, or the recovery key as an owner: E_SCHEMA', async () => {
    const acl = Acl.create(k.deviceId, k.owner.publicKey);
    const many = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const { WebCryptoSigner } = await import('../src/crypto/primitives.js');
        return txt(await WebCryptoSigner.fromSeed(new Uint8Array(32).fill(100 + i)));
      }),
    );
    await rejectsWith(
      async () => acl.apply(await update(k.owner, { ver: 1, owners: { add: many } }), T),
      'E_SCHEMA',
    );
    const seven = await acl.apply(await update(k.owner, { ver: 1, owners: { add: many.slice(0, 7) } }), T);
    assert.equal(seven.owners.length, 8);
    await rejectsWith(
      async () =>
        acl.apply(
          await update(k.owner, { ver: 1, owners: { add: [txt(k.recovery)] }, recovery: txt(k.recovery) }),
          T,
        ),
      'E_SCHEMA',
    );
  });
});

describe('ACL v2: the recovery key', () => {
  it('replaces the owners (lost phones) and sets a new recovery key', async () => {
    const acl = await household();
    const rec = await acl.apply(
      await update(k.recovery, {
        ver: 2,
        owners: { add: [txt(k.stranger)], remove: [txt(k.owner), txt(k.owner2)] },
        recovery: txt(k.owner2),
      }),
      T,
    );
    assert.deepEqual(rec.owners, [txt(k.stranger)]);
    assert.equal(rec.recoveryKey, txt(k.owner2));
    // the old recovery key is spent
    await rejectsWith(
      async () => rec.apply(await update(k.recovery, { ver: 3, owners: { add: [txt(k.recovery)] } }), T),
      'E_WRONG_SIGNER',
    );
  });

  it('ATTACK: the recovery key adding a member (or revoking, or changing groups) → E_RECOVERY_SCOPE (control: an owner may)', async () => {
    const acl = await household();
    await rejectsWith(
      async () =>
        acl.apply(
          await update(k.recovery, { ver: 2 }, [grant({ serial: 9, sub: txt(k.stranger) })], k.owner),
          T,
        ),
      'E_RECOVERY_SCOPE',
    );
    await rejectsWith(
      async () => acl.apply(await update(k.recovery, { ver: 2, revoke: [1] }), T),
      'E_RECOVERY_SCOPE',
    );
    await rejectsWith(
      async () => acl.apply(await update(k.recovery, { ver: 2, groups: { all: ['door'] } }), T),
      'E_RECOVERY_SCOPE',
    );
    // the recovery key has no access of its own
    assert.equal(code(acl.authorize(k.recovery.publicKey, 'live', T)), 'E_NO_GRANT');
    const ok = await acl.apply(
      await update(k.owner, { ver: 2 }, [grant({ serial: 9, sub: txt(k.stranger) })]),
      T,
    );
    assert.equal(code(ok.authorize(k.stranger.publicKey, 'live', T)), 'allowed');
  });

  it('the recovery key cannot remove the last owner either: E_LAST_OWNER', async () => {
    const acl = await household();
    await rejectsWith(
      async () =>
        acl.apply(await update(k.recovery, { ver: 2, owners: { remove: [txt(k.owner), txt(k.owner2)] } }), T),
      'E_LAST_OWNER',
    );
  });

  it('an owner may remove the recovery key (recovery: null); then it signs nothing', async () => {
    const acl = await household();
    const none = await acl.apply(await update(k.owner, { ver: 2, recovery: null }), T);
    assert.equal(none.recoveryKey, undefined);
    await rejectsWith(
      async () => none.apply(await update(k.recovery, { ver: 3, owners: { add: [txt(k.stranger)] } }), T),
      'E_WRONG_SIGNER',
    );
  });
});

describe('ACL v2: schedules in the device time zone', () => {
  // 2026-12-07 is a Monday.
  const at = (iso: string) => Date.parse(iso);
  async function sched(s: Grant['sched'], tz?: string): Promise<Acl> {
    const nbf = at('2026-01-01T00:00:00Z');
    const g = grant({ sched: s, nbf, exp: null });
    const acl0 = Acl.create(k.deviceId, k.owner.publicKey, tz ? { timeZone: tz } : {});
    const e = await signAclUpdate(
      k.owner,
      { d: k.deviceId, ver: 1, add: [await signGrant(k.owner, g, k.env)], revoke: [] },
      k.env,
    );
    return acl0.apply(e, T);
  }

  it('babysitter weekdays 08:00–18:00 (UTC): in hours allowed, outside E_OUTSIDE_SCHEDULE (control: the same grant without a schedule)', async () => {
    const acl = await sched([{ days: [1, 2, 3, 4, 5], from: '08:00', to: '18:00' }]);
    const m = k.member.publicKey;
    assert.equal(code(acl.authorize(m, 'live', at('2026-12-07T08:00:00Z'))), 'allowed');
    assert.equal(code(acl.authorize(m, 'live', at('2026-12-07T17:59:59Z'))), 'allowed');
    assert.equal(code(acl.authorize(m, 'live', at('2026-12-07T18:00:00Z'))), 'E_OUTSIDE_SCHEDULE');
    assert.equal(code(acl.authorize(m, 'live', at('2026-12-07T07:59:00Z'))), 'E_OUTSIDE_SCHEDULE');
    assert.equal(code(acl.authorize(m, 'live', at('2026-12-06T12:00:00Z'))), 'E_OUTSIDE_SCHEDULE'); // Sunday
    const always = await sched(undefined);
    assert.equal(code(always.authorize(m, 'live', at('2026-12-06T12:00:00Z'))), 'allowed');
  });

  it('a window across midnight belongs to the day it starts (Fri 22:00 → Sat 06:00)', async () => {
    const acl = await sched([{ days: [5], from: '22:00', to: '06:00' }]);
    const m = k.member.publicKey;
    assert.equal(code(acl.authorize(m, 'live', at('2026-12-11T22:30:00Z'))), 'allowed'); // Fri
    assert.equal(code(acl.authorize(m, 'live', at('2026-12-12T05:59:00Z'))), 'allowed'); // Sat early
    assert.equal(code(acl.authorize(m, 'live', at('2026-12-12T06:00:00Z'))), 'E_OUTSIDE_SCHEDULE');
    assert.equal(code(acl.authorize(m, 'live', at('2026-12-12T22:30:00Z'))), 'E_OUTSIDE_SCHEDULE'); // Sat night
    assert.equal(code(acl.authorize(m, 'live', at('2026-12-11T05:00:00Z'))), 'E_OUTSIDE_SCHEDULE'); // Fri early (Thu not listed)
    assert.equal(code(acl.authorize(m, 'live', at('2026-12-11T21:59:00Z'))), 'E_OUTSIDE_SCHEDULE');
  });

  it("evaluated in the device's zone, not UTC (Asia/Tokyo +9, America/New_York with DST); withTimeZone", async () => {
    const s = [{ days: [1], from: '08:00', to: '09:00' }];
    const tokyo = await sched(s, 'Asia/Tokyo');
    const m = k.member.publicKey;
    // Monday 08:30 in Tokyo is Sunday 23:30 UTC.
    assert.equal(code(tokyo.authorize(m, 'live', at('2026-12-06T23:30:00Z'))), 'allowed');
    assert.equal(code(tokyo.authorize(m, 'live', at('2026-12-07T08:30:00Z'))), 'E_OUTSIDE_SCHEDULE');
    // control: the same ACL in UTC answers the other way round
    const utc = tokyo.withTimeZone('UTC');
    assert.equal(code(utc.authorize(m, 'live', at('2026-12-06T23:30:00Z'))), 'E_OUTSIDE_SCHEDULE');
    assert.equal(code(utc.authorize(m, 'live', at('2026-12-07T08:30:00Z'))), 'allowed');
    // New York: 08:30 local is 13:30 UTC in winter (EST) and 12:30 UTC in summer (EDT)
    const ny = tokyo.withTimeZone('America/New_York');
    assert.equal(code(ny.authorize(m, 'live', at('2026-12-07T13:30:00Z'))), 'allowed');
    assert.equal(code(ny.authorize(m, 'live', at('2026-06-01T12:30:00Z'))), 'allowed');
    assert.equal(code(ny.authorize(m, 'live', at('2026-06-01T13:30:00Z'))), 'E_OUTSIDE_SCHEDULE');
    // across midnight in a non-UTC zone: Mon 23:00 → Tue 01:00 in Berlin (UTC+1 in December)
    const berlin = (await sched([{ days: [1], from: '23:00', to: '01:00' }])).withTimeZone('Europe/Berlin');
    assert.equal(code(berlin.authorize(m, 'live', at('2026-12-07T23:30:00Z'))), 'allowed'); // Tue 00:30 local
    assert.equal(code(berlin.authorize(m, 'live', at('2026-12-08T00:30:00Z'))), 'E_OUTSIDE_SCHEDULE'); // Tue 01:30
    assert.equal(code(berlin.authorize(m, 'live', at('2026-12-07T22:00:00Z'))), 'allowed'); // Mon 23:00
    assert.equal(code(berlin.authorize(m, 'live', at('2026-12-07T21:59:00Z'))), 'E_OUTSIDE_SCHEDULE');
  });

  it('an unknown time zone is refused (E_SCHEMA); bad schedules are E_SCHEMA', async () => {
    assert.throws(
      () => Acl.create(k.deviceId, k.owner.publicKey, { timeZone: 'Mars/Olympus' }),
      (x) => (x as HearthError).code === 'E_SCHEMA',
    );
    assert.throws(
      () => Acl.create(k.deviceId, k.owner.publicKey).withTimeZone(''),
      (x) => (x as HearthError).code === 'E_SCHEMA',
    );
    for (const bad of [
      [{ days: [1], from: '08:00', to: '08:00' }],
      [{ days: [7], from: '08:00', to: '09:00' }],
      [{ days: [1, 1], from: '08:00', to: '09:00' }],
      [{ days: [], from: '08:00', to: '09:00' }],
      [{ days: [1], from: '24:00', to: '09:00' }],
      [{ days: [1], from: '8:00', to: '09:00' }],
      [],
      Array.from({ length: 9 }, () => ({ days: [1], from: '08:00', to: '09:00' })),
    ]) {
      await rejectsWith(() => signGrant(k.owner, grant({ sched: bad as Grant['sched'] }), k.env), 'E_SCHEMA');
    }
    // 24:00 as the end of a day is fine
    await signGrant(k.owner, grant({ sched: [{ days: [0, 6], from: '00:00', to: '24:00' }] }), k.env);
  });
});

describe('ACL v2: history floor, guests, groups, scopes', () => {
  async function one(g: Partial<Grant>, groups?: Record<string, string[]>): Promise<Acl> {
    return Acl.create(k.deviceId, k.owner.publicKey).apply(
      await update(k.owner, { ver: 1, ...(groups ? { groups } : {}) }, [grant(g)]),
      T,
    );
  }

  it('a floor: content made before it is E_HISTORY_FLOOR (control: without `at`, or after the floor, allowed)', async () => {
    const acl = await one({ scopes: ['clips'], floor: T - HOUR });
    const m = k.member.publicKey;
    assert.equal(code(acl.authorize(m, 'clips', T, 'door', { at: T - HOUR - 1 })), 'E_HISTORY_FLOOR');
    assert.equal(code(acl.authorize(m, 'clips', T, 'door', { at: T - HOUR })), 'allowed');
    assert.equal(code(acl.authorize(m, 'clips', T, 'door')), 'allowed');
    const noFloor = await one({ scopes: ['clips'] });
    assert.equal(code(noFloor.authorize(m, 'clips', T, 'door', { at: 0 })), 'allowed');
    // the owner has no floor
    assert.equal(code(acl.authorize(k.owner.publicKey, 'clips', T, 'door', { at: 0 })), 'allowed');
  });

  it('a guest has no history: its floor is at least nbf (control: a member with the same grant sees the past)', async () => {
    const guest = await one({ role: 'guest', scopes: ['clips'], nbf: T - 10, floor: T - DAY });
    const m = k.member.publicKey;
    assert.equal(code(guest.authorize(m, 'clips', T, 'door', { at: T - 11 })), 'E_HISTORY_FLOOR');
    assert.equal(code(guest.authorize(m, 'clips', T, 'door', { at: T - 10 })), 'allowed');
    const guest2 = await one({ role: 'guest', scopes: ['clips'], nbf: T - 10, floor: T + 5 });
    assert.equal(code(guest2.authorize(m, 'clips', T + 6, 'door', { at: T + 4 })), 'E_HISTORY_FLOOR');
    const member = await one({ role: 'member', scopes: ['clips'], nbf: T - 10 });
    assert.equal(code(member.authorize(m, 'clips', T, 'door', { at: T - DAY })), 'allowed');
  });

  it('camera groups: a grant covers the cameras of its groups (control: a camera outside them is E_SCOPE)', async () => {
    const acl = await one(
      { groups: ['outside'], cams: ['hall'] },
      { outside: ['door', 'garden'], inside: ['kids'] },
    );
    const m = k.member.publicKey;
    for (const c of ['door', 'garden', 'hall']) assert.equal(code(acl.authorize(m, 'live', T, c)), 'allowed');
    assert.equal(code(acl.authorize(m, 'live', T, 'kids')), 'E_SCOPE');
    // replacing the map changes what the grant covers; null removes it
    const moved = await acl.apply(await update(k.owner, { ver: 2, groups: { outside: ['kids'] } }), T);
    assert.equal(code(moved.authorize(m, 'live', T, 'kids')), 'allowed');
    assert.equal(code(moved.authorize(m, 'live', T, 'door')), 'E_SCOPE');
    const none = await moved.apply(await update(k.owner, { ver: 3, groups: null }), T);
    assert.equal(code(none.authorize(m, 'live', T, 'kids')), 'E_SCOPE');
    assert.equal(code(none.authorize(m, 'live', T, 'hall')), 'allowed');
    assert.ok(acl.diff(moved).groupsChanged);
  });

  it('new scopes: snapshots and timeline are separate; a grant naming neither has them with clips (v1 grants)', async () => {
    const m = k.member.publicKey;
    const legacy = await one({ scopes: ['live', 'clips'] });
    for (const s of ['clips', 'snapshots', 'timeline'] as const)
      assert.equal(code(legacy.authorize(m, s, T)), 'allowed');
    const timelineOnly = await one({ scopes: ['timeline'] });
    assert.equal(code(timelineOnly.authorize(m, 'timeline', T)), 'allowed');
    assert.equal(code(timelineOnly.authorize(m, 'clips', T)), 'E_SCOPE');
    assert.equal(code(timelineOnly.authorize(m, 'snapshots', T)), 'E_SCOPE');
    const clipsTimeline = await one({ scopes: ['clips', 'timeline'] });
    assert.equal(code(clipsTimeline.authorize(m, 'snapshots', T)), 'E_SCOPE');
  });

  it('role owner in a grant is refused (owners are the ACL list), label ≤ 64 chars without control characters', async () => {
    await rejectsWith(() => signGrant(k.owner, grant({ role: 'owner' as 'member' }), k.env), 'E_SCHEMA');
    await rejectsWith(() => signGrant(k.owner, grant({ label: 'x'.repeat(65) }), k.env), 'E_SCHEMA');
    await rejectsWith(() => signGrant(k.owner, grant({ label: 'a\nb' }), k.env), 'E_SCHEMA');
    await rejectsWith(() => signGrant(k.owner, grant({ groups: ['Bad Name'] }), k.env), 'E_SCHEMA');
    const e = await signGrant(k.owner, grant({ label: 'Grandma 👵' }), k.env);
    assert.equal((e.b as { label: string }).label, 'Grandma 👵');
  });
});

describe('ACL v2: state, diff', () => {
  it('loads a v1 state ({owner}) and saves it as v2 ({owners})', async () => {
    const acl = await household();
    const { owners: _o, recovery: _r, ...rest } = acl.toJSON();
    const v1 = JSON.stringify({ ...rest, owner: txt(k.owner) });
    const back = await Acl.load(v1, T, { timeZone: 'Europe/Paris' });
    assert.deepEqual(back.owners, [txt(k.owner)]);
    assert.equal(back.timeZone, 'Europe/Paris');
    assert.equal(code(back.authorize(k.member.publicKey, 'live', T)), 'allowed');
    assert.ok(!('owner' in back.toJSON()));
    const v2 = await Acl.load(JSON.stringify(acl.toJSON()), T);
    assert.deepEqual(v2.toJSON(), acl.toJSON());
    // both `owner` and `owners`, or neither: E_SCHEMA
    await rejectsWith(
      () => Acl.load(JSON.stringify({ ...acl.toJSON(), owner: txt(k.owner) }), T),
      'E_SCHEMA',
    );
    await rejectsWith(() => Acl.load(JSON.stringify(rest), T), 'E_SCHEMA');
    await rejectsWith(() => Acl.load(JSON.stringify({ ...acl.toJSON(), owners: [] }), T), 'E_SCHEMA');
  });

  it('diff names granted, changed (re-grant) and revoked subjects', async () => {
    const acl = await household();
    const next = await acl.apply(
      await update(k.owner, { ver: 2, revoke: [1] }, [
        grant({ serial: 2, role: 'guest' }),
        grant({ serial: 3, sub: txt(k.stranger) }),
      ]),
      T,
    );
    const d = acl.diff(next);
    assert.deepEqual(d.granted, [{ sub: txt(k.stranger), role: 'member' }]);
    assert.deepEqual(d.changed, [{ sub: txt(k.member), role: 'guest' }]);
    assert.deepEqual(d.revoked, []);
    const gone = await next.apply(await update(k.owner, { ver: 3, revoke: [2] }), T);
    assert.deepEqual(next.diff(gone).revoked, [txt(k.member)]);
    assert.deepEqual(next.diff(gone).ownersAdded, []);
    assert.equal(next.diff(gone).recoveryChanged, false);
  });
});

describe('ACL v2: controls — with the defence turned off (unguardedForTests), each attack succeeds', () => {
  async function unguarded(
    off: NonNullable<Parameters<typeof Acl.create>[2]>['unguardedForTests'],
  ): Promise<Acl> {
    const acl0 = Acl.create(k.deviceId, k.owner.publicKey, { unguardedForTests: off ?? [] });
    return acl0.apply(
      await update(k.owner, { ver: 1, owners: { add: [txt(k.owner2)] }, recovery: txt(k.recovery) }, [
        grant(),
      ]),
      T,
    );
  }

  it('signer: a member grants itself ptz and removes the owners', async () => {
    const acl = await unguarded(['signer']);
    const g = grant({ serial: 5, scopes: ['live', 'ptz'] });
    const next = await acl.apply(
      await update(k.member, { ver: 2, owners: { remove: [txt(k.owner)] } }, [g]),
      T,
    );
    assert.equal(code(next.authorize(k.member.publicKey, 'ptz', T)), 'allowed');
    assert.ok(!next.isOwner(k.owner.publicKey));
  });

  it('version: a replayed old update undoes the removal of an owner', async () => {
    const acl0 = Acl.create(k.deviceId, k.owner.publicKey, { unguardedForTests: ['version'] });
    const addOwner2 = await update(k.owner, { ver: 1, owners: { add: [txt(k.owner2)] } });
    const acl1 = await acl0.apply(addOwner2, T);
    const acl2 = await acl1.apply(await update(k.owner, { ver: 2, owners: { remove: [txt(k.owner2)] } }), T);
    assert.ok(!acl2.isOwner(k.owner2.publicKey));
    const replayed = await acl2.apply(addOwner2, T);
    assert.ok(replayed.isOwner(k.owner2.publicKey));
  });

  it('recovery-scope: the recovery key adds a member; last-owner: the owners are all removed', async () => {
    const rec = await unguarded(['recovery-scope']);
    const next = await rec.apply(
      await update(k.recovery, { ver: 2 }, [grant({ serial: 9, sub: txt(k.stranger) })], k.owner),
      T,
    );
    assert.equal(code(next.authorize(k.stranger.publicKey, 'live', T)), 'allowed');
    const last = await unguarded(['last-owner']);
    const empty = await last.apply(
      await update(k.owner, { ver: 2, owners: { remove: [txt(k.owner), txt(k.owner2)] } }),
      T,
    );
    assert.deepEqual(empty.owners, []);
  });

  it('schedule and floor: an out-of-hours key and a guest’s pre-grant content are allowed', async () => {
    const nbf = Date.parse('2026-01-01T00:00:00Z');
    const g = grant({
      role: 'guest',
      scopes: ['clips'],
      nbf,
      exp: null,
      sched: [{ days: [1], from: '08:00', to: '09:00' }],
    });
    const make = async (off: ('schedule' | 'floor')[]) =>
      Acl.create(k.deviceId, k.owner.publicKey, { unguardedForTests: off }).apply(
        await update(k.owner, { ver: 1 }, [g]),
        T,
      );
    const sunday = Date.parse('2026-12-06T12:00:00Z');
    const monday = Date.parse('2026-12-07T08:30:00Z');
    assert.equal(code((await make([])).authorize(k.member.publicKey, 'clips', sunday)), 'E_OUTSIDE_SCHEDULE');
    assert.equal(code((await make(['schedule'])).authorize(k.member.publicKey, 'clips', sunday)), 'allowed');
    assert.equal(
      code((await make([])).authorize(k.member.publicKey, 'clips', monday, 'x', { at: nbf - 1 })),
      'E_HISTORY_FLOOR',
    );
    assert.equal(
      code((await make(['floor'])).authorize(k.member.publicKey, 'clips', monday, 'x', { at: nbf - 1 })),
      'allowed',
    );
  });
});
