/**
 * The rendezvous client core against a scripted fake socket and hand-driven timers: the handshake,
 * what is (not) acted on before `ready`, bad frames, the one retry schedule, the handshake timeout,
 * the silent-server heartbeat, stop, nudge and stale sockets. No real time passes: every timer is
 * fired by the test. (Against the real server Hub: packages/server/test/rendezvous-core.test.ts.)
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { fixedEnv } from '../src/crypto/env.js';
import { WebCryptoSigner } from '../src/crypto/primitives.js';
import { deviceIdFromKey, encodeId } from '../src/ids.js';
import { decodeClientFrame, newChallenge, verifyAuth } from '../src/rendezvous.js';
import {
  CLIENT_CLOSE,
  RendezvousCore,
  type RendezvousCoreEvents,
  type RendezvousSocketEvents,
  type RendezvousTimers,
} from '../src/rendezvous-client.js';
import { backoffDelay } from '../src/retry.js';

const SRV = encodeId('serverKey', new Uint8Array(32).fill(7));

/** One scripted connection: what the core sent, and levers to play the server. */
class FakeSocket {
  sent: string[] = [];
  closedWith: { code: number; reason: string } | undefined;
  open = true;
  constructor(readonly ev: RendezvousSocketEvents) {}
  send(text: string): boolean {
    if (!this.open) return false;
    this.sent.push(text);
    return true;
  }
  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
    this.open = false;
  }
  frames(): { t: string; [k: string]: unknown }[] {
    return this.sent.map((s) => decodeClientFrame(s) as { t: string });
  }
  server(f: unknown): void {
    this.ev.text(typeof f === 'string' ? f : JSON.stringify(f));
  }
}

class FakeTimers implements RendezvousTimers {
  private seq = 0;
  pending = new Map<number, { fn: () => void; ms: number; background: boolean }>();
  set(fn: () => void, ms: number, background: boolean): unknown {
    const id = ++this.seq;
    this.pending.set(id, { fn, ms, background });
    return id;
  }
  clear(h: unknown): void {
    this.pending.delete(h as number);
  }
  /** The pending timers matching `pred` (in creation order). */
  find(pred: (t: { ms: number; background: boolean }) => boolean) {
    return [...this.pending.entries()].filter(([, t]) => pred(t));
  }
  /** Fire the one pending timer matching `pred` (fails if there is not exactly one). */
  fire(pred: (t: { ms: number; background: boolean }) => boolean): number {
    const hits = this.find(pred);
    assert.equal(
      hits.length,
      1,
      `exactly one matching timer (pending: ${JSON.stringify([...this.pending.values()])})`,
    );
    const [id, t] = hits[0]!;
    this.pending.delete(id);
    t.fn();
    return t.ms;
  }
}

const HANDSHAKE = 1000;
const PING = 100;
const isHandshake = (t: { ms: number; background: boolean }) => t.background && t.ms === HANDSHAKE;
const isPing = (t: { ms: number; background: boolean }) => t.background && t.ms === PING;
const isRetry = (t: { background: boolean }) => !t.background;

