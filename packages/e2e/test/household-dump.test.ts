// What a breached server holds after a household of four used it (threat model S8, issue 10): the
// real agent and the real rendezvous server (startTestHub, with its SQLite store, blob store and
// witness gossip), an owner and three people invited through the real invite flow (owner-signed
// invite, redeem with a proof, approval by an owner-signed grant), each of whom lists the cameras
// and opens a live view; the owner reads and cosigns the access log, which publishes to the
// server's gossip. Then every file under the server's data directory is searched for what would
// draw the household's social graph beyond routing: the invite labels the owner typed, the names the
// invitees gave, the camera name, the invite IDs and secrets, the grants (their signatures, their
// scopes and roles as JSON), the ACL and the log's entries.
//
// Control: the same search over the device's data directory finds the labels, the names, the grant
// signatures and the log's entry kinds (the device must know them), so the search can fail. What
// the server does know is routing: which keys may reach the device (its allow list, in memory).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type Agent,
  loadOrCreateIdentity,
  type MediaBackend,
  type PairingInfo,
  startAgent,
} from '@hearth/agent';
import {
  b64u,
  createOffer,
  decodeInviteLink,
  encodeId,
  grantFromInvite,
  inviteRedeemMessage,
  makeInvite,
  signAclUpdate,
  signGrant,
  systemEnv,
  WebCryptoSigner,
} from '@hearth/protocol';
import { startTestHub, type TestHub } from '@hearth/server/testing';
import { type FetchLike, LogClient, type LogStore, type SavedLog } from '@hearth/viewer';
import {
  connectViewer,
  ITER,
  type Msg,
  pairByCode,
  pins,
  sdp,
  until,
  type Viewer,
} from './support/viewers.js';

const CAMERA = 'zq-cradle-4k2p';
const media: MediaBackend = {
  cameras: () => [{ name: CAMERA, online: true }],
  async createViewerSession() {
    return {
      answerSdp: sdp('answer'),
      session: { close: () => {}, closed: new Promise<string | undefined>(() => {}) },
    };
  },
};

/** The three people: the owner's label for each invite, and the name each gives when redeeming. */
const PEOPLE = [
  { label: 'Grandma-Qx7v', name: 'Nana-Rf2s', role: 'member' as const },
  { label: 'Babysitter-Wm3k', name: 'Sitter-Lt8c', role: 'member' as const },
  { label: 'Visitor-Jp9d', name: 'Guest-Hy4n', role: 'guest' as const },
];

function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push({ path: p, bytes: readFileSync(p) });
  }
  return out;
}

/** Where each marker occurs among `files` (file paths), as UTF-8 and, for key material, as raw bytes. */
function find(files: { path: string; bytes: Buffer }[], markers: [string, Buffer][]): Map<string, string[]> {
  const hits = new Map<string, string[]>();
  for (const [what, m] of markers) {
    const at = files.filter((f) => f.bytes.includes(m)).map((f) => f.path);
    if (at.length) hits.set(what, at);
  }
  return hits;
}

class MemStore implements LogStore {
  readonly m = new Map<string, SavedLog>();
  async load(id: string) {
    return this.m.get(id);
  }
  async save(id: string, s: SavedLog) {
    this.m.set(id, s);
  }
}

const nodeFetch: FetchLike = async (url, init) => {
  const r = await fetch(url, init);
  return { status: r.status, text: () => r.text() };
};

