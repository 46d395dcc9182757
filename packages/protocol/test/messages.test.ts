import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  DEVICE_MESSAGE_TYPES,
  decodeDeviceMessage,
  decodeViewerMessage,
  deviceMessageSchema,
  MAX_MESSAGE_BYTES,
  VIEWER_MESSAGE_TYPES,
  viewerMessageSchema,
} from '../src/messages.js';

const sid = 'AAAAAAAAAAAAAAAAAAAAAA';
/** RFC 8291 Appendix A's user-agent key and auth secret. */
const PUSH_SUB = {
  endpoint: 'https://push.example/wpush/v2/abc',
  p256dh: 'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
  auth: 'BTBZMqHH6r4Tts7J_aSIgg',
};

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
      { t: 'push/ok' },
      { t: 'push/error', code: 'E_SCOPE' },
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
      { t: 'push/sub', sub: PUSH_SUB },
    ]) {
      assert.ok(decodeViewerMessage(m).ok, JSON.stringify(m));
    }
  });
  it('push/sub: only an https endpoint, a P-256 point and a 16-byte auth', () => {
    for (const sub of [
      { ...PUSH_SUB, endpoint: 'http://push.example/x' },
      { ...PUSH_SUB, p256dh: 'A'.repeat(87) },
      { ...PUSH_SUB, auth: 'A'.repeat(21) },
      { ...PUSH_SUB, x: 1 },
    ]) {
      const r = decodeViewerMessage({ t: 'push/sub', sub });
      assert.ok(!r.ok && r.error.code === 'E_SCHEMA', JSON.stringify(sub));
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
    assert.equal(new Set(VIEWER_MESSAGE_TYPES).size, viewerMessageSchema.options.length);
    assert.ok(VIEWER_MESSAGE_TYPES.length >= 9);
    assert.ok(decodeViewerMessage({ t: 'relay/ask' }).ok);
    assert.ok(!decodeViewerMessage({ t: 'relay/ask', x: 1 }).ok);
    assert.equal(new Set(DEVICE_MESSAGE_TYPES).size, deviceMessageSchema.options.length);
    assert.ok(DEVICE_MESSAGE_TYPES.length >= 14);
    assert.ok(decodeViewerMessage({ t: 'reader/key', rk: '{}' }).ok);
    assert.ok(!decodeViewerMessage({ t: 'reader/key', rk: 'x'.repeat(513) }).ok);
    assert.ok(decodeDeviceMessage({ t: 'reader/ok' }).ok);
    assert.ok(decodeDeviceMessage({ t: 'reader/error', code: 'E_SCOPE' }).ok);
    assert.ok(!decodeDeviceMessage({ t: 'reader/error' }).ok);
  });
});

describe('message types ⇄ docs/protocol.md ("Device ⇄ viewer messages")', () => {
  const md = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
  /** The `m.t` values in the first column of the section's tables. */
  const documented = (text: string) => {
    const start = text.indexOf('\n## Device ⇄ viewer messages\n');
    assert.ok(start >= 0, 'the section exists');
    const end = text.indexOf('\n## ', start + 1);
    return new Set([...text.slice(start, end).matchAll(/^\| `([a-z/]+)` +\|/gm)].map((m) => m[1]));
  };
  const missing = (docs: Set<string | undefined>) =>
    [...VIEWER_MESSAGE_TYPES, ...DEVICE_MESSAGE_TYPES].filter((t) => !docs.has(t));

  it('every message type of both directions has a row', () => {
    assert.deepEqual(missing(documented(md)), []);
  });
  it('control: a type without a row is caught', () => {
    assert.deepEqual(missing(documented(md.replace('| `invite/deny`', '| deny'))), ['invite/deny']);
  });
});
