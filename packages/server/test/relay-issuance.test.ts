/**
 * Review R6: TURN credentials only within a session a device answered.
 *
 * Before, every authenticated key got TURN credentials in `ready`; keys are free, so about 500
 * throwaway keys filled the relay's 10 000 allocations. Now `ready` carries STUN only, and a device
 * asks (`relay {v}`) for a viewer on its allow list that messaged it lately; then the server mints
 * credentials for both. These tests run the real server with its real built-in relay.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { issueTurnCredentials, verifyTurnCredentials } from '@hearth/relay';
import { TestTurnClient } from '../../relay/test/helpers/turn-client.js';
import type { HubTestHooks } from '../src/hub.js';
import {
  type Client,
  connect,
  device,
  type Frame,
  type Identity,
  tempDir,
  testServer,
  viewer,
} from './helpers.js';

type Ice = { urls: string[]; username?: string; credential?: string };

const RELAY = { udpPort: 0, tcpPort: 0, allowLoopbackPeers: true };
const EXTERNAL = { urls: ['turn:turn.example.org:3478'], secret: 'coturn-shared-secret-0123456789' };

/** Every TURN entry (with a username) in any frame a client received. */
function turnCreds(c: Client): Ice[] {
  const out: Ice[] = [];
  for (const f of c.frames) {
    const ice = (f.t === 'ready' || f.t === 'relay' ? f.ice : undefined) as Ice[] | undefined;
    for (const e of ice ?? []) if (e.username) out.push(e);
  }
  return out;
}

/** A device with `allow` = [v...]: resolves once the allow list is in (a watch by v sees it). */
async function allowing(
  srv: { wsUrl: string },
  d: Identity,
  viewers: Identity[],
): Promise<{ c: Client; ready: Frame }> {
  const cd = await connect(srv.wsUrl, d);
  cd.c.send({ t: 'allow', k: viewers.map((v) => v.id) });
  return cd;
}

async function start(dir: string, hooks?: HubTestHooks, limits: Record<string, number> = {}) {
  return testServer(
    dir,
    { relay: RELAY, turnServers: [EXTERNAL], limits: { maxConnectionsPerAddress: 1000, ...limits } },
    hooks,
  );
}

