/**
 * Small SDP helpers for choosing the H.264 payload type to answer with. We pick the variant that
 * matches the stream (packetization-mode=1, closest profile-level-id) and hand the WebRTC stack an
 * offer restricted to it, so the answer carries exactly one H.264 format.
 */
import { MediaError } from './errors.js';

export interface OfferedH264 {
  readonly pt: number;
  readonly profileLevelId: string | undefined;
  readonly packetizationMode: number;
  readonly fmtp: string;
}

interface Section {
  readonly start: number;
  readonly end: number;
  readonly kind: string;
}

function sections(lines: readonly string[]): Section[] {
  const out: Section[] = [];
  let cur: { start: number; kind: string } | undefined;
  lines.forEach((l, i) => {
    if (l.startsWith('m=')) {
      if (cur) out.push({ ...cur, end: i });
      cur = { start: i, kind: l.slice(2).split(' ')[0] ?? '' };
    }
  });
  if (cur) out.push({ ...cur, end: lines.length });
  return out;
}

const splitLines = (sdp: string): string[] =>
  sdp.split(/\r?\n/).filter((l, i, a) => l !== '' || i < a.length - 1);

/** H.264 payload types in the first video m-section of an SDP. */
export function offeredH264(sdp: string): OfferedH264[] {
  const lines = splitLines(sdp);
  const video = sections(lines).find((s) => s.kind === 'video');
  if (!video) return [];
  const body = lines.slice(video.start, video.end);
  const out: OfferedH264[] = [];
  for (const l of body) {
    const m = /^a=rtpmap:(\d+) H264\/90000/i.exec(l);
    if (!m) continue;
    const pt = Number(m[1]);
    const fmtpLine = body.find((x) => x.startsWith(`a=fmtp:${pt} `));
    const fmtp = fmtpLine ? fmtpLine.slice(`a=fmtp:${pt} `.length) : '';
    const params = new Map(
      fmtp
        .split(';')
        .map((kv) => kv.trim().split('='))
        .map(([k, v]) => [(k ?? '').toLowerCase(), v ?? ''] as const),
    );
    out.push({
      pt,
      profileLevelId: params.get('profile-level-id')?.toLowerCase(),
      packetizationMode: Number(params.get('packetization-mode') ?? '0'),
      fmtp,
    });
  }
  return out;
}

const isConstrainedBaseline = (pli: string): boolean => {
  const profile = Number.parseInt(pli.slice(0, 2), 16);
  const flags = Number.parseInt(pli.slice(2, 4), 16);
  return (profile === 0x42 && (flags & 0x40) !== 0) || (profile === 0x4d && (flags & 0x80) !== 0);
};

/**
 * Chooses the offered H.264 payload type for a stream whose SPS has `wanted` profile-level-id
 * (default 42e01f, constrained baseline 3.1). Only packetization-mode=1 qualifies (FU-A needs it).
 * Preference: exact match; then same profile (constrained-baseline-compatible for baseline), highest
 * level; then any packetization-mode=1 variant. Throws MediaError('no-h264-in-offer').
 */
export function chooseH264(offered: readonly OfferedH264[], wanted = '42e01f'): OfferedH264 {
  const pm1 = offered.filter((o) => o.packetizationMode === 1);
  if (pm1.length === 0)
    throw new MediaError('no-h264-in-offer', 'the offer has no H.264 with packetization-mode=1');
  const w = wanted.toLowerCase();
  const exact = pm1.find((o) => o.profileLevelId === w);
  if (exact) return exact;
  const wProfile = w.slice(0, 2);
  const score = (o: OfferedH264): number => {
    const p = o.profileLevelId ?? '42001f';
    let s = 0;
    if (isConstrainedBaseline(w) && isConstrainedBaseline(p)) s += 4;
    if (p.slice(0, 2) === wProfile) s += 2;
    if (p.slice(0, 4) === w.slice(0, 4)) s += 1;
    return s * 1000 + Number.parseInt(p.slice(4, 6), 16);
  };
  return [...pm1].sort((a, b) => score(b) - score(a))[0] as OfferedH264;
}

/**
 * Returns the SDP with the first video m-section restricted to payload type `pt` (the m= format list,
 * rtpmap, fmtp and rtcp-fb lines of other payload types are removed). Other sections are untouched.
 */
export function restrictVideoToPayloadType(sdp: string, pt: number): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const lines = splitLines(sdp);
  const video = sections(lines).find((s) => s.kind === 'video');
  if (!video) throw new MediaError('bad-offer', 'the offer has no video m-section');
  const out: string[] = [];
  for (const [i, l] of lines.entries()) {
    if (i === video.start) {
      out.push([...l.split(' ').slice(0, 3), String(pt)].join(' '));
      continue;
    }
    const inVideo = i > video.start && i < video.end;
    const m = inVideo ? /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+|\*)[ ]/.exec(l) : null;
    if (m && m[1] !== '*' && Number(m[1]) !== pt) continue;
    out.push(l);
  }
  return out.join(eol) + (sdp.endsWith('\n') ? eol : '');
}

/** The `a=fingerprint:` value (e.g. `sha-256 AB:CD:...`) of an SDP, first occurrence. */
export function sdpFingerprint(sdp: string): { algorithm: string; value: string } | undefined {
  const m = /^a=fingerprint:(\S+) (\S+)/m.exec(sdp);
  return m?.[1] && m[2] ? { algorithm: m[1].toLowerCase(), value: m[2].toUpperCase() } : undefined;
}

/** The `a=mid:` of the first video m-section (default `0` when the offer names none). */
export function videoMid(sdp: string): string {
  const lines = splitLines(sdp);
  const video = sections(lines).find((s) => s.kind === 'video');
  if (!video) throw new MediaError('bad-offer', 'the offer has no video m-section');
  for (const l of lines.slice(video.start, video.end)) {
    const m = /^a=mid:([A-Za-z0-9_.-]{1,32})$/.exec(l.trim());
    if (m?.[1]) return m[1];
  }
  return '0';
}
