/**
 * The package graph, checked against the code. For every workspace package it reads each source file
 * (TypeScript's own parser, so comments and strings cannot fool it) and collects what the file
 * imports: static imports and re-exports, `import type`, `import('x')` types, dynamic `import()`,
 * `require()` and `import.meta.resolve()`. An import names a workspace package either by its name
 * (`@hearth/agent`) or by a relative path that leaves the importing package (`../../agent/src/x.js`).
 * It then reports:
 *
 * - `undeclared`: a package imported but missing from package.json (`dependencies` for `src/` and
 *   `bin/`, which ship; `dependencies` or `devDependencies` for tests, benchmarks and tools);
 * - `unused`: a `@hearth/*` entry in package.json that no file imports;
 * - `dev-only`: a shipped file imports a package that is only a devDependency;
 * - `reference-missing` / `reference-stale`: a tsconfig whose `references` do not match what its
 *   files import (a test project also references its own package when it imports it);
 * - `hidden`: an import whose target the checker cannot see (`import(spec)` with a computed
 *   specifier), so neither tsc nor this check would know the edge exists;
 * - `cycle`: a cycle in the declared graph (dependencies and devDependencies);
 * - `leaf`: a leaf package (testkit, protocol) declares or imports any Hearth package;
 * - `workspace`: a package directory missing from the root workspaces or tsconfig, or the reverse.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

export type FindingKind =
  | 'undeclared'
  | 'unused'
  | 'dev-only'
  | 'reference-missing'
  | 'reference-stale'
  | 'hidden'
  | 'cycle'
  | 'leaf'
  | 'workspace';

export interface Finding {
  readonly kind: FindingKind;
  /** The package (or `root`). */
  readonly pkg: string;
  /** File (repository-relative) and line, where one applies. */
  readonly where?: string;
  readonly message: string;
}

export interface GraphOptions {
  /** Packages that may import no workspace package. Default: @hearth/testkit and @hearth/protocol. */
  readonly leaves?: readonly string[];
  /** Directory that holds the packages, relative to the root. Default `packages`. */
  readonly packagesDir?: string;
}

export interface PackageInfo {
  readonly name: string;
  /** Absolute directory. */
  readonly dir: string;
  readonly dependencies: ReadonlySet<string>;
  readonly devDependencies: ReadonlySet<string>;
}

export interface ImportEdge {
  /** Absolute path of the importing file. */
  readonly file: string;
  readonly line: number;
  /** The specifier as written, or the expression text of a hidden import. */
  readonly spec: string;
  /** The workspace package it reaches (undefined: an outside module, or a file in the same package). */
  readonly target?: string;
  /** A relative specifier, resolved (absolute), when it is one. */
  readonly resolved?: string;
  readonly hidden: boolean;
}

export interface GraphReport {
  readonly packages: readonly PackageInfo[];
  readonly edges: readonly ImportEdge[];
  readonly findings: readonly Finding[];
  /** Declared workspace edges, `from -> to` (dependencies and devDependencies). */
  readonly declared: ReadonlyMap<string, ReadonlySet<string>>;
}

const SOURCE_EXT = /\.(?:[cm]?[jt]s|tsx)$/;
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git']);
const DEFAULT_LEAVES = ['@hearth/testkit', '@hearth/protocol'];

function readJson(path: string): Record<string, unknown> {
  const text = readFileSync(path, 'utf8');
  const parsed = ts.parseConfigFileTextToJson(path, text);
  if (parsed.error)
    throw new Error(`${path}: ${ts.flattenDiagnosticMessageText(parsed.error.messageText, '\n')}`);
  return parsed.config as Record<string, unknown>;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name)) continue;
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (SOURCE_EXT.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function inside(dir: string, file: string): boolean {
  const r = relative(dir, file);
  return r === '' || (!r.startsWith('..') && !r.startsWith(sep) && !/^[a-zA-Z]:/.test(r));
}

/** The workspace packages under `root/packagesDir`, from their package.json files. */
export function readPackages(root: string, packagesDir = 'packages'): PackageInfo[] {
  const base = join(root, packagesDir);
  const out: PackageInfo[] = [];
  for (const name of readdirSync(base).sort()) {
    const pj = join(base, name, 'package.json');
    if (!existsSync(pj)) continue;
    const json = readJson(pj);
    const deps = (json.dependencies ?? {}) as Record<string, string>;
    const dev = (json.devDependencies ?? {}) as Record<string, string>;
    out.push({
      name: String(json.name),
      dir: join(base, name),
      dependencies: new Set(Object.keys(deps)),
      devDependencies: new Set(Object.keys(dev)),
    });
  }
  return out;
}

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? spec);
}

