/**
 * The NAT matrix's "server" process, run inside the lab's public namespace:
 *
 * - the Hearth relay (`RelayServer` from @hearth/relay): STUN and TURN on UDP and TCP 3478;
 * - a small HTTP endpoint standing in for the rendezvous: `GET /` (the matrix page), `GET /creds?id=`
 *   (per-session TURN REST credentials, as the rendezvous hands them out in `ready.ice`), and a
 *   mailbox for plain signaling (`POST /box/<name>` stores a body, `GET /box/<name>` long-polls up to
 *   10 s and takes it, 204 on timeout);
 * - with `--tap FILE`, an in-process tap: every datagram the relay sends is recorded (to the peer as
 *   is, to the client unwrapped from ChannelData / Data indications, over UDP and TURN-over-TCP) and
 *   written to FILE on SIGTERM.
 *
 *   node [--conditions=source --import tsx] matrix-server.ts --secret S [--http 8080] [--port 3478]
 *        [--external 203.0.113.1] [--tap FILE] [--metrics FILE] [--stack relay|server]
 *
 * `--stack server` runs the full Hearth server (`startServer` from @hearth/server: rendezvous on
 * 8443 with a self-signed certificate, and its embedded relay) instead of a bare RelayServer; the relay
 * then uses the server's configuration path (`relay.*` options, TURN secret from its data dir).
 *
 * Prints {"event":"ready",...} once listening; on SIGTERM writes the tap and metrics files and exits.
 */
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueTurnCredentials, RelayServer } from '@hearth/relay';
import type { HearthServer } from '@hearth/server';
import { childFlags, encodeTapRecord, TAP_TO_CLIENT, TAP_TO_PEER, unwrapTurnToClient } from '@hearth/testkit';
import { MATRIX_PAGE } from './matrix-page.js';

const f = childFlags(process.argv.slice(2));
const secret = f.secret ?? '';
if (!secret) throw new Error('missing --secret');
const httpPort = Number(f.http ?? 8080);
const relayPort = Number(f.port ?? 3478);
const external = f.external ?? '203.0.113.1';
const tapFile = f.tap;
const metricsFile = f.metrics;

// ---- tap (before the relay creates its sockets) ------------------------------------------------
const TAP_MAX_BYTES = 48 * 1024 * 1024;
const tapped: Buffer[] = [];
let tappedBytes = 0;
function record(toClient: boolean, bytes: Uint8Array): void {
  const payload = toClient ? unwrapTurnToClient(bytes) : bytes;
  if (payload && tappedBytes < TAP_MAX_BYTES) {
    const rec = encodeTapRecord(toClient ? TAP_TO_CLIENT : TAP_TO_PEER, payload);
    tapped.push(rec);
    tappedBytes += rec.length;
  }
}
if (tapFile) {
  const proto = dgram.Socket.prototype as unknown as { send: (...a: unknown[]) => void };
  const origSend = proto.send;
  proto.send = function tapSend(this: dgram.Socket, ...a: unknown[]): void {
    try {
      const msg = a[0];
      if (Buffer.isBuffer(msg) || msg instanceof Uint8Array) {
        const hasRange = typeof a[1] === 'number' && typeof a[2] === 'number';
        const off = hasRange ? (a[1] as number) : 0;
        const len = hasRange ? (a[2] as number) : msg.length;
        record(this.address().port === relayPort, msg.subarray(off, off + len));
      }
    } catch {
      // never break the relay
    }
    origSend.apply(this, a);
  };
  // TURN over TCP: what the relay writes to a client connection (ChannelData, Data indications).
  const sproto = net.Socket.prototype as unknown as { write: (...a: unknown[]) => boolean };
  const origWrite = sproto.write;
  sproto.write = function tapWrite(this: net.Socket, ...a: unknown[]): boolean {
    try {
      const msg = a[0];
      if (this.localPort === relayPort && (Buffer.isBuffer(msg) || msg instanceof Uint8Array))
        record(true, msg);
    } catch {
      // never break the relay
    }
    return origWrite.apply(this, a);
  };
}

