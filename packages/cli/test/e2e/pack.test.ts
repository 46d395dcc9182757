/**
 * The packages install as published: `npm pack` every published workspace (its `prepack` builds
 * dist/, and the viewer's app bundle), install the tarballs into an empty directory outside the
 * repository (third-party dependencies from the npm registry, through the npm cache), and run
 * `hearth --help` and `hearth demo` from there: the demo must print its pairing code and serve
 * the viewer app from the installed @hearth/viewer.
 *
 * Needs the npm registry (or a warm npm cache) and ffmpeg: scripts/test.mjs runs it in the root
 * network namespace, not in the loopback-only one of the other end-to-end suites.
 *
 * Native addons: the one dependency that builds on install (better-sqlite3: prebuild-install
 * cannot download here, so node-gyp compiles SQLite, about 80 s of CPU) is installed with
 * --ignore-scripts and given the addon already built for the same version in this checkout's
 * node_modules (nothing of Hearth's comes from there). HEARTH_PACK_NATIVE=build compiles it in the
 * install directory instead, as a user's `npm install` would.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../../../', import.meta.url));
/** Workspaces that are never published (test code only). */
// Test code (also `private`, so npm refuses to publish it).
const TEST_ONLY = new Set(['@hearth/testkit', '@hearth/e2e']);

