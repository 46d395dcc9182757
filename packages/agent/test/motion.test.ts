/**
 * Motion detection (issue 9), on synthetic grayscale frames: the detector, the frame reader, and
 * the camera map's `motion` key (hostile values get a clear error; fuzzed).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  GrayFrameReader,
  MOTION_DEFAULTS,
  type MotionConfig,
  MotionDetector,
  type MotionEvent,
  parseMotion,
  pointInZone,
  zoneMask,
} from '../src/events/index.js';
import { MediaError, parseCamerasYaml } from '../src/media/index.js';

const W = 96;
const H = 54;
const FPS = 4;
const STEP = 1000 / FPS;

/** A scene: grey noise-free background at `level`, with a bright box at (bx, by) when given. */
function frame(i: number, box?: { x: number; y: number; size?: number }, level = 90) {
  const data = new Uint8Array(W * H).fill(level);
  if (box) {
    const s = box.size ?? 12;
    for (let y = box.y; y < Math.min(H, box.y + s); y++)
      for (let x = box.x; x < Math.min(W, box.x + s); x++) data[y * W + x] = 230;
  }
  return { width: W, height: H, data, t: Math.round(i * STEP) };
}

/** Runs `seconds` of frames through a detector; `scene(i)` gives frame i. */
function run(cfg: Partial<MotionConfig>, seconds: number, scene: (i: number) => ReturnType<typeof frame>) {
  const d = new MotionDetector({ ...MOTION_DEFAULTS, ...cfg });
  const events: MotionEvent[] = [];
  for (let i = 0; i < seconds * FPS; i++) events.push(...d.push(scene(i)));
  return events;
}

/** A box moving left to right in the upper half during [from, to) seconds. */
const mover =
  (from: number, to: number, y = 10) =>
  (i: number) => {
    const t = i / FPS;
    return t >= from && t < to ? frame(i, { x: Math.round((t - from) * 20) % (W - 12), y }) : frame(i);
  };

describe('motion detector', () => {
  it('a still scene gives no event', () => {
    assert.deepEqual(
      run({}, 20, (i) => frame(i)),
      [],
    );
  });

  it('a box moving from 3 s to 7 s: one event, starting at its first frame, ending at its last', () => {
    const ev = run({ minDurationMs: 1000 }, 15, mover(3, 7));
    assert.equal(ev.length, 2, JSON.stringify(ev));
    const [start, end] = ev as [MotionEvent, MotionEvent];
    assert.equal(start.type, 'start');
    assert.equal(start.t, 3000, 'the trigger frame is the first with motion, not the one that confirmed it');
    assert.ok(start.score > 0);
    assert.equal(end.type, 'end');
    assert.ok(end.type === 'end' && end.startedAt === 3000);
    assert.ok(end.t >= 6500 && end.t < 7000, `end ${end.t}`);
  });

  it('shorter than minDuration: no event', () => {
    assert.deepEqual(run({ minDurationMs: 3000 }, 10, mover(2, 4)), []);
    assert.equal(run({ minDurationMs: 1000 }, 10, mover(2, 4)).length, 2);
  });

  it('motion outside every zone is ignored; inside a zone it is found', () => {
    const lower = [
      [0, 0.5],
      [1, 0.5],
      [1, 1],
      [0, 1],
    ] as const;
    const upper = [
      [0, 0],
      [1, 0],
      [1, 0.5],
      [0, 0.5],
    ] as const;
    assert.deepEqual(run({ zones: [lower] }, 12, mover(2, 6, 10)), [], 'box in the upper half, zone lower');
    assert.equal(run({ zones: [upper] }, 12, mover(2, 6, 10)).length, 2);
    assert.equal(run({ zones: [lower] }, 12, mover(2, 6, 40)).length, 2, 'box in the lower half');
  });

  it('cooldown: a second burst inside it starts no event; after it, one does', () => {
    const scene = (i: number) => {
      const t = i / FPS;
      return t < 7 ? mover(2, 5)(i) : mover(9, 12)(i);
    };
    const within = run({ cooldownMs: 10_000 }, 20, scene);
    assert.equal(within.filter((e) => e.type === 'start').length, 1, JSON.stringify(within));
    const after = run({ cooldownMs: 2000 }, 20, scene);
    assert.deepEqual(
      after.filter((e) => e.type === 'start').map((e) => e.t),
      [2000, 9000],
    );
  });

  it('a light switched on (the whole frame changes at once) is not motion', () => {
    assert.deepEqual(
      run({}, 12, (i) => frame(i, undefined, i / FPS >= 4 ? 200 : 60)),
      [],
    );
  });

  it('sensitivity: a small faint change is found only at high sensitivity', () => {
    const faint = (i: number) => {
      const f = frame(i);
      const t = i / FPS;
      if (t >= 2 && t < 6) {
        const x = Math.round((t - 2) * 10);
        for (let y = 20; y < 24; y++) for (let k = x; k < x + 4; k++) f.data[y * W + k] = 120; // +30, 16 px
      }
      return f;
    };
    assert.deepEqual(run({ sensitivity: 0.2 }, 10, faint), []);
    assert.equal(run({ sensitivity: 0.95 }, 10, faint).length, 2);
  });

  it('refuses a frame of the wrong size', () => {
    const d = new MotionDetector(MOTION_DEFAULTS);
    assert.throws(() => d.push({ width: 10, height: 10, data: new Uint8Array(100), t: 0 }), RangeError);
  });
});

