/**
 * Launches Debian's Chromium through playwright-core, optionally inside a NAT lab namespace.
 *
 * Playwright cannot download browsers here, so it drives `/usr/bin/chromium` (apt: chromium). To run
 * the browser inside a namespace, it launches a wrapper script that records its PID and then does
 * `exec ip netns exec <ns> /usr/bin/chromium "$@"`: the PID stays the same through both execs, so
 * close() can kill the browser's whole process group by that PID.
 */
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core';
import { isAlive, killTree, sleep } from './natlab/proc.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export interface ChromiumOptions {
  /** Network namespace to run the browser in (e.g. `lab.hosts.viewer.netns`). Default: the current one. */
  readonly netns?: string;
  /** Default `/usr/bin/chromium`. */
  readonly executablePath?: string;
  /** Default true. */
  readonly headless?: boolean;
  /** `--use-fake-ui-for-media-stream`: auto-accept camera/mic prompts. Default true. */
  readonly fakeMediaUi?: boolean;
  /** `--use-fake-device-for-media-stream`: synthetic camera and microphone. Default false. */
  readonly fakeMediaDevice?: boolean;
  /** `--ignore-certificate-errors`, for self-signed test servers. Default false. */
  readonly ignoreCertificateErrors?: boolean;
  /** `--allow-loopback-in-peer-connection`: let WebRTC gather 127.0.0.1 candidates. Default false. */
  readonly allowLoopbackInPeerConnection?: boolean;
  /** Extra Chromium flags, appended last. */
  readonly args?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Launch timeout. Default 30 s. */
  readonly timeoutMs?: number;
}

export interface ChromiumHandle {
  readonly browser: Browser;
  /** PID of the browser process (also its process group), or undefined if it could not be read. */
  readonly pid: number | undefined;
  /** The flags passed to Chromium (besides Playwright's own). */
  readonly args: readonly string[];
  readonly netns: string | undefined;
  /** A new page in a new context. */
  newPage(options?: BrowserContextOptions): Promise<Page>;
  newContext(options?: BrowserContextOptions): Promise<BrowserContext>;
  /** Closes the browser, kills its process group by PID, and removes the temp dir. Idempotent. */
  close(): Promise<void>;
}

export const BASE_CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
] as const;

/** Chromium flags for the options (exported for tests and for callers who launch differently). */
export function chromiumFlags(opts: ChromiumOptions = {}): string[] {
  const flags: string[] = BASE_CHROMIUM_FLAGS.filter((f) => f !== '--headless' || opts.headless !== false);
  if (opts.fakeMediaUi !== false) flags.push('--use-fake-ui-for-media-stream');
  if (opts.fakeMediaDevice) flags.push('--use-fake-device-for-media-stream');
  if (opts.ignoreCertificateErrors) flags.push('--ignore-certificate-errors');
  if (opts.allowLoopbackInPeerConnection) flags.push('--allow-loopback-in-peer-connection');
  for (const a of opts.args ?? []) {
    if (a.startsWith('--user-data-dir')) {
      throw new Error('--user-data-dir: every launch already gets a fresh profile from Playwright');
    }
    flags.push(a);
  }
  return flags;
}

/** Whether Chromium and playwright-core are usable here (for `t.skip(reason)`). */
export async function chromiumAvailable(
  executablePath = CHROMIUM_PATH,
): Promise<{ ok: boolean; reason?: string }> {
  try {
    accessSync(executablePath, constants.X_OK);
  } catch {
    return { ok: false, reason: `${executablePath} not found (apt: chromium)` };
  }
  try {
    await import('playwright-core');
  } catch {
    return { ok: false, reason: 'playwright-core is not installed' };
  }
  return { ok: true };
}

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export async function launchChromium(opts: ChromiumOptions = {}): Promise<ChromiumHandle> {
  const exe = opts.executablePath ?? CHROMIUM_PATH;
  if (opts.netns !== undefined && !/^[A-Za-z0-9._-]+$/.test(opts.netns)) {
    throw new Error(`bad namespace name ${opts.netns}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'hearth-chromium-'));
  const pidFile = join(dir, 'pid');
  const wrapper = join(dir, 'chromium');
  const target = opts.netns === undefined ? shq(exe) : `ip netns exec ${shq(opts.netns)} ${shq(exe)}`;
  writeFileSync(wrapper, `#!/bin/sh\necho $$ > ${shq(pidFile)}\nexec ${target} "$@"\n`, { mode: 0o755 });
  const args = chromiumFlags(opts);
  const readPid = (): number | undefined => {
    try {
      const n = Number(readFileSync(pidFile, 'utf8').trim());
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  };
  const killAndClean = async (): Promise<void> => {
    const pid = readPid();
    if (pid !== undefined) {
      killTree(pid, 'SIGKILL');
      for (let i = 0; i < 40 && isAlive(pid); i++) await sleep(25);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  let browser: Browser;
  try {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: wrapper,
      headless: opts.headless !== false,
      args,
      env: opts.env ?? process.env,
      timeout: opts.timeoutMs ?? 30_000,
    });
  } catch (e) {
    await killAndClean();
    throw e;
  }
  let closing: Promise<void> | undefined;
  return {
    browser,
    pid: readPid(),
    args,
    netns: opts.netns,
    newContext: (o) => browser.newContext(o),
    async newPage(o) {
      const ctx = await browser.newContext(o);
      return ctx.newPage();
    },
    close() {
      closing ??= (async () => {
        await Promise.race([browser.close().catch(() => undefined), sleep(5000)]);
        await killAndClean();
      })();
      return closing;
    },
  };
}
