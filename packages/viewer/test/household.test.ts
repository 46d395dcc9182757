import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  b64u,
  canonicalize,
  consistencyProof,
  decodeId,
  deviceIdFromKey,
  encodeId,
  encodeInviteLink,
  encodeLogEntry,
  fixedEnv,
  fromB64u,
  inclusionProof,
  type LogEntry,
  type LogUpdateWire,
  leafHash,
  logKeyHash,
  logOrigin,
  signCheckpoint,
  treeHead,
  verify,
  WebCryptoSigner,
} from '@hearth/protocol';
import fc from 'fast-check';
import { z } from 'zod';
import { parseInviteFragment } from '../src/core/invite-link.js';
import { logBanner, logRows } from '../src/core/log-view.js';
import {
  grantFromTemplate,
  grantUpdate,
  memberRows,
  nextSerial,
  presetTemplate,
} from '../src/core/members.js';
import { parseRecoveryText, recoveryText } from '../src/core/recovery.js';
import {
  type AclStateV2,
  ChannelHouseholdApi,
  type DeviceMsg,
  type HouseholdApi,
  HouseholdError,
  type InviteInfo,
  signAclUpdateV2,
  signGrantV2,
} from '../src/net/household.js';
import { LogClient } from '../src/net/log.js';
import { ClientLogSource } from '../src/net/log-source.js';

describe('ChannelHouseholdApi: requests and replies over the sealed channel', () => {
  const make = (ok = true, timeoutMs = 60_000) => {
    const sent: [string, DeviceMsg][] = [];
    const api = new ChannelHouseholdApi((d, m) => {
      sent.push([d, m]);
      return ok;
    }, timeoutMs);
    return { api, sent };
  };

  it('sends the contract messages and resolves each on its reply', async () => {
    const { api, sent } = make();
    const acl = api.getAcl('dev1');
    const log = api.logRequest('dev1', { t: 'log/get', from: 5, max: 100 });
    const inv = api.listInvites('dev1');
    assert.deepEqual(
      sent.map(([, m]) => m),
      [{ t: 'acl/get' }, { t: 'log/get', from: 5, max: 100 }, { t: 'invite/list' }],
    );
    // Replies out of order across types: each goes to the request it answers.
    const wire: LogUpdateWire = { t: 'log/update', cp: 'note', cons: [], start: 5, entries: [], proofs: [] };
    assert.equal(api.handle('dev1', wire), true);
    assert.equal(api.handle('dev1', { t: 'invites', list: [] }), true);
    assert.equal(api.handle('dev1', { t: 'acl', state: { d: 'x', ver: 2 } }), true);
    assert.deepEqual(await log, wire);
    assert.deepEqual(await inv, []);
    assert.deepEqual(await acl, { d: 'x', ver: 2 });
    assert.equal(api.handle('dev1', { t: 'cameras', list: [] }), false, 'not a household message');
  });

  it('a refusal rejects with its code; replies of another device do not count', async () => {
    const { api, sent } = make();
    const u = api.updateAcl('dev1', { fake: 'env' } as never);
    assert.deepEqual(sent[0], ['dev1', { t: 'acl/update', env: { fake: 'env' } }]);
    api.handle('dev2', { t: 'acl/ok', ver: 9 }); // nobody waits on dev2
    api.handle('dev1', { t: 'acl/error', code: 'E_STALE_ACL' });
    await assert.rejects(u, (e: unknown) => e instanceof HouseholdError && e.code === 'E_STALE_ACL');
  });

  it('invites: create, deny, redeem', async () => {
    const { api, sent } = make();
    const c = api.createInvite('d', { e: 1 } as never);
    api.handle('d', { t: 'invite/ok', id: 'i1' });
    assert.equal(await c, 'i1');
    const dn = api.denyInvite('d', 'i1');
    api.handle('d', { t: 'invite/ok', id: 'i1' });
    await dn;
    const r = api.redeemInvite('d', { id: 'i2', proof: 'p', name: 'Sam' });
    assert.deepEqual(sent[2]![1], { t: 'invite/redeem', id: 'i2', proof: 'p', name: 'Sam' });
    api.handle('d', { t: 'invite/error', code: 'E_INVITE_USED' });
    await assert.rejects(r, (e: unknown) => (e as HouseholdError).code === 'E_INVITE_USED');
  });

  it('pushes: invite/request to owners, invite/approved to the invitee', () => {
    const { api } = make();
    const got: unknown[] = [];
    const off = api.onInviteRequest((d, r) => got.push([d, r]));
    api.onInviteApproved((d, id) => got.push([d, id]));
    api.handle('d', { t: 'invite/request', id: 'i', sub: 'huk_x', name: 'Sam' });
    api.handle('d', { t: 'invite/approved', id: 'i' });
    off();
    api.handle('d', { t: 'invite/request', id: 'j', sub: 'huk_y', name: 'Eve' });
    assert.deepEqual(got, [
      ['d', { id: 'i', sub: 'huk_x', name: 'Sam' }],
      ['d', 'i'],
    ]);
  });

  it('no channel → E_OFFLINE; no answer → E_TIMEOUT; a reset channel fails what waits', async () => {
    await assert.rejects(
      make(false).api.getAcl('d'),
      (e: unknown) => (e as HouseholdError).code === 'E_OFFLINE',
    );
    await assert.rejects(
      make(true, 1).api.getAcl('d'),
      (e: unknown) => (e as HouseholdError).code === 'E_TIMEOUT',
    );
    const { api } = make();
    const p = api.getAcl('d');
    api.drop('d');
    await assert.rejects(p, (e: unknown) => (e as HouseholdError).code === 'E_OFFLINE');
    // A late reply after that is swallowed (it is ours), and answers nothing.
    assert.equal(api.handle('d', { t: 'acl', state: {} }), true);
  });
});

