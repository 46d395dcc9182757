/**
 * T2: the cost of Hearth's security on the live-view path. Same harness as T1 (werift ← ffmpeg
 * testsrc → Chromium on loopback, GOP cache on), two signaling functions, alternated round by round:
 *
 * - A, plain: the page's offer SDP goes to the camera and its answer SDP comes back, unsigned;
 * - B, signed: everything Hearth does per view — the viewer signs the offer (Ed25519 envelope with
 *   nonce and time), it is serialised as on the wire, the device decodes it, verifies signature,
 *   freshness, replay cache and target, asks the ACL, answers, signs the answer bound to the offer's
 *   digest, and the viewer verifies that against the pinned device key and checks the fingerprint.
 *
 * Signing and verifying run in Node (WebCrypto there, as in the browser), not in the page; the
 * network hops of a real rendezvous are the same for both and are not part of the ratio.
 *
 *   node --conditions=source --import tsx packages/agent/bench/t2-signed.ts [--sessions 20] [--rounds 5]
 */
import { parseArgs } from 'node:util';
import {
  Acl,
  createAnswer,
  createOffer,
  decodeEnvelope,
  deviceIdFromKey,
  MemoryReplayCache,
  sameFingerprint,
  sdpFingerprint,
  systemEnv,
  verifyAnswer,
  verifyOffer,
  WebCryptoSigner,
} from '@hearth/protocol';
import { MediaHub, parseCamerasYaml, type ViewerSession } from '../src/media/index.js';
import {
  childPidsNamed,
  launchBrowser,
  openViewerPage,
  type SignalFn,
  startPageServer,
  summarize,
  ttffSample,
  type ViewResult,
} from '../test/e2e/harness.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '5' },
    gop: { type: 'string', default: '4' },
  },
});
const n = Number(values.sessions);
const rounds = Math.max(1, Number(values.rounds));
const camera = 'cam';
const hub = new MediaHub(
  parseCamerasYaml(`cameras:\n  ${camera}: testsrc?size=1280x720&fps=15&gop=${Number(values.gop)}\n`),
  {
    source: { stopDelayMs: 2000 },
  },
);
const sessions = new Map<string, ViewerSession>();

const device = await WebCryptoSigner.generate();
const viewer = await WebCryptoSigner.generate();
const deviceId = deviceIdFromKey(device.publicKey);
const acl = Acl.create(deviceId, viewer.publicKey);
const replay = new MemoryReplayCache(50_000, 5 * 60_000);

const plain: SignalFn = async (cam, offerSdp) => {
  const { answerSdp, session } = await hub.createViewerSession(cam, offerSdp, { replayCache: true });
  sessions.set(session.id, session);
  return { answerSdp, sessionId: session.id };
};

const wire = <T>(x: T): unknown => JSON.parse(JSON.stringify(x));

const signed: SignalFn = async (cam, offerSdp) => {
  // viewer
  const offer = await createOffer(viewer, { deviceId, camera: cam, sdp: offerSdp }, systemEnv);
  // device
  const v = await verifyOffer(decodeEnvelope(wire(offer.envelope)), { deviceId, now: Date.now(), replay });
  if (!v.ok) throw v.error;
  const decision = acl.authorize(v.body.viewerKey, 'live', Date.now(), v.body.camera);
  if (!decision.allowed) throw decision.error;
  const { answerSdp, session } = await hub.createViewerSession(v.body.camera, v.body.sdp, {
    replayCache: true,
  });
  sessions.set(session.id, session);
  const answer = await createAnswer(device, v.body, answerSdp, systemEnv);
  // viewer
  const a = await verifyAnswer(decodeEnvelope(wire(answer)), {
    pinnedDeviceKey: device.publicKey,
    sid: offer.sid,
    offerDigest: offer.digest,
    now: Date.now(),
  });
  if (!a.ok) throw a.error;
  if (!sameFingerprint(a.body.fingerprint, sdpFingerprint(answerSdp))) throw new Error('fingerprint');
  return { answerSdp: a.body.sdp, sessionId: session.id };
};

let mode: 'plain' | 'signed' = 'plain';
const server = await startPageServer();
const browser = await launchBrowser();
const res: Record<'plain' | 'signed', ViewResult[]> = { plain: [], signed: [] };
try {
  const page = await openViewerPage(
    browser.browser,
    server.url,
    (cam, sdp) => (mode === 'plain' ? plain(cam, sdp) : signed(cam, sdp)),
    async (id) => {
      await sessions.get(id)?.close();
      sessions.delete(id);
    },
  );
  const keeper = hub.source(camera).subscribe(() => undefined);
  await hub.source(camera).waitForKeyframe(10_000);
  await ttffSample(page, camera, 0);
  for (let r = 0; r < rounds; r++) {
    const want = Math.ceil((n * (r + 1)) / rounds);
    const order: ('plain' | 'signed')[] = r % 2 === 0 ? ['plain', 'signed'] : ['signed', 'plain'];
    for (const m of order) {
      mode = m;
      while (res[m].length < want) res[m].push(await ttffSample(page, camera, 700));
    }
    process.stderr.write(
      `  round ${r + 1}/${rounds}: ${res.plain.length} plain, ${res.signed.length} signed\n`,
    );
  }
  keeper.unsubscribe();
} finally {
  await browser.close();
  await server.close();
  await hub.close();
  for (const pid of await childPidsNamed('ffmpeg')) process.kill(pid, 'SIGKILL');
}

const p = summarize('plain (unsigned) signaling', res.plain);
const s = summarize('Hearth signed signaling', res.signed);
const f = (x: number) => x.toFixed(0).padStart(5);
console.log(
  `\nT2 cost of security, ${new Date().toISOString()}, GOP ${values.gop} s, ${rounds} alternating rounds`,
);
console.log('case                          n  TTFF p50  p95 | signal p50  p95');
for (const x of [p, s]) {
  console.log(
    `${x.label.padEnd(28)} ${String(x.n).padStart(3)} ${f(x.ttff.p50)} ${f(x.ttff.p95)} | ${f(x.signal.p50)} ${f(x.signal.p95)}`,
  );
}
console.log(
  `ratio signed/plain: TTFF p50 ${(s.ttff.p50 / p.ttff.p50).toFixed(3)}×, p95 ${(s.ttff.p95 / p.ttff.p95).toFixed(3)}×; signal p50 ${(s.signal.p50 / p.signal.p50).toFixed(3)}×, p95 ${(s.signal.p95 / p.signal.p95).toFixed(3)}× (target ≤ 1.05×)`,
);