describe('relay credentials (review R6)', () => {
  const tmp = tempDir();
  let srv: Awaited<ReturnType<typeof testServer>>;
  before(async () => {
    srv = await start(tmp.dir);
  });
  after(async () => {
    await srv.close();
    tmp.rm();
  });

  it('ready carries STUN only, to devices and viewers alike', async () => {
    for (const who of [await viewer(), await device()]) {
      const { c, ready } = await connect(srv.wsUrl, who);
      assert.deepEqual(ready.ice, [{ urls: [`stun:127.0.0.1:${srv.relay!.udpPort}`] }]);
      c.close();
    }
  });

  it('a device answering a granted viewer gets credentials for both, each its own, that the relay accepts', async () => {
    const d = await device();
    const v = await viewer();
    const cv = await connect(srv.wsUrl, v);
    const cd = await allowing(srv, d, [v]);
    cv.c.send({ t: 'send', to: d.id, m: { t: 'relay/ask' } });
    await cd.c.next('recv');
    cd.c.send({ t: 'relay', v: v.id, ref: 'r1' });
    const fd = await cd.c.next('relay');
    const fv = await cv.c.next('relay');
    assert.equal(fd.peer, v.id);
    assert.equal(fd.ref, 'r1');
    assert.equal(fv.peer, d.id);
    const [turnD, extD] = fd.ice as Ice[];
    const [turnV, extV] = fv.ice as Ice[];
    assert.deepEqual(turnV!.urls, [
      `turn:127.0.0.1:${srv.relay!.udpPort}?transport=udp`,
      `turn:127.0.0.1:${srv.relay!.tcpPort}?transport=tcp`,
    ]);
    // Random per grant: no long-term ID in what travels in clear, and not linkable across the two.
    for (const t of [turnD!, turnV!]) {
      assert.match(t.username!, /^\d+:[A-Za-z0-9_-]{16}$/);
      assert.ok(!/huk_|hdid_/.test(t.username!));
      assert.ok(!t.username!.includes(v.id.slice(4, 20)) && !t.username!.includes(d.id.slice(5, 20)));
    }
    assert.notEqual(turnD!.username, turnV!.username);
    const exp = Number(turnV!.username!.split(':')[0]);
    const ttl = exp - Date.now() / 1000;
    assert.ok(ttl > 500 && ttl <= 600, `ttl ${ttl}`);
    assert.equal(fv.until, exp * 1000);
    const secret = readFileSync(join(tmp.dir, 'turn.secret'), 'utf8').trim();
    assert.equal(statSync(join(tmp.dir, 'turn.secret')).mode & 0o777, 0o600);
    assert.equal(verifyTurnCredentials(secret, turnV!.username!, { password: turnV!.credential! }).ok, true);
    // External TURN (coturn use-auth-secret) gets the same format under its own secret.
    assert.deepEqual(extV!.urls, EXTERNAL.urls);
    assert.equal(
      verifyTurnCredentials(EXTERNAL.secret, extV!.username!, { password: extV!.credential! }).ok,
      true,
    );
    assert.equal(verifyTurnCredentials(secret, extD!.username!, { password: extD!.credential! }).ok, false);
    // The running relay allocates with them over UDP and TCP; a wrong password gets 401.
    for (const [t, cr] of [
      [await TestTurnClient.udp(srv.relay!.udpPort), turnV!],
      [await TestTurnClient.tcp(srv.relay!.tcpPort), turnD!],
    ] as const) {
      try {
        assert.equal((await t.allocate(cr.username!, cr.credential!)).code, 0);
      } finally {
        t.close();
      }
    }
    const wrong = await TestTurnClient.udp(srv.relay!.udpPort);
    assert.equal((await wrong.allocate(turnV!.username!, 'not-the-password')).code, 401);
    wrong.close();
    cv.c.close();
    cd.c.close();
  });

  it('refused: a viewer asking, a viewer not on the allow list, one that sent nothing, and past the rate', async () => {
    const d = await device();
    const granted = await viewer();
    const stranger = await viewer();
    const silent = await viewer();
    const cg = await connect(srv.wsUrl, granted);
    const cs = await connect(srv.wsUrl, stranger);
    const cq = await connect(srv.wsUrl, silent);
    const cd = await allowing(srv, d, [granted, silent]);
    // A viewer cannot ask the server itself.
    cs.c.send({ t: 'relay', v: stranger.id, ref: 'self' });
    assert.equal((await cs.c.next('error')).code, 'E_BAD_STATE');
    // The stranger messaged the device, but is not on its allow list.
    cs.c.send({ t: 'send', to: d.id, m: { t: 'relay/ask' } });
    await cd.c.next('recv', (f) => f.from === stranger.id);
    cd.c.send({ t: 'relay', v: stranger.id, ref: 's' });
    assert.equal((await cd.c.next('error', (f) => f.ref === 's')).code, 'E_NO_SESSION');
    // On the list but never messaged the device: no session to relay.
    cd.c.send({ t: 'relay', v: silent.id, ref: 'q' });
    assert.equal((await cd.c.next('error', (f) => f.ref === 'q')).code, 'E_NO_SESSION');
    // Granted and in a session: at most the burst (10) at once, then E_RATE_LIMITED.
    cg.c.send({ t: 'send', to: d.id, m: { t: 'relay/ask' } });
    await cd.c.next('recv', (f) => f.from === granted.id);
    for (let i = 0; i < 14; i++) cd.c.send({ t: 'relay', v: granted.id, ref: `g${i}` });
    const results = await Promise.all(
      Array.from({ length: 14 }, (_, i) =>
        Promise.race([
          cd.c.next('relay', (f) => f.ref === `g${i}`).then(() => 'ok'),
          cd.c.next('error', (f) => f.ref === `g${i}`).then((f) => String(f.code)),
        ]),
      ),
    );
    assert.equal(results.filter((r) => r === 'ok').length, 10, results.join(','));
    assert.ok(
      results.slice(10).every((r) => r === 'E_RATE_LIMITED'),
      results.join(','),
    );
    // Nobody but the granted viewer and the device ever held a TURN credential.
    assert.equal(turnCreds(cs.c).length, 0);
    assert.equal(turnCreds(cq.c).length, 0);
    for (const c of [cg, cs, cq, cd]) c.c.close();
  });
});

