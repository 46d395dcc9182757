/**
 * Invites (`src/invite.ts`): the link codec, the derivations and proof, the owner-signed
 * `acl/invite` envelope, the device's store file, and the fuzz of every decoder (only a typed
 * ProtocolError, never a throw of anything else).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { b64u, hex, utf8 } from '../src/bytes.js';
import { canonicalize } from '../src/canonical.js';
import { fixedEnv } from '../src/crypto/env.js';
import { WebCryptoSigner } from '../src/crypto/primitives.js';
import { seal } from '../src/envelope.js';
import { HearthError, ProtocolError } from '../src/errors.js';
import { grantSchema } from '../src/grants.js';
import { deviceIdFromKey, encodeId } from '../src/ids.js';
import {
  checkInviteProof,
  decodeInviteBody,
  decodeInviteLink,
  decodeInvitesFile,
  encodeInviteLink,
  grantFromInvite,
  type InviteBody,
  inviteId,
  inviteProof,
  inviteProofKey,
  inviteRedeemMessage,
  MAX_INVITE_LIFETIME_MS,
  makeInvite,
  signInvite,
  verifyInvite,
} from '../src/invite.js';
import { decodeDeviceMessage, decodeViewerMessage } from '../src/messages.js';
import {
  editsArb,
  mutate,
  RUNS,
  textInputs,
  valueOrHearthError,
  valueOrProtocolError,
} from './fuzz-helpers.js';

const NOW = 1_700_000_000_000;
const HOUR = 3600_000;
const secret = new Uint8Array(32).map((_, i) => i + 1);

describe('invite derivations', () => {
  it('inviteId: 32 hex digits of SHA-256("hearth/v1/invite/id" ‖ s), stable', async () => {
    const id = await inviteId(secret);
    assert.match(id, /^[0-9a-f]{32}$/);
    const want = new Uint8Array(
      await crypto.subtle.digest('SHA-256', new Uint8Array([...utf8('hearth/v1/invite/id'), ...secret])),
    );
    assert.equal(id, hex(want.subarray(0, 16)));
    assert.notEqual(await inviteId(secret.map((b) => b ^ 1)), id);
    await assert.rejects(inviteId(new Uint8Array(31)), RangeError);
  });

  it('the proof binds the secret, the viewer key and the device; checkInviteProof says yes only to the right one', async () => {
    const v = (await WebCryptoSigner.generate()).publicKey;
    const w = (await WebCryptoSigner.generate()).publicKey;
    const d = encodeId('deviceId', new Uint8Array(20).fill(7));
    const e = encodeId('deviceId', new Uint8Array(20).fill(8));
    const pk = await inviteProofKey(secret);
    const p = await inviteProof(secret, v, d);
    assert.match(p, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(await checkInviteProof(pk, p, v, d), true);
    assert.equal(await checkInviteProof(pk, p, w, d), false, 'another key');
    assert.equal(await checkInviteProof(pk, p, v, e), false, 'another device');
    assert.equal(await checkInviteProof(await inviteProofKey(secret.map((b) => b ^ 1)), p, v, d), false);
    for (const bad of ['', 'x', `${p}A`, p.slice(0, 42), `${p.slice(0, 42)}B`, 5, null])
      assert.equal(await checkInviteProof(pk, bad, v, d), false, String(bad));
  });
});

describe('invite links', () => {
  let deviceKey: Uint8Array;
  let d: string;
  before(async () => {
    deviceKey = (await WebCryptoSigner.generate()).publicKey;
    d = deviceIdFromKey(deviceKey);
  });

  it('round trip: origin/#/invite/<b64u canonical JSON>, under 512 payload characters; the fragment alone decodes too', () => {
    const link = encodeInviteLink('https://viewer.example', { d, deviceKey, secret, exp: NOW });
    const [before, frag] = link.split('#');
    assert.equal(before, 'https://viewer.example/');
    assert.ok(!before!.includes(b64u(secret)), 'the secret is only in the fragment');
    assert.ok(frag!.length - '/invite/'.length <= 512);
    const l = decodeInviteLink(link);
    assert.equal(l.origin, 'https://viewer.example');
    assert.equal(l.d, d);
    assert.deepEqual(l.deviceKey, deviceKey);
    assert.deepEqual(l.secret, secret);
    assert.equal(l.exp, NOW);
    assert.deepEqual({ ...decodeInviteLink(`#${frag}`), origin: 'x' }, { ...l, origin: 'x' });
    assert.equal(
      encodeInviteLink('http://127.0.0.1:8080/', { d, deviceKey, secret, exp: 1 }).split('#')[0],
      'http://127.0.0.1:8080/',
    );
  });

  it('refuses malformed links with typed errors', () => {
    const good = encodeInviteLink('https://viewer.example', { d, deviceKey, secret, exp: NOW });
    const payload = good.split('/#/invite/')[1]!;
    const enc = (o: unknown) =>
      `https://viewer.example/#/invite/${b64u(utf8(typeof o === 'string' ? o : canonicalize(o)))}`;
    const fields = { v: 1, d, dk: encodeId('deviceKey', deviceKey), s: b64u(secret), exp: NOW };
    const other = encodeId('deviceId', new Uint8Array(20));
    for (const [input, code] of [
      [5, 'E_DECODE'],
      ['x'.repeat(2000), 'E_TOO_LARGE'],
      ['https://viewer.example/pair#v=1', 'E_DECODE'],
      [`ftp://viewer.example/#/invite/${payload}`, 'E_DECODE'],
      [`https://VIEWER.example/#/invite/${payload}`, 'E_DECODE'],
      [`https://u@viewer.example/#/invite/${payload}`, 'E_DECODE'],
      [`https://viewer.example/app/#/invite/${payload}`, 'E_DECODE'],
      [`${good}=`, 'E_DECODE'],
      [enc({ ...fields, v: 2 }), 'E_UNSUPPORTED'],
      [enc({ ...fields, x: 1 }), 'E_SCHEMA'],
      [enc({ ...fields, d: other }), 'E_SCHEMA'],
      [enc({ ...fields, s: b64u(secret.subarray(0, 31)) }), 'E_SCHEMA'],
      [enc({ ...fields, exp: -1 }), 'E_SCHEMA'],
      [enc(JSON.stringify(fields, null, 1)), 'E_SCHEMA'],
      [enc('[1]'), 'E_SCHEMA'],
      [enc('{'), 'E_DECODE'],
    ] as const) {
      assert.throws(
        () => decodeInviteLink(input),
        (e: unknown) => e instanceof ProtocolError && e.code === code,
        `${String(input).slice(0, 60)} → ${code}`,
      );
    }
    assert.throws(
      () => encodeInviteLink('https://viewer.example/app', { d, deviceKey, secret, exp: NOW }),
      RangeError,
    );
    assert.throws(
      () => encodeInviteLink('https://viewer.example', { d: other, deviceKey, secret, exp: NOW }),
      {
        code: 'E_SCHEMA',
      },
    );
  });

  it(`fuzz: ${RUNS} inputs: a link or a ProtocolError`, () => {
    const valid = fc
      .tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat())
      .map(([s, exp]) => encodeInviteLink('https://viewer.example', { d, deviceKey, secret: s, exp }));
    fc.assert(
      fc.property(
        fc.oneof(
          textInputs(valid),
          valid.map((l) => l.slice(l.indexOf('#'))),
        ),
        (input) => {
          const r = valueOrProtocolError(() => decodeInviteLink(input));
          if (!(r instanceof ProtocolError)) assert.equal(r.d, deviceIdFromKey(r.deviceKey));
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('the acl/invite envelope', () => {
  let owner: WebCryptoSigner;
  let stranger: WebCryptoSigner;
  let ownerText: string;
  let deviceKey: Uint8Array;
  let d: string;
  let body: InviteBody;
  const env = fixedEnv(3, NOW);
  before(async () => {
    owner = await WebCryptoSigner.generate();
    stranger = await WebCryptoSigner.generate();
    ownerText = encodeId('userKey', owner.publicKey);
    deviceKey = (await WebCryptoSigner.generate()).publicKey;
    d = deviceIdFromKey(deviceKey);
    body = {
      d,
      id: await inviteId(secret),
      pk: b64u(await inviteProofKey(secret)),
      exp: NOW + HOUR,
      tmpl: {
        role: 'guest',
        scopes: ['live'],
        cams: ['porch'],
        sched: [{ days: [1, 2, 3, 4, 5], from: '08:00', to: '18:00' }],
        days: 1,
        floor: 'grant',
      },
      label: 'Babysitter',
    };
  });
  const isOwner = (k: string) => k === ownerText;

  it('an owner-signed invite verifies; makeInvite makes a link the invitee can redeem with', async () => {
    const v = await verifyInvite(await signInvite(owner, body, env), { deviceId: d, now: NOW, isOwner });
    assert.deepEqual(v.body, body);
    assert.equal(v.by, ownerText);
    const made = await makeInvite(
      { owner, deviceId: d, deviceKey, origin: 'https://viewer.example', exp: NOW + HOUR, tmpl: body.tmpl },
      env,
    );
    const link = decodeInviteLink(made.link);
    const ok = await verifyInvite(made.env, { deviceId: d, now: NOW, isOwner });
    assert.equal(ok.body.id, made.id);
    assert.equal(ok.body.id, await inviteId(link.secret));
    const viewer = await WebCryptoSigner.generate();
    const m = await inviteRedeemMessage(link, viewer.publicKey, 'Ana');
    assert.ok(decodeViewerMessage(m).ok);
    assert.equal(
      await checkInviteProof(await inviteProofKey(link.secret), m.proof, viewer.publicKey, d),
      true,
    );
    await assert.rejects(inviteRedeemMessage(link, viewer.publicKey, 'a\u0000b'), { code: 'E_SCHEMA' });
  });

  it('refuses a non-owner (E_WRONG_SIGNER), another device (E_BAD_BINDING), stale, expired, too long, a bad body', async () => {
    const cases: [() => Promise<unknown>, string][] = [
      [
        async () => verifyInvite(await signInvite(stranger, body, env), { deviceId: d, now: NOW, isOwner }),
        'E_WRONG_SIGNER',
      ],
      [
        async () =>
          verifyInvite(await signInvite(owner, body, env), {
            deviceId: encodeId('deviceId', new Uint8Array(20)),
            now: NOW,
            isOwner,
          }),
        'E_BAD_BINDING',
      ],
      [
        async () =>
          verifyInvite(await signInvite(owner, body, env), { deviceId: d, now: NOW + 11 * 60_000, isOwner }),
        'E_STALE',
      ],
      [
        async () =>
          verifyInvite(await signInvite(owner, { ...body, exp: NOW }, env), {
            deviceId: d,
            now: NOW,
            isOwner,
          }),
        'E_INVITE_EXPIRED',
      ],
      [
        async () =>
          verifyInvite(await signInvite(owner, { ...body, exp: NOW + MAX_INVITE_LIFETIME_MS + 1 }, env), {
            deviceId: d,
            now: NOW,
            isOwner,
          }),
        'E_SCHEMA',
      ],
      [
        async () =>
          verifyInvite(await seal(owner, 'user', 'acl/invite', { ...body, x: 1 }, env), {
            deviceId: d,
            now: NOW,
            isOwner,
          }),
        'E_SCHEMA',
      ],
      [
        async () =>
          verifyInvite(await seal(owner, 'user', 'acl/update', { ...body }, env), {
            deviceId: d,
            now: NOW,
            isOwner,
          }),
        'E_BAD_BINDING',
      ],
      [
        async () =>
          verifyInvite(
            { ...(await signInvite(owner, body, env)), b: { ...body, exp: NOW + 2 * HOUR } },
            { deviceId: d, now: NOW, isOwner },
          ),
        'E_BAD_SIGNATURE',
      ],
    ];
    for (const [f, code] of cases) await assert.rejects(f(), { code }, code);
    // Stored invites: signature and body only (no freshness, expired is fine).
    const old = await signInvite(owner, { ...body, exp: NOW + 1 }, env);
    assert.ok(await verifyInvite(old, { deviceId: d, now: NOW + 100 * HOUR, isOwner, stored: true }));
  });

  it('grantFromInvite: the template as a grant from now (days → exp, floor → now)', () => {
    const sub = encodeId('userKey', new Uint8Array(32).fill(2));
    const g = grantFromInvite(
      { role: 'member', scopes: ['live', 'clips'], cams: ['porch'], days: 2 },
      { d, sub, serial: 7, now: NOW },
    );
    assert.deepEqual(g, {
      d,
      sub,
      role: 'member',
      scopes: ['live', 'clips'],
      cams: ['porch'],
      nbf: NOW,
      exp: NOW + 2 * 86_400_000,
      serial: 7,
    });
    assert.ok(grantSchema.safeParse(g).success, 'a v1 template makes a valid grant today');
    const v2 = grantFromInvite(body.tmpl, { d, sub, serial: 8, now: NOW, label: 'Babysitter' });
    assert.equal(v2.floor, NOW);
    assert.deepEqual(v2.sched, body.tmpl.sched);
    assert.equal(v2.label, 'Babysitter');
    assert.equal(
      grantFromInvite({ role: 'guest', scopes: ['live'] }, { d, sub, serial: 9, now: NOW }).exp,
      null,
    );
  });

  it('template rules: duplicate scopes or days, bad times, unknown role or fields', () => {
    for (const tmpl of [
      { role: 'owner', scopes: ['live'] },
      { role: 'member', scopes: [] },
      { role: 'member', scopes: ['live', 'live'] },
      { role: 'member', scopes: ['live'], sched: [{ days: [1, 1], from: '08:00', to: '09:00' }] },
      { role: 'member', scopes: ['live'], sched: [{ days: [7], from: '08:00', to: '09:00' }] },
      { role: 'member', scopes: ['live'], sched: [{ days: [1], from: '24:00', to: '09:00' }] },
      { role: 'member', scopes: ['live'], sched: [] },
      { role: 'member', scopes: ['live'], days: 0 },
      { role: 'member', scopes: ['live'], floor: 'always' },
      { role: 'member', scopes: ['live'], cams: ['../x'] },
      { role: 'member', scopes: ['live'], x: 1 },
    ])
      assert.throws(() => decodeInviteBody({ ...body, tmpl }), { code: 'E_SCHEMA' }, JSON.stringify(tmpl));
  });

  it(`fuzz: ${RUNS} bodies: a body or E_SCHEMA`, () => {
    const valid = fc.constant(JSON.stringify(body));
    fc.assert(
      fc.property(fc.oneof(textInputs(valid), fc.anything({ maxDepth: 3 })), (input) => {
        let value: unknown = input;
        if (typeof input === 'string')
          try {
            value = JSON.parse(input);
          } catch {}
        const r = valueOrProtocolError(() => decodeInviteBody(value));
        if (r instanceof ProtocolError) assert.equal(r.code, 'E_SCHEMA');
      }),
      { numRuns: RUNS },
    );
  });

  it(`fuzz: ${Math.max(100, Math.floor(RUNS / 100))} mutated envelopes: only the genuine one verifies, the rest are typed errors`, async () => {
    const genuine = JSON.stringify(await signInvite(owner, body, env));
    await fc.assert(
      fc.asyncProperty(editsArb, fc.boolean(), async (edits, keep) => {
        const text = keep ? genuine : mutate(genuine, edits);
        const r = await valueOrHearthError(() => verifyInvite(text, { deviceId: d, now: NOW, isOwner }));
        if (!(r instanceof HearthError)) assert.deepEqual(r.body, body);
        else assert.ok(text !== genuine);
      }),
      { numRuns: Math.max(100, Math.floor(RUNS / 100)) },
    );
  });
});

describe('the device’s invites file and the invite messages', () => {
  it('decodeInvitesFile: strict shape; state and invitee agree; no invite twice', () => {
    const sub = encodeId('userKey', new Uint8Array(32).fill(1));
    const inv = (o: object) => ({ env: { b: { id: 'a'.repeat(32) } }, state: 'open', t: 1, ...o });
    assert.equal(decodeInvitesFile(JSON.stringify({ v: 1, invites: [inv({})] })).invites.length, 1);
    assert.ok(
      decodeInvitesFile(
        JSON.stringify({ v: 1, invites: [inv({ state: 'requested', sub, name: 'A', at: 2 })] }),
      ),
    );
    for (const bad of [
      { v: 2, invites: [] },
      { v: 1, invites: [inv({ state: 'approved' })] },
      { v: 1, invites: [inv({ sub, name: 'A', at: 2 })] },
      { v: 1, invites: [inv({ state: 'requested', sub })] },
      { v: 1, invites: [inv({ state: 'expired' })] },
      { v: 1, invites: [inv({}), inv({})] },
      { v: 1, invites: [inv({ x: 1 })] },
    ])
      assert.throws(() => decodeInvitesFile(JSON.stringify(bad)), { code: 'E_SCHEMA' }, JSON.stringify(bad));
  });

  it(`fuzz: ${RUNS} invites files: a file or a ProtocolError`, () => {
    const sub = encodeId('userKey', new Uint8Array(32).fill(1));
    const valid = fc.constant(
      JSON.stringify({
        v: 1,
        invites: [
          { env: { b: { id: 'a'.repeat(32) } }, state: 'requested', t: 1, sub, name: 'Ana', at: 2 },
          { env: { b: { id: 'b'.repeat(32) } }, state: 'open', t: 3 },
        ],
      }),
    );
    fc.assert(
      fc.property(textInputs(valid), (input) => void valueOrProtocolError(() => decodeInvitesFile(input))),
      { numRuns: RUNS },
    );
  });

  it('invite messages: each direction decodes its own, strictly', () => {
    const id = 'f'.repeat(32);
    const sub = encodeId('userKey', new Uint8Array(32).fill(1));
    for (const m of [
      { t: 'invite/create', env: {} },
      { t: 'invite/redeem', id, proof: 'A'.repeat(43), name: 'Grandma 👵' },
      { t: 'invite/list' },
      { t: 'invite/deny', id },
    ])
      assert.ok(decodeViewerMessage(m).ok, m.t);
    for (const m of [
      { t: 'invite/ok', id },
      { t: 'invite/error', code: 'E_INVITE_USED' },
      { t: 'invite/pending', id },
      { t: 'invite/request', id, sub, name: 'Ana' },
      { t: 'invite/approved', id },
      {
        t: 'invites',
        list: [{ id, exp: 1, state: 'expired', tmpl: { role: 'guest', scopes: ['live'] } }],
        more: true,
      },
    ])
      assert.ok(decodeDeviceMessage(m).ok, m.t);
    for (const m of [
      { t: 'invite/redeem', id: id.toUpperCase(), proof: 'A'.repeat(43), name: 'a' },
      { t: 'invite/redeem', id, proof: 'A'.repeat(44), name: 'a' },
      { t: 'invite/redeem', id, proof: 'A'.repeat(43), name: '' },
      { t: 'invite/redeem', id, proof: 'A'.repeat(43), name: 'x'.repeat(65) },
      { t: 'invite/redeem', id, proof: 'A'.repeat(43), name: 'a\nb' },
      { t: 'invite/list', x: 1 },
      { t: 'invite/deny' },
    ])
      assert.ok(!decodeViewerMessage(m).ok, JSON.stringify(m));
    for (const m of [
      { t: 'invite/request', id, sub: 'huk_nope', name: 'Ana' },
      { t: 'invites', list: [{ id, exp: 1, state: 'gone', tmpl: { role: 'guest', scopes: ['live'] } }] },
    ])
      assert.ok(!decodeDeviceMessage(m).ok, JSON.stringify(m));
  });
});
