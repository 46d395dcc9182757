/**
 * The device identity: an Ed25519 key generated on the device at first start and kept in
 * `<dataDir>/device.key` (32-byte seed, mode 0600). The device ID is derived from its public key.
 */
import { join } from 'node:path';
import { ConfigError, type DeviceId, deviceIdFromKey, systemEnv, WebCryptoSigner } from '@hearth/protocol';
import { readPrivateFile, writePrivateFile } from './files.js';

/** A loaded device identity. */
export interface DeviceIdentity {
  signer: WebCryptoSigner;
  deviceId: DeviceId;
  /** True when the key was created by this call. */
  created: boolean;
}

/** Load the device key from `dataDir`, creating it on first start. */
export async function loadOrCreateIdentity(dataDir: string): Promise<DeviceIdentity> {
  const path = join(dataDir, 'device.key');
  const existing = readPrivateFile(path);
  if (existing) {
    if (existing.length !== 32) throw new ConfigError('E_CONFIG', `${path} is not a 32-byte Ed25519 seed`);
    const signer = await WebCryptoSigner.fromSeed(new Uint8Array(existing));
    existing.fill(0);
    return { signer, deviceId: deviceIdFromKey(signer.publicKey), created: false };
  }
  const seed = systemEnv.random(32);
  writePrivateFile(path, seed);
  const signer = await WebCryptoSigner.fromSeed(seed);
  seed.fill(0);
  return { signer, deviceId: deviceIdFromKey(signer.publicKey), created: true };
}
