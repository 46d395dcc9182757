/**
 * A hostile signaling path for end-to-end tests: an HTTP + WebSocket proxy that sits between the
 * viewer and the rendezvous server, as a breached server or a man in the middle would (A3/A4).
 * Every page request and every WebSocket frame is passed through; `mode` decides what it tampers with.
 *
 * - `swap-answer-fingerprint`: rewrites the `a=fingerprint` line in the device's signed answer
 *   (the signature no longer covers what is delivered);
 * - `resign-answer`: replaces the answer with the same body, fingerprint swapped, re-signed with
 *   the attacker's own device key (a well-formed signature by the wrong key);
 * - `swap-offer-fingerprint`: rewrites the fingerprint in the viewer's signed offer on its way to
 *   the device;
 * - `flip-device-ct`: flips a bit of every sealed message (`chan/msg`) from the device to the viewer;
 * - `forge-accept`: replaces the device's `chan/accept` with one for the same hello signed by the
 *   attacker's own device key (the server's best try at a man in the middle of the channel);
 * - `flip-viewer-ct`: flips a bit of every sealed message from the viewer to the device;
 *
 * The three fingerprint modes need the messages in clear: since the sealed channel (issue 7) they
 * find nothing to change unless both ends run with their test-only `unsealedForTests` switch.
 * - `intercept`: every frame, both ways, goes through `proxy.interceptor` (mitm-dtls.ts), which may
 *   pass it, change it, hold it (return null) or inject frames of its own on either socket.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeEnvelope, type Envelope, seal, systemEnv, WebCryptoSigner } from '@hearth/protocol';
import { type RawData, WebSocket, WebSocketServer } from 'ws';

export type ProxyMode =
  | 'pass'
  | 'swap-answer-fingerprint'
  | 'resign-answer'
  | 'swap-offer-fingerprint'
  | 'flip-device-ct'
  | 'forge-accept'
  | 'flip-viewer-ct'
  | 'intercept';

/** The two sockets of one proxied viewer connection, for an interceptor to inject frames on. */
export interface ProxiedConnection {
  /** Send a frame to the server as if the viewer had sent it (on the viewer's authenticated socket). */
  toServer(frame: string): void;
  /** Send a frame to the viewer as if the server had sent it. */
  toViewer(frame: string): void;
}

/** Sees every frame in `intercept` mode; returns the frame to forward, or null to hold/drop it. */
export interface FrameInterceptor {
  fromViewer(frame: string, conn: ProxiedConnection): Promise<string | null> | string | null;
  fromServer(frame: string, conn: ProxiedConnection): Promise<string | null> | string | null;
}

export interface HostileProxy {
  readonly url: string;
  mode: ProxyMode;
  /** Used in `intercept` mode. */
  interceptor: FrameInterceptor | undefined;
  /** How many messages were tampered with, by kind. */
  readonly tampered: Record<string, number>;
  close(): Promise<void>;
}

/** A fingerprint that no DTLS certificate in the test has. */
export const FAKE_FINGERPRINT = `sha-256 ${Array.from({ length: 32 }, (_, i) => ((i * 37 + 11) & 0xff).toString(16).padStart(2, '0').toUpperCase()).join(':')}`;

export function swapFingerprint(sdp: string): string {
  return sdp.replace(/^a=fingerprint:.*$/gm, `a=fingerprint:${FAKE_FINGERPRINT}`);
}

