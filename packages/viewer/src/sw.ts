/**
 * Service worker (bundled to dist/sw.js): caches the app shell only, so the app opens offline and
 * fast. It never touches `/ws`, blobs or anything else: only GET requests for the shell files and
 * page navigations. Build-time constants name the shell and version the cache.
 *
 * Notifications: a `push` (decrypted by the browser, RFC 8291) is decoded (push/notification.ts)
 * and shown; open app windows also get it as a message (the in-app toast). A click focuses the app
 * or opens it.
 */
import { notificationOfPush, UNREADABLE } from './push/notification.js';

declare const __HEARTH_SHELL__: string[];
declare const __HEARTH_VERSION__: string;

interface ExtendableEventLike extends Event {
  waitUntil(p: Promise<unknown>): void;
}
interface FetchEventLike extends ExtendableEventLike {
  readonly request: Request;
  respondWith(r: Promise<Response> | Response): void;
}
interface PushEventLike extends ExtendableEventLike {
  readonly data: { arrayBuffer(): ArrayBuffer } | null;
}
interface NotificationEventLike extends ExtendableEventLike {
  readonly notification: Notification & { data?: { url?: string } };
}
interface WindowClientLike {
  readonly url: string;
  focus(): Promise<unknown>;
  postMessage(m: unknown): void;
}
interface ServiceWorkerScopeLike {
  readonly location: Location;
  addEventListener(type: 'install' | 'activate', f: (e: ExtendableEventLike) => void): void;
  addEventListener(type: 'fetch', f: (e: FetchEventLike) => void): void;
  addEventListener(type: 'push', f: (e: PushEventLike) => void): void;
  addEventListener(type: 'notificationclick', f: (e: NotificationEventLike) => void): void;
  skipWaiting(): Promise<void>;
  readonly clients: {
    claim(): Promise<void>;
    matchAll(o: { type: 'window'; includeUncontrolled?: boolean }): Promise<WindowClientLike[]>;
    openWindow(url: string): Promise<unknown>;
  };
  readonly registration: ServiceWorkerRegistration;
}

const sw = self as unknown as ServiceWorkerScopeLike;
const CACHE = `hearth-shell-${__HEARTH_VERSION__}`;
const SHELL = new Set(__HEARTH_SHELL__);

sw.addEventListener('install', (e) => {
  e.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll([...SHELL].map((u) => new Request(u, { cache: 'reload' }))))
      .then(() => sw.skipWaiting()),
  );
});

sw.addEventListener('activate', (e) => {
  e.waitUntil(
    caches
      .keys()
      .then((keys) =>
        Promise.all(
          keys.filter((k) => k.startsWith('hearth-shell-') && k !== CACHE).map((k) => caches.delete(k)),
        ),
      )
      .then(() => sw.clients.claim()),
  );
});

sw.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== sw.location.origin) return;
  if (req.mode === 'navigate') {
    // Network first, so a new version is picked up; the cached shell when offline.
    e.respondWith(
      fetch(req).catch(() =>
        caches.match('/index.html', { cacheName: CACHE }).then((r) => r ?? Response.error()),
      ),
    );
    return;
  }
  if (!SHELL.has(url.pathname)) return;
  e.respondWith(caches.match(req, { cacheName: CACHE, ignoreSearch: true }).then((r) => r ?? fetch(req)));
});

sw.addEventListener('push', (e) => {
  let bytes: Uint8Array | undefined;
  try {
    bytes = e.data ? new Uint8Array(e.data.arrayBuffer()) : undefined;
  } catch {
    bytes = undefined;
  }
  const n = bytes ? notificationOfPush(bytes) : undefined;
  const { title, ...options } = n ?? UNREADABLE;
  e.waitUntil(
    Promise.all([
      sw.registration.showNotification(title, options as NotificationOptions),
      n
        ? sw.clients
            .matchAll({ type: 'window' })
            .then((cs) => {
              for (const c of cs) c.postMessage({ t: 'hearth/push', payload: n.data.payload });
            })
            .catch(() => undefined)
        : undefined,
    ]),
  );
});

sw.addEventListener('notificationclick', (e) => {
  e.notification.close();
  const url = new URL(e.notification.data?.url ?? '/', sw.location.origin);
  if (url.origin !== sw.location.origin) return;
  e.waitUntil(
    sw.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((cs) => {
      const open = cs.find((c) => new URL(c.url).origin === sw.location.origin);
      return open ? open.focus() : sw.clients.openWindow(url.href);
    }),
  );
});
