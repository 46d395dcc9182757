/**
 * The rendezvous wire protocol: JSON text frames over one WebSocket per client.
 *
 * ```
 * client                                            server
 *   |<------------ hello {srv, ch}  ----------------|  srv: server key (hsk_), ch: 32 random bytes
 *   |------------- auth {env} --------------------->|  env: auth/device or auth/user envelope over
 *   |                                               |       {srv, ch, role}; proves possession of the key,
 *   |                                               |       bound to this server and this connection
 *   |<------------ ready {id, ice, alerts} ---------|  id: hdid_ (device) or huk_ (viewer)
 *   |------------- send {to, m} ------------------->|  routed by cryptographic ID only (S12)
 *   |<------------ recv {from, m} ------------------|  `from` is set by the server from the
 *   |                                               |   authenticated connection, never by the sender
 * ```
 *
 * The server is trusted for delivery only: `m` is a pairing message, a signed session envelope or
 * an ICE candidate, and every one of them is authenticated end to end by its receiver.
 */
import { z } from 'zod';
import { b64u, constantTimeEqual, fromB64u } from './bytes.js';
import { parseJson } from './canonical.js';
import type { CryptoEnv } from './crypto/env.js';
import { ed25519Verify, type Signer } from './crypto/primitives.js';
import { decodeEnvelope, describeZod, type Envelope, seal, verify } from './envelope.js';
import { type ErrorCode, ProtocolError, VerificationError } from './errors.js';
import { decodeId, deviceIdFromKey, isId } from './ids.js';
import type { ReplayCache } from './replay.js';
import { MAX_PUSH_BODY_BYTES, MAX_PUSH_ENDPOINT_CHARS } from './webpush.js';

/** RFC 8030 `Urgency` values a device may ask for. */
export const PUSH_URGENCIES = ['very-low', 'low', 'normal', 'high'] as const;
/** Longest `TTL` of a `push` frame: one day (a notification older than that is noise). */
export const MAX_PUSH_TTL_SECONDS = 86_400;

/** Largest rendezvous frame (text). */
export const MAX_FRAME_BYTES = 96 * 1024;

const idText = z
  .string()
  .refine((s): boolean => isId('deviceId', s) || isId('userKey', s), 'device id or user key');
const deviceIdText = z.string().refine((s): boolean => isId('deviceId', s), 'device id');
const userKeyText = z.string().refine((s): boolean => isId('userKey', s), 'user key');

/** Most viewer keys in one `allow` frame (a device's owner and members). */
export const MAX_ALLOW = 1024;
const b64 = (n: number) => z.string().regex(new RegExp(`^[A-Za-z0-9_-]{${n}}$`));

/** ICE server entry handed to authenticated clients (TURN credentials are per session, short-lived). */
export const iceServerSchema = z
  .object({
    urls: z
      .array(
        z
          .string()
          .max(256)
          .regex(/^(stun|turn|turns):/),
      )
      .min(1)
      .max(8),
    username: z.string().max(256).optional(),
    credential: z.string().max(256).optional(),
  })
  .strict();
export type IceServer = z.infer<typeof iceServerSchema>;

/**
 * The codes of a rendezvous `error` frame (all in the error registry, `errors.ts`). A client
 * decodes no other code.
 */
export const RENDEZVOUS_ERROR_CODES = [
  'E_SCHEMA',
  'E_DECODE',
  'E_TOO_LARGE',
  'E_BAD_STATE',
  'E_OFFLINE',
  'E_CONGESTED',
  'E_RATE_LIMITED',
  'E_TAG_TAKEN',
  'E_AUTH',
  'E_NO_SESSION',
  'E_PUSH_ENDPOINT',
  'E_PUSH_GONE',
  'E_PUSH_FAILED',
] as const satisfies readonly ErrorCode[];
/** The code of a rendezvous `error` frame. */
export type RendezvousErrorCode = (typeof RENDEZVOUS_ERROR_CODES)[number];

/** The codes of a rendezvous `alert` frame (to a device). */
export const RENDEZVOUS_ALERT_CODES = ['E_IMPOSTOR'] as const satisfies readonly ErrorCode[];
/** The code of a rendezvous `alert` frame. */
export type RendezvousAlertCode = (typeof RENDEZVOUS_ALERT_CODES)[number];

