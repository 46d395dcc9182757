/**
 * Browser harness for the media path: a tiny page on 127.0.0.1 that makes a recvonly H.264 offer,
 * hands it to a signaling function (plain, unsigned here; the lead's signed variant plugs in its own),
 * applies the answer and reports the time from "view" to the first decoded frame
 * (requestVideoFrameCallback). Only loopback candidates are used on both sides.
 *
 * Reused by test/e2e/*.test.ts and bench/ttff.ts.
 */

import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromiumFlags, processTable } from '@hearth/testkit';
import type { Browser, Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
/** The testkit's headless flags, plus loopback-only WebRTC with addresses (not mDNS names) and autoplay. */
export const CHROMIUM_FLAGS = chromiumFlags({
  allowLoopbackInPeerConnection: true,
  args: ['--autoplay-policy=no-user-gesture-required', '--disable-features=WebRtcHideLocalIpsWithMdns'],
});

/** Signaling: camera name and offer SDP in, answer SDP out. */
export type SignalFn = (
  camera: string,
  offerSdp: string,
) => Promise<{ answerSdp: string; sessionId: string }>;
export type HangupFn = (sessionId: string) => Promise<void>;

export interface ViewResult {
  readonly sessionId: string;
  /** view click → first decoded frame presented (requestVideoFrameCallback), ms. */
  readonly ttffMs: number;
  /** view click → answer applied, ms (offer creation + gathering + signaling + answer). */
  readonly signalMs: number;
  /** view click → ICE/DTLS connected, ms. */
  readonly connectedMs: number;
  readonly width: number;
  readonly height: number;
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>hearth media test</title>
<body><script>
const onlyLoopback = (sdp) => sdp.split('\\r\\n').filter((l) => !l.startsWith('a=candidate:') || / 127\\.0\\.0\\.1 /.test(l)).join('\\r\\n');
const sessions = new Map();
window.hearthView = async (camera, timeoutMs) => {
  const t0 = performance.now();
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver('video', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true; video.playsInline = true; video.width = 320;
  document.body.appendChild(video);
  let connectedMs = -1;
  pc.addEventListener('connectionstatechange', () => { if (pc.connectionState === 'connected' && connectedMs < 0) connectedMs = performance.now() - t0; });
  const firstFrame = new Promise((resolve) => {
    pc.ontrack = (ev) => {
      video.srcObject = new MediaStream([ev.track]);
      video.play().catch(() => {});
      video.requestVideoFrameCallback((now, meta) => resolve({ t: performance.now(), w: meta.width, h: meta.height }));
    };
  });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => {
    if (pc.iceGatheringState === 'complete') return r();
    const t = setTimeout(r, 1000);
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') { clearTimeout(t); r(); } });
  });
  const { answerSdp, sessionId } = await window.hearthSignal(camera, onlyLoopback(pc.localDescription.sdp));
  await pc.setRemoteDescription({ type: 'answer', sdp: onlyLoopback(answerSdp) });
  const signalMs = performance.now() - t0;
  sessions.set(sessionId, { pc, video });
  const ff = await Promise.race([firstFrame, new Promise((r) => setTimeout(() => r(null), timeoutMs))]);
  if (!ff) throw new Error('no frame within ' + timeoutMs + ' ms (connection ' + pc.connectionState + ')');
  return { sessionId, ttffMs: ff.t - t0, signalMs, connectedMs, width: ff.w, height: ff.h };
};
window.hearthFramesDecoded = async (sessionId) => {
  const s = sessions.get(sessionId);
  if (!s) return -1;
  let n = 0;
  (await s.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') n = r.framesDecoded || 0; });
  return n;
};
window.hearthStop = (sessionId) => {
  const s = sessions.get(sessionId);
  if (!s) return;
  s.pc.close(); s.video.srcObject = null; s.video.remove(); sessions.delete(sessionId);
};
</script></body>`;

export interface PageServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves the test page on 127.0.0.1 (random port). */
export async function startPageServer(): Promise<PageServer> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(PAGE);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface BrowserHandle {
  readonly browser: Browser;
  readonly pid: number | undefined;
  close(): Promise<void>;
}

/** Launches Debian's Chromium with the test flags; close() also kills its process group by PID. */
export async function launchBrowser(executablePath = CHROMIUM): Promise<BrowserHandle> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: CHROMIUM_FLAGS,
    timeout: 30_000,
  });
  // playwright-core does not expose the PID directly; find the browser process among our children.
  const pid = await findChildPid(executablePath);
  return {
    browser,
    pid,
    close: async () => {
      await Promise.race([browser.close().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
      if (pid !== undefined) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
}

async function findChildPid(exe: string): Promise<number | undefined> {
  for (const p of processTable()) {
    if (p.ppid !== process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');
      if (cmd.startsWith(exe) || cmd.includes('chromium')) return p.pid;
    } catch {
      // raced with exit
    }
  }
  return undefined;
}

export interface ViewerPage {
  readonly page: Page;
  /** One view: offer → signal → answer → first frame. */
  view(camera: string, timeoutMs?: number): Promise<ViewResult>;
  framesDecoded(sessionId: string): Promise<number>;
  /** Closes the browser side of a session and calls hangup for the agent side. */
  stop(sessionId: string): Promise<void>;
}

/** Opens the test page in a fresh context, with `signal`/`hangup` exposed to it. */
export async function openViewerPage(
  browser: Browser,
  pageUrl: string,
  signal: SignalFn,
  hangup: HangupFn,
): Promise<ViewerPage> {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.exposeFunction('hearthSignal', (camera: string, offer: string) => signal(camera, offer));
  await page.goto(pageUrl);
  return {
    page,
    view: (camera, timeoutMs = 15_000) =>
      page.evaluate(
        ([c, t]) =>
          (window as unknown as { hearthView(c: string, t: number): Promise<ViewResult> }).hearthView(c, t),
        [camera, timeoutMs] as const,
      ),
    framesDecoded: (id) =>
      page.evaluate(
        (s) =>
          (window as unknown as { hearthFramesDecoded(s: string): Promise<number> }).hearthFramesDecoded(s),
        id,
      ),
    stop: async (id) => {
      await page.evaluate((s) => (window as unknown as { hearthStop(s: string): void }).hearthStop(s), id);
      await hangup(id);
    },
  };
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[idx] as number;
}

/** Running PIDs whose parent is this process and whose executable name is `name`. */
export async function childPidsNamed(name: string): Promise<number[]> {
  return processTable()
    .filter((p) => p.ppid === process.pid && p.comm === name && p.state !== 'Z')
    .map((p) => p.pid);
}

export interface TtffSummary {
  readonly label: string;
  readonly n: number;
  readonly ttff: { p50: number; p95: number; max: number };
  readonly signal: { p50: number; p95: number };
  readonly connected: { p50: number; p95: number };
  readonly results: readonly ViewResult[];
}

export function summarize(label: string, results: readonly ViewResult[]): TtffSummary {
  const t = results.map((r) => r.ttffMs);
  const s = results.map((r) => r.signalMs);
  const c = results.map((r) => r.connectedMs);
  return {
    label,
    n: results.length,
    ttff: { p50: percentile(t, 50), p95: percentile(t, 95), max: Math.max(...t) },
    signal: { p50: percentile(s, 50), p95: percentile(s, 95) },
    connected: { p50: percentile(c, 50), p95: percentile(c, 95) },
    results,
  };
}

/**
 * One TTFF sample: view, wait for the first frame, stop (both sides). `gapMs` (random up to it)
 * before the view puts the click at a random phase of the camera's GOP.
 */
export async function ttffSample(
  viewer: ViewerPage,
  camera: string,
  gapMs = 700,
  timeoutMs = 15_000,
): Promise<ViewResult> {
  await new Promise((r) => setTimeout(r, Math.random() * gapMs));
  const r = await viewer.view(camera, timeoutMs);
  await viewer.stop(r.sessionId);
  return r;
}
