/**
 * Hostile-input properties for the device⇄viewer decoders and the sealed channel (threat model S10):
 * the decoders never throw and return a typed result; the channel opens only the genuine frame and
 * refuses everything else with a typed error; the two ends never reject whatever they are fed.
 * Synchronous decoders get RUNS inputs (HEARTH_FUZZ_RUNS, default 100 000); the crypto paths a
 * hundredth of that.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  acceptHello,
  type ChannelMsgFrame,
  completeHandshake,
  createHello,
  DeviceChannels,
  decodeRouted,
  type SealedChannel,
  ViewerChannels,
} from '../src/channel.js';
import { fixedEnv } from '../src/crypto/env.js';
import { WebCryptoSigner } from '../src/crypto/primitives.js';
import { HearthError, ProtocolError } from '../src/errors.js';
import { deviceIdFromKey, encodeId } from '../src/ids.js';
import {
  DEVICE_MESSAGE_TYPES,
  type Decoded,
  decodeDeviceMessage,
  decodeViewerMessage,
  deviceMessageSchema,
  VIEWER_MESSAGE_TYPES,
  viewerMessageSchema,
} from '../src/messages.js';
import { editsArb, mutate, RUNS } from './fuzz-helpers.js';

const sid = fc.stringMatching(/^[A-Za-z0-9_-]{22}$/);
const code = fc.stringMatching(/^E_[A-Z_]{1,20}$/);
const validMessages = fc.oneof(
  fc.record({
    t: fc.constant('session/offer'),
    env: fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer())),
  }),
  fc.record({ t: fc.constant('session/ice'), sid, c: fc.constant(null) }),
  fc.record({ t: fc.constant('session/close'), sid }),
  fc.constant({ t: 'cameras' }),
  fc.record({
    t: fc.constant('cameras'),
    list: fc.array(fc.record({ name: fc.stringMatching(/^[a-z0-9_-]{1,32}$/), online: fc.boolean() }), {
      maxLength: 5,
    }),
  }),
  fc.record({ t: fc.constant('session/refused'), sid, code }),
  fc.record({ t: fc.constant('acl/ok'), ver: fc.nat() }),
  fc.record({ t: fc.constant('reader/key'), rk: fc.string({ minLength: 1, maxLength: 200 }) }),
  fc.constant({ t: 'reader/ok' }),
  fc.record({ t: fc.constant('reader/error'), code }),
  fc.record({
    t: fc.constant('push/sub'),
    sub: fc.record({
      endpoint: fc.constantFrom('https://push.example/a', 'https://web.push.apple.com/QH'),
      // RFC 8291 Appendix A's user-agent key
      p256dh: fc.constant(
        'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
      ),
      auth: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('base64url')),
    }),
  }),
  fc.record({ t: fc.constant('push/error'), code }),
  fc.record({
    t: fc.constant('invite/redeem'),
    id: fc.stringMatching(/^[0-9a-f]{32}$/),
    proof: fc.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    name: fc.string({ minLength: 1, maxLength: 70 }),
  }),
  fc.record({
    t: fc.constantFrom('invite/ok', 'invite/pending', 'invite/approved', 'invite/deny'),
    id: fc.stringMatching(/^[0-9a-f]{32}$/),
  }),
  fc.constant({ t: 'invite/list' }),
  fc.record({ t: fc.constant('invite/error'), code }),
  fc.record({
    t: fc.constant('invites'),
    list: fc.array(
      fc.record({
        id: fc.stringMatching(/^[0-9a-f]{32}$/),
        exp: fc.nat(),
        state: fc.constantFrom('open', 'requested', 'approved', 'denied', 'expired'),
        tmpl: fc.record({ role: fc.constantFrom('member', 'guest'), scopes: fc.constant(['live']) }),
      }),
      { maxLength: 3 },
    ),
  }),
);
/** Valid messages, their JSON text mutated and re-parsed, and anything at all. */
const inputs = fc.oneof(
  validMessages,
  fc.tuple(validMessages, editsArb).map(([m, e]) => {
    try {
      return JSON.parse(mutate(JSON.stringify(m), e)) as unknown;
    } catch {
      return m;
    }
  }),
  fc.anything({ maxDepth: 3 }),
  fc.record({ t: fc.constantFrom(...VIEWER_MESSAGE_TYPES, ...DEVICE_MESSAGE_TYPES), x: fc.anything() }),
);

