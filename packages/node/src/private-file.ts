/**
 * Private files: keys, secrets and device state that only this user may read, with one rule for
 * every Hearth process (agent and server alike).
 *
 * - Written atomically: a temporary file beside the target (created exclusively, mode 0600), the
 *   data written in full and fsynced, then renamed over the target, then the directory fsynced so
 *   the rename itself survives a power cut. A crash at any point leaves the old file or the new
 *   one, never a mix or an empty file.
 * - Read only when private: a file that group or others may read or write (0644, 0666, 0640...)
 *   is refused with an error that names the file and the fix (`chmod 600 <file>`), as ssh does
 *   with a private key. It is never silently chmod-ed: loose permissions mean someone else may
 *   already have the secret, and the operator must know.
 */

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConfigError } from '@hearth/protocol';

/**
 * The file system calls an atomic write makes, in order. Injected only by tests (to record the
 * order, or to crash between two steps); everything else uses {@link nodeFileIo}.
 */
export interface PrivateFileIo {
  mkdirp(dir: string): void;
  /** Create `path` exclusively with mode 0600 and return its descriptor. */
  openNew(path: string): number;
  write(fd: number, data: Uint8Array): void;
  fsync(fd: number): void;
  close(fd: number): void;
  rename(from: string, to: string): void;
  /** fsync a directory (makes a rename in it durable). */
  fsyncDir(dir: string): void;
  unlink(path: string): void;
}

/** The real file system. */
export const nodeFileIo: PrivateFileIo = {
  mkdirp(dir) {
    // A new directory's own entry must be durable too: fsync the parent of the first one made.
    const first = fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (first) nodeFileIo.fsyncDir(dirname(first));
  },
  openNew(path) {
    const fd = fs.openSync(path, 'wx', 0o600);
    // The umask can only take bits away; set exactly 0600 whatever it is.
    if (process.platform !== 'win32') fs.fchmodSync(fd, 0o600);
    return fd;
  },
  write(fd, data) {
    let off = 0;
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
  },
  fsync(fd) {
    fs.fsyncSync(fd);
  },
  close(fd) {
    fs.closeSync(fd);
  },
  rename(from, to) {
    fs.renameSync(from, to);
  },
  fsyncDir(dir) {
    if (process.platform === 'win32') return; // directories cannot be opened for fsync there
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } catch (e) {
      // Some file systems cannot fsync a directory; the rename is as durable as they allow.
      if (!['EINVAL', 'ENOTSUP', 'EPERM'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
    } finally {
      fs.closeSync(fd);
    }
  },
  unlink(path) {
    fs.rmSync(path, { force: true });
  },
};

/**
 * Write `data` to `path` atomically with mode 0600 (see the module comment). The directory is
 * created with mode 0700 when missing.
 */
export function writePrivateFile(
  path: string,
  data: string | Uint8Array,
  io: PrivateFileIo = nodeFileIo,
): void {
  const dir = dirname(path);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  io.mkdirp(dir);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = io.openNew(tmp);
  try {
    io.write(fd, bytes);
    io.fsync(fd);
  } catch (e) {
    io.close(fd);
    io.unlink(tmp);
    throw e;
  }
  io.close(fd);
  try {
    io.rename(tmp, path);
  } catch (e) {
    io.unlink(tmp);
    throw e;
  }
  io.fsyncDir(dir);
}

/** The error for a private file that others may read or write. */
export function loosePermissionsError(path: string, mode: number): ConfigError {
  const m = (mode & 0o777).toString(8).padStart(4, '0');
  const who = mode & 0o007 ? 'all users' : 'its group';
  return new ConfigError(
    'E_CONFIG',
    `${path} has mode ${m}: ${who} may read or change it, and it holds a secret. Hearth will not use it: run chmod 600 ${path} (and if others could have read it, treat the secret as leaked: delete the file to make a new one)`,
  );
}

/** Largest private file read (keys, secrets, ACLs and state are all far smaller). */
export const MAX_PRIVATE_FILE = 1 << 20;

/**
 * Read a private file, or `undefined` when it does not exist. Refuses a file that group or others
 * may access (see {@link loosePermissionsError}), one that is not a regular file, and one larger
 * than `maxBytes`. The mode is checked on the opened file, so a swap between check and read is
 * caught.
 */
export function readPrivateFile(path: string, maxBytes = MAX_PRIVATE_FILE): Buffer | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError('E_CONFIG', `${path} cannot be read: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new ConfigError('E_CONFIG', `${path} is not a regular file`);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) throw loosePermissionsError(path, st.mode);
    if (st.size > maxBytes)
      throw new ConfigError(
        'E_CONFIG',
        `${path} is ${st.size} bytes, more than the ${maxBytes} a private file may hold`,
      );
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = fs.readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return off === buf.length ? buf : buf.subarray(0, off);
  } finally {
    fs.closeSync(fd);
  }
}

/** Create `dir` (and parents) with mode 0700 when missing; a clear error when it cannot be. */
export function ensurePrivateDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new ConfigError(
      'E_CONFIG',
      `${dir} cannot be created: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}