/**
 * An on-path capture: a loopback UDP proxy between TURN clients and the relay that records every
 * datagram both ways (Allocate with its 401 dance, CreatePermission, ChannelBind, Send, ChannelData,
 * Refresh), as a network observer would see them.
 */
class CapturingProxy {
  readonly seen: Buffer[] = [];
  private readonly up = new Map<number, Socket>();
  private constructor(
    private readonly front: Socket,
    private readonly target: number,
  ) {
    front.on('message', (b, ri) => {
      this.seen.push(Buffer.from(b));
      let u = this.up.get(ri.port);
      if (!u) {
        const s = createSocket('udp4');
        s.on('message', (r) => {
          this.seen.push(Buffer.from(r));
          front.send(r, ri.port, '127.0.0.1');
        });
        this.up.set(ri.port, s);
        u = s;
      }
      u.send(b, this.target, '127.0.0.1');
    });
  }
  static async start(target: number): Promise<CapturingProxy> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    return new CapturingProxy(s, target);
  }
  get port(): number {
    return this.front.address().port;
  }
  close(): void {
    this.front.close();
    for (const u of this.up.values()) u.close();
  }
}

/** Long-term IDs (their prefixes, or any 12 chars of a key's body) found in a capture. */
function longTermIds(seen: readonly Buffer[], ids: readonly string[]): string[] {
  const all = Buffer.concat(seen).toString('latin1');
  const found: string[] = [];
  for (const p of ['huk_', 'hdid_']) if (all.includes(p)) found.push(p);
  for (const id of ids) {
    const body = id.slice(id.indexOf('_') + 1);
    for (let i = 0; i + 12 <= body.length; i += 6)
      if (all.includes(body.slice(i, i + 12))) {
        found.push(id);
        break;
      }
  }
  return found;
}

/** Both ends allocate through `proxy`, permit each other, and exchange data both ways. */
async function relayedExchange(proxy: CapturingProxy, a: Ice, b: Ice): Promise<void> {
  const ta = await TestTurnClient.udp(proxy.port);
  const tb = await TestTurnClient.udp(proxy.port);
  try {
    const ra = await ta.allocate(a.username!, a.credential!);
    const rb = await tb.allocate(b.username!, b.credential!);
    assert.equal(ra.code, 0);
    assert.equal(rb.code, 0);
    const pa = ta.relayed(ra);
    const pb = tb.relayed(rb);
    assert.equal((await ta.createPermission(pb)).code, 0);
    assert.equal((await tb.createPermission(pa)).code, 0);
    assert.equal((await ta.channelBind(0x4000, pb)).code, 0);
    ta.sendChannelData(0x4000, Buffer.from('media one way'));
    assert.ok((await tb.nextPacket()).includes(Buffer.from('media one way')));
    tb.sendIndication(pa, Buffer.from('and back'));
    assert.ok((await ta.nextPacket()).includes(Buffer.from('and back')));
    assert.equal((await ta.refresh(600)).code, 0);
  } finally {
    ta.close();
    tb.close();
  }
}