describe('a household of four: what the server holds (S8)', { timeout: 120_000 }, () => {
  let srv: TestHub;
  let root: string;
  let dataDir: string;
  let agent: Agent;
  let window: PairingInfo | undefined;
  const open: Viewer[] = [];
  const markers: [string, Buffer][] = [];

  before(async () => {
    srv = await startTestHub({ serveViewer: false });
    root = mkdtempSync(join(tmpdir(), 'hearth-household-dump-'));
    dataDir = join(root, 'device');
    agent = await startAgent({
      dataDir,
      serverUrl: srv.url,
      media,
      pairingIterations: ITER,
      minBackoffMs: 20,
      maxBackoffMs: 200,
      onPairingWindow: (i) => {
        window = i;
      },
      // Four viewers on one loopback address: lift the per-stranger reply caps, as the invites test does.
      strangerReplies: {
        perStrangerPerSecond: 100,
        perStrangerBurst: 100,
        totalPerSecond: 1000,
        totalBurst: 1000,
      },
    });
    pins.set(agent.deviceId, (await loadOrCreateIdentity(dataDir)).signer.publicKey);
  });

  after(async () => {
    await agent?.close();
    for (const v of open) v.close();
    await srv?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('after invites, approvals, live views and the log, the server holds none of the household', async () => {
    const d = agent.deviceId;
    const ownerSigner = await WebCryptoSigner.generate();
    const owner = await connectViewer(srv.url, ownerSigner);
    open.push(owner);
    await until('pairing window', () => window);
    await pairByCode(owner, agent.pairing()!);
    markers.push(['camera name', Buffer.from(CAMERA)]);

    let ver = 0;
    let serial = 0;
    for (const p of PEOPLE) {
      // The owner makes the invite and registers it on the device.
      const tmpl =
        p.role === 'guest'
          ? { role: 'guest' as const, scopes: ['live' as const], days: 1, floor: 'grant' as const }
          : { role: 'member' as const, scopes: ['live' as const, 'clips' as const, 'snapshots' as const] };
      const made = await makeInvite(
        {
          owner: ownerSigner,
          deviceId: d,
          deviceKey: pins.get(d)!,
          origin: srv.url,
          exp: Date.now() + 86_400_000,
          tmpl,
          label: p.label,
        },
        systemEnv,
      );
      owner.send(d, { t: 'invite/create', env: made.env });
      assert.equal((await owner.next((m) => m.t === 'invite/ok' || m.t === 'invite/error')).t, 'invite/ok');
      const link = decodeInviteLink(made.link);
      markers.push(
        [`invite label ${p.label}`, Buffer.from(p.label)],
        [`invitee name ${p.name}`, Buffer.from(p.name)],
        [`invite id of ${p.label}`, Buffer.from(made.id)],
        [`invite secret of ${p.label} (b64u)`, Buffer.from(b64u(link.secret))],
        [`invite secret of ${p.label} (raw)`, Buffer.from(link.secret)],
      );
      // The invitee opens the link: pins the device key from it and redeems.
      const v = await connectViewer(srv.url);
      open.push(v);
      v.send(d, await inviteRedeemMessage(link, v.signer.publicKey, p.name));
      assert.equal(
        (await v.next((m) => m.t === 'invite/pending' || m.t === 'invite/error')).t,
        'invite/pending',
      );
      // The owner hears the request and approves it with a signed grant.
      const req = (await owner.next((m) => m.t === 'invite/request' && m.sub === v.id)) as Msg & {
        sub: string;
      };
      const body = grantFromInvite(tmpl, {
        d,
        sub: req.sub,
        serial: ++serial,
        now: Date.now(),
        label: p.label,
      });
      const grant = await signGrant(ownerSigner, body, systemEnv);
      markers.push([`grant signature of ${p.label}`, Buffer.from(String(grant.s))]);
      const update = await signAclUpdate(ownerSigner, { d, ver: ++ver, add: [grant], revoke: [] }, systemEnv);
      owner.send(d, { t: 'acl/update', env: update });
      assert.equal((await owner.next((m) => m.t === 'acl/ok' || m.t === 'acl/error')).t, 'acl/ok');
      await v.next((m) => m.t === 'invite/approved');
      // The new member lists the cameras and opens a live view.
      v.send(d, { t: 'cameras' });
      const list = (await v.next((m) => m.t === 'cameras' || m.t === 'cameras/refused')) as Msg & {
        list?: { name: string }[];
      };
      assert.deepEqual(
        list.list?.map((c) => c.name),
        [CAMERA],
      );
      const o = await createOffer(v.signer, { deviceId: d, camera: CAMERA, sdp: sdp('offer') }, systemEnv);
      v.send(d, { t: 'session/offer', env: o.envelope });
      assert.equal(
        (await v.next((m) => m.t === 'session/answer' || m.t === 'session/refused')).t,
        'session/answer',
      );
      v.send(d, { t: 'session/close', sid: o.sid });
    }
    await until('sessions closed', () => agent.sessions.size === 0);
    await agent.accessLog.flush();

    // The owner reads the log through the sealed channel, cosigns it and publishes to the gossip.
    const logs = new LogClient({
      signer: ownerSigner,
      keyText: owner.id,
      send: async (id, m) => {
        owner.send(id, m);
        return owner.next((x) => x.t === 'log/update' || x.t === 'log/error');
      },
      server: srv.url,
      fetch: nodeFetch,
      store: new MemStore(),
      device: async (id) => ({
        deviceId: id,
        deviceKey: encodeId('deviceKey', pins.get(id)!),
        witnesses: [owner.id],
      }),
    });
    const r = await logs.refresh(d);
    assert.equal(r.verdict, 'verified');
    assert.ok(r.published, 'the cosigned checkpoint reached the server');
    const kinds = new Set(r.entries.map((e) => e.entry.k));
    for (const k of ['pair/attempt', 'acl/invite', 'acl/request', 'acl/grant', 'live/start', 'live/stop'])
      assert.ok(kinds.has(k as never), `the log has ${k}`);
    markers.push(
      ['log entry kind acl/grant', Buffer.from('"acl/grant"')],
      ['log entry kind live/start', Buffer.from('"live/start"')],
      ['grant scopes as JSON', Buffer.from('"scopes"')],
      ['a role as JSON', Buffer.from('"role":"member"')],
    );

    // Dump the server.
    await agent.close();
    const server = filesUnder(srv.dataDir);
    assert.ok(server.length > 0, 'the server wrote its data directory');
    const leaked = find(server, markers);
    assert.deepEqual(
      Object.fromEntries(leaked),
      {},
      'the server data directory holds something of the household beyond routing',
    );

    // Control: the device knows all of it (so the search would find it).
    const device = find(filesUnder(dataDir), markers);
    for (const what of [
      ...PEOPLE.flatMap((p) => [
        `invite label ${p.label}`,
        `invitee name ${p.name}`,
        `grant signature of ${p.label}`,
      ]),
      'log entry kind acl/grant',
      'log entry kind live/start',
      'grant scopes as JSON',
    ])
      assert.ok(device.has(what), `control: the device's files hold the ${what}`);
  });
});
