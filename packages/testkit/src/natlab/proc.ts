/** Small process helpers shared by the lab and the browser driver. */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** Sends a signal to a process group (the child was spawned detached) and then to the PID itself. */
export function killTree(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // no such group: fall through to the single process
  }
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Whether a process exists and is not a zombie (a killed orphan may wait a while to be reaped). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return procState(pid) !== 'Z';
}

/** Process state letter from /proc/<pid>/stat (R, S, D, Z, ...), or undefined if it is gone. */
export function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** One row of the process table. */
export interface ProcEntry {
  readonly pid: number;
  readonly ppid: number;
  /** Command name (field 2 of /proc/<pid>/stat). */
  readonly comm: string;
  /** State letter (R, S, D, Z, ...). */
  readonly state: string;
}

/** Every process visible in /proc (those that exit while it is read are left out). */
export function processTable(): ProcEntry[] {
  const out: ProcEntry[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const [state = '', ppid = ''] = stat.slice(close + 2).split(' ');
      out.push({ pid: Number(d), ppid: Number(ppid), comm: stat.slice(stat.indexOf('(') + 1, close), state });
    } catch {
      // raced with exit
    }
  }
  return out;
}

/** Live (not zombie) descendants of `root` whose command name is `name`. */
export function descendantsNamed(root: number, name: string): number[] {
  const table = processTable();
  const parent = new Map(table.map((p) => [p.pid, p.ppid]));
  return table
    .filter((p) => p.comm === name && p.state !== 'Z')
    .filter((p) => {
      for (let q = parent.get(p.pid); q !== undefined && q > 1; q = parent.get(q))
        if (q === root) return true;
      return false;
    })
    .map((p) => p.pid);
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), to detect PID reuse. */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Blocking sleep, for the synchronous exit path only. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export interface RunOptions {
  readonly input?: string;
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Called with the child right after it is spawned (for PID tracking). */
  readonly onSpawn?: (child: ChildProcess) => void;
}

/** Runs a command to completion in its own process group; on timeout the whole group is killed. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      detached: true,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killTree(child.pid, 'SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    if (child.pid !== undefined) opts.onSpawn?.(child);
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Like `run`, but throws with the command and its stderr unless it exits 0. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const why = r.timedOut ? 'timed out' : `exited ${r.code ?? r.signal}`;
    throw new Error(`${cmd} ${args.join(' ')} ${why}: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

/** Synchronous variant for exit handlers; never throws. */
export function runSyncQuiet(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10_000,
    });
  } catch {
    return '';
  }
}
