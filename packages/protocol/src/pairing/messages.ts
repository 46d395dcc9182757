/**
 * Pairing wire messages: JSON objects with base64url (no padding) byte fields. Each has a strict zod
 * schema (unknown fields are refused) and the whole message a size limit; {@link decodePairingMessage}
 * returns a valid message or throws a typed ProtocolError, never anything else.
 *
 * | message          | dir  | fields                                                        |
 * |------------------|------|---------------------------------------------------------------|
 * | `pair/start`     | V→D  | `v: 1`, `method: 'qr'│'code'`, `shareP` (65 B)                 |
 * | `pair/challenge` | D→V  | `shareV` (65 B), `confirmV` (32 B)                            |
 * | `pair/confirm`   | V→D  | `confirmP` (32 B), `box` (12 B IV ‖ AES-256-GCM ct, ≤ 512 B)  |
 * | `pair/done`      | D→V  | `box` (as above)                                              |
 * | `pair/error`     | both | `code` (a stable error code), `retryAt?` (ms, rate limits)    |
 */
import { z } from 'zod';
import { b64u, fromB64u, fromUtf8, utf8 } from '../bytes.js';
import { checkJsonDepth } from '../canonical.js';
import { ALL_ERROR_CODES, ProtocolError } from '../errors.js';
import { CONFIRM_BYTES, POINT_BYTES } from './spake2plus.js';

/** Largest encoded pairing message, in bytes. */
export const MAX_PAIRING_MESSAGE = 1024;
/** Largest box (IV ‖ ciphertext ‖ tag), in bytes. */
export const MAX_BOX_BYTES = 512;
/** Smallest box: 12-byte IV, 16-byte tag, at least 2 bytes of JSON. */
export const MIN_BOX_BYTES = 12 + 16 + 2;
/** Largest box plaintext (the JSON identity payload), in bytes. */
export const MAX_BOX_PLAINTEXT = MAX_BOX_BYTES - 12 - 16;

/** How the viewer learned the setup secret. */
export type PairingMethod = 'qr' | 'code';
/** Role the device grants the newly paired viewer. */
export type PairingRole = 'owner' | 'member';

/** Length in base64url characters (no padding) of `n` bytes. */
const b64uLen = (n: number): number => Math.ceil((n * 4) / 3);
const B64U = /^[A-Za-z0-9_-]*$/;
const fixedB64u = (bytes: number) => z.string().length(b64uLen(bytes)).regex(B64U);
const boxB64u = z.string().min(b64uLen(MIN_BOX_BYTES)).max(b64uLen(MAX_BOX_BYTES)).regex(B64U);

const errorCodes = ALL_ERROR_CODES;

export const pairStartSchema = z.strictObject({
  t: z.literal('pair/start'),
  v: z.literal(1),
  method: z.enum(['qr', 'code']),
  shareP: fixedB64u(POINT_BYTES),
});
export const pairChallengeSchema = z.strictObject({
  t: z.literal('pair/challenge'),
  shareV: fixedB64u(POINT_BYTES),
  confirmV: fixedB64u(CONFIRM_BYTES),
});
export const pairConfirmSchema = z.strictObject({
  t: z.literal('pair/confirm'),
  confirmP: fixedB64u(CONFIRM_BYTES),
  box: boxB64u,
});
export const pairDoneSchema = z.strictObject({
  t: z.literal('pair/done'),
  box: boxB64u,
});
export const pairErrorSchema = z.strictObject({
  t: z.literal('pair/error'),
  code: z.enum(errorCodes),
  retryAt: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
});
export const pairingMessageSchema = z.discriminatedUnion('t', [
  pairStartSchema,
  pairChallengeSchema,
  pairConfirmSchema,
  pairDoneSchema,
  pairErrorSchema,
]);

export type PairStart = z.infer<typeof pairStartSchema>;
export type PairChallenge = z.infer<typeof pairChallengeSchema>;
export type PairConfirm = z.infer<typeof pairConfirmSchema>;
export type PairDone = z.infer<typeof pairDoneSchema>;
export type PairError = z.infer<typeof pairErrorSchema>;
export type PairingMessage = z.infer<typeof pairingMessageSchema>;
export type PairingMessageType = PairingMessage['t'];

