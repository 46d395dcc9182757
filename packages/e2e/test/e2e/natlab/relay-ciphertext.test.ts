// The relay carries only ciphertext. A Hearth session (werift, ffmpeg testsrc H.264) to Chromium is
// forced through the Hearth relay (viewer iceTransportPolicy 'relay') in a NAT lab; the matrix server's
// in-process tap records every datagram the relay forwards, both directions. Everything must be
// STUN (consent checks), DTLS (content types 20..23) or SRTP/SRTCP, and the plaintext H.264 detector
// must stay silent. Control: the same detector, on the same captured RTP headers carrying plaintext
// H.264 payloads from a real encode, does fire (so the check can fail).
// Needs root, ip, nft, ffmpeg and /usr/bin/chromium. HEARTH_MATRIX_STACK=server taps the full Hearth
// server's embedded relay instead of a bare RelayServer.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { captureRelayedSession, type MatrixStack, type RelayCapture } from '@hearth/e2e';
import {
  chromiumAvailable,
  classifyPacket,
  NatLab,
  rtpPayload,
  scanForPlaintextH264,
  summarizeCapture,
  TAP_TO_CLIENT,
  TAP_TO_PEER,
} from '@hearth/testkit';
import { encodeTestsrc, ffmpegAvailable, h264RtpPayloads } from '../../h264-fixture.js';

const lab0 = await NatLab.available();
const chr = await chromiumAvailable();
const stack: MatrixStack = process.env.HEARTH_MATRIX_STACK === 'server' ? 'server' : 'relay';
const skip = !lab0.ok
  ? lab0.reason
  : !chr.ok
    ? chr.reason
    : !ffmpegAvailable()
      ? 'ffmpeg not installed'
      : false;

/** Classifies what the relay forwarded and asserts it is all STUN / DTLS / SRTP, without plaintext H.264. */
function assertCiphertextOnly(t: TestContext, cap: RelayCapture): Uint8Array[] {
  const toPeer = cap.records.filter((r) => r.dir === TAP_TO_PEER).map((r) => r.payload);
  const toClient = cap.records.filter((r) => r.dir === TAP_TO_CLIENT).map((r) => r.payload);
  const all = [...toPeer, ...toClient];
  const s = summarizeCapture(all);
  t.diagnostic(
    `captured ${s.packets} datagrams (${s.bytes} B): to peer ${toPeer.length}, to client ${toClient.length}; ` +
      `kinds ${JSON.stringify(s.kinds)}; DTLS content types ${JSON.stringify(s.dtlsContentTypes)}`,
  );
  t.diagnostic(
    `H.264 scan: ${s.h264.annexBNals} Annex-B NAL starts (${s.h264.annexBPerMiB.toFixed(2)}/MiB), ` +
      `${s.h264.rtpH264Like}/${s.h264.rtpPackets} RTP payloads H.264-like (${(s.h264.rtpH264Fraction * 100).toFixed(1)}%)`,
  );
  t.diagnostic(`stack ${stack}; relay metrics: ${JSON.stringify(cap.metrics ?? 'n/a')}`);
  assert.ok(toPeer.length > 0 && toClient.length > 0, 'both directions relayed');
  assert.equal(s.kinds.other, 0, 'only STUN, DTLS and SRTP/SRTCP on the relayed path');
  assert.ok((s.dtlsContentTypes['22'] ?? 0) > 0, 'DTLS handshake relayed');
  assert.ok(s.kinds.srtp > 50, `SRTP packets: ${s.kinds.srtp}`);
  assert.equal(s.h264.plaintext, false, s.h264.reason);
  assert.ok(s.h264.rtpH264Fraction < 0.15, `H.264-like fraction ${s.h264.rtpH264Fraction}`);
  return all;
}

test('relayed werift → Chromium H.264 session: the relay sees only DTLS/SRTP', {
  skip,
  timeout: 120_000,
}, async (t) => {
  const cap = await captureRelayedSession({ streamMs: 3000, stack });
  const { run } = cap;
  t.diagnostic(`session: ${run.path}/${run.transport} ${run.pair} ttff ${run.ttffMs} ms`);
  assert.ok(run.connected, `not connected: ${run.error ?? JSON.stringify(run.viewer)}`);
  assert.equal(run.viewer?.pair?.local?.type, 'relay', 'the viewer was forced onto its relay candidate');
  assert.ok((run.viewer?.framesDecoded ?? 0) > 0);
  const all = assertCiphertextOnly(t, cap);

  await t.test('control: the detector fires on the same packets with plaintext H.264 payloads', () => {
    const media = all.filter((p) => classifyPacket(p) === 'srtp' && rtpPayload(p) !== undefined);
    const plain = h264RtpPayloads(encodeTestsrc(45));
    const forged = media.map((p, i) => {
      const body = rtpPayload(p) as Uint8Array;
      const header = p.subarray(0, p.length - body.length);
      return Buffer.concat([header, plain[i % plain.length] as Buffer]);
    });
    const c = scanForPlaintextH264(forged);
    assert.equal(c.plaintext, true, `control did not fire: ${c.reason}`);
  });
});

test('werift and Chromium both allocate and relay through the Hearth relay (relay ↔ relay)', {
  skip,
  timeout: 120_000,
}, async (t) => {
  const cap = await captureRelayedSession({ streamMs: 1500, stack, agentPolicy: 'relay' });
  const { run } = cap;
  t.diagnostic(
    `session: ${run.path}/${run.transport} ${run.pair} ttff ${run.ttffMs} ms; camera ${JSON.stringify(run.camera)}`,
  );
  assert.ok(run.connected, `not connected: ${run.error ?? JSON.stringify(run.viewer)}`);
  assert.equal(run.viewer?.pair?.local?.type, 'relay', 'Chromium relays');
  assert.equal(
    run.viewer?.pair?.remote?.type,
    'relay',
    'the remote (werift) candidate is a relay candidate too',
  );
  const cam = run.camera as { pair?: { local?: string } } | undefined;
  assert.equal(cam?.pair?.local, 'relay', 'werift selected its own relay candidate');
  assert.ok((run.viewer?.framesDecoded ?? 0) > 0);
  assertCiphertextOnly(t, cap);
});
