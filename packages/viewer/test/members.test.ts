import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Acl,
  deviceIdFromKey,
  encodeId,
  type LogEntry,
  signAclUpdate,
  signGrant,
  systemEnv,
  WebCryptoSigner,
} from '@hearth/protocol';
import fc from 'fast-check';
import type { ScheduleForm } from '../src/core/members.js';
import {
  DAY,
  daysText,
  grantFromTemplate,
  grantUpdate,
  groupProblem,
  groupsUpdate,
  inviteRows,
  memberRows,
  nextSerial,
  ownersUpdate,
  presetOf,
  presetTemplate,
  promoteUpdate,
  REVOKE_NOTE,
  recoveryUpdate,
  revokeUpdate,
  scheduleForm,
  scheduleOfForm,
  scheduleText,
  settlePending,
  tamperedText,
  templateOfGrant,
  transferUpdate,
  untilText,
  verifiedText,
} from '../src/core/members.js';
import type { AclStateV2, GrantBody, InviteInfo } from '../src/net/household.js';

const d = deviceIdFromKey(new Uint8Array(32).fill(7));
const key = (n: number) => encodeId('userKey', new Uint8Array(32).fill(n));
const OWNER = key(1);
const ALICE = key(2);
const BOB = key(3);
const NOW = Date.UTC(2026, 11, 4, 12, 0);
/** Stand-in log names: "h" + the key's fill byte, padded to 32 hex digits. */
const hashOf = (k: string) =>
  ({ [OWNER]: 'a'.repeat(32), [ALICE]: 'b'.repeat(32), [BOB]: 'c'.repeat(32) })[k];

function state(grants: GrantBody[], o: Partial<AclStateV2> = {}): AclStateV2 {
  return {
    d,
    ver: 3,
    owners: [OWNER],
    grants: grants.map((b) => ({ v: 1, p: 'grant', k: OWNER, n: 'x', t: NOW, b, s: 'sig' }) as never),
    revoked: [1],
    revokedKeys: [],
    ...o,
  };
}

const grant = (sub: string, serial: number, extra: Partial<GrantBody> = {}): GrantBody =>
  grantFromTemplate(presetTemplate('family'), { d, sub, now: NOW - DAY, serial, ...extra });

const logged = (k: 'acl/grant' | 'acl/change' | 'acl/revoke', subject: string, ver: number): LogEntry =>
  (k === 'acl/revoke'
    ? { v: 1, t: NOW, k, subject, by: 'a'.repeat(32), ver }
    : { v: 1, t: NOW, k, subject, by: 'a'.repeat(32), ver, role: 'member' }) as LogEntry;

describe('role templates', () => {
  it('the three presets are what the owner is told', () => {
    assert.deepEqual(presetTemplate('family'), {
      role: 'member',
      scopes: ['live', 'clips', 'snapshots', 'timeline'],
    });
    assert.deepEqual(presetTemplate('babysitter'), {
      role: 'member',
      scopes: ['live'],
      sched: [{ days: [1, 2, 3, 4, 5], from: '08:00', to: '18:00' }],
    });
    assert.deepEqual(presetTemplate('guest'), { role: 'guest', scopes: ['live'], days: 1, floor: 'grant' });
    assert.deepEqual(presetTemplate('family', ['door']).cams, ['door']);
    // A template is a copy: changing it does not change the preset.
    presetTemplate('babysitter').sched![0]!.days.push(6);
    assert.deepEqual(presetTemplate('babysitter').sched![0]!.days, [1, 2, 3, 4, 5]);
  });

  it('a guest grant lasts 24 h and sees no history from before it', () => {
    const g = grantFromTemplate(presetTemplate('guest'), {
      d,
      sub: ALICE,
      now: NOW,
      serial: 9,
      label: 'Sam',
    });
    assert.deepEqual(g, {
      d,
      sub: ALICE,
      role: 'guest',
      scopes: ['live'],
      nbf: NOW,
      exp: NOW + DAY,
      serial: 9,
      floor: NOW,
      label: 'Sam',
    });
  });

  it('a babysitter grant has no end date but a weekday schedule; a family grant has neither', () => {
    const b = grantFromTemplate(presetTemplate('babysitter'), { d, sub: ALICE, now: NOW, serial: 2 });
    assert.equal(b.exp, null);
    assert.equal(scheduleText(b.sched), 'Mon–Fri 08:00–18:00');
    const f = grant(ALICE, 2);
    assert.equal(f.sched, undefined);
    assert.equal(f.floor, undefined);
    assert.equal(f.exp, null);
  });

  it('recognises a preset in a grant, and turns a grant back into its template', () => {
    for (const id of ['family', 'babysitter', 'guest'] as const) {
      const g = grantFromTemplate(presetTemplate(id), { d, sub: ALICE, now: NOW, serial: 2 });
      assert.equal(presetOf(g), id);
      assert.deepEqual(templateOfGrant(g), presetTemplate(id));
    }
    assert.equal(presetOf({ role: 'member', scopes: ['live', 'talk'] }), undefined);
  });
});

