// DTLS attacks on the media path, through the real stack: ffmpeg testsrc → MediaHub → ViewerPeer
// (libdatachannel, OpenSSL DTLS), all on loopback. The attacker is a werift RTCPeerConnection (the
// CommonJS build, loaded apart from the ESM werift the control device uses, so its DTLS flights can
// be patched without touching the device side).
//
// Each attack must end with zero decrypted media packets at the attacker, and the device must log
// and count a possible attack (E_DTLS_FAILED). Each attack is also run against the deliberately
// broken verifier (MediaHub with the test-only werift peer), where it must work (the attacker
// decrypts H.264 RTP), so these tests fail if the defence goes.
//
// Run in a loopback-only network namespace, e.g.
//   ip netns add hatk1; ip -n hatk1 link set lo up
//   ip netns exec hatk1 node --conditions=source --import tsx --test --test-concurrency=1 \
//     packages/agent/test/e2e/dtls-attack.test.ts
//   ip netns del hatk1
// (libdatachannel then binds 127.0.0.1 by itself; werift gets iceAdditionalHostAddresses.)
// The process lingers ~30 s after the last test on werift's own timers.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ndc from 'node-datachannel';
import type * as WeriftTypes from 'werift';
import {
  DTLS_FAILED,
  MediaHub,
  type MediaLogger,
  parseCamerasYaml,
  sdpFingerprint,
} from '../../src/media/index.js';
import { weriftPeerFactory } from '../support/werift-peer.js';
import { childPidsNamed } from './harness.js';

// DTLS_ATTACK_LOG=Warning (or Debug) shows libdatachannel's own account of each failed handshake.
if (process.env.DTLS_ATTACK_LOG) {
  ndc.initLogger(process.env.DTLS_ATTACK_LOG as ndc.LogLevel, (level, message) =>
    console.log(`[libdatachannel ${level}] ${message}`),
  );
}

const requireCjs = createRequire(import.meta.url);
const W = requireCjs('werift') as typeof WeriftTypes;
const DTLS_SRC = join(dirname(requireCjs.resolve('werift')), '..', '..', 'dtls', 'src');
type AnyFn = (...a: unknown[]) => unknown;
type FlightProto = Record<string, AnyFn>;
const flightProto = (file: string, name: string): FlightProto =>
  (requireCjs(join(DTLS_SRC, 'flight', file)) as Record<string, { prototype: FlightProto }>)[name]!.prototype;
const Flight4 = flightProto('server/flight4.js', 'Flight4'); // DTLS server: ServerHello … ServerKeyExchange
const Flight5 = flightProto('client/flight5.js', 'Flight5'); // DTLS client: Certificate … CertificateVerify, Finished
const Flight6 = flightProto('server/flight6.js', 'Flight6'); // DTLS server: ChangeCipherSpec, Finished

type Keys = Awaited<ReturnType<typeof WeriftTypes.CipherContext.createSelfSignedCertificateWithKey>>;

