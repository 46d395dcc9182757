/**
 * The live view's security behaviour (threat model S4), driven with a fake RTCPeerConnection and a
 * real device key: the answer is verified against the pinned key BEFORE setRemoteDescription, and
 * any failed check ends in "possible attack" with the peer connection closed and nothing played.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { DeviceMessage, IceServer } from '@hearth/protocol';
import {
  createAnswer,
  createStillSealer,
  decodeEnvelope,
  deviceIdFromKey,
  type Envelope,
  systemEnv,
  verifyOffer,
  WebCryptoSigner,
} from '@hearth/protocol';
import { LiveView, type PeerConnectionLike } from '../src/live/live-view.js';

const fp = (b: number) =>
  Array.from({ length: 32 }, () => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
const VIEWER_FP = fp(0x11);
const DEVICE_FP = fp(0x22);
const sdp = (f: string, setup: string) =>
  [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    'm=video 9 UDP/TLS/RTP/SAVPF 96',
    'c=IN IP4 0.0.0.0',
    `a=fingerprint:sha-256 ${f}`,
    `a=setup:${setup}`,
    'a=mid:0',
    'a=recvonly',
    'a=rtpmap:96 H264/90000',
    '',
  ].join('\r\n');

class FakePc {
  connectionState: RTCPeerConnectionState = 'new';
  iceConnectionState: RTCIceConnectionState = 'new';
  localDescription: RTCSessionDescriptionInit | null = null;
  remoteDescription: RTCSessionDescriptionInit | null = null;
  onicecandidate: PeerConnectionLike['onicecandidate'] = null;
  onconnectionstatechange: (() => void) | null = null;
  ontrack: PeerConnectionLike['ontrack'] = null;
  calls: string[] = [];
  closed = false;
  stats = new Map<string, Record<string, unknown>>();
  addTransceiver() {
    this.calls.push('addTransceiver');
  }
  async createOffer() {
    return { type: 'offer' as const, sdp: sdp(VIEWER_FP, 'actpass') };
  }
  async setLocalDescription(d: RTCSessionDescriptionInit) {
    this.localDescription = d;
  }
  async setRemoteDescription(d: RTCSessionDescriptionInit) {
    this.calls.push('setRemoteDescription');
    this.remoteDescription = d;
  }
  async addIceCandidate() {
    this.calls.push('addIceCandidate');
  }
  async getStats() {
    return this.stats;
  }
  close() {
    this.closed = true;
    this.connectionState = 'closed';
  }
  /** Simulate ICE+DTLS up, with a given path and remote certificate. */
  connect(localType: string, remoteType: string, certFp: string) {
    this.stats = new Map<string, Record<string, unknown>>([
      ['T', { id: 'T', type: 'transport', selectedCandidatePairId: 'P', remoteCertificateId: 'C' }],
      [
        'P',
        {
          id: 'P',
          type: 'candidate-pair',
          localCandidateId: 'L',
          remoteCandidateId: 'R',
          state: 'succeeded',
          nominated: true,
        },
      ],
      ['L', { id: 'L', type: 'local-candidate', candidateType: localType }],
      ['R', { id: 'R', type: 'remote-candidate', candidateType: remoteType }],
      ['C', { id: 'C', type: 'certificate', fingerprint: certFp, fingerprintAlgorithm: 'sha-256' }],
      ['V', { id: 'V', type: 'inbound-rtp', kind: 'video', framesDecoded: 5 }],
    ]);
    this.connectionState = 'connected';
    this.onconnectionstatechange?.();
  }
}

const device = await WebCryptoSigner.generate(true);
const impostor = await WebCryptoSigner.generate(true);
const viewer = await WebCryptoSigner.generate(false);
const deviceId = deviceIdFromKey(device.publicKey);
const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
async function until(f: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await tick(2);
  }
}

