/**
 * Review R11: automatic HTTPS over ACME, against Debian's `pebble` (Let's Encrypt's test CA) on
 * loopback. Pebble really validates the HTTP-01 challenge against the server's own challenge
 * listener (httpPort). Control: a listener that answers the wrong key authorization gets no certificate.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { acmeTestHooks } from '../src/acme.js';
import { startServer } from '../src/server.js';

const pebbleBin = ['/usr/bin/pebble', '/usr/sbin/pebble'].find((p) => existsSync(p));

const freePort = (): Promise<number> =>
  new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });

const get = (url: string, ca?: string): Promise<{ body: string; peerCert?: string }> =>
  new Promise((res, rej) => {
    const opts = { agent: false as const, ...(ca ? { ca } : { rejectUnauthorized: false }) };
    const r = request(url, opts, (m) => {
      const pc = (m.socket as import('node:tls').TLSSocket).getPeerCertificate();
      let body = '';
      m.setEncoding('utf8');
      m.on('data', (d) => (body += d));
      m.on('end', () => res({ body, ...(pc?.serialNumber ? { peerCert: pc.serialNumber } : {}) }));
    });
    r.on('error', rej);
    r.end();
  });

describe('ACME with pebble (R11)', {
  skip: pebbleBin ? false : 'pebble is not installed (apt-get install pebble)',
}, () => {
  let dir: string;
  let pebble: ChildProcess;
  let directoryUrl: string;
  let mgmt: string;
  let challengePort: number;
  let pebbleCa: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-acme-'));
    // Pebble serves its API over TLS: a throwaway certificate for it.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=pebble',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        join(dir, 'pebble-key.pem'),
        '-out',
        join(dir, 'pebble-cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    pebbleCa = join(dir, 'pebble-cert.pem');
    const [api, man, http] = [await freePort(), await freePort(), await freePort()];
    challengePort = http;
    writeFileSync(
      join(dir, 'pebble.json'),
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${api}`,
          managementListenAddress: `127.0.0.1:${man}`,
          certificate: join(dir, 'pebble-cert.pem'),
          privateKey: join(dir, 'pebble-key.pem'),
          httpPort: http,
          tlsPort: await freePort(),
          ocspResponderURL: '',
          externalAccountBindingRequired: false,
        },
      }),
    );
    directoryUrl = `https://127.0.0.1:${api}/dir`;
    mgmt = `https://127.0.0.1:${man}`;
    pebble = spawn(pebbleBin!, ['-config', join(dir, 'pebble.json')], {
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    await new Promise<void>((res, rej) => {
      const on = (d: Buffer) => {
        out += d.toString();
        if (out.includes('Listening on')) res();
      };
      pebble.stdout!.on('data', on);
      pebble.stderr!.on('data', on);
      pebble.once('exit', (c) => rej(new Error(`pebble exited ${c}: ${out}`)));
    });
  });
  after(() => {
    pebble?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  const acmeCfg = (data: string, extra: Record<string, unknown> = {}) => ({
    dataDir: join(dir, data),
    host: '127.0.0.1',
    port: 0,
    relay: { enabled: false },
    serveViewer: false,
    tls: {
      mode: 'acme' as const,
      acme: { hostname: 'localhost', directoryUrl, httpPort: challengePort, caFile: pebbleCa, ...extra },
    },
  });

  it("obtains a certificate that chains to pebble's root, serves HTTPS with it, stores it 0600, and renews it on its timer", async () => {
    const s = await startServer(
      acmeCfg('ok', { renewBeforeSeconds: 1_000_000_000, checkIntervalSeconds: 1 }),
    );
    try {
      const root = (await get(`${mgmt}/roots/0`, readCa())).body;
      const inter = (await get(`${mgmt}/intermediates/0`, readCa())).body;
      assert.match(root, /BEGIN CERTIFICATE/);
      const ca = root + inter;
      const first = await get(`https://localhost:${s.port}/healthz`, ca);
      assert.ok(first.peerCert, "verified against pebble's chain");
      for (const f of ['account-key.pem', 'cert.pem', 'key.pem'])
        assert.equal(statSync(join(dir, 'ok', 'acme', f)).mode & 0o777, 0o600, f);
      // renewBefore exceeds the validity, so the timer renews at its next tick: a new serial is served.
      let second = first;
      for (let i = 0; i < 60 && second.peerCert === first.peerCert; i++) {
        await new Promise((r) => setTimeout(r, 500));
        second = await get(`https://localhost:${s.port}/healthz`, ca);
      }
      assert.notEqual(second.peerCert, first.peerCert, 'renewed certificate is served');
    } finally {
      await s.close();
    }
  });

  it('control: a challenge listener that answers the wrong token fails issuance with a clear error', async () => {
    acmeTestHooks.breakChallenge = true;
    try {
      await assert.rejects(startServer(acmeCfg('bad')), /acme: could not obtain a certificate for localhost/);
    } finally {
      acmeTestHooks.breakChallenge = false;
    }
  });

  const readCa = (): string => readFileSync(pebbleCa, 'utf8');
});
