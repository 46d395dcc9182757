// The whole agent on loopback with real media: startAgent + createMediaBackend (ffmpeg testsrc +
// werift) behind the real rendezvous hub (in process, @hearth/server/testing); the "browser" is a werift peer in this process that
// pairs with the protocol's ViewerPairing, signs its offer and verifies the device-signed answer.
// Only 127.0.0.1 candidates are used. Every ffmpeg is killed by PID at the end.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createOffer,
  decodeEnvelope,
  decodeLogEntry,
  deviceIdFromKey,
  encodeId,
  type LogEntry,
  type PairingMessage,
  parseQrPayload,
  systemEnv,
  ViewerChannels,
  ViewerPairing,
  verifyAnswer,
  WebCryptoSigner,
} from '@hearth/protocol';
import { issueTurnCredentials, RelayServer } from '@hearth/relay';
import { startTestHub, type TestHub } from '@hearth/server/testing';
import { RTCPeerConnection, RTCRtpCodecParameters } from 'werift';
import { RendezvousClient } from '../../src/device/rendezvous-client.js';
import {
  type Agent,
  CAMERA_OFFLINE,
  createMediaBackend,
  idHashOf,
  type MediaBackendHandle,
  parseCamerasYaml,
  startAgent,
} from '../../src/index.js';
import { childPidsNamed } from './harness.js';

type Msg = { t: string; [k: string]: unknown };
const ITER = 2;

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

/** A werift "browser": recvonly H.264, counts RTP packets received. `turn`: only relay candidates. */
async function weriftViewer(turn?: { urls: string; username: string; credential: string }) {
  const pc = new RTCPeerConnection({
    ...(turn ? { iceServers: [turn], iceTransportPolicy: 'relay' as const } : {}),
    codecs: {
      audio: [],
      video: [
        new RTCRtpCodecParameters({
          mimeType: 'video/H264',
          clockRate: 90000,
          rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
          parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
        }),
      ],
    },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceFilterCandidatePair: (p) =>
      p.remoteCandidate.host === '127.0.0.1' && p.localCandidate.host === '127.0.0.1',
  });
  const state = { packets: 0 };
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.onTrack.subscribe((track) => {
    track.onReceiveRtp.subscribe(() => {
      state.packets++;
    });
  });
  await pc.setLocalDescription(await pc.createOffer());
  await until('gathering', () => pc.iceGatheringState === 'complete', 5_000).catch(() => undefined);
  const offerSdp = onlyLoopback(pc.localDescription!.sdp);
  if (turn) assert.doesNotMatch(offerSdp, /typ (host|srflx)/, 'a relay-only offer');
  return { pc, state, offerSdp };
}

