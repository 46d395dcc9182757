#!/usr/bin/env node
// Builds the viewer web app into dist/: index.html, app.js, app.css, sw.js, manifest and icons.
// Usage: node build.mjs [--dev]   (--dev: no minification)
// tsc's library output lives in dist/lib and is left alone.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { iconPng, iconSvg } from './tools/icons.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');
const dev = process.argv.includes('--dev');
const THEME = '#14110f';

const SHELL = [
  '/index.html',
  '/app.js',
  '/app.css',
  '/manifest.webmanifest',
  '/icon.svg',
  '/icon-192.png',
  '/icon-512.png',
  '/icon-maskable-512.png',
  '/apple-touch-icon.png',
];

const t0 = Date.now();
mkdirSync(out, { recursive: true });
for (const f of [...SHELL.map((p) => p.slice(1)), 'sw.js', 'app.js.map', 'sw.js.map'])
  rmSync(join(out, f), { force: true });

// zod re-exports every locale as a namespace (`z.locales`), which no bundler can drop. The app
// only ever shows English messages (and shows none of zod's to users), so the namespace is cut
// down to `en`: the bundle shrinks by about half.
const zodLocalesEnOnly = {
  name: 'zod-locales-en-only',
  setup(b) {
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) => {
      if (!/[\\/]zod[\\/]/.test(args.importer)) return undefined;
      return { path: join(dirname(args.importer), '../locales/index.js'), namespace: 'zod-locales' };
    });
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from './en.js';`,
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};

const common = {
  plugins: [zodLocalesEnOnly],
  bundle: true,
  minify: !dev,
  conditions: ['source'],
  target: ['chrome113', 'firefox129', 'safari17'],
  legalComments: 'none',
  logLevel: 'warning',
  charset: 'utf8',
};

await esbuild.build({
  ...common,
  entryPoints: [join(here, 'src/main.ts')],
  outfile: join(out, 'app.js'),
  format: 'esm',
  sourcemap: 'linked',
  // Map positions only: the sources are in the repository, and shipping third-party sources
  // (curve tables and all) would only bloat the map.
  sourcesContent: false,
  metafile: true,
});
await esbuild.build({
  ...common,
  entryPoints: [join(here, 'src/ui/app.css')],
  outfile: join(out, 'app.css'),
});

// Icons.
writeFileSync(join(out, 'icon.svg'), iconSvg());
writeFileSync(join(out, 'icon-192.png'), iconPng(192));
writeFileSync(join(out, 'icon-512.png'), iconPng(512));
writeFileSync(join(out, 'icon-maskable-512.png'), iconPng(512, { maskable: true }));
writeFileSync(join(out, 'apple-touch-icon.png'), iconPng(180, { maskable: true }));

const manifest = {
  name: 'Hearth',
  short_name: 'Hearth',
  description: 'End-to-end encrypted remote view of your home cameras.',
  id: '/',
  start_url: '/',
  scope: '/',
  display: 'standalone',
  orientation: 'any',
  background_color: THEME,
  theme_color: THEME,
  icons: [
    { src: '/icon.svg', sizes: 'any', type: 'image/svg+xml' },
    { src: '/icon-192.png', sizes: '192x192', type: 'image/png' },
    { src: '/icon-512.png', sizes: '512x512', type: 'image/png' },
    { src: '/icon-maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
  ],
};
writeFileSync(join(out, 'manifest.webmanifest'), `${JSON.stringify(manifest, null, 2)}\n`);

// No inline script or style: the server sends `Content-Security-Policy: default-src 'self'`.
const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="theme-color" content="${THEME}">
<meta name="color-scheme" content="dark light">
<meta name="referrer" content="no-referrer">
<meta name="apple-mobile-web-app-capable" content="yes">
<meta name="apple-mobile-web-app-title" content="Hearth">
<title>Hearth</title>
<link rel="manifest" href="/manifest.webmanifest">
<link rel="icon" href="/icon.svg" type="image/svg+xml">
<link rel="apple-touch-icon" href="/apple-touch-icon.png">
<link rel="stylesheet" href="/app.css">
<script type="module" src="/app.js"></script>
</head>
<body>
<div id="app"><noscript>Hearth needs JavaScript.</noscript></div>
</body>
</html>
`;
writeFileSync(join(out, 'index.html'), html);

// The service worker's cache is versioned by the shell's content, so any change rolls it over.
const h = createHash('sha256');
for (const p of SHELL) h.update(p).update(readFileSync(join(out, p.slice(1))));
const version = h.digest('hex').slice(0, 16);
await esbuild.build({
  ...common,
  entryPoints: [join(here, 'src/sw.ts')],
  outfile: join(out, 'sw.js'),
  format: 'iife',
  define: { __HEARTH_SHELL__: JSON.stringify(SHELL), __HEARTH_VERSION__: JSON.stringify(version) },
});

const size = (f) => readFileSync(join(out, f)).length;
console.log(
  `viewer: dist/ in ${Date.now() - t0} ms — app.js ${(size('app.js') / 1024).toFixed(1)} KiB, app.css ${(size('app.css') / 1024).toFixed(1)} KiB, sw.js ${size('sw.js')} B, shell ${version}`,
);
