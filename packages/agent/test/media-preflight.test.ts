/**
 * The media preflight: parsing ffmpeg's `-encoders` / `-formats` listings (captured from Debian 12's
 * ffmpeg 5.1), and what is reported missing, per camera, with fake ffmpeg/ffprobe scripts.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  buildFfmpegArgs,
  describePreflight,
  H264_ENCODER,
  parseCamerasYaml,
  parseEncoders,
  parseFormats,
  preflightMedia,
  TESTSRC_FORMAT,
} from '../src/media/index.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const ENCODERS = fixture('ffmpeg-5.1-encoders.txt');
const FORMATS = fixture('ffmpeg-5.1-formats.txt');
const NO_X264 = ENCODERS.split('\n')
  .filter((l) => !/libx264/.test(l))
  .join('\n');

const dir = mkdtempSync(join(tmpdir(), 'hearth-preflight-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A fake tool: prints `encoders` for -encoders, `formats` for -formats, a version line otherwise. */
function fakeTool(name: string, encoders: string, formats = FORMATS): string {
  const enc = join(dir, `${name}.encoders`);
  const fmt = join(dir, `${name}.formats`);
  writeFileSync(enc, encoders);
  writeFileSync(fmt, formats);
  const p = join(dir, name);
  writeFileSync(
    p,
    `#!/bin/sh\nfor a in "$@"; do\n  case "$a" in\n    -encoders) cat '${enc}'; exit 0;;\n    -formats) cat '${fmt}'; exit 0;;\n  esac\ndone\necho "${name} version 0.0-fake"\n`,
  );
  chmodSync(p, 0o755);
  return p;
}

const cameras = parseCamerasYaml(
  'cameras:\n  demo: testsrc\n  porch: rtsp://u:secretpw@192.0.2.1/s\n  loop: file:/srv/a.mp4\n',
);

