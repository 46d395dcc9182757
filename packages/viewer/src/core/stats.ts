/**
 * Reading an `RTCStatsReport` (W3C webrtc-stats): which candidate pair carries the media, whether
 * it goes through a TURN relay, the peer's DTLS certificate fingerprint, and frames decoded.
 *
 * Pure functions over plain objects, so they are tested with hand-written reports from Chromium,
 * Firefox and Safari shapes.
 */
import type { MediaPath } from './view-state.js';

/** The fields of a stats entry we read (all optional: browsers differ). */
export interface StatLike {
  id: string;
  type: string;
  [k: string]: unknown;
}

/** Accepts an `RTCStatsReport` (Map-like) or any iterable of entries. */
export type StatsInput = { values(): Iterable<unknown> } | Iterable<unknown>;

function entries(input: StatsInput): StatLike[] {
  const it: Iterable<unknown> =
    typeof (input as { values?: unknown }).values === 'function' && !Array.isArray(input)
      ? (input as { values(): Iterable<unknown> }).values()
      : (input as Iterable<unknown>);
  const out: StatLike[] = [];
  for (const s of it) {
    if (
      s &&
      typeof s === 'object' &&
      typeof (s as StatLike).id === 'string' &&
      typeof (s as StatLike).type === 'string'
    ) {
      out.push(s as StatLike);
    }
  }
  return out;
}

/** The selected candidate pair and what it says about the path. */
export interface SelectedPath {
  path: MediaPath;
  localType: string;
  remoteType: string;
  /** Transport protocol of the local candidate (udp/tcp), when known. */
  protocol?: string;
  /** For a relayed local candidate: how we reach the TURN server (udp/tcp/tls). */
  relayProtocol?: string;
}

/**
 * Find the candidate pair in use: the transport's `selectedCandidatePairId` (Chromium, Safari);
 * else a pair flagged `selected` (Firefox); else a nominated, succeeded pair.
 */
export function selectedCandidatePair(input: StatsInput): StatLike | undefined {
  const all = entries(input);
  const byId = new Map(all.map((s) => [s.id, s]));
  for (const t of all) {
    if (t.type === 'transport' && typeof t.selectedCandidatePairId === 'string') {
      const p = byId.get(t.selectedCandidatePairId);
      if (p) return p;
    }
  }
  const pairs = all.filter((s) => s.type === 'candidate-pair');
  return (
    pairs.find((p) => p.selected === true) ??
    pairs.find((p) => p.nominated === true && p.state === 'succeeded')
  );
}

/**
 * Classify the path of the selected pair: `relayed` when either end is a `relay` candidate (our
 * TURN allocation or the device's), `direct` otherwise (host, srflx, prflx). Undefined until a pair
 * is selected and both of its candidates are in the report.
 */
export function classifyPath(input: StatsInput): SelectedPath | undefined {
  const all = entries(input);
  const byId = new Map(all.map((s) => [s.id, s]));
  const pair = selectedCandidatePair(all);
  if (!pair) return undefined;
  const local = typeof pair.localCandidateId === 'string' ? byId.get(pair.localCandidateId) : undefined;
  const remote = typeof pair.remoteCandidateId === 'string' ? byId.get(pair.remoteCandidateId) : undefined;
  const lt = typeof local?.candidateType === 'string' ? local.candidateType : undefined;
  const rt = typeof remote?.candidateType === 'string' ? remote.candidateType : undefined;
  if (!lt || !rt) return undefined;
  const out: SelectedPath = {
    path: lt === 'relay' || rt === 'relay' ? 'relayed' : 'direct',
    localType: lt,
    remoteType: rt,
  };
  if (typeof local?.protocol === 'string') out.protocol = local.protocol;
  if (typeof local?.relayProtocol === 'string') out.relayProtocol = local.relayProtocol;
  return out;
}

/** The remote DTLS certificate's fingerprint, as in SDP (`sha-256`, upper-case colon hex). */
export interface StatsFingerprint {
  algorithm: string;
  value: string;
}

/**
 * The fingerprint of the certificate the peer actually presented in the DTLS handshake: the
 * `certificate` entry named by the transport's `remoteCertificateId`. Undefined when the browser
 * does not report it (then the browser's own DTLS check against the applied SDP stands alone).
 */
export function remoteCertificateFingerprint(input: StatsInput): StatsFingerprint | undefined {
  const all = entries(input);
  const byId = new Map(all.map((s) => [s.id, s]));
  for (const t of all) {
    if (t.type !== 'transport' || typeof t.remoteCertificateId !== 'string') continue;
    const c = byId.get(t.remoteCertificateId);
    if (c && typeof c.fingerprint === 'string' && typeof c.fingerprintAlgorithm === 'string') {
      return { algorithm: c.fingerprintAlgorithm.toLowerCase(), value: c.fingerprint.toUpperCase() };
    }
  }
  return undefined;
}

/** Total video frames decoded across inbound video streams (`inbound-rtp`, kind video). */
export function framesDecoded(input: StatsInput): number {
  let n = 0;
  for (const s of entries(input)) {
    if (
      s.type === 'inbound-rtp' &&
      (s.kind === 'video' || s.mediaType === 'video') &&
      typeof s.framesDecoded === 'number'
    ) {
      n += s.framesDecoded;
    }
  }
  return n;
}