/** The specifier of `new URL('lit', import.meta.url)` (optionally `.href`, or inside `fileURLToPath(...)`). */
function urlSpecifier(e: ts.Expression): string | undefined {
  let x = e;
  if (ts.isPropertyAccessExpression(x) && x.name.text === 'href') x = x.expression;
  if (ts.isCallExpression(x) && ts.isIdentifier(x.expression) && x.expression.text === 'fileURLToPath') {
    const a = x.arguments[0];
    if (!a) return undefined;
    x = a;
    if (ts.isPropertyAccessExpression(x) && x.name.text === 'href') x = x.expression;
  }
  if (!ts.isNewExpression(x) || !ts.isIdentifier(x.expression) || x.expression.text !== 'URL')
    return undefined;
  const [a, b] = x.arguments ?? [];
  if (!a || !b || !ts.isStringLiteralLike(a)) return undefined;
  if (!(ts.isPropertyAccessExpression(b) && b.name.text === 'url' && ts.isMetaProperty(b.expression))) {
    return undefined;
  }
  return a.text.startsWith('.') ? a.text : `./${a.text}`;
}

/**
 * The specifier an `import()` / `require()` argument names, if the checker can see it: a string
 * literal, a URL relative to `import.meta.url`, or a `const` in the same file initialised to one.
 */
function staticSpecifier(arg: ts.Expression, consts: ReadonlyMap<string, ts.Expression>): string | undefined {
  if (ts.isStringLiteralLike(arg)) return arg.text;
  const u = urlSpecifier(arg);
  if (u !== undefined) return u;
  if (ts.isIdentifier(arg)) {
    const init = consts.get(arg.text);
    // A const bound to a plain string literal is exactly the `const spec = '@hearth/server'` trick that
    // hides an edge from tsc: tsc does not follow it, so it counts as hidden too.
    if (init && !ts.isStringLiteralLike(init)) return urlSpecifier(init);
  }
  return undefined;
}

interface RawImport {
  readonly spec: string;
  readonly line: number;
  readonly hidden: boolean;
}

