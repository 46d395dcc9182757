import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deviceIdFromKey } from '@hearth/protocol';
import {
  liveHref,
  logHref,
  normalizeManualCode,
  parseRoute,
  peopleHref,
  rendezvousUrl,
  timelineHref,
} from '../src/core/links.js';

const dev = deviceIdFromKey(new Uint8Array(32).fill(7));
const at = (href: string) => {
  const u = new URL(href);
  return { pathname: u.pathname, hash: u.hash, href: u.href };
};

describe('routes', () => {
  it('QR link goes whole to the pairing parser', () => {
    const href = `https://cams.example/pair#v=1&d=${dev}&s=abc`;
    assert.deepEqual(parseRoute(at(href)), { kind: 'pair-link', link: href });
  });
  it('/pair without a payload is the code form', () => {
    assert.deepEqual(parseRoute(at('https://h/pair')), { kind: 'pair' });
    assert.deepEqual(parseRoute(at('https://h/pair/')), { kind: 'pair' });
    assert.deepEqual(parseRoute(at('https://h/#/pair')), { kind: 'pair' });
  });
  it('live view round-trips through its href', () => {
    assert.deepEqual(parseRoute(at(`https://h/${liveHref(dev, 'front-door')}`)), {
      kind: 'live',
      deviceId: dev,
      camera: 'front-door',
    });
  });
  it('household routes: people, the invite form, the access log, an invite link, the join screen', () => {
    assert.deepEqual(parseRoute(at(`https://h/${peopleHref(dev)}`)), { kind: 'people', deviceId: dev });
    assert.deepEqual(parseRoute(at(`https://h/${peopleHref(dev, true)}`)), {
      kind: 'people',
      deviceId: dev,
      invite: true,
    });
    assert.deepEqual(parseRoute(at(`https://h/${logHref(dev)}`)), { kind: 'log', deviceId: dev });
    assert.deepEqual(parseRoute(at('https://h/#/invite/eyJ2IjoxfQ')), {
      kind: 'invite-link',
      payload: 'eyJ2IjoxfQ',
    });
    assert.deepEqual(parseRoute(at('https://h/#/join')), { kind: 'join' });
    for (const h of [
      '#/people/hdid_x',
      `#/log/${dev}/invite`,
      `#/people/${dev}/other`,
      `#/invite/${'a'.repeat(513)}`,
      '#/invite/not+base64',
      '#/invite/',
    ])
      assert.deepEqual(parseRoute(at(`https://h/${h}`)), { kind: 'home' }, h);
  });
  it('bad live routes fall back home', () => {
    for (const h of [
      '#/live/hdid_x/cam',
      `#/live/${dev}/Bad Name`,
      `#/live/${dev}/%E0%A4%A`,
      '#/live/',
      '#/whatever',
    ]) {
      assert.deepEqual(parseRoute(at(`https://h/${h}`)), { kind: 'home' }, h);
    }
  });
  it('timeline routes: today or a day; a bad day, camera or device falls back home', () => {
    assert.deepEqual(parseRoute(at(`https://h/${timelineHref(dev, 'door')}`)), {
      kind: 'timeline',
      deviceId: dev,
      camera: 'door',
    });
    assert.deepEqual(parseRoute(at(`https://h/${timelineHref(dev, 'door', '2026-12-04')}`)), {
      kind: 'timeline',
      deviceId: dev,
      camera: 'door',
      day: '2026-12-04',
    });
    for (const h of [
      `#/timeline/${dev}/door/2026-12-4`,
      `#/timeline/${dev}/door/today`,
      `#/timeline/${dev}/Door`,
      '#/timeline/hdid_x/door',
      `#/live/${dev}/door/2026-12-04`,
    ])
      assert.deepEqual(parseRoute(at(`https://h/${h}`)), { kind: 'home' }, h);
  });
  it('rendezvous URL: wss for https, ws for http (localhost)', () => {
    assert.equal(rendezvousUrl('https://cams.example'), 'wss://cams.example/ws');
    assert.equal(rendezvousUrl('https://cams.example:8443'), 'wss://cams.example:8443/ws');
    assert.equal(rendezvousUrl('http://127.0.0.1:8080'), 'ws://127.0.0.1:8080/ws');
    assert.throws(() => rendezvousUrl('file:///x'));
  });
  it('manual code normalisation', () => {
    assert.equal(normalizeManualCode('abcd-efgh-jk23p'), 'ABCD-EFGH-JK23P');
    assert.equal(normalizeManualCode(' abcd efgh jk23p '), 'ABCD-EFGH-JK23P');
    assert.equal(normalizeManualCode('ABCDEFGHJK23P'), 'ABCD-EFGH-JK23P');
    for (const bad of ['', 'ABCD-EFGH', 'ABCD-EFGH-JK2!', 'ABCD-EFGH-JK23', 'ABCD-EFGH-JK23PP'])
      assert.equal(normalizeManualCode(bad), undefined, bad);
  });
});