function harness(o: { online?: boolean; relay?: (d: string) => Promise<void> } = {}) {
  const pcs: FakePc[] = [];
  const configs: RTCConfiguration[] = [];
  const sent: { to: string; m: { t: string; env?: Envelope; sid?: string } }[] = [];
  const attached: (MediaStream | null)[] = [];
  const stills: (Uint8Array | null)[] = [];
  const states: string[] = [];
  const signaling = {
    ready: true,
    ice: [] as IceServer[],
    ...(o.relay ? { relay: o.relay } : {}),
    sendTo(to: string, m: unknown) {
      sent.push({ to, m: m as { t: string } });
      return `r${sent.length}`;
    },
  };
  const view = new LiveView({
    deviceId,
    pinnedDeviceKey: device.publicKey,
    camera: 'front',
    signer: viewer,
    env: systemEnv,
    signaling,
    attach: (s) => attached.push(s),
    showStill: (j) => stills.push(j),
    onState: (s) => states.push(s.name),
    createPeerConnection: (c) => {
      configs.push(c);
      const pc = new FakePc();
      pcs.push(pc);
      return pc as unknown as PeerConnectionLike;
    },
    answerTimeoutMs: 10_000,
    retryBaseMs: 20,
    statsMs: 10_000,
  });
  if (o.online !== undefined) view.onPresence(o.online);
  const offers = () => sent.filter((s) => s.m.t === 'session/offer');
  /** Play the device: verify the last offer and answer it, signed by `signer`. */
  async function answer(
    signer = device,
    tweak?: (o: Awaited<ReturnType<typeof verifyOffer>> & { ok: true }) => void,
  ): Promise<DeviceMessage> {
    const last = offers().at(-1);
    assert.ok(last?.m.env, 'an offer was sent');
    const r = await verifyOffer(decodeEnvelope(last.m.env), { deviceId, now: Date.now() });
    assert.ok(r.ok, 'the viewer signs a valid offer');
    tweak?.(r);
    const env = await createAnswer(signer, r.body, sdp(DEVICE_FP, 'active'), systemEnv);
    return { t: 'session/answer', env };
  }
  /** Play the device with a still: an answer carrying sk, and a sealer for `session/still`. */
  async function answerWithStill(): Promise<{
    msg: DeviceMessage;
    still: (jpeg: Uint8Array) => Promise<DeviceMessage>;
    sid: string;
  }> {
    const last = offers().at(-1);
    assert.ok(last?.m.env, 'an offer was sent');
    const r = await verifyOffer(decodeEnvelope(last.m.env), { deviceId, now: Date.now() });
    assert.ok(r.ok);
    assert.ok(r.body.stillKey, 'the offer carries the viewer ephemeral key');
    const sealer = await createStillSealer({
      stillKey: r.body.stillKey,
      sid: r.body.sid,
      camera: r.body.camera,
      digest: r.body.digest,
    });
    const env = await createAnswer(device, r.body, sdp(DEVICE_FP, 'active'), systemEnv, sealer.publicKey);
    return {
      msg: { t: 'session/answer', env },
      sid: r.body.sid,
      still: async (jpeg) => ({ t: 'session/still', sid: r.body.sid, ct: await sealer.seal(jpeg) }),
    };
  }
  return { view, pcs, configs, sent, attached, stills, states, offers, answer, answerWithStill, signaling };
}

let current: ReturnType<typeof harness> | undefined;
afterEach(() => current?.view.stop());
const setup = (o?: { online?: boolean; relay?: (d: string) => Promise<void> }) => {
  current = harness(o);
  return current;
};