/** Every import in one file's text (see the module comment for what counts). */
export function scanImports(fileName: string, text: string): RawImport[] {
  const kind = /\.[cm]?js$/.test(fileName) ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, kind);
  const out: RawImport[] = [];
  const consts = new Map<string, ts.Expression>();
  const requireFns = new Set<string>();
  const lineOf = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const collectConsts = (n: ts.Node): void => {
    if (
      ts.isVariableDeclarationList(n) &&
      (n.flags & ts.NodeFlags.Const) !== 0 &&
      n.declarations.length > 0
    ) {
      for (const d of n.declarations) {
        if (!ts.isIdentifier(d.name) || !d.initializer) continue;
        consts.set(d.name.text, d.initializer);
        const i = d.initializer;
        if (
          ts.isCallExpression(i) &&
          ts.isIdentifier(i.expression) &&
          i.expression.text === 'createRequire'
        ) {
          requireFns.add(d.name.text);
        }
      }
    }
    ts.forEachChild(n, collectConsts);
  };
  collectConsts(sf);
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier) {
      if (ts.isStringLiteralLike(n.moduleSpecifier)) {
        out.push({ spec: n.moduleSpecifier.text, line: lineOf(n), hidden: false });
      }
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)) {
      const e = n.moduleReference.expression;
      if (ts.isStringLiteralLike(e)) out.push({ spec: e.text, line: lineOf(n), hidden: false });
    } else if (ts.isImportTypeNode(n)) {
      const a = n.argument;
      if (ts.isLiteralTypeNode(a) && ts.isStringLiteralLike(a.literal)) {
        out.push({ spec: a.literal.text, line: lineOf(n), hidden: false });
      }
    } else if (ts.isCallExpression(n)) {
      const callee = n.expression;
      const isImport = callee.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(callee) && callee.text === 'require';
      const isResolve =
        ts.isPropertyAccessExpression(callee) &&
        callee.name.text === 'resolve' &&
        ts.isMetaProperty(callee.expression);
      if (isImport || isRequire || isResolve) {
        const arg = n.arguments[0];
        if (arg) {
          const spec = staticSpecifier(arg, consts);
          if (spec !== undefined) out.push({ spec, line: lineOf(n), hidden: false });
          else out.push({ spec: arg.getText(sf), line: lineOf(n), hidden: true });
        }
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** Which package directory a path falls in (the deepest match). */
function owner(pkgs: readonly PackageInfo[], file: string): PackageInfo | undefined {
  let best: PackageInfo | undefined;
  for (const p of pkgs) if (inside(p.dir, file) && (!best || p.dir.length > best.dir.length)) best = p;
  return best;
}

/** A shipped file: under src/ or bin/ of its package. */
function shipped(pkg: PackageInfo, file: string): boolean {
  const r = relative(pkg.dir, file).split(sep);
  return r[0] === 'src' || r[0] === 'bin';
}

function findCycles(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const key = (c: string[]) => {
    const body = c.slice(0, -1);
    const i = body.indexOf([...body].sort()[0] as string);
    return [...body.slice(i), ...body.slice(0, i)].join('>');
  };
  const stack: string[] = [];
  const onStack = new Set<string>();
  const done = new Set<string>();
  const dfs = (n: string): void => {
    stack.push(n);
    onStack.add(n);
    for (const m of graph.get(n) ?? []) {
      if (onStack.has(m)) {
        const c = [...stack.slice(stack.indexOf(m)), m];
        const k = key(c);
        if (!seen.has(k)) {
          seen.add(k);
          cycles.push(c);
        }
      } else if (!done.has(m)) dfs(m);
    }
    stack.pop();
    onStack.delete(n);
    done.add(n);
  };
  for (const n of [...graph.keys()].sort()) if (!done.has(n)) dfs(n);
  return cycles;
}

/** Checks the package graph of the repository at `root`. */
export function checkGraph(root: string, opts: GraphOptions = {}): GraphReport {
  const leaves = new Set(opts.leaves ?? DEFAULT_LEAVES);
  const packagesDir = opts.packagesDir ?? 'packages';
  const pkgs = readPackages(root, packagesDir);
  const byName = new Map(pkgs.map((p) => [p.name, p]));
  const rel = (f: string) => relative(root, f).split(sep).join('/');
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);

  // ---- imports -------------------------------------------------------------------------------------
  const edges: ImportEdge[] = [];
  const fileEdges = new Map<string, ImportEdge[]>();
  for (const pkg of pkgs) {
    for (const file of walk(pkg.dir)) {
      const list: ImportEdge[] = [];
      for (const raw of scanImports(file, readFileSync(file, 'utf8'))) {
        let target: string | undefined;
        let resolved: string | undefined;
        if (raw.hidden) {
          // unknown target
        } else if (raw.spec.startsWith('.') || raw.spec.startsWith('/')) {
          resolved = resolve(dirname(file), raw.spec);
          const o = owner(pkgs, resolved);
          if (o && o !== pkg) target = o.name;
        } else if (byName.has(packageName(raw.spec))) {
          target = packageName(raw.spec);
        }
        const e: ImportEdge = {
          file,
          line: raw.line,
          spec: raw.spec,
          hidden: raw.hidden,
          ...(target !== undefined ? { target } : {}),
          ...(resolved !== undefined ? { resolved } : {}),
        };
        list.push(e);
        edges.push(e);
        if (raw.hidden) {
          add({
            kind: 'hidden',
            pkg: pkg.name,
            where: `${rel(file)}:${raw.line}`,
            message: `import(${raw.spec}) has a computed specifier: the build and this check cannot see what it loads; use a literal`,
          });
        }
      }
      fileEdges.set(file, list);
    }
  }

  // ---- package.json against the imports -------------------------------------------------------------
  for (const pkg of pkgs) {
    const used = new Set<string>();
    for (const [file, list] of fileEdges) {
      if (owner(pkgs, file) !== pkg) continue;
      for (const e of list) {
        if (!e.target || e.target === pkg.name) continue;
        used.add(e.target);
        const where = `${rel(file)}:${e.line}`;
        const how = e.spec.startsWith('.') ? ` (by the relative path ${e.spec})` : '';
        if (shipped(pkg, file)) {
          if (pkg.dependencies.has(e.target)) continue;
          if (pkg.devDependencies.has(e.target)) {
            add({
              kind: 'dev-only',
              pkg: pkg.name,
              where,
              message: `${e.target} is imported by shipped code${how} but is only a devDependency`,
            });
          } else {
            add({
              kind: 'undeclared',
              pkg: pkg.name,
              where,
              message: `imports ${e.target}${how}, not in dependencies`,
            });
          }
        } else if (!pkg.dependencies.has(e.target) && !pkg.devDependencies.has(e.target)) {
          add({
            kind: 'undeclared',
            pkg: pkg.name,
            where,
            message: `imports ${e.target}${how}, not in dependencies or devDependencies`,
          });
        }
      }
    }
    for (const d of [...pkg.dependencies, ...pkg.devDependencies]) {
      if (byName.has(d) && !used.has(d)) {
        add({ kind: 'unused', pkg: pkg.name, message: `declares ${d} but no file imports it` });
      }
    }
  }

  // ---- tsconfig references against the imports -----------------------------------------------------
  for (const pkg of pkgs) {
    const configs = walkConfigs(pkg.dir);
    for (const cfgPath of configs) {
      const cfg = readJson(cfgPath);
      const cfgDir = dirname(cfgPath);
      const isRoot = cfgDir === pkg.dir;
      const include = (cfg.include as string[] | undefined) ?? [];
      const covered = new Set<string>();
      for (const inc of include) {
        if (/[*?]/.test(inc)) {
          add({
            kind: 'workspace',
            pkg: pkg.name,
            where: rel(cfgPath),
            message: `glob include "${inc}" is not supported by the check`,
          });
          continue;
        }
        const p = resolve(cfgDir, inc);
        if (!existsSync(p)) continue;
        if (statSync(p).isDirectory()) for (const f of walk(p)) covered.add(f);
        else covered.add(p);
      }
      const need = new Map<string, string>();
      for (const f of covered) {
        for (const e of fileEdges.get(f) ?? []) {
          const t = e.target ?? (!isRoot && importsOwnSource(pkg, e) ? pkg.name : undefined);
          if (!t) continue;
          if (t === pkg.name && isRoot) continue;
          const tp = byName.get(t);
          if (tp && !need.has(tp.dir)) need.set(tp.dir, `${rel(f)}:${e.line}`);
        }
      }
      const refs = new Set(
        ((cfg.references as { path: string }[] | undefined) ?? []).map((r) => {
          const p = resolve(cfgDir, r.path);
          return p.endsWith('.json') ? dirname(p) : p;
        }),
      );
      for (const [dir, where] of need) {
        if (!refs.has(dir)) {
          add({
            kind: 'reference-missing',
            pkg: pkg.name,
            where: rel(cfgPath),
            message: `files import ${rel(dir)} (first at ${where}) but references do not list it`,
          });
        }
      }
      for (const dir of refs) {
        if (!need.has(dir)) {
          add({
            kind: 'reference-stale',
            pkg: pkg.name,
            where: rel(cfgPath),
            message: `references ${rel(dir)} but no file it includes imports it`,
          });
        }
      }
    }
  }

  // ---- declared graph: cycles and leaves -----------------------------------------------------------
  const declared = new Map<string, Set<string>>();
  for (const pkg of pkgs) {
    const s = new Set(
      [...pkg.dependencies, ...pkg.devDependencies].filter((d) => byName.has(d) && d !== pkg.name),
    );
    declared.set(pkg.name, s);
  }
  for (const c of findCycles(declared)) {
    add({ kind: 'cycle', pkg: c[0] as string, message: `declared dependency cycle: ${c.join(' -> ')}` });
  }
  for (const pkg of pkgs) {
    if (!leaves.has(pkg.name)) continue;
    for (const d of declared.get(pkg.name) ?? []) {
      add({ kind: 'leaf', pkg: pkg.name, message: `is a leaf but declares ${d}` });
    }
    for (const [file, list] of fileEdges) {
      if (owner(pkgs, file) !== pkg) continue;
      for (const e of list) {
        if (e.target && e.target !== pkg.name) {
          add({
            kind: 'leaf',
            pkg: pkg.name,
            where: `${rel(file)}:${e.line}`,
            message: `is a leaf but imports ${e.target}`,
          });
        }
      }
    }
  }

  // ---- workspaces and root references ---------------------------------------------------------------
  const rootPkg = readJson(join(root, 'package.json'));
  const ws = new Set(((rootPkg.workspaces as string[] | undefined) ?? []).map((w) => resolve(root, w)));
  const rootCfgPath = join(root, 'tsconfig.json');
  const rootRefs = existsSync(rootCfgPath)
    ? new Set(
        ((readJson(rootCfgPath).references as { path: string }[] | undefined) ?? []).map((r) =>
          resolve(root, r.path),
        ),
      )
    : new Set<string>();
  for (const pkg of pkgs) {
    if (!ws.has(pkg.dir))
      add({ kind: 'workspace', pkg: pkg.name, message: `${rel(pkg.dir)} is not in the root workspaces` });
    for (const cfg of walkConfigs(pkg.dir)) {
      const d = dirname(cfg);
      if (!rootRefs.has(d))
        add({
          kind: 'workspace',
          pkg: pkg.name,
          message: `${rel(cfg)} is not referenced by the root tsconfig.json`,
        });
    }
  }
  for (const w of ws) {
    if (!pkgs.some((p) => p.dir === w))
      add({ kind: 'workspace', pkg: 'root', message: `workspace ${rel(w)} has no package.json` });
  }

  return { packages: pkgs, edges, findings, declared };
}

/** A test/bench project importing its own package's sources by a relative path (needs a reference to it). */
function importsOwnSource(pkg: PackageInfo, e: ImportEdge): boolean {
  return e.resolved !== undefined && inside(join(pkg.dir, 'src'), e.resolved);
}

function walkConfigs(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walkConfigs(p, out);
    else if (name === 'tsconfig.json') out.push(p);
  }
  return out.sort();
}

/** One line per finding, for a test failure or the CLI. */
export function formatFindings(findings: readonly Finding[]): string {
  return findings
    .map((f) => `${f.kind.padEnd(17)} ${f.pkg}${f.where ? ` ${f.where}` : ''}: ${f.message}`)
    .join('\n');
}
