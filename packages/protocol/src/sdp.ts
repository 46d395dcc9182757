/**
 * Just enough SDP (RFC 8866) for Hearth's checks: the DTLS fingerprints (RFC 8122
 * `a=fingerprint:`). The fingerprint is what binds the signed session description to the DTLS
 * handshake, so the viewer and the device each compare it against what the peer signed.
 */
import { constantTimeEqual, utf8 } from './bytes.js';
import { ProtocolError } from './errors.js';

/** Largest SDP accepted. */
export const MAX_SDP_BYTES = 32 * 1024;

/** A DTLS certificate fingerprint. */
export interface Fingerprint {
  /** Hash function, lower-case (e.g. `sha-256`). */
  algorithm: string;
  /** Upper-case colon-separated hex, as in SDP. */
  value: string;
}

const ALGS: Record<string, number> = { 'sha-256': 32, 'sha-384': 48, 'sha-512': 64 };

/**
 * Extract every `a=fingerprint` line (session- and media-level). Raises E_DECODE for a malformed
 * fingerprint line and E_TOO_LARGE for an oversized SDP. Weak hashes (sha-1, md5) are refused.
 */
export function extractFingerprints(sdp: string): Fingerprint[] {
  if (typeof sdp !== 'string') throw new ProtocolError('E_DECODE', 'SDP must be a string');
  if (sdp.length > MAX_SDP_BYTES)
    throw new ProtocolError('E_TOO_LARGE', `SDP larger than ${MAX_SDP_BYTES} bytes`);
  const out: Fingerprint[] = [];
  for (const rawLine of sdp.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (!line.startsWith('a=fingerprint:')) continue;
    const m = /^a=fingerprint:(\S+) ([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*)$/.exec(line);
    if (!m) throw new ProtocolError('E_DECODE', 'malformed a=fingerprint line');
    const algorithm = m[1]!.toLowerCase();
    const value = m[2]!.toUpperCase();
    const len = ALGS[algorithm];
    if (len === undefined)
      throw new ProtocolError('E_UNSUPPORTED', 'fingerprint hash must be sha-256, sha-384 or sha-512');
    if ((value.length + 1) / 3 !== len)
      throw new ProtocolError('E_DECODE', 'fingerprint length does not match its hash');
    out.push({ algorithm, value });
  }
  return out;
}

/**
 * The one DTLS fingerprint of an SDP. Every `a=fingerprint` line must agree (Hearth uses one
 * certificate per peer connection); none, or two that differ, is an error.
 */
export function sdpFingerprint(sdp: string): Fingerprint {
  const all = extractFingerprints(sdp);
  if (all.length === 0)
    throw new ProtocolError('E_SCHEMA', 'SDP has no a=fingerprint line (DTLS is mandatory)');
  const first = all[0]!;
  for (const f of all) {
    if (!sameFingerprint(f, first))
      throw new ProtocolError('E_SCHEMA', 'SDP carries different DTLS fingerprints');
  }
  return first;
}

/** Constant-time comparison of two fingerprints. */
export function sameFingerprint(a: Fingerprint, b: Fingerprint): boolean {
  return (
    a.algorithm === b.algorithm && constantTimeEqual(utf8(a.value.toUpperCase()), utf8(b.value.toUpperCase()))
  );
}