/** A device's access log, built with the protocol's own tree and checkpoint code. */
async function deviceLog() {
  const key = await WebCryptoSigner.generate();
  const deviceId = deviceIdFromKey(key.publicKey);
  const data: Uint8Array[] = [];
  const hashes: Uint8Array[] = [];
  const append = async (e: LogEntry) => {
    const b = encodeLogEntry(e);
    data.push(b);
    hashes.push(await leafHash(b));
  };
  /**
   * `log/get` as an honest device answers it (agent AccessLog.update): the entries from `from` (at
   * most `max`), the checkpoint at the end of that page, the consistency proof from `from` to it,
   * and each entry's inclusion proof in it. `tamper` changes the leaves it sends.
   */
  const answer = async (
    from: number,
    tamper?: (leaves: Uint8Array[]) => Uint8Array[],
    max = 256,
  ): Promise<LogUpdateWire> => {
    const end = Math.min(data.length, from + max);
    const cp = await signCheckpoint(
      { origin: logOrigin(deviceId), size: end, root: await treeHead(hashes, end), extensions: [] },
      key,
    );
    const leaves = data.slice(from, end);
    const proofs = [];
    for (let i = from; i < end; i++) proofs.push((await inclusionProof(hashes, i, end)).map(b64u));
    return {
      t: 'log/update',
      cp,
      cons: (await consistencyProof(hashes, from, end)).map(b64u),
      start: from,
      entries: (tamper ? tamper(leaves) : leaves).map(b64u),
      proofs,
    };
  };
  return { deviceId, deviceKey: encodeId('deviceKey', key.publicKey), append, answer };
}

/** A fake HouseholdApi around one device: its ACL, its invites and its log. */
function fakeDevice(log: Awaited<ReturnType<typeof deviceLog>>, acl: AclStateV2) {
  const updates: unknown[] = [];
  let tamper: ((l: Uint8Array[]) => Uint8Array[]) | undefined;
  const invites: InviteInfo[] = [];
  const api: HouseholdApi = {
    eraseHousehold: async () => undefined,
    getAcl: async () => structuredClone(acl),
    updateAcl: async (_d, env) => {
      updates.push(env);
      acl.ver++;
      acl.grants.push(...((env.b as { add: never[] }).add ?? []));
      return acl.ver;
    },
    createInvite: async () => 'id',
    listInvites: async () => invites,
    denyInvite: async () => undefined,
    redeemInvite: async () => undefined,
    onInviteRequest: () => () => undefined,
    onInviteApproved: () => () => undefined,
  };
  const dev = {
    api,
    updates,
    invites,
    /** The device's answer to `log/get` (a test may replace it). */
    answer: (from: number, max?: number) => log.answer(from, tamper, max),
    setTamper(f: typeof tamper) {
      tamper = f;
    },
  };
  return dev;
}

