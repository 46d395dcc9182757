import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '@hearth/protocol';
import { nodeFileIo, type PrivateFileIo, readPrivateFile, writePrivateFile } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'hearth-node-files-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const dir = () => {
  const d = join(root, `d${n++}`);
  mkdirSync(d, { mode: 0o700 });
  return d;
};
const mode = (p: string) => statSync(p).mode & 0o777;

/** An io that records every call (and does it for real). */
function recording(): { io: PrivateFileIo; calls: string[] } {
  const calls: string[] = [];
  const fds = new Map<number, string>();
  const rec =
    <A extends unknown[], R>(name: string | ((...a: A) => string), f: (...a: A) => R) =>
    (...a: A): R => {
      calls.push(typeof name === 'string' ? name : name(...a));
      return f(...a);
    };
  const io: PrivateFileIo = {
    mkdirp: rec('mkdirp', nodeFileIo.mkdirp),
    openNew: (p) => {
      const fd = nodeFileIo.openNew(p);
      fds.set(fd, p);
      calls.push('open tmp');
      return fd;
    },
    write: rec('write tmp', nodeFileIo.write),
    fsync: rec((fd: number) => `fsync ${fds.has(fd) ? 'tmp' : '?'}`, nodeFileIo.fsync),
    close: rec('close tmp', nodeFileIo.close),
    rename: rec('rename', nodeFileIo.rename),
    fsyncDir: rec('fsync dir', nodeFileIo.fsyncDir),
    unlink: rec('unlink', nodeFileIo.unlink),
  };
  return { io, calls };
}

/** The durability rule: the data is on disk before the rename, and the rename before returning. */
function assertDurableOrder(calls: string[]): void {
  const i = (c: string) => calls.indexOf(c);
  assert.ok(i('write tmp') >= 0 && i('rename') >= 0, `writes then renames: ${calls}`);
  assert.ok(
    i('fsync tmp') > i('write tmp') && i('fsync tmp') < i('rename'),
    `fsync of the file before the rename: ${calls}`,
  );
  assert.ok(i('fsync dir') > i('rename'), `fsync of the directory after the rename: ${calls}`);
}

