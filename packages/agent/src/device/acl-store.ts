/** Persistence of the device's ACL in `<dataDir>/acl.json` (mode 0600, atomic writes). */
import { join } from 'node:path';
import { Acl, type AclOptions, ConfigError, HearthError } from '@hearth/protocol';
import { readPrivateFile, writePrivateFile } from './files.js';

/**
 * Load the ACL (version 1 or 2; saved as 2), evaluated in `o.timeZone`, or undefined while the
 * device is unpaired. A tampered file is refused (throws).
 */
export async function loadAcl(dataDir: string, now: number, o: AclOptions = {}): Promise<Acl | undefined> {
  const path = join(dataDir, 'acl.json');
  const raw = readPrivateFile(path);
  if (!raw) return undefined;
  try {
    return await Acl.load(new Uint8Array(raw), now, o);
  } catch (e) {
    // Never treat a damaged ACL as "no owner yet": that would open pairing to a new owner.
    if (e instanceof HearthError)
      throw new ConfigError(e.code, `${path} is not a valid ACL: ${e.message}`, { cause: e });
    throw e;
  }
}

/** Persist the ACL. */
export function saveAcl(dataDir: string, acl: Acl): void {
  writePrivateFile(join(dataDir, 'acl.json'), JSON.stringify(acl.toJSON()));
}
