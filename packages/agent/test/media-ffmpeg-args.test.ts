// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${VAR} is the config substitution syntax under test
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildProbePlan, rtspConcatList } from '../src/media/ffmpeg-args.js';
import { buildFfmpegArgs, buildProbeArgs, decideMode, parseCameraSource } from '../src/media/index.js';

const env = { P: 'pw' };
const src = (s: string) => parseCameraSource('cam', s, { env });
const after = (args: readonly string[], flag: string): string | undefined => args[args.indexOf(flag) + 1];

describe('ffmpeg argv', () => {
  const table: {
    name: string;
    source: string;
    codec?: string;
    mode: 'copy' | 'transcode';
    has: string[][];
    hasNot: string[];
  }[] = [
    {
      name: 'testsrc default',
      source: 'testsrc',
      mode: 'transcode',
      has: [
        ['-f', 'lavfi'],
        ['-i', 'testsrc=size=640x360:rate=15'],
        ['-g', '30'],
        ['-c:v', 'libx264'],
        ['-re'],
      ],
      hasNot: ['-rtsp_transport', 'copy'],
    },
    {
      name: 'testsrc gop 4 s at 15 fps',
      source: 'testsrc?size=1280x720&fps=15&gop=4',
      mode: 'transcode',
      has: [
        ['-i', 'testsrc=size=1280x720:rate=15'],
        ['-g', '60'],
        ['-keyint_min', '60'],
        ['-sc_threshold', '0'],
      ],
      hasNot: ['copy'],
    },
    {
      name: 'testsrc gop 10 s',
      source: 'testsrc?fps=10&gop=10',
      mode: 'transcode',
      has: [['-g', '100']],
      hasNot: [],
    },
    {
      name: 'rtsp h264 → copy over tcp',
      source: 'rtsp://u:${P}@cam.lan/live',
      codec: 'h264',
      mode: 'copy',
      has: [
        ['-f', 'concat'],
        ['-i', 'pipe:0'],
        ['-c:v', 'copy'],
        ['-bsf:v', 'dump_extra=freq=keyframe'],
      ],
      hasNot: ['libx264'],
    },
    {
      name: 'rtsp hevc → transcode',
      source: 'rtsp://cam.lan/live',
      codec: 'hevc',
      mode: 'transcode',
      has: [
        ['-i', 'pipe:0'],
        ['-c:v', 'libx264'],
        ['-profile:v', 'baseline'],
        ['-pix_fmt', 'yuv420p'],
      ],
      hasNot: ['copy'],
    },
    {
      name: 'rtsp unknown codec → transcode',
      source: 'rtsp://cam.lan/live',
      mode: 'transcode',
      has: [['-c:v', 'libx264']],
      hasNot: ['copy'],
    },
    {
      name: 'file h264 → copy, looped',
      source: 'file:/srv/a.mp4',
      codec: 'h264',
      mode: 'copy',
      has: [
        ['-stream_loop', '-1'],
        ['-i', 'file:/srv/a.mp4'],
        ['-c:v', 'copy'],
      ],
      // An explicit mp4toannexb filter stops a looped file after its first pass (ffmpeg 5.1).
      hasNot: ['-rtsp_transport', 'h264_mp4toannexb'],
    },
    {
      name: 'file vp9 → transcode',
      source: 'file:/srv/a.webm',
      codec: 'vp9',
      mode: 'transcode',
      has: [
        ['-c:v', 'libx264'],
        ['-tune', 'zerolatency'],
        ['-preset', 'ultrafast'],
      ],
      hasNot: [],
    },
  ];
  for (const row of table) {
    it(row.name, () => {
      const s = src(row.source);
      const plan = buildFfmpegArgs(s, row.codec ? { sourceCodec: row.codec } : {});
      assert.equal(plan.mode, row.mode);
      assert.equal(decideMode(s, row.codec), row.mode);
      const a = plan.args;
      for (const seq of row.has) {
        const i = a.indexOf(seq[0] as string);
        assert.ok(i >= 0, `${seq[0]} missing in ${a.join(' ')}`);
        if (seq.length > 1) assert.deepEqual(a.slice(i, i + seq.length), seq);
      }
      for (const x of row.hasNot) assert.ok(!a.includes(x), `${x} unexpected`);
      // Always Annex-B H.264 on stdout, no audio, input before output.
      assert.deepEqual(a.slice(-3), ['-flush_packets', '1', 'pipe:1']);
      assert.ok(
        a.some((x, k) => x === '-f' && a[k + 1] === 'h264'),
        'Annex-B h264 output',
      );
      assert.ok(a.includes('-an'));
      assert.ok(a.indexOf('-i') < a.indexOf('-c:v'));
      assert.ok(a.includes('-nostdin'));
    });
  }

  it('review R12: an rtsp URL and its password are never in the argv, only in the stdin list', () => {
    const plan = buildFfmpegArgs(src('rtsp://u:${P}@cam.lan/live'), { sourceCodec: 'h264' });
    assert.ok(!plan.args.some((a) => a.includes('pw') || a.includes('rtsp://')), plan.args.join(' '));
    assert.equal(
      plan.stdin,
      "ffconcat version 1.0\nfile 'rtsp://u:pw@cam.lan/live'\noption rtsp_transport tcp\noption timeout 10000000\n",
    );
    assert.equal(
      rtspConcatList("rtsp://h/a'b", '1'),
      "ffconcat version 1.0\nfile 'rtsp://h/a'\\''b'\noption rtsp_transport tcp\noption timeout 1\n",
    );
    assert.throws(() => rtspConcatList('rtsp://h/a\nfile x', '1'));
  });

  it('probe args: none for testsrc, the stdin list for rtsp', () => {
    assert.equal(buildProbeArgs(src('testsrc')), undefined);
    const p = buildProbePlan(src('rtsp://u:${P}@h/x'));
    assert.equal(after(p?.args ?? [], '-i'), 'pipe:0');
    assert.ok(!p?.args.some((a) => a.includes('pw')));
    assert.match(p?.stdin ?? '', /^file 'rtsp:\/\/u:pw@h\/x'$/m);
    assert.equal(buildProbeArgs(src('file:/a.mp4'))?.at(-1), 'file:/a.mp4');
  });
});

describe('ffmpeg argv: the analysis output (motion detection)', () => {
  it('a second output after the H.264 one; the first is unchanged (still -c copy)', () => {
    const plain = buildFfmpegArgs(src('rtsp://u:${P}@cam/s'), { sourceCodec: 'h264' });
    const plan = buildFfmpegArgs(src('rtsp://u:${P}@cam/s'), {
      sourceCodec: 'h264',
      analysis: { fps: 4, width: 96, height: 54 },
    });
    assert.equal(plan.mode, 'copy');
    const first = plan.args.indexOf('pipe:1');
    assert.deepEqual(plan.args.slice(0, first + 1), plain.args);
    assert.deepEqual(plan.args.slice(first + 1), [
      ...['-map', '0:v:0', '-an', '-sn', '-dn', '-vf', 'fps=4,scale=96:54:flags=area,format=gray'],
      ...['-c:v', 'rawvideo', '-f', 'rawvideo', '-flush_packets', '1', 'pipe:3'],
    ]);
    assert.ok(!plan.args.join(' ').includes('pw'));
  });
  it('refuses a bad size', () => {
    for (const a of [
      { fps: 0, width: 96, height: 54 },
      { fps: 4, width: 1.5, height: 54 },
    ])
      assert.throws(() => buildFfmpegArgs(src('testsrc'), { analysis: a }), /bad analysis size/);
  });
});
