/** `startServer`: HTTP(S) + WebSocket rendezvous, viewer files, built-in relay, SQLite store. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import {
  createServer as createHttp,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttps, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, type IceServer, shortId } from '@hearth/protocol';
import { issueTurnCredentials, RelayServer } from '@hearth/relay';
import { APP_HEADERS, APP_ROUTES, CONTENT_TYPES, SHELL_FILES, TLS_HEADERS, webRoot } from '@hearth/viewer';
import { type Logger, pino } from 'pino';
import { WebSocketServer } from 'ws';
import { type AcmeManager, startAcme } from './acme.js';
import { type BlobStore, FileBlobStore, type FileBlobStoreTestHooks } from './blob-store.js';
import { BlobHttp, type BlobTestHooks } from './blobs-http.js';
import { httpStatus } from './http-status.js';
import { LogGossipHttp, type LogGossipTestHooks } from './log-gossip.js';

export { httpStatus };

import { isWildcardHost, resolveServerConfig, type ServerConfig, type ServerConfigInput } from './config.js';
import { Hub, type HubTestHooks, type RelayGrant } from './hub.js';
import { certFingerprint, ensureDataDir, loadSelfSigned, loadServerKey, loadTurnSecret } from './identity.js';
import { PushSender } from './push.js';
import { Store } from './store.js';

/** A running server. */
export interface HearthServer {
  /** Base URL (no trailing slash): `publicUrl`, or the bound address. */
  url: string;
  port: number;
  /** The server's key (`hsk_…`), as sent in `hello.srv`. */
  serverKey: string;
  /** SHA-256 fingerprint of the TLS certificate (colon hex), when TLS is on. */
  certSha256?: string;
  /** How TLS was resolved: off, files, self-signed (agents must pin it) or acme. */
  tlsMode: 'off' | 'files' | 'self-signed' | 'acme';
  /** Bound ports of the built-in relay, when enabled. */
  relay?: { udpPort: number; tcpPort: number; tlsPort?: number };
  close(): Promise<void>;
}

/** Security headers sent with the viewer app (defined by the viewer, which is built and tested for them). */
export { APP_HEADERS };

/** URL path → file in the viewer's dist/ (nothing else is ever served, never dist/lib). */
function viewerFiles(): Map<string, string> {
  const m = new Map<string, string>([['/', 'index.html']]);
  for (const r of APP_ROUTES) {
    m.set(r, 'index.html');
    m.set(`${r}/`, 'index.html');
  }
  for (const f of [...SHELL_FILES, 'sw.js', 'app.js.map']) m.set(`/${f}`, f);
  return m;
}

const hostForUrl = (h: string) => (h.includes(':') ? `[${h}]` : h);

