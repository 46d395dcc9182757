/**
 * The device identity: an Ed25519 key generated on the device at first start and kept in
 * `<dataDir>/device.key` (PKCS#8 PEM, mode 0600: the key file format of @hearth/node; the older
 * 32-byte raw seed still loads and is rewritten). The device ID is derived from its public key.
 */
import { join } from 'node:path';
import { type KeyFileFormat, loadOrCreateKey } from '@hearth/node';
import { type DeviceId, deviceIdFromKey, type WebCryptoSigner } from '@hearth/protocol';

/** A loaded device identity. */
export interface DeviceIdentity {
  signer: WebCryptoSigner;
  deviceId: DeviceId;
  /** True when the key was created by this call. */
  created: boolean;
  /** Set when the key file was in an older format and has been rewritten. */
  migratedFrom?: KeyFileFormat;
  /** Set when rewriting an older key file failed (the key still loaded). */
  migrationError?: string;
}

/** Load the device key from `dataDir`, creating it on first start. */
export async function loadOrCreateIdentity(dataDir: string): Promise<DeviceIdentity> {
  const k = await loadOrCreateKey(join(dataDir, 'device.key'));
  return { ...k, deviceId: deviceIdFromKey(k.signer.publicKey) };
}
