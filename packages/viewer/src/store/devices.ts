/**
 * Devices this browser has paired with, in IndexedDB. The pinned device key is what every session
 * answer is verified against (S4); the label is the user's own name for the device and never
 * leaves this browser (S8).
 */
import { type DeviceId, decodeId, deviceIdMatches, isId } from '@hearth/protocol';
import type { Db } from './idb.js';

/** What the device records need of the database (the {@link Db} in the app; a map in unit tests). */
export type DeviceRecords = Pick<Db, 'all' | 'get' | 'put' | 'delete'>;

/** A paired device. */
export interface PairedDevice {
  deviceId: DeviceId;
  /** Device public key, `hdk_…` text, pinned at pairing. */
  deviceKey: string;
  /** Our role on it (`owner`, `member`, `guest`). */
  role: string;
  /** Origin of the rendezvous server it was paired through. */
  server: string;
  /** User-given label, local only. */
  label: string;
  pairedAt: number;
}

/**
 * Check a pairing result before pinning it: the device key must be a valid `hdk_` key and must
 * hash to the device ID we set out to pair with (the ID came from the QR code or from the code
 * lookup; the key came through the PAKE-authenticated channel).
 */
export function checkPin(deviceId: string, deviceKey: string): boolean {
  if (!isId('deviceId', deviceId)) return false;
  let raw: Uint8Array;
  try {
    raw = decodeId('deviceKey', deviceKey);
  } catch {
    return false;
  }
  return deviceIdMatches(deviceId, raw);
}

/** The pinned key's raw bytes. */
export function pinnedKeyBytes(d: PairedDevice): Uint8Array {
  return decodeId('deviceKey', d.deviceKey);
}

export async function listDevices(db: DeviceRecords): Promise<PairedDevice[]> {
  const all = await db.all<PairedDevice>('devices');
  // Records are re-checked on load: a tampered record must not become a pinned key.
  return all.filter((d) => checkPin(d.deviceId, d.deviceKey)).sort((a, b) => a.pairedAt - b.pairedAt);
}

export async function getDevice(db: DeviceRecords, deviceId: string): Promise<PairedDevice | undefined> {
  const d = await db.get<PairedDevice>('devices', deviceId);
  return d && checkPin(d.deviceId, d.deviceKey) ? d : undefined;
}

/** Store a pairing result. Refuses a key that does not hash to the device ID. */
export async function saveDevice(db: DeviceRecords, d: PairedDevice): Promise<void> {
  if (!checkPin(d.deviceId, d.deviceKey)) throw new Error('device key does not match the device ID');
  await db.put('devices', d);
}

export async function renameDevice(db: DeviceRecords, deviceId: string, label: string): Promise<void> {
  const d = await getDevice(db, deviceId);
  if (d) await db.put('devices', { ...d, label: label.slice(0, 64) });
}

export async function forgetDevice(db: DeviceRecords, deviceId: string): Promise<void> {
  await db.delete('devices', deviceId);
}
