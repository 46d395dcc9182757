/** Persistence of the device's ACL in `<dataDir>/acl.json` (mode 0600, atomic writes). */
import { join } from 'node:path';
import { Acl } from '@hearth/protocol';
import { readPrivateFile, writePrivateFile } from './files.js';

/** Load the ACL, or undefined while the device is unpaired. A tampered file is refused (throws). */
export async function loadAcl(dataDir: string, now: number): Promise<Acl | undefined> {
  const raw = readPrivateFile(join(dataDir, 'acl.json'));
  return raw ? Acl.load(new Uint8Array(raw), now) : undefined;
}

/** Persist the ACL. */
export function saveAcl(dataDir: string, acl: Acl): void {
  writePrivateFile(join(dataDir, 'acl.json'), JSON.stringify(acl.toJSON()));
}