/**
 * The screens' log source as the app builds it (ClientLogSource over the real LogClient), reading
 * `dev`'s log through `log/get`, with `deviceKey` as the key pinned at pairing.
 */
async function logSource(
  dev: { answer(from: number, max?: number): Promise<LogUpdateWire> },
  deviceId: string,
  deviceKey: string,
  page?: number,
): Promise<ClientLogSource> {
  const me = await WebCryptoSigner.generate();
  return new ClientLogSource(
    new LogClient({
      signer: me,
      keyText: encodeId('userKey', me.publicKey),
      send: (_d, m) => dev.answer(m.from, m.max),
      device: async (d) => (d === deviceId ? { deviceId: d, deviceKey } : undefined),
      ...(page ? { page } : {}),
    }),
  );
}

describe('household flow against a fake device (approve a request, then the log verifies it)', () => {
  it('approve → a signed grant from the invite template; pending until the verified log has it', async () => {
    const env = fixedEnv(3, Date.UTC(2026, 11, 4));
    const owner = await WebCryptoSigner.generate();
    const ownerKey = encodeId('userKey', owner.publicKey);
    const invitee = encodeId('userKey', (await WebCryptoSigner.generate()).publicKey);
    const log = await deviceLog();
    const acl: AclStateV2 = {
      d: log.deviceId,
      ver: 0,
      owners: [ownerKey],
      grants: [],
      revoked: [],
      revokedKeys: [],
    };
    const dev = fakeDevice(log, acl);
    const source = await logSource(dev, log.deviceId, log.deviceKey);
    const hashes = new Map<string, string>([
      [ownerKey, await logKeyHash(owner.publicKey)],
      [invitee, await logKeyHash(decodeId('userKey', invitee))],
    ]);
    const hashOf = (k: string) => hashes.get(k);
    await log.append({ v: 1, t: env.now(), k: 'pair/attempt', result: 'ok', viewer: hashOf(ownerKey)! });

    // The request, as `invites` lists it; the owner approves with the invite's template.
    const request: InviteInfo = {
      id: 'a'.repeat(32),
      exp: env.now() + 1000,
      state: 'requested',
      tmpl: presetTemplate('babysitter'),
      sub: invitee,
      name: 'Sam',
    };
    const now = env.now();
    const state0 = await dev.api.getAcl(log.deviceId);
    const g = grantFromTemplate(request.tmpl, {
      d: acl.d,
      sub: invitee,
      now,
      serial: nextSerial(state0),
      label: 'Sam',
    });
    const ge = await signGrantV2(owner, g, env);
    const ver = await dev.api.updateAcl(acl.d, await signAclUpdateV2(owner, grantUpdate(state0, ge), env));
    assert.equal(ver, 1);
    // The update is the owner's signature over {d, ver: 1, add: [grant], revoke: []}.
    const checked = await verify(dev.updates[0] as never, {
      purpose: 'acl/update',
      signerKind: 'user',
      expectedSigner: owner.publicKey,
      body: z.object({
        d: z.string(),
        ver: z.literal(1),
        add: z.array(z.unknown()).length(1),
        revoke: z.array(z.number()).length(0),
      }),
      now,
    });
    assert.ok(checked.ok);
    assert.deepEqual((ge.b as { sched: unknown }).sched, [
      { days: [1, 2, 3, 4, 5], from: '08:00', to: '18:00' },
    ]);

    const pending = [{ sub: invitee, ver, kind: 'grant' as const }];
    const rowsNow = async () => {
      const snap = await source.refresh(log.deviceId);
      const rows = memberRows(await dev.api.getAcl(acl.d), {
        me: ownerKey,
        now,
        hashOf,
        logged: snap.entries.map((x) => x.entry),
        pending,
      });
      return { snap, status: rows.map((r) => r.status) };
    };
    // The device has not logged the grant yet: the new member is pending, the owner verified.
    let r = await rowsNow();
    assert.deepEqual(r.status, ['verified', 'pending']);
    assert.deepEqual(r.snap.status, { ok: true, size: 1, verifiedBy: 1 });
    // It logs it: verified.
    await log.append({
      v: 1,
      t: now,
      k: 'acl/grant',
      subject: hashOf(invitee)!,
      by: hashOf(ownerKey)!,
      ver,
      role: 'member',
    });
    r = await rowsNow();
    assert.deepEqual(r.status, ['verified', 'verified']);
    assert.equal(
      logBanner(r.snap.status, r.snap.alarms).text,
      '2 entries, signed by the device · verified by 1 of your devices',
    );
    const names = new Map([[hashOf(invitee)!, 'Sam']]);
    assert.deepEqual(
      logRows(r.snap.entries, 'changes', (h) => (h === hashOf(ownerKey) ? 'you' : names.get(h)), 'UTC').map(
        (x) => x.text,
      ),
      ['you gave Sam access as member (version 1)', 'you paired with this device'],
    );
  });

  it('a tampered log (an entry altered in transit) raises the red banner, and it stays', async () => {
    const env = fixedEnv(4, Date.UTC(2026, 11, 4));
    const log = await deviceLog();
    const acl: AclStateV2 = { d: log.deviceId, ver: 0, owners: [], grants: [], revoked: [], revokedKeys: [] };
    const dev = fakeDevice(log, acl);
    const source = await logSource(dev, log.deviceId, log.deviceKey);
    await log.append({ v: 1, t: env.now(), k: 'config/change', field: 'a' });
    assert.equal((await source.refresh(log.deviceId)).status?.ok, true);
    await log.append({ v: 1, t: env.now(), k: 'config/change', field: 'b' });
    // The same entry kind, another field: a valid entry, but not the one the device signed.
    dev.setTamper((leaves) =>
      leaves.map(() => encodeLogEntry({ v: 1, t: env.now(), k: 'config/change', field: 'x' })),
    );
    const bad = await source.refresh(log.deviceId);
    assert.deepEqual(bad.status?.ok ? undefined : bad.status?.code, 'E_LOG_PROOF');
    assert.deepEqual(logBanner(bad.status, bad.alarms), {
      alarm: true,
      text: 'Log tampered — possible attack (E_LOG_PROOF)',
    });
    assert.equal(bad.entries.length, 1, 'the altered entry is not shown');
    // An honest update afterwards verifies, but the banner keeps the alarm.
    dev.setTamper(undefined);
    const later = await source.refresh(log.deviceId);
    assert.equal(later.status?.ok, true);
    assert.equal(logBanner(later.status, later.alarms).alarm, true);
    // Control: the same leaves untouched verify (so the alarm above was the tampering).
    const log2 = await deviceLog();
    await log2.append({ v: 1, t: env.now(), k: 'config/change', field: 'a' });
    const clean = await (await logSource(fakeDevice(log2, acl), log2.deviceId, log2.deviceKey)).refresh(
      log2.deviceId,
    );
    assert.equal(logBanner(clean.status, clean.alarms).alarm, false);
    // Not fetched yet, or the device did not answer: said plainly, and not an alarm.
    assert.deepEqual(logBanner(undefined, []), { alarm: false, text: 'Checking the log…' });
    assert.deepEqual(logBanner(undefined, [], 'E_TIMEOUT'), {
      alarm: false,
      text: 'The access log could not be checked (E_TIMEOUT).',
    });
  });

  it('a long log is read a page at a time, each page checked against the verified checkpoint', async () => {
    const log = await deviceLog();
    for (let i = 0; i < 10; i++) await log.append({ v: 1, t: i, k: 'config/change', field: `f${i}` });
    const acl: AclStateV2 = { d: log.deviceId, ver: 0, owners: [], grants: [], revoked: [], revokedKeys: [] };
    const dev = fakeDevice(log, acl);
    const source = await logSource(dev, log.deviceId, log.deviceKey, 3);
    const a = await source.refresh(log.deviceId);
    assert.deepEqual(a.status, { ok: true, size: 10, verifiedBy: 1 });
    assert.deepEqual(
      a.entries.map((x) => [x.index, (x.entry as { field: string }).field]),
      Array.from({ length: 10 }, (_, i) => [i, `f${i}`]),
    );
    assert.deepEqual(a.alarms, []);
    // Two refreshes at once (the screen and a push): one after the other, no false alarm.
    await log.append({ v: 1, t: 10, k: 'config/change', field: 'f10' });
    const [x, y] = await Promise.all([source.refresh(log.deviceId), source.refresh(log.deviceId)]);
    assert.deepEqual([x.alarms, y.alarms], [[], []]);
    // More entries later: from the verified size on, paged again.
    for (let i = 11; i < 14; i++) await log.append({ v: 1, t: i, k: 'config/change', field: `f${i}` });
    const b = await source.refresh(log.deviceId);
    assert.equal(b.entries.length, 14);
    assert.deepEqual(b.status, { ok: true, size: 14, verifiedBy: 1 });
    // A page whose entries were swapped is caught by its inclusion proofs.
    const log2 = await deviceLog();
    for (let i = 0; i < 7; i++) await log2.append({ v: 1, t: i, k: 'config/change', field: `f${i}` });
    const dev2 = fakeDevice(log2, acl);
    dev2.setTamper((leaves) =>
      leaves.length === 3 && leaves[0] !== undefined ? [leaves[1]!, leaves[0], leaves[2]!] : leaves,
    );
    const c = await (await logSource(dev2, log2.deviceId, log2.deviceKey, 3)).refresh(log2.deviceId);
    assert.equal(c.status?.ok ? 'ok' : c.status?.code, 'E_LOG_PROOF');
    assert.equal(logBanner(c.status, c.alarms).alarm, true);
  });

  it('two refreshes racing while the log grows: one after the other, so no false alarm', async () => {
    const log = await deviceLog();
    await log.append({ v: 1, t: 0, k: 'config/change', field: 'a' });
    const acl: AclStateV2 = { d: log.deviceId, ver: 0, owners: [], grants: [], revoked: [], revokedKeys: [] };
    const dev = fakeDevice(log, acl);
    const source = await logSource(dev, log.deviceId, log.deviceKey);
    await source.refresh(log.deviceId);
    await log.append({ v: 1, t: 1, k: 'config/change', field: 'b' });
    // The first `log/get` answers, then the log grows; a second one in flight answers after that.
    let calls = 0;
    let release = () => {};
    const grown = new Promise<void>((r) => {
      release = r;
    });
    dev.answer = async (from, max) => {
      if (++calls === 1) {
        const w = await log.answer(from, undefined, max);
        await log.append({ v: 1, t: 2, k: 'config/change', field: 'c' });
        release();
        return w;
      }
      await grown;
      return log.answer(from, undefined, max);
    };
    // (Without LogClient's one refresh at a time per device, the second advances from the size the
    // first had already passed, and this reads E_LOG_FORK.)
    const [x, y] = await Promise.all([source.refresh(log.deviceId), source.refresh(log.deviceId)]);
    assert.deepEqual([x.alarms, y.alarms], [[], []]);
    assert.deepEqual(x.status, { ok: true, size: 2, verifiedBy: 1 });
    assert.deepEqual(y.status, { ok: true, size: 3, verifiedBy: 1 });
    assert.equal(y.entries.length, 3);
  });

  it("a log signed by another key than the pinned device's is refused (E_WRONG_SIGNER)", async () => {
    const log = await deviceLog();
    const other = await deviceLog();
    await log.append({ v: 1, t: 1, k: 'config/change', field: 'a' });
    const acl: AclStateV2 = { d: log.deviceId, ver: 0, owners: [], grants: [], revoked: [], revokedKeys: [] };
    const snap = await (await logSource(fakeDevice(log, acl), log.deviceId, other.deviceKey)).refresh(
      log.deviceId,
    );
    assert.equal(snap.status?.ok ? 'ok' : snap.status?.code, 'E_WRONG_SIGNER');
  });
});

