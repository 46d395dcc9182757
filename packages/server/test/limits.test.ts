/** Limits and hostile input against a live server (S10): clean close codes, never a crash. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MAX_FRAME_BYTES } from '@hearth/protocol';
import fc from 'fast-check';
import { CLOSE } from '../src/index.js';
import { Client, connect, device, sleep, tempDir, testServer, viewer } from './helpers.js';

describe('limits', () => {
  const tmp = tempDir();
  let srv: Awaited<ReturnType<typeof testServer>>;
  before(async () => {
    srv = await testServer(tmp.dir, {
      limits: {
        messagesPerSecond: 20,
        messageBurst: 40,
        maxConnectionsPerAddress: 6,
        authTimeoutMs: 400,
        maxBadFrames: 5,
      },
    });
  });
  after(async () => {
    await srv.close();
    tmp.rm();
  });

  it('a frame above MAX_FRAME_BYTES closes with 1009', async () => {
    const { c } = await connect(srv.wsUrl, await viewer());
    c.send({ t: 'send', to: (await device()).id, m: 'x'.repeat(MAX_FRAME_BYTES + 10) });
    assert.equal((await c.closed).code, CLOSE.TOO_BIG);
  });

  it('a routed message that would not fit a frame is refused with E_TOO_LARGE and its ref', async () => {
    const d = await device();
    const cd = await connect(srv.wsUrl, d);
    const { c } = await connect(srv.wsUrl, await viewer());
    // Exactly fits the incoming limit, but `recv` with the (longer) viewer ID as `from` would not.
    const overhead = JSON.stringify({ t: 'send', to: d.id, m: '', ref: 'big' }).length;
    const m = 'x'.repeat(MAX_FRAME_BYTES - overhead);
    c.send({ t: 'send', to: d.id, m, ref: 'big' });
    const e = await c.next('error');
    assert.equal(e.code, 'E_TOO_LARGE');
    assert.equal(e.ref, 'big');
    c.close();
    cd.c.close();
  });

  it('a message rate above the token bucket closes with 4008', async () => {
    const { c } = await connect(srv.wsUrl, await viewer());
    for (let i = 0; i < 100; i++) c.send({ t: 'ping' });
    assert.equal((await c.closed).code, CLOSE.RATE_LIMITED);
    assert.ok(c.frames.filter((f) => f.t === 'pong').length >= 30);
  });

  it('too many connections from one address: the extra one closes with 4009', async () => {
    const cs = Array.from({ length: 6 }, () => new Client(srv.wsUrl));
    await Promise.all(cs.map((c) => c.next('hello')));
    const extra = new Client(srv.wsUrl);
    assert.equal((await extra.closed).code, CLOSE.TOO_MANY_CONNECTIONS);
    for (const c of cs) c.close();
    await Promise.all(cs.map((c) => c.closed));
    await sleep(50);
    const again = new Client(srv.wsUrl);
    await again.next('hello');
    again.close();
  });

  it('no auth within the timeout closes with 4001', async () => {
    const c = new Client(srv.wsUrl);
    await c.next('hello');
    const t0 = Date.now();
    assert.equal((await c.closed).code, CLOSE.AUTH_TIMEOUT);
    assert.ok(Date.now() - t0 < 2000);
  });

  it('garbage frames get a typed error, and repeated abuse closes with 4010', async () => {
    const { c } = await connect(srv.wsUrl, await viewer());
    c.send('not json');
    assert.equal((await c.next('error')).code, 'E_DECODE');
    c.send({ t: 'nope' });
    assert.equal((await c.next('error')).code, 'E_SCHEMA');
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.equal((await c.next('error')).code, 'E_SCHEMA');
    for (let i = 0; i < 5; i++) c.send('{');
    assert.equal((await c.closed).code, CLOSE.BAD_FRAMES);
  });

  it('fuzz: thousands of random frames, the server stays up and keeps serving', async () => {
    const runs = Number(process.env.SERVER_FUZZ_RUNS ?? 3000);
    const frameArb = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.json({ maxDepth: 3 }),
      fc
        .record({
          t: fc.constantFrom(
            'auth',
            'send',
            'watch',
            'pair/register',
            'pair/lookup',
            'ping',
            'hello',
            'ready',
          ),
          to: fc.oneof(fc.string({ maxLength: 90 }), fc.constant('hdid_')),
          m: fc.jsonValue({ maxDepth: 3 }),
          d: fc.array(fc.string({ maxLength: 60 }), { maxLength: 5 }),
          tag: fc.oneof(fc.constant(null), fc.stringMatching(/^[0-9A-Z]{4}$/), fc.string({ maxLength: 6 })),
          ref: fc.string({ maxLength: 70 }),
          env: fc.jsonValue({ maxDepth: 3 }),
        })
        .map((r) => JSON.stringify(r)),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    );
    const frames = fc.sample(frameArb, { numRuns: runs, seed: 42 });
    // Spread the frames over connections (pre-auth and authenticated), within each one's budgets.
    let sent = 0;
    let closes = 0;
    while (sent < frames.length) {
      const authed = sent % 2 === 0;
      const c = authed ? (await connect(srv.wsUrl, await viewer())).c : new Client(srv.wsUrl);
      if (!authed) await c.next('hello');
      for (let i = 0; i < 30 && sent < frames.length; i++, sent++) {
        const f = frames[sent]!;
        if (c.ws.readyState !== c.ws.OPEN) break;
        if (typeof f === 'string') c.ws.send(f);
        else c.ws.send(f, { binary: true });
      }
      await sleep(5);
      if (c.ws.readyState === c.ws.OPEN) {
        c.ws.close();
      } else closes++;
      await c.closed;
    }
    assert.ok(closes >= 0);
    // Still serving: a device and a viewer can talk.
    const d = await device();
    const cd = await connect(srv.wsUrl, d);
    const cv = await connect(srv.wsUrl, await viewer());
    cv.c.send({ t: 'send', to: d.id, m: { ok: 1 } });
    assert.deepEqual((await cd.c.next('recv')).m, { ok: 1 });
    const h = await fetch(`${srv.url}/healthz`);
    assert.equal(h.status, 200);
    await h.arrayBuffer();
    cd.c.close();
    cv.c.close();
  });
});
