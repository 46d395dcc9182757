// The package graph is honest: every cross-package import in every package (src, test, bench, bin) is
// declared in its package.json and its tsconfig references, no import hides its target, the declared
// graph has no cycle, and testkit (like protocol) imports no Hearth package. The checker itself is
// tested on small fixture repositories, one defect each, so this test can fail.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkGraph, type Finding, formatFindings, scanImports } from '../src/graph.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('the repository', () => {
  const report = checkGraph(ROOT);

  test('has no undeclared, hidden, stale or cyclic edge', () => {
    assert.deepEqual(report.findings, [], `\n${formatFindings(report.findings)}`);
  });

  test('testkit is a leaf: it declares and imports no Hearth package', () => {
    assert.deepEqual([...(report.declared.get('@hearth/testkit') ?? [])], []);
    const kit = report.packages.find((p) => p.name === '@hearth/testkit');
    assert.ok(kit);
    const out = report.edges.filter((e) => e.file.startsWith(kit.dir) && e.target && e.target !== kit.name);
    assert.deepEqual(out, []);
  });

  test('the scan sees the edges that exist (so an empty report is not an empty scan)', () => {
    const has = (from: string, to: string) => report.declared.get(from)?.has(to) ?? false;
    assert.ok(has('@hearth/cli', '@hearth/server'), 'cli -> server (the edge the dynamic import hid)');
    assert.ok(has('@hearth/e2e', '@hearth/server'));
    assert.ok(has('@hearth/agent', '@hearth/testkit'), 'agent tests use the testkit');
    assert.ok(has('@hearth/server', '@hearth/viewer'));
    const cross = report.edges.filter((e) => e.target !== undefined);
    assert.ok(cross.length > 50, `cross-package edges: ${cross.length}`);
  });
});

describe('scanImports', () => {
  test('static, type, re-export, dynamic, require and import.meta.resolve', () => {
    const src = [
      "import a from '@x/a';",
      "import type { B } from '@x/b';",
      "export { c } from '@x/c';",
      "export * from './d.js';",
      "const e = await import('@x/e');",
      "type F = import('@x/f').F;",
      "const g = require('@x/g');",
      "const h = import.meta.resolve('@x/h');",
      "await import(new URL('./i.js', import.meta.url).href);",
      "const j = fileURLToPath(new URL('../j.js', import.meta.url)); await import(j);",
      "const req = createRequire(import.meta.url); req('@x/k'); req.resolve('@x/l');",
    ].join('\n');
    const specs = scanImports('t.ts', src).map((i) => (i.hidden ? `hidden:${i.spec}` : i.spec));
    assert.deepEqual(specs, [
      '@x/a',
      '@x/b',
      '@x/c',
      './d.js',
      '@x/e',
      '@x/f',
      '@x/g',
      '@x/h',
      './i.js',
      '../j.js',
    ]);
  });

  test('comments and strings are not imports', () => {
    const src = [
      "// import x from '@x/comment';",
      "/* export * from '@x/block'; */",
      'const s = "import y from \'@x/string\'";',
      'const t = `await import("@x/template")`;',
    ].join('\n');
    assert.deepEqual(scanImports('t.ts', src), []);
  });

  test('a computed specifier is hidden, including a const bound to a string', () => {
    const src = "const spec = '@hearth/server';\nawait import(spec);\nawait import(process.env.X ?? 'y');";
    const found = scanImports('t.ts', src);
    assert.deepEqual(
      found.map((f) => [f.hidden, f.spec]),
      [
        [true, 'spec'],
        [true, "process.env.X ?? 'y'"],
      ],
    );
  });
});

// ---- fixture repositories ------------------------------------------------------------------------

interface Pkg {
  deps?: string[];
  dev?: string[];
  refs?: string[];
  testRefs?: string[];
  files?: Record<string, string>;
}

const made: string[] = [];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A repository with packages `@f/<name>` under packages/<name>; `files` are relative to the package. */
function fixture(pkgs: Record<string, Pkg>, opts: { workspaces?: string[] } = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'hearth-graph-'));
  made.push(root);
  const write = (p: string, text: string) => {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), text);
  };
  const names = Object.keys(pkgs);
  const rootRefs: { path: string }[] = [];
  for (const [name, p] of Object.entries(pkgs)) {
    const v = (l?: string[]) => Object.fromEntries((l ?? []).map((d) => [`@f/${d}`, '0.1.0']));
    write(
      `packages/${name}/package.json`,
      JSON.stringify({ name: `@f/${name}`, dependencies: v(p.deps), devDependencies: v(p.dev) }),
    );
    write(
      `packages/${name}/tsconfig.json`,
      JSON.stringify({ include: ['src'], references: (p.refs ?? []).map((r) => ({ path: `../${r}` })) }),
    );
    rootRefs.push({ path: `packages/${name}` });
    if (p.testRefs) {
      write(
        `packages/${name}/test/tsconfig.json`,
        JSON.stringify({
          include: ['.'],
          references: p.testRefs.map((r) => ({ path: r === '..' ? '..' : `../../${r}` })),
        }),
      );
      rootRefs.push({ path: `packages/${name}/test` });
    }
    for (const [f, text] of Object.entries(p.files ?? { 'src/index.ts': 'export const x = 1;\n' })) {
      write(`packages/${name}/${f}`, text);
    }
  }
  write(
    'package.json',
    JSON.stringify({ name: 'fixture', workspaces: opts.workspaces ?? names.map((n) => `packages/${n}`) }),
  );
  write('tsconfig.json', JSON.stringify({ files: [], references: rootRefs }));
  return root;
}