describe("invite links: the viewer reads them with protocol's decoder", () => {
  it("a link protocol makes is read back; another device's key, junk and extra fields are refused", async () => {
    const log = await deviceLog();
    const secret = new Uint8Array(32).fill(9);
    const deviceKey = decodeId('deviceKey', log.deviceKey);
    const link = encodeInviteLink('https://cams.example', { d: log.deviceId, deviceKey, secret, exp: 123 });
    const payload = link.split('#/invite/')[1]!;
    const got = parseInviteFragment(payload);
    assert.equal(got?.d, log.deviceId);
    assert.deepEqual(got?.secret, secret);
    assert.equal(got?.exp, 123);
    // The device ID must be the device key's: a link naming one device and pinning another's key.
    const other = await deviceLog();
    const raw = JSON.parse(new TextDecoder().decode(fromB64u(payload, 512))) as Record<string, unknown>;
    const swapped = b64u(new TextEncoder().encode(canonicalize({ ...raw, dk: other.deviceKey })));
    assert.equal(parseInviteFragment(swapped), undefined, 'a device key of another device');
    for (const bad of ['', 'x', 'a'.repeat(600), 'not base64!', b64u(new TextEncoder().encode('{"v":1}'))])
      assert.equal(parseInviteFragment(bad), undefined, bad.slice(0, 20));
    const extra = b64u(new TextEncoder().encode(canonicalize({ ...raw, x: 1 })));
    assert.equal(parseInviteFragment(extra), undefined, 'an unknown field');
  });
});

