/** Test helpers: a real server on 127.0.0.1:0 and real `ws` clients that sign with real keys. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createAuth,
  deviceIdFromKey,
  encodeId,
  type ServerFrame,
  type Signer,
  systemEnv,
  WebCryptoSigner,
} from '@hearth/protocol';
import WebSocket from 'ws';
import type { HubTestHooks } from '../src/hub.js';
import { type HearthServer, type ServerConfigInput, startServer } from '../src/index.js';

export type Frame = ServerFrame & Record<string, unknown>;

export function tempDir(): { dir: string; rm(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-server-test-'));
  return { dir, rm: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function testServer(
  dataDir: string,
  over: Partial<ServerConfigInput> = {},
  hubTestHooks?: HubTestHooks,
): Promise<HearthServer & { wsUrl: string }> {
  const s = await startServer(
    {
      dataDir,
      host: '127.0.0.1',
      port: 0,
      relay: { enabled: false },
      ...over,
    },
    hubTestHooks ? { hubTestHooks } : {},
  );
  return Object.assign(s, { wsUrl: `${s.url.replace(/^http/, 'ws')}/ws` });
}

/** A raw client: collects frames, waits for them by type. */
export class Client {
  readonly frames: Frame[] = [];
  private waiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  closeCode: number | undefined;

  /** `localAddress`: connect from this loopback address (e.g. 127.0.0.2, a second "host"). */
  constructor(url: string, localAddress?: string) {
    // Test servers use throwaway certificates.
    this.ws = new WebSocket(url, {
      maxPayload: 1 << 20,
      rejectUnauthorized: false,
      ...(localAddress ? { localAddress } : {}),
    });
    this.ws.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) =>
      this.ws.once('close', (code, reason) => {
        this.closeCode = code;
        resolve({ code, reason: reason.toString() });
      }),
    );
    this.ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as Frame;
      this.frames.push(f);
      const w = this.waiters.find((x) => x.pred(f));
      if (w) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(f);
      }
    });
  }

  /** Wait for the next not-yet-consumed frame of type `t` (matching `pred`). */
  next(t: string, pred: (f: Frame) => boolean = () => true, timeoutMs = 5000): Promise<Frame> {
    const p = (f: Frame) => f.t === t && pred(f) && !consumed.has(f);
    const consumed = this.consumed;
    const have = this.frames.find(p);
    if (have) {
      consumed.add(have);
      return Promise.resolve(have);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timeout waiting for ${t}`)), timeoutMs);
      this.waiters.push({
        pred: p,
        resolve: (f) => {
          clearTimeout(timer);
          consumed.add(f);
          resolve(f);
        },
      });
    });
  }
  private readonly consumed = new Set<Frame>();

  send(f: unknown): void {
    this.ws.send(typeof f === 'string' ? f : JSON.stringify(f));
  }

  close(): void {
    this.ws.close();
  }
}

export interface Identity {
  signer: Signer;
  id: string;
  role: 'device' | 'viewer';
}

export async function device(): Promise<Identity> {
  const signer = await WebCryptoSigner.generate();
  return { signer, id: deviceIdFromKey(signer.publicKey), role: 'device' };
}

export async function viewer(): Promise<Identity> {
  const signer = await WebCryptoSigner.generate();
  return { signer, id: encodeId('userKey', signer.publicKey), role: 'viewer' };
}

/** Connect and authenticate; resolves with the client and its `ready` frame. */
export async function connect(
  url: string,
  who: Identity,
  localAddress?: string,
): Promise<{ c: Client; ready: Frame }> {
  const c = new Client(url, localAddress);
  const hello = await c.next('hello');
  const env = await createAuth(who.signer, who.role, hello as { srv: string; ch: string }, systemEnv);
  c.send({ t: 'auth', env });
  const ready = await c.next('ready');
  return { c, ready };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Relay credentials the honest way (review R6): a device that allows a viewer, the viewer
 * messages it, the device asks. Resolves with the `relay` frame each of them got.
 */
export async function relayGrant(url: string): Promise<{ device: Frame; viewer: Frame; close(): void }> {
  const d = await device();
  const v = await viewer();
  const cv = await connect(url, v);
  const cd = await connect(url, d);
  cd.c.send({ t: 'allow', k: [v.id] });
  cv.c.send({ t: 'send', to: d.id, m: { t: 'relay/ask' } });
  await cd.c.next('recv');
  cd.c.send({ t: 'relay', v: v.id });
  const [fd, fv] = await Promise.all([cd.c.next('relay'), cv.c.next('relay')]);
  return {
    device: fd,
    viewer: fv,
    close() {
      cd.c.close();
      cv.c.close();
    },
  };
}
