/**
 * `@hearth/viewer` as a library (for the server and tests): where the built web app lives, and the
 * pure helpers the app is built from. The app itself is `main.ts`, bundled by `build.mjs`.
 */

/** What the app exposes to tests as `window.__hearth` (end-to-end suites drive it). */
export type { HearthHook } from './ui/app.js';

/** Directory of the built web app (`dist/`), to be served as static files at `/`. */
export const webRoot: URL = new URL(
  import.meta.url.includes('/dist/lib/') ? '../' : '../dist/',
  import.meta.url,
);

/** Files of the app shell (what the service worker caches), relative to {@link webRoot}. */
export const SHELL_FILES = [
  'index.html',
  'app.js',
  'app.css',
  'manifest.webmanifest',
  'icon.svg',
  'icon-192.png',
  'icon-512.png',
  'icon-maskable-512.png',
  'apple-touch-icon.png',
] as const;

/** Routes that must serve `index.html` (besides `/`). */
export const APP_ROUTES = ['/pair'] as const;

/** Security headers to send with every file of the app: the policy it is built and tested for. */
export const APP_HEADERS = {
  // media-src blob:: recorded clips play through Media Source Extensions, whose object URL
  // (`URL.createObjectURL(mediaSource)`) only our own script can make; nothing else is loosened.
  // frame-ancestors: no site may frame the app (clickjacking a pairing or a share); X-Frame-Options
  // says the same to browsers that predate CSP level 2 (review R10).
  'content-security-policy': "default-src 'self'; media-src 'self' blob:; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // The app uses none of these. Camera and microphone are left out on purpose: Chromium ties
  // WebRTC's local candidates to them (turning them off broke live view on the same host), and
  // talk-back (audio) will need the microphone.
  'permissions-policy': 'geolocation=(), usb=(), payment=(), serial=(), hid=()',
} as const;

/** Sent on every response over TLS, with {@link APP_HEADERS} (review R10). */
export const TLS_HEADERS = { 'strict-transport-security': 'max-age=31536000' } as const;

/** Content types of the files in {@link webRoot}, by extension. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json',
};

export * from './core/links.js';
export * from './core/stats.js';
export * from './core/view-state.js';
export * from './net/log.js';
