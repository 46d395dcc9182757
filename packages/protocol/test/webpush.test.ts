/**
 * Web Push (src/webpush.ts): RFC 8291 Appendix A exactly, round trips at Hearth's fixed size,
 * tampering, and fuzzed decoders (payload, subscription, push body).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { b64u, fromB64u, utf8 } from '../src/bytes.js';
import { type CryptoEnv, systemEnv } from '../src/crypto/env.js';
import { HearthError, ProtocolError, VerificationError } from '../src/errors.js';
import {
  decodePushPayload,
  encodePushPayload,
  MAX_PUSH_PAYLOAD_BYTES,
  PUSH_CAMERA_NAME,
  type PushPayload,
} from '../src/push-payload.js';
import { CAMERA_NAME } from '../src/session.js';
import {
  decodePushSubscription,
  decryptPush,
  encryptPush,
  openPushPayload,
  PUSH_BODY_BYTES,
  PUSH_PLAINTEXT_BYTES,
  type PushReceiverKeys,
  sealPushPayload,
} from '../src/webpush.js';
import { editsArb, mutate, RUNS, textInputs, valueOrProtocolError } from './fuzz-helpers.js';

/** RFC 8291 Appendix A (line breaks removed). */
const RFC = {
  plaintext: 'When I grow up, I want to be a watermelon',
  asPrivate: 'yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw',
  asPublic: 'BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8',
  uaPrivate: 'q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94',
  uaPublic: 'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
  salt: 'DGv6ra1nlYgDCS1FRnbzlw',
  auth: 'BTBZMqHH6r4Tts7J_aSIgg',
  body: 'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN',
};

/** An env that hands out the given byte strings, in order (salt, then the ephemeral scalar). */
function scriptedEnv(...chunks: Uint8Array[]): CryptoEnv {
  const q = [...chunks];
  return {
    random(n: number): Uint8Array {
      const c = q.shift();
      assert.ok(c && c.length === n, `scripted random(${n})`);
      return c;
    },
    now: () => 0,
  };
}

const rfcReceiver = (): PushReceiverKeys => ({
  privateKey: fromB64u(RFC.uaPrivate),
  publicKey: fromB64u(RFC.uaPublic),
  auth: fromB64u(RFC.auth),
});

/** A fresh browser-side key pair, as PushManager would make one. */
export async function newReceiver(): Promise<PushReceiverKeys & { p256dh: string; authText: string }> {
  const kp = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, [
    'deriveBits',
  ])) as CryptoKeyPair;
  const jwk = await crypto.subtle.exportKey('jwk', kp.privateKey);
  const publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey));
  const auth = crypto.getRandomValues(new Uint8Array(16));
  return {
    privateKey: fromB64u(jwk.d as string),
    publicKey,
    auth,
    p256dh: b64u(publicKey),
    authText: b64u(auth),
  };
}

const payload: PushPayload = { v: 1, type: 'motion', cam: 'porch', t: 1_764_000_000_000 };

describe('webpush: RFC 8291 Appendix A', () => {
  it('encrypts the example to exactly the published body (salt and key from the injected env)', async () => {
    const env = scriptedEnv(fromB64u(RFC.salt), fromB64u(RFC.asPrivate));
    const body = await encryptPush(utf8(RFC.plaintext), { p256dh: RFC.uaPublic, auth: RFC.auth }, env, {
      padTo: 0,
      rs: 4096,
    });
    assert.equal(b64u(body), RFC.body);
    // the header's keyid is the sender's public key of the example
    assert.equal(b64u(body.subarray(21, 86)), RFC.asPublic);
  });

  it('decrypts the published body as the user agent does', async () => {
    const pt = await decryptPush(fromB64u(RFC.body), rfcReceiver());
    assert.equal(new TextDecoder().decode(pt), RFC.plaintext);
  });

  it('a flipped bit anywhere in the record or salt fails with E_DECRYPT; a header change is refused', async () => {
    const body = fromB64u(RFC.body);
    for (const i of [0, 15, 86, 100, body.length - 1]) {
      const b = body.slice();
      b[i] = (b[i] as number) ^ 1;
      await assert.rejects(
        decryptPush(b, rfcReceiver()),
        (e) => e instanceof VerificationError && e.code === 'E_DECRYPT',
      );
    }
    const b = body.slice();
    b[20] = 64;
    await assert.rejects(decryptPush(b, rfcReceiver()), (e) => e instanceof ProtocolError);
    // another receiver's auth secret
    await assert.rejects(
      decryptPush(body, { ...rfcReceiver(), auth: new Uint8Array(16) }),
      (e) => e instanceof VerificationError,
    );
  });
});

