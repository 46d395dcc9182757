/** Configuration: YAML file < env < flags, validation messages that name the bad key. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ALL_ERROR_CODES, ERRORS } from '@hearth/protocol';
import { httpStatus, loadServerConfig, startServer } from '../src/index.js';
import { tempDir } from './helpers.js';

const tmp = tempDir();
after(() => tmp.rm());

function yaml(name: string, text: string): string {
  const f = join(tmp.dir, name);
  writeFileSync(f, text);
  return f;
}

describe('loadServerConfig', () => {
  it('defaults: plain HTTP on 127.0.0.1:8443, relay on 3478, limits', () => {
    const c = loadServerConfig({ flags: { dataDir: tmp.dir } });
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, 8443);
    assert.deepEqual(c.tls, { mode: 'off' });
    assert.equal(c.relay.enabled, true);
    assert.equal(c.relay.udpPort, 3478);
    assert.equal(c.relay.allowLoopbackPeers, false);
    assert.equal(c.turnTtlSeconds, 600);
    assert.equal(c.limits.maxFrameBytes, 96 * 1024);
    assert.equal(c.serveViewer, true);
  });

  it('precedence: file < env < flags; CLI flat aliases', () => {
    const file = yaml(
      'a.yaml',
      'dataDir: /tmp/from-file\nport: 1000\nhost: 127.0.0.2\nrelay:\n  udpPort: 4000\n  tcpPort: 4001\nlimits:\n  messagesPerSecond: 7\n',
    );
    const c = loadServerConfig({
      file,
      env: { HEARTH_PORT: '2000', HEARTH_RELAY_UDP_PORT: '5000', HEARTH_RELAY_ALLOW_LOOPBACK_PEERS: 'true' },
      flags: { port: '3000', relay: false, dataDir: tmp.dir },
    });
    assert.equal(c.port, 3000);
    assert.equal(c.host, '127.0.0.2');
    assert.equal(c.dataDir, tmp.dir);
    assert.equal(c.relay.enabled, false);
    assert.equal(c.relay.udpPort, 5000);
    assert.equal(c.relay.tcpPort, 4001);
    assert.equal(c.relay.allowLoopbackPeers, true);
    assert.equal(c.limits.messagesPerSecond, 7);
  });

  it('TLS modes: files from cert/key, self-signed on a public host only when chosen, acme with a hostname, HEARTH_CONFIG names the file', () => {
    const f = loadServerConfig({ flags: { dataDir: 'd', tlsCert: 'c.pem', tlsKey: 'k.pem' } });
    assert.equal(f.tls.mode, 'files');
    const env = { HEARTH_RELAY_EXTERNAL_ADDRESS: '203.0.113.7' };
    assert.throws(
      () => loadServerConfig({ flags: { dataDir: 'd', host: '0.0.0.0' }, env }),
      /tls\.acme\.hostname/,
    );
    const s = loadServerConfig({ flags: { dataDir: 'd', host: '0.0.0.0', tls: 'self-signed' }, env });
    assert.deepEqual(s.tls, { mode: 'self-signed' });
    const a = loadServerConfig({
      flags: { dataDir: 'd', host: '0.0.0.0' },
      env: { ...env, HEARTH_ACME_HOSTNAME: 'cam.example.org' },
    });
    assert.equal(a.tls.mode, 'acme');
    const file = yaml('b.yaml', 'dataDir: x\nport: 9\n');
    assert.equal(loadServerConfig({ env: { HEARTH_CONFIG: file } }).port, 9);
    const turn = loadServerConfig({
      flags: { dataDir: 'd' },
      env: { HEARTH_TURN_URLS: 'turn:a:3478, turns:a:5349', HEARTH_TURN_SECRET: 'x'.repeat(20) },
    });
    assert.deepEqual(turn.turnServers, [{ urls: ['turn:a:3478', 'turns:a:5349'], secret: 'x'.repeat(20) }]);
  });

  const bad: [string, Parameters<typeof loadServerConfig>[0], RegExp][] = [
    ['missing dataDir', { flags: {} }, /dataDir/],
    ['port not a number', { flags: { dataDir: 'd', port: 'eighty' } }, /port/],
    ['port out of range', { env: { HEARTH_DATA_DIR: 'd', HEARTH_PORT: '70000' } }, /port/],
    ['unknown key', { flags: { dataDir: 'd', colour: 'blue' } }, /unknown key.*colour/],
    ['unknown nested key', { flags: { dataDir: 'd', relay: { udpport: 1 } } }, /relay\.udpport/],
    ['bad boolean', { env: { HEARTH_DATA_DIR: 'd', HEARTH_RELAY: 'maybe' } }, /relay\.enabled/],
    [
      'plain HTTP off loopback',
      { flags: { dataDir: 'd', host: '0.0.0.0', tls: 'off', relay: false } },
      /tls\.mode.*loopback/,
    ],
    ['cert without key', { flags: { dataDir: 'd', tlsCert: 'c.pem' } }, /tls\.cert and tls\.key/],
    [
      'wildcard relay without external address',
      { flags: { dataDir: 'd', host: '0.0.0.0', tls: 'self-signed' } },
      /relay\.externalAddress/,
    ],
    [
      'turn server without secret',
      { flags: { dataDir: 'd', turnServers: [{ urls: ['turn:x'] }] } },
      /turnServers\.0/,
    ],
    [
      'turn url scheme',
      { flags: { dataDir: 'd', turnServers: [{ urls: ['http://x'], secret: 'x'.repeat(20) }] } },
      /turnServers\.0\.urls\.0/,
    ],
    [
      'frame limit above protocol max',
      { flags: { dataDir: 'd', limits: { maxFrameBytes: 1e9 } } },
      /limits\.maxFrameBytes/,
    ],
    ['publicUrl scheme', { flags: { dataDir: 'd', publicUrl: 'ftp://x' } }, /publicUrl/],
    ['missing file', { file: join(tmp.dir, 'nope.yaml') }, /cannot read config file/],
    ['YAML not a mapping', { file: yaml('c.yaml', '- a\n- b\n') }, /mapping/],
    ['YAML syntax', { file: yaml('d.yaml', 'a: [\n') }, /not valid YAML/],
  ];
  for (const [name, input, msg] of bad) {
    it(`refuses: ${name}`, () => {
      assert.throws(
        () => loadServerConfig(input),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, 'E_CONFIG');
          assert.match(e.message, msg);
          return true;
        },
      );
    });
  }

  it('startServer refuses plain HTTP on a non-loopback address', async () => {
    await assert.rejects(
      () => startServer({ dataDir: tmp.dir, host: '0.0.0.0', port: 0, tls: { mode: 'off' } }),
      { code: 'E_CONFIG', message: /loopback/ },
    );
  });
});

describe('startServer errors', () => {
  it('a port already in use is a clear E_CONFIG, and the first server keeps serving', async () => {
    const a = await startServer({ dataDir: join(tmp.dir, 'a'), port: 0, relay: false });
    try {
      await assert.rejects(() => startServer({ dataDir: join(tmp.dir, 'b'), port: a.port, relay: false }), {
        code: 'E_CONFIG',
        message: /^cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/,
      });
      const r = await fetch(`${a.url}/healthz`);
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    } finally {
      await a.close();
    }
  });
});

describe('httpStatus: the one place where error codes become HTTP statuses', () => {
  it('specific codes, then by class; every registered code has a 4xx or 5xx status', () => {
    assert.equal(httpStatus('E_NOT_FOUND'), 404);
    assert.equal(httpStatus('E_BAD_METHOD'), 405);
    assert.equal(httpStatus('E_TOO_LARGE'), 413);
    assert.equal(httpStatus('E_DECODE'), 400);
    assert.equal(httpStatus('E_NO_GRANT'), 403);
    assert.equal(httpStatus('E_RATE_LIMITED'), 429);
    assert.equal(httpStatus('E_CONFIG'), 503);
    assert.equal(httpStatus('E_INTERNAL'), 500);
    for (const code of ALL_ERROR_CODES) {
      const s = httpStatus(code);
      assert.ok(s >= 400 && s < 600, `${code}: ${s}`);
      if (ERRORS[code].class === 'internal') assert.equal(s, 500, code);
    }
  });
});
