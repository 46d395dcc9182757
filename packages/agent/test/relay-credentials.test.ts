// Review R6 with the real agent and the real server (its built-in relay on): TURN credentials go
// only to the two ends of a session the device answers. The owner's `relay/ask` and its offer get
// them (the device's answer is made with its own); a stranger's `relay/ask` gets nothing, and no
// frame any stranger receives ever carries a TURN credential.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createOffer, type IceServer, systemEnv } from '@hearth/protocol';
import { startTestHub, type TestHub } from '@hearth/server/testing';
import { loadOrCreateIdentity } from '../src/device/identity.js';
import type { MediaBackend } from '../src/device/sessions.js';
import { type Agent, type PairingInfo, startAgent } from '../src/index.js';
import { connectViewer, fakeMedia, ITER, pairViewer, pins, sdp, type TestViewer, until } from './world.js';

const turn = (ice: IceServer[]) => ice.filter((s) => s.username !== undefined);

describe('relay credentials through the device (review R6)', () => {
  let srv: TestHub;
  let dataDir: string;
  let agent: Agent;
  let owner: TestViewer;
  let stranger: TestViewer;
  const fm = fakeMedia();
  /** The ICE servers each answer was made with. */
  const answeredWith: IceServer[][] = [];
  const media: MediaBackend = {
    cameras: fm.media.cameras,
    createViewerSession: (camera, offerSdp, o) => {
      answeredWith.push(o.iceServers);
      return fm.media.createViewerSession(camera, offerSdp, o);
    },
  };
  /** Every relay frame each viewer got. */
  const got = new Map<string, IceServer[][]>();
  const watchRelay = (v: TestViewer) => {
    got.set(v.id, []);
    v.client.core.on('relay', (f) => got.get(v.id)!.push(f.ice));
  };

  before(async () => {
    srv = await startTestHub({ serveViewer: false, relay: true });
    dataDir = join(mkdtempSync(join(tmpdir(), 'hearth-agent-relay-')), 'data');
    const windows: PairingInfo[] = [];
    agent = await startAgent({
      dataDir,
      serverUrl: srv.url,
      media,
      pairingIterations: ITER,
      onPairingWindow: (i) => windows.push(i),
    });
    pins.set(agent.deviceId, (await loadOrCreateIdentity(dataDir)).signer.publicKey);
    owner = await connectViewer(srv.url);
    stranger = await connectViewer(srv.url);
    watchRelay(owner);
    watchRelay(stranger);
    await until('pairing window', () => windows.length > 0);
    await pairViewer(owner, windows.at(-1)!, 'qr');
    // The device's allow list (its grant holders) reaches the hub after pairing.
    await until('allow list', () =>
      srv.frames.some((f) => f.frame.t === 'allow' && (f.frame.k as string[]).includes(owner.id)),
    );
  });

  after(async () => {
    await agent?.close();
    owner?.client.close();
    stranger?.client.close();
    await srv?.close();
    rmSync(join(dataDir, '..'), { recursive: true, force: true });
  });

  it("the owner's relay/ask gets it TURN credentials from the server; it held none before", async () => {
    assert.equal(turn(owner.client.ice).length, 0, 'ready gives no TURN credentials');
    owner.send(agent.deviceId, { t: 'relay/ask' });
    await until('relay frame', () => got.get(owner.id)!.length > 0);
    const creds = turn(owner.client.ice);
    assert.ok(creds.length > 0, 'the client uses them now');
    assert.match(creds[0]!.username!, /^\d+:[A-Za-z0-9_-]{16}$/);
    assert.ok(owner.client.core.relayFresh());
    const asked = srv.frames.filter((f) => f.frame.t === 'relay' && f.frame.v === owner.id);
    assert.equal(asked.length, 1, 'the device asked once, for the owner');
  });

  it("an offer is answered with the device's own relay credentials (asked before answering)", async () => {
    const offer = await createOffer(
      owner.signer,
      { deviceId: agent.deviceId, camera: 'demo', sdp: sdp('offer') },
      systemEnv,
    );
    owner.send(agent.deviceId, { t: 'session/offer', env: offer.envelope });
    await owner.next((m) => m.t === 'session/answer');
    const ice = answeredWith.at(-1)!;
    const mine = turn(ice);
    assert.ok(mine.length > 0, `the answer's ICE servers: ${JSON.stringify(ice)}`);
    const ownerNames = got.get(owner.id)!.flatMap((i) => turn(i).map((s) => s.username));
    assert.ok(!ownerNames.includes(mine[0]!.username), "the device's username is its own");
    owner.send(agent.deviceId, { t: 'session/close', sid: offer.sid });
    await until('closed', () => agent.sessions.size === 0);
  });

  it("a stranger's relay/ask is dropped: no request, no reply, no credentials", async () => {
    const before = srv.frames.length;
    for (let i = 0; i < 5; i++) stranger.send(agent.deviceId, { t: 'relay/ask' });
    // The device opens the channel (a handshake reply) but neither asks the hub nor answers.
    await until('the asks reached the device', () =>
      srv.frames.slice(before).some((f) => f.frame.t === 'send' && f.from === stranger.id),
    );
    await new Promise((r) => setTimeout(r, 500));
    const asked = srv.frames.slice(before).filter((f) => f.frame.t === 'relay');
    assert.deepEqual(asked, []);
    assert.equal(got.get(stranger.id)!.length, 0);
    assert.equal(turn(stranger.client.ice).length, 0);
    assert.ok(!stranger.inbox.some((x) => x.m.t !== 'chan/accept' && x.from === agent.deviceId));
  });
});