/** Frames the server sends. */
export const serverFrameSchema = z.discriminatedUnion('t', [
  z
    .object({
      t: z.literal('hello'),
      v: z.literal(1),
      srv: z.string().max(80),
      ch: b64(43),
      /**
       * The server's clock (ms since the epoch). Not authenticated: a client uses it only to stamp
       * its auth proof (bound to `ch` anyway) and to tell, and warn about, its own drift (review R13).
       */
      time: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
    })
    .strict(),
  z
    .object({
      t: z.literal('ready'),
      id: idText,
      ice: z.array(iceServerSchema).max(8),
      /** Failed attempts to claim this device's ID since it was last connected (S3 alert). */
      impostors: z.number().int().nonnegative().optional(),
      /**
       * The server's proof that it holds the key it named in `hello` (`srv`): an Ed25519 signature
       * of {@link serverProofMessage} over this connection's challenge, the client's `cn` and the
       * client's ID. Sent when the `auth` frame carried `cn` (review R15).
       */
      proof: b64(86).optional(),
    })
    .strict(),
  z.object({ t: z.literal('recv'), from: idText, m: z.unknown() }).strict(),
  /**
   * Relay (TURN) credentials for one session, minted only when a device asked for them for a
   * viewer it answers (client frame `relay`, review R6). To the device, `peer` is that viewer; to
   * the viewer, the device. `until`: ms since the epoch when the credentials expire.
   */
  z
    .object({
      t: z.literal('relay'),
      peer: idText,
      ice: z.array(iceServerSchema).max(8),
      until: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      ref: z.string().max(64).optional(),
    })
    .strict(),
  z.object({ t: z.literal('presence'), d: deviceIdText, online: z.boolean() }).strict(),
  z.object({ t: z.literal('pair/found'), tag: z.string().max(8), d: deviceIdText.nullable() }).strict(),
  z
    .object({
      t: z.literal('alert'),
      code: z.enum(RENDEZVOUS_ALERT_CODES),
      count: z.number().int().nonnegative(),
    })
    .strict(),
  z
    .object({
      t: z.literal('error'),
      code: z.enum(RENDEZVOUS_ERROR_CODES),
      msg: z.string().max(256),
      ref: z.string().max(64).optional(),
    })
    .strict(),
  /** The push service accepted the device's `push` of this `ref` (2xx). */
  z.object({ t: z.literal('push/ok'), ref: z.string().min(1).max(64) }).strict(),
  z.object({ t: z.literal('pong') }).strict(),
]);
export type ServerFrame = z.infer<typeof serverFrameSchema>;

/** Frames a client sends. */
export const clientFrameSchema = z.discriminatedUnion('t', [
  /** `cn`: a fresh client nonce (16 bytes), for the server's proof of its key in `ready`. */
  z.object({ t: z.literal('auth'), env: z.unknown(), cn: b64(22).optional() }).strict(),
  /** Route `m` to a device (by hdid_) or a viewer (by huk_). `ref` is echoed in a delivery error. */
  z.object({ t: z.literal('send'), to: idText, m: z.unknown(), ref: z.string().max(64).optional() }).strict(),
  /** Viewer: tell me when these devices come and go. */
  z.object({ t: z.literal('watch'), d: z.array(deviceIdText).max(256) }).strict(),
  /** Device in its pairing window: make me findable by the manual code's lookup tag. */
  z
    .object({
      t: z.literal('pair/register'),
      tag: z
        .string()
        .regex(/^[0-9A-Z]{4}$/)
        .nullable(),
    })
    .strict(),
  /**
   * Device: the viewer keys that hold a grant now (its owner and members). The server shows the
   * device's presence only to them, and routes their messages to it ahead of strangers' (whose
   * total it caps). Sent after every `ready` and whenever the ACL changes; it replaces the last one.
   */
  z.object({ t: z.literal('allow'), k: z.array(userKeyText).max(MAX_ALLOW) }).strict(),
  /**
   * Device: relay credentials for a session with viewer `v`, for itself and for `v` (server frame
   * `relay`). Only for a viewer on this device's allow list that sent it a message lately; nobody
   * else is ever given TURN credentials (review R6).
   */
  z.object({ t: z.literal('relay'), v: userKeyText, ref: z.string().max(64).optional() }).strict(),
  /** Viewer: which device registered this lookup tag? */
  z.object({ t: z.literal('pair/lookup'), tag: z.string().regex(/^[0-9A-Z]{4}$/) }).strict(),
  /**
   * Device: POST this RFC 8291 `aes128gcm` body (already encrypted to the browser) to a Web Push
   * `endpoint`; the server adds its VAPID authorization (RFC 8292) and answers `push/ok {ref}` or
   * `error {code, ref}`. The server checks the endpoint itself (https; see packages/server).
   */
  z
    .object({
      t: z.literal('push'),
      ref: z.string().min(1).max(64),
      endpoint: z.string().min(1).max(MAX_PUSH_ENDPOINT_CHARS),
      body: z
        .string()
        .min(1)
        .max(Math.ceil((MAX_PUSH_BODY_BYTES * 4) / 3))
        .regex(/^[A-Za-z0-9_-]+$/),
      ttl: z.number().int().min(0).max(MAX_PUSH_TTL_SECONDS),
      urgency: z.enum(PUSH_URGENCIES),
    })
    .strict(),
  z.object({ t: z.literal('ping') }).strict(),
]);
export type ClientFrame = z.infer<typeof clientFrameSchema>;

function decodeFrame<T>(schema: z.ZodType<T>, input: string | Uint8Array, what: string): T {
  const r = schema.safeParse(parseJson(input, MAX_FRAME_BYTES));
  if (!r.success) throw new ProtocolError('E_SCHEMA', `${what} frame: ${describeZod(r.error)}`);
  return r.data;
}