export async function startHostileProxy(upstream: string): Promise<HostileProxy> {
  const up = new URL(upstream);
  const attacker = await WebCryptoSigner.generate(true);
  const tampered: Record<string, number> = {};
  const count = (k: string) => {
    tampered[k] = (tampered[k] ?? 0) + 1;
  };
  const state: { mode: ProxyMode; interceptor: FrameInterceptor | undefined } = {
    mode: 'pass',
    interceptor: undefined,
  };

  const http: Server = createServer((req, res) => {
    const fwd = request(
      {
        host: up.hostname,
        port: up.port,
        path: req.url,
        method: req.method,
        headers: { ...req.headers, host: up.host },
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    fwd.on('error', () => res.writeHead(502).end('upstream down'));
    req.pipe(fwd);
  });
  const wss = new WebSocketServer({ server: http, path: '/ws' });

  const flipCt = (ct: string) => {
    const b = Buffer.from(ct, 'base64url');
    b[b.length >> 1]! ^= 0x01;
    return b.toString('base64url');
  };

  async function toViewer(data: string): Promise<string> {
    if (state.mode === 'flip-device-ct' || state.mode === 'forge-accept') {
      const f = JSON.parse(data) as { t: string; m?: { t?: string; ct?: string; env?: unknown } };
      if (f.t !== 'recv') return data;
      if (state.mode === 'flip-device-ct' && f.m?.t === 'chan/msg' && f.m.ct) {
        count('device-ct');
        return JSON.stringify({ ...f, m: { ...f.m, ct: flipCt(f.m.ct) } });
      }
      if (state.mode === 'forge-accept' && f.m?.t === 'chan/accept') {
        const env = decodeEnvelope(f.m.env);
        count('accept-forged');
        const out = await seal(attacker, 'device', 'chan/accept', env.b, systemEnv);
        return JSON.stringify({ ...f, m: { ...f.m, env: out } });
      }
      return data;
    }
    if (state.mode !== 'swap-answer-fingerprint' && state.mode !== 'resign-answer') return data;
    const f = JSON.parse(data) as { t: string; m?: { t?: string; env?: unknown } };
    if (f.t !== 'recv' || f.m?.t !== 'session/answer') return data;
    const env = decodeEnvelope(f.m.env);
    const b = { ...(env.b as { sdp: string }) };
    b.sdp = swapFingerprint(b.sdp);
    let out: Envelope;
    if (state.mode === 'swap-answer-fingerprint') {
      out = { ...env, b };
      count('answer-fingerprint');
    } else {
      out = await seal(attacker, 'device', 'session/answer', b, systemEnv);
      count('answer-resigned');
    }
    return JSON.stringify({ ...f, m: { ...f.m, env: out } });
  }

  function toServer(data: string): string {
    if (state.mode === 'flip-viewer-ct') {
      const f = JSON.parse(data) as { t: string; m?: { t?: string; ct?: string } };
      if (f.t !== 'send' || f.m?.t !== 'chan/msg' || !f.m.ct) return data;
      count('viewer-ct');
      return JSON.stringify({ ...f, m: { ...f.m, ct: flipCt(f.m.ct) } });
    }
    if (state.mode !== 'swap-offer-fingerprint') return data;
    const f = JSON.parse(data) as { t: string; m?: { t?: string; env?: unknown } };
    if (f.t !== 'send' || f.m?.t !== 'session/offer') return data;
    const env = decodeEnvelope(f.m.env);
    const b = { ...(env.b as { sdp: string }) };
    b.sdp = swapFingerprint(b.sdp);
    count('offer-fingerprint');
    return JSON.stringify({ ...f, m: { ...f.m, env: { ...env, b } } });
  }

  wss.on('connection', (client) => {
    const server = new WebSocket(`${up.protocol === 'https:' ? 'wss' : 'ws'}://${up.host}/ws`);
    const pending: string[] = [];
    // Keep frame order per direction even though tampering is async.
    let chain = Promise.resolve();
    let upChain = Promise.resolve();
    const text = (d: RawData) =>
      (Array.isArray(d) ? Buffer.concat(d) : Buffer.from(d as ArrayBuffer)).toString('utf8');
    const sendUp = (s: string) => {
      if (server.readyState === WebSocket.OPEN) server.send(s);
      else pending.push(s);
    };
    const sendDown = (s: string) => {
      if (client.readyState === WebSocket.OPEN) client.send(s);
    };
    const conn: ProxiedConnection = { toServer: sendUp, toViewer: sendDown };
    server.on('open', () => {
      for (const p of pending.splice(0)) server.send(p);
    });
    server.on('message', (d) => {
      const s = text(d);
      chain = chain.then(async () => {
        const i = state.mode === 'intercept' ? state.interceptor : undefined;
        const out = i
          ? await Promise.resolve(i.fromServer(s, conn)).catch(() => s)
          : await toViewer(s).catch(() => s);
        if (out !== null) sendDown(out);
      });
    });
    client.on('message', (d) => {
      const raw = text(d);
      upChain = upChain.then(async () => {
        const i = state.mode === 'intercept' ? state.interceptor : undefined;
        let s: string | null = raw;
        try {
          s = i ? await i.fromViewer(raw, conn) : toServer(raw);
        } catch {
          // not JSON: pass through untouched, the server judges it
        }
        if (s !== null) sendUp(s);
      });
    });
    const closeBoth = () => {
      client.close();
      server.close();
    };
    server.on('close', closeBoth);
    server.on('error', closeBoth);
    client.on('close', closeBoth);
    client.on('error', closeBoth);
  });

  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return state.mode;
    },
    set mode(m: ProxyMode) {
      state.mode = m;
    },
    get interceptor() {
      return state.interceptor;
    },
    set interceptor(i: FrameInterceptor | undefined) {
      state.interceptor = i;
    },
    tampered,
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}
