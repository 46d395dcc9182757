/**
 * Factory reset (S8): erase the device's data on the server (every sealed blob and ticket of its
 * blob store, signed by the device key, so only this device or one of its owners can ask), then
 * everything in its data directory: the device key (the next start makes a new device, with a new
 * ID), the ACL, the reader keys, push subscriptions, the outbox and the index of uploads.
 *
 * The server comes first: when it cannot be reached, or refuses, nothing local is touched (the key
 * is what authorizes the erase, so deleting it first would strand the server-side data). `localOnly`
 * skips the server on purpose, and says so in the result.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '@hearth/protocol';
import { BlobClient } from '../events/blob-client.js';
import { loadOrCreateIdentity } from './identity.js';

/** Options of {@link factoryReset}. */
export interface FactoryResetOptions {
  dataDir: string;
  /** The server the device uploads to (its blob store is erased). Not needed with `localOnly`. */
  serverUrl?: string;
  /** Skip the server: its copy of the device's blobs stays until the owner erases it. */
  localOnly?: boolean;
  fetch?: typeof fetch;
}

/** What {@link factoryReset} did. */
export interface FactoryResetResult {
  deviceId: string;
  /** True when the server erased the device's blobs. */
  serverErased: boolean;
  /** Entries removed from the data directory. */
  removed: string[];
}

export async function factoryReset(o: FactoryResetOptions): Promise<FactoryResetResult> {
  if (!existsSync(join(o.dataDir, 'device.key')))
    throw new ConfigError('E_CONFIG', `no device identity in ${o.dataDir}: nothing to reset`);
  const id = await loadOrCreateIdentity(o.dataDir);
  let serverErased = false;
  if (!o.localOnly) {
    if (!o.serverUrl)
      throw new ConfigError(
        'E_CONFIG',
        'factory reset: the server URL is needed to erase the server-side data',
      );
    const client = new BlobClient({
      serverUrl: o.serverUrl,
      signer: id.signer,
      ...(o.fetch ? { fetch: o.fetch } : {}),
    });
    await client.eraseAll();
    serverErased = true;
  }
  const removed: string[] = [];
  for (const name of readdirSync(o.dataDir)) {
    rmSync(join(o.dataDir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return { deviceId: id.deviceId, serverErased, removed: removed.sort() };
}