// ---- relay: the bare RelayServer, or the full Hearth server with its embedded relay -------------
let relay: RelayServer | undefined;
let hearth: HearthServer | undefined;
let hearthDataDir: string | undefined;
let addrs: unknown;
if (f.stack === 'server') {
  // The real server (packages/server `startServer`), relay enabled, with our secret in its data dir so
  // the credentials /creds issues are the ones its rendezvous would put in `ready.ice`. Loaded only
  // for this stack, by a literal specifier (declared in package.json, referenced in tsconfig, type-checked).
  const { startServer } = await import('@hearth/server');
  hearthDataDir = mkdtempSync(join(tmpdir(), 'hearth-matrix-server-'));
  writeFileSync(join(hearthDataDir, 'turn.secret'), `${secret}\n`, { mode: 0o600 });
  hearth = await startServer({
    dataDir: hearthDataDir,
    host: '0.0.0.0',
    port: Number(f['server-port'] ?? 8443),
    tls: 'self-signed',
    serveViewer: false,
    relay: {
      enabled: true,
      host: '0.0.0.0',
      udpPort: relayPort,
      tcpPort: relayPort,
      externalAddress: external,
    },
  });
  addrs = hearth.relay;
} else {
  relay = new RelayServer();
  addrs = await relay.start({
    realm: 'hearth.lab',
    authSecret: secret,
    host: '0.0.0.0',
    udpPort: relayPort,
    tcpPort: relayPort,
    relayHost: '0.0.0.0',
    externalAddress: external,
  });
}

// ---- rendezvous stand-in: page, credentials, mailbox -------------------------------------------
const boxes = new Map<string, string>();
const waiters = new Map<string, ((body: string) => void)[]>();

function deliver(name: string, body: string): void {
  const w = waiters.get(name);
  const first = w?.shift();
  if (first) {
    if (w && w.length === 0) waiters.delete(name);
    first(body);
  } else boxes.set(name, body);
}

function json(res: ServerResponse, code: number, obj: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(obj));
}

const http = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://lab');
  const box = /^\/box\/([A-Za-z0-9_.-]{1,80})$/.exec(url.pathname)?.[1];
  if (req.method === 'GET' && url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(MATRIX_PAGE);
  } else if (req.method === 'GET' && url.pathname === '/creds') {
    const id = (url.searchParams.get('id') ?? 'anon').replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 64) || 'anon';
    const c = issueTurnCredentials({ secret, id, ttlSeconds: 600 });
    json(res, 200, {
      username: c.username,
      password: c.password,
      ttl: c.ttl,
      stun: [`stun:${external}:${relayPort}`],
      turn: [`turn:${external}:${relayPort}?transport=udp`, `turn:${external}:${relayPort}?transport=tcp`],
    });
  } else if (req.method === 'GET' && url.pathname === '/metrics') {
    json(res, 200, relay?.metrics ?? {});
  } else if (box && req.method === 'POST') {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 256 * 1024) chunks.push(c);
    });
    req.on('end', () => {
      if (size > 256 * 1024) return json(res, 413, { error: 'too large' });
      deliver(box, Buffer.concat(chunks).toString('utf8'));
      json(res, 200, { ok: true });
    });
  } else if (box && req.method === 'GET') {
    const ready = boxes.get(box);
    if (ready !== undefined) {
      boxes.delete(box);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(ready);
      return;
    }
    const list = waiters.get(box) ?? [];
    waiters.set(box, list);
    let done = false;
    const waiter = (body: string): void => {
      done = true;
      clearTimeout(timer);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    };
    const drop = (): void => {
      const i = list.indexOf(waiter);
      if (i >= 0) list.splice(i, 1);
    };
    const timer = setTimeout(() => {
      drop();
      if (!done) {
        res.writeHead(204);
        res.end();
      }
    }, 10_000);
    req.on('close', () => {
      if (!done) {
        clearTimeout(timer);
        drop();
      }
    });
    list.push(waiter);
  } else {
    json(res, 404, { error: 'not found' });
  }
});
await new Promise<void>((r) => http.listen(httpPort, '0.0.0.0', r));

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  try {
    if (tapFile) writeFileSync(tapFile, Buffer.concat(tapped));
    if (metricsFile && relay) writeFileSync(metricsFile, JSON.stringify(relay.metrics));
  } finally {
    http.closeAllConnections();
    http.close();
    await relay?.close().catch(() => undefined);
    await hearth?.close().catch(() => undefined);
    if (hearthDataDir) rmSync(hearthDataDir, { recursive: true, force: true });
    process.exit(0);
  }
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

process.stdout.write(
  `${JSON.stringify({ event: 'ready', stack: hearth ? 'server' : 'relay', http: httpPort, relay: addrs, external })}\n`,
);