describe('media preflight', () => {
  it('parses the encoders of a captured `ffmpeg -encoders` listing', () => {
    const enc = parseEncoders(ENCODERS);
    for (const e of ['libx264', 'libx264rgb', 'libx265', 'mjpeg', 'aac', 'a64multi'])
      assert.ok(enc.has(e), e);
    // The legend above the separator is not an encoder.
    for (const e of ['=', 'Video', 'Encoders:']) assert.ok(!enc.has(e), e);
    assert.ok(!parseEncoders(NO_X264).has('libx264'));
    assert.ok(enc.size > 100);
  });

  it('parses formats and devices, splitting aliases', () => {
    const f = parseFormats(FORMATS);
    for (const n of [TESTSRC_FORMAT, 'h264', 'rtsp', 'mov', 'mp4', 'matroska', 'webm'])
      assert.ok(f.has(n), n);
    assert.ok(!f.has('='));
    // Newer ffmpeg marks devices with a third flag column.
    assert.ok(
      parseFormats('File formats:\n --\n D d lavfi           Libavfilter virtual input device\n').has(
        'lavfi',
      ),
    );
  });

  it('checks the encoder that the ffmpeg argv really uses', () => {
    const t = buildFfmpegArgs(cameras[0]!.source).args;
    assert.equal(t[t.indexOf('-c:v') + 1], H264_ENCODER);
    assert.equal(t[t.indexOf('-f') + 1], TESTSRC_FORMAT);
  });

  it('a complete ffmpeg passes', async () => {
    const ffmpeg = fakeTool('ffmpeg-ok', ENCODERS);
    const r = await preflightMedia(cameras, { ffmpegPath: ffmpeg, ffprobePath: ffmpeg });
    assert.equal(r.ok, true, describePreflight(r));
    assert.deepEqual(r.tools, []);
    assert.equal(r.ffmpegVersion, 'ffmpeg-ok version 0.0-fake');
    assert.equal(describePreflight(r), '');
  });

  it('no ffmpeg: every camera misses it, and the message says what to install', async () => {
    const r = await preflightMedia(cameras, {
      ffmpegPath: join(dir, 'nope', 'ffmpeg'),
      ffprobePath: join(dir, 'nope', 'ffprobe'),
    });
    assert.equal(r.ok, false);
    assert.deepEqual(
      r.tools.map((t) => [t.tool, t.reason, t.cameras]),
      [
        ['ffmpeg', 'ENOENT', ['demo', 'porch', 'loop']],
        ['ffprobe', 'ENOENT', ['porch', 'loop']],
      ],
    );
    assert.deepEqual(
      r.cameras.map((c) => [c.camera, c.missing]),
      [
        ['demo', ['ffmpeg']],
        ['porch', ['ffmpeg', 'ffprobe']],
        ['loop', ['ffmpeg', 'ffprobe']],
      ],
    );
    const msg = describePreflight(r, { ffmpeg: '--ffmpeg <path>' });
    assert.match(msg, /ffmpeg \(.*\) was not found/);
    assert.match(msg, /apt install ffmpeg/);
    assert.match(msg, /--ffmpeg <path>/);
    assert.doesNotMatch(msg, /secretpw/);
  });

  it('without libx264 the testsrc camera cannot start; H.264 sources only warn', async () => {
    const ffmpeg = fakeTool('ffmpeg-nox264', NO_X264);
    const r = await preflightMedia(cameras, { ffmpegPath: ffmpeg, ffprobePath: ffmpeg });
    assert.equal(r.ok, false);
    assert.deepEqual(r.cameras.find((c) => c.camera === 'demo')?.missing, ['libx264']);
    assert.deepEqual(r.cameras.find((c) => c.camera === 'porch')?.missing, []);
    assert.match(r.cameras.find((c) => c.camera === 'porch')?.warnings[0] ?? '', /libx264/);
    assert.match(describePreflight(r), /lacks the libx264 encoder .*camera "demo"/);
    // Without a testsrc camera it is not blocking.
    const r2 = await preflightMedia(cameras.slice(1), { ffmpegPath: ffmpeg, ffprobePath: ffmpeg });
    assert.equal(r2.ok, true);
  });

  it('without lavfi the testsrc camera cannot start', async () => {
    const ffmpeg = fakeTool(
      'ffmpeg-nolavfi',
      ENCODERS,
      FORMATS.split('\n')
        .filter((l) => !/lavfi/.test(l))
        .join('\n'),
    );
    const r = await preflightMedia(cameras.slice(0, 1), { ffmpegPath: ffmpeg });
    assert.deepEqual(r.cameras[0]?.missing, ['lavfi']);
    assert.match(describePreflight(r), /lavfi/);
  });

  it('ffprobe is not needed when only testsrc is configured, or the codec is known', async () => {
    const ffmpeg = fakeTool('ffmpeg-only', ENCODERS);
    const missing = join(dir, 'nope', 'ffprobe');
    assert.equal(
      (await preflightMedia(cameras.slice(0, 1), { ffmpegPath: ffmpeg, ffprobePath: missing })).ok,
      true,
    );
    assert.equal(
      (await preflightMedia(cameras, { ffmpegPath: ffmpeg, ffprobePath: missing, sourceCodecKnown: true }))
        .ok,
      true,
    );
    const r = await preflightMedia(cameras, { ffmpegPath: ffmpeg, ffprobePath: missing });
    assert.deepEqual(
      r.tools.map((t) => t.tool),
      ['ffprobe'],
    );
  });

  it('a tool that is not executable is reported with its reason', async () => {
    const p = join(dir, 'not-exec');
    writeFileSync(p, 'not a program');
    chmodSync(p, 0o644);
    const r = await preflightMedia(cameras.slice(0, 1), { ffmpegPath: p });
    assert.equal(r.tools[0]?.reason, 'EACCES');
    assert.match(describePreflight(r), /cannot be run \(EACCES\)/);
  });
});
