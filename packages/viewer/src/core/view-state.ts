/**
 * The live view's state line, as a pure state machine.
 *
 * ```
 *            start                       pc-connected(path)
 *   idle ───────────▶ connecting ─────────────────────────▶ connected (direct|relayed)
 *                      ▲    │  ▲                                  │
 *          presence up │    │  └──────── retry ─────────┐         │ pc-disconnected / pc-failed /
 *                      │    │                           │         │ closed(transient) / rendezvous-down
 *              device offline ◀── presence down ── reconnecting ◀─┘
 *
 *   (once connected, media flows peer to peer: losing the rendezvous or the device's presence
 *   does not change the state; the peer connection's own state does)
 *
 * The code of a refusal or close is sorted by its action in the error registry (protocol errors.ts):
 *
 *   refused(code) / closed(action access) ──▶ access refused     (sticky until the user starts again)
 *   refused/closed(action camera-offline) ──▶ camera offline     (retries with backoff; connected again
 *                                                                when a session comes up)
 *   refused/closed(action
 *                  camera-unavailable)    ──▶ camera unavailable (sticky until the user starts again)
 *   attack(code)                          ──▶ possible attack   (sticky until the user starts again)
 * ```
 *
 * "possible attack" is terminal for the session: the caller has already closed the peer
 * connection, never applied the answer, and plays nothing. Only an explicit user `start` leaves it.
 */
import { viewerAction } from '@hearth/protocol';

/** Every state the status line can show. The text is exactly what the user sees (plus a detail). */
export const VIEW_STATES = [
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
] as const;
export type ViewStateName = (typeof VIEW_STATES)[number];

/** The state plus the error code that caused it (`access refused`, `camera …`, `possible attack`). */
export interface ViewState {
  readonly name: ViewStateName;
  readonly code?: string;
}

/** Network path of a connected session. */
export type MediaPath = 'direct' | 'relayed';

/** What can happen to a live view. */
export type ViewEvent =
  /** The user opened the view or pressed "try again". */
  | { type: 'start' }
  /** ICE/DTLS connected and getStats named the selected candidate pair. */
  | { type: 'pc-connected'; path: MediaPath }
  /** The selected pair changed (e.g. relay to direct after an ICE restart). */
  | { type: 'path'; path: MediaPath }
  /** ICE reports `disconnected` (may recover by itself). */
  | { type: 'pc-disconnected' }
  /** ICE/DTLS `failed`, or the peer connection closed under us. */
  | { type: 'pc-failed' }
  /** A new session attempt after a transient failure. */
  | { type: 'retry' }
  /** The device refused our offer (`session/refused`). */
  | { type: 'refused'; code: string }
  /** The device closed the session (`session/closed`). */
  | { type: 'closed'; code: string }
  /** Verification failed: bad answer signature, wrong signer, unbound answer, DTLS fingerprint mismatch. */
  | { type: 'attack'; code: string }
  /** Presence of the device changed. */
  | { type: 'presence'; online: boolean }
  /** Our rendezvous connection dropped / came back. */
  | { type: 'rendezvous-down' }
  | { type: 'rendezvous-up' }
  /** The user left the view. */
  | { type: 'stop' };

/**
 * True when a device's code means "you may not watch any more" rather than "try again": its
 * registry action (protocol `errors.ts`) is `access` (grant gone, no grant, camera not allowed).
 */
export function isAccessCode(code: string): boolean {
  return viewerAction(code) === 'access';
}

/**
 * The state a device's refusal or close code leads to, from the code's registry action, or
 * undefined for the event's default. `camera-offline` (the source does not deliver) retries with
 * backoff; `camera-unavailable` (the camera cannot be set up: ffmpeg cannot run, no H.264…) waits
 * for the user.
 */
function byCode(code: string): ViewState | undefined {
  switch (viewerAction(code)) {
    case 'access':
      return { name: 'access refused', code };
    case 'camera-offline':
      return { name: 'camera offline', code };
    case 'camera-unavailable':
      return { name: 'camera unavailable', code };
    default:
      return undefined;
  }
}

export const IDLE: ViewState = { name: 'idle' };

const sticky = (s: ViewState): boolean =>
  s.name === 'possible attack' || s.name === 'access refused' || s.name === 'camera unavailable';

/** States that a failed or retried attempt keeps: their message says more than "reconnecting". */
const keepsOnFailure = (s: ViewState): boolean => s.name === 'device offline' || s.name === 'camera offline';

/** Next state of the status line. Pure; unknown transitions leave the state unchanged. */
export function nextViewState(s: ViewState, e: ViewEvent): ViewState {
  // A possible attack outranks everything, even from a sticky state: it must always be shown.
  if (e.type === 'attack') return { name: 'possible attack', code: e.code };
  if (e.type === 'stop') return IDLE;
  if (e.type === 'start') return { name: 'connecting' };
  if (s.name === 'idle' || sticky(s)) return s;
  switch (e.type) {
    case 'pc-connected':
    case 'path':
      if (e.type === 'path' && !s.name.startsWith('connected')) return s;
      return { name: e.path === 'relayed' ? 'connected (relayed)' : 'connected (direct)' };
    case 'pc-disconnected':
    case 'pc-failed':
      return keepsOnFailure(s) ? s : { name: 'reconnecting' };
    case 'rendezvous-down':
      // Media flows peer to peer: losing the server does not interrupt a connected session.
      if (s.name.startsWith('connected') || s.name === 'device offline') return s;
      return { name: 'reconnecting' };
    case 'retry':
      return keepsOnFailure(s) ? s : { name: 'reconnecting' };
    case 'refused':
      // The device restarted while this offer was in flight (review R4): a new offer is answered.
      if (e.code === 'E_RESTARTED') return { name: 'reconnecting' };
      // Any other refusal that is not about the camera is final: the device did not allow this view.
      return byCode(e.code) ?? { name: 'access refused', code: e.code };
    case 'closed':
      return byCode(e.code) ?? { name: 'reconnecting' };
    case 'presence':
      // The device's link to the server can drop while media still flows peer to peer: trust
      // the peer connection over presence once connected.
      if (!e.online) return s.name.startsWith('connected') ? s : { name: 'device offline' };
      return s.name === 'device offline' ? { name: 'connecting' } : s;
    case 'rendezvous-up':
      return s;
  }
}

/** Text for the status line: the state name, plus the code where one applies. */
export function statusText(s: ViewState): string {
  if (
    s.code &&
    (s.name === 'access refused' || s.name === 'possible attack' || s.name === 'camera unavailable')
  )
    return `${s.name} (${s.code})`;
  return s.name;
}

/** Whether, in this state, the session should (re)try to connect automatically. */
export function shouldAutoRetry(s: ViewState): boolean {
  return s.name === 'reconnecting' || s.name === 'connecting' || s.name === 'camera offline';
}

/** Whether this state waits for the user (the "Try again" button): nothing retries by itself. */
export function needsUser(s: ViewState): boolean {
  return sticky(s);
}
