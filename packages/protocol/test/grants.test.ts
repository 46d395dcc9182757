/**
 * Grants and the ACL (threat model S6, S11, S12): the device decides, from owner-signed grants and a
 * versioned ACL, whether a key may do something now. Expired, not-yet-valid, out-of-scope and revoked
 * grants are refused; old updates cannot be replayed to undo a revocation; nothing but the owner's
 * key can change the ACL.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { Envelope } from '../src/envelope.js';
import type { AccessError, HearthError } from '../src/errors.js';
import { Acl, type Grant, signAclUpdate, signGrant, userKeyText, verifyGrant } from '../src/grants.js';
import { deviceIdFromKey } from '../src/ids.js';
import { keys } from './fixtures.js';

type K = Awaited<ReturnType<typeof keys>>;
let k: K;
let T: number;
before(async () => {
  k = await keys();
  T = k.env.now();
});

const HOUR = 3_600_000;
function grant(over: Partial<Grant> = {}): Grant {
  return {
    d: k.deviceId,
    sub: userKeyText(k.member.publicKey),
    role: 'member',
    scopes: ['live'],
    nbf: T,
    exp: T + HOUR,
    serial: 1,
    ...over,
  };
}
async function withGrants(gs: Grant[]): Promise<Acl> {
  const acl = Acl.create(k.deviceId, k.owner.publicKey);
  const add = await Promise.all(gs.map((g) => signGrant(k.owner, g, k.env)));
  return acl.apply(await signAclUpdate(k.owner, { d: k.deviceId, ver: 1, add, revoke: [] }, k.env), T);
}
const code = (d: ReturnType<Acl['authorize']>) => (d.allowed ? 'allowed' : d.error.code);

describe('ACL: authorize', () => {
  it('the owner may do everything; a stranger has E_NO_GRANT; garbage keys are refused, not thrown', async () => {
    const acl = Acl.create(k.deviceId, k.owner.publicKey);
    for (const s of ['live', 'clips', 'talk', 'ptz'] as const)
      assert.equal(code(acl.authorize(k.owner.publicKey, s, T)), 'allowed');
    assert.equal(code(acl.authorize(k.stranger.publicKey, 'live', T)), 'E_NO_GRANT');
    assert.equal(code(acl.authorize('hdk_notakey', 'live', T)), 'E_NO_GRANT');
    assert.equal(code(acl.authorize(new Uint8Array(3), 'live', T)), 'E_NO_GRANT');
  });

  it('a member grant: allowed in scope and time, E_SCOPE outside its scopes or cameras', async () => {
    const acl = await withGrants([grant({ cams: ['door'] })]);
    assert.equal(code(acl.authorize(k.member.publicKey, 'live', T, 'door')), 'allowed');
    assert.equal(code(acl.authorize(userKeyText(k.member.publicKey), 'live', T)), 'allowed');
    assert.equal(code(acl.authorize(k.member.publicKey, 'talk', T, 'door')), 'E_SCOPE');
    assert.equal(code(acl.authorize(k.member.publicKey, 'live', T, 'garden')), 'E_SCOPE');
  });

  it('expired grant: E_GRANT_EXPIRED at exp (exclusive); not-yet-valid grant: E_GRANT_NOT_YET_VALID', async () => {
    const acl = await withGrants([grant({ nbf: T + 1000, exp: T + 2000 })]);
    assert.equal(code(acl.authorize(k.member.publicKey, 'live', T + 999)), 'E_GRANT_NOT_YET_VALID');
    assert.equal(code(acl.authorize(k.member.publicKey, 'live', T + 1000)), 'allowed');
    assert.equal(code(acl.authorize(k.member.publicKey, 'live', T + 1999)), 'allowed');
    assert.equal(code(acl.authorize(k.member.publicKey, 'live', T + 2000)), 'E_GRANT_EXPIRED');
  });

  it('verifyGrant refuses an expired grant unless allowExpired (persisted state keeps it, authorize refuses it)', async () => {
    const e = await signGrant(k.owner, grant({ exp: T + 10 }), k.env);
    await assert.rejects(
      () => verifyGrant(e, k.owner.publicKey, k.deviceId, T + 10),
      (x) => (x as AccessError).code === 'E_GRANT_EXPIRED',
    );
    assert.equal((await verifyGrant(e, k.owner.publicKey, k.deviceId, T + 10, true)).serial, 1);
  });
});

describe('ACL: updates and revocation', () => {
  it('revoked grant: E_GRANT_REVOKED, and dropped() names the key so its live sessions close', async () => {
    const acl1 = await withGrants([grant()]);
    const acl2 = await acl1.apply(
      await signAclUpdate(k.owner, { d: k.deviceId, ver: 2, add: [], revoke: [1] }, k.env),
      T,
    );
    assert.equal(code(acl2.authorize(k.member.publicKey, 'live', T)), 'E_GRANT_REVOKED');
    assert.deepEqual(acl1.dropped(acl2, T), [userKeyText(k.member.publicKey)]);
  });

  it('replaying an old update (to undo a revocation) is E_STALE_ACL; versions apply in order, once', async () => {
    const acl0 = Acl.create(k.deviceId, k.owner.publicKey);
    const add = await signAclUpdate(
      k.owner,
      { d: k.deviceId, ver: 1, add: [await signGrant(k.owner, grant(), k.env)], revoke: [] },
      k.env,
    );
    const acl1 = await acl0.apply(add, T);
    const acl2 = await acl1.apply(
      await signAclUpdate(k.owner, { d: k.deviceId, ver: 2, add: [], revoke: [1] }, k.env),
      T,
    );
    await assert.rejects(
      () => acl2.apply(add, T),
      (x) => (x as HearthError).code === 'E_STALE_ACL',
    );
    const skip = await signAclUpdate(k.owner, { d: k.deviceId, ver: 4, add: [], revoke: [] }, k.env);
    await assert.rejects(
      () => acl2.apply(skip, T),
      (x) => (x as HearthError).code === 'E_STALE_ACL',
    );
  });

  it('a revoked serial cannot be re-added: E_GRANT_REVOKED', async () => {
    const acl1 = await withGrants([grant()]);
    const acl2 = await acl1.apply(
      await signAclUpdate(k.owner, { d: k.deviceId, ver: 2, add: [], revoke: [1] }, k.env),
      T,
    );
    const again = await signAclUpdate(
      k.owner,
      { d: k.deviceId, ver: 3, add: [await signGrant(k.owner, grant(), k.env)], revoke: [] },
      k.env,
    );
    await assert.rejects(
      () => acl2.apply(again, T),
      (x) => (x as HearthError).code === 'E_GRANT_REVOKED',
    );
  });

  it('only the owner changes the ACL: an update or a grant signed by another key is E_WRONG_SIGNER', async () => {
    const acl = Acl.create(k.deviceId, k.owner.publicKey);
    const byMember = await signAclUpdate(k.member, { d: k.deviceId, ver: 1, add: [], revoke: [] }, k.env);
    await assert.rejects(
      () => acl.apply(byMember, T),
      (x) => (x as HearthError).code === 'E_WRONG_SIGNER',
    );
    const selfGrant = await signGrant(k.member, grant({ sub: userKeyText(k.member.publicKey) }), k.env);
    const update = await signAclUpdate(
      k.owner,
      { d: k.deviceId, ver: 1, add: [selfGrant], revoke: [] },
      k.env,
    );
    await assert.rejects(
      () => acl.apply(update, T),
      (x) => (x as HearthError).code === 'E_WRONG_SIGNER',
    );
  });

  it('an update or a grant for another device: E_BAD_BINDING', async () => {
    const other = deviceIdFromKey(k.otherDevice.publicKey);
    const acl = Acl.create(k.deviceId, k.owner.publicKey);
    await assert.rejects(
      async () =>
        acl.apply(await signAclUpdate(k.owner, { d: other, ver: 1, add: [], revoke: [] }, k.env), T),
      (x) => (x as HearthError).code === 'E_BAD_BINDING',
    );
    const g = await signGrant(k.owner, grant({ d: other }), k.env);
    await assert.rejects(
      async () =>
        acl.apply(await signAclUpdate(k.owner, { d: k.deviceId, ver: 1, add: [g], revoke: [] }, k.env), T),
      (x) => (x as HearthError).code === 'E_BAD_BINDING',
    );
  });

  it('a stale update (older than 10 minutes) is E_STALE; a tampered grant inside an update is E_BAD_SIGNATURE', async () => {
    const acl = Acl.create(k.deviceId, k.owner.publicKey);
    const u = await signAclUpdate(k.owner, { d: k.deviceId, ver: 1, add: [], revoke: [] }, k.env);
    await assert.rejects(
      () => acl.apply(u, T + 10 * 60_000 + 1),
      (x) => (x as HearthError).code === 'E_STALE',
    );
    const g = await signGrant(k.owner, grant(), k.env);
    const tampered: Envelope = { ...g, b: { ...g.b, scopes: ['live', 'talk'] } };
    const u2 = await signAclUpdate(k.owner, { d: k.deviceId, ver: 1, add: [tampered], revoke: [] }, k.env);
    await assert.rejects(
      () => acl.apply(u2, T),
      (x) => (x as HearthError).code === 'E_BAD_SIGNATURE',
    );
  });

  it('grant schema: duplicate scopes, exp before nbf, owner role and unknown fields are E_SCHEMA', async () => {
    for (const bad of [
      grant({ scopes: ['live', 'live'] }),
      grant({ exp: T - 1 }),
      grant({ role: 'owner' as 'member' }),
      { ...grant(), x: 1 },
    ]) {
      await assert.rejects(
        () => signGrant(k.owner, bad as Grant, k.env),
        (x) => (x as HearthError).code === 'E_SCHEMA',
      );
    }
  });

  it('persisted state: load(toJSON) round-trips; a tampered state file is refused', async () => {
    const acl = await withGrants([grant()]);
    const text = JSON.stringify(acl.toJSON());
    const back = await Acl.load(text, T);
    assert.equal(code(back.authorize(k.member.publicKey, 'live', T)), 'allowed');
    assert.equal(back.state.ver, 1);
    const tampered = text.replace('"live"', '"talk"');
    assert.notEqual(tampered, text);
    await assert.rejects(
      () => Acl.load(tampered, T),
      (x) => (x as HearthError).code === 'E_BAD_SIGNATURE',
    );
    await assert.rejects(
      () => Acl.load('{"d":1}', T),
      (x) => (x as HearthError).code === 'E_SCHEMA',
    );
  });
});
