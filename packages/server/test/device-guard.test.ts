/**
 * Security review R3, R5(b) and R5(d), against the real server over real WebSockets:
 * - R3: strangers who know only a device's ID flood it, each under its own per-connection limit,
 *   and the device answers every message (as the agent did). The hub caps what reaches the device
 *   per sender and for strangers in total, and pays the device's replies with the messages that
 *   provoked them: the device stays connected, and its owner's messages still get through.
 *   Control: with those defences off, the same flood gets the device closed with 4008.
 * - R5(b): an authenticated connection that sends nothing is closed once idle; one that pings is
 *   not. Control: with a long idle limit the silent one stays.
 * - R5(d): presence follows the device's allow list: a member dropped from it sees the device go,
 *   and no more comings and goings; a stranger never sees it online. Control: presence to all.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { CLOSE } from '../src/index.js';
import { type Client, connect, device, type Frame, sleep, tempDir, testServer, viewer } from './helpers.js';

const LIMITS = { messagesPerSecond: 20, messageBurst: 40 };

/** A device that answers every message it gets, as the agent did before review R3. */
function echoDevice(c: Client) {
  c.ws.on('message', (data) => {
    const f = JSON.parse(data.toString()) as Frame;
    if (f.t === 'recv' && c.ws.readyState === c.ws.OPEN)
      c.send({ t: 'send', to: f.from, m: { t: 'cameras/refused', code: 'E_NO_GRANT' } });
  });
}

/**
 * Strangers flood the device for `ms`, each at `rate` messages a second (under LIMITS), while the
 * owner sends one message a second. Returns what the device and the owner saw.
 */
async function flood(unguarded: boolean) {
  const tmp = tempDir();
  const srv = await testServer(
    tmp.dir,
    { limits: LIMITS },
    unguarded ? { unguarded: { inbound: true } } : {},
  );
  try {
    const d = await device();
    const owner = await viewer();
    const dc = await connect(srv.wsUrl, d);
    echoDevice(dc.c);
    dc.c.send({ t: 'allow', k: [owner.id] });
    const oc = await connect(srv.wsUrl, owner);
    const strangers = await Promise.all(
      Array.from({ length: 4 }, async () => (await connect(srv.wsUrl, await viewer())).c),
    );
    const rate = 15; // each: under its own 20/s
    const timers = strangers.map((s) =>
      setInterval(() => {
        if (s.ws.readyState === s.ws.OPEN) s.send({ t: 'send', to: d.id, m: { t: 'cameras' } });
      }, 1000 / rate),
    );
    let ownerSent = 0;
    const ownerTimer = setInterval(() => {
      ownerSent++;
      oc.c.send({ t: 'send', to: d.id, m: { t: 'cameras', n: ownerSent } });
    }, 250);
    await sleep(4000);
    for (const t of [...timers, ownerTimer]) clearInterval(t);
    await sleep(300);
    const strangerClosed = strangers.filter((s) => s.closeCode !== undefined).length;
    const refused = strangers.reduce(
      (n, s) => n + s.frames.filter((f) => f.t === 'error' && f.code === 'E_RATE_LIMITED').length,
      0,
    );
    const delivered = dc.c.frames.filter((f) => f.t === 'recv').length;
    const ownerDelivered = dc.c.frames.filter((f) => f.t === 'recv' && f.from === owner.id).length;
    const ownerAnswers = oc.c.frames.filter((f) => f.t === 'recv').length;
    const deviceClose = dc.c.closeCode;
    for (const s of strangers) s.close();
    oc.c.close();
    dc.c.close();
    return { deviceClose, strangerClosed, refused, delivered, ownerSent, ownerDelivered, ownerAnswers };
  } finally {
    await srv.close();
    tmp.rm();
  }
}

