// Plaintext H.264 fixtures for the relay-ciphertext checks: a real testsrc encode from ffmpeg, as an
// Annex-B byte stream and as RFC 6184 RTP packets (what an unencrypted RTP stream would carry).
import { execFileSync } from 'node:child_process';
import { AnnexBParser, packetizeAccessUnit } from '@hearth/agent';

export function ffmpegAvailable(): boolean {
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `frames` frames of 640x360 testsrc, H.264 baseline, Annex-B, as the agent's transcode produces. */
export function encodeTestsrc(frames = 45): Buffer {
  return execFileSync(
    'ffmpeg',
    [
      ...['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=640x360:rate=15'],
      ...[
        '-frames:v',
        String(frames),
        '-c:v',
        'libx264',
        '-profile:v',
        'baseline',
        '-preset',
        'ultrafast',
        '-pix_fmt',
        'yuv420p',
      ],
      ...['-tune', 'zerolatency', '-g', '30', '-bf', '0', '-f', 'h264', '-'],
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
}

export function rtpHeader(seq: number, ts: number, ssrc: number, marker: boolean): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80;
  h[1] = (marker ? 0x80 : 0) | 102;
  h.writeUInt16BE(seq & 0xffff, 2);
  h.writeUInt32BE(ts >>> 0, 4);
  h.writeUInt32BE(ssrc >>> 0, 8);
  return h;
}

/** The NAL units of an Annex-B stream. */
export function nalUnits(annexB: Buffer): Buffer[] {
  const p = new AnnexBParser();
  return [...p.push(annexB), ...p.flush()];
}

/** RFC 6184 payloads (single NAL, STAP-A, FU-A) of an Annex-B stream, 1200-byte budget. */
export function h264RtpPayloads(annexB: Buffer): Buffer[] {
  return nalUnits(annexB).flatMap((n) => packetizeAccessUnit([n]).map((p) => p.payload));
}

/** Plaintext RTP packets carrying the stream. */
export function plaintextRtp(annexB: Buffer): Buffer[] {
  return h264RtpPayloads(annexB).map((p, i) =>
    Buffer.concat([rtpHeader(1000 + i, 90000 + i * 6000, 0x1234, false), p]),
  );
}

/** Splits a buffer in datagram-sized chunks. */
export function chunks(b: Buffer, size = 1200): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}
