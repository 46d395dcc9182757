/**
 * A tiny rendezvous server for agent tests (loopback only): the real wire protocol (hello → auth
 * verified with verifyAuth → ready), routing by authenticated ID, lookup tags, ping. Not a test file.
 */
import type { AddressInfo } from 'node:net';
import {
  decodeClientFrame,
  type IceServer,
  newChallenge,
  type ServerFrame,
  systemEnv,
  verifyAuth,
} from '@hearth/protocol';
import { type WebSocket, WebSocketServer } from 'ws';

export interface MiniRendezvous {
  url: string;
  /** Registered lookup tags → device ID. */
  tags: Map<string, string>;
  /** Every frame the server received, by authenticated ID (or '?' before auth). */
  frames: { from: string; t: string; tag?: string | null }[];
  /** Refuse the next n `pair/register` frames with E_TAG_TAKEN. */
  refuseTags: number;
  ice: IceServer[];
  /** Swallow every frame (a half-open connection: nothing comes back). */
  silent: boolean;
  /** IDs currently connected. */
  online(): string[];
  /** Drop every connection (the clients reconnect). */
  dropAll(): void;
  close(): Promise<void>;
}

export async function startMiniRendezvous(): Promise<MiniRendezvous> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const byId = new Map<string, WebSocket>();
  const srv: MiniRendezvous = {
    url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    tags: new Map(),
    frames: [],
    refuseTags: 0,
    ice: [],
    silent: false,
    online: () => [...byId.keys()],
    dropAll: () => {
      for (const ws of wss.clients) ws.terminate();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => r());
      }),
  };
  const send = (ws: WebSocket, f: ServerFrame) => ws.send(JSON.stringify(f));
  wss.on('connection', (ws) => {
    const ch = newChallenge(systemEnv);
    let id: string | undefined;
    let role: 'device' | 'viewer' | undefined;
    send(ws, { t: 'hello', v: 1, srv: 'hsk_test', ch });
    ws.on('close', () => {
      if (id && byId.get(id) === ws) {
        byId.delete(id);
        for (const [tag, d] of srv.tags) if (d === id) srv.tags.delete(tag);
      }
    });
    ws.on('message', async (data) => {
      if (srv.silent) return;
      let f: ReturnType<typeof decodeClientFrame>;
      try {
        f = decodeClientFrame(data.toString());
      } catch {
        return send(ws, { t: 'error', code: 'E_SCHEMA', msg: 'bad frame' });
      }
      srv.frames.push({ from: id ?? '?', t: f.t, ...(f.t === 'pair/register' ? { tag: f.tag } : {}) });
      if (f.t === 'auth') {
        try {
          const a = await verifyAuth(f.env, { serverKey: 'hsk_test', challenge: ch, now: Date.now() });
          id = a.id;
          role = a.role;
          byId.get(id)?.terminate();
          byId.set(id, ws);
          send(ws, { t: 'ready', id, ice: srv.ice });
        } catch {
          send(ws, { t: 'error', code: 'E_AUTH', msg: 'auth failed' });
          ws.close();
        }
        return;
      }
      if (!id) return send(ws, { t: 'error', code: 'E_BAD_STATE', msg: 'authenticate first' });
      switch (f.t) {
        case 'ping':
          return send(ws, { t: 'pong' });
        case 'send': {
          const to = byId.get(f.to);
          if (!to)
            return send(ws, {
              t: 'error',
              code: 'E_OFFLINE',
              msg: 'offline',
              ...(f.ref ? { ref: f.ref } : {}),
            });
          return send(to, { t: 'recv', from: id, m: f.m });
        }
        case 'pair/register': {
          if (role !== 'device') return;
          if (f.tag !== null && (srv.refuseTags > 0 || (srv.tags.has(f.tag) && srv.tags.get(f.tag) !== id))) {
            if (srv.refuseTags > 0) srv.refuseTags--;
            return send(ws, { t: 'error', code: 'E_TAG_TAKEN', msg: 'taken' });
          }
          for (const [tag, d] of srv.tags) if (d === id) srv.tags.delete(tag);
          if (f.tag !== null) srv.tags.set(f.tag, id);
          return;
        }
        case 'pair/lookup':
          return send(ws, { t: 'pair/found', tag: f.tag, d: srv.tags.get(f.tag) ?? null });
        default:
          return;
      }
    });
  });
  return srv;
}