describe('live view', () => {
  it('review R6: asks for relay credentials before the offer, and makes its connection with them', async () => {
    const asked: string[] = [];
    let release: () => void = () => {};
    const turn = { urls: ['turn:127.0.0.1:3478?transport=tcp'], username: '1:abc', credential: 'x' };
    const h = setup({
      relay: (d) => {
        asked.push(d);
        return new Promise<void>((r) => {
          release = () => {
            h.signaling.ice = [{ urls: ['stun:127.0.0.1:3478'] }, turn];
            r();
          };
        });
      },
    });
    h.view.start();
    await until(() => asked.length === 1);
    await tick(20);
    assert.equal(h.pcs.length, 0, 'no connection while the credentials are on their way');
    assert.deepEqual(asked, [deviceId]);
    release();
    await until(() => h.offers().length === 1);
    assert.deepEqual(h.configs[0]?.iceServers, [{ urls: ['stun:127.0.0.1:3478'] }, turn]);
  });

  it('review R6: a view stopped while waiting for relay credentials makes no connection', async () => {
    let release: () => void = () => {};
    const h = setup({ relay: () => new Promise<void>((r) => (release = r)) });
    h.view.start();
    await tick(10);
    h.view.stop();
    release();
    await tick(20);
    assert.equal(h.pcs.length, 0);
    assert.equal(h.offers().length, 0);
  });

  it('sends a signed offer for the camera, then applies a verified answer and reports a direct path', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    assert.equal(h.view.state.name, 'connecting');
    const offer = decodeEnvelope(h.offers()[0]!.m.env);
    assert.equal(offer.p, 'session/offer');
    assert.equal(offer.b.cam, 'front');
    assert.equal(offer.b.d, deviceId);
    await h.view.onMessage(await h.answer());
    const pc = h.pcs[0]!;
    assert.deepEqual(pc.calls, ['addTransceiver', 'setRemoteDescription']);
    assert.match(pc.remoteDescription?.sdp ?? '', /a=fingerprint:sha-256 22:22/);
    pc.connect('host', 'srflx', DEVICE_FP);
    await tick();
    assert.equal(h.view.state.name, 'connected (direct)');
    assert.equal(h.view.framesDecoded(), 5);
    assert.equal(h.view.lastError, undefined);
  });

  it('reports a relayed path when a relay candidate is selected', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    await h.view.onMessage(await h.answer());
    h.pcs[0]!.connect('relay', 'host', DEVICE_FP);
    await tick();
    assert.equal(h.view.state.name, 'connected (relayed)');
  });

  it('answer signed by another key: possible attack, no setRemoteDescription, peer connection closed', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    await h.view.onMessage(await h.answer(impostor));
    const pc = h.pcs[0]!;
    assert.equal(h.view.state.name, 'possible attack');
    assert.equal(h.view.state.code, 'E_WRONG_SIGNER');
    assert.ok(!pc.calls.includes('setRemoteDescription'), 'never applied');
    assert.ok(pc.closed, 'closed');
    assert.equal(h.attached.at(-1), null, 'nothing attached to the video element');
    assert.equal(h.view.lastError?.attack, true);
    assert.ok(h.sent.some((s) => s.m.t === 'session/close'));
  });

  it('answer bound to another offer: possible attack (E_BAD_BINDING)', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    const m = await h.answer(device, (r) => {
      r.body.digest = 'A'.repeat(43);
    });
    await h.view.onMessage(m);
    assert.deepEqual(h.view.state, { name: 'possible attack', code: 'E_BAD_BINDING' });
    assert.ok(!h.pcs[0]!.calls.includes('setRemoteDescription'));
  });

  it('tampered answer SDP (signature no longer verifies): possible attack', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    const m = (await h.answer()) as { t: 'session/answer'; env: Envelope };
    const env = { ...m.env, b: { ...m.env.b, sdp: sdp(fp(0x33), 'active') } };
    await h.view.onMessage({ t: 'session/answer', env });
    assert.deepEqual(h.view.state, { name: 'possible attack', code: 'E_BAD_SIGNATURE' });
    assert.ok(!h.pcs[0]!.calls.includes('setRemoteDescription'));
  });

  it('DTLS certificate differs from the signed fingerprint: possible attack after connect', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    await h.view.onMessage(await h.answer());
    const pc = h.pcs[0]!;
    pc.connect('host', 'host', fp(0x44));
    await tick();
    assert.deepEqual(h.view.state, { name: 'possible attack', code: 'E_FINGERPRINT_MISMATCH' });
    assert.ok(pc.closed);
    assert.equal(h.attached.at(-1), null);
  });

  it('attack is sticky: a later genuine answer or connect does not clear it', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    await h.view.onMessage(await h.answer(impostor));
    await h.view.onMessage(await h.answer());
    await tick(50);
    assert.equal(h.view.state.name, 'possible attack');
    assert.equal(h.pcs.length, 1, 'no automatic retry after an attack');
  });

  it('a malformed answer is dropped (not an attack) and the view keeps waiting', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    await h.view.onMessage({ t: 'session/answer', env: { junk: true } });
    assert.equal(h.view.state.name, 'connecting');
    assert.equal(h.view.lastError?.attack, false);
    await h.view.onMessage(await h.answer());
    assert.ok(h.pcs[0]!.calls.includes('setRemoteDescription'));
  });

  it('refused by the device: access refused with the code, no retry', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    const sid = decodeEnvelope(h.offers()[0]!.m.env).b.sid as string;
    await h.view.onMessage({ t: 'session/refused', sid, code: 'E_NO_GRANT' });
    assert.deepEqual(h.view.state, { name: 'access refused', code: 'E_NO_GRANT' });
    await tick(60);
    assert.equal(h.offers().length, 1);
  });

  it('refused with E_RESTARTED (the device restarted while the offer was in flight): a new signed offer, then connected', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    const sid1 = decodeEnvelope(h.offers()[0]!.m.env).b.sid as string;
    await h.view.onMessage({ t: 'session/refused', sid: sid1, code: 'E_RESTARTED' });
    assert.equal(h.view.state.name, 'reconnecting');
    await until(() => h.offers().length === 2);
    const sid2 = decodeEnvelope(h.offers()[1]!.m.env).b.sid as string;
    assert.notEqual(sid2, sid1);
    await h.view.onMessage(await h.answer());
    h.pcs[1]!.connect('host', 'host', DEVICE_FP);
    await until(() => h.view.state.name === 'connected (direct)');
    assert.ok(!h.states.includes('access refused'));
  });

  it('revoked mid-session: access refused; camera restart: reconnecting, then a new signed offer', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    await h.view.onMessage(await h.answer());
    h.pcs[0]!.connect('host', 'host', DEVICE_FP);
    await tick();
    const sid1 = decodeEnvelope(h.offers()[0]!.m.env).b.sid as string;
    await h.view.onMessage({ t: 'session/closed', sid: sid1, code: 'E_SHUTDOWN' });
    assert.equal(h.view.state.name, 'reconnecting');
    await until(() => h.offers().length === 2);
    const sid2 = decodeEnvelope(h.offers()[1]!.m.env).b.sid as string;
    assert.notEqual(sid1, sid2);
    await h.view.onMessage(await h.answer());
    h.pcs[1]!.connect('host', 'host', DEVICE_FP);
    await tick();
    assert.equal(h.view.state.name, 'connected (direct)');
    await h.view.onMessage({ t: 'session/closed', sid: sid2, code: 'E_GRANT_REVOKED' });
    assert.deepEqual(h.view.state, { name: 'access refused', code: 'E_GRANT_REVOKED' });
    assert.ok(h.pcs[1]!.closed);
  });

  it('ICE up but the connection failed (DTLS): possible attack E_DTLS_FAILED, and no new session', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    await h.view.onMessage(await h.answer());
    const pc = h.pcs[0]!;
    pc.iceConnectionState = 'connected';
    pc.connectionState = 'failed';
    pc.onconnectionstatechange?.();
    assert.deepEqual(h.view.state, { name: 'possible attack', code: 'E_DTLS_FAILED' });
    assert.ok(pc.closed);
    await tick(200); // ten retry periods (retryBaseMs 20)
    assert.equal(h.offers().length, 1, 'no retry hands the attacker a new session');
  });

  it('ICE itself failed: a network fault, retried (the control of the DTLS case)', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    await h.view.onMessage(await h.answer());
    const pc = h.pcs[0]!;
    pc.iceConnectionState = 'failed';
    pc.connectionState = 'failed';
    pc.onconnectionstatechange?.();
    assert.equal(h.view.state.name, 'reconnecting');
    await until(() => h.offers().length === 2);
  });

  it('the device closes the session with E_DTLS_FAILED: possible attack, no retry', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    await h.view.onMessage(await h.answer());
    const sid = decodeEnvelope(h.offers()[0]!.m.env).b.sid as string;
    await h.view.onMessage({ t: 'session/closed', sid, code: 'E_DTLS_FAILED' });
    assert.deepEqual(h.view.state, { name: 'possible attack', code: 'E_DTLS_FAILED' });
    await tick(200);
    assert.equal(h.offers().length, 1);
  });

  it('the device sends a specific media code (E_NO_H264): camera unavailable by its registry action, not access refused', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    const sid = decodeEnvelope(h.offers()[0]!.m.env).b.sid as string;
    await h.view.onMessage({ t: 'session/refused', sid, code: 'E_NO_H264' });
    assert.deepEqual(h.view.state, { name: 'camera unavailable', code: 'E_NO_H264' });
    await tick(200);
    assert.equal(h.offers().length, 1);
  });

  it('a close code whose registry action is attack (not only E_DTLS_FAILED) is a possible attack; an unregistered one is not', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    await h.view.onMessage(await h.answer());
    const sid = decodeEnvelope(h.offers()[0]!.m.env).b.sid as string;
    await h.view.onMessage({ t: 'session/closed', sid, code: 'E_WRONG_SIGNER' });
    assert.deepEqual(h.view.state, { name: 'possible attack', code: 'E_WRONG_SIGNER' });
    // Control: a code nothing registers (the old regexes would have matched it) only reconnects.
    const h2 = setup();
    h2.view.start();
    await until(() => h2.offers().length === 1);
    await h2.view.onMessage(await h2.answer());
    const sid2 = decodeEnvelope(h2.offers()[0]!.m.env).b.sid as string;
    await h2.view.onMessage({ t: 'session/closed', sid: sid2, code: 'E_CAMERA_OFFLINE_X' });
    assert.equal(h2.view.state.name, 'reconnecting');
    h2.view.stop();
  });

  it('ffmpeg cannot run on the device (E_CAMERA_UNAVAILABLE): camera unavailable, no retry until the user starts again', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    const sid = decodeEnvelope(h.offers()[0]!.m.env).b.sid as string;
    await h.view.onMessage({ t: 'session/refused', sid, code: 'E_CAMERA_UNAVAILABLE' });
    assert.deepEqual(h.view.state, { name: 'camera unavailable', code: 'E_CAMERA_UNAVAILABLE' });
    assert.equal(h.view.lastError?.code, 'E_CAMERA_UNAVAILABLE');
    assert.ok(h.pcs[0]!.closed);
    await tick(100);
    assert.equal(h.offers().length, 1, 'no silent loop');
    h.view.start(); // "Try again"
    await until(() => h.offers().length === 2);
    assert.equal(h.view.state.name, 'connecting');
  });

  it('a session closed with E_CAMERA_UNAVAILABLE after it was answered stops as well', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    await h.view.onMessage(await h.answer());
    h.pcs[0]!.connect('host', 'host', DEVICE_FP);
    await until(() => h.view.state.name === 'connected (direct)');
    const sid = decodeEnvelope(h.offers()[0]!.m.env).b.sid as string;
    await h.view.onMessage({ t: 'session/closed', sid, code: 'E_CAMERA_UNAVAILABLE' });
    assert.deepEqual(h.view.state, { name: 'camera unavailable', code: 'E_CAMERA_UNAVAILABLE' });
    await tick(100);
    assert.equal(h.offers().length, 1);
  });

  it('camera offline (closed or refused): says so and keeps retrying with new signed offers', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    const sid1 = decodeEnvelope(h.offers()[0]!.m.env).b.sid as string;
    await h.view.onMessage({ t: 'session/closed', sid: sid1, code: 'E_CAMERA_OFFLINE' });
    assert.deepEqual(h.view.state, { name: 'camera offline', code: 'E_CAMERA_OFFLINE' });
    await until(() => h.offers().length === 2);
    assert.equal(h.view.state.name, 'camera offline', 'the retry keeps the message');
    const sid2 = decodeEnvelope(h.offers()[1]!.m.env).b.sid as string;
    await h.view.onMessage({ t: 'session/refused', sid: sid2, code: 'E_CAMERA_OFFLINE' });
    assert.equal(h.view.state.name, 'camera offline');
    await until(() => h.offers().length === 3);
    await h.view.onMessage(await h.answer());
    h.pcs[2]!.connect('host', 'host', DEVICE_FP);
    await until(() => h.view.state.name === 'connected (direct)');
    assert.ok(!h.states.includes('access refused'));
  });

  it('E_MEDIA is not shown as an access refusal', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    const sid = decodeEnvelope(h.offers()[0]!.m.env).b.sid as string;
    await h.view.onMessage({ t: 'session/refused', sid, code: 'E_MEDIA' });
    assert.deepEqual(h.view.state, { name: 'camera unavailable', code: 'E_MEDIA' });
  });

  it('a late answer to an abandoned offer is ignored, not flagged', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    const late = await h.answer();
    const sid1 = decodeEnvelope(h.offers()[0]!.m.env).b.sid as string;
    await h.view.onMessage({ t: 'session/closed', sid: sid1, code: 'E_SHUTDOWN' });
    await until(() => h.offers().length === 2);
    await h.view.onMessage(late);
    assert.equal(h.view.state.name, 'reconnecting');
    assert.ok(!h.pcs[1]!.calls.includes('setRemoteDescription'));
  });

  it('device offline: no offer until it is back', async () => {
    const h = setup({ online: false });
    h.view.start();
    await tick(20);
    assert.equal(h.view.state.name, 'device offline');
    assert.equal(h.offers().length, 0);
    h.view.onPresence(true);
    await until(() => h.offers().length === 1);
    assert.equal(h.view.state.name, 'connecting');
  });

  it('trickled candidates from the device wait for the verified answer', async () => {
    const h = setup();
    h.view.start();
    await until(() => h.offers().length === 1);
    const sid = decodeEnvelope(h.offers()[0]!.m.env).b.sid as string;
    await h.view.onMessage({
      t: 'session/ice',
      sid,
      c: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0' },
    });
    await h.view.onMessage({
      t: 'session/ice',
      sid: 'B'.repeat(22),
      c: { candidate: 'candidate:2 1 udp 1 127.0.0.1 9 typ host' },
    });
    assert.deepEqual(h.pcs[0]!.calls, ['addTransceiver']);
    await h.view.onMessage(await h.answer());
    assert.deepEqual(h.pcs[0]!.calls, ['addTransceiver', 'setRemoteDescription', 'addIceCandidate']);
  });

  describe('sealed still', () => {
    const JPEG = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]);
    const flip = (m: DeviceMessage, i: number): DeviceMessage => {
      const ct = (m as { ct: string }).ct;
      const c = ct[i] === 'A' ? 'B' : 'A';
      return { ...m, ct: ct.slice(0, i) + c + ct.slice(i + 1) } as DeviceMessage;
    };

    it('shown after a verified answer; cleared when the view stops', async () => {
      const h = setup();
      h.view.start();
      await until(() => h.offers().length === 1);
      const d = await h.answerWithStill();
      await h.view.onMessage(d.msg);
      await until(() => h.pcs[0]!.calls.includes('setRemoteDescription'));
      await h.view.onMessage(await d.still(JPEG));
      assert.deepEqual(h.stills, [JPEG]);
      h.view.stop();
      assert.equal(h.stills.at(-1), null);
    });

    it('a still before the answer, for another sid, or tampered is ignored (and a later genuine one still shows)', async () => {
      const h = setup();
      h.view.start();
      await until(() => h.offers().length === 1);
      const d = await h.answerWithStill();
      const genuine = await d.still(JPEG);
      await h.view.onMessage(genuine); // before the answer: no key yet
      assert.deepEqual(h.stills, []);
      await h.view.onMessage(d.msg);
      await until(() => h.pcs[0]!.calls.includes('setRemoteDescription'));
      const otherSid = `${d.sid[0] === 'A' ? 'B' : 'A'}${d.sid.slice(1)}`;
      await h.view.onMessage({ ...genuine, sid: otherSid } as DeviceMessage);
      await h.view.onMessage(flip(genuine, 100)); // a bit in the ciphertext
      assert.deepEqual(h.stills, [], 'nothing shown');
      assert.equal(h.view.state.name, 'connecting', 'no alarm, the session goes on');
      assert.equal(h.view.lastError?.attack ?? false, false);
      await h.view.onMessage(genuine);
      assert.deepEqual(h.stills, [JPEG]);
      await h.view.onMessage(genuine); // one still per session
      assert.equal(h.stills.length, 1);
    });

    it('the tag, the last bytes, a still sealed for another session: never shown', async () => {
      const h = setup();
      h.view.start();
      await until(() => h.offers().length === 1);
      const d = await h.answerWithStill();
      await h.view.onMessage(d.msg);
      await until(() => h.pcs[0]!.calls.includes('setRemoteDescription'));
      const g = await d.still(JPEG);
      const ct = (g as { ct: string }).ct;
      await h.view.onMessage(flip(g, ct.length - 2));
      await h.view.onMessage(flip(g, 0));
      assert.deepEqual(h.stills, []);
    });

    it('a device that answers without sk (older agent): no still, nothing breaks', async () => {
      const h = setup();
      h.view.start();
      await until(() => h.offers().length === 1);
      const d = await h.answerWithStill();
      await h.view.onMessage(await h.answer()); // answer without sk for the same offer
      await until(() => h.pcs[0]!.calls.includes('setRemoteDescription'));
      await h.view.onMessage(await d.still(JPEG));
      assert.deepEqual(h.stills, []);
    });
  });
});
