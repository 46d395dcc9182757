/**
 * Test harness for the viewer in a real Chromium: a static server for dist/ (with the production
 * CSP) plus a mock rendezvous on the same 127.0.0.1 port that really authenticates the viewer
 * (hello → auth → ready, verified with the protocol's verifyAuth) and routes messages to fake
 * devices written in the test. Loopback only.
 */

import { readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DeviceChannels,
  decodeClientFrame,
  encodeId,
  type IceServer,
  newChallenge,
  type Signer,
  systemEnv,
  verifyAuth,
  WebCryptoSigner,
} from '@hearth/protocol';
import { type WebSocket, WebSocketServer } from 'ws';
import { APP_HEADERS, CONTENT_TYPES } from '../../src/index.js';

export const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));

/** The security headers the real server sends with the app (defined by the viewer package). */
export { APP_HEADERS };

/** A fake device: receives what the viewer sends it, answers through `reply`. */
export type FakeDevice = (
  m: { t: string; [k: string]: unknown },
  reply: (m: unknown) => void,
  from: string,
) => void | Promise<void>;

export interface Harness {
  url: string;
  /** Register a fake device by ID (and whether the server reports it online). */
  /**
   * Register a fake device by ID (and whether the server reports it online). With `signer` (its
   * device key) it speaks through the sealed channel as a real agent does (protocol
   * DeviceChannels): the handler sees and replies plaintext messages; pairing passes in clear.
   */
  device(id: string, handler: FakeDevice, online?: boolean, signer?: Signer): void;
  setOnline(id: string, online: boolean): void;
  /** Lookup tags the server knows (manual code → device ID). */
  tags: Map<string, string>;
  /** Frames received from viewers, for assertions. */
  log: { from: string; frame: { t: string; [k: string]: unknown } }[];
  authenticated: string[];
  ice: IceServer[];
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const serverSigner = await WebCryptoSigner.generate(true);
  const srv = encodeId('serverKey', serverSigner.publicKey);
  const devices = new Map<string, { handler: FakeDevice; online: boolean; channels?: DeviceChannels }>();
  const viewers = new Map<string, WebSocket>();
  const watchers = new Map<string, Set<string>>();
  const tags = new Map<string, string>();
  const log: Harness['log'] = [];
  const authenticated: string[] = [];
  const ice: IceServer[] = [];

  const http: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const rel =
      path === '/' || path === '/pair' || path === '/pair/'
        ? 'index.html'
        : normalize(path).replace(/^[/\\]+/, '');
    const file = join(DIST, rel);
    if (!file.startsWith(DIST) || rel.startsWith('lib')) {
      res.writeHead(404).end();
      return;
    }
    try {
      if (!statSync(file).isFile()) throw new Error('not a file');
      res.writeHead(200, {
        'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-cache',
        ...APP_HEADERS,
      });
      res.end(readFileSync(file));
    } catch {
      res.writeHead(404, APP_HEADERS).end('not found');
    }
  });
  const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: 96 * 1024 });

  const presence = (d: string, online: boolean) => {
    for (const [viewer, set] of watchers) {
      if (set.has(d)) viewers.get(viewer)?.send(JSON.stringify({ t: 'presence', d, online }));
    }
  };

  wss.on('connection', (ws) => {
    const ch = newChallenge(systemEnv);
    let id: string | undefined;
    ws.send(JSON.stringify({ t: 'hello', v: 1, srv, ch }));
    ws.on('message', async (data) => {
      let f: ReturnType<typeof decodeClientFrame>;
      try {
        f = decodeClientFrame(data.toString());
      } catch {
        ws.close(1008, 'bad frame');
        return;
      }
      if (!id) {
        if (f.t !== 'auth') return void ws.close(1008, 'auth first');
        try {
          const who = await verifyAuth(f.env, { serverKey: srv, challenge: ch, now: Date.now() });
          if (who.role !== 'viewer') return void ws.close(1008, 'viewers only here');
          id = who.id;
        } catch {
          return void ws.close(1008, 'auth failed');
        }
        viewers.set(id, ws);
        authenticated.push(id);
        ws.send(JSON.stringify({ t: 'ready', id, ice }));
        return;
      }
      const from = id;
      log.push({ from, frame: f as { t: string } });
      switch (f.t) {
        case 'ping':
          return void ws.send(JSON.stringify({ t: 'pong' }));
        case 'watch': {
          const set = watchers.get(from) ?? new Set();
          watchers.set(from, set);
          for (const d of f.d) {
            set.add(d);
            ws.send(JSON.stringify({ t: 'presence', d, online: devices.get(d)?.online ?? false }));
          }
          return;
        }
        case 'pair/lookup':
          return void ws.send(JSON.stringify({ t: 'pair/found', tag: f.tag, d: tags.get(f.tag) ?? null }));
        case 'send': {
          const dev = devices.get(f.to);
          if (!dev?.online) {
            ws.send(
              JSON.stringify({
                t: 'error',
                code: 'E_OFFLINE',
                msg: 'recipient not connected',
                ...(f.ref ? { ref: f.ref } : {}),
              }),
            );
            return;
          }
          const reply = (m: unknown) =>
            ws.readyState === ws.OPEN && ws.send(JSON.stringify({ t: 'recv', from: f.to, m }));
          if (!dev.channels) {
            await dev.handler(f.m as { t: string }, reply, from);
            return;
          }
          const r = await dev.channels.receive(from, f.m);
          if (r.kind === 'pair') await dev.handler(r.m, reply, from);
          else if (r.kind === 'message')
            await dev.handler(r.m, (m) => dev.channels?.send(from, m as never, r.channel), from);
          return;
        }
        default:
          return;
      }
    });
    ws.on('close', () => {
      if (id && viewers.get(id) === ws) viewers.delete(id);
    });
  });

  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    device(id, handler, online = true, signer) {
      const channels = signer
        ? new DeviceChannels({
            signer,
            deviceId: id,
            env: systemEnv,
            route: (to, m) => {
              const ws = viewers.get(to);
              if (ws?.readyState !== ws?.OPEN || !ws) return false;
              ws.send(JSON.stringify({ t: 'recv', from: id, m }));
              return true;
            },
          })
        : undefined;
      devices.set(id, { handler, online, ...(channels ? { channels } : {}) });
    },
    setOnline(id, online) {
      const d = devices.get(id);
      if (d) d.online = online;
      presence(id, online);
    },
    tags,
    log,
    authenticated,
    ice,
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}
