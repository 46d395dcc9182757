import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VIEW_STATES } from '../src/core/view-state.js';
import { householdErrorText, viewStateHint } from '../src/ui/text.js';

describe('live view hints', () => {
  it('every state but idle explains itself', () => {
    for (const name of VIEW_STATES) if (name !== 'idle') assert.ok(viewStateHint({ name }).length > 20, name);
  });

  it('a camera that cannot start says why and what to install', () => {
    const t = viewStateHint({ name: 'camera unavailable', code: 'E_CAMERA_UNAVAILABLE' });
    assert.match(t, /^The camera could not start: /);
    assert.match(t, /ffmpeg/);
    assert.match(t, /apt install ffmpeg/);
    assert.match(t, /Try again/);
    const m = viewStateHint({ name: 'camera unavailable', code: 'E_MEDIA' });
    assert.match(m, /^The camera could not start: .*\(E_MEDIA\)/);
    const h = viewStateHint({ name: 'camera unavailable', code: 'E_NO_H264' });
    assert.match(h, /browser does not offer H\.264/);
  });

  it('camera offline says so, and that it keeps trying', () => {
    const t = viewStateHint({ name: 'camera offline', code: 'E_CAMERA_OFFLINE' });
    assert.match(t, /^Camera offline/);
    assert.match(t, /Trying again/);
  });
});

describe('household refusals', () => {
  it('say what happened and what to do; an unknown code is named', () => {
    assert.match(householdErrorText('E_OFFLINE'), /not reachable/);
    assert.match(householdErrorText('E_TIMEOUT'), /did not answer in time/);
    assert.match(householdErrorText('E_NO_GRANT'), /Only an owner/);
    assert.match(householdErrorText('E_STALE_ACL'), /changed on another device/);
    assert.match(householdErrorText('E_LAST_OWNER'), /at least one owner/);
    assert.match(householdErrorText('E_INVITE_USED'), /works once/);
    assert.match(householdErrorText('E_INVITE_EXPIRED'), /expired/);
    assert.match(householdErrorText('E_INVITE_UNKNOWN'), /does not know this invite/);
    assert.equal(householdErrorText('E_SOMETHING'), 'The device refused (E_SOMETHING).');
  });
});
