/**
 * Small, careful file helpers for the agent's data directory: private files (mode 0600) written
 * atomically (temp file, fsync, rename), so a crash never leaves a half-written key or ACL.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from '@hearth/protocol';

/** Write `data` to `path` atomically with mode 0600. */
export function writePrivateFile(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Read a private file, refusing one that others can read or write (a key file with mode 0644
 * is treated as compromised configuration, as ssh does).
 */
export function readPrivateFile(path: string): Buffer | undefined {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  if ((st.mode & 0o077) !== 0) {
    throw new ConfigError(
      'E_CONFIG',
      `${path} is accessible by other users (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
    );
  }
  return readFileSync(path);
}
