/**
 * H.264 RTP payload format (RFC 6184, packetization-mode=1): single NAL unit packets, STAP-A for
 * runs of small parameter-set/SEI NAL units (SPS+PPS in one packet), FU-A for NAL units larger than
 * the payload budget. Only payloads and the marker bit are produced here; RTP headers are added by
 * the sender.
 */
import { NAL, nalType } from './annexb.js';

export const STAP_A = 24;
export const FU_A = 28;
/** Default payload budget: 1200 bytes keeps RTP+SRTP+UDP+IP under common path MTUs (TURN/VPN included). */
export const DEFAULT_MAX_PAYLOAD = 1200;

export interface RtpPayload {
  readonly payload: Buffer;
  /** Last packet of the access unit (RTP marker bit). */
  readonly marker: boolean;
}

/** Splits one NAL unit into FU-A payloads of at most maxPayload bytes each. */
export function fragmentFuA(nal: Buffer, maxPayload = DEFAULT_MAX_PAYLOAD): Buffer[] {
  if (maxPayload < 3) throw new RangeError('maxPayload too small for FU-A');
  const header = nal[0] ?? 0;
  const indicator = (header & 0xe0) | FU_A;
  const type = header & 0x1f;
  const body = nal.subarray(1);
  const chunk = maxPayload - 2;
  const out: Buffer[] = [];
  for (let off = 0; off < body.length; off += chunk) {
    const part = body.subarray(off, Math.min(body.length, off + chunk));
    const start = off === 0;
    const end = off + chunk >= body.length;
    const p = Buffer.allocUnsafe(2 + part.length);
    p[0] = indicator;
    p[1] = (start ? 0x80 : 0) | (end ? 0x40 : 0) | type;
    part.copy(p, 2);
    out.push(p);
  }
  return out;
}

/** Builds one STAP-A payload from NAL units (caller checks the size). */
export function buildStapA(nals: readonly Buffer[]): Buffer {
  let nri = 0;
  let size = 1;
  for (const n of nals) {
    nri = Math.max(nri, (n[0] ?? 0) & 0x60);
    size += 2 + n.length;
  }
  const p = Buffer.allocUnsafe(size);
  p[0] = nri | STAP_A;
  let o = 1;
  for (const n of nals) {
    p.writeUInt16BE(n.length, o);
    n.copy(p, o + 2);
    o += 2 + n.length;
  }
  return p;
}

const aggregatable = (t: number): boolean => t === NAL.SPS || t === NAL.PPS || t === NAL.SEI;

/**
 * Packetizes one access unit. AUD and filler NAL units are dropped. Consecutive SPS/PPS/SEI units that
 * fit together go in one STAP-A; other units that fit go as single NAL packets; larger ones as FU-A.
 * The last payload carries the marker bit.
 */
export function packetizeAccessUnit(nals: readonly Buffer[], maxPayload = DEFAULT_MAX_PAYLOAD): RtpPayload[] {
  const payloads: Buffer[] = [];
  let group: Buffer[] = [];
  let groupSize = 1;
  const flushGroup = (): void => {
    if (group.length === 1 && group[0]) payloads.push(group[0]);
    else if (group.length > 1) payloads.push(buildStapA(group));
    group = [];
    groupSize = 1;
  };
  for (const nal of nals) {
    if (nal.length === 0) continue;
    const t = nalType(nal);
    if (t === NAL.AUD || t === NAL.FILLER) continue;
    if (aggregatable(t) && nal.length + 3 <= maxPayload) {
      if (groupSize + 2 + nal.length > maxPayload) flushGroup();
      group.push(nal);
      groupSize += 2 + nal.length;
      continue;
    }
    flushGroup();
    if (nal.length <= maxPayload) payloads.push(nal);
    else payloads.push(...fragmentFuA(nal, maxPayload));
  }
  flushGroup();
  return payloads.map((payload, i) => ({ payload, marker: i === payloads.length - 1 }));
}

/**
 * Reassembles NAL units from RTP payloads (STAP-A, FU-A, single). For tests and diagnostics; throws
 * RangeError on malformed input.
 */
export function depacketize(payloads: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let fu: Buffer[] | undefined;
  for (const p of payloads) {
    const t = (p[0] ?? 0) & 0x1f;
    if (t === STAP_A) {
      let o = 1;
      while (o + 2 <= p.length) {
        const len = p.readUInt16BE(o);
        if (o + 2 + len > p.length) throw new RangeError('truncated STAP-A');
        out.push(p.subarray(o + 2, o + 2 + len));
        o += 2 + len;
      }
    } else if (t === FU_A) {
      const h = p[1] ?? 0;
      if (h & 0x80) fu = [Buffer.from([((p[0] ?? 0) & 0xe0) | (h & 0x1f)])];
      if (!fu) throw new RangeError('FU-A continuation without start');
      fu.push(p.subarray(2));
      if (h & 0x40) {
        out.push(Buffer.concat(fu));
        fu = undefined;
      }
    } else {
      out.push(p);
    }
  }
  if (fu) throw new RangeError('unterminated FU-A');
  return out;
}
