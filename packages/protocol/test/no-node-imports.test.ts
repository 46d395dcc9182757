/**
 * The protocol core runs unchanged in the agent (Node), the server (Node) and the browser viewer, so
 * it must not import Node built-ins. Two guards: the package compiles with `"types": []` (no
 * @types/node, so `process`, `Buffer` or `node:` modules do not type-check), and this test, which
 * scans every source file for imports of `node:` specifiers or bare built-in module names.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const pkg = new URL('..', import.meta.url).pathname;
const src = join(pkg, 'src');

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (/\.(ts|js|mjs|cjs)$/.test(name)) out.push(p);
  }
  return out;
}

/** Every module specifier in `text`: static imports/exports, dynamic import() and require(). */
function specifiers(text: string): string[] {
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^'"]*?\sfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) out.push(m[1]!);
  return out;
}

const builtins = new Set(builtinModules.flatMap((m) => [m, m.split('/')[0]!]));

describe('protocol package: no Node imports', () => {
  const files = sources(src);

  it('finds the sources', () => {
    assert.ok(files.length >= 15, `expected the protocol sources, found ${files.length}`);
  });

  it('no source file imports node:* or a Node built-in module, or uses require/process/Buffer', () => {
    const offenders: string[] = [];
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      for (const s of specifiers(text)) {
        if (s.startsWith('node:') || builtins.has(s) || builtins.has(s.split('/')[0]!))
          offenders.push(`${f}: imports ${s}`);
      }
      const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      for (const g of ['require(', 'process.', 'Buffer.', '__dirname']) {
        if (code.includes(g)) offenders.push(`${f}: uses ${g}`);
      }
    }
    assert.deepEqual(offenders, []);
  });

  it('the scanner itself catches the forms it claims to', () => {
    const s = specifiers(
      `import x from 'node:fs';\nexport { y } from "crypto";\nimport 'os';\nconst z = await import('node:path');\nrequire('util');`,
    );
    assert.deepEqual(s.sort(), ['crypto', 'node:fs', 'node:path', 'os', 'util']);
  });

  it('tsconfig compiles the package with "types": [] (no @types/node)', () => {
    const cfg = JSON.parse(readFileSync(join(pkg, 'tsconfig.json'), 'utf8')) as {
      compilerOptions?: { types?: unknown };
    };
    assert.deepEqual(cfg.compilerOptions?.types, []);
  });

  it('@hpke/core uses globalThis.crypto: its only Node import is a fallback for Node <= 18', () => {
    // @hpke/common loads `crypto` dynamically only when globalThis.crypto is undefined (Node <= 18,
    // which Hearth does not support: engines >= 20.10); browsers and Node 20 take WebCrypto.
    const offenders: string[] = [];
    let fallbacks = 0;
    for (const lib of ['core', 'common']) {
      const files = sources(join(pkg, `../../node_modules/@hpke/${lib}/esm/src`));
      assert.ok(files.length > 5, `@hpke/${lib} sources found`);
      for (const f of files) {
        const text = readFileSync(f, 'utf8');
        for (const s of specifiers(text))
          if (s.startsWith('node:') || builtins.has(s)) {
            const fallback =
              /if \([^)]*globalThis\.crypto !== undefined\)\s*\{[^}]*return globalThis\.crypto/.test(text);
            if (fallback) fallbacks++;
            else offenders.push(`${f}: imports ${s}`);
          }
      }
    }
    assert.ok(fallbacks > 0, 'the scan sees the Node <= 18 fallbacks (so it is not an empty scan)');
    assert.deepEqual(offenders, []);
  });

  it('runtime dependencies are pure JS libraries that run in browsers', () => {
    const p = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    assert.deepEqual(Object.keys(p.dependencies).sort(), [
      '@hpke/core',
      '@noble/curves',
      '@noble/hashes',
      '@scure/base',
      'zod',
    ]);
  });
});
