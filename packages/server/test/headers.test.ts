/** Review R10: every answer of the HTTP server carries the security headers; HSTS only over TLS. */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { APP_ROUTES, SHELL_FILES } from '@hearth/viewer';
import { tempDir, testServer } from './helpers.js';

/** Every path the server answers, with the status it answers with. */
const PATHS: ReadonlyArray<{ method: string; path: string; status: number }> = [
  { method: 'GET', path: '/', status: 200 },
  { method: 'HEAD', path: '/', status: 200 },
  ...APP_ROUTES.flatMap((r) => [
    { method: 'GET', path: r, status: 200 },
    { method: 'GET', path: `${r}/`, status: 200 },
  ]),
  ...[...SHELL_FILES, 'sw.js', 'app.js.map'].map((f) => ({ method: 'GET', path: `/${f}`, status: 200 })),
  { method: 'GET', path: '/healthz', status: 200 },
  { method: 'GET', path: '/nope', status: 404 },
  { method: 'GET', path: '/lib/index.js', status: 404 },
  { method: 'GET', path: '/ws', status: 404 },
  { method: 'POST', path: '/', status: 405 },
  { method: 'DELETE', path: '/pair', status: 405 },
];

const EXPECTED: Readonly<Record<string, RegExp>> = {
  'content-security-policy': /(^|;\s*)frame-ancestors 'none'(;|$)/,
  'x-frame-options': /^DENY$/,
  'x-content-type-options': /^nosniff$/,
  'referrer-policy': /^no-referrer$/,
  'permissions-policy': /(^|,\s*)geolocation=\(\)/,
};

function fetchHeaders(
  base: string,
  method: string,
  path: string,
): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  const u = new URL(path, base);
  const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, {
    method,
    rejectUnauthorized: false,
  });
  return new Promise((resolve, reject) => {
    req.once('response', (res) => {
      res.resume();
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.once('error', reject);
    req.end();
  });
}

/** A request line that the HTTP parser takes but `new URL` refuses: the server's E_DECODE answer. */
function rawBadUrl(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1', () => s.end('GET http://[x/ HTTP/1.1\r\nHost: x\r\n\r\n'));
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      got += d;
    });
    s.once('end', () => resolve(got));
    s.once('error', reject);
  });
}

function checkAll(headers: IncomingHttpHeaders, what: string): void {
  for (const [name, re] of Object.entries(EXPECTED)) {
    const v = headers[name];
    assert.equal(typeof v, 'string', `${what}: no ${name}`);
    assert.match(v as string, re, `${what}: ${name}`);
  }
}

describe('security headers on every served path (review R10)', () => {
  const tmp = tempDir();
  let plain: Awaited<ReturnType<typeof testServer>>;
  let tls: Awaited<ReturnType<typeof testServer>>;
  before(async () => {
    plain = await testServer(`${tmp.dir}/plain`);
    tls = await testServer(`${tmp.dir}/tls`, { tls: { mode: 'self-signed' } });
  });
  after(async () => {
    await plain?.close();
    await tls?.close();
    tmp.rm();
  });

  it('plain HTTP: every path, errors included, carries the headers; no HSTS', async () => {
    for (const p of PATHS) {
      const r = await fetchHeaders(plain.url, p.method, p.path);
      const what = `${p.method} ${p.path}`;
      assert.equal(r.status, p.status, what);
      checkAll(r.headers, what);
      assert.equal(r.headers['strict-transport-security'], undefined, `${what}: HSTS over plain HTTP`);
    }
    const raw = await rawBadUrl(plain.port);
    assert.match(raw, /^HTTP\/1\.1 400 /);
    assert.match(raw, /\r\nx-frame-options: DENY\r\n/i);
    assert.match(raw, /\r\ncontent-security-policy: [^\r]*frame-ancestors 'none'/i);
  });

  it('TLS: every path carries the headers and HSTS', async () => {
    assert.match(tls.url, /^https:/);
    for (const p of PATHS) {
      const r = await fetchHeaders(tls.url, p.method, p.path);
      const what = `${p.method} ${p.path}`;
      assert.equal(r.status, p.status, what);
      checkAll(r.headers, what);
      assert.match(String(r.headers['strict-transport-security']), /^max-age=\d{7,}/, `${what}: HSTS`);
    }
  });
});
