/**
 * Glue between the browser's location and the app: which screen to show, and the rendezvous URL.
 *
 * Routes:
 * - `/pair#v=1&d=<deviceId>&s=<secret>` — the QR code's link, opened by the phone's camera. The
 *   secret is in the fragment, which browsers never send to the server; the app removes it from
 *   the address bar and history as soon as it has read it.
 * - `/pair` or `#/pair` — the manual-code form.
 * - `#/live/<deviceId>/<camera>` — live view.
 * - `#/timeline/<deviceId>/<camera>[/<YYYY-MM-DD>]` — the camera's events of a day (today by default).
 * - `#/people/<deviceId>` — the household (owners, members, guests, invites); `…/invite` makes an invite.
 * - `#/log/<deviceId>` — the device's access log.
 * - `#/invite/<payload>` — an invite link (its secret is in the fragment; the app removes it from
 *   the address bar at once, like a pairing link's), then `#/join` while it is redeemed.
 * - anything else — the device and camera list (or the pairing form when nothing is paired).
 */
import { CAMERA_NAME, isId } from '@hearth/protocol';

/** A screen of the app. */
export type Route =
  | { kind: 'home' }
  | { kind: 'pair'; error?: string }
  | { kind: 'pair-link'; link: string }
  | { kind: 'live'; deviceId: string; camera: string }
  | { kind: 'timeline'; deviceId: string; camera: string; day?: string }
  | { kind: 'people'; deviceId: string; invite?: true }
  | { kind: 'log'; deviceId: string }
  | { kind: 'invite-link'; payload: string }
  | { kind: 'join' }
  | { kind: 'recover' };

/** The parts of a location we read. */
export interface LocationLike {
  pathname: string;
  hash: string;
  href: string;
}

/**
 * Decide the screen for a location. A `/pair` link is handed on whole (`link`) to the pairing
 * module's QR parser, which owns the payload format and its validation.
 */
export function parseRoute(loc: LocationLike): Route {
  const path = loc.pathname.replace(/\/+$/, '') || '/';
  if (path === '/pair' || path.endsWith('/pair')) {
    return loc.hash.length > 1 ? { kind: 'pair-link', link: loc.href } : { kind: 'pair' };
  }
  const h = loc.hash.replace(/^#/, '');
  if (h === '/pair') return { kind: 'pair' };
  if (h === '/join') return { kind: 'join' };
  if (h === '/recover') return { kind: 'recover' };
  const inv = /^\/invite\/([A-Za-z0-9_-]{1,512})$/.exec(h);
  if (inv) return { kind: 'invite-link', payload: inv[1]! };
  const dev = /^\/(people|log)\/([^/]+)(\/invite)?$/.exec(h);
  if (dev && (dev[3] === undefined || dev[1] === 'people')) {
    const deviceId = safeDecode(dev[2]!);
    if (deviceId && isId('deviceId', deviceId)) {
      if (dev[1] === 'people')
        return dev[3] ? { kind: 'people', deviceId, invite: true } : { kind: 'people', deviceId };
      return { kind: 'log', deviceId };
    }
  }
  const m = /^\/(live|timeline)\/([^/]+)\/([^/]+)(?:\/(\d{4}-\d{2}-\d{2}))?$/.exec(h);
  if (m && (m[1] === 'timeline' || m[4] === undefined)) {
    const deviceId = safeDecode(m[2]!);
    const camera = safeDecode(m[3]!);
    if (deviceId && camera && isId('deviceId', deviceId) && CAMERA_NAME.test(camera)) {
      if (m[1] === 'live') return { kind: 'live', deviceId, camera };
      return m[4]
        ? { kind: 'timeline', deviceId, camera, day: m[4] }
        : { kind: 'timeline', deviceId, camera };
    }
  }
  return { kind: 'home' };
}

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** Hash route of a live view. */
export function liveHref(deviceId: string, camera: string): string {
  return `#/live/${encodeURIComponent(deviceId)}/${encodeURIComponent(camera)}`;
}

/** Hash route of a camera's timeline (a day `YYYY-MM-DD`, or today). */
export function timelineHref(deviceId: string, camera: string, day?: string): string {
  return `#/timeline/${encodeURIComponent(deviceId)}/${encodeURIComponent(camera)}${day ? `/${day}` : ''}`;
}

/** Hash route of a device's household screen (`invite`: the make-an-invite form). */
export function peopleHref(deviceId: string, invite = false): string {
  return `#/people/${encodeURIComponent(deviceId)}${invite ? '/invite' : ''}`;
}

/** Hash route of a device's access log. */
export function logHref(deviceId: string): string {
  return `#/log/${encodeURIComponent(deviceId)}`;
}

/** The rendezvous WebSocket URL for a page origin: `wss://host/ws`, or `ws://` for a plain-http (localhost) page. */
export function rendezvousUrl(origin: string): string {
  const u = new URL(origin);
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new TypeError('page origin must be http(s)');
  return `${u.protocol === 'https:' ? 'wss' : 'ws'}://${u.host}/ws`;
}

/**
 * Normalise what a person typed as a manual code: upper-case, drop spaces and dashes, re-insert
 * the dashes (`XXXX-XXXX-XXXXX`: 4-character lookup tag, 8 secret characters, 1 check character). Returns undefined when it cannot be a code (wrong length or
 * characters); the pairing module then checks it properly.
 */
export function normalizeManualCode(input: string): string | undefined {
  const raw = input.toUpperCase().replace(/[\s-]+/g, '');
  if (!/^[0-9A-Z]{13}$/.test(raw)) return undefined;
  return `${raw.slice(0, 4)}-${raw.slice(4, 8)}-${raw.slice(8, 13)}`;
}
