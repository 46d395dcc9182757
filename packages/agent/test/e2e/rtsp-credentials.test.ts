// Review R12: an RTSP camera's password is in no process's argv or environment while its frames flow.
// Real GStreamer RTSP server with basic auth, real ffprobe + ffmpeg spawned by CameraSource; every
// process is killed by PID at the end.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { type RtspServerHandle, rtspServerAvailable, startRtspServer } from '@hearth/testkit';
import { type AccessUnit, CameraSource, parseCameraSource } from '../../src/media/index.js';
import { childPidsNamed } from './harness.js';

const PASSWORD = `pw-${Math.random().toString(36).slice(2)}-R12`;
const rtsp = rtspServerAvailable();
const skip = rtsp === true ? false : rtsp;

/** Every process whose cmdline or environ (as far as readable) holds `needle`, except `exclude`. */
function scanProc(needle: string, exclude: readonly number[]): { pid: number; where: string }[] {
  const hits: { pid: number; where: string }[] = [];
  let scanned = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (exclude.includes(pid)) continue;
    for (const f of ['cmdline', 'environ']) {
      let text: string;
      try {
        text = readFileSync(`/proc/${d}/${f}`, 'latin1');
      } catch {
        continue; // exited meanwhile
      }
      scanned++;
      if (text.includes(needle)) hits.push({ pid, where: f });
    }
  }
  assert.ok(scanned > 10, 'the scan read the process table');
  return hits;
}

function frames(s: CameraSource, n: number, timeoutMs = 20_000): Promise<AccessUnit[]> {
  return new Promise((resolve, reject) => {
    const got: AccessUnit[] = [];
    const t = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`only ${got.length}/${n} access units in ${timeoutMs} ms`));
    }, timeoutMs);
    const sub = s.subscribe((au) => {
      got.push(au);
      if (got.length === n) {
        clearTimeout(t);
        sub.unsubscribe();
        resolve(got);
      }
    });
  });
}

describe('review R12: RTSP credentials stay out of /proc/*/cmdline and /proc/*/environ', { skip }, () => {
  let server: RtspServerHandle | undefined;
  const sources: CameraSource[] = [];
  const procs: ChildProcess[] = [];
  after(async () => {
    await Promise.all(sources.map((s) => s.close()));
    for (const p of procs) p.kill('SIGKILL');
    for (const pid of await childPidsNamed('ffmpeg')) process.kill(pid, 'SIGKILL');
    await server?.close();
  });

  it('while frames flow from a credentialed camera, no process shows the password', async () => {
    // The fixture (the "camera") gets its credentials in its environment, so it is left out of the scan.
    server = await startRtspServer({
      auth: { user: 'viewer', password: PASSWORD },
      size: '320x240',
      fps: 15,
      gopSeconds: 1,
      bitrateKbps: 300,
    });
    const s = new CameraSource('cam', parseCameraSource('cam', server.urlWithAuth), {
      stopDelayMs: 300,
      backoffInitialMs: 200,
    });
    sources.push(s);
    const errors: string[] = [];
    s.on('error', (e: Error) => errors.push(e.message));
    const aus = await frames(s, 20);
    assert.ok(
      aus.some((a) => a.keyframe),
      'frames flow, with a keyframe (the password was accepted)',
    );
    const ffmpegs = await childPidsNamed('ffmpeg');
    assert.equal(ffmpegs.length, 1, 'the camera runs on one ffmpeg child, which the scan covers');
    assert.deepEqual(scanProc(PASSWORD, [server.pid]), []);
    assert.deepEqual(scanProc(encodeURIComponent(PASSWORD), [server.pid]), []);
    assert.ok(!errors.some((m) => m.includes(PASSWORD)), 'no error message holds the password');
  });

  it('control: the old command line (URL after -i) leaks the password to the same scan', async () => {
    assert.ok(server);
    const old = spawn(
      'ffmpeg',
      [
        '-hide_banner',
        '-nostdin',
        '-loglevel',
        'error',
        '-rtsp_transport',
        'tcp',
        '-i',
        server.urlWithAuth,
      ].concat(['-map', '0:v:0', '-c:v', 'copy', '-f', 'null', '-']),
      { stdio: 'ignore' },
    );
    procs.push(old);
    await new Promise((r) => old.once('spawn', r));
    const hits = scanProc(PASSWORD, [server.pid]);
    assert.ok(
      hits.some((h) => h.pid === old.pid && h.where === 'cmdline'),
      `the scan finds the password in the old ffmpeg's cmdline (${JSON.stringify(hits)})`,
    );
  });
});