describe('agent with real media (ffmpeg + werift)', { timeout: 120_000 }, () => {
  let srv: TestHub;
  let dir: string;
  let media: MediaBackendHandle;
  let agent: Agent;
  let owner: { signer: WebCryptoSigner; client: RendezvousClient; inbox: { from: string; m: Msg }[] };
  let deviceKey: Uint8Array;
  let channels: ViewerChannels;
  const relay = new RelayServer();
  let relayCred: { urls: string; username: string; credential: string };
  const peers: RTCPeerConnection[] = [];

  const next = async (pred: (m: Msg) => boolean, ms = 15_000) => {
    const hit = await until(
      'a message',
      () => {
        const i = owner.inbox.findIndex((x) => pred(x.m));
        return i >= 0 ? owner.inbox.splice(i, 1)[0] : undefined;
      },
      ms,
    );
    return hit.m;
  };

  /** Signed offer → verified answer → werift connected; returns the viewer and its sid. */
  const watch = async (camera: string, turn?: Parameters<typeof weriftViewer>[0]) => {
    const v = await weriftViewer(turn);
    peers.push(v.pc);
    const offer = await createOffer(
      owner.signer,
      { deviceId: agent.deviceId, camera, sdp: v.offerSdp },
      systemEnv,
    );
    channels.send(agent.deviceId, { t: 'session/offer', env: offer.envelope });
    const ans = await next((m) => m.t === 'session/answer' || m.t === 'session/refused');
    assert.equal(ans.t, 'session/answer', JSON.stringify(ans));
    const r = await verifyAnswer(decodeEnvelope(ans.env), {
      pinnedDeviceKey: deviceKey,
      sid: offer.sid,
      offerDigest: offer.digest,
      now: Date.now(),
    });
    assert.ok(r.ok, 'the answer verifies against the device key pinned at pairing');
    await v.pc.setRemoteDescription({ type: 'answer', sdp: r.body.sdp });
    return { ...v, sid: offer.sid };
  };

  before(async () => {
    srv = await startTestHub({ serveViewer: false });
    // The built-in relay as the TURN server the rendezvous hands out (REST credentials), on loopback.
    const { udpPort } = await relay.start({
      realm: 'hearth.test',
      authSecret: 'test-secret',
      host: '127.0.0.1',
      udpPort: 0,
      tcpPort: null,
      externalAddress: '127.0.0.1',
      allowLoopbackPeers: true,
      // werift's TURN refresh loop sleeps 5/6 of the lifetime in a timer that close() does not
      // cancel; a short lifetime lets this process exit soon after the test.
      defaultLifetime: 3,
      maxLifetime: 3,
    });
    const cred = issueTurnCredentials({ secret: 'test-secret', id: 'agent', ttlSeconds: 600 });
    relayCred = {
      urls: `turn:127.0.0.1:${udpPort}?transport=udp`,
      ...(({ username, password }) => ({ username, credential: password }))(
        issueTurnCredentials({ secret: 'test-secret', id: 'viewer', ttlSeconds: 600 }),
      ),
    };
    srv.ice = [
      {
        urls: [`turn:127.0.0.1:${udpPort}?transport=udp`],
        username: cred.username,
        credential: cred.password,
      },
    ];
    dir = mkdtempSync(join(tmpdir(), 'hearth-agent-e2e-'));
    media = createMediaBackend({
      cameras: parseCamerasYaml(
        'cameras:\n  demo: testsrc?size=320x240&fps=15&gop=1\n  broken: file:/nonexistent/hearth-test.mp4\n',
      ),
      bindAddress: '127.0.0.1',
      source: { stopDelayMs: 300, backoffInitialMs: 100, backoffMaxMs: 500 },
      cameraDownGraceMs: 1_500,
    });
    const windows: { qrUrl: string }[] = [];
    agent = await startAgent({
      dataDir: join(dir, 'agent'),
      serverUrl: srv.url,
      media,
      pairingIterations: ITER,
      onPairingWindow: (w) => windows.push(w),
    });
    const signer = await WebCryptoSigner.generate();
    const client = new RendezvousClient({
      url: `${srv.url.replace(/^http/, 'ws')}/ws`,
      signer,
      role: 'viewer',
    });
    owner = { signer, client, inbox: [] };
    // Everything but pairing goes through the sealed channel, to the device key pinned at pairing.
    channels = new ViewerChannels({
      signer,
      env: systemEnv,
      pinned: (d) => (d === agent.deviceId ? deviceKey : undefined),
      route: (to, m) => client.sendTo(to, m),
    });
    client.on('recv', (from: string, raw: unknown) => {
      void channels.receive(from, raw).then((r) => {
        if (r.kind === 'pair' || r.kind === 'message') owner.inbox.push({ from, m: r.m as Msg });
      });
    });
    client.start();
    await until('viewer ready', () => client.connected && srv.online().includes(agent.deviceId));
    // Pair by QR.
    const q = parseQrPayload(windows.at(-1)!.qrUrl, { allowInsecure: true });
    const vp = new ViewerPairing({
      deviceId: q.deviceId,
      method: 'qr',
      secret: q.secret,
      signer,
      env: systemEnv,
      iterations: ITER,
      deviceIdMatches: (k) => deviceIdFromKey(k) === q.deviceId,
    });
    let step = await vp.start();
    for (;;) {
      client.sendTo(q.deviceId, step.send[0]);
      step = await vp.receive((await next((m) => m.t.startsWith('pair/'))) as PairingMessage);
      if (step.result) break;
    }
    deviceKey = step.result.deviceKey;
    assert.equal(agent.acl()?.owners[0], encodeId('userKey', signer.publicKey));
  });

  after(async () => {
    for (const pc of peers) await pc.close().catch(() => undefined);
    owner?.client.close();
    await agent?.close();
    await media?.close();
    await srv?.close();
    await relay.close();
    for (const pid of await childPidsNamed('ffmpeg')) process.kill(pid, 'SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a signed offer gets a signed answer and frames flow; werift allocates on the TURN server from ready.ice', async () => {
    const a = await watch('demo');
    await until('connected', () => a.pc.connectionState === 'connected');
    await until('RTP', () => a.state.packets > 20);
    assert.ok(relay.metrics.allocationsCreated >= 1, 'werift allocated on the TURN server from ready.ice');
  });

  it('the access log names the path of each live view: direct on loopback, relayed through TURN', async () => {
    const poll = async (what: string, f: () => Promise<LogEntry[]>, n: number) => {
      const end = Date.now() + 15_000;
      for (;;) {
        const e = await f();
        if (e.length >= n) return e;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(e)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const liveEntries = async (sid: string) => {
      await agent.accessLog.flush();
      const h = await idHashOf(sid);
      const out: LogEntry[] = [];
      for (let i = 0; i < agent.accessLog.size; i++) {
        const e = decodeLogEntry(agent.accessLog.entry(i));
        if ((e.k === 'live/start' || e.k === 'live/stop') && e.sid === h) out.push(e);
      }
      return out;
    };
    const direct = await watch('demo');
    await until('connected', () => direct.pc.connectionState === 'connected');
    await until('RTP', () => direct.state.packets > 5);
    const [d] = await poll('live/start (direct)', () => liveEntries(direct.sid), 1);
    assert.equal(d?.k, 'live/start');
    assert.equal(d && 'path' in d ? d.path : undefined, 'direct');

    // The viewer offers only relay candidates (its own allocation on the built-in relay), so every
    // pair the agent can select has a relay candidate at the far end.
    const relayed = await watch('demo', relayCred);
    await until('connected (relayed)', () => relayed.pc.connectionState === 'connected', 15_000);
    await until('RTP (relayed)', () => relayed.state.packets > 5, 15_000);
    const [r] = await poll('live/start (relayed)', () => liveEntries(relayed.sid), 1);
    assert.equal(r && 'path' in r ? r.path : undefined, 'relayed');
    const sess = media.hub.stats().sessions.find((x) => x.id === relayed.sid);
    assert.ok(sess, 'the relayed session is live');

    channels.send(agent.deviceId, { t: 'session/close', sid: direct.sid });
    channels.send(agent.deviceId, { t: 'session/close', sid: relayed.sid });
    await poll('live/stop (direct)', () => liveEntries(direct.sid), 2);
    const stops = await poll('live/stop (relayed)', () => liveEntries(relayed.sid), 2);
    assert.deepEqual(
      stops.map((e) => [e.k, 'path' in e ? e.path : undefined]),
      [
        ['live/start', 'relayed'],
        ['live/stop', 'relayed'],
      ],
    );
  });

  it('two viewers on one camera share one ffmpeg process', async () => {
    await until('earlier views closed', () => media.stats().viewers.demo === 1 && agent.sessions.size === 1);
    const b = await watch('demo');
    await until('second viewer RTP', () => b.state.packets > 20);
    assert.equal(media.stats().ffmpegProcesses, 1);
    assert.equal((await childPidsNamed('ffmpeg')).length, 1);
    assert.equal(media.stats().viewers.demo, 2);
    assert.equal(agent.sessions.size, 2);
  });

  it('survives an ffmpeg crash: restarted, and the same session keeps receiving frames', async () => {
    const s = media.stats().cameras.find((c) => c.camera === 'demo')!;
    const pid = s.pid!;
    process.kill(pid, 'SIGKILL');
    await until('ffmpeg restarted', () => {
      const c = media.stats().cameras.find((x) => x.camera === 'demo');
      return c?.running && c.pid !== pid && c.restarts >= 1;
    });
    const before = media.stats().sessions.map((x) => x.framesSent);
    await until('frames after the restart', () =>
      media.stats().sessions.every((x, i) => x.framesSent > (before[i] ?? 0) + 5),
    );
    assert.equal(agent.sessions.size, 2, 'no session was closed');
    assert.ok(!owner.inbox.some((x) => x.m.t === 'session/closed'));
    assert.deepEqual(
      media.cameras().find((c) => c.name === 'demo'),
      { name: 'demo', online: true },
    );
  });

  it('a camera that stays down closes its sessions with E_CAMERA_OFFLINE and is listed offline', async () => {
    const v = await weriftViewer();
    peers.push(v.pc);
    const offer = await createOffer(
      owner.signer,
      { deviceId: agent.deviceId, camera: 'broken', sdp: v.offerSdp },
      systemEnv,
    );
    channels.send(agent.deviceId, { t: 'session/offer', env: offer.envelope });
    const ans = await next((m) => m.t === 'session/answer' || m.t === 'session/refused');
    assert.equal(ans.t, 'session/answer');
    const closed = await next((m) => m.t === 'session/closed', 20_000);
    assert.deepEqual(closed, { t: 'session/closed', sid: offer.sid, code: CAMERA_OFFLINE });
    channels.send(agent.deviceId, { t: 'cameras' });
    const cams = await next((m) => m.t === 'cameras');
    assert.deepEqual(cams.list, [
      { name: 'demo', online: true },
      { name: 'broken', online: false },
    ]);
  });
});
