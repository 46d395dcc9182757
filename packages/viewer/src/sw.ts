/**
 * Service worker (bundled to dist/sw.js): caches the app shell only, so the app opens offline and
 * fast. It never touches `/ws`, blobs or anything else: only GET requests for the shell files and
 * page navigations. Build-time constants name the shell and version the cache.
 */
declare const __HEARTH_SHELL__: string[];
declare const __HEARTH_VERSION__: string;

interface ExtendableEventLike extends Event {
  waitUntil(p: Promise<unknown>): void;
}
interface FetchEventLike extends ExtendableEventLike {
  readonly request: Request;
  respondWith(r: Promise<Response> | Response): void;
}
interface ServiceWorkerScopeLike {
  readonly location: Location;
  addEventListener(type: 'install' | 'activate', f: (e: ExtendableEventLike) => void): void;
  addEventListener(type: 'fetch', f: (e: FetchEventLike) => void): void;
  skipWaiting(): Promise<void>;
  readonly clients: { claim(): Promise<void> };
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
