import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  chooseH264,
  MediaError,
  offeredH264,
  restrictVideoToPayloadType,
  sdpFingerprint,
} from '../src/media/index.js';

// Trimmed Chromium recvonly offer.
const OFFER = [
  'v=0',
  'o=- 1 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 106 107 112 113',
  'c=IN IP4 0.0.0.0',
  'a=mid:0',
  'a=recvonly',
  'a=rtpmap:96 VP8/90000',
  'a=rtcp-fb:96 nack',
  'a=rtpmap:97 rtx/90000',
  'a=fmtp:97 apt=96',
  'a=rtpmap:102 H264/90000',
  'a=rtcp-fb:102 nack',
  'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f',
  'a=rtpmap:103 rtx/90000',
  'a=fmtp:103 apt=102',
  'a=rtpmap:106 H264/90000',
  'a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  'a=rtpmap:107 H264/90000',
  'a=fmtp:107 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f',
  'a=rtpmap:112 H264/90000',
  'a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640034',
  'a=rtpmap:113 H264/90000',
  'a=fmtp:113 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f',
  'a=fingerprint:sha-256 AA:BB',
  '',
].join('\r\n');

describe('SDP H.264 choice', () => {
  const offered = offeredH264(OFFER);
  it('lists H.264 variants', () => {
    assert.deepEqual(
      offered.map((o) => [o.pt, o.profileLevelId, o.packetizationMode]),
      [
        [102, '42001f', 1],
        [106, '42e01f', 1],
        [107, '42e01f', 0],
        [112, '640034', 1],
        [113, '4d001f', 1],
      ],
    );
  });
  it('prefers the exact profile, else the closest with packetization-mode=1', () => {
    assert.equal(chooseH264(offered, '42e01f').pt, 106);
    assert.equal(chooseH264(offered, '42c01f').pt, 106); // x264 baseline: constrained-baseline compatible
    assert.equal(chooseH264(offered, '640028').pt, 112);
    assert.equal(chooseH264(offered, '4d0029').pt, 113);
    assert.throws(
      () => chooseH264(offered.filter((o) => o.packetizationMode === 0)),
      (e) => e instanceof MediaError && e.reason === 'no-h264-in-offer',
    );
  });
  it('restricts the video section to one payload type', () => {
    const r = restrictVideoToPayloadType(OFFER, 106);
    assert.match(r, /^m=video 9 UDP\/TLS\/RTP\/SAVPF 106$/m);
    assert.ok(!/a=rtpmap:(96|97|102|103|107|112|113) /.test(r));
    assert.match(r, /a=fmtp:106 .*profile-level-id=42e01f/);
    assert.ok(r.includes('a=recvonly'));
    assert.ok(r.endsWith('\r\n'));
    assert.deepEqual(sdpFingerprint(r), { algorithm: 'sha-256', value: 'AA:BB' });
  });
});
