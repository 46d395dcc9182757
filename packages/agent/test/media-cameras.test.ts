// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${VAR} is the config substitution syntax under test
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MediaError,
  parseCameraEntry,
  parseCameraSource,
  parseCamerasYaml,
  redact,
  redactText,
} from '../src/media/index.js';

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
    assert.equal(e.reason, code, e.message);
    assert.equal(e.code, 'E_CONFIG');
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

describe('camera entries: source string or {source, mode}', () => {
  const ok: [string, string, string, string][] = [
    // [what, YAML entry, source kind, mode]
    ['rtsp string is warm', 'rtsp://cam.lan/s', 'rtsp', 'warm'],
    ['file string is warm', 'file:/srv/a.mp4', 'file', 'warm'],
    ['testsrc string is warm', 'testsrc', 'testsrc', 'warm'],
    ['object without mode is warm', '{ source: rtsp://cam.lan/s }', 'rtsp', 'warm'],
    ['object warm', '{ source: rtsp://cam.lan/s, mode: warm }', 'rtsp', 'warm'],
    ['object on-demand', '{ source: rtsp://cam.lan/s, mode: on-demand }', 'rtsp', 'on-demand'],
    ['block mapping', '\n    source: testsrc?fps=10\n    mode: on-demand', 'testsrc', 'on-demand'],
    [
      'substitution in object',
      '{ source: "rtsp://${CAM_USER}:${CAM_PASS}@h/s", mode: on-demand }',
      'rtsp',
      'on-demand',
    ],
  ];
  for (const [what, entry, kind, mode] of ok) {
    it(`accepts: ${what}`, () => {
      const [cam] = parseCamerasYaml(`cameras:\n  c: ${entry}\n`, opts);
      assert.equal(cam?.name, 'c');
      assert.equal(cam?.source.kind, kind);
      assert.equal(cam?.mode, mode);
    });
  }

  const bad: [string, string, string, RegExp][] = [
    // [what, YAML entry, code, message]
    ['unknown key', '{ source: testsrc, mod: warm }', 'camera-config', /camera "c": unknown key "mod"/],
    ['extra key', '{ source: testsrc, mode: warm, fps: 5 }', 'camera-config', /unknown key "fps"/],
    ['missing source', '{ mode: warm }', 'camera-config', /camera "c": "source" is missing/],
    ['empty mapping', '{}', 'camera-config', /"source" is missing/],
    ['source a number', '{ source: 42 }', 'camera-config', /"source" must be a string/],
    ['source a mapping', '{ source: { url: testsrc } }', 'camera-config', /"source" must be a string/],
    ['source null', '{ source: null }', 'camera-config', /"source" must be a string/],
    [
      'bad mode',
      '{ source: testsrc, mode: lazy }',
      'camera-mode',
      /camera "c": mode must be "warm" or "on-demand", not "lazy"/,
    ],
    ['mode wrong case', '{ source: testsrc, mode: Warm }', 'camera-mode', /not "Warm"/],
    ['mode a boolean', '{ source: testsrc, mode: true }', 'camera-mode', /not a boolean/],
    ['mode null', '{ source: testsrc, mode: null }', 'camera-mode', /not a null/],
    ['entry a list', '[testsrc]', 'camera-config', /camera "c": must be a source string or a mapping/],
    ['entry a number', '42', 'camera-source', /camera "c": source must be a string/],
    ['entry empty', '', 'camera-source', /camera "c"/],
    ['bad source in object', '{ source: "http://x/y" }', 'unsupported-scheme', /camera "c"/],
  ];
  for (const [what, entry, code, msg] of bad) {
    it(`rejects: ${what} (${code})`, () => {
      const e = throwsCode(() => parseCamerasYaml(`cameras:\n  c: ${entry}\n`, opts), code);
      assert.match(e.message, msg);
    });
  }

  it('a bad camera name is refused in the object form too', () => {
    throwsCode(() => parseCameraEntry('Porch', { source: 'testsrc' }), 'camera-name');
  });

  it('errors about an object entry never show its credentials', () => {
    const entry = { source: 'rtsp://bob:pa55word@cam.lan/s', 'pa55word-key': 1 };
    const e = throwsCode(() => parseCameraEntry('c', entry), 'camera-config', ['bob:pa55word']);
    assert.match(e.message, /unknown key/);
    const e2 = throwsCode(
      () => parseCameraEntry('c', { source: 'rtsp://bob:pa55word@cam.lan/s', mode: 'rtsp://bob:pa55word@x' }),
      'camera-mode',
      ['pa55word'],
    );
    assert.match(e2.message, /mode must be/);
    const cam = parseCameraEntry('c', { source: 'rtsp://bob:pa55word@cam.lan/s', mode: 'on-demand' });
    const json = JSON.stringify(cam);
    assert.ok(!json.includes('pa55word'), json);
    assert.match(json, /"mode":"on-demand"/);
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
