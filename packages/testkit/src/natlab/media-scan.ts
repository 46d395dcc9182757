/**
 * Classifies packets seen at a relay and looks for plaintext H.264 in them. Pure functions, no I/O.
 *
 * A WebRTC media path multiplexes STUN, DTLS and SRTP/SRTCP on one 5-tuple (RFC 7983): the first
 * byte tells them apart. What a relay forwards for an encrypted session must be exactly those. The
 * H.264 detector looks for the two ways plaintext video would show:
 *
 * - Annex-B byte streams (an encoder's raw output): a start code `00 00 01` followed by a valid NAL
 *   header (forbidden bit 0, type slice/IDR/SPS/PPS, non-zero NRI where the type requires it). In
 *   random bytes this happens about 3e-9 times per byte; plaintext has one per NAL unit.
 * - RTP packetised H.264 (RFC 6184, as an unencrypted RTP stream would carry it): the first payload
 *   bytes form a valid single-NAL, STAP-A (sizes chain exactly to the end) or FU-A header. For a
 *   random first byte this holds for about 6% of packets; for plaintext H.264 RTP for nearly all.
 */

export type PacketKind = 'stun' | 'dtls' | 'srtp' | 'srtcp' | 'other';

export interface DtlsInfo {
  /** DTLS content type: 20 change_cipher_spec, 21 alert, 22 handshake, 23 application_data. */
  readonly contentType: number;
}

/** RFC 7983 demultiplexing, stricter than the RFC: DTLS needs content type 20..23 and a DTLS version. */
export function classifyPacket(b: Uint8Array): PacketKind {
  if (b.length < 2) return 'other';
  const b0 = b[0] as number;
  if (b0 <= 3) {
    if (b.length >= 20 && b[4] === 0x21 && b[5] === 0x12 && b[6] === 0xa4 && b[7] === 0x42) return 'stun';
    return 'other';
  }
  if (b0 >= 20 && b0 <= 23) {
    return b.length >= 13 && b[1] === 0xfe && (b[2] === 0xff || b[2] === 0xfd) ? 'dtls' : 'other';
  }
  if (b0 >= 128 && b0 <= 191) {
    if (b.length < 12) return 'other';
    const pt = b[1] as number;
    return pt >= 192 && pt <= 223 ? 'srtcp' : 'srtp';
  }
  return 'other';
}

/** RTP payload (after fixed header, CSRCs and header extension), or undefined if malformed. */
export function rtpPayload(b: Uint8Array): Uint8Array | undefined {
  if (b.length < 12 || (b[0] as number) >> 6 !== 2) return undefined;
  const cc = (b[0] as number) & 0x0f;
  let off = 12 + 4 * cc;
  if ((b[0] as number) & 0x10) {
    if (b.length < off + 4) return undefined;
    const words = ((b[off + 2] as number) << 8) | (b[off + 3] as number);
    off += 4 + 4 * words;
  }
  if (off >= b.length) return undefined;
  return b.subarray(off);
}

const SPS_PROFILES = new Set([66, 77, 88, 100, 110, 122, 244, 44, 83, 86, 118, 128]);

/** Whether an RTP payload starts like RFC 6184 H.264 (single NAL, STAP-A or FU-A). */
export function looksLikeH264RtpPayload(p: Uint8Array): boolean {
  if (p.length < 2) return false;
  const h = p[0] as number;
  if (h & 0x80) return false;
  const nri = (h >> 5) & 3;
  const type = h & 0x1f;
  switch (type) {
    case 1:
    case 6:
      return true;
    case 5:
    case 8:
      return nri !== 0;
    case 7:
      return nri !== 0 && p.length >= 4 && SPS_PROFILES.has(p[1] as number) && (p[3] as number) <= 62;
    case 24: {
      let off = 1;
      let n = 0;
      while (off + 2 <= p.length) {
        const size = ((p[off] as number) << 8) | (p[off + 1] as number);
        if (size === 0 || off + 2 + size > p.length) return false;
        const sub = p[off + 2] as number;
        if (sub & 0x80 || (sub & 0x1f) === 0 || (sub & 0x1f) > 23) return false;
        off += 2 + size;
        n++;
      }
      return n > 0 && off === p.length;
    }
    case 28: {
      const fu = p[1] as number;
      const s = fu & 0x80;
      const e = fu & 0x40;
      const inner = fu & 0x1f;
      return !(s && e) && (fu & 0x20) === 0 && (inner === 1 || inner === 5) && (inner !== 5 || nri !== 0);
    }
    default:
      return false;
  }
}

/** Counts Annex-B start codes followed by a valid slice/IDR/SPS/PPS NAL header. */
export function countAnnexBNals(b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i + 2] !== 1 || b[i] !== 0 || b[i + 1] !== 0) continue;
    const h = b[i + 3] as number;
    if (h & 0x80) continue;
    const t = h & 0x1f;
    const nri = (h >> 5) & 3;
    if (t === 1 || ((t === 5 || t === 7 || t === 8) && nri !== 0)) n++;
  }
  return n;
}

export interface H264Scan {
  /** Bytes scanned (media bodies only, see `mediaBody`). */
  readonly bytes: number;
  readonly annexBNals: number;
  /** Annex-B NAL starts per MiB of scanned bytes. */
  readonly annexBPerMiB: number;
  /** RTP packets (non-RTCP) examined. */
  readonly rtpPackets: number;
  /** Of those, how many have a payload that looks like RFC 6184 H.264. */
  readonly rtpH264Like: number;
  readonly rtpH264Fraction: number;
  /** The verdict: plaintext H.264 is present. */
  readonly plaintext: boolean;
  readonly reason: string;
}