async function until(what: string, f: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (f()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

let signer: WebCryptoSigner;
before(async () => {
  signer = await WebCryptoSigner.generate(true);
});

function setup(role: 'device' | 'viewer' = 'device', over: { deadAfterPings?: number } = {}) {
  const env = fixedEnv(3);
  const timers = new FakeTimers();
  const sockets: FakeSocket[] = [];
  const core = new RendezvousCore({
    socket: (ev) => {
      const s = new FakeSocket(ev);
      sockets.push(s);
      return s;
    },
    signer,
    role,
    env,
    retry: { baseMs: 400, maxMs: 3200 },
    pingMs: PING,
    handshakeMs: HANDSHAKE,
    timers,
    ...over,
  });
  const seen: { [K in keyof RendezvousCoreEvents]?: RendezvousCoreEvents[K][] } = {};
  for (const k of [
    'ready',
    'recv',
    'presence',
    'pair/found',
    'alert',
    'error',
    'status',
    'disconnected',
  ] as const)
    core.on(k, (e) => {
      const list = (seen[k] ?? []) as never[];
      seen[k] = list;
      list.push(e as never);
    });
  const last = () => sockets[sockets.length - 1]!;
  /** Play a full, verified handshake on the newest socket. */
  const handshake = async (id = deviceIdFromKey(signer.publicKey)) => {
    const s = last();
    const ch = newChallenge(env);
    s.server({ t: 'hello', v: 1, srv: SRV, ch });
    await until('auth sent', () => s.sent.length > 0);
    const auth = s.frames()[0]!;
    assert.equal(auth.t, 'auth');
    // The proof is the real one: the protocol's server-side check accepts it for this challenge only.
    const who = await verifyAuth(auth.env, { serverKey: SRV, challenge: ch, now: env.now() });
    assert.equal(who.role, role);
    s.server({ t: 'ready', id, ice: [{ urls: ['stun:127.0.0.1:3478'] }] });
    return s;
  };
  return { core, env, timers, sockets, seen, last, handshake };
}

describe('RendezvousCore (scripted socket)', () => {
  it('answers hello with a verified auth proof, then is ready: id, ice, send, recv', async () => {
    const t = setup();
    t.core.start();
    assert.equal(t.sockets.length, 1);
    assert.equal(t.core.status, 'connecting');
    assert.equal(t.core.send({ t: 'ping' }), false, 'nothing is sent before ready');
    await t.handshake();
    assert.equal(t.core.status, 'ready');
    assert.deepEqual(t.seen.status, ['connecting', 'authenticating', 'ready']);
    assert.equal(t.core.id, deviceIdFromKey(signer.publicKey));
    assert.deepEqual(t.core.ice, [{ urls: ['stun:127.0.0.1:3478'] }]);
    assert.equal(t.seen.ready?.length, 1);
    assert.equal(t.timers.find(isHandshake).length, 0, 'the handshake deadline is cleared');
    const to = encodeId('userKey', signer.publicKey);
    assert.ok(t.core.send({ t: 'send', to, m: { t: 'x' }, ref: 'r1' }));
    assert.deepEqual(t.last().frames()[1], { t: 'send', to, m: { t: 'x' }, ref: 'r1' });
    t.last().server({ t: 'recv', from: to, m: { hi: 1 } });
    assert.deepEqual(t.seen.recv, [{ t: 'recv', from: to, m: { hi: 1 } }]);
    t.core.stop();
  });

  it('acts on nothing but hello and error before ready; a second hello and an early ready are ignored', async () => {
    const t = setup('viewer');
    t.core.start();
    const s = t.last();
    const from = deviceIdFromKey(signer.publicKey);
    s.server({ t: 'ready', id: from, ice: [] }); // not authenticated yet: a spoofed ready
    s.server({ t: 'recv', from, m: { t: 'cameras' } });
    s.server({ t: 'presence', d: from, online: true });
    assert.equal(t.core.status, 'connecting');
    assert.equal(t.seen.ready, undefined);
    assert.equal(t.seen.recv, undefined);
    assert.equal(t.seen.presence, undefined);
    s.server({ t: 'error', code: 'E_AUTH', msg: 'no' });
    assert.equal(t.seen.error?.length, 1, 'error frames reach the caller in any state');
    s.server({ t: 'hello', v: 1, srv: SRV, ch: newChallenge(t.env) });
    s.server({ t: 'hello', v: 1, srv: SRV, ch: newChallenge(t.env) });
    await until('auth sent', () => s.sent.length > 0);
    await new Promise((r) => setImmediate(r));
    assert.equal(s.frames().filter((f) => f.t === 'auth').length, 1, 'one auth per connection');
    t.core.stop();
  });

  it('drops and counts frames that do not decode, and binary frames; nothing is emitted', async () => {
    const t = setup();
    t.core.start();
    await t.handshake();
    const s = t.last();
    s.server('not json');
    s.server({ t: 'recv', from: 'hdid_nope', m: 1 });
    s.server({ t: 'recv', from: t.core.id, m: 1, extra: true });
    s.server('x'.repeat(200_000));
    s.ev.binary();
    assert.equal(t.core.badFrames, 5);
    assert.equal(t.seen.recv, undefined);
    assert.equal(t.core.status, 'ready', 'bad frames do not drop the connection');
    t.core.stop();
  });

  it('reconnects on the one retry schedule: growing jittered delays, reset by ready', async () => {
    const t = setup();
    t.core.start();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      t.last().ev.closed(1006, 'gone');
      assert.equal(t.core.status, 'down');
      delays.push(t.timers.fire(isRetry));
      assert.equal(t.sockets.length, i + 2);
    }
    for (const [i, d] of delays.entries()) {
      const ceiling = Math.min(3200, 400 * 2 ** i);
      assert.ok(d >= ceiling / 4 && d < ceiling, `attempt ${i}: ${d} in [${ceiling / 4}, ${ceiling})`);
    }
    assert.equal(t.seen.disconnected?.length, 5);
    await t.handshake();
    t.last().ev.closed(1001, 'server shutting down');
    const after = t.timers.fire(isRetry);
    assert.ok(after >= 100 && after < 400, `a ready resets the schedule: ${after}`);
    // The jitter comes from the CryptoEnv: the same seed gives the same schedule.
    const u = setup();
    u.core.start();
    const again: number[] = [];
    for (let i = 0; i < 5; i++) {
      u.last().ev.closed(1006, 'gone');
      again.push(u.timers.fire(isRetry));
    }
    assert.deepEqual(again, delays);
    t.core.stop();
    u.core.stop();
  });

  it('abandons an attempt that is not authenticated within handshakeMs, and retries', () => {
    const t = setup();
    t.core.start();
    const s = t.last();
    t.timers.fire(isHandshake);
    assert.deepEqual(s.closedWith, { code: CLIENT_CLOSE.HANDSHAKE_TIMEOUT, reason: 'handshake timeout' });
    assert.equal(t.core.status, 'down');
    assert.equal(t.timers.find(isRetry).length, 1);
    // The abandoned socket is dead to the core: a late hello does nothing.
    s.server({ t: 'hello', v: 1, srv: SRV, ch: newChallenge(t.env) });
    assert.equal(t.core.status, 'down');
    t.timers.fire(isRetry);
    assert.equal(t.core.status, 'connecting');
    t.core.stop();
  });

  it('pings while ready and drops a server that stays silent for deadAfterPings intervals', async () => {
    const t = setup();
    t.core.start();
    const s = await t.handshake();
    t.timers.fire(isPing);
    t.timers.fire(isPing);
    assert.deepEqual(
      s.frames().filter((f) => f.t === 'ping'),
      [{ t: 'ping' }, { t: 'ping' }],
    );
    s.server({ t: 'pong' }); // a word from the server: the count starts over
    t.timers.fire(isPing);
    t.timers.fire(isPing);
    assert.equal(t.core.status, 'ready');
    t.timers.fire(isPing); // third silent interval
    assert.deepEqual(s.closedWith, { code: CLIENT_CLOSE.SILENT, reason: 'server silent' });
    assert.equal(t.core.status, 'down');
    assert.deepEqual(t.seen.disconnected?.at(-1), {
      code: CLIENT_CLOSE.SILENT,
      reason: 'server silent',
      wasReady: true,
    });
    assert.equal(t.timers.find(isRetry).length, 1);
    t.core.stop();
  });

  it('control: with deadAfterPings 1 the same script drops the connection one interval earlier', async () => {
    const t = setup('device', { deadAfterPings: 1 });
    t.core.start();
    const s = await t.handshake();
    t.timers.fire(isPing);
    t.timers.fire(isPing);
    assert.equal(s.closedWith?.code, CLIENT_CLOSE.SILENT);
    t.core.stop();
  });

  it('stop closes with 1000 and cancels every timer; nudge skips the wait; stale sockets are ignored', async () => {
    const t = setup();
    t.core.start();
    const first = t.last();
    first.ev.closed(1006, 'gone');
    assert.equal(t.timers.find(isRetry).length, 1);
    t.core.nudge();
    assert.equal(t.timers.find(isRetry).length, 0, 'the pending retry is replaced by a connection now');
    assert.equal(t.sockets.length, 2);
    first.ev.closed(1006, 'late'); // the old socket again: ignored
    assert.equal(t.core.status, 'connecting');
    await t.handshake();
    t.core.nudge(); // not down: nothing happens
    assert.equal(t.sockets.length, 2);
    t.core.stop();
    assert.deepEqual(t.last().closedWith, { code: 1000, reason: 'bye' });
    assert.equal(t.timers.pending.size, 0);
    assert.equal(t.core.status, 'down');
    t.last().ev.closed(1000, 'bye');
    assert.equal(t.timers.pending.size, 0, 'no retry after stop');
    assert.equal(t.core.send({ t: 'ping' }), false);
  });

  it('a listener that throws does not break the connection or the other listeners', async () => {
    const t = setup();
    const got: string[] = [];
    t.core.on('recv', () => {
      throw new Error('boom');
    });
    t.core.on('recv', (f) => got.push(f.from));
    t.core.start();
    await t.handshake();
    t.last().server({ t: 'recv', from: t.core.id, m: null });
    assert.deepEqual(got, [t.core.id]);
    assert.equal(t.core.status, 'ready');
    t.core.stop();
  });

  it('a socket factory that throws is retried on the schedule', () => {
    const timers = new FakeTimers();
    let calls = 0;
    const core = new RendezvousCore({
      socket: () => {
        calls++;
        throw new Error('bad url');
      },
      signer,
      role: 'viewer',
      env: fixedEnv(1),
      timers,
    });
    core.start();
    assert.equal(core.status, 'down');
    timers.fire(isRetry);
    assert.equal(calls, 2);
    core.stop();
  });
});

describe('backoffDelay (the one retry schedule)', () => {
  it('grows exponentially within [ceiling/4, ceiling) and caps', () => {
    for (let a = 0; a < 40; a++) {
      const ceiling = Math.min(30_000, 500 * 2 ** a);
      assert.equal(backoffDelay(a, { random: () => 0 }), Math.floor(ceiling / 4), `attempt ${a} low`);
      assert.ok(backoffDelay(a, { random: () => 0.999999 }) < ceiling, `attempt ${a} high`);
      assert.ok(backoffDelay(a, { random: () => 1 }) < ceiling, `attempt ${a}: a random() of 1 stays below`);
    }
  });
  it('jitters', () => {
    const seen = new Set(Array.from({ length: 50 }, () => backoffDelay(6)));
    assert.ok(seen.size > 10);
  });
  it('survives nonsense input', () => {
    for (const a of [-1, Number.NaN, Number.POSITIVE_INFINITY, 1e9])
      assert.ok(Number.isFinite(backoffDelay(a, { baseMs: 0, maxMs: -5 })));
  });
});
