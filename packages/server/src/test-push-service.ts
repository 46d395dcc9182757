/**
 * A real "push service" on loopback for tests (part of `@hearth/server/testing`): an HTTP server
 * that takes Web Push POSTs as FCM or autopush would, checks their VAPID authorization (RFC 8292:
 * the ES256 signature under the `k` key, `aud` = its origin, `exp` within 24 h, a `sub`) and
 * records exactly the bytes it was sent, so a test can decrypt them as the browser would.
 */
import { createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSelfSigned } from './identity.js';

/** One POST the push service received. */
export interface ReceivedPush {
  path: string;
  headers: IncomingMessage['headers'];
  /** The body, exactly as received. */
  body: Uint8Array;
  /** The VAPID JWT's claims, when its signature verified under `k`. */
  claims?: { aud: string; exp: number; sub: string };
  /** The `k` of the authorization (b64u of the VAPID public key). */
  k?: string;
  /** Why the VAPID authorization is not valid (undefined: it is). */
  vapidError?: string;
}

export interface TestPushService {
  /** `https://127.0.0.1:<port>` (or http: its origin, the `aud` it expects). */
  readonly origin: string;
  /** An endpoint URL for subscription `name`. */
  endpoint(name: string): string;
  readonly received: ReceivedPush[];
  /** The status to answer with (default 201); e.g. 410 for an expired subscription. */
  status: number;
  /** Resolves with the next POST (or one already received and not yet taken by `next`). */
  next(timeoutMs?: number): Promise<ReceivedPush>;
  close(): Promise<void>;
}

function checkVapid(
  auth: string | undefined,
  origin: string,
  now: number,
): Omit<ReceivedPush, 'path' | 'headers' | 'body'> {
  const m = /^vapid t=([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+), ?k=([A-Za-z0-9_-]+)$/.exec(
    auth ?? '',
  );
  if (!m) return { vapidError: 'no vapid authorization' };
  const [, h, c, s, k] = m as unknown as [string, string, string, string, string];
  const point = Buffer.from(k, 'base64url');
  if (point.length !== 65 || point[0] !== 4) return { k, vapidError: 'k is not a P-256 point' };
  let header: { typ?: string; alg?: string };
  let claims: { aud: string; exp: number; sub: string };
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
  } catch {
    return { k, vapidError: 'JWT is not JSON' };
  }
  if (header.alg !== 'ES256') return { k, vapidError: 'alg is not ES256' };
  const key = createPublicKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33).toString('base64url'),
    },
    format: 'jwk',
  });
  const ok = verify(
    'sha256',
    Buffer.from(`${h}.${c}`),
    { key, dsaEncoding: 'ieee-p1363' },
    Buffer.from(s, 'base64url'),
  );
  if (!ok) return { k, vapidError: 'signature does not verify' };
  if (claims.aud !== origin) return { k, claims, vapidError: `aud ${claims.aud} is not ${origin}` };
  const nowS = Math.floor(now / 1000);
  if (!(claims.exp > nowS && claims.exp <= nowS + 24 * 3600))
    return { k, claims, vapidError: 'exp not within 24 h' };
  if (typeof claims.sub !== 'string' || !/^(mailto:|https:)/.test(claims.sub))
    return { k, claims, vapidError: 'sub is not a mailto: or https: URL' };
  return { k, claims };
}

/**
 * Start a push service on 127.0.0.1 (a free port): https with a self-signed certificate, as real
 * push services are https (the server takes it only with `push.allowInsecureLoopback`), or plain
 * http with `{tls: false}`.
 */
export async function startTestPushService(o: { tls?: boolean } = {}): Promise<TestPushService> {
  const received: ReceivedPush[] = [];
  let taken = 0;
  const waiters = new Set<() => void>();
  let origin = '';
  const state = { status: 201 };
  const handler: RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > 65_536) req.destroy();
      else chunks.push(d);
    });
    req.on('end', () => {
      received.push({
        path: req.url ?? '/',
        headers: req.headers,
        body: new Uint8Array(Buffer.concat(chunks)),
        ...checkVapid(req.headers.authorization, origin, Date.now()),
      });
      for (const w of [...waiters]) w();
      res.writeHead(state.status).end();
    });
  };
  const tls = o.tls ?? true;
  let certDir: string | undefined;
  let server: Server;
  if (tls) {
    certDir = mkdtempSync(join(tmpdir(), 'hearth-test-push-'));
    const { cert, key } = loadSelfSigned(certDir, '127.0.0.1');
    server = createHttpsServer({ cert, key }, handler) as unknown as Server;
  } else server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    endpoint: (name) => `${origin}/push/${name}`,
    received,
    get status() {
      return state.status;
    },
    set status(v) {
      state.status = v;
    },
    next(timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (received.length <= taken) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(received[taken++]!);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error('test push service: no POST arrived'));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => {
          if (certDir) rmSync(certDir, { recursive: true, force: true });
          r();
        });
      }),
  };
}
