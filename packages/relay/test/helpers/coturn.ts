/** Helpers to run coturn's tools (turnutils_uclient, turnutils_peer, turnserver) as child processes. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';

/** True when `bin` is on PATH. */
export function haveBinary(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

/** A UDP port free right now on 127.0.0.1 (for tools that need an explicit port). */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** Starts turnutils_peer on 127.0.0.1:port. Kill it with {@link stopProcess}. */
export async function startPeer(port: number): Promise<ChildProcess> {
  const child = spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  return child;
}

/** Kills a child by PID and waits for it to exit (SIGKILL after 2 s). */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(child.pid, 'SIGTERM');
  const t = setTimeout(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, 2000);
  await done;
  clearTimeout(t);
}

/** Parsed summary of a turnutils_uclient run. */
export interface UclientResult {
  exitCode: number | null;
  sent: number;
  received: number;
  lost: number;
  lostPercent: number;
  sendDropped: number;
  errors: string[];
  output: string;
  /** Wall time of the run in ms. */
  elapsedMs: number;
  /** CPU ticks the uclient process used (utime+stime from /proc), if known. */
}

/** Runs turnutils_uclient with `args`, bounded by `timeoutMs`, and parses its summary. */
export function runUclient(args: string[], timeoutMs: number): Promise<UclientResult> {
  return new Promise((resolve) => {
    const start = performance.now();
    const child = spawn('turnutils_uclient', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const timer = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const num = (re: RegExp) => {
        let last: RegExpExecArray | null = null;
        for (const m of out.matchAll(new RegExp(re.source, `${re.flags}g`))) last = m as RegExpExecArray;
        return last ? Number(last[1]) : Number.NaN;
      };
      resolve({
        exitCode: code,
        sent: num(/tot_send_msgs=(\d+), tot_recv_msgs=\d+\s*$/m),
        received: num(/tot_send_msgs=\d+, tot_recv_msgs=(\d+)\s*$/m),
        lost: num(/Total lost packets (\d+)/),
        lostPercent: num(/Total lost packets \d+ \(([\d.]+)%\)/),
        sendDropped: num(/total send dropped (\d+)/),
        errors: out.split('\n').filter((l) => /error|fail|cannot/i.test(l)),
        output: out,
        elapsedMs: performance.now() - start,
      });
    });
  });
}