describe('schedules and dates in words', () => {
  it('days', () => {
    assert.equal(daysText([1, 2, 3, 4, 5]), 'Mon–Fri');
    assert.equal(daysText([0, 6]), 'Sat, Sun');
    assert.equal(daysText([0, 1, 2, 3, 4, 5, 6]), 'Every day');
    assert.equal(daysText([1, 3, 5]), 'Mon, Wed, Fri');
    assert.equal(daysText([5, 6, 0]), 'Fri–Sun');
    assert.equal(daysText([1, 2]), 'Mon, Tue');
  });

  it('windows, including one that crosses midnight', () => {
    assert.equal(scheduleText(undefined), 'Any time');
    assert.equal(scheduleText([]), 'Any time');
    assert.equal(
      scheduleText([
        { days: [1, 2, 3, 4, 5], from: '08:00', to: '18:00' },
        { days: [6], from: '22:00', to: '06:00' },
      ]),
      'Mon–Fri 08:00–18:00; Sat 22:00–06:00 (overnight)',
    );
  });

  it('end dates', () => {
    assert.equal(untilText(null, NOW), 'No end date');
    assert.equal(untilText(NOW + DAY, NOW, 'UTC'), 'Until 5 Dec 2026, 12:00');
    assert.equal(untilText(NOW - 1, NOW, 'UTC'), 'Expired 4 Dec 2026, 11:59');
  });

  it('the plain sentences', () => {
    assert.equal(REVOKE_NOTE, 'Clips already downloaded cannot be recalled.');
    assert.equal(verifiedText(1), 'verified by 1 of your devices');
    assert.equal(verifiedText(3), 'verified by 3 of your devices');
    assert.equal(tamperedText('E_LOG_FORK'), 'Log tampered — possible attack (E_LOG_FORK)');
  });
});