const LEAVES = { leaves: ['@f/kit'] };
const kinds = (fs: readonly Finding[]) => fs.map((f) => f.kind).sort();

/** A sound graph: app depends on core; app's tests use the kit. */
function sound(): Record<string, Pkg> {
  return {
    core: {},
    kit: { files: { 'src/index.ts': 'export const lab = 1;\n' } },
    app: {
      deps: ['core'],
      dev: ['kit'],
      refs: ['core'],
      testRefs: ['..', 'kit'],
      files: {
        'src/index.ts': "import { x } from '@f/core';\nexport const y = x;\n",
        'test/a.test.ts':
          "import { y } from '../src/index.js';\nimport { lab } from '@f/kit';\nvoid [y, lab];\n",
      },
    },
  };
}

describe('checkGraph on fixtures (each defect is caught)', () => {
  test('control: the sound fixture has no finding', () => {
    const r = checkGraph(fixture(sound()), LEAVES);
    assert.deepEqual(r.findings, [], formatFindings(r.findings));
  });

  test('an import by shipped code that package.json does not declare', () => {
    const p = sound();
    p.app = { ...p.app, deps: [] };
    const r = checkGraph(fixture(p), LEAVES);
    assert.deepEqual(kinds(r.findings), ['undeclared']);
    assert.match(r.findings[0]?.where ?? '', /packages\/app\/src\/index\.ts:1/);
  });

  test('shipped code importing a devDependency', () => {
    const p = sound();
    p.app = { ...p.app, deps: [], dev: ['kit', 'core'] };
    assert.deepEqual(kinds(checkGraph(fixture(p), LEAVES).findings), ['dev-only']);
  });

  test('a relative path into another package counts as importing it', () => {
    const p = sound();
    p.app = {
      ...p.app,
      files: { ...p.app?.files, 'test/b.test.ts': "import { x } from '../../core/src/index.js';\nvoid x;\n" },
    };
    p.app.testRefs = ['..', 'kit', 'core'];
    // declared as a dependency of app: allowed; removing it makes both uses undeclared.
    assert.deepEqual(checkGraph(fixture(p), LEAVES).findings, []);
    p.app = { ...p.app, deps: [], refs: [] };
    const r = checkGraph(fixture(p), LEAVES);
    assert.deepEqual(kinds(r.findings), ['reference-missing', 'undeclared', 'undeclared']);
    assert.ok(r.findings.some((f) => /by the relative path \.\.\/\.\.\/core/.test(f.message)));
  });

  test('a computed dynamic import (the `const spec` trick) is hidden', () => {
    const p = sound();
    p.app = {
      ...p.app,
      files: {
        ...p.app?.files,
        'src/late.ts': "const spec = '@f/core';\nexport const m = await import(spec);\n",
      },
    };
    assert.deepEqual(kinds(checkGraph(fixture(p), LEAVES).findings), ['hidden']);
  });

  test('a dependency no file imports', () => {
    const p = sound();
    p.core = { deps: ['kit'] };
    const r = checkGraph(fixture(p), { leaves: [] });
    assert.deepEqual(kinds(r.findings), ['unused']);
  });

  test('tsconfig references: one missing, one stale', () => {
    const p = sound();
    p.app = { ...p.app, refs: ['kit'] };
    const r = checkGraph(fixture(p), LEAVES);
    assert.deepEqual(kinds(r.findings), ['reference-missing', 'reference-stale']);
  });

  test('a test project that imports its own sources must reference its package', () => {
    const p = sound();
    p.app = { ...p.app, testRefs: ['kit'] };
    const r = checkGraph(fixture(p), LEAVES);
    assert.deepEqual(kinds(r.findings), ['reference-missing']);
  });

  test('a cycle through devDependencies (agent tests -> testkit -> agent, as before this issue)', () => {
    const p = sound();
    p.kit = {
      dev: ['app'],
      testRefs: ['app'],
      files: {
        'src/index.ts': 'export const lab = 1;\n',
        'test/k.test.ts': "import { y } from '@f/app';\nvoid y;\n",
      },
    };
    const r = checkGraph(fixture(p), { leaves: [] });
    assert.deepEqual(kinds(r.findings), ['cycle']);
    assert.match(r.findings[0]?.message ?? '', /@f\/app -> @f\/kit -> @f\/app/);
    // and, with kit a leaf, the same thing is also a leaf violation (declared and imported)
    assert.deepEqual(kinds(checkGraph(fixture(p), LEAVES).findings), ['cycle', 'leaf', 'leaf']);
  });

  test('a leaf importing a product package', () => {
    const p = sound();
    p.kit = {
      deps: ['core'],
      refs: ['core'],
      files: { 'src/index.ts': "import { x } from '@f/core';\nexport const lab = x;\n" },
    };
    assert.deepEqual(kinds(checkGraph(fixture(p), LEAVES).findings), ['leaf', 'leaf']);
  });

  test('a package missing from the root workspaces', () => {
    const r = checkGraph(fixture(sound(), { workspaces: ['packages/app', 'packages/core'] }), LEAVES);
    assert.deepEqual(kinds(r.findings), ['workspace']);
  });
});
