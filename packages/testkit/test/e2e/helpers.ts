// Shared helpers for the NAT lab end-to-end tests.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function netnsList(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.length > 0);
}

export function namespacesWithPrefix(prefix: string): string[] {
  return netnsList().filter((n) => n.startsWith(`${prefix}-`));
}

/** Interfaces of the root namespace (the lab must never add any). */
export function rootLinks(): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(':')[1]?.trim() ?? '')
    .filter((n) => n.length > 0)
    .sort();
}

/** The process exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}
