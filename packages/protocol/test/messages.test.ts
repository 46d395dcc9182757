import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEVICE_MESSAGE_TYPES,
  decodeDeviceMessage,
  decodeViewerMessage,
  MAX_MESSAGE_BYTES,
  VIEWER_MESSAGE_TYPES,
} from '../src/messages.js';

const sid = 'AAAAAAAAAAAAAAAAAAAAAA';

describe('device → viewer messages', () => {
  it('accepts the session, camera and ACL messages', () => {
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
      { t: 'acl/ok', ver: 3 },
      { t: 'acl/error', code: 'E_NO_GRANT' },
    ]) {
      const r = decodeDeviceMessage(m);
      assert.ok(r.ok, JSON.stringify(m));
    }
  });
  it('rejects malformed or oversized input with a typed error', () => {
    for (const m of [
      null,
      'x',
      [],
      { t: 5 },
      { t: 'x'.repeat(65) },
      { t: 'session/ice', sid: 'short', c: null },
      { t: 'session/ice', sid, c: { candidate: 'x'.repeat(2000) } },
      { t: 'session/closed', sid, code: 'lower case' },
      { t: 'session/answer', env: 'not an object' },
      { t: 'cameras', list: [{ name: '../etc', online: true }] },
      { t: 'cameras', list: [{ name: 'a', online: true, extra: 1 }] },
      { t: 'cameras', list: Array.from({ length: 65 }, (_, i) => ({ name: `c${i}`, online: true })) },
      { t: 'session/answer', env: { pad: 'x'.repeat(MAX_MESSAGE_BYTES) } },
    ]) {
      const r = decodeDeviceMessage(m);
      assert.equal(r.ok, false, JSON.stringify(m)?.slice(0, 80));
      if (!r.ok) assert.match(r.error.code, /^E_(SCHEMA|TOO_LARGE)$/);
    }
  });
  it('a type of the other direction or an unknown one is reported as unknown', () => {
    for (const t of ['acl/update', 'session/offer', 'pair/start', 'nope']) {
      const r = decodeDeviceMessage({ t });
      assert.ok(!r.ok && r.unknown && r.t === t, t);
    }
  });
});

describe('viewer → device messages', () => {
  it('accepts each viewer message', () => {
    for (const m of [
      { t: 'session/offer', env: {} },
      { t: 'session/ice', sid, c: null },
      { t: 'session/close', sid },
      { t: 'cameras' },
      { t: 'acl/get' },
      { t: 'acl/update', env: {} },
    ]) {
      assert.ok(decodeViewerMessage(m).ok, JSON.stringify(m));
    }
  });
  it('rejects extra fields, bad sids and device-only types', () => {
    for (const m of [
      { t: 'cameras', x: 1 },
      { t: 'session/close', sid: 'x' },
      { t: 'session/close' },
      { t: 'session/offer' },
    ]) {
      const r = decodeViewerMessage(m);
      assert.ok(!r.ok && r.error.code === 'E_SCHEMA', JSON.stringify(m));
    }
    const r = decodeViewerMessage({ t: 'cameras/refused', code: 'E_X' });
    assert.ok(!r.ok && r.unknown);
  });
  it('the type lists name every schema branch', () => {
    assert.equal(new Set(VIEWER_MESSAGE_TYPES).size, 8);
    assert.ok(decodeViewerMessage({ t: 'relay/ask' }).ok);
    assert.ok(!decodeViewerMessage({ t: 'relay/ask', x: 1 }).ok);
    assert.equal(new Set(DEVICE_MESSAGE_TYPES).size, 12);
  });
});
