/**
 * Security review R7, against the real server: one address sweeping the manual-code lookup tags
 * (2^20 of them) to find devices in their pairing window. `pair/lookup` is limited per source
 * address and per tag, so the sweep runs at `limits.lookupsPerMinute`, not at the message rate;
 * an honest viewer elsewhere still finds its device. Control: with the lookup limits raised to the
 * message rate, the same sweep is answered in full.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, device, tempDir, testServer, viewer } from './helpers.js';

const TAGS = 2 ** 20;
const tagOf = (i: number) => i.toString(36).toUpperCase().padStart(4, '0').slice(-4);

async function sweep(limits: Record<string, number>, n: number) {
  const tmp = tempDir();
  const srv = await testServer(tmp.dir, { limits });
  try {
    const d = await device();
    const dc = await connect(srv.wsUrl, d);
    dc.c.send({ t: 'pair/register', tag: 'ZZZZ' });
    // The sweeper, from its own address.
    const sc = await connect(srv.wsUrl, await viewer(), '127.0.0.2');
    const t0 = Date.now();
    for (let i = 0; i < n; i++) sc.c.send({ t: 'pair/lookup', tag: tagOf(i) });
    sc.c.send({ t: 'pair/lookup', tag: 'ZZZZ' });
    const until = Date.now() + 3000;
    while (
      sc.c.frames.filter((f) => f.t === 'pair/found' || f.t === 'error').length < n + 1 &&
      Date.now() < until
    )
      await new Promise((r) => setTimeout(r, 20));
    const elapsedS = (Date.now() - t0) / 1000;
    const answered = sc.c.frames.filter((f) => f.t === 'pair/found').length;
    const limited = sc.c.frames.filter((f) => f.t === 'error' && f.code === 'E_RATE_LIMITED').length;
    const sweeperFound = sc.c.frames.some((f) => f.t === 'pair/found' && f.d === d.id);
    // An honest viewer, from another address, looks up the real tag.
    const hc = await connect(srv.wsUrl, await viewer(), '127.0.0.1');
    hc.c.send({ t: 'pair/lookup', tag: 'ZZZZ' });
    const honest = (await hc.c.next('pair/found')).d;
    for (const c of [sc, hc, dc]) c.c.close();
    return { answered, limited, sweeperFound, honest, deviceId: d.id, elapsedS };
  } finally {
    await srv.close();
    tmp.rm();
  }
}

describe('sweeping the pairing lookup tags (review R7)', () => {
  it('one address gets its burst of lookups, then E_RATE_LIMITED; an honest viewer still finds its device', async () => {
    const perMinute = 10;
    const burst = 10;
    const r = await sweep(
      { lookupsPerMinute: perMinute, lookupBurst: burst, messagesPerSecond: 1000, messageBurst: 1000 },
      300,
    );
    const cap = burst + Math.ceil((perMinute / 60) * r.elapsedS) + 1;
    const days = TAGS / perMinute / 60 / 24;
    console.log(
      `R7: 301 lookups from one address: ${r.answered} answered (cap ${cap}), ${r.limited} refused; a sweep of 2^20 tags at ${perMinute}/min takes ${days.toFixed(0)} days from one address`,
    );
    assert.ok(r.answered <= cap, `answered ${r.answered}`);
    assert.ok(r.limited >= 301 - cap);
    assert.equal(r.sweeperFound, false, 'the sweep did not reach the registered tag');
    assert.equal(r.honest, r.deviceId);
  });

  it('per tag too: many addresses cannot hammer one tag', async () => {
    const tmp = tempDir();
    const srv = await testServer(tmp.dir, { limits: { lookupsPerTagPerMinute: 5 } });
    try {
      const answers: string[] = [];
      for (let i = 2; i < 12; i++) {
        const c = await connect(srv.wsUrl, await viewer(), `127.0.0.${i}`);
        c.c.send({ t: 'pair/lookup', tag: 'AB12' });
        const end = Date.now() + 3000;
        let f = c.c.frames.find((x) => x.t === 'pair/found' || x.t === 'error');
        while (!f && Date.now() < end) {
          await new Promise((r) => setTimeout(r, 10));
          f = c.c.frames.find((x) => x.t === 'pair/found' || x.t === 'error');
        }
        answers.push(f?.t === 'error' ? String(f.code) : f ? 'found' : 'nothing');
        c.c.close();
      }
      assert.deepEqual(answers.slice(0, 5), Array(5).fill('found'));
      assert.ok(
        answers.slice(5).every((a) => a === 'E_RATE_LIMITED'),
        answers.join(),
      );
    } finally {
      await srv.close();
      tmp.rm();
    }
  });

  it('control: with the lookup limits at the message rate, the whole sweep is answered', async () => {
    const r = await sweep(
      {
        lookupsPerMinute: 600_000,
        lookupBurst: 10_000,
        lookupsPerTagPerMinute: 10_000,
        messagesPerSecond: 1000,
        messageBurst: 1000,
      },
      300,
    );
    assert.equal(r.answered, 301);
    assert.equal(r.sweeperFound, true, 'the sweep found the device in its pairing window');
  });
});
