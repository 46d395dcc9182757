/**
 * Notifications in the app (docs/protocol.md "Notifications"):
 *
 * - the settings control: subscribes this browser with `pushManager.subscribe` (the server's VAPID
 *   key from `GET /v1/push/vapid`) and hands the subscription to every paired device in a sealed
 *   `push/sub` (the server never sees its keys); shows each device's `push/ok` / `push/error`;
 * - the in-app toast: the service worker posts each push it shows to the open windows.
 */
import { type DeviceMessage, fromB64u, type PushPayload } from '@hearth/protocol';
import { notificationFor } from '../push/notification.js';
import { h, replace } from './dom.js';

/** What the control needs from the app. */
export interface NotificationsDeps {
  /** Paired device IDs now. */
  devices(): string[];
  /** Send a sealed device⇄viewer message; false when it could not go. */
  send(deviceId: string, m: { t: string; [k: string]: unknown }): boolean;
  /** The label of a device, for the status line. */
  label(deviceId: string): string;
}

const b64u = (b: ArrayBuffer | null): string =>
  b
    ? btoa(String.fromCharCode(...new Uint8Array(b)))
        .replace(/\+/g, '-')
        .replace(/\//g, '_')
        .replace(/=+$/, '')
    : '';

/** The subscription as `push/sub` carries it. */
export function subscriptionKeys(s: PushSubscription): { endpoint: string; p256dh: string; auth: string } {
  return { endpoint: s.endpoint, p256dh: b64u(s.getKey('p256dh')), auth: b64u(s.getKey('auth')) };
}

export class Notifications {
  /** Each device's answer to our last `push/sub`: 'ok', an error code, or 'sent'. */
  private readonly replies = new Map<string, string>();
  private status: string | undefined;
  private el: HTMLElement | undefined;

  constructor(private readonly deps: NotificationsDeps) {}

  /** Listen for the service worker's pushes (the in-app toast). */
  start(): void {
    navigator.serviceWorker?.addEventListener('message', (e: MessageEvent) => {
      const d = e.data as { t?: unknown; payload?: PushPayload } | null;
      if (d?.t === 'hearth/push' && d.payload) this.toast(d.payload);
    });
  }

  /** Show an in-app notification of an event (also for the app's own event stream). */
  toast(p: PushPayload): void {
    const n = notificationFor(p);
    // The thumbnail is drawn on a canvas (createImageBitmap of the bytes): no data: or blob: URL,
    // so the strict CSP (`default-src 'self'`) holds, as for the live view's still.
    const pic = p.thumb
      ? h('canvas', { class: 'thumb', width: 80, height: 45, 'aria-hidden': 'true' })
      : null;
    const t = h(
      'div',
      { class: 'toast', role: 'status', 'data-camera': p.cam },
      pic,
      h('div', {}, h('strong', {}, n.title), h('div', { class: 'muted' }, n.body)),
    );
    if (pic && p.thumb) {
      const bytes = Uint8Array.from(atob(p.thumb), (c) => c.charCodeAt(0));
      void createImageBitmap(new Blob([bytes], { type: 'image/jpeg' }))
        .then((bmp) => {
          pic.getContext('2d')?.drawImage(bmp, 0, 0, pic.width, pic.height);
          bmp.close();
        })
        .catch(() => pic.remove());
    }
    document.body.append(t);
    setTimeout(() => t.remove(), 8_000);
  }

  /** A device's reply to `push/sub`. */
  onReply(from: string, m: Extract<DeviceMessage, { t: 'push/ok' | 'push/error' }>): void {
    this.replies.set(from, m.t === 'push/ok' ? 'ok' : m.code);
    this.renderStatus();
  }

  /** The settings control (a fresh element each render; it keeps its state here). */
  control(): HTMLElement {
    const supported =
      'serviceWorker' in navigator && 'PushManager' in globalThis && 'Notification' in globalThis;
    this.el = h('div', { class: 'push-status muted', id: 'push-status' });
    this.renderStatus();
    return h(
      'details',
      { class: 'card settings', id: 'notifications' },
      h('summary', {}, 'Notifications'),
      supported
        ? h(
            'button',
            { type: 'button', id: 'push-enable', onclick: () => void this.enable() },
            'Notify me on this device',
          )
        : h('p', { class: 'muted' }, 'This browser cannot receive notifications.'),
      this.el,
    );
  }

  private renderStatus(): void {
    if (!this.el) return;
    const lines = [...this.replies].map(([d, r]) =>
      h(
        'div',
        { 'data-device': d },
        `${this.deps.label(d)}: ${r === 'ok' ? 'on' : r === 'sent' ? '…' : `refused (${r})`}`,
      ),
    );
    replace(this.el, this.status ? h('div', {}, this.status) : null, ...lines);
  }

  /** Ask for permission, subscribe, and send the subscription to every paired device. */
  async enable(): Promise<void> {
    try {
      const perm = await Notification.requestPermission();
      if (perm !== 'granted') {
        this.status = 'Notifications are blocked for this site.';
        return this.renderStatus();
      }
      const reg = await navigator.serviceWorker.ready;
      const res = await fetch('/v1/push/vapid', { cache: 'no-store' });
      if (!res.ok) throw new Error(`the server sends no notifications (${res.status})`);
      const { key } = (await res.json()) as { key: string };
      const want = fromB64u(key, 65);
      let sub = await reg.pushManager.getSubscription();
      const have = sub?.options.applicationServerKey;
      if (sub && (!have || b64u(have) !== key)) {
        await sub.unsubscribe();
        sub = null;
      }
      sub ??= await reg.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: want.buffer.slice(
          want.byteOffset,
          want.byteOffset + want.byteLength,
        ) as ArrayBuffer,
      });
      this.sendTo(subscriptionKeys(sub));
      this.status = undefined;
    } catch (e) {
      this.status = `Cannot turn notifications on: ${(e as Error).message}`;
    }
    this.renderStatus();
  }

  /**
   * A newly paired device: when this browser is already subscribed (and allowed), hand it the
   * subscription too, so that it notifies without the user pressing the button again.
   */
  async offerTo(deviceId: string): Promise<void> {
    try {
      if (!('Notification' in globalThis) || Notification.permission !== 'granted') return;
      const sub = await (await navigator.serviceWorker.ready).pushManager.getSubscription();
      if (sub && this.deps.send(deviceId, { t: 'push/sub', sub: subscriptionKeys(sub) })) {
        this.replies.set(deviceId, 'sent');
        this.renderStatus();
      }
    } catch {
      // no service worker or push here: nothing to offer
    }
  }

  /** Hand a subscription to every paired device (sealed). */
  sendTo(sub: { endpoint: string; p256dh: string; auth: string }): void {
    for (const d of this.deps.devices())
      if (this.deps.send(d, { t: 'push/sub', sub })) this.replies.set(d, 'sent');
    this.renderStatus();
  }
}
