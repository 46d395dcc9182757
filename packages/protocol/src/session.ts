/**
 * Live-view session setup (threat model S4, S11, S12).
 *
 * ```
 * viewer                                   device
 *   | session/offer  (signed by viewer key)   |
 *   |  {d: deviceId, cam, sid, sdp}          |
 *   |--------------------------------------->|  verify signature, freshness, nonce,
 *   |                                        |  device ID, fingerprint, ACL "live"
 *   | session/answer (signed by device key)  |
 *   |  {d, sid, o: H(offer), sdp}            |
 *   |<---------------------------------------|
 *   verify against the device key pinned at pairing, bound to our offer and session id;
 *   only then setRemoteDescription. DTLS then proves each side holds the certificate whose
 *   fingerprint the other signed.
 * ```
 *
 * ICE candidates may trickle unsigned: they only say where to send packets; DTLS authenticates.
 */
import { z } from 'zod';
import { b64u, fromB64u } from './bytes.js';
import type { CryptoEnv } from './crypto/env.js';
import { type Signer, sha256 } from './crypto/primitives.js';
import {
  type Envelope,
  envelopeDigestInput,
  type Freshness,
  seal,
  type VerifyResult,
  verify,
} from './envelope.js';
import { ProtocolError, VerificationError } from './errors.js';
import { type DeviceId, deviceIdFromKey, isId } from './ids.js';
import { type Fingerprint, MAX_SDP_BYTES, sdpFingerprint } from './sdp.js';

/** Camera names: what the agent's YAML allows. */
export const CAMERA_NAME = /^[a-z0-9_-]{1,32}$/;

const sdpField = z.string().min(1).max(MAX_SDP_BYTES);
/** An ephemeral X25519 public key, b64u of 32 bytes. */
const stillKeyField = z
  .string()
  .regex(/^[A-Za-z0-9_-]{43}$/)
  .refine((s): boolean => {
    try {
      return fromB64u(s, 32).length === 32;
    } catch {
      return false;
    }
  }, '32-byte key');

/** Body of `session/offer`. */
export const offerBodySchema = z
  .object({
    d: z.string().refine((s): boolean => isId('deviceId', s), 'device id'),
    cam: z.string().regex(CAMERA_NAME),
    sid: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
    sdp: sdpField,
    /** Optional: the viewer's ephemeral X25519 key for the sealed still (`still.ts`). */
    sk: stillKeyField.optional(),
  })
  .strict();
export type OfferBody = z.infer<typeof offerBodySchema>;

/** Body of `session/answer`. */
export const answerBodySchema = z
  .object({
    d: z.string().refine((s): boolean => isId('deviceId', s), 'device id'),
    sid: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
    o: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    sdp: sdpField,
    /** Optional: the device's ephemeral X25519 key for the sealed still; only if the offer had one. */
    sk: stillKeyField.optional(),
  })
  .strict();
export type AnswerBody = z.infer<typeof answerBodySchema>;

/** Digest of an envelope, b64u (binds an answer to exactly one offer). */
export async function envelopeDigest(e: Envelope): Promise<string> {
  return b64u(await sha256(envelopeDigestInput(e)));
}

/** Viewer: create a signed offer. */
export async function createOffer(
  viewer: Signer,
  args: {
    deviceId: DeviceId | string;
    camera: string;
    sdp: string;
    /** The viewer's fresh ephemeral X25519 public key: asks for a sealed still (`still.ts`). */
    stillKey?: Uint8Array;
  },
  env: CryptoEnv,
): Promise<{ envelope: Envelope; sid: string; digest: string }> {
  sdpFingerprint(args.sdp); // refuse to sign an SDP without DTLS
  if (args.stillKey && args.stillKey.length !== 32) throw new RangeError('still key must be 32 bytes');
  const sid = b64u(env.random(16));
  const envelope = await seal(
    viewer,
    'user',
    'session/offer',
    {
      d: args.deviceId,
      cam: args.camera,
      sid,
      sdp: args.sdp,
      ...(args.stillKey ? { sk: b64u(args.stillKey) } : {}),
    },
    env,
  );
  return { envelope, sid, digest: await envelopeDigest(envelope) };
}