/** Decode a base64url field of a schema-checked message, insisting on the canonical encoding. */
export function fieldBytes(s: string, name: string): Uint8Array {
  let b: Uint8Array;
  try {
    b = fromB64u(s, MAX_BOX_BYTES);
  } catch {
    throw new ProtocolError('E_DECODE', `${name}: not base64url`);
  }
  if (b64u(b) !== s) throw new ProtocolError('E_DECODE', `${name}: non-canonical base64url`);
  return b;
}

function checkFields(m: PairingMessage): void {
  switch (m.t) {
    case 'pair/start':
      fieldBytes(m.shareP, 'shareP');
      break;
    case 'pair/challenge':
      fieldBytes(m.shareV, 'shareV');
      fieldBytes(m.confirmV, 'confirmV');
      break;
    case 'pair/confirm':
      fieldBytes(m.confirmP, 'confirmP');
      fieldBytes(m.box, 'box');
      break;
    case 'pair/done':
      fieldBytes(m.box, 'box');
      break;
    case 'pair/error':
      break;
  }
}

function schemaError(e: z.ZodError, what: string): ProtocolError {
  // Name the path only: zod messages may quote received values.
  const path = e.issues[0]?.path.map(String).join('.') || '(root)';
  return new ProtocolError('E_SCHEMA', `${what}: invalid field ${path.slice(0, 40)}`);
}

/** Parse JSON text of at most `max` bytes into an unknown value, with typed errors. */
export function parseJsonLimited(input: Uint8Array | string, max: number, what: string): unknown {
  let text: string;
  if (typeof input === 'string') {
    if (input.length > max || utf8(input).length > max)
      throw new ProtocolError('E_TOO_LARGE', `${what} too large`);
    text = input;
  } else if (input instanceof Uint8Array) {
    if (input.length > max) throw new ProtocolError('E_TOO_LARGE', `${what} too large`);
    text = fromUtf8(input);
  } else {
    throw new ProtocolError('E_DECODE', `${what}: expected bytes or a string`);
  }
  checkJsonDepth(text);
  try {
    return JSON.parse(text);
  } catch {
    throw new ProtocolError('E_DECODE', `${what}: not JSON`);
  }
}

/**
 * Decode a pairing message from JSON text or UTF-8 bytes. Returns a schema-valid message whose byte
 * fields are canonical base64url of the right length, or throws ProtocolError (E_TOO_LARGE, E_DECODE,
 * E_SCHEMA). Points are not yet checked to be on the curve: the state machines do that.
 */
export function decodePairingMessage(input: Uint8Array | string): PairingMessage {
  return validatePairingMessage(parseJsonLimited(input, MAX_PAIRING_MESSAGE, 'pairing message'));
}

/** Validate an already-parsed value as a pairing message (same rules as {@link decodePairingMessage}). */
export function validatePairingMessage(value: unknown): PairingMessage {
  const r = pairingMessageSchema.safeParse(value);
  if (!r.success) throw schemaError(r.error, 'pairing message');
  checkFields(r.data);
  return r.data;
}

/** Encode a pairing message as JSON text (validating it first). */
export function encodePairingMessage(m: PairingMessage): string {
  const valid = validatePairingMessage(m);
  const s = JSON.stringify(valid);
  if (utf8(s).length > MAX_PAIRING_MESSAGE)
    throw new ProtocolError('E_TOO_LARGE', 'pairing message too large');
  return s;
}

// ------------------------------------------------------------------ box payloads

export const viewerIdentitySchema = z.strictObject({
  viewerKey: fixedB64u(32),
  sig: fixedB64u(64),
});
export const deviceIdentitySchema = z.strictObject({
  deviceKey: fixedB64u(32),
  sig: fixedB64u(64),
  role: z.enum(['owner', 'member']),
});
export type ViewerIdentityPayload = z.infer<typeof viewerIdentitySchema>;
export type DeviceIdentityPayload = z.infer<typeof deviceIdentitySchema>;

/** Decode the JSON inside a box with the given schema; typed ProtocolErrors only. */
export function decodeBoxPayload<S extends z.ZodType>(
  plaintext: Uint8Array,
  schema: S,
  what: string,
): z.infer<S> {
  const value = parseJsonLimited(plaintext, MAX_BOX_PLAINTEXT, what);
  const r = schema.safeParse(value);
  if (!r.success) throw schemaError(r.error, what);
  return r.data;
}
