#!/usr/bin/env node
// The `hearth` command. Runs the built CLI when present (npm run build), otherwise the TypeScript
// sources in this same process: tsx compiles them, and a resolve hook adds the `source` export
// condition so workspace packages resolve to their src/ (one process, so signals and kill -9 behave).
import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';

const built = fileURLToPath(new URL('../dist/main.js', import.meta.url));
if (existsSync(built) && process.env.HEARTH_FROM_SOURCE !== '1') {
  await import(built);
} else {
  register(
    'data:text/javascript,export async function resolve(s, c, next) { return next(s, { ...c, conditions: [...new Set([...c.conditions, "source"])] }); }',
  );
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  await import(new URL('../src/main.ts', import.meta.url).href);
}
