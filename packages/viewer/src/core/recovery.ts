/**
 * The recovery key: an Ed25519 key made at pairing whose public half the ACL holds (`recovery`,
 * household contract part A). It may only add or remove owners (or set a new recovery key), so a
 * household that lost every owner phone can get back in. The private half is shown once, for
 * printing, as text: `HRK2-` then the device's public key (32 bytes: a new phone pins it, and checks
 * it against nothing else, as the printed sheet is what the owner trusts), the 32-byte seed and a
 * 2-byte check over both, in groups of 4 base32 characters; this browser keeps no copy.
 */
import { b32, concat, constantTimeEqual, fromB32, label, sha256, utf8 } from '@hearth/protocol';

const PREFIX = 'HRK2';

async function check(deviceKey: Uint8Array, seed: Uint8Array): Promise<Uint8Array> {
  return (await sha256(concat(utf8(label('recovery/check')), deviceKey, seed))).subarray(0, 2);
}

/** The printable text of a recovery seed for the device with public key `deviceKey`. */
export async function recoveryText(seed: Uint8Array, deviceKey: Uint8Array): Promise<string> {
  if (seed.length !== 32) throw new RangeError('recovery seed must be 32 bytes');
  if (deviceKey.length !== 32) throw new RangeError('device key must be 32 bytes');
  const body = b32(concat(deviceKey, seed, await check(deviceKey, seed))).toUpperCase();
  return `${PREFIX}-${body.match(/.{1,4}/g)!.join('-')}`;
}

/** Read a typed recovery key back (spaces, dashes and case ignored); undefined if mistyped. */
export async function parseRecoveryText(
  text: string,
): Promise<{ seed: Uint8Array; deviceKey: Uint8Array } | undefined> {
  if (text.length > 1024) return undefined;
  const raw = text.toUpperCase().replace(/[\s-]+/g, '');
  if (!raw.startsWith(PREFIX)) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = fromB32(raw.slice(PREFIX.length));
  } catch {
    return undefined;
  }
  if (bytes.length !== 66) return undefined;
  const deviceKey = bytes.slice(0, 32);
  const seed = bytes.slice(32, 64);
  return constantTimeEqual(await check(deviceKey, seed), bytes.subarray(64))
    ? { seed, deviceKey }
    : undefined;
}
