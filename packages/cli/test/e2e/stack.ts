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
import type { Page } from 'playwright-core';

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
  const child = spawn(process.execPath, [HEARTH_BIN, ...args], {
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

export async function until<T>(
  what: string,
  fn: () => T | Promise<T>,
  timeoutMs = 20_000,
  stepMs = 100,
): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await fn();
    if (last) return last as NonNullable<T>;
    if (Date.now() > end)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Chromium for loopback WebRTC: 127.0.0.1 candidates, as addresses rather than mDNS names. */
export function launchLoopbackChromium(): Promise<ChromiumHandle> {
  return launchChromium({
    allowLoopbackInPeerConnection: true,
    args: ['--disable-features=WebRtcHideLocalIpsWithMdns'],
  });
}

// ---------------------------------------------------------------- the viewer, as a person uses it

interface Hook {
  state: string;
  framesDecoded(): number;
  lastError?: { code: string; message: string; attack?: boolean };
  pairedDevices(): { deviceId: string; deviceKey: string; role: string }[];
  viewerKey: string;
  rendezvous: string;
}
type W = Window & { __hearth?: Hook };

export async function openApp(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForSelector('html[data-ready="true"]', { timeout: 20_000 });
}

/** Type a manual code into the pairing form and submit it; returns the pairing status text when it settles. */
export async function submitCode(page: Page, code: string): Promise<void> {
  if (!(await page.isVisible('#pair-form'))) {
    await page.evaluate(() => {
      location.hash = '#/pair';
    });
    await page.waitForSelector('#pair-form');
  }
  await page.fill('#pair-code', code);
  await page.click('#pair-submit');
}

export async function pairStatus(page: Page): Promise<string> {
  return (await page.textContent('#pair-status').catch(() => '')) ?? '';
}

export async function hook(
  page: Page,
): Promise<{ state: string; frames: number; error?: Hook['lastError']; rendezvous: string }> {
  return page.evaluate(() => {
    const h = (window as W).__hearth;
    return {
      state: h?.state ?? 'none',
      frames: h?.framesDecoded() ?? 0,
      ...(h?.lastError ? { error: h.lastError } : {}),
      rendezvous: h?.rendezvous ?? 'none',
    };
  });
}

export async function pairedDevices(
  page: Page,
): Promise<{ deviceId: string; deviceKey: string; role: string }[]> {
  return page.evaluate(() => (window as W).__hearth?.pairedDevices() ?? []);
}

export function liveHash(deviceId: string, camera: string): string {
  return `#/live/${encodeURIComponent(deviceId)}/${encodeURIComponent(camera)}`;
}

/** Open the live view of a camera and wait until the status line leaves "connecting". */
export async function watch(page: Page, deviceId: string, camera: string): Promise<void> {
  await page.evaluate(
    (h) => {
      location.hash = h;
    },
    liveHash(deviceId, camera),
  );
  await page.waitForSelector('#status');
}

/** Wait until the live view has decoded frames and keeps decoding more; returns [first, later] counts. */
export async function framesFlow(page: Page, timeoutMs = 30_000): Promise<[number, number]> {
  const first = await until(
    'decoded frames',
    async () => {
      const h = await hook(page);
      if (h.state === 'attack' || h.state === 'refused')
        throw new Error(`live view ended in ${h.state}: ${JSON.stringify(h.error)}`);
      return h.frames > 0 ? h.frames : 0;
    },
    timeoutMs,
  );
  await new Promise((r) => setTimeout(r, 1500));
  const later = (await hook(page)).frames;
  return [first, later];
}

/** Pin a device in this origin's IndexedDB as pairing would have, without pairing (to test refusal). */
export async function seedDevice(
  page: Page,
  rec: { deviceId: string; deviceKey: string; server: string },
): Promise<void> {
  await page.evaluate(async (r) => {
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const q = indexedDB.open('hearth');
      q.onsuccess = () => res(q.result);
      q.onerror = () => rej(q.error);
    });
    await new Promise<void>((res, rej) => {
      const t = db.transaction('devices', 'readwrite');
      t.objectStore('devices').put({ ...r, role: 'owner', label: 'Not mine', pairedAt: Date.now() });
      t.oncomplete = () => res();
      t.onerror = () => rej(t.error);
    });
    db.close();
  }, rec);
}
