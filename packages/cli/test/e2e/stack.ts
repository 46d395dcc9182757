/**
 * Helpers for the full-stack end-to-end tests: the real `hearth` command as a child process, the
 * viewer app driven in Debian's Chromium, and process inspection (ffmpeg count).
 *
 * These tests expect to run inside a network namespace of their own with only `lo` (scripts/test.mjs
 * arranges it when it runs as root), so no ICE candidate can point off the machine.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type ChromiumHandle, launchChromium } from '@hearth/testkit';

export { descendantsNamed as descendants } from '@hearth/testkit';

export const HEARTH_BIN = fileURLToPath(new URL('../../bin/hearth.js', import.meta.url));

export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything printed so far (stdout + stderr). */
  output(): string;
  /** Resolves with the first match of `re` in the output. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or signal name). */
  exited(): Promise<number | string>;
  kill(sig?: NodeJS.Signals): void;
}

/** Run `hearth <args>` (from source through tsx) as a child process. */
export function hearth(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  return spawnProc(process.execPath, [HEARTH_BIN, ...args], env);
}

/** Run `hearth <args>` on a pseudo-terminal (util-linux `script`), as a person at a terminal does. */
export function hearthOnTty(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const q = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
  const cmd = ['exec', process.execPath, HEARTH_BIN, ...args].map(q).join(' ');
  return spawnProc('script', ['-qfec', cmd, '/dev/null'], env);
}

function spawnProc(file: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(file, args, {
    env: { ...process.env, HEARTH_FROM_SOURCE: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString('utf8');
    for (const w of [...waiters]) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exit = new Promise<number | string>((r) => child.on('exit', (code, sig) => r(code ?? sig ?? -1)));
  return {
    child,
    pid: child.pid ?? 0,
    output: () => out,
    waitFor(re, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(re);
          if (m) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${re} in:\n${out.slice(-3000)}`));
        }, timeoutMs);
        waiters.add(check);
        void exit.then((c) => {
          if (!waiters.has(check)) return;
          waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`process exited (${c}) before ${re}:\n${out.slice(-3000)}`));
        });
        check();
      });
    },
    exited: () => exit,
    kill(sig = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    },
  };
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** Chromium for loopback WebRTC: 127.0.0.1 candidates, as addresses rather than mDNS names. */
export function launchLoopbackChromium(): Promise<ChromiumHandle> {
  return launchChromium({
    allowLoopbackInPeerConnection: true,
    args: ['--disable-features=WebRtcHideLocalIpsWithMdns'],
  });
}

// ---------------------------------------------------------------- the viewer, as a person uses it
// The one viewer driver, shared by every end-to-end suite (packages/testkit/src/viewer-driver.ts).
export {
  framesFlow,
  type HookSnapshot,
  hook,
  liveHash,
  openApp,
  pairedDevices,
  pairStatus,
  seedDevice,
  submitCode,
  until,
  waitForState,
  watch,
} from '@hearth/testkit';
