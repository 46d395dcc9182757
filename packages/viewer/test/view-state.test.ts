import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALL_ERROR_CODES, type ViewerAction, viewerAction } from '@hearth/protocol';
import {
  IDLE,
  isAccessCode,
  needsUser,
  nextViewState,
  shouldAutoRetry,
  statusText,
  VIEW_STATES,
  type ViewEvent,
  type ViewState,
  type ViewStateName,
} from '../src/core/view-state.js';

const S = (name: ViewStateName, code?: string): ViewState => (code ? { name, code } : { name });
const run = (events: ViewEvent[], from: ViewState = IDLE): ViewState => events.reduce(nextViewState, from);

describe('view state line', () => {
  it('has exactly the documented states', () => {
    assert.deepEqual(
      [...VIEW_STATES],
      [
        'idle',
        'connecting',
        'connected (direct)',
        'connected (relayed)',
        'reconnecting',
        'device offline',
        'camera offline',
        'camera unavailable',
        'access refused',
        'possible attack',
      ],
    );
  });

  // [case id, start, event, expected]
  const table: [string, ViewState, ViewEvent, ViewState][] = [
    ['start', IDLE, { type: 'start' }, S('connecting')],
    ['idle ignores network', IDLE, { type: 'pc-connected', path: 'direct' }, IDLE],
    ['direct', S('connecting'), { type: 'pc-connected', path: 'direct' }, S('connected (direct)')],
    ['relayed', S('connecting'), { type: 'pc-connected', path: 'relayed' }, S('connected (relayed)')],
    ['path change', S('connected (direct)'), { type: 'path', path: 'relayed' }, S('connected (relayed)')],
    ['path before connect ignored', S('connecting'), { type: 'path', path: 'relayed' }, S('connecting')],
    ['ice disconnect', S('connected (direct)'), { type: 'pc-disconnected' }, S('reconnecting')],
    ['ice failed', S('connected (relayed)'), { type: 'pc-failed' }, S('reconnecting')],
    ['recovered', S('reconnecting'), { type: 'pc-connected', path: 'direct' }, S('connected (direct)')],
    ['refused', S('connecting'), { type: 'refused', code: 'E_NO_GRANT' }, S('access refused', 'E_NO_GRANT')],
    [
      'revoked mid-session',
      S('connected (direct)'),
      { type: 'closed', code: 'E_GRANT_REVOKED' },
      S('access refused', 'E_GRANT_REVOKED'),
    ],
    ['camera restarting', S('connected (direct)'), { type: 'closed', code: 'E_SHUTDOWN' }, S('reconnecting')],
    ['device gone', S('connecting'), { type: 'presence', online: false }, S('device offline')],
    ['device back', S('device offline'), { type: 'presence', online: true }, S('connecting')],
    [
      'presence flap while streaming',
      S('connected (direct)'),
      { type: 'presence', online: false },
      S('connected (direct)'),
    ],
    [
      'server down while streaming',
      S('connected (relayed)'),
      { type: 'rendezvous-down' },
      S('connected (relayed)'),
    ],
    ['server down while connecting', S('connecting'), { type: 'rendezvous-down' }, S('reconnecting')],
    ['offline stays offline on failure', S('device offline'), { type: 'pc-failed' }, S('device offline')],
    [
      'attack from connecting',
      S('connecting'),
      { type: 'attack', code: 'E_BAD_SIGNATURE' },
      S('possible attack', 'E_BAD_SIGNATURE'),
    ],
    [
      'attack from connected',
      S('connected (direct)'),
      { type: 'attack', code: 'E_FINGERPRINT_MISMATCH' },
      S('possible attack', 'E_FINGERPRINT_MISMATCH'),
    ],
    [
      'attack outranks refusal',
      S('access refused', 'E_NO_GRANT'),
      { type: 'attack', code: 'E_WRONG_SIGNER' },
      S('possible attack', 'E_WRONG_SIGNER'),
    ],
    [
      'attack is sticky: connect',
      S('possible attack', 'E_BAD_SIGNATURE'),
      { type: 'pc-connected', path: 'direct' },
      S('possible attack', 'E_BAD_SIGNATURE'),
    ],
    [
      'attack is sticky: presence',
      S('possible attack', 'E_BAD_SIGNATURE'),
      { type: 'presence', online: true },
      S('possible attack', 'E_BAD_SIGNATURE'),
    ],
    [
      'attack is sticky: retry',
      S('possible attack', 'E_BAD_SIGNATURE'),
      { type: 'retry' },
      S('possible attack', 'E_BAD_SIGNATURE'),
    ],
    [
      'refusal is sticky',
      S('access refused', 'E_NO_GRANT'),
      { type: 'pc-connected', path: 'direct' },
      S('access refused', 'E_NO_GRANT'),
    ],
    [
      'user retries after attack',
      S('possible attack', 'E_BAD_SIGNATURE'),
      { type: 'start' },
      S('connecting'),
    ],
    ['stop', S('connected (direct)'), { type: 'stop' }, IDLE],
    [
      'camera offline: closed',
      S('connected (direct)'),
      { type: 'closed', code: 'E_CAMERA_OFFLINE' },
      S('camera offline', 'E_CAMERA_OFFLINE'),
    ],
    [
      'refused because the device restarted (E_RESTARTED): reconnecting, not access refused',
      S('connecting'),
      { type: 'refused', code: 'E_RESTARTED' },
      S('reconnecting'),
    ],
    [
      'camera offline: refused',
      S('connecting'),
      { type: 'refused', code: 'E_CAMERA_OFFLINE' },
      S('camera offline', 'E_CAMERA_OFFLINE'),
    ],
    [
      'camera offline: a retry keeps the message',
      S('camera offline', 'E_CAMERA_OFFLINE'),
      { type: 'retry' },
      S('camera offline', 'E_CAMERA_OFFLINE'),
    ],
    [
      'camera offline: a failed attempt keeps the message',
      S('camera offline', 'E_CAMERA_OFFLINE'),
      { type: 'pc-failed' },
      S('camera offline', 'E_CAMERA_OFFLINE'),
    ],
    [
      'camera back',
      S('camera offline', 'E_CAMERA_OFFLINE'),
      { type: 'pc-connected', path: 'relayed' },
      S('connected (relayed)'),
    ],
    [
      'camera offline, then the device goes',
      S('camera offline', 'E_CAMERA_OFFLINE'),
      { type: 'presence', online: false },
      S('device offline'),
    ],
    [
      'camera cannot start: refused',
      S('connecting'),
      { type: 'refused', code: 'E_CAMERA_UNAVAILABLE' },
      S('camera unavailable', 'E_CAMERA_UNAVAILABLE'),
    ],
    [
      'camera cannot start: closed',
      S('connected (direct)'),
      { type: 'closed', code: 'E_CAMERA_UNAVAILABLE' },
      S('camera unavailable', 'E_CAMERA_UNAVAILABLE'),
    ],
    [
      'E_MEDIA is a camera failure, not an access refusal',
      S('connecting'),
      { type: 'refused', code: 'E_MEDIA' },
      S('camera unavailable', 'E_MEDIA'),
    ],
    [
      'camera unavailable is sticky: retry',
      S('camera unavailable', 'E_CAMERA_UNAVAILABLE'),
      { type: 'retry' },
      S('camera unavailable', 'E_CAMERA_UNAVAILABLE'),
    ],
    [
      'camera unavailable is sticky: presence',
      S('camera unavailable', 'E_CAMERA_UNAVAILABLE'),
      { type: 'presence', online: true },
      S('camera unavailable', 'E_CAMERA_UNAVAILABLE'),
    ],
    [
      'attack outranks camera unavailable',
      S('camera unavailable', 'E_MEDIA'),
      { type: 'attack', code: 'E_BAD_SIGNATURE' },
      S('possible attack', 'E_BAD_SIGNATURE'),
    ],
    [
      'user retries a camera that could not start',
      S('camera unavailable', 'E_MEDIA'),
      { type: 'start' },
      S('connecting'),
    ],
  ];
  for (const [id, from, ev, want] of table) {
    it(`transition: ${id}`, () => assert.deepEqual(nextViewState(from, ev), want, id));
  }

  it('a whole session: connect, drop, reconnect relayed, revoked', () => {
    const s = run([
      { type: 'start' },
      { type: 'pc-connected', path: 'direct' },
      { type: 'pc-failed' },
      { type: 'retry' },
      { type: 'pc-connected', path: 'relayed' },
      { type: 'closed', code: 'E_GRANT_REVOKED' },
    ]);
    assert.deepEqual(s, S('access refused', 'E_GRANT_REVOKED'));
  });

  it('status text shows the code for refusals and attacks only', () => {
    assert.equal(statusText(S('access refused', 'E_NO_GRANT')), 'access refused (E_NO_GRANT)');
    assert.equal(statusText(S('possible attack', 'E_BAD_SIGNATURE')), 'possible attack (E_BAD_SIGNATURE)');
    assert.equal(statusText(S('connected (relayed)')), 'connected (relayed)');
  });

  it('camera states: text, retry and the "Try again" button', () => {
    assert.equal(
      statusText(S('camera unavailable', 'E_CAMERA_UNAVAILABLE')),
      'camera unavailable (E_CAMERA_UNAVAILABLE)',
    );
    assert.equal(statusText(S('camera offline', 'E_CAMERA_OFFLINE')), 'camera offline');
    assert.ok(shouldAutoRetry(S('camera offline', 'E_CAMERA_OFFLINE')));
    assert.ok(!shouldAutoRetry(S('camera unavailable', 'E_CAMERA_UNAVAILABLE')));
    assert.ok(needsUser(S('camera unavailable', 'E_CAMERA_UNAVAILABLE')));
    assert.ok(!needsUser(S('camera offline', 'E_CAMERA_OFFLINE')));
    for (const n of ['access refused', 'possible attack'] as const) assert.ok(needsUser(S(n, 'E_X')), n);
  });

  it('access codes', () => {
    for (const c of ['E_NO_GRANT', 'E_GRANT_REVOKED', 'E_GRANT_EXPIRED', 'E_SCOPE', 'E_NO_CAMERA'])
      assert.ok(isAccessCode(c), c);
    for (const c of ['E_SHUTDOWN', 'E_MEDIA', 'E_TIMEOUT', 'E_CAMERA_OFFLINE', 'E_CAMERA_UNAVAILABLE', 'E_X'])
      assert.ok(!isAccessCode(c), c);
  });

  it('refusals and closes follow the registry action of their code, for every registered code', () => {
    const want: Partial<Record<ViewerAction, ViewStateName>> = {
      access: 'access refused',
      'camera-offline': 'camera offline',
      'camera-unavailable': 'camera unavailable',
    };
    for (const code of ALL_ERROR_CODES) {
      const a = viewerAction(code);
      const refused = nextViewState(S('connecting'), { type: 'refused', code });
      const closed = nextViewState(S('connected (direct)'), { type: 'closed', code });
      // A refusal that is not about the camera is final (except E_RESTARTED: the device restarted
      // while the offer was in flight, review R4); a close that is not is "reconnect".
      if (code === 'E_RESTARTED') assert.deepEqual(refused, S('reconnecting'), code);
      else assert.deepEqual(refused, S(want[a] ?? 'access refused', code), code);
      assert.deepEqual(closed, want[a] ? S(want[a], code) : S('reconnecting'), code);
    }
    // The camera codes the agent sends for specific media causes.
    assert.equal(
      nextViewState(S('connecting'), { type: 'refused', code: 'E_NO_H264' }).name,
      'camera unavailable',
    );
    assert.equal(
      nextViewState(S('connecting'), { type: 'refused', code: 'E_NO_CAMERA' }).name,
      'access refused',
    );
  });
});
