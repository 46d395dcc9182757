/**
 * The server key the agent met first (`server-key` in its data directory, 0600), as ssh keeps
 * known_hosts: the agent then talks only to a server that names this key and proves it holds it
 * (review R15). A changed key stops the agent with a clear error; `--accept-server-key` (or
 * deleting the file) accepts a new one after a reinstall.
 */
import { join } from 'node:path';
import { ConfigError, isId, type ServerKeyPin } from '@hearth/protocol';
import { readPrivateFile, writePrivateFile } from './files.js';

export const serverKeyPath = (dataDir: string) => join(dataDir, 'server-key');

/** The pin file of `dataDir`; `accept` (an hsk_ key) replaces what it holds. */
export function fileServerKeyPin(dataDir: string, accept?: string): ServerKeyPin {
  const path = serverKeyPath(dataDir);
  if (accept !== undefined) {
    if (!isId('serverKey', accept))
      throw new ConfigError(
        'E_CONFIG',
        `--accept-server-key must be a server key (hsk_…), got ${JSON.stringify(accept)}`,
      );
    writePrivateFile(path, `${accept}\n`);
  }
  let cached: string | undefined;
  return {
    get() {
      if (cached) return cached;
      const raw = readPrivateFile(path, 256)?.toString('utf8').trim();
      if (raw === undefined || raw === '') return undefined;
      if (!isId('serverKey', raw))
        throw new ConfigError(
          'E_CONFIG',
          `${path} does not hold a server key (hsk_…): delete it to pin the server anew`,
        );
      cached = raw;
      return raw;
    },
    set(key: string) {
      writePrivateFile(path, `${key}\n`);
      cached = key;
    },
  };
}
