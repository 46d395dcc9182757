/**
 * What a Hearth notification looks like, from its decrypted payload (docs/protocol.md
 * "Notifications"). Shared by the service worker (system notifications) and the app (the in-app
 * toast). Pure: no DOM, no service-worker API.
 */
import { decodePushPayload, type PushPayload } from '@hearth/protocol';

/** A notification to show: its title and the `showNotification` options Hearth uses. */
export interface HearthNotification {
  title: string;
  body: string;
  /** The thumbnail as a data: URL, when the payload carries one. */
  image?: string;
  icon: string;
  /** One tag per event: the clip's notification replaces the first one. */
  tag: string;
  data: { url: string; payload: PushPayload };
}

const KIND: Record<PushPayload['type'], string> = { motion: 'Motion', sound: 'Sound' };

/** The local time of `t` (ms), as the body shows it. */
export function localTime(t: number, locale?: string): string {
  return new Date(t).toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** Build the notification of a payload. */
export function notificationFor(p: PushPayload, locale?: string): HearthNotification {
  const when = localTime(p.t, locale);
  const image = p.thumb ? `data:image/jpeg;base64,${p.thumb}` : undefined;
  return {
    title: `${KIND[p.type]} · ${p.cam}`,
    body: p.clip ? `${p.cam} at ${when}: the clip is ready` : `${p.cam} at ${when}`,
    ...(image ? { image } : {}),
    icon: image ?? '/icon-192.png',
    tag: `hearth-${p.cam}-${p.t}`,
    data: { url: '/#/', payload: p },
  };
}

/** A push whose payload cannot be read still shows something (browsers require it). */
export const UNREADABLE: Omit<HearthNotification, 'data'> & { data: { url: string } } = {
  title: 'Hearth',
  body: 'A camera saw something (the notification could not be read).',
  icon: '/icon-192.png',
  tag: 'hearth-unreadable',
  data: { url: '/#/' },
};

/** Decode a push's bytes (the browser has decrypted them) into its notification, or undefined. */
export function notificationOfPush(bytes: Uint8Array, locale?: string): HearthNotification | undefined {
  try {
    return notificationFor(decodePushPayload(bytes), locale);
  } catch {
    return undefined;
  }
}
