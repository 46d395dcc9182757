// MediaHub's keyframe requests for cameras with ONVIF, with a scripted ONVIF client, a stand-in
// "ffmpeg" (a script that says it has analysed the stream, then sends nothing: the stream stays
// cold) and a stand-in peer: when the request goes out, how often it is repeated, that a refusal
// stops it, and that neither a hung nor a throwing client holds up or breaks the view.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  type CameraConfig,
  type KeyframeRequestOptions,
  MediaError,
  MediaHub,
  type MediaPeer,
  parseCamerasYaml,
} from '../src/media/index.js';

const dir = mkdtempSync(join(tmpdir(), 'hearth-kfr-'));
const FAKE_FFMPEG = join(dir, 'ffmpeg');
writeFileSync(FAKE_FFMPEG, `#!/bin/sh\necho "Input #0, rtsp, from 'rtsp://cam/s':" >&2\nexec sleep 30\n`);
chmodSync(FAKE_FFMPEG, 0o755);
after(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fakePeer(): MediaPeer {
  const e = new EventEmitter() as MediaPeer & { closed: boolean };
  Object.assign(e, {
    answerSdp: 'v=0\r\n',
    connectionState: 'new',
    closed: false,
    start() {},
    push() {},
    resync() {},
    stats: () => ({}),
    close: async () => {
      if (e.closed) return;
      (e as { closed: boolean }).closed = true;
      e.emit('closed');
    },
    addIceCandidate: async () => {},
    selectedCandidatePair: async () => undefined,
    getLocalFingerprint: () => undefined,
  });
  return e;
}

function camera(): CameraConfig[] {
  return parseCamerasYaml(
    'cameras:\n  porch:\n    source: rtsp://admin:pw123@cam.lan/s\n    mode: on-demand\n    onvif: http://cam.lan/onvif/device_service\n',
  );
}

function hubWith(client: () => Promise<void>, kr: Partial<KeyframeRequestOptions> = {}) {
  const warnings: Record<string, unknown>[] = [];
  let calls = 0;
  const hub = new MediaHub(camera(), {
    source: { ffmpegPath: FAKE_FFMPEG, sourceCodec: 'h264', stopDelayMs: 0 },
    profileWaitMs: 1,
    peerFactory: async () => fakePeer(),
    logger: {
      info() {},
      error() {},
      warn: (o) => void warnings.push(o as Record<string, unknown>),
    },
    keyframeRequest: {
      settleMs: 10_000,
      retryMs: 100,
      minIntervalMs: 20,
      maxRequests: 3,
      ...kr,
      clientFactory: () => ({
        setSynchronizationPoint: () => {
          calls++;
          return client();
        },
      }),
    },
  });
  return { hub, warnings, calls: () => calls };
}

describe('keyframe requests (ONVIF) from the hub', () => {
  it('waits for ffmpeg to have analysed the stream, repeats while no keyframe comes, at most maxRequests', async () => {
    const { hub, calls } = hubWith(async () => undefined);
    try {
      const { session } = await hub.createViewerSession('porch', 'offer');
      assert.equal(calls(), 0, 'not before ffmpeg runs and has analysed the stream');
      for (let i = 0; i < 100 && calls() < 3; i++) await sleep(50);
      await sleep(400);
      assert.equal(calls(), 3, 'three requests, then it gives up (the stream stays cold)');
      assert.deepEqual(hub.keyframeRequestStats('porch'), { requests: 3, failures: 0 });
      await session.close();
    } finally {
      await hub.close();
    }
  });

  it('a refusal is logged once, not retried, and holds the next cold view back', async () => {
    const { hub, calls, warnings } = hubWith(async () => {
      throw new MediaError('onvif-unauthorized', 'ONVIF: SOAP fault env:Sender/ter:NotAuthorized');
    });
    try {
      const a = await hub.createViewerSession('porch', 'offer');
      for (let i = 0; i < 100 && calls() < 1; i++) await sleep(50);
      await sleep(400);
      assert.equal(calls(), 1);
      const w = warnings.filter((x) => x.reason === 'onvif-unauthorized');
      assert.equal(w.length, 1);
      assert.ok(!JSON.stringify(warnings).includes('pw123'));
      await a.session.close();
      const b = await hub.createViewerSession('porch', 'offer');
      await sleep(600);
      assert.equal(calls(), 1, 'within the failure backoff no new request');
      await b.session.close();
    } finally {
      await hub.close();
    }
  });

  it('a client that never answers, or throws at once, neither delays nor breaks the view', async () => {
    for (const client of [
      () => new Promise<void>(() => undefined),
      () => {
        throw new Error('boom');
      },
    ]) {
      const { hub, calls, warnings } = hubWith(client as () => Promise<void>, { maxRequests: 1 });
      try {
        const { session } = await hub.createViewerSession('porch', 'offer');
        assert.ok(session.id);
        for (let i = 0; i < 100 && calls() < 1; i++) await sleep(50);
        assert.equal(calls(), 1);
        const second = await hub.createViewerSession('porch', 'offer');
        assert.ok(second.session.id, 'another view of the same camera is not held up either');
        await sleep(100);
        if (warnings.length > 0) assert.equal(warnings[0]?.reason, 'onvif-error');
        await second.session.close();
        await session.close();
      } finally {
        await hub.close();
      }
    }
  });

  it('a camera without onvif never asks', async () => {
    const hub = new MediaHub(
      parseCamerasYaml('cameras:\n  porch:\n    source: rtsp://cam.lan/s\n    mode: on-demand\n'),
      {
        source: { ffmpegPath: FAKE_FFMPEG, sourceCodec: 'h264', stopDelayMs: 0 },
        profileWaitMs: 1,
        peerFactory: async () => fakePeer(),
      },
    );
    try {
      await hub.createViewerSession('porch', 'offer');
      assert.equal(hub.keyframeRequestStats('porch'), undefined);
    } finally {
      await hub.close();
    }
  });
});