describe('webpush: Hearth notifications', () => {
  it('every body has the same length, whatever the payload; the receiver gets the payload back', async () => {
    const ua = await newReceiver();
    const small = await sealPushPayload(payload, { p256dh: ua.p256dh, auth: ua.authText }, systemEnv);
    const thumb = Buffer.from(new Uint8Array(2000).fill(7)).toString('base64');
    const full: PushPayload = { ...payload, type: 'sound', thumb, clip: b64u(new Uint8Array(16).fill(1)) };
    const big = await sealPushPayload(full, { p256dh: ua.p256dh, auth: ua.authText }, systemEnv);
    assert.equal(small.length, PUSH_BODY_BYTES);
    assert.equal(big.length, PUSH_BODY_BYTES);
    assert.ok(PUSH_BODY_BYTES <= 4096);
    assert.deepEqual(await openPushPayload(small, ua), payload);
    assert.deepEqual(await openPushPayload(big, ua), full);
    // two encryptions of the same payload differ (fresh salt and key)
    const again = await sealPushPayload(payload, { p256dh: ua.p256dh, auth: ua.authText }, systemEnv);
    assert.notDeepEqual(again, small);
  });

  it('the ciphertext does not contain the camera name; a payload too large is refused', async () => {
    const ua = await newReceiver();
    const body = await sealPushPayload(payload, { p256dh: ua.p256dh, auth: ua.authText }, systemEnv);
    assert.ok(!Buffer.from(body).includes(Buffer.from('porch')));
    // the largest payload the schema admits still fits one notification
    const largest: PushPayload = {
      ...payload,
      cam: 'x'.repeat(32),
      t: Number.MAX_SAFE_INTEGER,
      thumb: 'A'.repeat(2800),
      clip: b64u(new Uint8Array(16)),
    };
    assert.ok(encodePushPayload(largest).length <= MAX_PUSH_PAYLOAD_BYTES);
    assert.throws(
      () => encodePushPayload({ ...payload, thumb: 'A'.repeat(2804) }),
      (e) => e instanceof ProtocolError && e.code === 'E_SCHEMA',
    );
    await assert.rejects(
      encryptPush(
        new Uint8Array(MAX_PUSH_PAYLOAD_BYTES + 1),
        { p256dh: ua.p256dh, auth: ua.authText },
        systemEnv,
      ),
      (e) => e instanceof ProtocolError && e.code === 'E_TOO_LARGE',
    );
  });

  it('the payload module repeats the camera-name rule and the size exactly', () => {
    assert.equal(PUSH_CAMERA_NAME.source, CAMERA_NAME.source);
    assert.equal(MAX_PUSH_PAYLOAD_BYTES, PUSH_PLAINTEXT_BYTES - 1);
  });

  it('subscriptions: https endpoint ≤ 1024, a real P-256 point, a 16-byte auth', async () => {
    const ua = await newReceiver();
    const ok = { endpoint: 'https://push.example/wpush/abc', p256dh: ua.p256dh, auth: ua.authText };
    assert.deepEqual(decodePushSubscription(ok), ok);
    const bad: unknown[] = [
      { ...ok, endpoint: 'http://push.example/x' },
      { ...ok, endpoint: `https://push.example/${'a'.repeat(1010)}` },
      { ...ok, endpoint: 'https://user:pw@push.example/x' },
      { ...ok, endpoint: 'not a url' },
      { ...ok, p256dh: b64u(new Uint8Array(65).fill(4)) }, // not on the curve
      { ...ok, p256dh: ua.p256dh.slice(1) },
      { ...ok, auth: b64u(new Uint8Array(15)) },
      { ...ok, extra: 1 },
      null,
      [],
    ];
    for (const b of bad) assert.throws(() => decodePushSubscription(b), ProtocolError, JSON.stringify(b));
  });
});

describe('fuzz: webpush decoders', () => {
  const validPayload = fc
    .record({
      type: fc.constantFrom('motion', 'sound'),
      cam: fc.constantFrom('porch', 'garden-1', 'a', 'x'.repeat(32), 'Bad', ''),
      t: fc.nat(),
      thumb: fc.option(
        fc.uint8Array({ minLength: 3, maxLength: 120 }).map((b) => Buffer.from(b).toString('base64')),
        {
          nil: undefined,
        },
      ),
    })
    .map((r) => {
      const o: Record<string, unknown> = { v: 1, type: r.type, cam: r.cam, t: r.t };
      if (r.thumb) o.thumb = r.thumb;
      return JSON.stringify(o);
    });

  const payloadRuns = Math.min(RUNS, 5_000);
  it(`decodePushPayload: ${payloadRuns} inputs, a payload or a ProtocolError`, () => {
    fc.assert(
      fc.property(textInputs(validPayload), (input) => {
        const r = valueOrProtocolError(() => decodePushPayload(input));
        if (!(r instanceof ProtocolError)) assert.equal(r.v, 1);
      }),
      { numRuns: payloadRuns },
    );
  });

  it(`decodePushSubscription: ${Math.min(RUNS, 5_000)} inputs, a subscription or a ProtocolError`, async () => {
    const ua = await newReceiver();
    const valid = fc.constant(
      JSON.stringify({ endpoint: 'https://push.example/wpush/abc', p256dh: ua.p256dh, auth: ua.authText }),
    );
    fc.assert(
      fc.property(fc.tuple(valid, editsArb), fc.json({ maxDepth: 3 }), ([s, e], j) => {
        for (const text of [mutate(s, e), j]) {
          let v: unknown;
          try {
            v = JSON.parse(text);
          } catch {
            continue;
          }
          valueOrProtocolError(() => decodePushSubscription(v));
        }
      }),
      { numRuns: Math.min(RUNS, 5_000) },
    );
  });

  it('decryptPush: mutated and random bodies give only typed errors', async () => {
    const ua = await newReceiver();
    const body = await sealPushPayload(payload, { p256dh: ua.p256dh, auth: ua.authText }, systemEnv);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 5000 }),
          fc
            .tuple(fc.nat(body.length - 1), fc.integer({ min: 1, max: 255 }), fc.nat(body.length))
            .map(([i, x, cut]) => {
              const b = body.slice(0, Math.max(cut, i + 1));
              b[i] = (b[i] as number) ^ x;
              return b;
            }),
        ),
        async (b) => {
          try {
            await decryptPush(b, ua);
            assert.fail('a mutated body decrypted');
          } catch (e) {
            assert.ok(e instanceof HearthError, String(e));
          }
        },
      ),
      { numRuns: Math.min(RUNS, 500) },
    );
  });
});