/** Start the server. `cfg` is resolved (defaults filled, validated) again, so a partial config works. */
export async function startServer(
  cfg: (Partial<ServerConfig> & { dataDir: string }) | ServerConfigInput,
  opts: {
    log?: Logger;
    /** Test-only hooks into the hub (`@hearth/server/testing`: startTestHub). */
    hubTestHooks?: HubTestHooks;
    /** The blob store (default: a {@link FileBlobStore} under `<dataDir>/blobs`). */
    blobStore?: BlobStore;
    /** Test-only switches of the blob routes and of the default file store (controls). */
    blobTestHooks?: BlobTestHooks & { store?: FileBlobStoreTestHooks };
    /** Test-only switches of the access-log gossip routes (controls). */
    logGossipTestHooks?: LogGossipTestHooks;
  } = {},
): Promise<HearthServer> {
  const c = resolveServerConfig(cfg);
  const log = (opts.log ?? pino({ level: 'silent' })).child({ mod: 'server' });
  ensureDataDir(c.dataDir);
  const {
    id: serverKey,
    signer: serverSigner,
    migratedFrom,
    migrationError,
  } = await loadServerKey(c.dataDir);
  if (migratedFrom) log.info({ from: migratedFrom }, 'rewrote server.key in the current key file format');
  if (migrationError)
    log.warn({ err: migrationError }, 'server.key is in an older format and could not be rewritten');
  const store = new Store(c.dataDir);

  let relay: RelayServer | undefined;
  let relayPorts: { udpPort: number; tcpPort: number; tlsPort?: number } | undefined;
  let turnSecret: string | undefined;
  let server: Server | undefined;
  let acmeMgr: AcmeManager | undefined;
  const fail = async (e: unknown): Promise<never> => {
    await relay?.close().catch(() => {});
    await acmeMgr?.close().catch(() => {});
    server?.close(() => {});
    store.close();
    throw e;
  };

  try {
    let certSha256: string | undefined;
    let tls: { cert: string; key: string } | undefined;
    if (c.tls.mode === 'files') {
      try {
        tls = { cert: readFileSync(c.tls.cert, 'utf8'), key: readFileSync(c.tls.key, 'utf8') };
      } catch (e) {
        throw new ConfigError(
          'E_CONFIG',
          `tls.cert/tls.key cannot be read: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
        );
      }
    } else if (c.tls.mode === 'self-signed') tls = loadSelfSigned(c.dataDir, c.host);
    else if (c.tls.mode === 'acme') {
      acmeMgr = await startAcme(c.dataDir, c.tls.acme, log);
      const cur = acmeMgr.current();
      tls = { cert: cur.cert, key: cur.key };
    }
    if (tls) {
      try {
        certSha256 = certFingerprint(tls.cert);
      } catch {
        throw new ConfigError('E_CONFIG', 'tls.cert is not a PEM certificate');
      }
    }

    // Where clients reach us: publicUrl's host, else the bound host (a wildcard means "ask the operator").
    const publicHost = c.publicUrl ? new URL(c.publicUrl).hostname.replace(/^\[|\]$/g, '') : undefined;

    if (c.relay.enabled) {
      turnSecret = loadTurnSecret(c.dataDir);
      relay = new RelayServer();
      const host = c.relay.host ?? c.host;
      const a = await relay
        .start({
          realm: c.relay.realm,
          authSecret: turnSecret,
          host,
          udpPort: c.relay.udpPort,
          tcpPort: c.relay.tcpPort,
          ...(c.relay.externalAddress ? { externalAddress: c.relay.externalAddress } : {}),
          allowLoopbackPeers: c.relay.allowLoopbackPeers,
          // TURN over TLS with the operator's certificate (browsers would refuse a self-signed one).
          ...(tls && c.tls.mode === 'files' ? { tls, tlsPort: c.relay.tlsPort } : {}),
        })
        .catch((e: Error & { code?: string }) => {
          throw new ConfigError('E_CONFIG', `relay cannot start: ${e.code ?? ''} ${e.message}`.trim());
        });
      relayPorts = {
        udpPort: a.udpPort!,
        tcpPort: a.tcpPort!,
        ...(a.tlsPort !== undefined ? { tlsPort: a.tlsPort } : {}),
      };
    }
    const relayHost =
      c.relay.externalAddress ??
      (isWildcardHost(c.relay.host ?? c.host) ? publicHost : (c.relay.host ?? c.host)) ??
      '127.0.0.1';

    // TURN usernames travel in clear in every STUN request: each connection gets a random one, so
    // an observer on the path cannot follow a key across networks (review R6). Per-key quotas
    // become per-connection ones; the relay's per-IP cap bounds what one address can hold.
    // Everyone gets STUN in `ready`; TURN credentials only through a device's `relay` request for a
    // viewer it answers (hub.ts `relay`), so keys that no device answered cannot allocate.
    const iceFor = (_id: string): IceServer[] =>
      relayPorts && turnSecret ? [{ urls: [`stun:${hostForUrl(relayHost)}:${relayPorts.udpPort}`] }] : [];
    const relayFor = (): RelayGrant | undefined => {
      const out: IceServer[] = [];
      const ttlSeconds = c.turnTtlSeconds;
      const id = randomBytes(12).toString('base64url');
      let until = Number.POSITIVE_INFINITY;
      if (relayPorts && turnSecret) {
        const h = hostForUrl(relayHost);
        const cr = issueTurnCredentials({ secret: turnSecret, id, ttlSeconds });
        until = Math.min(until, cr.expiresAt * 1000);
        out.push({
          urls: [
            `turn:${h}:${relayPorts.udpPort}?transport=udp`,
            `turn:${h}:${relayPorts.tcpPort}?transport=tcp`,
            ...(relayPorts.tlsPort !== undefined ? [`turns:${h}:${relayPorts.tlsPort}?transport=tcp`] : []),
          ],
          username: cr.username,
          credential: cr.password,
        });
      }
      for (const t of c.turnServers) {
        const cr = issueTurnCredentials({ secret: t.secret, id, ttlSeconds });
        until = Math.min(until, cr.expiresAt * 1000);
        out.push({ urls: t.urls, username: cr.username, credential: cr.password });
      }
      return out.length ? { ice: out.slice(0, 8), until } : undefined;
    };

    const push = c.push.enabled
      ? new PushSender(c.push, { dataDir: c.dataDir, publicUrl: c.publicUrl, log })
      : undefined;
    const hub = new Hub({
      serverKey,
      serverSigner,
      limits: c.limits,
      store,
      log,
      iceFor,
      relayFor,
      ...(push ? { push } : {}),
      ...(opts.hubTestHooks ? { test: opts.hubTestHooks } : {}),
    });
    const blobs = c.blobs.enabled
      ? new BlobHttp(
          opts.blobStore ?? new FileBlobStore(c.dataDir, opts.blobTestHooks?.store ?? {}),
          c.blobs,
          log,
          opts.blobTestHooks ?? {},
        )
      : undefined;
    // Witness gossip of the devices' access logs (log-gossip.ts), in memory.
    const gossip = new LogGossipHttp(log, opts.logGossipTestHooks ?? {});
    // A device's erase (factory reset, household deletion) takes its gossip too (S8).
    if (blobs) blobs.onErase = (d) => gossip.forget(d);
    const root = c.webRoot ?? fileURLToPath(webRoot);
    const files = viewerFiles();

    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      // Every answer, errors and /healthz included, carries the security headers (review R10).
      for (const [k, v] of Object.entries(APP_HEADERS)) res.setHeader(k, v);
      if (tls) for (const [k, v] of Object.entries(TLS_HEADERS)) res.setHeader(k, v);
      if (blobs && BlobHttp.handles(req.url)) {
        void blobs.handle(req, res);
        return;
      }
      if (LogGossipHttp.handles(req.url)) {
        void gossip.handle(req, res);
        return;
      }
      void (async () => {
        let path: string;
        try {
          path = new URL(req.url ?? '/', 'http://x').pathname;
        } catch {
          res.writeHead(httpStatus('E_DECODE')).end();
          return;
        }
        if (path === '/healthz') {
          res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
          // Anyone can ask, so the answer is only ok: counts of connections and devices online
          // would tell a stranger how busy the server is and when a device comes and goes
          // (review R5c).
          res.end('{"ok":true}');
          return;
        }
        if (path === '/v1/push/vapid') {
          if (!push) {
            res.writeHead(httpStatus('E_NOT_FOUND'), { 'content-type': 'text/plain; charset=utf-8' });
            res.end('not found');
            return;
          }
          if (req.method !== 'GET' && req.method !== 'HEAD') {
            res.writeHead(httpStatus('E_BAD_METHOD'), { allow: 'GET, HEAD' }).end();
            return;
          }
          // The VAPID public key, for the viewer's pushManager.subscribe (applicationServerKey).
          res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' });
          res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ key: push.publicKey }));
          return;
        }
        const file = c.serveViewer ? files.get(path) : undefined;
        if (!file) {
          res
            .writeHead(httpStatus('E_NOT_FOUND'), {
              'content-type': 'text/plain; charset=utf-8',
              ...APP_HEADERS,
            })
            .end('not found');
          return;
        }
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.writeHead(httpStatus('E_BAD_METHOD'), { allow: 'GET, HEAD', ...APP_HEADERS }).end();
          return;
        }
        let body: Buffer;
        try {
          body = await readFile(join(root, file));
        } catch {
          // A missing source map is not there; a missing app is an installation (config) fault.
          res.writeHead(httpStatus(file === 'app.js.map' ? 'E_NOT_FOUND' : 'E_CONFIG'), {
            'content-type': 'text/plain; charset=utf-8',
            ...APP_HEADERS,
          });
          res.end(
            file === 'app.js.map' ? 'not found' : 'viewer not built: run `node packages/viewer/build.mjs`',
          );
          return;
        }
        res.writeHead(200, {
          'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
          'content-length': body.length,
          'cache-control': 'no-cache',
          ...APP_HEADERS,
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      })().catch((e) => {
        log.error({ err: (e as Error).message }, 'http handler failed');
        if (!res.headersSent) res.writeHead(httpStatus('E_INTERNAL'));
        res.end();
      });
    };

    server = tls ? createHttps({ cert: tls.cert, key: tls.key }, handler) : createHttp(handler);
    server.headersTimeout = 10_000;
    // A blob upload (up to blobs.maxBlobBytes) may take longer than 30 s on a home uplink; routes
    // other than PUT /v1/blobs read no body, and a stalled upload is cut after 30 s (blobs-http.ts).
    server.requestTimeout = c.blobs.enabled ? Math.max(30_000, c.blobs.uploadTimeoutMs) : 30_000;
    const sockets = new Set<Socket>();
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    server.on('clientError', (_e, s) => s.destroy());

    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: c.limits.maxFrameBytes,
      perMessageDeflate: false,
    });
    server.on('upgrade', (req, socket, head) => {
      let path = '';
      try {
        path = new URL(req.url ?? '/', 'http://x').pathname;
      } catch {}
      if (path !== '/ws') {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => hub.accept(ws, req.socket.remoteAddress ?? 'unknown'));
    });

    const srv = server;
    await new Promise<void>((resolve, reject) => {
      srv.once('error', (e: NodeJS.ErrnoException) =>
        reject(new ConfigError('E_CONFIG', `cannot listen on ${c.host}:${c.port}: ${e.code ?? e.message}`)),
      );
      srv.listen(c.port, c.host, () => resolve());
    });
    const port = (srv.address() as AddressInfo).port;
    acmeMgr?.startTimer((n) => {
      (srv as HttpsServer).setSecureContext({ cert: n.cert, key: n.key });
      log.info({ notAfter: n.notAfter.toISOString() }, 'acme: renewed certificate installed');
    });
    const scheme = tls ? 'https' : 'http';
    const url = c.publicUrl
      ? c.publicUrl.replace(/\/$/, '')
      : `${scheme}://${c.tls.mode === 'acme' ? c.tls.acme.hostname : hostForUrl(isWildcardHost(c.host) ? 'localhost' : c.host)}:${port}`;
    log.info(
      {
        url,
        serverKey: shortId(serverKey),
        tls: c.tls.mode,
        ...(certSha256 ? { certSha256 } : {}),
        ...(relayPorts ? { relay: relayPorts } : {}),
      },
      'Hearth server listening',
    );

    let closed: Promise<void> | undefined;
    const close = (): Promise<void> => {
      closed ??= (async () => {
        hub.shutdown();
        wss.close();
        await new Promise<void>((r) => {
          srv.close(() => r());
          // Let close frames go out, then cut what is left (keep-alive HTTP, stuck peers).
          setTimeout(() => {
            for (const s of sockets) s.destroy();
          }, 500).unref();
        });
        await relay?.close();
        await acmeMgr?.close();
        store.close();
        log.info('Hearth server stopped');
      })();
      return closed;
    };

    return {
      url,
      port,
      serverKey,
      ...(certSha256 ? { certSha256 } : {}),
      tlsMode: c.tls.mode,
      ...(relayPorts ? { relay: relayPorts } : {}),
      close,
    };
  } catch (e) {
    return fail(e);
  }
}
