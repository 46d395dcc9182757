/**
 * The pairing state file (`pairing.json`, mode 0600): the {@link PairingGuard}'s snapshot, written
 * after every pairing step so that a restart does not refill the attempt budget. Its schema and
 * decoder live in protocol (`decodePairingState`, beside the guard); this module only does the I/O.
 */
import { join } from 'node:path';
import {
  ConfigError,
  decodePairingState,
  encodePairingState,
  type PairingGuardSnapshot,
  type PairingState,
} from '@hearth/protocol';
import { readPrivateFile, writePrivateFile } from './files.js';

/** The state file's name inside the agent's data directory. */
export const PAIRING_STATE_FILE = 'pairing.json';

/** Path of the pairing state file in `dataDir`. */
export function pairingStatePath(dataDir: string): string {
  return join(dataDir, PAIRING_STATE_FILE);
}

/** Load a persisted guard snapshot; undefined when there is none. A corrupt file throws E_CONFIG. */
export function loadPairingState(path: string): PairingState | undefined {
  const raw = readPrivateFile(path);
  if (!raw) return undefined;
  try {
    return decodePairingState(raw);
  } catch {
    throw new ConfigError('E_CONFIG', `${path} is not a pairing state file`);
  }
}

/** Write the guard snapshot to `path` (atomically, mode 0600). */
export function savePairingState(path: string, s: PairingGuardSnapshot): void {
  writePrivateFile(path, encodePairingState(s));
}
