// The relay-capture detector (packages/testkit/src/natlab/media-scan.ts): it classifies STUN, DTLS and
// SRTP, and it does fire on plaintext H.264 (Annex-B and RTP), so the "relay sees only ciphertext"
// check in e2e/natlab/relay-ciphertext.test.ts can fail. Needs ffmpeg for the real H.264 fixture.
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  classifyPacket,
  countAnnexBNals,
  decodeTapFile,
  encodeTapRecord,
  looksLikeH264RtpPayload,
  scanForPlaintextH264,
  summarizeCapture,
  unwrapTurnToClient,
} from '@hearth/testkit';
import {
  chunks,
  encodeTestsrc,
  ffmpegAvailable,
  h264RtpPayloads,
  plaintextRtp,
  rtpHeader,
} from './h264-fixture.js';

const skip = ffmpegAvailable() ? false : 'ffmpeg not installed';

/** SRTP-like: same RTP headers, payload AES-128-CTR encrypted, 10-byte tag. */
function encrypt(packets: readonly Buffer[]): Buffer[] {
  const key = randomBytes(16);
  return packets.map((p, i) => {
    const iv = Buffer.alloc(16);
    iv.writeUInt32BE(i, 12);
    const c = createCipheriv('aes-128-ctr', key, iv);
    return Buffer.concat([p.subarray(0, 12), c.update(p.subarray(12)), c.final(), randomBytes(10)]);
  });
}

describe('packet classification', () => {
  it('tells STUN, DTLS, SRTP and SRTCP apart (RFC 7983)', () => {
    const stun = Buffer.alloc(20);
    stun.writeUInt16BE(0x0001, 0);
    stun.writeUInt32BE(0x2112a442, 4);
    assert.equal(classifyPacket(stun), 'stun');
    const dtls = Buffer.from([22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
    assert.equal(classifyPacket(dtls), 'dtls');
    assert.equal(classifyPacket(Buffer.from([23, 0xfe, 0xfd, ...Buffer.alloc(12)])), 'dtls');
    assert.equal(
      classifyPacket(Buffer.from([22, 0x03, 0x03, ...Buffer.alloc(12)])),
      'other',
      'TLS, not DTLS',
    );
    assert.equal(classifyPacket(rtpHeader(1, 2, 3, true)), 'srtp');
    assert.equal(classifyPacket(Buffer.from([0x81, 200, 0, 6, ...Buffer.alloc(24)])), 'srtcp');
    assert.equal(classifyPacket(Buffer.from([0, 0, 0, 1, 0x67, 0x42])), 'other');
  });

  it('unwraps ChannelData and Data indications, skips other STUN', () => {
    const cd = Buffer.from([0x40, 0x00, 0x00, 0x03, 1, 2, 3, 0]);
    assert.deepEqual([...(unwrapTurnToClient(cd) ?? [])], [1, 2, 3]);
    const ind = Buffer.alloc(20 + 8 + 4);
    ind.writeUInt16BE(0x0117, 0);
    ind.writeUInt16BE(16, 2);
    ind.writeUInt32BE(0x2112a442, 4);
    ind.writeUInt16BE(0x0012, 20); // XOR-PEER-ADDRESS (skipped)
    ind.writeUInt16BE(4, 22);
    ind.writeUInt16BE(0x0013, 28);
    ind.writeUInt16BE(0, 30);
    assert.equal(unwrapTurnToClient(ind)?.length, 0);
    const resp = Buffer.alloc(20);
    resp.writeUInt16BE(0x0101, 0);
    resp.writeUInt32BE(0x2112a442, 4);
    assert.equal(unwrapTurnToClient(resp), undefined);
  });

  it('round-trips tap records', () => {
    const f = Buffer.concat([encodeTapRecord(1, Buffer.from([1, 2])), encodeTapRecord(2, Buffer.from([3]))]);
    assert.deepEqual(
      decodeTapFile(f).map((r) => [r.dir, [...r.payload]]),
      [
        [1, [1, 2]],
        [2, [3]],
      ],
    );
  });
});

describe('plaintext H.264 detector', { skip }, () => {
  const annexB = skip ? Buffer.alloc(0) : encodeTestsrc(45);

  it('fires on a plaintext Annex-B stream (control)', () => {
    assert.ok(countAnnexBNals(annexB) >= 45);
    const s = scanForPlaintextH264(chunks(annexB));
    assert.equal(s.plaintext, true, s.reason);
    assert.match(s.reason, /Annex-B/);
  });

  it('fires on a plaintext RFC 6184 RTP stream (control)', () => {
    const payloads = h264RtpPayloads(annexB);
    assert.ok(
      payloads.every((p) => looksLikeH264RtpPayload(p)),
      'every packetizer payload is recognised',
    );
    const s = scanForPlaintextH264(plaintextRtp(annexB));
    assert.equal(s.plaintext, true, s.reason);
    assert.ok(s.rtpH264Fraction > 0.95, String(s.rtpH264Fraction));
  });

  it('does not fire on the same stream encrypted (SRTP-like) or on random bytes', () => {
    const enc = encrypt(plaintextRtp(annexB));
    const s = summarizeCapture(enc);
    assert.equal(s.kinds.srtp, enc.length);
    assert.equal(s.h264.plaintext, false, s.h264.reason);
    assert.ok(s.h264.rtpH264Fraction < 0.15, String(s.h264.rtpH264Fraction));
    const rnd = scanForPlaintextH264(chunks(randomBytes(4 * 1024 * 1024)));
    assert.equal(rnd.plaintext, false, rnd.reason);
  });
});
