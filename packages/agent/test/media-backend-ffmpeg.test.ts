/**
 * A camera whose ffmpeg cannot be started (missing binary): the backend marks it down with that cause,
 * and refuses further offers at once with MediaError('ffmpeg-spawn') — which SessionManager sends to
 * the viewer as E_CAMERA_UNAVAILABLE — for as long as ffmpeg still cannot run. No WebRTC peer is
 * created: the refusal comes before the offer is read.
 */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  CAMERA_UNAVAILABLE,
  createMediaBackend,
  MediaError,
  mediaWireCode,
  parseCamerasYaml,
} from '../src/index.js';

describe('media backend: ffmpeg that cannot be started', () => {
  const media = createMediaBackend({
    cameras: parseCamerasYaml('cameras:\n  demo: testsrc\n'),
    source: { ffmpegPath: join(tmpdir(), 'hearth-no-such-ffmpeg', 'ffmpeg'), backoffInitialMs: 50 },
    cameraDownGraceMs: 50,
  });
  after(() => media.close());

  it('maps media failures to the wire codes viewers understand', () => {
    assert.equal(mediaWireCode('ffmpeg-spawn'), CAMERA_UNAVAILABLE);
    assert.equal(mediaWireCode('ffmpeg-exited'), 'E_CAMERA_OFFLINE');
    assert.equal(mediaWireCode('source-timeout'), 'E_CAMERA_OFFLINE');
    assert.equal(mediaWireCode('bad-offer'), 'E_BAD_SDP');
    assert.equal(mediaWireCode('no-h264-in-offer'), 'E_NO_H264');
    assert.equal(mediaWireCode('camera-name'), 'E_CONFIG');
    // A MediaError carries its wire code as `code` and the media cause as `reason`.
    const e = new MediaError('ffmpeg-spawn', 'cannot start ffmpeg');
    assert.equal(e.code, CAMERA_UNAVAILABLE);
    assert.equal(e.reason, 'ffmpeg-spawn');
    assert.equal(e.message, 'cannot start ffmpeg');
  });

  it('refuses offers with ffmpeg-spawn once the camera failed to spawn it', async () => {
    const src = media.hub.source('demo');
    const failed = new Promise<MediaError>((r) => src.once('error', r));
    const sub = src.subscribe(() => {});
    const e = await failed;
    assert.equal(e.reason, 'ffmpeg-spawn');
    assert.match(e.message, /ENOENT/);
    await assert.rejects(
      media.createViewerSession('demo', 'not an sdp', { iceServers: [] }),
      (err: unknown) =>
        err instanceof MediaError && err.reason === 'ffmpeg-spawn' && /ENOENT/.test(err.message),
    );
    sub.unsubscribe();
    // Listed offline once the grace is over.
    const end = Date.now() + 5000;
    while (media.cameras()[0]?.online !== false && Date.now() < end)
      await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(media.cameras(), [{ name: 'demo', online: false }]);
  });
});
