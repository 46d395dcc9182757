/**
 * The one viewer driver for end-to-end suites: drives the real viewer app in a browser page the way
 * a person does (open, type a code, open a camera) and reads its test hook (`window.__hearth`) and
 * its IndexedDB the way the app stores them. cli's e2e, the viewer's Chromium suite and the
 * scenario suites share it instead of copies.
 *
 * It imports no product package: what it knows of the app is the app's test contract, the hook's
 * fields and the IndexedDB layout (database `hearth`, object store `devices` keyed by `deviceId`),
 * both defined in packages/viewer (ui/app.ts `HearthHook`, store/idb.ts).
 */
import type { Page } from 'playwright-core';

/** The viewer's IndexedDB database and its paired-devices store (packages/viewer/src/store/idb.ts). */
export const VIEWER_DB = { name: 'hearth', devices: 'devices', keys: 'keys' } as const;

/** The fields of the app's test hook (`window.__hearth`, packages/viewer/src/ui/app.ts) used here. */
export interface ViewerHook {
  state: string;
  framesDecoded(): number;
  lastError?: { code: string; message: string; attack?: boolean };
  pairedDevices(): { deviceId: string; deviceKey: string; role: string }[];
  viewerKey: string;
  rendezvous: string;
}
type W = Window & { __hearth?: ViewerHook };

/** A snapshot of the hook. */
export interface HookSnapshot {
  state: string;
  frames: number;
  error?: ViewerHook['lastError'];
  rendezvous: string;
}

/** Polls `fn` until it returns a truthy value (which it resolves with), or fails after `timeoutMs`. */
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

export async function hook(page: Page): Promise<HookSnapshot> {
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

/**
 * Wait until the app's state satisfies `want` (a state name, a pattern, or a predicate on the hook
 * snapshot); returns that snapshot. Fails early, naming the state and the last error, when the
 * state reaches one of `stopOn` instead (default: none).
 */
export async function waitForState(
  page: Page,
  want: string | RegExp | ((h: HookSnapshot) => boolean),
  o: { timeoutMs?: number; stopOn?: string[] } = {},
): Promise<HookSnapshot> {
  const ok =
    typeof want === 'function'
      ? want
      : (h: HookSnapshot) => (typeof want === 'string' ? h.state === want : want.test(h.state));
  let last: HookSnapshot | undefined;
  try {
    return await until(
      `viewer state ${String(want)}`,
      async () => {
        last = await hook(page);
        if (ok(last)) return last;
        if (o.stopOn?.includes(last.state))
          throw new Error(
            `viewer reached ${last.state} (${JSON.stringify(last.error)}) waiting for ${String(want)}`,
          );
        return undefined;
      },
      o.timeoutMs ?? 20_000,
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}\nviewer: ${JSON.stringify(last)}`);
  }
}

/** A paired-device record as the app stores it (store/devices.ts `PairedDevice`). */
export interface SeedRecord {
  deviceId: string;
  /** `hdk_…` text. */
  deviceKey: string;
  /** Origin of the rendezvous server. */
  server: string;
  role?: string;
  label?: string;
  pairedAt?: number;
}

/**
 * Pin a device in this origin's IndexedDB as pairing would have, without pairing (to test refusal,
 * or to skip pairing). The app must have opened once on this origin (it creates the database).
 * Reload the page afterwards for the app to read it.
 */
export async function seedDevice(page: Page, rec: SeedRecord): Promise<void> {
  const full = { role: 'owner', label: 'Not mine', pairedAt: Date.now(), ...rec };
  await page.evaluate(
    async ({ r, db: names }) => {
      const db = await new Promise<IDBDatabase>((res, rej) => {
        const q = indexedDB.open(names.name);
        q.onsuccess = () => res(q.result);
        q.onerror = () => rej(q.error);
      });
      await new Promise<void>((res, rej) => {
        const t = db.transaction(names.devices, 'readwrite');
        t.objectStore(names.devices).put(r);
        t.oncomplete = () => res();
        t.onerror = () => rej(t.error);
      });
      db.close();
    },
    { r: full, db: VIEWER_DB },
  );
}
