// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${VAR} is the config substitution syntax under test
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MediaError, parseCameraSource, parseCamerasYaml, redact, redactText } from '../src/media/index.js';

const env = { CAM_USER: 'admin', CAM_PASS: 'hunter2:@/x', HOST: '10.0.0.9' };
const opts = {
  env,
  readSecretFile: (p: string) => (p === '/run/secrets/garden' ? 's3cr3t-pass\n' : fail(p)),
};
function fail(p: string): never {
  throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
}

function throwsCode(fn: () => unknown, code: string, noLeak: readonly string[] = []): MediaError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof MediaError, `expected MediaError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const s of noLeak) assert.ok(!e.message.includes(s), `message leaks ${s}: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${code}`);
}

describe('camera YAML', () => {
  it('parses all source kinds with substitution', () => {
    const cams = parseCamerasYaml(
      [
        'cameras:',
        '  porch: rtsp://${CAM_USER}:${CAM_PASS}@${HOST}:554/stream1',
        '  garden: rtsp://viewer:${file:/run/secrets/garden}@garden.lan/h264',
        '  demo: testsrc?size=1280x720&fps=15&gop=4',
        '  plain: testsrc',
        '  loop: file:/srv/sample.mp4',
        '  literal: rtsp://bob:pa55word@cam.lan/live',
      ].join('\n'),
      opts,
    );
    assert.deepEqual(
      cams.map((c) => [c.name, c.source.kind]),
      [
        ['porch', 'rtsp'],
        ['garden', 'rtsp'],
        ['demo', 'testsrc'],
        ['plain', 'testsrc'],
        ['loop', 'file'],
        ['literal', 'rtsp'],
      ],
    );
    const porch = cams[0]?.source;
    assert.ok(porch?.kind === 'rtsp');
    assert.equal(porch.secretUrl(), `rtsp://admin:${encodeURIComponent('hunter2:@/x')}@10.0.0.9:554/stream1`);
    assert.equal(porch.display, 'rtsp://***@10.0.0.9:554/stream1');
    assert.ok(porch.secrets().includes('hunter2:@/x'));
    const garden = cams[1]?.source;
    assert.ok(garden?.kind === 'rtsp');
    assert.equal(garden.secretUrl(), 'rtsp://viewer:s3cr3t-pass@garden.lan/h264');
    const demo = cams[2]?.source;
    assert.deepEqual(demo && { ...demo }, {
      kind: 'testsrc',
      width: 1280,
      height: 720,
      fps: 15,
      gopSeconds: 4,
      display: 'testsrc?size=1280x720&fps=15&gop=4',
    });
    assert.equal(cams[4]?.source.kind === 'file' && cams[4].source.path, '/srv/sample.mp4');
    // Serialising a config never shows credentials.
    const json = JSON.stringify(cams);
    for (const s of ['hunter2', 's3cr3t', 'pa55word', 'admin'])
      assert.ok(!json.includes(s), `${s} in ${json}`);
  });

  it('empty or missing cameras map gives no cameras', () => {
    assert.deepEqual(parseCamerasYaml('cameras:\n', opts), []);
    assert.deepEqual(parseCamerasYaml('other: 1\n', opts), []);
  });

  it('rejects bad documents with stable codes', () => {
    throwsCode(() => parseCamerasYaml('cameras: [a, b]', opts), 'config-shape');
    throwsCode(() => parseCamerasYaml('- 1', opts), 'config-shape');
    throwsCode(() => parseCamerasYaml('x'.repeat(70_000), opts), 'config-too-large');
    throwsCode(() => parseCamerasYaml('cameras:\n  a: testsrc\n  a: testsrc\n', opts), 'config-yaml');
    const many = `cameras:\n${Array.from({ length: 65 }, (_, i) => `  c${i}: testsrc`).join('\n')}`;
    throwsCode(() => parseCamerasYaml(many, opts), 'too-many-cameras');
    // aliases are refused (billion laughs)
    throwsCode(() => parseCamerasYaml('x: &a testsrc\ncameras:\n  c: *a\n', opts), 'config-yaml');
  });

  it('does not echo a password from a YAML syntax error', () => {
    throwsCode(
      () => parseCamerasYaml('cameras:\n  a: rtsp://u:topsecretpw@h/p\n   b: [', opts),
      'config-yaml',
      ['topsecretpw'],
    );
  });

  it('validates camera names', () => {
    for (const bad of ['Porch', 'a b', '', 'x'.repeat(33), 'ünï', '../x']) {
      throwsCode(() => parseCameraSource(bad, 'testsrc'), 'camera-name');
    }
    for (const good of ['a', 'porch-1', 'x_y', '0'.repeat(32)]) parseCameraSource(good, 'testsrc');
  });

  it('rejects unsupported and dangerous sources', () => {
    throwsCode(() => parseCameraSource('a', 'exec:rm -rf /'), 'camera-source'); // space
    throwsCode(() => parseCameraSource('a', 'exec:/bin/sh'), 'unsupported-scheme');
    throwsCode(() => parseCameraSource('a', 'http://x/y'), 'unsupported-scheme');
    throwsCode(() => parseCameraSource('a', '-i'), 'unsupported-scheme');
    throwsCode(() => parseCameraSource('a', 42), 'camera-source');
    throwsCode(() => parseCameraSource('a', 'file:relative.mp4'), 'camera-source');
    throwsCode(() => parseCameraSource('a', 'testsrc?size=99999x1'), 'bad-option');
    throwsCode(() => parseCameraSource('a', 'testsrc?fps=0'), 'bad-option');
    throwsCode(() => parseCameraSource('a', 'testsrc?gop=-1'), 'bad-option');
    throwsCode(() => parseCameraSource('a', 'testsrc?filter=x'), 'bad-option');
    throwsCode(() => parseCameraSource('a', `rtsp://h/${'x'.repeat(3000)}`), 'source-too-long');
    throwsCode(() => parseCameraSource('a', 'rtsp://u:p@/path'), 'bad-url', ['u:p']);
  });

  it('substitution errors name the variable or file, never a secret', () => {
    const e = throwsCode(() => parseCameraSource('a', 'rtsp://u:${NOPE}@h/p', opts), 'secret-env-missing');
    assert.match(e.message, /NOPE/);
    throwsCode(() => parseCameraSource('a', 'rtsp://u:${file:/missing}@h/p', opts), 'secret-file');
    throwsCode(() => parseCameraSource('a', 'rtsp://u:${file:relative}@h/p', opts), 'secret-file');
    throwsCode(() => parseCameraSource('a', 'rtsp://u:${bad-name}@h/p', opts), 'bad-url');
    throwsCode(() => parseCameraSource('a', 'rtsp://u:${CAM_PASS@h/p', opts), 'bad-url', ['hunter2']);
    // A literal password in a malformed URL is not echoed.
    throwsCode(() => parseCameraSource('a', 'rtsp://bob:literalpw@[::1/p', opts), 'bad-url', ['literalpw']);
  });
});

describe('redact', () => {
  it('removes userinfo and secret-looking query parameters', () => {
    assert.equal(redact('rtsp://admin:pw@1.2.3.4/s'), 'rtsp://***@1.2.3.4/s');
    assert.equal(redact('rtsp://a:p@ss@h/x'), 'rtsp://***@h/x');
    assert.equal(
      redact('open rtsp://u:p@h:554/a?channel=1&password=zz&token=t failed'),
      'open rtsp://***@h:554/a?channel=1&password=***&token=*** failed',
    );
    assert.equal(redact('rtsp://host/path'), 'rtsp://host/path');
    assert.equal(redact('no urls here'), 'no urls here');
  });
  it('redactText scrubs literal secrets and their encoded forms', () => {
    const out = redactText('auth failed for hunter2:@/x (hunter2%3A%40%2Fx)', ['hunter2:@/x']);
    assert.ok(!out.includes('hunter2'), out);
  });
});
