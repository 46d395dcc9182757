/**
 * The recovery key: an Ed25519 key made at pairing whose public half the ACL holds (`recovery`,
 * household contract part A). It may only add or remove owners (or set a new recovery key), so a
 * household that lost every owner phone can get back in. The private half is shown once, for
 * printing, as text: `HRK1-` then the 32-byte seed and a 2-byte check, in groups of 4 base32
 * characters; this browser keeps no copy.
 */
import { b32, concat, constantTimeEqual, fromB32, label, sha256, utf8 } from '@hearth/protocol';

async function check(seed: Uint8Array): Promise<Uint8Array> {
  return (await sha256(concat(utf8(label('recovery/check')), seed))).subarray(0, 2);
}

/** The printable text of a recovery seed. */
export async function recoveryText(seed: Uint8Array): Promise<string> {
  if (seed.length !== 32) throw new RangeError('recovery seed must be 32 bytes');
  const body = b32(concat(seed, await check(seed))).toUpperCase();
  return `HRK1-${body.match(/.{1,4}/g)!.join('-')}`;
}

/** Read a typed recovery key back (spaces, dashes and case ignored); undefined if mistyped. */
export async function parseRecoveryText(text: string): Promise<Uint8Array | undefined> {
  const raw = text.toUpperCase().replace(/[\s-]+/g, '');
  if (!raw.startsWith('HRK1')) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = fromB32(raw.slice(4));
  } catch {
    return undefined;
  }
  if (bytes.length !== 34) return undefined;
  const seed = bytes.slice(0, 32);
  return constantTimeEqual(await check(seed), bytes.subarray(32)) ? seed : undefined;
}
