// The sealed still, end to end at the agent + protocol level, with real ffmpeg: a SessionManager
// and the real media backend (testsrc cameras, GOP cache, StillMaker); the viewer side is the
// protocol's createOffer / verifyAnswer / openStill with its own ephemeral key. Everything the
// agent "sends" is what the rendezvous server would see: it must carry the still only sealed.
// The WebRTC peer is a stand-in (the still does not touch the media path), so no namespace is
// needed. Every ffmpeg is stopped through the backend and checked gone by PID.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import {
  Acl,
  createOffer,
  deviceIdFromKey,
  type Envelope,
  encodeId,
  fromB64u,
  MAX_STILL_JPEG_BYTES,
  openStill,
  STILL_CT_CHARS,
  systemEnv,
  verifyAnswer,
  WebCryptoSigner,
  x25519Generate,
} from '@hearth/protocol';
import { SessionManager } from '../../src/device/sessions.js';
import {
  createMediaBackend,
  type MediaBackendHandle,
  type MediaPeer,
  parseCamerasYaml,
} from '../../src/index.js';

type Msg = { t: string; env?: Envelope; sid?: string; ct?: string; [k: string]: unknown };

const FP = 'AB:'.repeat(31) + 'AB';
const sdp = (tag: string) =>
  `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=${tag}\r\nt=0 0\r\na=fingerprint:sha-256 ${FP}\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n`;

/** A stand-in for the libdatachannel peer: answers, swallows frames, closes. */
function fakePeer(): MediaPeer {
  const e = new EventEmitter() as unknown as MediaPeer & { closed: boolean };
  Object.assign(e, {
    answerSdp: sdp('answer'),
    connectionState: 'new',
    closed: false,
    start() {},
    push() {},
    resync() {},
    stats: () => ({}),
    async close() {
      if (e.closed) return;
      (e as { closed: boolean }).closed = true;
      (e as unknown as EventEmitter).emit('closed');
    },
    async addIceCandidate() {},
    async selectedCandidatePair() {
      return undefined;
    },
    getLocalFingerprint: () => undefined,
  });
  return e;
}