describe('the hub protects a device from what others send it (review R3)', () => {
  it('a flood from four strangers under their own limits: the device stays, the owner gets through', async () => {
    const r = await flood(false);
    console.log(
      `R3 guarded: ${r.delivered} messages reached the device, ${r.refused} refused to strangers (E_RATE_LIMITED), owner ${r.ownerDelivered}/${r.ownerSent} delivered and ${r.ownerAnswers} answered`,
    );
    assert.equal(r.deviceClose, undefined, 'the device connection is still open');
    assert.equal(r.strangerClosed, 0, 'strangers under their own limit are throttled, not closed');
    assert.ok(r.refused > 0, 'the excess is refused to the strangers');
    assert.equal(r.ownerDelivered, r.ownerSent, 'every owner message reached the device');
    assert.equal(r.ownerAnswers, r.ownerSent, 'and every one was answered');
  });

  it('control: with the caps and the reply credit off, the same flood closes the device (4008)', async () => {
    const r = await flood(true);
    console.log(`R3 control: device closed with ${r.deviceClose} after ${r.delivered} messages`);
    assert.equal(r.deviceClose, CLOSE.RATE_LIMITED);
  });
});

describe('idle connections are closed (review R5b)', () => {
  const tmp = tempDir();
  after(() => tmp.rm());
  async function silentAndPinging(idleTimeoutMs: number) {
    const srv = await testServer(tmp.dir, { limits: { idleTimeoutMs } });
    try {
      const silent = await connect(srv.wsUrl, await viewer());
      const alive = await connect(srv.wsUrl, await device());
      const t = setInterval(() => alive.c.send({ t: 'ping' }), 100);
      await sleep(1200);
      clearInterval(t);
      const r = { silent: silent.c.closeCode, alive: alive.c.closeCode };
      silent.c.close();
      alive.c.close();
      return r;
    } finally {
      await srv.close();
    }
  }

  it('a connection silent for longer than limits.idleTimeoutMs is closed (4001); one that pings stays', async () => {
    const r = await silentAndPinging(300);
    assert.equal(r.silent, CLOSE.AUTH_TIMEOUT);
    assert.equal(r.alive, undefined);
  });

  it('control: with a long idle limit the silent connection stays open', async () => {
    const r = await silentAndPinging(60_000);
    assert.equal(r.silent, undefined);
  });
});

describe('presence follows the device allow list (review R5d)', () => {
  async function revoked(unguarded: boolean) {
    const tmp = tempDir();
    const srv = await testServer(tmp.dir, {}, unguarded ? { unguarded: { presence: true } } : {});
    try {
      const d = await device();
      const owner = await viewer();
      const member = await viewer();
      const stranger = await viewer();
      const [oc, mc, sc] = await Promise.all([owner, member, stranger].map((w) => connect(srv.wsUrl, w)));
      let dc = await connect(srv.wsUrl, d);
      dc.c.send({ t: 'allow', k: [owner.id, member.id] });
      await sleep(50);
      for (const x of [oc, mc, sc]) x!.c.send({ t: 'watch', d: [d.id] });
      await sleep(100);
      const before = { member: mc!.c.frames.filter((f) => f.t === 'presence').at(-1)?.online };
      // The owner revokes the member: the device sends its new list.
      dc.c.send({ t: 'allow', k: [owner.id] });
      await sleep(100);
      // The device goes and comes back.
      dc.c.close();
      await dc.c.closed;
      await sleep(50);
      dc = await connect(srv.wsUrl, d);
      await sleep(100);
      const seen = (c: Client) => c.frames.filter((f) => f.t === 'presence').map((f) => f.online);
      const r = { before, owner: seen(oc!.c), member: seen(mc!.c), stranger: seen(sc!.c) };
      for (const x of [oc, mc, sc, dc]) x!.c.close();
      return r;
    } finally {
      await srv.close();
      tmp.rm();
    }
  }

  it('a member dropped from the list sees the device go, then nothing; a stranger only ever sees it offline', async () => {
    const r = await revoked(false);
    assert.equal(r.before.member, true, 'the member saw it online while on the list');
    assert.deepEqual(r.member, [true, false], 'after the revocation: offline, then no events');
    assert.deepEqual(r.stranger, [false]);
    assert.deepEqual(r.owner, [true, false, true], 'the owner sees it go and come back');
  });

  it('control: with presence sent to every watcher, the revoked member watches it come back', async () => {
    const r = await revoked(true);
    assert.ok(r.member.filter((x) => x).length >= 2, `member saw ${JSON.stringify(r.member)}`);
    assert.ok(r.stranger.includes(true));
  });
});