describe('members rows: pending until the verified log shows the change', () => {
  it('rows: owner first, then members by serial; role, scopes, where, when, until', () => {
    const s = state([
      grantFromTemplate(presetTemplate('guest'), { d, sub: BOB, now: NOW - 2 * DAY, serial: 5 }),
      grant(ALICE, 4, { label: 'Alice' }),
    ]);
    const rows = memberRows(s, { me: OWNER, now: NOW, hashOf, logged: [], timeZone: 'UTC' });
    assert.deepEqual(
      rows.map((r) => [r.name, r.role, r.you, r.status]),
      [
        ['You', 'owner', true, 'pending'],
        ['Alice', 'member', false, 'pending'],
        [`${BOB.slice(0, 10)}…`, 'guest', false, 'pending'],
      ],
    );
    assert.equal(rows[1]!.where, 'All cameras');
    assert.equal(rows[1]!.when, 'Any time');
    assert.equal(rows[1]!.preset, 'family');
    assert.equal(rows[2]!.expired, true, 'a 24-h guest from two days ago');
    assert.match(rows[2]!.until, /^Expired /);
  });

  it('verified by a logged grant; an owner by its logged pairing', () => {
    const s = state([grant(ALICE, 4)]);
    const pairing: LogEntry = { v: 1, t: NOW, k: 'pair/attempt', result: 'ok', viewer: hashOf(OWNER)! };
    const rows = memberRows(s, {
      me: OWNER,
      now: NOW,
      hashOf,
      logged: [pairing, logged('acl/grant', hashOf(ALICE)!, 2)],
    });
    assert.deepEqual(
      rows.map((r) => r.status),
      ['verified', 'verified'],
    );
    // A failed pairing attempt by that key does not count.
    const failed: LogEntry = {
      v: 1,
      t: NOW,
      k: 'pair/attempt',
      result: 'bad-confirmation',
      viewer: hashOf(OWNER)!,
    };
    assert.equal(memberRows(s, { me: OWNER, now: NOW, hashOf, logged: [failed] })[0]!.status, 'pending');
  });

  it("this viewer's own edit stays pending until an entry at (or after) its version is verified", () => {
    const s = state([grant(ALICE, 6)], { ver: 5 });
    const pending = [{ sub: ALICE, ver: 5, kind: 'grant' as const }];
    const old = [logged('acl/grant', hashOf(ALICE)!, 2)]; // the original grant, logged long ago
    const at = (l: LogEntry[]) =>
      memberRows(s, { me: OWNER, now: NOW, hashOf, logged: l, pending })[1]!.status;
    assert.equal(at(old), 'pending');
    assert.equal(at([...old, logged('acl/change', hashOf(BOB)!, 5)]), 'pending', 'another person’s entry');
    assert.equal(at([...old, logged('acl/change', hashOf(ALICE)!, 5)]), 'verified');
    // Control: without the pending change, the old entry alone verifies the row.
    assert.equal(memberRows(s, { me: OWNER, now: NOW, hashOf, logged: old })[1]!.status, 'verified');
  });

  it('a revocation shows as "revoking" until the log has it; settlePending drops what the log shows', () => {
    const s = state([], { ver: 7 });
    const pending = [{ sub: BOB, ver: 7, kind: 'revoke' as const }];
    const rows = memberRows(s, { me: OWNER, now: NOW, hashOf, logged: [], pending });
    assert.deepEqual(
      rows.map((r) => [r.sub, r.status]),
      [
        [OWNER, 'pending'],
        [BOB, 'revoking'],
      ],
    );
    const log = [logged('acl/revoke', hashOf(BOB)!, 7)];
    assert.equal(memberRows(s, { me: OWNER, now: NOW, hashOf, logged: log, pending }).length, 1);
    assert.deepEqual(settlePending(pending, log, hashOf), []);
    assert.deepEqual(settlePending(pending, [logged('acl/revoke', hashOf(BOB)!, 6)], hashOf), pending);
  });
});

describe('ACL updates', () => {
  it('revoke: every serial of that person, at the next version', () => {
    const s = state([grant(ALICE, 4), grant(BOB, 5), grant(ALICE, 6)]);
    assert.deepEqual(revokeUpdate(s, ALICE), { d, ver: 4, add: [], revoke: [4, 6] });
  });

  it('edit = revoke the old serial + add the new grant; a new grant adds only', () => {
    const s = state([grant(ALICE, 4)]);
    const env = { signed: 'grant' };
    assert.deepEqual(grantUpdate(s, env, ALICE), { d, ver: 4, add: [env], revoke: [4] });
    assert.deepEqual(grantUpdate(s, env), { d, ver: 4, add: [env], revoke: [] });
  });

  it('serials are never reused, revoked ones included', () => {
    assert.equal(nextSerial(state([grant(ALICE, 4)], { revoked: [9] })), 10);
    assert.equal(nextSerial(state([grant(ALICE, 4)], { revoked: [] })), 5);
    assert.equal(nextSerial(state([], { revoked: [] })), 1);
  });

  it('owners and the recovery key', () => {
    const s = state([]);
    assert.deepEqual(ownersUpdate(s, { add: [ALICE], remove: [OWNER] }), {
      d,
      ver: 4,
      add: [],
      revoke: [],
      owners: { add: [ALICE], remove: [OWNER] },
    });
    // A member made owner: into `owners`, and its grants revoked in the same update.
    assert.deepEqual(promoteUpdate(state([grant(ALICE, 4), grant(BOB, 5)]), ALICE), {
      d,
      ver: 4,
      add: [],
      revoke: [4],
      owners: { add: [ALICE] },
    });
    assert.deepEqual(recoveryUpdate(s, BOB), { d, ver: 4, add: [], revoke: [], recovery: BOB });
  });
});