describe('writePrivateFile', () => {
  it('creates the file with mode 0600 whatever the umask, and the directory with 0700', () => {
    const old = process.umask(0);
    try {
      const p = join(dir(), 'sub', 'secret');
      writePrivateFile(p, 'hello');
      assert.equal(readFileSync(p, 'utf8'), 'hello');
      assert.equal(mode(p), 0o600);
      assert.equal(mode(join(p, '..')), 0o700);
    } finally {
      process.umask(old);
    }
  });

  it('replaces an existing file (even a 0644 one) by a 0600 one, leaving no temporary file', () => {
    const d = dir();
    const p = join(d, 'acl.json');
    writeFileSync(p, 'old', { mode: 0o644 });
    chmodSync(p, 0o644);
    writePrivateFile(p, new Uint8Array([1, 2, 3]));
    assert.deepEqual([...readFileSync(p)], [1, 2, 3]);
    assert.equal(mode(p), 0o600);
    assert.deepEqual(readdirSync(d), ['acl.json']);
  });

  it('fsyncs the file before the rename and the directory after it', () => {
    const { io, calls } = recording();
    writePrivateFile(join(dir(), 'k'), 'x', io);
    assertDurableOrder(calls);
    assert.deepEqual(calls, [
      'mkdirp',
      'open tmp',
      'write tmp',
      'fsync tmp',
      'close tmp',
      'rename',
      'fsync dir',
    ]);
  });

  it('control: the order check fails a writer that renames without fsync (as the server did)', () => {
    const { io, calls } = recording();
    const p = join(dir(), 'k');
    // The server's former writeSecret: write a temporary file, rename it, nothing synced.
    const fd = io.openNew(`${p}.tmp`);
    io.write(fd, Buffer.from('x'));
    io.close(fd);
    io.rename(`${p}.tmp`, p);
    assert.throws(() => assertDurableOrder(calls), /fsync of the file before the rename/);
  });

  it('a failed write leaves the old file and no temporary file', () => {
    const d = dir();
    const p = join(d, 'k');
    writePrivateFile(p, 'old');
    const io: PrivateFileIo = {
      ...nodeFileIo,
      write: () => {
        throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      },
    };
    assert.throws(() => writePrivateFile(p, 'new', io), /no space/);
    assert.equal(readFileSync(p, 'utf8'), 'old');
    assert.deepEqual(readdirSync(d), ['k']);
  });

  const crashWriter = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));
  const crash = (how: 'atomic' | 'naive', p: string, content: string) => {
    const r = spawnSync(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', crashWriter, how, p, content],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(r.signal, 'SIGKILL', `the writer died by SIGKILL (status ${r.status}, ${r.stderr})`);
  };
  const NEW = JSON.stringify({ v: 2, owner: 'huk_new', members: ['a', 'b', 'c'] });
  const OLD = JSON.stringify({ v: 1, owner: 'huk_old', members: ['a'] });

  it('a crash between the write and the rename leaves the old file intact (a real SIGKILL)', () => {
    const d = dir();
    const p = join(d, 'acl.json');
    writePrivateFile(p, OLD);
    crash('atomic', p, NEW);
    assert.equal(readFileSync(p, 'utf8'), OLD, 'the old file, whole');
    assert.equal(mode(p), 0o600);
    // The fsynced temporary file is left behind (the new data, complete, never the target).
    const left = readdirSync(d).filter((f) => f !== 'acl.json');
    assert.equal(left.length, 1);
    assert.match(left[0] ?? '', /^\.acl\.json\.\d+\.[0-9a-f]{8}\.tmp$/);
    assert.equal(readFileSync(join(d, left[0] ?? ''), 'utf8'), NEW);
    // The next write works.
    writePrivateFile(p, NEW);
    assert.equal(readPrivateFile(p)?.toString('utf8'), NEW);
  });

  it('control: the same crash during an in-place write leaves a damaged file', () => {
    const p = join(dir(), 'acl.json');
    writePrivateFile(p, OLD);
    crash('naive', p, NEW);
    const got = readFileSync(p, 'utf8');
    assert.notEqual(got, OLD);
    assert.notEqual(got, NEW);
    assert.throws(() => JSON.parse(got));
  });
});

describe('readPrivateFile', () => {
  it('reads a 0600 (or 0400) file; a missing file is undefined', () => {
    const d = dir();
    for (const m of [0o600, 0o400]) {
      const p = join(d, `f${m.toString(8)}`);
      writeFileSync(p, 'secret');
      chmodSync(p, m);
      assert.equal(readPrivateFile(p)?.toString('utf8'), 'secret');
    }
    assert.equal(readPrivateFile(join(d, 'missing')), undefined);
  });

  for (const m of [0o644, 0o666, 0o640, 0o604, 0o620]) {
    it(`refuses mode ${m.toString(8).padStart(4, '0')} with an error naming the file and the fix`, () => {
      const p = join(dir(), 'server.key');
      writeFileSync(p, 'secret');
      chmodSync(p, m);
      assert.throws(
        () => readPrivateFile(p),
        (e: Error & { code?: string }) => {
          assert.ok(e instanceof ConfigError);
          assert.equal(e.code, 'E_CONFIG');
          assert.ok(e.message.includes(`${p} has mode ${m.toString(8).padStart(4, '0')}`), e.message);
          assert.ok(e.message.includes(`chmod 600 ${p}`), e.message);
          return true;
        },
      );
      assert.equal(mode(p), m, 'never chmod-ed behind the operator’s back');
    });
  }

  it('refuses a directory and a file over the size limit', () => {
    const d = dir();
    assert.throws(() => readPrivateFile(d), /not a regular file/);
    const p = join(d, 'big');
    writeFileSync(p, Buffer.alloc(100), { mode: 0o600 });
    assert.throws(() => readPrivateFile(p, 99), /100 bytes, more than the 99/);
    assert.equal(readPrivateFile(p, 100)?.length, 100);
  });
});