interface Workspace {
  dir: string;
  name: string;
  pkg: Record<string, unknown>;
}
const workspaces: Workspace[] = (
  JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).workspaces as string[]
)
  .map((dir) => {
    const pkg = JSON.parse(readFileSync(join(repo, dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    return { dir, name: String(pkg.name), pkg };
  })
  .filter((w) => w.pkg.private !== true && !TEST_ONLY.has(w.name));

/** Only what a user's shell has: no NODE_OPTIONS, no --conditions=source, no workspace paths. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TERM', 'TMPDIR', 'USER'])
    if (process.env[k]) env[k] = process.env[k];
  return env;
}

const timings: Record<string, number> = {};
async function timed<T>(what: string, f: () => T | Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    timings[what] = Math.round(performance.now() - t0) / 1000;
  }
}

/** Every file path (under `package/`) in a tarball, and its package.json. */
function tarball(file: string): { files: Set<string>; pkg: Record<string, unknown> } {
  const files = new Set(
    execFileSync('tar', ['-tzf', file], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((p) => p.replace(/^package\//, '')),
  );
  const pkg = JSON.parse(execFileSync('tar', ['-xzOf', file, 'package/package.json'], { encoding: 'utf8' }));
  return { files, pkg };
}

/** Every file an `exports` entry or a `bin` names, under any condition but `source`. */
function entryPoints(pkg: Record<string, unknown>): string[] {
  const out: string[] = [];
  const walk = (v: unknown, cond?: string) => {
    if (typeof v === 'string') {
      if (cond !== 'source') out.push(v);
    } else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  walk(pkg.exports);
  walk(pkg.bin);
  if (typeof pkg.main === 'string') out.push(pkg.main);
  return out.map((p) => p.replace(/^\.\//, ''));
}

describe('the packed packages install and run outside the workspace', { timeout: 600_000 }, () => {
  let tmp: string;
  let app: string;
  const tarballs = new Map<string, string>();
  let demo: ChildProcess | undefined;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'hearth-pack-'));
    const packDir = join(tmp, 'tarballs');
    mkdirSync(packDir);
    await timed('npm pack (with prepack builds)', () => {
      execFileSync(
        'npm',
        ['pack', '--pack-destination', packDir, ...workspaces.flatMap((w) => ['--workspace', w.dir])],
        { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
      );
    });
    for (const f of readdirSync(packDir)) {
      const { pkg } = tarball(join(packDir, f));
      tarballs.set(String(pkg.name), join(packDir, f));
    }
    app = join(tmp, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), '{ "name": "hearth-pack-test", "private": true }\n');
    const native = process.env.HEARTH_PACK_NATIVE === 'build';
    await timed('npm install of the tarballs', () => {
      execFileSync(
        'npm',
        [
          'install',
          '--no-audit',
          '--no-fund',
          '--prefer-offline',
          '--omit=dev',
          ...(native ? [] : ['--ignore-scripts']),
          ...tarballs.values(),
        ],
        { cwd: app, env: userEnv(), stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
      );
    });
    if (!native) {
      // The one addon built on install: take the build of the same version from this checkout.
      const want = JSON.parse(
        readFileSync(join(app, 'node_modules/better-sqlite3/package.json'), 'utf8'),
      ).version;
      const have = join(repo, 'node_modules/better-sqlite3');
      const haveVersion = JSON.parse(readFileSync(join(have, 'package.json'), 'utf8')).version;
      if (want === haveVersion && existsSync(join(have, 'build/Release/better_sqlite3.node'))) {
        mkdirSync(join(app, 'node_modules/better-sqlite3/build/Release'), { recursive: true });
        cpSync(
          join(have, 'build/Release/better_sqlite3.node'),
          join(app, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
        );
      } else {
        await timed('npm rebuild better-sqlite3', () =>
          execFileSync('npm', ['rebuild', 'better-sqlite3'], { cwd: app, env: userEnv(), stdio: 'ignore' }),
        );
      }
    }
  });

  after(() => {
    if (demo && demo.exitCode === null && demo.signalCode === null) demo.kill('SIGKILL');
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    console.log(`# pack test timings (s): ${JSON.stringify(timings)}`);
  });

  it('packs every published workspace', () => {
    assert.deepEqual([...tarballs.keys()].sort(), workspaces.map((w) => w.name).sort());
  });

  it('every tarball holds the files its exports and bin name, and no tests', () => {
    for (const [name, file] of tarballs) {
      const { files, pkg } = tarball(file);
      for (const p of entryPoints(pkg))
        assert.ok(files.has(p), `${name}: ${p} (named by exports/bin) is in the tarball`);
      for (const p of files) {
        assert.doesNotMatch(p, /(^|\/)test\//, `${name}: no test files (${p})`);
        assert.doesNotMatch(p, /\.tsbuildinfo$/, `${name}: no build state (${p})`);
      }
    }
  });

  it('@hearth/viewer ships its built app (what the server serves)', () => {
    const { files } = tarball(tarballs.get('@hearth/viewer')!);
    for (const f of ['index.html', 'app.js', 'app.css', 'sw.js', 'manifest.webmanifest', 'icon.svg'])
      assert.ok(files.has(`dist/${f}`), `dist/${f}`);
  });

  it('installed as copies inside the install directory (no link into the workspace)', () => {
    for (const name of tarballs.keys()) {
      const dir = realpathSync(join(app, 'node_modules', name));
      assert.ok(dir.startsWith(realpathSync(app)), `${name} resolves to ${dir}`);
    }
    assert.ok(!existsSync(join(app, 'node_modules/tsx')), 'no tsx: the CLI must run from its dist/');
  });

  it('each @hearth package is installed once, from its tarball (none fetched from the registry)', () => {
    const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { resolved?: string }>;
    };
    const hearth = Object.entries(lock.packages).filter(([path]) => path.includes('node_modules/@hearth/'));
    assert.deepEqual(
      hearth.map(([path]) => path).sort(),
      [...tarballs.keys()].map((n) => `node_modules/${n}`).sort(),
    );
    for (const [path, entry] of hearth) assert.match(entry.resolved ?? '', /^file:.*\.tgz$/, path);
  });

  const bin = () => join(app, 'node_modules/.bin/hearth');

  it('hearth --help', async () => {
    const out = await timed('hearth --help', () =>
      execFileSync(bin(), ['--help'], { cwd: app, env: userEnv(), encoding: 'utf8', timeout: 60_000 }),
    );
    for (const cmd of ['server', 'agent', 'demo']) assert.match(out, new RegExp(`^\\s+${cmd}\\b`, 'm'));
  });

  it('hearth demo opens a pairing window (its code in a 0600 file, stdout being a pipe) and serves the viewer app; SIGTERM stops it', async () => {
    const t0 = performance.now();
    const p = spawn(bin(), ['demo', '--port', '0', '--data-dir', join(app, 'demo-data')], {
      cwd: app,
      env: userEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    demo = p;
    let out = '';
    let err = '';
    p.stdout?.on('data', (d) => {
      out += d;
    });
    p.stderr?.on('data', (d) => {
      err += d;
    });
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      p.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const seen = await Promise.race([
      new Promise<string>((resolve) => {
        const check = () => {
          if (/A pairing window is open[\s\S]*hearth agent pairing/.test(out)) resolve('code');
        };
        p.stdout?.on('data', check);
      }),
      exited.then((e) => `exited early (${e.code ?? e.signal})`),
    ]);
    assert.equal(seen, 'code', `the demo says where its pairing code is:\n${out}\n${err}`);
    const secret = JSON.parse(readFileSync(join(app, 'demo-data', 'agent', 'pairing-secret.json'), 'utf8'));
    assert.match(secret.manualCode, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5}$/);
    timings['hearth demo: start to pairing code'] = Math.round(performance.now() - t0) / 1000;
    const url = /Open (http:\/\/127\.0\.0\.1:\d+)\/ in a browser/.exec(out)?.[1];
    assert.ok(url, `the demo prints its URL:\n${out}`);

    const index = await fetch(`${url}/`);
    assert.equal(index.status, 200);
    const html = await index.text();
    assert.match(html, /<script type="module" src="\/app\.js"><\/script>/);
    const js = await fetch(`${url}/app.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    const body = Buffer.from(await js.arrayBuffer());
    const shipped = readFileSync(join(app, 'node_modules/@hearth/viewer/dist/app.js'));
    assert.ok(
      body.length > 10_000 && body.equals(shipped),
      'the app bundle from the installed @hearth/viewer',
    );

    p.kill('SIGTERM');
    const e = await exited;
    assert.equal(e.code, 0, `stopped cleanly on SIGTERM (${e.code ?? e.signal}):\n${err}`);
  });
});