/** A verified offer, as the device sees it. */
export interface VerifiedOffer {
  viewerKey: Uint8Array;
  viewerKeyText: string;
  camera: string;
  sid: string;
  sdp: string;
  fingerprint: Fingerprint;
  digest: string;
  envelope: Envelope;
  /** The viewer's ephemeral X25519 public key, if it asked for a sealed still. */
  stillKey?: Uint8Array;
}

/**
 * Device: verify an offer's signature, freshness, nonce, target device and fingerprint. The
 * caller then asks the ACL (`grants.ts`) whether `viewerKey` may use `live` on `camera`.
 */
export async function verifyOffer(
  e: Envelope,
  o: Freshness & { deviceId: string },
): Promise<VerifyResult<VerifiedOffer>> {
  const r = await verify(e, { ...o, purpose: 'session/offer', signerKind: 'user', body: offerBodySchema });
  if (!r.ok) return r;
  if (r.body.d !== o.deviceId)
    return { ok: false, error: new VerificationError('E_BAD_BINDING', 'offer is for another device') };
  let fingerprint: Fingerprint;
  try {
    fingerprint = sdpFingerprint(r.body.sdp);
  } catch (err) {
    return {
      ok: false,
      error: err instanceof ProtocolError ? err : new ProtocolError('E_DECODE', 'offer SDP'),
    };
  }
  return {
    ...r,
    body: {
      viewerKey: r.signer,
      viewerKeyText: r.signerText,
      camera: r.body.cam,
      sid: r.body.sid,
      sdp: r.body.sdp,
      fingerprint,
      digest: await envelopeDigest(e),
      envelope: e,
      ...(r.body.sk ? { stillKey: fromB64u(r.body.sk, 32) } : {}),
    },
  };
}

/** Device: sign an answer bound to a verified offer. */
export async function createAnswer(
  device: Signer,
  offer: VerifiedOffer,
  sdp: string,
  env: CryptoEnv,
  /** The device's ephemeral X25519 public key for the sealed still; only when the offer had one. */
  stillKey?: Uint8Array,
): Promise<Envelope> {
  sdpFingerprint(sdp);
  if (stillKey && (!offer.stillKey || stillKey.length !== 32))
    throw new RangeError('a still key answers an offer that asked for one, and is 32 bytes');
  return seal(
    device,
    'device',
    'session/answer',
    {
      d: deviceIdFromKey(device.publicKey),
      sid: offer.sid,
      o: offer.digest,
      sdp,
      ...(stillKey ? { sk: b64u(stillKey) } : {}),
    },
    env,
  );
}

/** A verified answer, as the viewer sees it. */
export interface VerifiedAnswer {
  sdp: string;
  fingerprint: Fingerprint;
  /** The device's ephemeral X25519 public key for the sealed still, if it sent one. */
  stillKey?: Uint8Array;
}

/**
 * Viewer: verify an answer against the device key pinned at pairing, our session id and our
 * offer's digest. On failure the UI must show "possible attack" and must not apply the SDP.
 */
export async function verifyAnswer(
  e: Envelope,
  o: Freshness & { pinnedDeviceKey: Uint8Array; sid: string; offerDigest: string },
): Promise<VerifyResult<VerifiedAnswer>> {
  const r = await verify(e, {
    ...o,
    purpose: 'session/answer',
    signerKind: 'device',
    expectedSigner: o.pinnedDeviceKey,
    body: answerBodySchema,
  });
  if (!r.ok) return r;
  if (r.body.d !== deviceIdFromKey(o.pinnedDeviceKey))
    return { ok: false, error: new VerificationError('E_BAD_BINDING', 'answer names another device') };
  if (r.body.sid !== o.sid || r.body.o !== o.offerDigest) {
    return { ok: false, error: new VerificationError('E_BAD_BINDING', 'answer is not bound to our offer') };
  }
  let fingerprint: Fingerprint;
  try {
    fingerprint = sdpFingerprint(r.body.sdp);
  } catch (err) {
    return {
      ok: false,
      error: err instanceof ProtocolError ? err : new ProtocolError('E_DECODE', 'answer SDP'),
    };
  }
  return {
    ...r,
    body: {
      sdp: r.body.sdp,
      fingerprint,
      ...(r.body.sk ? { stillKey: fromB64u(r.body.sk, 32) } : {}),
    },
  };
}

/** Parse a session id (b64u, 16 bytes). */
export function parseSid(sid: string): Uint8Array {
  return fromB64u(sid, 16);
}
