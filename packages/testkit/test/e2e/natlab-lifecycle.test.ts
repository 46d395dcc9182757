// NAT lab lifecycle: parallel labs, clean-up after a crash (cleanupStale) and on SIGINT, and that a live
// lab is never taken for a stale one. Needs root, ip and nft.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NatLab, probeMapping, startReflector } from '@hearth/testkit';
import { namespacesWithPrefix, pidAlive } from './helpers.js';

const avail = await NatLab.available();
const skip = avail.ok ? false : avail.reason;
const CHILD = fileURLToPath(new URL('./lab-child.ts', import.meta.url));
const testPrefix = (): string => `hlt${randomBytes(3).toString('hex')}`;

/** Starts lab-child.ts and resolves with its ready line. */
function startChild(prefix: string): Promise<{ child: ChildProcess; sleeper: number }> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', CHILD, prefix], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child not ready: ${err}`));
    }, 20_000);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"ready"'));
      if (line) {
        clearTimeout(timer);
        resolve({ child, sleeper: (JSON.parse(line) as { sleeper: number }).sleeper });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited ${code}: ${err}`));
    });
  });
}

const exited = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

test('two labs run side by side without colliding', { skip, timeout: 60_000 }, async () => {
  const [a, b] = await Promise.all([NatLab.create('bothEim'), NatLab.create('bothEim')]);
  try {
    assert.notEqual(a.prefix, b.prefix);
    const [ra, rb] = await Promise.all([startReflector(a), startReflector(b)]);
    const [ma, mb] = await Promise.all([
      probeMapping(a, a.hosts.viewer, { ip: ra.ip, ports: ra.udpPorts.slice(0, 2) }),
      probeMapping(b, b.hosts.viewer, { ip: rb.ip, ports: rb.udpPorts.slice(0, 2) }),
    ]);
    assert.equal(ma.kind, 'eim');
    assert.equal(mb.kind, 'eim');
  } finally {
    await Promise.all([a.destroy(), b.destroy()]);
  }
  assert.deepEqual(namespacesWithPrefix(a.prefix), []);
  assert.deepEqual(namespacesWithPrefix(b.prefix), []);
});

test('a prefix in use is refused, and cleanupStale spares live labs', { skip, timeout: 60_000 }, async () => {
  const lab = await NatLab.create('sameLan');
  try {
    await assert.rejects(NatLab.create('sameLan', { prefix: lab.prefix }), /in use/);
    assert.deepEqual(await NatLab.cleanupStale(lab.prefix), []);
    assert.deepEqual(await NatLab.cleanupStale(), []);
    assert.equal(namespacesWithPrefix(lab.prefix).length, lab.namespaces.length);
    const r = await lab.exec('agent', 'true', [], { check: true });
    assert.equal(r.code, 0);
  } finally {
    await lab.destroy();
  }
  await lab.destroy(); // idempotent
  assert.throws(() => lab.spawn('agent', 'true'), /destroyed/);
});

test('cleanupStale removes the leftovers of a crashed run', { skip, timeout: 60_000 }, async () => {
  const prefix = testPrefix();
  const { child, sleeper } = await startChild(prefix);
  try {
    assert.equal(namespacesWithPrefix(prefix).length, 6);
    child.kill('SIGKILL'); // a crash: no exit handlers run
    await exited(child);
    assert.equal(namespacesWithPrefix(prefix).length, 6, 'a SIGKILLed run leaves its namespaces');
    assert.ok(pidAlive(sleeper), 'and its processes');
    const removed = await NatLab.cleanupStale(); // registry: owner is dead
    assert.deepEqual(removed.filter((n) => n.startsWith(`${prefix}-`)).length, 6);
    assert.deepEqual(namespacesWithPrefix(prefix), []);
    assert.equal(pidAlive(sleeper), false, 'sleeper killed');
  } finally {
    child.kill('SIGKILL');
    await NatLab.cleanupStale(prefix, { force: true });
  }
});

test('SIGINT tears the lab down', { skip, timeout: 60_000 }, async () => {
  const prefix = testPrefix();
  const { child, sleeper } = await startChild(prefix);
  try {
    assert.equal(namespacesWithPrefix(prefix).length, 6);
    child.kill('SIGINT');
    await exited(child);
    assert.equal(child.signalCode, 'SIGINT', 'the process still dies by the signal');
    assert.deepEqual(namespacesWithPrefix(prefix), []);
    assert.equal(pidAlive(sleeper), false);
  } finally {
    child.kill('SIGKILL');
    await NatLab.cleanupStale(prefix, { force: true });
  }
});
