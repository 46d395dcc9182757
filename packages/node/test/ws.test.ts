/**
 * Certificate pinning against real TLS servers on loopback: the right server, and an impostor with
 * another self-signed certificate for the same name (a man in the middle). Control: without the
 * pin (insecure), the impostor is accepted, so the test can fail.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '@hearth/protocol';
import { WebSocketServer } from 'ws';
import { CertificatePinError, normalizeFingerprint, openWebSocket } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'hearth-node-ws-'));

function selfSigned(name: string): { cert: string; key: string; sha256: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1']
      .concat(['-subj', '/CN=hearth', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'])
      .concat(['-keyout', key, '-out', cert]),
    { stdio: 'ignore' },
  );
  const pem = readFileSync(cert, 'utf8');
  return { cert: pem, key: readFileSync(key, 'utf8'), sha256: new X509Certificate(pem).fingerprint256 };
}

interface TlsWsServer {
  url: string;
  sha256: string;
  /** WebSocket connections the server accepted (an upgrade request reached it). */
  accepted: number;
  /** Resolves when the next (TCP) connection to the server has closed. */
  nextTlsClose(): Promise<void>;
  close(): Promise<void>;
}

async function server(name: string): Promise<TlsWsServer> {
  const c = selfSigned(name);
  const https: Server = createServer({ cert: c.cert, key: c.key });
  const wss = new WebSocketServer({ server: https });
  const s: TlsWsServer = {
    url: '',
    sha256: c.sha256,
    accepted: 0,
    nextTlsClose: () => new Promise((r) => https.once('connection', (sock) => sock.once('close', () => r()))),
    close: () =>
      new Promise((r) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        https.close(() => r());
      }),
  };
  wss.on('connection', (ws) => {
    s.accepted++;
    ws.send(`hello from ${name}`);
  });
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  s.url = `wss://127.0.0.1:${(https.address() as AddressInfo).port}/ws`;
  return s;
}

/** What a client sees: the first message, or the error that ended it. */
function outcome(ws: ReturnType<typeof openWebSocket>): Promise<{ message?: string; error?: Error }> {
  return new Promise((resolve) => {
    ws.once('message', (d) => {
      resolve({ message: d.toString() });
      ws.close();
    });
    ws.once('error', (error) => resolve({ error }));
  });
}

let real: TlsWsServer;
let impostor: TlsWsServer;
before(async () => {
  real = await server('real');
  impostor = await server('impostor');
});
after(async () => {
  await real.close();
  await impostor.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('openWebSocket: certificate pinning', () => {
  it('connects to the server whose certificate is pinned (fingerprint as printed, or bare hex)', async () => {
    for (const pin of [real.sha256, real.sha256.replace(/:/g, '').toLowerCase()]) {
      const r = await outcome(openWebSocket(real.url, { pinnedCertSha256: pin }));
      assert.equal(r.message, 'hello from real', String(r.error));
    }
  });

  it('attack: an impostor with another certificate is refused, and never hears the client out', async () => {
    const before = impostor.accepted;
    const closed = impostor.nextTlsClose();
    const r = await outcome(openWebSocket(impostor.url, { pinnedCertSha256: real.sha256 }));
    assert.equal(r.message, undefined);
    assert.ok(r.error instanceof CertificatePinError, `refused by the pin: ${r.error}`);
    assert.match(r.error.message, /not the pinned one \(possible attack\)/);
    assert.ok(r.error.message.includes(normalizeFingerprint(impostor.sha256)), 'names what was presented');
    // Whatever the client sent went down the TLS connection before it closed, so once the
    // server has seen it close, an upgrade request would have been handled.
    await closed;
    assert.equal(impostor.accepted, before, 'no WebSocket session with the impostor');
  });

  it('control: without the pin (insecure), the same impostor is accepted', async () => {
    const before = impostor.accepted;
    const r = await outcome(openWebSocket(impostor.url, { insecure: true }));
    assert.equal(r.message, 'hello from impostor');
    assert.equal(impostor.accepted, before + 1, 'the counter the attack test reads does count sessions');
  });

  it('without a pin or insecure, a self-signed certificate fails CA validation', async () => {
    const r = await outcome(openWebSocket(real.url));
    assert.equal(r.message, undefined);
    assert.match(String(r.error), /self[- ]signed/i);
  });

  it('refuses a malformed pin, and a pin on a ws:// URL, before connecting', () => {
    for (const bad of ['', 'abc', real.sha256.slice(3), `${real.sha256}00`, 'z'.repeat(64)])
      assert.throws(() => openWebSocket(real.url, { pinnedCertSha256: bad }), ConfigError);
    assert.throws(
      () => openWebSocket(real.url.replace('wss:', 'ws:'), { pinnedCertSha256: real.sha256 }),
      /needs a wss:\/\//,
    );
  });
});