describe('recovery key text', () => {
  it('round-trips through sloppy typing, with the device key; a typo is caught by the check', async () => {
    const seed = new Uint8Array(32).map((_, i) => i * 7);
    const dk = new Uint8Array(32).map((_, i) => 255 - i);
    const text = await recoveryText(seed, dk);
    assert.match(text, /^HRK2(-[A-Z2-7]{1,4})+$/);
    assert.deepEqual(await parseRecoveryText(text.toLowerCase().replaceAll('-', ' ')), {
      seed,
      deviceKey: dk,
    });
    const typo = text.slice(0, 10) + (text[10] === 'A' ? 'B' : 'A') + text.slice(11);
    assert.equal(await parseRecoveryText(typo), undefined);
    assert.equal(await parseRecoveryText('HRK2-AAAA'), undefined);
    assert.equal(await parseRecoveryText('nonsense'), undefined);
    assert.equal(await parseRecoveryText(`HRK2-${'A'.repeat(2000)}`), undefined);
  });

  it('fuzz: any text is a clear undefined or a 32 + 32 byte key pair', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.string({ maxLength: 120 }).map((x) => `HRK2-${x}`),
        ),
        async (t) => {
          const r = await parseRecoveryText(t);
          if (r) {
            assert.equal(r.seed.length, 32);
            assert.equal(r.deviceKey.length, 32);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('ClientLogSource: the log client as the screens see it', () => {
  const base = { size: 3, entries: [], added: 0, verifiedBy: [], alarms: [], published: true } as const;
  it('verified counts this device and the vouching owners; tampered keeps its alarm; unavailable rejects', async () => {
    const replies: unknown[] = [
      { ...base, verdict: 'verified', verifiedBy: ['huk_a', 'huk_b'] },
      {
        ...base,
        verdict: 'tampered',
        tampered: { ok: false, tampered: 'E_LOG_FORK', reason: 'fork', attack: true },
        alarms: [{ ok: false, tampered: 'E_LOG_FORK', reason: 'fork', attack: true }],
      },
      // The client returns every alarm it kept, whatever this refresh's verdict.
      {
        ...base,
        verdict: 'unavailable',
        error: 'E_NO_GRANT',
        alarms: [{ ok: false, tampered: 'E_LOG_FORK', reason: 'fork', attack: true }],
      },
    ];
    const src = new ClientLogSource({ refresh: async () => replies.shift() as never });
    const a = await src.refresh('d');
    assert.deepEqual(a.status, { ok: true, size: 3, verifiedBy: 3 });
    const b = await src.refresh('d');
    assert.equal(b.status?.ok, false);
    assert.deepEqual(b.alarms, [{ code: 'E_LOG_FORK', reason: 'fork' }]);
    // An alarm seen stays: an unavailable log afterwards still shows it rather than rejecting.
    const c = await src.refresh('d');
    assert.deepEqual(c.alarms, [{ code: 'E_LOG_FORK', reason: 'fork' }]);
    const fresh = new ClientLogSource({
      refresh: async () => ({ ...base, verdict: 'unavailable', error: 'E_NO_GRANT' }) as never,
    });
    await assert.rejects(fresh.refresh('d'), (e: Error) => (e as { code?: string }).code === 'E_NO_GRANT');
  });
});