describe('zones and the frame reader', () => {
  it('point in polygon, and masks', () => {
    const tri = [
      [0, 0],
      [1, 0],
      [0, 1],
    ] as const;
    assert.equal(pointInZone(0.2, 0.2, tri), true);
    assert.equal(pointInZone(0.8, 0.8, tri), false);
    const m = zoneMask(10, 10, [tri]);
    const n = m.reduce((a, b) => a + b, 0);
    assert.ok(n > 35 && n < 65, `${n}`);
    assert.equal(
      zoneMask(4, 4, []).reduce((a, b) => a + b, 0),
      16,
    );
  });

  it('splits a byte stream into frames stamped by count, whatever the chunking', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 30 }), (cuts) => {
        const r = new GrayFrameReader(4, 3, 5);
        const bytes = Uint8Array.from({ length: 12 * 7 }, (_, i) => i);
        const got: { t: number; first: number }[] = [];
        let off = 0;
        for (const c of [...cuts, 1000]) {
          for (const f of r.push(bytes.subarray(off, off + c)))
            got.push({ t: f.t, first: f.data[0] as number });
          off += c;
          if (off >= bytes.length) break;
        }
        assert.deepEqual(
          got,
          Array.from({ length: 7 }, (_, i) => ({ t: i * 200, first: (i * 12) & 0xff })),
        );
      }),
      { numRuns: 200 },
    );
  });
});

describe('camera map: motion', () => {
  const yaml = (m: string) => `cameras:\n  door:\n    source: testsrc\n    motion: ${m}\n`;
  it('true takes the defaults; a mapping is read in seconds', () => {
    assert.deepEqual(parseCamerasYaml(yaml('true'))[0]?.motion, MOTION_DEFAULTS);
    assert.equal(parseCamerasYaml(yaml('false'))[0]?.motion, undefined);
    const m = parseCamerasYaml(
      yaml(
        '{sensitivity: 0.7, minDuration: 2, cooldown: 30, fps: 2, zones: [[[0,0],[1,0],[1,1]]], preRoll: 3, postRoll: 2.5, maxLength: 60}',
      ),
    )[0]?.motion;
    assert.deepEqual(m, {
      sensitivity: 0.7,
      minDurationMs: 2000,
      cooldownMs: 30_000,
      fps: 2,
      preRollMs: 3000,
      postRollMs: 2500,
      maxClipMs: 60_000,
      zones: [
        [
          [0, 0],
          [1, 0],
          [1, 1],
        ],
      ],
    });
  });

  it('bad values get a clear error naming the camera and the field', () => {
    for (const [v, re] of [
      ['7', /must be true, false or a mapping/],
      ['{sensitivity: 2}', /"sensitivity" must be a number from 0 to 1/],
      ['{fps: 0}', /"fps" must be a number from 1 to 10/],
      ['{fps: 2.5}', /"fps" must be a whole number/],
      ['{cooldown: -1}', /"cooldown"/],
      ['{zones: [[[0,0],[1,1]]]}', /zone 1 must be a list of 3 to 64/],
      ['{zones: [[[0,0],[1,0],[2,1]]]}', /zone 1: each point is \[x, y\] with both from 0 to 1/],
      ['{zones: 3}', /"zones" must be a list/],
      ['{sensitivty: 0.5}', /unknown key "sensitivty"/],
      ['{maxLength: 1}', /"maxLength" must be a number from 5 to 600/],
      ['{preRoll: 31}', /"preRoll"/],
    ] as const) {
      assert.throws(
        () => parseCamerasYaml(yaml(v)),
        (e: unknown) =>
          e instanceof MediaError &&
          e.reason === 'camera-motion' &&
          e.code === 'E_CONFIG' &&
          /camera "door": motion: /.test(e.message) &&
          re.test(e.message),
        v,
      );
    }
  });

  it('fuzz: any value is a config or a camera-motion error, never anything else', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
        try {
          const m = parseMotion('cam', v);
          if (m) {
            assert.ok(m.sensitivity >= 0 && m.sensitivity <= 1);
            assert.ok(m.zones.length <= 16);
            new MotionDetector(m).push(frame(0));
          }
        } catch (e) {
          assert.ok(e instanceof MediaError && e.reason === 'camera-motion', String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