function checkDecoded<M>(r: Decoded<M>, schema: { safeParse(x: unknown): { success: boolean } }) {
  if (r.ok) assert.ok(schema.safeParse(r.m).success);
  else assert.ok(r.error instanceof ProtocolError);
}

describe('fuzz: device⇄viewer message decoders', () => {
  it(`${RUNS} inputs each: a typed message or a ProtocolError result, never a throw`, () => {
    fc.assert(
      fc.property(inputs, (m) => {
        checkDecoded(decodeViewerMessage(m), viewerMessageSchema);
        checkDecoded(decodeDeviceMessage(m), deviceMessageSchema);
        const r = decodeRouted(m);
        if (r.kind === 'invalid') assert.ok(r.error instanceof ProtocolError);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: the sealed channel', () => {
  const ASYNC_RUNS = Math.max(100, Math.floor(RUNS / 100));
  let viewer: WebCryptoSigner;
  let device: WebCryptoSigner;
  let v: SealedChannel;
  let d: SealedChannel;
  let deviceId: string;
  let viewerId: string;
  let hello: unknown;
  before(async () => {
    viewer = await WebCryptoSigner.generate();
    device = await WebCryptoSigner.generate();
    deviceId = deviceIdFromKey(device.publicKey);
    viewerId = encodeId('userKey', viewer.publicKey);
    const env = fixedEnv(11);
    const h = await createHello(viewer, deviceId, env);
    hello = h.hello;
    const a = await acceptHello(h.hello, { device, deviceId, from: viewerId, env });
    assert.ok(a.ok);
    d = a.value.channel;
    const c = await completeHandshake(a.value.accept, {
      pending: h,
      viewerKey: viewerId,
      pinnedDeviceKey: device.publicKey,
      now: env.now(),
    });
    assert.ok(c.ok);
    v = c.value;
  });

  it(`${ASYNC_RUNS} mutated frames: only the genuine one opens; the rest are typed errors`, async () => {
    await fc.assert(
      fc.asyncProperty(validMessages, editsArb, fc.boolean(), async (m, edits, keep) => {
        const f = await v.seal(m);
        const text = JSON.stringify(f);
        const mutated = keep ? text : mutate(text, edits);
        let frame: unknown;
        try {
          frame = JSON.parse(mutated);
        } catch {
          return;
        }
        const r = decodeRouted(frame);
        if (r.kind !== 'chan' || r.m.t !== 'chan/msg') return;
        try {
          const pt = await d.open(r.m as ChannelMsgFrame);
          assert.equal(JSON.stringify(r.m), text, 'only the unmodified frame opens');
          assert.deepEqual(pt, JSON.parse(JSON.stringify(m)));
        } catch (e) {
          assert.ok(e instanceof HearthError, `typed: ${(e as Error).message}`);
          assert.notEqual(JSON.stringify(r.m), text, 'the genuine frame is never refused');
        }
      }),
      { numRuns: ASYNC_RUNS },
    );
  });

  it(`${ASYNC_RUNS} hostile routed messages: neither end ever rejects, and none reaches the app`, async () => {
    const ends = {
      d: new DeviceChannels({ signer: device, deviceId, env: fixedEnv(), route: () => true }),
      v: new ViewerChannels({
        signer: viewer,
        env: fixedEnv(),
        pinned: () => device.publicKey,
        route: () => true,
      }),
    };
    const frames = fc.oneof(
      inputs,
      fc.record({
        t: fc.constantFrom('chan/hello', 'chan/accept', 'chan/msg', 'chan/reset', 'chan/refused'),
        c: fc.stringMatching(/^[A-Za-z0-9_-]{22}$/),
        n: fc.integer(),
        ct: fc.stringMatching(/^[A-Za-z0-9_-]{22,80}$/),
        env: fc.oneof(fc.constant(hello), fc.object({ maxDepth: 1 })),
      }),
      fc.tuple(fc.constant(hello), editsArb).map(([h, e]) => {
        try {
          return { t: 'chan/hello', env: JSON.parse(mutate(JSON.stringify(h), e)) as unknown };
        } catch {
          return { t: 'chan/hello', env: h };
        }
      }),
    );
    await fc.assert(
      fc.asyncProperty(frames, async (m) => {
        const a = await ends.d.receive(viewerId, m);
        assert.notEqual(a.kind, 'message');
        const b = await ends.v.receive(deviceId, m);
        assert.notEqual(b.kind, 'message');
      }),
      { numRuns: ASYNC_RUNS },
    );
  });
});