/** Thresholds: random data gives about 0.003 Annex-B hits per MiB and an RTP-like fraction near 0.06. */
export const H264_THRESHOLDS = { annexBPerMiB: 20, annexBMin: 3, rtpFraction: 0.25, rtpMin: 50 } as const;

/**
 * The part of a datagram that could carry video: the RTP payload of (S)RTP, the fragment of DTLS
 * application data, a whole unclassified datagram. Protocol headers (STUN, DTLS record and handshake
 * messages, RTCP) are structured, full of `00 00 01` sequence numbers and lengths, and skipped.
 */
function mediaBody(p: Uint8Array, kind: PacketKind): Uint8Array | undefined {
  switch (kind) {
    case 'srtp':
      return rtpPayload(p);
    case 'dtls':
      return p[0] === 23 ? p.subarray(13) : undefined;
    case 'other':
      return p;
    default:
      return undefined;
  }
}

/** Scans payloads (one per forwarded datagram) for plaintext H.264. */
export function scanForPlaintextH264(payloads: Iterable<Uint8Array>): H264Scan {
  let bytes = 0;
  let annexBNals = 0;
  let rtpPackets = 0;
  let rtpH264Like = 0;
  for (const p of payloads) {
    const kind = classifyPacket(p);
    const body = mediaBody(p, kind);
    if (!body) continue;
    bytes += body.length;
    annexBNals += countAnnexBNals(body);
    if (kind === 'srtp') {
      rtpPackets++;
      if (looksLikeH264RtpPayload(body)) rtpH264Like++;
    }
  }
  const mib = bytes / (1024 * 1024);
  const annexBPerMiB = mib > 0 ? annexBNals / mib : 0;
  const rtpH264Fraction = rtpPackets > 0 ? rtpH264Like / rtpPackets : 0;
  const annexHit = annexBNals >= H264_THRESHOLDS.annexBMin && annexBPerMiB >= H264_THRESHOLDS.annexBPerMiB;
  const rtpHit = rtpPackets >= H264_THRESHOLDS.rtpMin && rtpH264Fraction >= H264_THRESHOLDS.rtpFraction;
  const reason = annexHit
    ? `${annexBNals} Annex-B NAL starts (${annexBPerMiB.toFixed(1)}/MiB)`
    : rtpHit
      ? `${rtpH264Like}/${rtpPackets} RTP payloads look like RFC 6184 H.264`
      : 'none';
  return {
    bytes,
    annexBNals,
    annexBPerMiB,
    rtpPackets,
    rtpH264Like,
    rtpH264Fraction,
    plaintext: annexHit || rtpHit,
    reason,
  };
}

export interface CaptureSummary {
  readonly packets: number;
  readonly bytes: number;
  readonly kinds: Readonly<Record<PacketKind, number>>;
  /** DTLS records by content type (20..23). */
  readonly dtlsContentTypes: Readonly<Record<string, number>>;
  readonly h264: H264Scan;
}

export function summarizeCapture(payloads: readonly Uint8Array[]): CaptureSummary {
  const kinds: Record<PacketKind, number> = { stun: 0, dtls: 0, srtp: 0, srtcp: 0, other: 0 };
  const dtlsContentTypes: Record<string, number> = {};
  let bytes = 0;
  for (const p of payloads) {
    bytes += p.length;
    const k = classifyPacket(p);
    kinds[k]++;
    if (k === 'dtls') {
      const ct = String(p[0]);
      dtlsContentTypes[ct] = (dtlsContentTypes[ct] ?? 0) + 1;
    }
  }
  return { packets: payloads.length, bytes, kinds, dtlsContentTypes, h264: scanForPlaintextH264(payloads) };
}

/** Capture file records written by the matrix server's tap: `[dir u8][len u32be][bytes]`. */
export const TAP_TO_PEER = 1;
export const TAP_TO_CLIENT = 2;

export function encodeTapRecord(dir: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head[0] = dir;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

export function decodeTapFile(buf: Uint8Array): { dir: number; payload: Uint8Array }[] {
  const out: { dir: number; payload: Uint8Array }[] = [];
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + 5 <= b.length) {
    const dir = b[off] as number;
    const len = b.readUInt32BE(off + 1);
    if (off + 5 + len > b.length) break;
    out.push({ dir, payload: b.subarray(off + 5, off + 5 + len) });
    off += 5 + len;
  }
  return out;
}

/**
 * What a TURN server sends to a client wraps the relayed bytes: ChannelData (first byte 0x40..0x7F)
 * or a Data indication (STUN 0x0117, DATA attribute 0x0013). Returns the relayed bytes, or undefined
 * for the server's own STUN responses.
 */
export function unwrapTurnToClient(b: Uint8Array): Uint8Array | undefined {
  if (b.length < 4) return undefined;
  const b0 = b[0] as number;
  if (b0 >= 0x40 && b0 <= 0x7f) {
    const len = ((b[2] as number) << 8) | (b[3] as number);
    return 4 + len <= b.length ? b.subarray(4, 4 + len) : undefined;
  }
  if (classifyPacket(b) !== 'stun' || b[0] !== 0x01 || b[1] !== 0x17) return undefined;
  const end = Math.min(b.length, 20 + (((b[2] as number) << 8) | (b[3] as number)));
  let off = 20;
  while (off + 4 <= end) {
    const type = ((b[off] as number) << 8) | (b[off + 1] as number);
    const len = ((b[off + 2] as number) << 8) | (b[off + 3] as number);
    if (type === 0x0013) return off + 4 + len <= end ? b.subarray(off + 4, off + 4 + len) : undefined;
    off += 4 + len + ((4 - (len % 4)) % 4);
  }
  return undefined;
}