describe('invite rows', () => {
  const tmpl = presetTemplate('babysitter');
  const list: InviteInfo[] = [
    { id: 'a'.repeat(32), exp: NOW + DAY, state: 'open', tmpl, label: 'Nanny' },
    { id: 'b'.repeat(32), exp: NOW + DAY, state: 'requested', tmpl, sub: ALICE, name: 'Sam' },
    { id: 'c'.repeat(32), exp: NOW - 1, state: 'open', tmpl: presetTemplate('guest') },
    { id: 'd'.repeat(32), exp: NOW + DAY, state: 'denied', tmpl, sub: BOB, name: 'Eve' },
  ];
  it('requests first (with approve/deny), an open invite past its time reads expired', () => {
    const rows = inviteRows(list, NOW, 'UTC');
    assert.deepEqual(
      rows.map((r) => [r.id[0], r.state, r.actionable, r.label]),
      [
        ['b', 'requested', true, 'Babysitter'],
        ['a', 'open', false, 'Nanny'],
        ['d', 'denied', false, 'Babysitter'],
        ['c', 'expired', false, 'Guest'],
      ],
    );
    assert.equal(rows[0]!.text, '“Sam” asks to join');
    assert.equal(rows[0]!.what, 'Live view · Mon–Fri 08:00–18:00');
    assert.equal(rows[3]!.what, 'Live view · Any time · 24 h');
  });
});

describe('owner transfer (one signed update, applied by the protocol ACL as a device would)', () => {
  const setup = async () => {
    const a = await WebCryptoSigner.generate();
    const b = await WebCryptoSigner.generate();
    const A = encodeId('userKey', a.publicKey);
    const B = encodeId('userKey', b.publicKey);
    const dev = deviceIdFromKey(crypto.getRandomValues(new Uint8Array(32)));
    const now = Date.now();
    const acl0 = Acl.create(dev, a.publicKey);
    const g = await signGrant(
      a,
      grantFromTemplate(presetTemplate('family'), { d: dev, sub: B, now, serial: 1 }),
      systemEnv,
    );
    const acl1 = await acl0.apply(
      await signAclUpdate(a, { d: dev, ver: 1, add: [g], revoke: [] }, systemEnv),
      now,
    );
    return { a, b, A, B, dev, now, acl1, state: acl1.toJSON() as AclStateV2 };
  };

  it('the member becomes the owner, the old owner stays on as a member, and can no longer sign changes', async () => {
    const { a, b, A, B, dev, now, acl1, state } = await setup();
    const keep = await signGrant(
      a,
      grantFromTemplate(presetTemplate('family'), { d: dev, sub: A, now, serial: nextSerial(state) }),
      systemEnv,
    );
    const body = transferUpdate(state, B, A, keep);
    const acl2 = await acl1.apply(await signAclUpdate(a, body, systemEnv), now);
    assert.deepEqual(acl2.owners, [B]);
    assert.equal(acl2.roleOf(A), 'member');
    assert.equal(acl2.authorize(A, 'live', now + 1000, 'demo').allowed, true);
    // B's member grant went with the promotion.
    assert.equal(acl2.grantsOf(B).length, 0);
    await assert.rejects(
      acl2.apply(
        await signAclUpdate(a, { d: dev, ver: acl2.state.ver + 1, add: [], revoke: [] }, systemEnv),
        now,
      ),
      (e: Error & { code?: string }) => e.code === 'E_WRONG_SIGNER',
    );
    const acl3 = await acl2.apply(
      await signAclUpdate(b, { d: dev, ver: acl2.state.ver + 1, add: [], revoke: [] }, systemEnv),
      now,
    );
    assert.equal(acl3.state.ver, acl2.state.ver + 1);
  });

  it('without staying on, the old owner loses every right at once; a transfer to oneself is refused', async () => {
    const { a, A, B, now, acl1, state } = await setup();
    const acl2 = await acl1.apply(await signAclUpdate(a, transferUpdate(state, B, A), systemEnv), now);
    assert.deepEqual(acl2.owners, [B]);
    assert.equal(acl2.authorize(A, 'live', now + 1000, 'demo').allowed, false);
    assert.throws(() => transferUpdate(state, A, A), RangeError);
  });
});

