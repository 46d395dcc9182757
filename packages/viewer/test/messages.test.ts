import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIncoming } from '../src/core/messages.js';

const sid = 'AAAAAAAAAAAAAAAAAAAAAA';

describe('device → viewer messages', () => {
  it('classifies pairing messages without parsing them', () => {
    assert.equal(parseIncoming({ t: 'pair/challenge', x: 1 }).kind, 'pair');
  });
  it('accepts the session messages', () => {
    for (const m of [
      { t: 'session/answer', env: {} },
      {
        t: 'session/ice',
        sid,
        c: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 },
      },
      { t: 'session/ice', sid, c: null },
      { t: 'session/refused', sid, code: 'E_NO_GRANT' },
      { t: 'session/refused', sid: '', code: 'E_SCHEMA' },
      { t: 'session/closed', sid, code: 'E_GRANT_REVOKED' },
      { t: 'cameras', list: [{ name: 'front', online: true }], role: 'owner' },
      { t: 'cameras/refused', code: 'E_NO_GRANT' },
    ]) {
      assert.equal(parseIncoming(m).kind, 'device', JSON.stringify(m));
    }
  });
  it('rejects malformed or oversized input', () => {
    for (const m of [
      null,
      'x',
      [],
      { t: 5 },
      { t: 'x'.repeat(65) },
      { t: 'session/ice', sid: 'short', c: null },
      { t: 'session/ice', sid, c: { candidate: 'x'.repeat(2000) } },
      { t: 'session/closed', sid, code: 'lower case' },
      { t: 'cameras', list: [{ name: '../etc', online: true }] },
      { t: 'cameras', list: Array.from({ length: 65 }, (_, i) => ({ name: `c${i}`, online: true })) },
    ]) {
      assert.equal(parseIncoming(m).kind, 'invalid', JSON.stringify(m)?.slice(0, 80));
    }
  });
  it('unknown types are reported, not parsed', () => {
    assert.deepEqual(parseIncoming({ t: 'acl/ok' }), { kind: 'unknown', t: 'acl/ok' });
  });
});