describe('a capture of a relayed session (review R6)', () => {
  const tmp = tempDir();
  let srv: Awaited<ReturnType<typeof testServer>>;
  before(async () => {
    srv = await start(tmp.dir);
  });
  after(async () => {
    await srv.close();
    tmp.rm();
  });

  it('shows no long-term ID of the viewer or the device', async () => {
    const d = await device();
    const v = await viewer();
    const cv = await connect(srv.wsUrl, v);
    const cd = await allowing(srv, d, [v]);
    cv.c.send({ t: 'send', to: d.id, m: { t: 'relay/ask' } });
    await cd.c.next('recv');
    cd.c.send({ t: 'relay', v: v.id });
    const [turnD] = (await cd.c.next('relay')).ice as Ice[];
    const [turnV] = (await cv.c.next('relay')).ice as Ice[];
    const proxy = await CapturingProxy.start(srv.relay!.udpPort);
    try {
      await relayedExchange(proxy, turnV!, turnD!);
      assert.ok(proxy.seen.length >= 16, `${proxy.seen.length} datagrams captured`);
      assert.deepEqual(longTermIds(proxy.seen, [v.id, d.id]), []);
    } finally {
      proxy.close();
      cv.c.close();
      cd.c.close();
    }
  });

  it('control: with the pre-R6 username (<expiry>:<key>) the same capture names both keys', async () => {
    const d = await device();
    const v = await viewer();
    const secret = readFileSync(join(tmp.dir, 'turn.secret'), 'utf8').trim();
    const old = (id: string): Ice => {
      const c = issueTurnCredentials({ secret, id, ttlSeconds: 600 });
      return { urls: [], username: c.username, credential: c.password };
    };
    const proxy = await CapturingProxy.start(srv.relay!.udpPort);
    try {
      await relayedExchange(proxy, old(v.id), old(d.id));
      assert.deepEqual(longTermIds(proxy.seen, [v.id, d.id]).sort(), ['hdid_', 'huk_', d.id, v.id].sort());
    } finally {
      proxy.close();
    }
  });
});

/** 500 throwaway keys that no device answered (the review's attack), against `hooks`. */
async function flood(dir: string, hooks?: HubTestHooks) {
  const srv = await start(dir, hooks);
  try {
    // A real device that allows only its owner; the throwaway keys message it, as they may.
    const owner = await viewer();
    const d = await device();
    const cd = await allowing(srv, d, [owner]);
    const keys = await Promise.all(Array.from({ length: 500 }, () => viewer()));
    const conns: Client[] = [];
    for (let i = 0; i < keys.length; i += 50) {
      const batch = await Promise.all(keys.slice(i, i + 50).map((k) => connect(srv.wsUrl, k)));
      for (const b of batch) {
        b.c.send({ t: 'send', to: d.id, m: { t: 'relay/ask' } });
        b.c.send({ t: 'relay', v: keys[0]!.id });
        conns.push(b.c);
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    const creds = conns.flatMap(turnCreds).filter((e) => e.urls.some((u) => u.includes('127.0.0.1')));
    // What those credentials buy at the relay (one address: its per-IP cap applies too).
    let allocated = 0;
    for (const cr of creds.slice(0, 40)) {
      const t = await TestTurnClient.udp(srv.relay!.udpPort);
      if ((await t.allocate(cr.username!, cr.credential!)).code === 0) allocated++;
      t.close();
    }
    for (const c of conns) c.close();
    cd.c.close();
    return { withCreds: new Set(creds.map((e) => e.username)).size, allocated };
  } finally {
    await srv.close();
  }
}

describe('500 keys that no device answered (review R6)', () => {
  it('get no TURN credential, so no allocation', async () => {
    const tmp = tempDir();
    try {
      const r = await flood(tmp.dir);
      console.log(`500 throwaway keys: ${r.withCreds} got TURN credentials, ${r.allocated} allocations`);
      assert.equal(r.withCreds, 0);
      assert.equal(r.allocated, 0);
    } finally {
      tmp.rm();
    }
  });

  it('control: with credentials in every ready (before R6), each key gets one and allocates', async () => {
    const tmp = tempDir();
    try {
      const r = await flood(tmp.dir, { unguarded: { relay: true } });
      console.log(`control: ${r.withCreds} keys got TURN credentials, ${r.allocated} of 40 tried allocated`);
      assert.equal(r.withCreds, 500);
      assert.ok(r.allocated >= 30, `${r.allocated} allocations`);
    } finally {
      tmp.rm();
    }
  });
});