/** Decode a frame sent by the server. Raises ProtocolError only. */
export function decodeServerFrame(input: string | Uint8Array): ServerFrame {
  return decodeFrame(serverFrameSchema, input, 'server');
}

/** Decode a frame sent by a client. Raises ProtocolError only. */
export function decodeClientFrame(input: string | Uint8Array): ClientFrame {
  return decodeFrame(clientFrameSchema, input, 'client');
}

const authBodySchema = z
  .object({ srv: z.string().max(80), ch: b64(43), role: z.enum(['device', 'viewer']) })
  .strict();

/** Client: answer the server's hello with a proof of key possession bound to server and connection. */
export async function createAuth(
  signer: Signer,
  role: 'device' | 'viewer',
  hello: { srv: string; ch: string },
  env: CryptoEnv,
): Promise<Envelope> {
  return seal(
    signer,
    role === 'device' ? 'device' : 'user',
    role === 'device' ? 'auth/device' : 'auth/user',
    { srv: hello.srv, ch: hello.ch, role },
    env,
  );
}

/** What the server signs to prove, in `ready`, that it holds its key (`hsk_`, review R15). */
export function serverProofMessage(ch: string, cn: string, id: string): Uint8Array {
  return new TextEncoder().encode(`hearth/rendezvous/server-proof/v1\n${ch}\n${cn}\n${id}`);
}

/** Server: the `ready.proof` for a client that sent `cn`. */
export async function signServerProof(signer: Signer, ch: string, cn: string, id: string): Promise<string> {
  return b64u(await signer.sign(serverProofMessage(ch, cn, id)));
}

/**
 * Client: does `proof` show that the holder of `serverKey` (hsk_ text) answered this connection
 * (its challenge `ch`, our nonce `cn`, our ID)? False for anything malformed.
 */
export async function verifyServerProof(
  serverKey: string,
  o: { ch: string; cn: string; id: string; proof: string | undefined },
): Promise<boolean> {
  if (!o.proof) return false;
  try {
    return await ed25519Verify(
      decodeId('serverKey', serverKey),
      serverProofMessage(o.ch, o.cn, o.id),
      fromB64u(o.proof, 64),
    );
  } catch {
    return false;
  }
}

/** Server: a fresh challenge for a new connection. */
export function newChallenge(env: CryptoEnv): string {
  return b64u(env.random(32));
}

/** The authenticated identity of a connection. */
export type AuthResult =
  | { role: 'device'; id: string; key: Uint8Array }
  | { role: 'viewer'; id: string; key: Uint8Array };

/**
 * Server: verify a client's auth frame for this connection's challenge. Raises VerificationError
 * (a failed proof, to be counted and reported to the device) or ProtocolError (malformed).
 */
export async function verifyAuth(
  raw: unknown,
  o: { serverKey: string; challenge: string; now: number; replay?: ReplayCache },
): Promise<AuthResult> {
  const e = decodeEnvelope(raw);
  const role = e.p === 'auth/device' ? 'device' : e.p === 'auth/user' ? 'viewer' : undefined;
  if (!role) throw new ProtocolError('E_SCHEMA', 'auth envelope purpose must be auth/device or auth/user');
  const r = await verify(e, {
    purpose: e.p,
    signerKind: role === 'device' ? 'device' : 'user',
    body: authBodySchema,
    now: o.now,
    maxAgeMs: 60_000,
    maxFutureMs: 60_000,
    ...(o.replay ? { replay: o.replay } : {}),
  });
  if (!r.ok) throw r.error;
  const enc = new TextEncoder();
  if (r.body.srv !== o.serverKey) throw new VerificationError('E_BAD_BINDING', 'auth is for another server');
  if (!constantTimeEqual(enc.encode(r.body.ch), enc.encode(o.challenge)))
    throw new VerificationError('E_BAD_BINDING', 'auth is for another connection');
  if (r.body.role !== role)
    throw new VerificationError('E_BAD_BINDING', 'auth role does not match its purpose');
  if (role === 'device') return { role, id: deviceIdFromKey(r.signer), key: r.signer };
  return { role, id: r.signerText, key: r.signer };
}

/** Parse a challenge (for tests and adapters). */
export function challengeBytes(ch: string): Uint8Array {
  return fromB64u(ch, 32);
}

/**
 * The device ID an auth frame claims (derived from the key it names), whether or not its proof is
 * valid. The server counts failed proofs against this ID and reports them to the real device when it
 * next connects (threat model S3: "registering someone else's ID fails and raises an alert").
 */
export function claimedDeviceId(raw: unknown): string | undefined {
  try {
    const e = decodeEnvelope(raw);
    if (e.p !== 'auth/device') return undefined;
    return deviceIdFromKey(decodeId('deviceKey', e.k));
  } catch {
    return undefined;
  }
}
