/**
 * The `hearth` command's handling of bad input: usage errors exit 2 with help, configuration errors
 * exit 1 with one line `hearth: CODE: message` that names the problem and never echoes a secret.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/hearth.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'hearth-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function hearth(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, HEARTH_FROM_SOURCE: '1', ...env },
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('hearth command line', () => {
  it('--help lists the commands', () => {
    const r = hearth(['--help']);
    assert.equal(r.code, 0);
    for (const c of ['server', 'agent', 'demo']) assert.match(r.out, new RegExp(`\\b${c}\\b`));
  });

  it('an unknown command or option is a usage error (exit 2)', () => {
    assert.equal(hearth(['serve']).code, 2);
    const r = hearth(['server', '--port', '99999']);
    assert.equal(r.code, 2);
    assert.match(r.err, /port number/);
  });

  it('agent without a camera map or server is a usage error', () => {
    const r = hearth(['agent', '--server', 'http://127.0.0.1:1']);
    assert.equal(r.code, 2);
    assert.match(r.err, /--cameras/);
  });

  it('agent with a camera map that cannot be read names the file', () => {
    const r = hearth(['agent', '--server', 'http://127.0.0.1:1', '--cameras', join(dir, 'missing.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.err, /^hearth: E_CONFIG: cannot read .*missing\.yaml: ENOENT$/m);
  });

  it('a bad camera map is refused with its code and without echoing credentials', () => {
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'cameras:\n  Front Door: rtsp://admin:hunter2secret@192.0.2.1/stream\n');
    const r = hearth([
      'agent',
      '--server',
      'http://127.0.0.1:1',
      '--cameras',
      f,
      '--data-dir',
      join(dir, 'a'),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.err, /^hearth: E_CONFIG: camera name .* must match/m);
    assert.doesNotMatch(r.err + r.out, /hunter2secret/);
  });

  it('an agent server URL that is not http(s) is refused', () => {
    const f = join(dir, 'ok.yaml');
    writeFileSync(f, 'cameras:\n  demo: testsrc\n');
    const r = hearth(['agent', '--server', 'ftp://x', '--cameras', f]);
    assert.equal(r.code, 2);
    assert.match(r.err, /^hearth: E_USAGE: --server must be an http\(s\) URL/m);
  });

  it('server: plain HTTP on a public address is refused with a clear E_CONFIG', () => {
    const r = hearth(['server', '--data-dir', join(dir, 's'), '--host', '0.0.0.0', '--no-relay'], {
      HEARTH_TLS: 'off',
    });
    assert.equal(r.code, 1);
    assert.match(r.err, /^hearth: E_CONFIG: /m);
  });

  it('server: a bad config file value names the key', () => {
    const f = join(dir, 'server.yaml');
    writeFileSync(f, `dataDir: ${join(dir, 's2')}\nport: eighty\n`);
    const r = hearth(['server', '--config', f]);
    assert.equal(r.code, 1);
    assert.match(r.err, /E_CONFIG.*port/);
  });

  it('demo: a bad --gop is a usage error (exit 2, as for the argument parser)', () => {
    const r = hearth(['demo', '--gop', '0', '--data-dir', join(dir, 'd')]);
    assert.equal(r.code, 2);
    assert.match(r.err, /^hearth: E_USAGE: --gop/m);
  });

  describe('ffmpeg preflight (agent and demo stop before starting, saying what to install)', () => {
    const empty = join(dir, 'empty-path');
    mkdirSync(empty, { recursive: true });
    // A fake ffmpeg whose encoder list has no libx264 (and lavfi among its formats).
    const fakeBin = join(dir, 'fake-bin');
    mkdirSync(fakeBin, { recursive: true });
    writeFileSync(
      join(fakeBin, 'ffmpeg'),
      `#!/bin/sh
case " $* " in
  *" -encoders "*) printf 'Encoders:\\n V..... = Video\\n ------\\n V....D mpeg4                MPEG-4 part 2\\n V....D mjpeg                MJPEG (Motion JPEG)\\n';;
  *" -formats "*) printf 'File formats:\\n D. = Demuxing supported\\n --\\n D  lavfi           Libavfilter virtual input device\\n';;
  *) echo 'ffmpeg version 0.0-fake';;
esac
`,
    );
    chmodSync(join(fakeBin, 'ffmpeg'), 0o755);
    const camFile = join(dir, 'preflight.yaml');
    writeFileSync(camFile, 'cameras:\n  demo: testsrc\n');

    it('demo with no ffmpeg in PATH exits 1 naming ffmpeg and what to install, before any pairing code', () => {
      const d = join(dir, 'demo-noffmpeg');
      const r = hearth(['demo', '--port', '0', '--data-dir', d], { PATH: empty, HEARTH_FFMPEG: '' });
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, /^hearth: E_FFMPEG: ffmpeg was not found, and camera "demo" needs it\. /m);
      assert.match(r.err, /apt install ffmpeg/);
      assert.doesNotMatch(r.out, /pairing|Open http/i);
      assert.ok(!existsSync(join(d, 'server')), 'the server never started');
    });

    it('agent with --ffmpeg pointing to a missing file names that path', () => {
      const missing = join(dir, 'no-such-ffmpeg');
      const r = hearth([
        'agent',
        '--server',
        'http://127.0.0.1:1',
        '--cameras',
        camFile,
        '--data-dir',
        join(dir, 'agent-noffmpeg'),
        '--ffmpeg',
        missing,
      ]);
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, /^hearth: E_FFMPEG: ffmpeg \(.*no-such-ffmpeg\) was not found/m);
      assert.match(r.err, /apt install ffmpeg/);
    });

    it('an ffmpeg without libx264 is refused, naming libx264', () => {
      const r = hearth(['demo', '--port', '0', '--data-dir', join(dir, 'demo-nox264')], {
        PATH: `${fakeBin}:${empty}`,
        HEARTH_FFMPEG: '',
      });
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, /^hearth: E_FFMPEG: this ffmpeg lacks the libx264 encoder .*camera "demo"/m);
      assert.match(r.err, /apt install ffmpeg/);
      // HEARTH_FFMPEG names the binary as well as --ffmpeg does.
      const a = hearth(
        [
          'agent',
          '--server',
          'http://127.0.0.1:1',
          '--cameras',
          camFile,
          '--data-dir',
          join(dir, 'agent-nox264'),
        ],
        { HEARTH_FFMPEG: join(fakeBin, 'ffmpeg') },
      );
      assert.equal(a.code, 1, a.err);
      assert.match(a.err, /^hearth: E_FFMPEG: this ffmpeg lacks the libx264 encoder/m);
    });
  });
});