describe('the schedule editor', () => {
  it('reads back a preset window, and writes it the protocol way (00:00 as the end is 24:00)', () => {
    const f = scheduleForm(presetTemplate('babysitter').sched);
    assert.deepEqual(f, { any: false, days: [1, 2, 3, 4, 5], from: '08:00', to: '18:00', rest: [] });
    assert.deepEqual(scheduleOfForm(f), {
      ok: true,
      sched: [{ days: [1, 2, 3, 4, 5], from: '08:00', to: '18:00' }],
    });
    assert.deepEqual(scheduleOfForm({ ...f, days: [6, 0], from: '20:00', to: '00:00' }), {
      ok: true,
      sched: [{ days: [0, 6], from: '20:00', to: '24:00' }],
    });
    // Across midnight: 22:00 to 06:00.
    assert.deepEqual(scheduleOfForm({ ...f, from: '22:00', to: '06:00' }), {
      ok: true,
      sched: [{ days: [1, 2, 3, 4, 5], from: '22:00', to: '06:00' }],
    });
    assert.deepEqual(scheduleOfForm({ ...f, any: true }), { ok: true, sched: undefined });
    assert.equal(scheduleForm(undefined).any, true);
  });

  it('says what is wrong: no day, a bad time, an empty window', () => {
    const f = scheduleForm([{ days: [1], from: '08:00', to: '18:00' }]);
    assert.deepEqual(scheduleOfForm({ ...f, days: [] }), { ok: false, error: 'Pick at least one day.' });
    assert.equal(scheduleOfForm({ ...f, from: '8am' }).ok, false);
    assert.equal(scheduleOfForm({ ...f, to: '24:30' }).ok, false);
    assert.deepEqual(scheduleOfForm({ ...f, to: '08:00' }), {
      ok: false,
      error: 'The start and the end must differ.',
    });
  });

  it('fuzz: any input gives an error or a schedule the protocol signs into a grant', async () => {
    const signer = await WebCryptoSigner.generate();
    const dev = deviceIdFromKey(new Uint8Array(32).fill(9));
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          any: fc.boolean(),
          days: fc.array(fc.integer({ min: -2, max: 9 }), { maxLength: 10 }),
          from: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('00:00', '08:00', '23:59', '12:30')),
          to: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('00:00', '18:00', '06:00', '24:00')),
          rest: fc.constant([] as ScheduleForm['rest']),
        }),
        async (f) => {
          const r = scheduleOfForm(f);
          if (!r.ok) return assert.equal(typeof r.error, 'string');
          const tmpl = { ...presetTemplate('family'), ...(r.sched ? { sched: r.sched } : {}) };
          await signGrant(
            signer,
            grantFromTemplate(tmpl, { d: dev, sub: ALICE, now: NOW, serial: 2 }),
            systemEnv,
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('camera groups', () => {
  it('an added group and a grant limited to it are applied by the protocol ACL; deleting it takes the access', async () => {
    const a = await WebCryptoSigner.generate();
    const dev = deviceIdFromKey(crypto.getRandomValues(new Uint8Array(32)));
    const now = Date.now();
    const acl0 = Acl.create(dev, a.publicKey);
    const state0 = acl0.toJSON() as AclStateV2;
    assert.equal(groupProblem('door', ['frontdoor'], state0.groups), undefined);
    const acl1 = await acl0.apply(
      await signAclUpdate(a, groupsUpdate(state0, { door: ['frontdoor'] }), systemEnv),
      now,
    );
    assert.deepEqual(acl1.state.groups, { door: ['frontdoor'] });
    const tmpl = { ...presetTemplate('family'), groups: ['door'] };
    const g = await signGrant(a, grantFromTemplate(tmpl, { d: dev, sub: ALICE, now, serial: 1 }), systemEnv);
    const acl2 = await acl1.apply(
      await signAclUpdate(a, grantUpdate(acl1.toJSON() as AclStateV2, g), systemEnv),
      now,
    );
    assert.equal(acl2.authorize(ALICE, 'live', now + 1, 'frontdoor').allowed, true);
    assert.equal(acl2.authorize(ALICE, 'live', now + 1, 'garden').allowed, false);
    const acl3 = await acl2.apply(
      await signAclUpdate(a, groupsUpdate(acl2.toJSON() as AclStateV2, {}), systemEnv),
      now,
    );
    assert.equal(acl3.state.groups, undefined);
    assert.equal(acl3.authorize(ALICE, 'live', now + 1, 'frontdoor').allowed, false);
  });

  it('says what is wrong with a new group', () => {
    assert.match(groupProblem('Upstairs', ['a'], {}) ?? '', /lowercase/);
    assert.match(groupProblem('door', ['a'], { door: ['b'] }) ?? '', /already/);
    assert.match(groupProblem('door', [], {}) ?? '', /at least one camera/);
    const many = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`g${i}`, ['a']]));
    assert.match(groupProblem('door', ['a'], many) ?? '', /at most 32/);
    assert.match(groupProblem('__proto__', ['a'], {}) ?? '', /reserved/);
    assert.deepEqual(Object.keys(groupsUpdate(state([]), { door: ['a'] }).groups ?? {}), ['door']);
  });
});
