/**
 * Invite links (household contract part C): `<viewer origin>/#/invite/<payload>`, the payload
 * b64u(canonical JSON `{v:1, d, dk, s, exp}`), at most 512 characters. The secret `s` lives only in
 * the URL fragment (never sent to the server); the device knows the invite by `inviteId(s)` and
 * checks a redeemer's `inviteProof(s, viewerKey, deviceId)`.
 *
 * TODO(merge): import encodeInviteLink / decodeInviteLink / inviteId / inviteProof from protocol
 * (invite.ts) and delete this file; the byte layouts below follow the contract.
 */
import {
  b64u,
  canonicalize,
  concat,
  decodeId,
  fromB64u,
  fromUtf8Exact,
  hex,
  hkdfSha256,
  hmacSha256,
  info,
  label,
  parseJson,
  sha256,
  utf8,
} from '@hearth/protocol';
import { checkPin } from '../store/devices.js';

/** Longest invite payload. */
export const MAX_INVITE_PAYLOAD = 512;

export interface InvitePayload {
  v: 1;
  /** Device ID. */
  d: string;
  /** Device key text (`hdk_…`), pinned by the invitee from the link. */
  dk: string;
  /** The 32-byte secret, b64u. */
  s: string;
  /** Link expiry, ms since the epoch. */
  exp: number;
}

/** The link for an invite. */
export function inviteLink(origin: string, p: InvitePayload): string {
  return `${origin}/#/invite/${b64u(utf8(canonicalize(p)))}`;
}

/** Read an invite payload (the part after `#/invite/`); undefined when it is not a valid one. */
export function parseInvitePayload(payload: string): InvitePayload | undefined {
  if (payload.length > MAX_INVITE_PAYLOAD || !/^[A-Za-z0-9_-]+$/.test(payload)) return undefined;
  try {
    const o = parseJson(fromUtf8Exact(fromB64u(payload, MAX_INVITE_PAYLOAD)), MAX_INVITE_PAYLOAD) as Record<
      string,
      unknown
    >;
    if (typeof o !== 'object' || o === null || Object.keys(o).sort().join() !== 'd,dk,exp,s,v')
      return undefined;
    const { v, d, dk, s, exp } = o;
    if (v !== 1 || typeof d !== 'string' || typeof dk !== 'string' || typeof s !== 'string') return undefined;
    if (typeof exp !== 'number' || !Number.isSafeInteger(exp) || exp < 0) return undefined;
    if (fromB64u(s, 32).length !== 32 || !checkPin(d, dk)) return undefined;
    return { v: 1, d, dk, s, exp };
  } catch {
    return undefined;
  }
}

/** `hex(SHA-256(label('invite/id') || s))[0..32]`. */
export async function inviteId(s: Uint8Array): Promise<string> {
  return hex(await sha256(concat(utf8(label('invite/id')), s))).slice(0, 32);
}

/** `b64u(HMAC-SHA-256(HKDF(s, info 'invite/proof'), viewerKey || utf8(deviceId)))`. */
export async function inviteProof(s: Uint8Array, viewerKey: string, deviceId: string): Promise<string> {
  const k = await hkdfSha256(s, new Uint8Array(0), info('invite/proof'), 32);
  return b64u(await hmacSha256(k, concat(decodeId('userKey', viewerKey), utf8(deviceId))));
}
