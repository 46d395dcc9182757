/**
 * Review R5a against the real server: a `send` whose payload nests 9 000 levels deep used to close
 * the connection with 1011 (the hub's JSON.stringify of the routed message overflowed the stack).
 * Now the frame is refused with `error E_TOO_LARGE` before it is parsed, nothing reaches the
 * target, and both connections stay usable. (The control, that such a value does overflow
 * JSON.stringify, is in protocol/test/json-depth.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, device, sleep, tempDir, testServer, viewer } from './helpers.js';

describe('deeply nested payloads (review R5a)', () => {
  const tmp = tempDir();
  let srv: Awaited<ReturnType<typeof testServer>>;
  before(async () => {
    srv = await testServer(tmp.dir);
  });
  after(async () => {
    await srv.close();
    tmp.rm();
  });

  it('a send nested 9 000 levels deep gets E_TOO_LARGE; the connection and the target are unharmed', async () => {
    const d = await device();
    const v = await viewer();
    const dc = await connect(srv.wsUrl, d);
    const vc = await connect(srv.wsUrl, v);
    const n = 9000;
    vc.c.send(`{"t":"send","to":"${d.id}","m":${'['.repeat(n)}${']'.repeat(n)}}`);
    const e = await vc.c.next('error');
    assert.equal(e.code, 'E_TOO_LARGE');
    assert.match(String(e.msg), /nested deeper than/);
    // Still usable: a ping is answered, and a normal send is delivered.
    vc.c.send({ t: 'ping' });
    await vc.c.next('pong');
    vc.c.send({ t: 'send', to: d.id, m: { ok: 1 } });
    assert.deepEqual((await dc.c.next('recv')).m, { ok: 1 });
    await sleep(50);
    assert.equal(vc.c.closeCode, undefined);
    assert.equal(
      dc.c.frames.filter((f) => f.t === 'recv').length,
      1,
      'the deep one never reached the device',
    );
    vc.c.close();
    dc.c.close();
  });
});