async function until<T>(what: string, f: () => T | undefined | false, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function ffprobe(jpeg: Uint8Array): { codec_name: string; width: number; height: number } {
  const r = spawnSync(
    'ffprobe',
    [
      '-v',
      'error',
      '-f',
      'jpeg_pipe',
      '-i',
      'pipe:0',
      '-show_entries',
      'stream=codec_name,width,height',
      '-of',
      'json',
    ],
    { input: jpeg, timeout: 10_000 },
  );
  assert.equal(r.status, 0, String(r.stderr));
  return (
    JSON.parse(String(r.stdout)) as { streams: { codec_name: string; width: number; height: number }[] }
  ).streams[0]!;
}

/** True when any 16-byte window of `needle` occurs in `hay`. */
function sharesWindow(hay: Uint8Array, needle: Uint8Array, w = 16): boolean {
  const windows = new Set<string>();
  for (let i = 0; i + w <= needle.length; i++)
    windows.add(Buffer.from(needle.subarray(i, i + w)).toString('hex'));
  for (let i = 0; i + w <= hay.length; i++)
    if (windows.has(Buffer.from(hay.subarray(i, i + w)).toString('hex'))) return true;
  return false;
}

/** Every byte string the server could look at: the JSON text, and each b64u-decodable string in it. */
function wireViews(sent: string[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const text of sent) {
    out.push(Buffer.from(text, 'utf8'));
    for (const s of text.match(/[A-Za-z0-9_-]{22,}/g) ?? []) {
      try {
        out.push(fromB64u(s.length % 4 === 1 ? s.slice(0, -1) : s));
      } catch {
        // not base64url
      }
    }
  }
  return out;
}

describe('e2e: sealed still from a real camera (ffmpeg testsrc → GOP cache → JPEG → session/still)', () => {
  let media: MediaBackendHandle;
  let mgr: SessionManager;
  let device: WebCryptoSigner;
  let viewer: WebCryptoSigner;
  let deviceId: string;
  const wire: { to: string; text: string; m: Msg }[] = [];
  const subs: { unsubscribe(): void }[] = [];
  let pids: number[] = [];

  before(async () => {
    media = createMediaBackend({
      cameras: parseCamerasYaml(
        'cameras:\n  demo: testsrc?size=320x240&fps=10&gop=10\n  big: testsrc?size=1280x720&fps=5&gop=10\n',
      ),
      source: { stopDelayMs: 300 },
      peerFactory: async () => fakePeer(),
    });
    device = await WebCryptoSigner.generate();
    viewer = await WebCryptoSigner.generate();
    deviceId = deviceIdFromKey(device.publicKey);
    const acl = Acl.create(deviceId, viewer.publicKey);
    mgr = new SessionManager({
      deviceId,
      signer: device,
      env: systemEnv,
      media,
      acl: () => acl,
      send: (to, m) => {
        const text = JSON.stringify({ t: 'send', to, m }); // the frame the server gets
        wire.push({ to, text, m: JSON.parse(JSON.stringify(m)) as Msg });
      },
      iceServers: () => [],
      sweepMs: 3_600_000,
    });
    // Warm the cameras: a subscriber, then the first keyframe in the GOP cache.
    for (const name of ['demo', 'big']) {
      const src = media.hub.source(name);
      subs.push(src.subscribe(() => {}));
      await src.waitForKeyframe(20_000);
    }
    pids = media.stats().ffmpegPids.slice();
    assert.equal(pids.length, 2);
  });

  after(async () => {
    mgr?.dispose();
    for (const s of subs) s.unsubscribe();
    await media?.close();
    for (const pid of pids) {
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      assert.equal(alive, false, `ffmpeg ${pid} still running`);
    }
  });

  async function view(camera: string, o: { sk?: boolean } = {}) {
    const eph = await x25519Generate();
    const offer = await createOffer(
      viewer,
      { deviceId, camera, sdp: sdp('offer'), ...(o.sk === false ? {} : { stillKey: eph.publicKey }) },
      systemEnv,
    );
    await mgr.onOffer(encodeId('userKey', viewer.publicKey), { env: offer.envelope });
    const answerMsg = await until('answer', () =>
      wire.find((w) => w.m.t === 'session/answer' && w.m.env?.b.sid === offer.sid),
    );
    const va = await verifyAnswer(answerMsg.m.env!, {
      pinnedDeviceKey: device.publicKey,
      sid: offer.sid,
      offerDigest: offer.digest,
      now: systemEnv.now(),
    });
    assert.ok(va.ok);
    return { eph, offer, answer: va.body, answerIndex: wire.indexOf(answerMsg) };
  }

  it('the viewer opens a valid JPEG of the camera; the answer went first; the server sees only fixed-size ciphertext', async () => {
    const { eph, offer, answer, answerIndex } = await view('demo');
    assert.ok(answer.stillKey, 'the answer carries the device ephemeral key');
    const still = await until('still', () =>
      wire.find((w) => w.m.t === 'session/still' && w.m.sid === offer.sid),
    );
    assert.ok(wire.indexOf(still) > answerIndex, 'the answer is sent before the still');
    assert.deepEqual(Object.keys(still.m).sort(), ['ct', 'sid', 't']);
    assert.equal(still.m.ct!.length, STILL_CT_CHARS, 'fixed size');
    const jpeg = await openStill({
      secret: eph.privateKey,
      deviceStillKey: answer.stillKey,
      ctx: { sid: offer.sid, camera: 'demo', offerDigest: offer.digest },
      ct: still.m.ct,
    });
    assert.ok(jpeg.length > 1000 && jpeg.length <= MAX_STILL_JPEG_BYTES, `size ${jpeg.length}`);
    assert.deepEqual([jpeg[0], jpeg[1]], [0xff, 0xd8]);
    assert.deepEqual([jpeg.at(-2), jpeg.at(-1)], [0xff, 0xd9]);
    const p = ffprobe(jpeg);
    assert.equal(p.codec_name, 'mjpeg');
    assert.equal(p.width, 320);
    assert.equal(p.height, 240);
    // What the server saw: not the JPEG, in any encoding, nor any 16-byte piece of it.
    const all = wire.map((w) => w.text);
    const joined = all.join('\n');
    for (const enc of ['base64', 'base64url', 'hex'] as const)
      assert.equal(joined.includes(Buffer.from(jpeg.subarray(0, 64)).toString(enc).slice(0, 40)), false, enc);
    for (const v of wireViews(all)) assert.equal(sharesWindow(v, jpeg), false);
  });

  it('one JPEG encode per keyframe, however many viewers', async () => {
    const src = media.hub.source('demo');
    const kf = src.snapshot().units[0];
    const before = media.stills!.encodes;
    const { offer } = await view('demo');
    await until('second still', () => wire.find((w) => w.m.t === 'session/still' && w.m.sid === offer.sid));
    assert.ok(before > 0);
    if (src.snapshot().units[0] === kf) assert.equal(media.stills!.encodes, before, 'cached JPEG reused');
  });

  it('a 1280x720 camera: scaled down by the ladder to fit the limit', async () => {
    const { eph, offer, answer } = await view('big');
    assert.ok(answer.stillKey);
    const still = await until('still', () =>
      wire.find((w) => w.m.t === 'session/still' && w.m.sid === offer.sid),
    );
    const jpeg = await openStill({
      secret: eph.privateKey,
      deviceStillKey: answer.stillKey,
      ctx: { sid: offer.sid, camera: 'big', offerDigest: offer.digest },
      ct: still.m.ct,
    });
    const p = ffprobe(jpeg);
    assert.equal(p.codec_name, 'mjpeg');
    assert.ok(p.width <= 640 && p.width >= 240, `width ${p.width}`);
    assert.equal(p.height, Math.round((p.width * 720) / 1280 / 2) * 2);
    assert.ok(jpeg.length <= MAX_STILL_JPEG_BYTES);
  });

  it('an offer without sk (an older viewer): answer without sk, and no still', async () => {
    const { offer, answer } = await view('demo', { sk: false });
    assert.equal(answer.stillKey, undefined);
    // A control session with sk, opened after it, gets its still; the old one still has none.
    const ctl = await view('demo');
    await until('control still', () =>
      wire.find((w) => w.m.t === 'session/still' && w.m.sid === ctl.offer.sid),
    );
    assert.equal(
      wire.some((w) => w.m.t === 'session/still' && w.m.sid === offer.sid),
      false,
    );
  });
});