async function until<T>(what: string, f: () => T | undefined | false, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const onlyLoopback = (sdp: string) =>
  sdp
    .split('\r\n')
    .filter((l) => !l.startsWith('a=candidate:') || / 127\.0\.0\.1 /.test(l))
    .join('\r\n');

const newKeys = (): Promise<Keys> =>
  W.CipherContext.createSelfSignedCertificateWithKey(
    { signature: W.SignatureAlgorithm.ecdsa_3, hash: W.HashAlgorithm.sha256_4 },
    W.NamedCurveAlgorithm.secp256r1_23,
  );

const fingerprintOf = (certPem: string) => new X509Certificate(certPem).fingerprint256.toUpperCase();

/** An RTP payload that is H.264 (RFC 6184): a single NAL unit (1–23), STAP-A (24) or FU-A (28). */
const isH264Payload = (payload: Buffer) => {
  if (payload.length < 2) return false;
  const t = (payload[0] as number) & 0x1f;
  return (t >= 1 && t <= 23) || t === 24 || t === 28;
};

/**
 * The attacker: a werift peer (recvonly H.264) with the given DTLS certificate and key. Counts
 * the RTP packets it could decrypt (werift hands RTP to the track only after SRTP decryption).
 */
async function attackerPeer(keys: Keys, setup: 'actpass' | 'active') {
  const pc = new W.RTCPeerConnection({
    codecs: {
      audio: [],
      video: [
        new W.RTCRtpCodecParameters({
          mimeType: 'video/H264',
          clockRate: 90000,
          rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
          parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
        }),
      ],
    },
    dtls: { keys },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceFilterCandidatePair: (p) =>
      p.remoteCandidate.host === '127.0.0.1' && p.localCandidate.host === '127.0.0.1',
  });
  const got = { rtp: 0, h264: 0 };
  let h264Pt: number | undefined;
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.onTrack.subscribe((track) => {
    track.onReceiveRtp.subscribe((rtp) => {
      got.rtp++;
      if (rtp.header.payloadType === h264Pt && isH264Payload(rtp.payload)) got.h264++;
    });
  });
  await pc.setLocalDescription(await pc.createOffer());
  await until('gathering', () => pc.iceGatheringState === 'complete', 5_000).catch(() => undefined);
  let offerSdp = onlyLoopback(pc.localDescription!.sdp);
  if (setup === 'active') offerSdp = offerSdp.replace(/^a=setup:actpass$/gm, 'a=setup:active');
  return {
    pc,
    got,
    offerSdp,
    async answer(sdp: string) {
      const m = /^a=rtpmap:(\d+) H264\/90000/im.exec(sdp);
      h264Pt = m ? Number(m[1]) : undefined;
      await pc.setRemoteDescription({ type: 'answer', sdp: onlyLoopback(sdp) });
    },
  };
}

type Corruption = 'server-key-exchange' | 'certificate-verify' | 'server-finished' | 'client-finished';

/**
 * Patches the attacker's werift (CJS) so one flight carries a corrupted signature or verify_data:
 * the flight's `send*` method runs with the cipher's signing (or verify_data) function wrapped to
 * flip one bit of its output. Returns the undo and a count of corruptions made (> 0 proves the
 * corrupted message was built, i.e. the attacker really was in the role under test).
 */
function corrupt(kind: Corruption): { undo: () => void; count: () => number } {
  const [proto, method, cipherFn, at] = (
    {
      // ECDSA DER signature: flipping the last bit changes s, keeps the DER well formed.
      'server-key-exchange': [Flight4, 'sendServerKeyExchange', 'generateKeySignature', 'last'],
      'certificate-verify': [Flight5, 'sendCertificateVerify', 'signatureData', 'last'],
      'server-finished': [Flight6, 'sendFinished', 'verifyData', 'first'],
      'client-finished': [Flight5, 'sendFinished', 'verifyData', 'first'],
    } as const
  )[kind];
  let n = 0;
  const orig = proto[method] as AnyFn;
  proto[method] = function (this: { cipher: Record<string, AnyFn> }, ...args: unknown[]) {
    const cipher = this.cipher;
    const fn = cipher[cipherFn] as AnyFn;
    cipher[cipherFn] = (...a: unknown[]) => {
      const out = Buffer.from(fn.apply(cipher, a) as Buffer);
      const i = at === 'last' ? out.length - 1 : 0;
      out[i] = (out[i] as number) ^ 0x01;
      n++;
      return out;
    };
    try {
      return orig.apply(this, args);
    } finally {
      cipher[cipherFn] = fn;
    }
  };
  return {
    undo: () => {
      proto[method] = orig;
    },
    count: () => n,
  };
}

function capturingLogger() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at =
    (level: string) =>
    (obj: object, msg = '') =>
      void lines.push({ level, obj: obj as Record<string, unknown>, msg });
  const logger: MediaLogger = { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
  return { logger, lines };
}

const CAMERAS = parseCamerasYaml('cameras:\n  cam: testsrc?size=320x240&fps=15&gop=1\n');

describe('DTLS attacks on the media path (real libdatachannel stack, werift control)', {
  timeout: 300_000,
}, () => {
  const real = capturingLogger();
  const ctrl = capturingLogger();
  let hub: MediaHub; // the product: ViewerPeer (libdatachannel)
  let control: MediaHub; // the deliberately broken verifier: werift 0.24 as the device's peer
  let viewer: Keys; // the legitimate viewer's certificate and key (its fingerprint is in its signed offer)
  let attackerKey: Keys; // the attacker's own key (its certificate is not used)
  const pcs: WeriftTypes.RTCPeerConnection[] = [];

  before(async () => {
    hub = new MediaHub(CAMERAS, { logger: real.logger, source: { stopDelayMs: 60_000 } });
    control = new MediaHub(CAMERAS, {
      logger: ctrl.logger,
      peerFactory: weriftPeerFactory,
      source: { stopDelayMs: 60_000 },
    });
    viewer = await newKeys();
    attackerKey = await newKeys();
  });

  after(async () => {
    for (const pc of pcs) await pc.close().catch(() => undefined);
    await hub?.close();
    await control?.close();
    for (const pid of await childPidsNamed('ffmpeg')) process.kill(pid, 'SIGKILL');
  });

  /** The viewer's certificate with a key that is not its own (same type: ECDSA P-256). */
  const replayedCert = (): Keys => ({ ...viewer, keyPem: attackerKey.keyPem });

  /**
   * One attack against the real stack: must get no packet, and the hub must log, count and close
   * with E_DTLS_FAILED.
   */
  async function attackReal(keys: Keys, setup: 'actpass' | 'active', corruption?: Corruption) {
    const patch = corruption ? corrupt(corruption) : undefined;
    try {
      const a = await attackerPeer(keys, setup);
      pcs.push(a.pc);
      assert.equal(
        sdpFingerprint(a.offerSdp)?.value.toUpperCase(),
        fingerprintOf(viewer.certPem),
        "the attacker's offer carries the viewer's fingerprint",
      );
      const before = hub.stats().possibleAttacks;
      const { answerSdp, session } = await hub.createViewerSession('cam', a.offerSdp);
      assert.match(answerSdp, setup === 'active' ? /^a=setup:passive\r?$/m : /^a=setup:active\r?$/m);
      let code: string | undefined | null = null;
      void session.closed.then((c) => {
        code = c;
      });
      await a.answer(answerSdp);
      // Until the device gives up on the peer, or the attacker decrypts anything (the defence failed).
      await until(
        'the hub to count the attack or close the session',
        () => hub.stats().possibleAttacks > before || code !== null || a.got.rtp > 0,
      );
      assert.equal(
        a.got.rtp,
        0,
        `POSSIBLE ATTACK ACCEPTED: the attacker decrypted ${a.got.rtp} RTP packets (${a.got.h264} H.264)`,
      );
      await until('the session to close', () => code !== null, 10_000);
      if (patch) assert.ok(patch.count() > 0, `the corrupted ${corruption} was sent`);
      assert.equal(code, DTLS_FAILED, 'closed as a failed DTLS handshake');
      assert.equal(hub.stats().possibleAttacks, before + 1, 'counted as a possible attack');
      const warn = real.lines.find(
        (l) =>
          l.level === 'warn' &&
          l.msg.includes('possible attack') &&
          l.obj.possibleAttack === true &&
          l.obj.session === session.id,
      );
      assert.ok(warn, 'a "possible attack" line was logged for this session');
      assert.equal(session.peer.stats().framesSent, 0, 'the device sent no frame');
      assert.equal(a.got.rtp, 0, 'the attacker decrypted no RTP packet');
      assert.equal(a.got.h264, 0);
      await a.pc.close();
      return a.got;
    } finally {
      patch?.undo();
    }
  }

  /** The same attack against the broken verifier: must work (the attacker decrypts H.264). */
  async function attackControl(keys: Keys, setup: 'actpass' | 'active', corruption?: Corruption) {
    const patch = corruption ? corrupt(corruption) : undefined;
    try {
      const a = await attackerPeer(keys, setup);
      pcs.push(a.pc);
      const { answerSdp, session } = await control.createViewerSession('cam', a.offerSdp);
      assert.match(answerSdp, setup === 'active' ? /^a=setup:passive\r?$/m : /^a=setup:active\r?$/m);
      await a.answer(answerSdp);
      await until('the attacker to decrypt H.264 from the broken verifier', () => a.got.h264 > 0, 10_000);
      if (patch) assert.ok(patch.count() > 0, `the corrupted ${corruption} was sent`);
      assert.equal(control.stats().possibleAttacks, 0, 'the broken verifier noticed nothing');
      const got = { ...a.got };
      await session.close();
      await a.pc.close();
      return got;
    } finally {
      patch?.undo();
    }
  }

  // The viewer itself (its own certificate and key, nothing patched), in both DTLS roles: the
  // attacks below differ from these only in the key or in the one corrupted message, so a failure
  // there is the verification, not an interop problem between werift and libdatachannel.
  for (const setup of ['actpass', 'active'] as const) {
    it(`setup works: the honest viewer (own certificate and key) receives H.264 from the real stack, offer ${setup}`, async () => {
      const a = await attackerPeer(viewer, setup);
      pcs.push(a.pc);
      const before = hub.stats().possibleAttacks;
      const { answerSdp, session } = await hub.createViewerSession('cam', a.offerSdp);
      assert.match(answerSdp, setup === 'active' ? /^a=setup:passive\r?$/m : /^a=setup:active\r?$/m);
      await a.answer(answerSdp);
      await until('H.264 at the honest viewer', () => a.got.h264 > 20);
      assert.equal(hub.stats().possibleAttacks, before);
      assert.equal(session.peer.connectionState, 'connected');
      console.log(`honest viewer, offer ${setup}: ${a.got.h264} H.264 packets decrypted`);
      await session.close();
      await a.pc.close();
    });
  }

  it("1a. the viewer's certificate without its key, device as DTLS client (offer actpass)", async () => {
    const r = await attackReal(replayedCert(), 'actpass');
    const c = await attackControl(replayedCert(), 'actpass');
    console.log(`1a: real ${r.h264} packets; control (werift) ${c.h264} H.264 packets decrypted`);
  });

  it("1b. the viewer's certificate without its key, device as DTLS server (offer active)", async () => {
    const r = await attackReal(replayedCert(), 'active');
    const c = await attackControl(replayedCert(), 'active');
    console.log(`1b: real ${r.h264} packets; control (werift) ${c.h264} H.264 packets decrypted`);
  });

  it('2a. a bad ServerKeyExchange signature (device as DTLS client)', async () => {
    const r = await attackReal(viewer, 'actpass', 'server-key-exchange');
    const c = await attackControl(viewer, 'actpass', 'server-key-exchange');
    console.log(`2a: real ${r.h264} packets; control (werift) ${c.h264} H.264 packets decrypted`);
  });

  it('2b. a bad CertificateVerify (device as DTLS server)', async () => {
    const r = await attackReal(viewer, 'active', 'certificate-verify');
    const c = await attackControl(viewer, 'active', 'certificate-verify');
    console.log(`2b: real ${r.h264} packets; control (werift) ${c.h264} H.264 packets decrypted`);
  });

  it('2c. a wrong server Finished (device as DTLS client)', async () => {
    const r = await attackReal(viewer, 'actpass', 'server-finished');
    const c = await attackControl(viewer, 'actpass', 'server-finished');
    console.log(`2c: real ${r.h264} packets; control (werift) ${c.h264} H.264 packets decrypted`);
  });

  it('2d. a wrong client Finished (device as DTLS server)', async () => {
    const r = await attackReal(viewer, 'active', 'client-finished');
    const c = await attackControl(viewer, 'active', 'client-finished');
    console.log(`2d: real ${r.h264} packets; control (werift) ${c.h264} H.264 packets decrypted`);
  });
});
